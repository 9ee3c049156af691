//! Listening in on a live call (`GET /calls/{id}/listen`). A call's `Listeners` sit on its carrier leg,
//! where both directions pass: the caller's audio as it was read, the agent's as it was written (so cut
//! where a barge-in cut it). Each listener gets PCM16 copies, `LISTEN_BATCH` of a side at a time (a tenth
//! of the messages and wake-ups 20 ms frames would cost, for a delay no eavesdropper notices), through a
//! small queue of its own that drops for that listener only when it falls behind: a listener never slows
//! the call, and nothing is decoded while nobody listens.

use crate::audio::format::{AudioFormat, Codec, SampleRate};
use crate::metrics::Metrics;
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

/// Which side of the call audio is (the first byte of every audio message): the recording's channels.
pub use crate::recording::stereo::Channel as Side;

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

/// The listeners of one call's carrier leg, and each side's PCM on its way to them.
pub struct Listeners {
    list: Vec<Listener>,
    /// Once the carrier's `start` named its format: its rate, and what waits of each side.
    sides: Option<(SampleRate, [Vec<u8>; 2])>,
    /// Bytes of PCM16 in `LISTEN_BATCH`.
    full: usize,
    metrics: Arc<Metrics>,
}

impl Listeners {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Listeners {
            list: Vec::new(),
            sides: None,
            full: 0,
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

    /// The carrier's rate, from its `start`.
    pub fn set_rate(&mut self, rate: SampleRate) {
        let pcm = AudioFormat {
            codec: Codec::Pcm16,
            rate,
        };
        self.full = pcm.bytes_for_ms(LISTEN_BATCH.as_millis() as u64);
        self.sides = Some((rate, [Vec::new(), Vec::new()]));
        self.offer(Heard::Rate(rate));
    }

    /// A frame of one side, PCM16 LE at the carrier's rate.
    pub fn hear(&mut self, side: Side, pcm: &[u8]) {
        if self.list.is_empty() {
            return;
        }
        let Some((_, sides)) = &mut self.sides else { return };
        let batch = &mut sides[side as usize];
        batch.extend_from_slice(pcm);
        if batch.len() >= self.full {
            self.send(side);
        }
    }

    /// Sends what waits of `side`.
    fn send(&mut self, side: Side) {
        let Some((_, sides)) = &mut self.sides else { return };
        let batch = &mut sides[side as usize];
        if batch.is_empty() {
            return;
        }
        let mut message = BytesMut::with_capacity(1 + batch.len());
        message.put_u8(side as u8);
        message.put_slice(batch);
        batch.clear();
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
    fn a_listener_hears_both_sides_after_the_rate_a_batch_at_a_time() {
        let mut l = listeners();
        let (listener, mut heard) = Listener::new("test".into());
        l.add(listener);
        l.hear(Side::Caller, &[0; 320]);
        assert!(heard.try_recv().is_err(), "nothing before the carrier names its format");
        l.set_rate(SampleRate::Hz8000);
        assert_eq!(heard.try_recv(), Ok(Heard::Rate(SampleRate::Hz8000)));
        for _ in 0..4 {
            l.hear(Side::Caller, &[0; 320]);
            l.hear(Side::Agent, &[7; 320]);
        }
        assert!(heard.try_recv().is_err(), "each side waits for its 100 ms");
        l.hear(Side::Agent, &[7; 320]);
        let Ok(Heard::Audio(agent)) = heard.try_recv() else {
            panic!("agent audio")
        };
        assert_eq!((agent[0], agent.len()), (Side::Agent as u8, 1 + 1600));
        assert!(agent[1..].iter().all(|&b| b == 7));
        drop(l);
        let Ok(Heard::Audio(caller)) = heard.try_recv() else {
            panic!("the caller's last words")
        };
        assert_eq!((caller[0], caller.len()), (Side::Caller as u8, 1 + 1280));
    }

    #[test]
    fn a_listener_that_falls_behind_loses_batches_and_one_that_left_is_let_go() {
        let mut l = listeners();
        l.set_rate(SampleRate::Hz16000);
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
