//! Listening in on a live call (`GET /calls/{id}/listen`). A call's `Listeners` sit on its carrier leg,
//! where both directions pass: the caller's audio as it was read, the agent's as it was written (so cut
//! where a barge-in cut it). Each listener gets PCM16 copies, `LISTEN_BATCH` of a side at a time (a tenth
//! of the messages and wake-ups 20 ms frames would cost, for a delay no eavesdropper notices), through a
//! small queue of its own that drops for that listener only when it falls behind: a listener never slows
//! the call, and nothing is decoded while nobody listens.

use crate::audio::format::{AudioFormat, Codec, SampleRate};
use crate::audio::transcode::Transcoder;
use crate::metrics::Metrics;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{self, Receiver, Sender};

/// How much of one side goes to listeners in one message.
pub const LISTEN_BATCH: Duration = Duration::from_millis(100);
/// What one listener may have waiting: 1 s of each side. Beyond it, what it is sent is dropped.
pub const LISTEN_QUEUE: usize = 20;

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
    /// `LISTEN_BATCH` of one side (less at the end): its `Side` as one byte, then PCM16 little-endian mono
    /// samples.
    Audio(Bytes),
}

/// One listener, as the carrier leg holds it.
pub struct Listener {
    /// Who listens (the admin's address), for the logs.
    pub who: String,
    queue: Sender<Heard>,
    /// Messages of audio dropped because this listener fell behind.
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

/// The listeners of one call's carrier leg, and each side on its way to them.
pub struct Listeners {
    list: Vec<Listener>,
    /// Once the carrier's `start` named its format: its rate, and each side's conversion and batch.
    sides: Option<(SampleRate, [Batch; 2])>,
    /// Caller audio that came as base64, decoded.
    decoded: Vec<u8>,
    metrics: Arc<Metrics>,
}

/// One side: its conversion to PCM16 (which carries an odd byte across frames) and what waits to be sent.
struct Batch {
    to_pcm: Transcoder,
    pcm: Vec<u8>,
    full: usize,
}

impl Listeners {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Listeners {
            list: Vec::new(),
            sides: None,
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
        let full = pcm.bytes_for_ms(LISTEN_BATCH.as_millis() as u64);
        let side = || Batch {
            to_pcm: Transcoder::new(format, pcm),
            pcm: Vec::with_capacity(full + 1024),
            full,
        };
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
        let batch = &mut sides[side as usize];
        batch.to_pcm.convert(raw, &mut batch.pcm);
        if batch.pcm.len() >= batch.full {
            self.send(side);
        }
    }

    /// Sends what waits of `side`.
    fn send(&mut self, side: Side) {
        let Some((_, sides)) = &mut self.sides else { return };
        let batch = &mut sides[side as usize];
        if batch.pcm.is_empty() {
            return;
        }
        let mut message = BytesMut::with_capacity(1 + batch.pcm.len());
        message.put_u8(side as u8);
        message.put_slice(&batch.pcm);
        batch.pcm.clear();
        self.offer(Heard::Audio(message.freeze()));
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

impl Drop for Listeners {
    /// The call's last words reach its listeners too.
    fn drop(&mut self) {
        self.send(Side::Caller);
        self.send(Side::Agent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listeners() -> Listeners {
        Listeners::new(Arc::new(Metrics::new().expect("metrics")))
    }

    #[test]
    fn a_listener_hears_both_sides_as_pcm16_after_the_rate_a_batch_at_a_time() {
        let mut l = listeners();
        let (listener, mut heard) = Listener::new("test".into());
        l.add(listener);
        l.hear(Side::Caller, &[0xFF; 160]);
        assert!(heard.try_recv().is_err(), "nothing before the carrier names its format");
        l.set_format(AudioFormat::ULAW_8K);
        assert_eq!(heard.try_recv(), Ok(Heard::Rate(SampleRate::Hz8000)));
        for _ in 0..4 {
            l.hear(Side::Caller, &[0xFF; 160]);
            l.hear(Side::Agent, &[0x80; 160]);
        }
        assert!(heard.try_recv().is_err(), "each side waits for its 100 ms");
        l.hear(Side::Agent, &[0x80; 160]);
        let Ok(Heard::Audio(agent)) = heard.try_recv() else {
            panic!("agent audio")
        };
        assert_eq!((agent[0], agent.len()), (Side::Agent as u8, 1 + 1600));
        let loudest = i16::from_le_bytes([agent[1], agent[2]]);
        assert_eq!(loudest, 32124, "μ-law 0x80 is the loudest sample");
        drop(l);
        let Ok(Heard::Audio(caller)) = heard.try_recv() else {
            panic!("the caller's last words")
        };
        assert_eq!((caller[0], caller.len()), (Side::Caller as u8, 1 + 1280));
        assert!(caller[1..].iter().all(|&b| b == 0), "μ-law silence decodes to zero");
    }

    #[test]
    fn a_listener_that_falls_behind_loses_batches_and_one_that_left_is_let_go() {
        let mut l = listeners();
        l.set_format(AudioFormat::PCM_16K);
        let (slow, mut slow_heard) = Listener::new("slow".into());
        let dropped = slow.dropped.clone();
        let (gone, gone_heard) = Listener::new("gone".into());
        l.add(slow);
        l.add(gone);
        drop(gone_heard);
        let tenth = [7u8; 3200];
        for _ in 0..LISTEN_QUEUE + 5 {
            l.hear(Side::Agent, &tenth);
        }
        assert_eq!(l.list.len(), 1, "the listener that left is let go");
        assert_eq!(
            dropped.load(Ordering::Relaxed),
            6,
            "the rate and 19 batches fit; 6 do not"
        );
        assert_eq!(slow_heard.try_recv(), Ok(Heard::Rate(SampleRate::Hz16000)));
        let Ok(Heard::Audio(batch)) = slow_heard.try_recv() else {
            panic!("audio")
        };
        assert_eq!((batch[0], batch.len()), (Side::Agent as u8, 1 + 3200));
    }
}
