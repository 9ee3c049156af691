//! Audio formats on both legs (μ-law or PCM16 LE at a rate) and their names in each protocol.

/// Sample encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 μ-law, one byte per sample.
    Ulaw,
    /// Signed 16-bit little-endian linear PCM.
    Pcm16,
}

/// An encoding at a sample rate, mono.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    pub codec: Codec,
    pub rate: u32,
}

impl AudioFormat {
    pub const ULAW_8K: AudioFormat = AudioFormat {
        codec: Codec::Ulaw,
        rate: 8000,
    };
    pub const PCM_16K: AudioFormat = AudioFormat {
        codec: Codec::Pcm16,
        rate: 16000,
    };

    /// The carrier's MIME encoding (`audio/x-mulaw`, `audio/x-l16`, …): "mulaw" anywhere means μ-law (always
    /// 8 kHz), anything else linear PCM16 at the given rate.
    pub fn from_carrier_encoding(encoding: &str, rate: u32) -> AudioFormat {
        let e = encoding.to_ascii_lowercase();
        if e.contains("mulaw") || e.contains("ulaw") || e.contains("pcmu") {
            AudioFormat::ULAW_8K
        } else {
            AudioFormat {
                codec: Codec::Pcm16,
                rate: if rate == 0 { 8000 } else { rate },
            }
        }
    }

    /// ElevenLabs' names: `ulaw_8000`, `pcm_8000`, `pcm_16000`, `pcm_22050`, `pcm_24000`, `pcm_44100`, `pcm_48000`.
    pub fn from_elevenlabs(name: &str) -> Option<AudioFormat> {
        let (codec, rate) = name.split_once('_')?;
        let rate: u32 = rate.parse().ok()?;
        match codec {
            "ulaw" if rate == 8000 => Some(AudioFormat::ULAW_8K),
            "pcm" if (8000..=48000).contains(&rate) => Some(AudioFormat {
                codec: Codec::Pcm16,
                rate,
            }),
            _ => None,
        }
    }

    /// The ElevenLabs name of this format.
    pub fn elevenlabs_name(&self) -> String {
        match self.codec {
            Codec::Ulaw => format!("ulaw_{}", self.rate),
            Codec::Pcm16 => format!("pcm_{}", self.rate),
        }
    }

    pub fn bytes_per_sample(&self) -> usize {
        match self.codec {
            Codec::Ulaw => 1,
            Codec::Pcm16 => 2,
        }
    }

    /// Bytes in `ms` milliseconds of audio, rounded down to whole samples.
    pub fn bytes_for_ms(&self, ms: u64) -> usize {
        (self.rate as u64 * ms / 1000) as usize * self.bytes_per_sample()
    }

    /// Milliseconds of audio in `bytes`.
    pub fn ms_for_bytes(&self, bytes: usize) -> u64 {
        (bytes / self.bytes_per_sample()) as u64 * 1000 / self.rate.max(1) as u64
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
        assert_eq!(AudioFormat::from_elevenlabs("ulaw_16000"), None);
        assert_eq!(AudioFormat::from_elevenlabs("mp3_44100"), None);
        assert_eq!(AudioFormat::from_elevenlabs("pcm"), None);
    }

    #[test]
    fn carrier_encodings_and_sizes() {
        assert_eq!(
            AudioFormat::from_carrier_encoding("audio/x-mulaw", 16000),
            AudioFormat::ULAW_8K
        );
        assert_eq!(
            AudioFormat::from_carrier_encoding("audio/x-l16", 16000),
            AudioFormat::PCM_16K
        );
        assert_eq!(AudioFormat::ULAW_8K.bytes_for_ms(20), 160);
        assert_eq!(AudioFormat::PCM_16K.bytes_for_ms(20), 640);
        assert_eq!(AudioFormat::PCM_16K.ms_for_bytes(640), 20);
    }
}
