//! The per-call outbound queue: agent audio in the carrier's format, released one frame per frame period.
//! Bounded, because the agent speaks faster than real time and a call must not grow memory without limit.

use std::collections::VecDeque;

/// Raw audio waiting to be played to the carrier.
pub struct Pacer {
    queue: VecDeque<u8>,
    frame_bytes: usize,
    max_bytes: usize,
    dropped_bytes: u64,
}

impl Pacer {
    /// `frame_bytes`: one frame; `max_bytes`: the most it holds (at least one frame).
    pub fn new(frame_bytes: usize, max_bytes: usize) -> Self {
        let frame_bytes = frame_bytes.max(1);
        Pacer {
            queue: VecDeque::new(),
            frame_bytes,
            max_bytes: max_bytes.max(frame_bytes),
            dropped_bytes: 0,
        }
    }

    /// Queues audio; what does not fit is dropped and counted. Returns the bytes dropped.
    pub fn push(&mut self, audio: &[u8]) -> usize {
        let room = self.max_bytes.saturating_sub(self.queue.len());
        let take = audio.len().min(room);
        self.queue.extend(&audio[..take]);
        let dropped = audio.len() - take;
        self.dropped_bytes += dropped as u64;
        dropped
    }

    /// Moves the next frame into `out` (cleared first). A partial frame is released only when `flush` says
    /// nothing more is coming soon. Returns false when there was nothing to release.
    pub fn pop_frame(&mut self, out: &mut Vec<u8>, flush: bool) -> bool {
        let n = if self.queue.len() >= self.frame_bytes {
            self.frame_bytes
        } else if flush {
            self.queue.len()
        } else {
            0
        };
        out.clear();
        out.extend(self.queue.drain(..n));
        // Give memory back after a long utterance instead of holding the peak for the whole call.
        if self.queue.is_empty() && self.queue.capacity() > 4 * self.frame_bytes {
            self.queue.shrink_to(self.frame_bytes);
        }
        n > 0
    }

    /// Drops everything queued (barge-in). Returns the bytes dropped.
    pub fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn has_full_frame(&self) -> bool {
        self.queue.len() >= self.frame_bytes
    }

    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_partial_flush_and_bound() {
        let mut p = Pacer::new(160, 400);
        assert_eq!(p.push(&[1u8; 350]), 0);
        assert_eq!(p.push(&[2u8; 100]), 50);
        assert_eq!(p.dropped_bytes(), 50);
        let mut f = Vec::new();
        assert!(p.pop_frame(&mut f, false));
        assert_eq!(f.len(), 160);
        assert!(p.pop_frame(&mut f, false));
        assert_eq!(f.len(), 160);
        assert!(!p.pop_frame(&mut f, false), "80 bytes left: not a whole frame");
        assert!(p.pop_frame(&mut f, true));
        assert_eq!(f.len(), 80);
        assert!(p.is_empty());
    }

    #[test]
    fn clear_drops_everything() {
        let mut p = Pacer::new(160, 1600);
        p.push(&[0u8; 1000]);
        assert_eq!(p.clear(), 1000);
        assert!(p.is_empty());
    }
}
