//! `ChunkJoiner`: caller audio on its way to the agent, joined into chunks of the configured length
//! (`elevenlabs.user_audio_chunk_ms`). A carrier sends a frame every 20 ms; every frame sent on as its own
//! `user_audio_chunk` costs a message, a write and a wake-up on both ends, which is most of what a call
//! costs. ElevenLabs' own SDK sends 250 ms chunks; a few frames per chunk cut that cost by as many times for a
//! bounded delay (the chunk's length less one frame, at most). A plain part of the carrier leg, which
//! joins frames before they leave it, so each chunk (not each frame) costs a mailbox hop, a wake-up of the
//! agent leg and a write; it takes `now` and says what to send and when held audio is due.

use super::messages::CarrierPayload;
use crate::audio::format::AudioFormat;
use crate::audio::transcode::Transcoder;
use base64::Engine as _;
use bytes::Bytes;
use bytestring::ByteString;
use std::time::{Duration, Instant};

/// Caller audio ready to leave the leg: as it came (one frame) or raw (joined), and what went into it for
/// the call's counters.
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk {
    pub audio: CarrierPayload,
    /// Carrier frames joined into it.
    pub frames: u64,
    /// Its size decoded.
    pub bytes: usize,
}

/// A frame that is not base64: dropped (the leg counts it).
#[derive(Debug, PartialEq, Eq)]
pub struct NotBase64;

pub struct ChunkJoiner {
    /// The chunk length now (the configured one, or longer while the loop is behind); also the longest
    /// held audio waits for the rest of its chunk.
    chunk: Duration,
    /// The carrier's format, once its `start` named it.
    format: Option<AudioFormat>,
    /// Bytes that make a chunk in the carrier's format; 0 until its `start` names the format (each piece
    /// then goes as it comes).
    chunk_bytes: usize,
    /// Audio waiting for the rest of its chunk (raw, the carrier's format), and how many frames it was.
    held: Vec<u8>,
    held_frames: u64,
    /// When the oldest held audio came.
    held_since: Option<Instant>,
    b64: base64::engine::GeneralPurpose,
}

impl ChunkJoiner {
    /// Chunks of `chunk`'s length (`Duration::ZERO`: every piece as it comes). Until `set_format` every
    /// piece goes as it comes.
    pub fn new(chunk: Duration) -> Self {
        ChunkJoiner {
            chunk,
            format: None,
            chunk_bytes: 0,
            held: Vec::new(),
            held_frames: 0,
            held_since: None,
            b64: base64::engine::general_purpose::STANDARD,
        }
    }

    /// The carrier's format is known: a chunk is the configured length of it.
    pub fn set_format(&mut self, format: AudioFormat) {
        self.format = Some(format);
        self.chunk_bytes = format.bytes_for_ms(self.chunk.as_millis() as u64);
    }

    /// Chunks of `chunk`'s length from the next piece on (what is held counts toward it).
    pub fn set_chunk(&mut self, chunk: Duration) {
        if chunk != self.chunk {
            self.chunk = chunk;
            if let Some(format) = self.format {
                self.set_format(format);
            }
        }
    }

    /// Takes one frame of caller audio (base64, as the carrier sent it) at `now`: the chunk to send now, if
    /// one is complete. A frame that is a chunk by itself, with nothing held, goes on as it came. Each frame
    /// is checked once: its shape when it passes on undecoded, its decoding when it is joined.
    pub fn push(&mut self, b64: ByteString, now: Instant) -> Result<Option<Chunk>, NotBase64> {
        let bytes = crate::protocol::base64_decoded_len(&b64);
        if self.held.is_empty() && bytes >= self.chunk_bytes {
            if !crate::protocol::is_base64(&b64) {
                return Err(NotBase64);
            }
            return Ok(Some(Chunk {
                audio: CarrierPayload::Base64(b64),
                frames: 1,
                bytes,
            }));
        }
        let before = self.held.len();
        if self.b64.decode_vec(b64.as_bytes(), &mut self.held).is_err() {
            self.held.truncate(before);
            return Err(NotBase64);
        }
        Ok(self.held_one(now))
    }

