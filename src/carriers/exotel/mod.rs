//! Exotel's Voicebot applet: its dynamic URL (`GET /exotel/voicebot`, Basic auth) answered with the
//! stream's URL, and a Twilio-style stream (`stream_sid`) that plays media only in whole 320-byte blocks of
//! at least 100 ms and 3.2 KB.

pub mod config;
pub mod endpoint;
pub mod sim;
pub mod webhook;

use super::{Dialect, Framing};
use crate::audio::format::AudioFormat;

/// Exotel's smallest media message, by its documentation.
pub const MIN_MEDIA_BYTES: usize = 3200;

pub struct Exotel;

pub static DIALECT: Exotel = Exotel;

impl Dialect for Exotel {
    fn webhook(&self) -> (&'static str, &'static str) {
        ("GET", "/exotel/voicebot")
    }

    fn framing(&self) -> Framing {
        Framing::Twilio { sid_key: "stream_sid" }
    }

    /// Exotel breaks up on media under 100 ms or under 3.2 KB (both are in its documentation; 3.2 KB is
    /// 200 ms at 8 kHz).
    fn min_frame_ms(&self, format: AudioFormat) -> u64 {
        format.ms_for_bytes(MIN_MEDIA_BYTES).max(100)
    }

    fn media_block_bytes(&self) -> usize {
        320
    }
}
