//! The carrier leg's tap: the one place both sides of a call pass, the caller's audio as it was read and
//! the agent's as it was written to the carrier (so cut where a barge-in cut it). Each side is converted to
//! PCM16 once, for whoever takes it: admins listening in (`listen`) and the call's recording
//! (`crate::recording`). While nobody takes anything, nothing is decoded.

use super::listen::{Listener, Listeners, Side};
use crate::audio::format::{AudioFormat, Codec};
use crate::audio::transcode::Transcoder;
use crate::metrics::Metrics;
use crate::recording::CallRecording;
use base64::Engine;
use std::sync::Arc;
use std::time::Instant;

pub struct Tap {
    /// Each side's conversion to PCM16 (it carries an odd byte across frames), once the carrier's `start`
    /// named its format.
    to_pcm: Option<[Transcoder; 2]>,
    pcm: Vec<u8>,
    /// Caller audio that came as base64, decoded.
    decoded: Vec<u8>,
    listeners: Listeners,
    recording: Option<CallRecording>,
}

impl Tap {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Tap {
            to_pcm: None,
            pcm: Vec::new(),
            decoded: Vec::new(),
            listeners: Listeners::new(metrics),
            recording: None,
        }
    }

    /// The carrier's format, from its `start`.
    pub fn set_format(&mut self, format: AudioFormat) {
        let pcm = AudioFormat {
            codec: Codec::Pcm16,
            rate: format.rate,
        };
        self.to_pcm = Some([Transcoder::new(format, pcm), Transcoder::new(format, pcm)]);
        self.listeners.set_rate(format.rate);
    }

    pub fn listen(&mut self, listener: Listener) {
        self.listeners.add(listener);
    }

    /// Records the call from now on (its end closes the file).
    pub fn record(&mut self, recording: CallRecording) {
        self.recording = Some(recording);
    }

    pub fn pause_recording(&mut self, paused: bool) {
        if let Some(r) = &mut self.recording {
            r.set_paused(paused);
        }
    }

    fn idle(&self) -> bool {
        self.listeners.is_empty() && self.recording.is_none()
    }

    /// A frame of one side that came as base64 (checked by the leg; were it not, only the tap would lose
    /// it).
    pub fn hear_base64(&mut self, side: Side, b64: &[u8]) {
        if self.idle() {
            return;
        }
        let mut raw = std::mem::take(&mut self.decoded);
        raw.clear();
        if base64::engine::general_purpose::STANDARD
            .decode_vec(b64, &mut raw)
            .is_ok()
        {
            self.hear(side, &raw);
        }
        self.decoded = raw;
    }

    /// A frame of one side, raw in the carrier's format, read or written now.
    pub fn hear(&mut self, side: Side, raw: &[u8]) {
        if self.idle() {
            return;
        }
        let Some(to_pcm) = &mut self.to_pcm else { return };
        self.pcm.clear();
        to_pcm[side as usize].convert(raw, &mut self.pcm);
        self.listeners.hear(side, &self.pcm);
        if let Some(r) = &mut self.recording {
            r.push(side, &self.pcm, Instant::now());
        }
    }
}