    /// As `push`, for a frame of raw audio (a binary frame).
    pub fn push_raw(&mut self, raw: Bytes, now: Instant) -> Option<Chunk> {
        if self.held.is_empty() && raw.len() >= self.chunk_bytes {
            let bytes = raw.len();
            return Some(Chunk {
                audio: CarrierPayload::Raw(raw),
                frames: 1,
                bytes,
            });
        }
        self.held.extend_from_slice(&raw);
        self.held_one(now)
    }

    /// One more frame is held: the chunk, once it is complete.
    fn held_one(&mut self, now: Instant) -> Option<Chunk> {
        self.held_frames += 1;
        self.held_since.get_or_insert(now);
        (self.held.len() >= self.chunk_bytes).then(|| self.take()).flatten()
    }

    /// Whatever is held, as one chunk (at a deadline, before other messages, at the end).
    pub fn take(&mut self) -> Option<Chunk> {
        self.held_since = None;
        let frames = std::mem::take(&mut self.held_frames);
        if self.held.is_empty() {
            return None;
        }
        // Raw: it is encoded once, on its way to the agent, after any conversion.
        let bytes = self.held.len();
        let audio = CarrierPayload::Raw(Bytes::from(std::mem::replace(
            &mut self.held,
            Vec::with_capacity(bytes),
        )));
        Some(Chunk { audio, frames, bytes })
    }

    /// When the oldest held audio came, while any is held.
    pub fn held_since(&self) -> Option<Instant> {
        self.held_since
    }

    /// When held audio must go even if its chunk is not complete; `None` while nothing is held.
    pub fn due(&self) -> Option<Instant> {
        self.held_since.map(|t| t + self.chunk)
    }
}

/// Caller audio in the agent's format, base64, encoded once: base64 that needs no conversion passes as it
/// came; anything else is decoded at most once, converted by `converter` when the formats differ, and
/// encoded. `None` when base64 somehow does not decode.
pub fn for_agent(payload: CarrierPayload, converter: Option<&mut Converter>) -> Option<ByteString> {
    match (converter, payload) {
        (None, CarrierPayload::Base64(b64)) => Some(b64),
        (None, CarrierPayload::Raw(raw)) => {
            Some(ByteString::from(base64::engine::general_purpose::STANDARD.encode(&raw)))
        }
        (Some(converter), CarrierPayload::Base64(b64)) => converter.convert(&b64),
        (Some(converter), CarrierPayload::Raw(raw)) => Some(converter.convert_raw(&raw)),
    }
}

/// Caller audio converted to the agent's format on its way out of the carrier leg: base64 or raw in,
/// base64 out, with the decode and encode buffers kept for the call.
pub struct Converter {
    transcoder: Transcoder,
    raw: Vec<u8>,
    converted: Vec<u8>,
}

impl Converter {
    pub fn new(transcoder: Transcoder) -> Self {
        Converter {
            transcoder,
            raw: Vec::new(),
            converted: Vec::new(),
        }
    }

    /// `b64` (checked base64, the carrier's format) in the agent's format, base64; `None` when it somehow
    /// does not decode. Empty when the piece was too short for a whole output sample yet.
    pub fn convert(&mut self, b64: &str) -> Option<ByteString> {
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        let decoded = base64::engine::general_purpose::STANDARD.decode_vec(b64, &mut raw);
        let converted = decoded.ok().map(|_| self.convert_raw(&raw));
        self.raw = raw;
        converted
    }

    /// Raw audio in the carrier's format, in the agent's format, base64.
    pub fn convert_raw(&mut self, raw: &[u8]) -> ByteString {
        self.converted.clear();
        self.transcoder.convert(raw, &mut self.converted);
        ByteString::from(base64::engine::general_purpose::STANDARD.encode(&self.converted))
    }

    pub fn transcoder(&self) -> &Transcoder {
        &self.transcoder
    }
}

/// Caller audio that reached the agent leg while earlier audio of the same turn of its loop was still
/// waiting to be written: joined into one `user_audio_chunk` when the leg's turn ends. Nothing waits for a
/// timer: a frame that comes alone goes alone, at once; only frames that were already queued together (the
/// process was behind, or the carrier sent a burst) share a message. The first piece stays as it came
/// (base64, undecoded) until a second one joins it.
#[derive(Default)]
pub struct QueuedAudio {
    first: Option<ByteString>,
    /// Decoded audio once a second piece joined the first.
    joined: Vec<u8>,
    /// When the oldest piece was read from the carrier (hop latency includes the wait here).
    since: Option<Instant>,
}

