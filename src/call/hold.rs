//! `HoldAudio`: what the caller hears while the agent leg is redialled — the configured hold clip, or
//! silence frames, looped — so the line never goes dead in a way that sounds like a dropped call. A plain
//! part of the call: it hands out the next piece; the call queues it behind the agent's last words.

/// How much hold audio is queued at a time: well past the pacer's lead, so one piece is never drained in
/// the pump that queued it.
pub const HOLD_PIECE_MS: u64 = 400;

pub struct HoldAudio {
    audio: Vec<u8>,
    pos: usize,
    /// Whether any of it was queued: only then is there something to clear when the agent is back.
    queued: bool,
}

impl HoldAudio {
    /// Loops `audio` (already in the carrier's format; never empty in use).
    pub fn new(audio: Vec<u8>) -> Self {
        HoldAudio {
            audio,
            pos: 0,
            queued: false,
        }
    }

    /// The next `len` bytes, wrapping around the clip's end.
    pub fn next_piece(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len && !self.audio.is_empty() {
            let take = (len - out.len()).min(self.audio.len() - self.pos);
            out.extend_from_slice(&self.audio[self.pos..self.pos + take]);
            self.pos = (self.pos + take) % self.audio.len();
        }
        self.queued |= !out.is_empty();
        out
    }

    pub fn was_queued(&self) -> bool {
        self.queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_loop_over_the_clip() {
        let mut h = HoldAudio::new(vec![1, 2, 3]);
        assert!(!h.was_queued());
        assert_eq!(h.next_piece(5), vec![1, 2, 3, 1, 2]);
        assert_eq!(h.next_piece(2), vec![3, 1]);
        assert!(h.was_queued());
        assert!(
            HoldAudio::new(Vec::new()).next_piece(4).is_empty(),
            "an empty clip gives nothing, and ends"
        );
    }
}
