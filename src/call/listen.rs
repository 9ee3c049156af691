//! Listening in on a live call (`GET /calls/{id}/listen`). A call's `Listeners` sit on its carrier leg,
//! where both directions pass: the caller's audio as it was read, the agent's as it was written (so cut
//! where a barge-in cut it). Each listener gets PCM16 copies through a small queue of its own that drops
//! for that listener only when it falls behind: a listener never slows the call, and nothing is decoded
//! while nobody listens.

use crate::audio::format::{AudioFormat, Codec, SampleRate};
use crate::audio::transcode::Transcoder;
use crate::metrics::Metrics;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{self, Receiver, Sender};

/// What one listener may have waiting: 1 s of 20 ms frames each way. Beyond it, its frames are dropped.
pub const LISTEN_QUEUE: usize = 100;

/// Which side of the call a frame is; the first byte of every audio message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Side {
    Caller = 0,
    Agent = 1,
}

/// What a listener is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// The rate of the audio that follows (the carrier's), once the carrier's `start` named it.
    Rate(SampleRate),
    /// One frame: its `Side` as one byte, then PCM16 little-endian mono samples.
    Audio(Bytes),
}

/// One listener, as the carrier leg holds it.
pub struct Listener {
    /// Who listens (the admin's address), for the logs.
    pub who: String,
    queue: Sender<Heard>,
    /// Frames dropped because this listener fell behind.
    pub dropped: Arc<AtomicU64>,
}

impl Listener {
    /// A listener and the end its socket reads from.
    pub fn new(who: String) -> (Listener, Receiver<Heard>) {
        let (queue, heard) = mpsc::channel(LISTEN_QUEUE);
        let listener = Listener {
            who,
            queue,
            dropped: Arc::default(),
        };
        (listener, heard)
    }
}

/// The listeners of one call's carrier leg, and the conversion of each side to PCM16.
pub struct Listeners {
    list: Vec<Listener>,
    /// The carrier's rate, and a conversion per side to PCM16 (each carries its odd byte), once the
    /// carrier's `start` named its format.
    sides: Option<(SampleRate, [Transcoder; 2])>,
    pcm: Vec<u8>,
    /// Caller audio that came as base64, decoded.
    decoded: Vec<u8>,
    metrics: Arc<Metrics>,
}

impl Listeners {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Listeners {
            list: Vec::new(),
            sides: None,
            pcm: Vec::new(),
            decoded: Vec::new(),
            metrics,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds a listener; it is told the rate at once when the carrier has named it.
    pub fn add(&mut self, listener: Listener) {
        self.list.push(listener);
        if let Some((rate, _)) = self.sides {
            if let Some(last) = self.list.last() {
                // A new queue is empty: this cannot be refused for want of room.
                let _ = last.queue.try_send(Heard::Rate(rate));
            }
        }
    }

    /// The carrier's format, from its `start`.
    pub fn set_format(&mut self, format: AudioFormat) {
        let pcm = AudioFormat {
            codec: Codec::Pcm16,
            rate: format.rate,
        };
        let side = || Transcoder::new(format, pcm);
        self.sides = Some((format.rate, [side(), side()]));
        self.offer(Heard::Rate(format.rate));
    }

    /// A frame of one side that came as base64 (checked by the leg; were it not, only the listeners would
    /// lose it).
    pub fn hear_base64(&mut self, side: Side, b64: &[u8]) {
        if self.list.is_empty() {
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

    /// A frame of one side, raw in the carrier's format.
    pub fn hear(&mut self, side: Side, raw: &[u8]) {
        if self.list.is_empty() {
            return;
        }
        let Some((_, sides)) = &mut self.sides else { return };
        self.pcm.clear();
        sides[side as usize].convert(raw, &mut self.pcm);
        let mut frame = BytesMut::with_capacity(1 + self.pcm.len());
        frame.put_u8(side as u8);
        frame.put_slice(&self.pcm);
        self.offer(Heard::Audio(frame.freeze()));
    }

    /// Hands `heard` to every listener: one that is behind loses it, one that has gone is let go.
    fn offer(&mut self, heard: Heard) {
        let dropped = &self.metrics.watching.listen_frames_dropped;
        self.list
            .retain(|listener| match listener.queue.try_send(heard.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    listener.dropped.fetch_add(1, Ordering::Relaxed);
                    dropped.inc();
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listeners() -> Listeners {
        Listeners::new(Arc::new(Metrics::new().expect("metrics")))
    }

    #[test]
    fn a_listener_hears_both_sides_as_pcm16_after_the_rate() {
        let mut l = listeners();
        let (listener, mut heard) = Listener::new("test".into());
        l.add(listener);
        l.hear(Side::Caller, &[0xFF; 160]);
        assert!(heard.try_recv().is_err(), "nothing before the carrier names its format");
        l.set_format(AudioFormat::ULAW_8K);
        l.hear(Side::Caller, &[0xFF; 160]);
        l.hear(Side::Agent, &[0x80; 160]);
        assert_eq!(heard.try_recv(), Ok(Heard::Rate(SampleRate::Hz8000)));
        let Ok(Heard::Audio(caller)) = heard.try_recv() else {
            panic!("caller audio")
        };
        assert_eq!((caller[0], caller.len()), (Side::Caller as u8, 1 + 320));
        assert!(caller[1..].iter().all(|&b| b == 0), "μ-law silence decodes to zero");
        let Ok(Heard::Audio(agent)) = heard.try_recv() else {
            panic!("agent audio")
        };
        assert_eq!(agent[0], Side::Agent as u8);
        assert_eq!(
            i16::from_le_bytes([agent[1], agent[2]]),
            32124,
            "μ-law 0x80 is the loudest sample"
        );
    }

    #[test]
    fn a_listener_that_falls_behind_loses_frames_and_one_that_left_is_let_go() {
        let mut l = listeners();
        l.set_format(AudioFormat::PCM_16K);
        let (slow, mut slow_heard) = Listener::new("slow".into());
        let dropped = slow.dropped.clone();
        let (gone, gone_heard) = Listener::new("gone".into());
        l.add(slow);
        l.add(gone);
        drop(gone_heard);
        for _ in 0..LISTEN_QUEUE + 5 {
            l.hear(Side::Agent, &[1, 0, 2, 0]);
        }
        assert_eq!(l.list.len(), 1, "the listener that left is let go");
        assert_eq!(
            dropped.load(Ordering::Relaxed),
            6,
            "the rate and 99 frames fit; 6 frames do not"
        );
        assert_eq!(slow_heard.try_recv(), Ok(Heard::Rate(SampleRate::Hz16000)));
        let Ok(Heard::Audio(frame)) = slow_heard.try_recv() else {
            panic!("audio")
        };
        assert_eq!(&frame[..], &[1, 1, 0, 2, 0]);
    }
}
