//! The gateway's own recording of each call (docs/recording.md): both sides as one stereo WAV, caller left
//! and agent right, on the call's own clock (`stereo`), written off the call's thread (`writer`) as files
//! that always play (`wav`), kept for `recording.keep_days` (`keep`). A call holds its `CallRecording`; what it costs the call is a little arithmetic
//! per frame and at most `stereo::AHEAD` of samples plus `writer::IN_FLIGHT_BYTES` of memory.

pub mod keep;
pub mod stereo;
pub mod wav;
pub mod writer;

use std::time::Instant;
use stereo::{Channel, Stereo};
use writer::{Recording, RecordingEnd, RecordingOf};

pub use writer::Recorder;

/// Samples are handed to the writer this many bytes at a time (about a quarter second at 8 kHz).
const WRITE_BYTES: usize = 8 * 1024;

/// One call attempt's recording, on the call's side.
pub struct CallRecording {
    of: RecordingOf,
    rate: u32,
    stereo: Stereo,
    recording: Option<Recording>,
    out: Vec<u8>,
    samples: Vec<i16>,
}

impl CallRecording {
    /// Starts recording `of` at `rate`, its clock starting `now`.
    pub fn start(recorder: &Recorder, of: RecordingOf, rate: u32, now: Instant) -> CallRecording {
        CallRecording {
            recording: Some(recorder.open(&of, rate)),
            of,
            rate,
            stereo: Stereo::new(rate, now),
            out: Vec::with_capacity(WRITE_BYTES + 1024),
            samples: Vec::new(),
        }
    }

    /// A frame of one side, PCM16 LE, heard at `now`.
    pub fn push(&mut self, channel: Channel, pcm: &[u8], now: Instant) {
        self.samples.clear();
        crate::audio::codec::decode_pcm16le(pcm, &mut self.samples);
        self.stereo.push(channel, &self.samples, now);
        self.stereo.take_ready(now, &mut self.out);
        if self.out.len() >= WRITE_BYTES {
            self.write();
        }
    }

    /// While paused, both sides are recorded as silence.
    pub fn set_paused(&mut self, paused: bool) {
        self.stereo.set_paused(paused);
    }

    fn write(&mut self) {
        if let Some(recording) = &self.recording {
            recording.write(std::mem::replace(&mut self.out, Vec::with_capacity(WRITE_BYTES + 1024)));
        }
    }
}

impl Drop for CallRecording {
    /// The call is over: what is held is written and the file closed.
    fn drop(&mut self) {
        self.stereo.take_all(&mut self.out);
        self.write();
        if let Some(recording) = self.recording.take() {
            recording.close(RecordingEnd {
                of: self.of.clone(),
                rate: self.rate,
                dropped_samples: self.stereo.dropped,
                paused_samples: self.stereo.paused_samples,
            });
        }
    }
}