impl QueuedAudio {
    /// Queues a piece of caller audio (valid base64: the carrier leg or a conversion made it); returns
    /// whether it is the first of this batch (the leg then arranges to write the batch when its turn ends).
    pub fn push(&mut self, audio: ByteString, read_at: Instant) -> bool {
        self.since = Some(self.since.map_or(read_at, |s| s.min(read_at)));
        let b64 = base64::engine::general_purpose::STANDARD;
        match self.first.take() {
            None if self.joined.is_empty() => {
                self.first = Some(audio);
                return true;
            }
            None => {}
            Some(first) => {
                // Both pieces came through `is_base64` or our own encoder: decoding cannot fail, and a piece
                // that somehow did is dropped rather than sent garbled.
                let _ = b64.decode_vec(first.as_bytes(), &mut self.joined);
            }
        }
        let before = self.joined.len();
        if b64.decode_vec(audio.as_bytes(), &mut self.joined).is_err() {
            self.joined.truncate(before);
        }
        false
    }

    /// The batch as one base64 chunk, and when its oldest piece was read; `None` when empty.
    pub fn take(&mut self) -> Option<(ByteString, Instant)> {
        let since = self.since.take()?;
        if let Some(first) = self.first.take() {
            return Some((first, since));
        }
        if self.joined.is_empty() {
            return None;
        }
        let audio = ByteString::from(base64::engine::general_purpose::STANDARD.encode(&self.joined));
        self.joined.clear();
        Some((audio, since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_converter_turns_carrier_base64_into_the_agents_format() {
        let mut c = Converter::new(Transcoder::new(AudioFormat::ULAW_8K, AudioFormat::PCM_16K));
        let out = c.convert(&b64(&[0xFF; 160])).expect("audio");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(out.as_bytes())
            .expect("b64");
        assert_eq!(raw.len(), 640, "20 ms of μ-law is 20 ms of PCM16 at 16 kHz");
        assert!(c.convert("!!!!").is_none(), "what does not decode converts to nothing");
        assert_eq!(c.convert_raw(&[0xFF; 160]).len(), out.len(), "raw audio converts alike");
    }

    #[test]
    fn a_lone_piece_passes_as_it_came_and_queued_pieces_are_joined_in_order() {
        let mut q = QueuedAudio::default();
        let t0 = Instant::now();
        assert!(q.push(b64(&[1; 160]), t0), "the first of a batch");
        let (alone, since) = q.take().expect("the piece");
        assert_eq!((alone, since), (b64(&[1; 160]), t0), "not decoded, not re-encoded");
        assert!(q.take().is_none());
        assert!(q.push(b64(&[1; 160]), t0 + Duration::from_millis(5)));
        assert!(!q.push(b64(&[2; 100]), t0));
        assert!(!q.push(b64(&[3; 20]), t0 + Duration::from_millis(9)));
        let (joined, since) = q.take().expect("the batch");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(joined.as_bytes())
            .expect("b64");
        assert_eq!(raw, [vec![1u8; 160], vec![2; 100], vec![3; 20]].concat());
        assert_eq!(since, t0, "the oldest piece's read time");
        assert!(q.take().is_none());
    }

    fn b64(raw: &[u8]) -> ByteString {
        ByteString::from(base64::engine::general_purpose::STANDARD.encode(raw))
    }

    fn raw(chunk: &Chunk) -> Vec<u8> {
        let audio = match &chunk.audio {
            CarrierPayload::Base64(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .expect("base64"),
            CarrierPayload::Raw(raw) => raw.to_vec(),
        };
        assert_eq!(audio.len(), chunk.bytes, "its size counted as it is");
        audio
    }

    /// A frame pushed that must be base64.
    fn pushed(j: &mut ChunkJoiner, b64: ByteString, now: Instant) -> Option<Chunk> {
        j.push(b64, now).expect("base64")
    }

    /// μ-law at 8 kHz: `ms` of it make `8 * ms` bytes.
    fn joiner(ms: u64) -> ChunkJoiner {
        let mut j = ChunkJoiner::new(Duration::from_millis(ms));
        j.set_format(AudioFormat::ULAW_8K);
        j
    }

    #[test]
    fn frames_are_joined_into_chunks_in_order() {
        let t0 = Instant::now();
        let mut j = joiner(60);
        assert!(pushed(&mut j, b64(&[1; 160]), t0).is_none());
        assert_eq!(
            j.due(),
            Some(t0 + Duration::from_millis(60)),
            "held audio is due one chunk after it came"
        );
        assert!(pushed(&mut j, b64(&[2; 160]), t0).is_none());
        let chunk = pushed(&mut j, b64(&[3; 160]), t0).expect("a complete chunk");
        assert_eq!(raw(&chunk), [[1u8; 160], [2; 160], [3; 160]].concat());
        assert_eq!(chunk.frames, 3);
        assert_eq!(j.due(), None, "nothing held");
        assert!(j.take().is_none());
    }

    #[test]
    fn a_piece_that_is_a_chunk_by_itself_passes_as_it_came() {
        let mut j = joiner(20);
        let whole = b64(&[7; 160]);
        assert_eq!(
            pushed(&mut j, whole.clone(), Instant::now()),
            Some(Chunk {
                audio: CarrierPayload::Base64(whole),
                frames: 1,
                bytes: 160
            }),
            "not decoded, not re-encoded"
        );
        assert!(
            pushed(&mut j, b64(&[8; 100]), Instant::now()).is_none(),
            "a short piece is held"
        );
        let next = pushed(&mut j, b64(&[9; 160]), Instant::now()).expect("held audio goes first, joined");
        assert_eq!(raw(&next), [vec![8u8; 100], vec![9; 160]].concat());
        assert_eq!(next.frames, 2);
    }

    #[test]
    fn a_chunk_length_changed_on_the_way_applies_to_what_is_held() {
        let mut j = joiner(0);
        j.set_chunk(Duration::from_millis(60));
        assert!(
            pushed(&mut j, b64(&[1; 160]), Instant::now()).is_none(),
            "held while joining"
        );
        j.set_chunk(Duration::ZERO);
        let both = pushed(&mut j, b64(&[2; 160]), Instant::now()).expect("the loop is back on time");
        assert_eq!(raw(&both), [[1u8; 160], [2; 160]].concat());
    }

    #[test]
    fn before_the_format_is_known_every_piece_goes_as_it_comes() {
        let mut j = ChunkJoiner::new(Duration::from_millis(60));
        let piece = b64(&[9; 10]);
        let chunk = Chunk {
            audio: CarrierPayload::Base64(piece.clone()),
            frames: 1,
            bytes: 10,
        };
        assert_eq!(pushed(&mut j, piece, Instant::now()), Some(chunk));
    }

    #[test]
    fn held_audio_is_taken_whole_at_its_deadline() {
        let t0 = Instant::now();
        let mut j = joiner(60);
        assert!(pushed(&mut j, b64(&[1; 160]), t0).is_none());
        assert!(pushed(&mut j, b64(&[2; 100]), t0 + Duration::from_millis(20)).is_none());
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
        let mut j = joiner(60);
        assert!(pushed(&mut j, b64(&[1; 160]), Instant::now()).is_none());
        assert_eq!(j.push(ByteString::from_static("!!!!"), Instant::now()), Err(NotBase64));
        let mut whole = joiner(20);
        assert_eq!(
            whole.push(ByteString::from_static("!!!!!!!!!!!!!!!!"), Instant::now()),
            Err(NotBase64),
            "checked when passed on undecoded too"
        );
        assert_eq!(raw(&j.take().expect("held")), vec![1; 160]);
    }

    #[test]
    fn raw_pieces_are_joined_with_base64_ones() {
        let mut j = joiner(40);
        assert!(j.push_raw(Bytes::from_static(&[1; 160]), Instant::now()).is_none());
        let chunk = pushed(&mut j, b64(&[2; 160]), Instant::now()).expect("a chunk");
        assert_eq!(raw(&chunk), [[1u8; 160], [2; 160]].concat());
        assert_eq!(
            raw(&j
                .push_raw(Bytes::from_static(&[3; 320]), Instant::now())
                .expect("whole")),
            vec![3; 320]
        );
    }
}
