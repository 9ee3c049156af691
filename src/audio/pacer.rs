//! The per-call outbound queue: agent audio in the carrier's format, released one frame per frame period.
//! Bounded, because the agent speaks faster than real time and a call must not grow memory without limit.

/// Raw audio waiting to be played to the carrier: a byte buffer read from `head`, so queuing is one
/// `memcpy` and a frame is a slice (a `VecDeque<u8>` extended byte by byte showed up in profiles).
pub struct Pacer {
    buf: Vec<u8>,
    head: usize,
    frame_bytes: usize,
    max_bytes: usize,
    dropped_bytes: u64,
}

impl Pacer {
    /// `frame_bytes`: one frame; `max_bytes`: the most it holds (at least one frame).
    pub fn new(frame_bytes: usize, max_bytes: usize) -> Self {
        let frame_bytes = frame_bytes.max(1);
        Pacer {
            buf: Vec::new(),
            head: 0,
            frame_bytes,
            max_bytes: max_bytes.max(frame_bytes),
            dropped_bytes: 0,
        }
    }

    /// Queues audio; what does not fit is dropped and counted. Returns the bytes dropped.
    pub fn push(&mut self, audio: &[u8]) -> usize {
        if self.head > 0 && self.head >= self.buf.len() / 2 {
            // Reclaim the played part before growing: one move of what is still queued.
            self.buf.drain(..self.head);
            self.head = 0;
        }
        let room = self.max_bytes.saturating_sub(self.len());
        let take = audio.len().min(room);
        self.buf.extend_from_slice(&audio[..take]);
        let dropped = audio.len() - take;
        self.dropped_bytes += dropped as u64;
        dropped
    }

    /// Moves the next frame into `out` (cleared first). A partial frame is released only when `flush` says
    /// nothing more is coming soon. Returns false when there was nothing to release.
    pub fn pop_frame(&mut self, out: &mut Vec<u8>, flush: bool) -> bool {
        let n = if self.len() >= self.frame_bytes {
            self.frame_bytes
        } else if flush {
            self.len()
        } else {
            0
        };
        out.clear();
        out.extend_from_slice(&self.buf[self.head..self.head + n]);
        self.head += n;
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
            // Give memory back after a long utterance instead of holding the peak for the whole call.
            if self.buf.capacity() > 4 * self.frame_bytes {
                self.buf.shrink_to(self.frame_bytes);
            }
        }
        n > 0
    }

    /// Drops everything queued (barge-in). Returns the bytes dropped.
    pub fn clear(&mut self) -> usize {
        let n = self.len();
        self.buf.clear();
        self.head = 0;
        n
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn has_full_frame(&self) -> bool {
        self.len() >= self.frame_bytes
    }

    /// Whole frames queued.
    pub fn full_frames(&self) -> usize {
        self.len() / self.frame_bytes
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
    fn interleaved_pushes_and_pops_keep_order() {
        let mut p = Pacer::new(4, 64);
        let mut f = Vec::new();
        let mut next = 0u8;
        let mut expect = 0u8;
        for round in 0..50 {
            let chunk: Vec<u8> = (0..(round % 7 + 1))
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            p.push(&chunk);
            while p.pop_frame(&mut f, false) {
                for b in &f {
                    expect = expect.wrapping_add(1);
                    assert_eq!(*b, expect);
                }
            }
        }
    }

    #[test]
    fn clear_drops_everything() {
        let mut p = Pacer::new(160, 1600);
        p.push(&[0u8; 1000]);
        assert_eq!(p.clear(), 1000);
        assert!(p.is_empty());
    }
}
