//! One direction of a call's audio conversion: decode once, resample, encode once, with buffers kept per
//! call. Passthrough (equal formats) is decided by the caller, which then never builds a `Transcoder`.

use super::codec::{decode_alaw, decode_pcm16le, decode_ulaw, encode_alaw, encode_pcm16le, encode_ulaw};
use super::format::{AudioFormat, Codec};
use super::resample::Resampler;

/// Converts raw audio bytes from one format to another, streaming across calls.
pub struct Transcoder {
    from: AudioFormat,
    to: AudioFormat,
    resampler: Resampler,
    samples: Vec<i16>,
    resampled: Vec<i16>,
    /// A PCM16 byte left over from an odd-sized chunk, joined to the next chunk.
    carry: Option<u8>,
}

impl Transcoder {
    pub fn new(from: AudioFormat, to: AudioFormat) -> Self {
        Transcoder {
            from,
            to,
            resampler: Resampler::new(from.rate, to.rate),
            samples: Vec::with_capacity(1024),
            resampled: Vec::with_capacity(2048),
            carry: None,
        }
    }

    pub fn from(&self) -> AudioFormat {
        self.from
    }

    pub fn to(&self) -> AudioFormat {
        self.to
    }

    /// Appends the converted form of `input` to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.samples.clear();
        match self.from.codec {
            Codec::Ulaw => decode_ulaw(input, &mut self.samples),
            Codec::Alaw => decode_alaw(input, &mut self.samples),
            Codec::Pcm16 => self.decode_pcm_with_carry(input),
        }
        let samples: &[i16] = if self.resampler.is_identity() {
            &self.samples
        } else {
            self.resampled.clear();
            self.resampler.process(&self.samples, &mut self.resampled);
            &self.resampled
        };
        match self.to.codec {
            Codec::Ulaw => encode_ulaw(samples, out),
            Codec::Alaw => encode_alaw(samples, out),
            Codec::Pcm16 => encode_pcm16le(samples, out),
        }
    }

    fn decode_pcm_with_carry(&mut self, input: &[u8]) {
        let mut rest = input;
        if let (Some(lo), Some(&hi)) = (self.carry, rest.first()) {
            self.samples.push(i16::from_le_bytes([lo, hi]));
            rest = &rest[1..];
            self.carry = None;
        }
        decode_pcm16le(rest, &mut self.samples);
        if rest.len() % 2 == 1 {
            self.carry = rest.last().copied();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::signal::{dominant_frequency, tone};

    #[test]
    fn ulaw8k_to_pcm16k_and_back_keeps_pitch_and_length() {
        let mut pcm = Vec::new();
        tone(1000.0, 8000, 0, 8000, 8000, &mut pcm);
        let mut ulaw = Vec::new();
        encode_ulaw(&pcm, &mut ulaw);
        let mut up = Transcoder::new(AudioFormat::ULAW_8K, AudioFormat::PCM_16K);
        let mut down = Transcoder::new(AudioFormat::PCM_16K, AudioFormat::ULAW_8K);
        let (mut wide, mut back) = (Vec::new(), Vec::new());
        for chunk in ulaw.chunks(160) {
            up.convert(chunk, &mut wide);
        }
        // Odd-sized chunks exercise the PCM byte carry.
        for chunk in wide.chunks(333) {
            down.convert(chunk, &mut back);
        }
        assert!((wide.len() as i64 - 32000).abs() <= 8, "{}", wide.len());
        assert!((back.len() as i64 - 8000).abs() <= 8, "{}", back.len());
        let mut decoded = Vec::new();
        decode_ulaw(&back, &mut decoded);
        let f = dominant_frequency(&decoded[800..7200], 8000);
        assert!((f - 1000.0).abs() < 20.0, "{f}");
    }

    #[test]
    fn alaw_to_ulaw_keeps_pitch_and_length() {
        let mut pcm = Vec::new();
        tone(1000.0, 8000, 0, 8000, 8000, &mut pcm);
        let mut alaw = Vec::new();
        crate::audio::codec::encode_alaw(&pcm, &mut alaw);
        let mut tc = Transcoder::new(AudioFormat::ALAW_8K, AudioFormat::ULAW_8K);
        let mut ulaw = Vec::new();
        for chunk in alaw.chunks(160) {
            tc.convert(chunk, &mut ulaw);
        }
        assert_eq!(ulaw.len(), 8000);
        let mut decoded = Vec::new();
        decode_ulaw(&ulaw, &mut decoded);
        let f = dominant_frequency(&decoded[800..7200], 8000);
        assert!((f - 1000.0).abs() < 20.0, "{f}");
    }
}
