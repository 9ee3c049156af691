//! Audio formats on both legs (G.711 μ-law or A-law, or PCM16 LE, at one of the rates we bridge) and their
//! names. A rate is a `SampleRate`, never a number from the wire: the resampler and every size computed
//! from a format can only see rates we support.

use crate::values::Invalid;

/// Sample encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 μ-law (PCMU), one byte per sample.
    Ulaw,
    /// G.711 A-law (PCMA), one byte per sample: Indian and European carriers use it.
    Alaw,
    /// Signed 16-bit little-endian linear PCM.
    Pcm16,
}

/// A sample rate the gateway bridges: the carrier rates (8 and 16 kHz) and every rate ElevenLabs offers.
/// Each variant's discriminant is its rate in Hz, so even an `as` cast reads the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum SampleRate {
    Hz8000 = 8000,
    Hz16000 = 16000,
    Hz22050 = 22050,
    Hz24000 = 24000,
    Hz44100 = 44100,
    Hz48000 = 48000,
}

impl SampleRate {
    pub const ALL: [SampleRate; 6] = [
        SampleRate::Hz8000,
        SampleRate::Hz16000,
        SampleRate::Hz22050,
        SampleRate::Hz24000,
        SampleRate::Hz44100,
        SampleRate::Hz48000,
    ];

    pub fn hz(self) -> u32 {
        self as u32
    }

    pub fn from_hz(hz: u64) -> Option<SampleRate> {
        Self::ALL.into_iter().find(|r| u64::from(r.hz()) == hz)
    }
}

/// An encoding at a sample rate, mono.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    pub codec: Codec,
    pub rate: SampleRate,
}

impl AudioFormat {
    pub const ULAW_8K: AudioFormat = AudioFormat {
        codec: Codec::Ulaw,
        rate: SampleRate::Hz8000,
    };
    pub const ALAW_8K: AudioFormat = AudioFormat {
        codec: Codec::Alaw,
        rate: SampleRate::Hz8000,
    };
    pub const PCM_16K: AudioFormat = AudioFormat {
        codec: Codec::Pcm16,
        rate: SampleRate::Hz16000,
    };

    /// `codec` at `hz`, when we bridge that: G.711 is 8 kHz only.
    pub fn new(field: &'static str, codec: Codec, hz: u64) -> Result<AudioFormat, Invalid> {
        let rate = SampleRate::from_hz(hz).ok_or_else(|| {
            Invalid::new(
                field,
                format!("{hz} Hz is not a rate we bridge (8000, 16000, 22050, 24000, 44100, 48000)"),
            )
        })?;
        if codec != Codec::Pcm16 && rate != SampleRate::Hz8000 {
            return Err(Invalid::new(field, format!("G.711 is 8000 Hz only, not {hz} Hz")));
        }
        Ok(AudioFormat { codec, rate })
    }

    /// ElevenLabs' names: `ulaw_8000`, `pcm_8000`, `pcm_16000`, `pcm_22050`, `pcm_24000`, `pcm_44100`,
    /// `pcm_48000` (the agent schema offers no A-law).
    pub fn from_elevenlabs(name: &str) -> Option<AudioFormat> {
        let (codec, rate) = name.split_once('_')?;
        let codec = match codec {
            "ulaw" => Codec::Ulaw,
            "pcm" => Codec::Pcm16,
            _ => return None,
        };
        AudioFormat::new("format", codec, rate.parse().ok()?).ok()
    }

    /// The name of this format in ElevenLabs' style (`alaw_8000` for a carrier's A-law).
    pub fn elevenlabs_name(&self) -> String {
        let codec = match self.codec {
            Codec::Ulaw => "ulaw",
            Codec::Alaw => "alaw",
            Codec::Pcm16 => "pcm",
        };
        format!("{codec}_{}", self.rate.hz())
    }

    pub fn bytes_per_sample(&self) -> usize {
        match self.codec {
            Codec::Ulaw | Codec::Alaw => 1,
            Codec::Pcm16 => 2,
        }
    }

    /// Bytes in `ms` milliseconds of audio, rounded down to whole samples.
    pub fn bytes_for_ms(&self, ms: u64) -> usize {
        (u64::from(self.rate.hz()) * ms / 1000) as usize * self.bytes_per_sample()
    }

    /// Milliseconds of audio in `bytes`.
    pub fn ms_for_bytes(&self, bytes: usize) -> u64 {
        (bytes / self.bytes_per_sample()) as u64 * 1000 / u64::from(self.rate.hz())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in [
            "ulaw_8000",
            "pcm_8000",
            "pcm_16000",
            "pcm_22050",
            "pcm_24000",
            "pcm_44100",
            "pcm_48000",
        ] {
            let f = AudioFormat::from_elevenlabs(n).expect(n);
            assert_eq!(f.elevenlabs_name(), n);
        }
        for bad in [
            "ulaw_16000",
            "mp3_44100",
            "pcm",
            "pcm_4294967295",
            "alaw_8000",
            "pcm_-1",
        ] {
            assert_eq!(AudioFormat::from_elevenlabs(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_rates_we_bridge_make_a_format() {
        assert_eq!(AudioFormat::new("r", Codec::Pcm16, 16000), Ok(AudioFormat::PCM_16K));
        assert_eq!(AudioFormat::new("r", Codec::Alaw, 8000), Ok(AudioFormat::ALAW_8K));
        for (codec, hz) in [
            (Codec::Pcm16, 4294967295),
            (Codec::Pcm16, 0),
            (Codec::Pcm16, 11025),
            (Codec::Ulaw, 16000),
        ] {
            let e = AudioFormat::new("start.mediaFormat.sampleRate", codec, hz).expect_err("refused");
            assert_eq!(e.field, "start.mediaFormat.sampleRate");
        }
        assert_eq!(AudioFormat::ULAW_8K.bytes_for_ms(20), 160);
        assert_eq!(AudioFormat::PCM_16K.bytes_for_ms(20), 640);
        assert_eq!(AudioFormat::PCM_16K.ms_for_bytes(640), 20);
        assert_eq!(AudioFormat::ALAW_8K.elevenlabs_name(), "alaw_8000");
    }
}
