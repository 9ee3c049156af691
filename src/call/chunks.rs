//! `ChunkJoiner`: caller audio on its last step to the agent, joined into chunks of the configured length
//! (`elevenlabs.user_audio_chunk_ms`). A carrier sends a frame every 20 ms; every frame sent on as its own
//! `user_audio_chunk` costs a message, a write and a wake-up on both ends, which is most of what a call
//! costs. ElevenLabs' own SDK sends 250 ms chunks; a few frames per chunk cut that cost by as many times for a
//! bounded delay (the chunk's length less one frame, at most). A plain part of the carrier leg, which
//! joins frames before they leave it, so each chunk (not each frame) costs a mailbox hop, a wake-up of the
//! agent leg and a write; it takes `now` and says what to send and when held audio is due.

use base64::Engine as _;
use bytestring::ByteString;
use std::time::{Duration, Instant};

pub struct ChunkJoiner {
    /// Bytes that make a chunk in the agent's input format; 0 until the format is known (each piece then
    /// goes as it comes).
    chunk_bytes: usize,
    /// The longest held audio waits for the rest of its chunk.
    hold: Duration,
    /// Audio waiting for the rest of its chunk (raw, the agent's input format).
    held: Vec<u8>,
    /// When the oldest held audio came.
    held_since: Option<Instant>,
    b64: base64::engine::GeneralPurpose,
}

impl ChunkJoiner {
    /// Chunks of `chunk`'s length (`Duration::ZERO`: every piece as it comes). Until `set_chunk_bytes`
    /// every piece goes as it comes.
    pub fn new(chunk: Duration) -> Self {
        ChunkJoiner {
            chunk_bytes: 0,
            hold: chunk,
            held: Vec::new(),
            held_since: None,
            b64: base64::engine::general_purpose::STANDARD,
        }
    }

    /// The configured chunk length.
    pub fn chunk(&self) -> Duration {
        self.hold
    }

    /// The agent's input format is known: a chunk is `bytes` of it.
    pub fn set_chunk_bytes(&mut self, bytes: usize) {
        self.chunk_bytes = bytes;
    }

    /// Takes one piece of caller audio (base64 in the agent's input format) at `now`: the chunk to send now,
    /// if one is complete. A piece that is a chunk by itself, with nothing held, goes on as it came.
    pub fn push(&mut self, b64: ByteString, now: Instant) -> Option<ByteString> {
        if self.held.is_empty() && crate::protocol::base64_decoded_len(&b64) >= self.chunk_bytes {
            return Some(b64);
        }
        let before = self.held.len();
        if self.b64.decode_vec(b64.as_bytes(), &mut self.held).is_err() {
            // The carrier leg checked the base64 and the converter writes its own: nothing else gets here.
            self.held.truncate(before);
            return None;
        }
        self.held_since.get_or_insert(now);
        (self.held.len() >= self.chunk_bytes).then(|| self.take()).flatten()
    }

    /// As `push`, for a piece of raw audio (a binary frame).
    pub fn push_raw(&mut self, raw: &[u8], now: Instant) -> Option<ByteString> {
        if self.held.is_empty() && raw.len() >= self.chunk_bytes {
            return Some(ByteString::from(self.b64.encode(raw)));
        }
        self.held.extend_from_slice(raw);
        self.held_since.get_or_insert(now);
        (self.held.len() >= self.chunk_bytes).then(|| self.take()).flatten()
    }

    /// Whatever is held, as one chunk (at a deadline, before other messages, at the end).
    pub fn take(&mut self) -> Option<ByteString> {
        self.held_since = None;
        if self.held.is_empty() {
            return None;
        }
        let chunk = self.b64.encode(&self.held);
        self.held.clear();
        Some(ByteString::from(chunk))
    }

    /// When held audio must go even if its chunk is not complete; `None` while nothing is held.
    pub fn due(&self) -> Option<Instant> {
        self.held_since.map(|t| t + self.hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(raw: &[u8]) -> ByteString {
        ByteString::from(base64::engine::general_purpose::STANDARD.encode(raw))
    }

    fn raw(b64: &ByteString) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .expect("base64")
    }

    fn joiner(chunk_bytes: usize) -> ChunkJoiner {
        let mut j = ChunkJoiner::new(Duration::from_millis(60));
        j.set_chunk_bytes(chunk_bytes);
        j
    }

    #[test]
    fn frames_are_joined_into_chunks_in_order() {
        let t0 = Instant::now();
        let mut j = joiner(480);
        assert!(j.push(b64(&[1; 160]), t0).is_none());
        assert_eq!(
            j.due(),
            Some(t0 + Duration::from_millis(60)),
            "held audio is due one chunk after it came"
        );
        assert!(j.push(b64(&[2; 160]), t0).is_none());
        let chunk = j.push(b64(&[3; 160]), t0).expect("a complete chunk");
        assert_eq!(raw(&chunk), [[1u8; 160], [2; 160], [3; 160]].concat());
        assert_eq!(j.due(), None, "nothing held");
        assert!(j.take().is_none());
    }

    #[test]
    fn a_piece_that_is_a_chunk_by_itself_passes_as_it_came() {
        let mut j = joiner(160);
        let whole = b64(&[7; 160]);
        assert_eq!(
            j.push(whole.clone(), Instant::now()),
            Some(whole),
            "not decoded, not re-encoded"
        );
        assert!(
            j.push(b64(&[8; 100]), Instant::now()).is_none(),
            "a short piece is held"
        );
        let next = j
            .push(b64(&[9; 160]), Instant::now())
            .expect("held audio goes first, joined");
        assert_eq!(raw(&next), [vec![8u8; 100], vec![9; 160]].concat());
    }

    #[test]
    fn before_the_format_is_known_every_piece_goes_as_it_comes() {
        let mut j = ChunkJoiner::new(Duration::from_millis(60));
        let piece = b64(&[9; 10]);
        assert_eq!(j.push(piece.clone(), Instant::now()), Some(piece));
    }

    #[test]
    fn held_audio_is_taken_whole_at_its_deadline() {
        let t0 = Instant::now();
        let mut j = joiner(480);
        assert!(j.push(b64(&[1; 160]), t0).is_none());
        assert!(j.push(b64(&[2; 100]), t0 + Duration::from_millis(20)).is_none());
        assert_eq!(
            j.due(),
            Some(t0 + Duration::from_millis(60)),
            "the oldest sets the deadline"
        );
        let rest = j.take().expect("held audio");
        assert_eq!(raw(&rest), [vec![1u8; 160], vec![2; 100]].concat());
        assert_eq!(j.due(), None);
    }

    #[test]
    fn unreadable_base64_is_dropped_without_touching_what_is_held() {
        let mut j = joiner(480);
        assert!(j.push(b64(&[1; 160]), Instant::now()).is_none());
        assert!(j.push(ByteString::from_static("!!!!"), Instant::now()).is_none());
        assert_eq!(raw(&j.take().expect("held")), vec![1; 160]);
    }

    #[test]
    fn raw_pieces_are_joined_with_base64_ones() {
        let mut j = joiner(320);
        assert!(j.push_raw(&[1; 160], Instant::now()).is_none());
        let chunk = j.push(b64(&[2; 160]), Instant::now()).expect("a chunk");
        assert_eq!(raw(&chunk), [[1u8; 160], [2; 160]].concat());
        assert_eq!(
            raw(&j.push_raw(&[3; 320], Instant::now()).expect("whole")),
            vec![3; 320]
        );
    }
}
