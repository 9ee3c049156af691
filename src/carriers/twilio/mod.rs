//! Twilio Media Streams: the voice webhook (`POST /twilio/voice`, `X-Twilio-Signature`) answered in TwiML,
//! and a stream whose URL may carry no query, so its call and token come in `start`'s `customParameters`.

pub mod config;
pub mod endpoint;
pub mod sim;
pub mod webhook;

use super::{Dialect, Framing};

pub struct Twilio;

pub static DIALECT: Twilio = Twilio;

impl Dialect for Twilio {
    fn webhook(&self) -> (&'static str, &'static str) {
        ("POST", "/twilio/voice")
    }

    fn framing(&self) -> Framing {
        Framing::Twilio { sid_key: "streamSid" }
    }

    fn names_call_at_start(&self) -> bool {
        true
    }
}
