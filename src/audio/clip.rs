//! Audio the gateway plays on its own — the hold clip while the agent is redialled, or silence — in the
//! carrier's format. The clip itself is read (and checked) with the configuration.

use super::format::{AudioFormat, Codec, SampleRate};
use super::transcode::Transcoder;
use crate::config::HoldClip;

/// `clip` in `to`, ready to queue (empty if its rate is not one we bridge, which the configuration
/// refuses).
pub fn converted(clip: &HoldClip, to: AudioFormat) -> Vec<u8> {
    let Some(rate) = SampleRate::from_hz(u64::from(clip.sample_rate)) else {
        return Vec::new();
    };
    let from = AudioFormat {
        codec: Codec::Pcm16,
        rate,
    };
    if from == to {
        return clip.pcm.clone();
    }
    let mut out = Vec::new();
    Transcoder::new(from, to).convert(&clip.pcm, &mut out);
    out
}

/// `ms` of silence in `format`.
pub fn silence(format: AudioFormat, ms: u64) -> Vec<u8> {
    let byte = match format.codec {
        Codec::Ulaw => 0xFF,
        Codec::Alaw => 0xD5,
        Codec::Pcm16 => 0,
    };
    vec![byte; format.bytes_for_ms(ms)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_is_converted_to_the_carriers_format_and_silence_is_silent() {
        let clip = HoldClip {
            sample_rate: 16000,
            pcm: [1000i16.to_le_bytes(); 1600].concat(),
        };
        assert_eq!(
            converted(&clip, AudioFormat::PCM_16K),
            clip.pcm,
            "same format: as it is"
        );
        assert_eq!(
            converted(&clip, AudioFormat::ULAW_8K).len(),
            800,
            "100 ms of μ-law at 8 kHz"
        );
        assert_eq!(silence(AudioFormat::ULAW_8K, 20), vec![0xFF; 160]);
        assert_eq!(silence(AudioFormat::PCM_16K, 10), vec![0; 320]);
    }

    #[test]
    fn the_configurations_clip_rates_are_the_rates_we_bridge() {
        let bridged: Vec<u32> = SampleRate::ALL.iter().map(|r| r.hz()).collect();
        assert_eq!(crate::config::HOLD_CLIP_RATES.to_vec(), bridged);
    }
}
