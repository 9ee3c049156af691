//! Whether a stretch of audio is speech or silence, by its level: what the turn clock needs to see the end
//! of what the caller said, on audio the gateway already holds (no decoding beyond a table lookup).

use super::codec::{alaw_to_linear, ulaw_to_linear};
use super::format::{AudioFormat, Codec};

/// Mean square of a full-scale sample at -45 dBFS: quieter is silence. A phone line's own noise sits near
/// -55 to -65 dBFS; speech is -30 to -15.
const SPEECH_MEAN_SQUARE: f64 = 32768.0 * 32768.0 * 3.162_277_66e-5;

/// Whether `raw` (in `format`) is louder than the speech threshold. Empty audio is silence.
pub fn is_speech(format: AudioFormat, raw: &[u8]) -> bool {
    let (sum, n) = match format.codec {
        Codec::Ulaw => squares(raw.iter().map(|&b| ulaw_to_linear(b))),
        Codec::Alaw => squares(raw.iter().map(|&b| alaw_to_linear(b))),
        Codec::Pcm16 => squares(raw.chunks_exact(2).map(|s| i16::from_le_bytes([s[0], s[1]]))),
    };
    n > 0 && sum / n as f64 > SPEECH_MEAN_SQUARE
}

fn squares(samples: impl Iterator<Item = i16>) -> (f64, usize) {
    samples.fold((0.0, 0), |(sum, n), s| (sum + f64::from(s) * f64::from(s), n + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::codec::{encode_pcm16le, encode_ulaw};
    use crate::audio::signal::tone;

    fn tone_at(amplitude: i16, format: AudioFormat) -> Vec<u8> {
        let mut pcm = Vec::new();
        tone(440.0, format.rate.hz(), 0, 320, amplitude, &mut pcm);
        let mut out = Vec::new();
        match format.codec {
            Codec::Pcm16 => encode_pcm16le(&pcm, &mut out),
            _ => encode_ulaw(&pcm, &mut out),
        }
        out
    }

    #[test]
    fn speech_is_told_from_silence_and_line_noise() {
        for f in [AudioFormat::ULAW_8K, AudioFormat::PCM_16K] {
            assert!(is_speech(f, &tone_at(3000, f)), "-21 dBFS speech, {f:?}");
            assert!(!is_speech(f, &tone_at(60, f)), "-55 dBFS line noise, {f:?}");
        }
        assert!(!is_speech(AudioFormat::ULAW_8K, &[0xFF; 160]), "μ-law silence");
        assert!(!is_speech(AudioFormat::PCM_16K, &[]));
    }
}
