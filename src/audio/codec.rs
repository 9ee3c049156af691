//! Sample-level codecs for the bridge: G.711 μ-law and A-law (carrier leg) and PCM16 little-endian (agent leg).

/// μ-law byte for digital silence. Carriers pad and comfort-fill with this value, so it is the
/// natural filler when the bridge has nothing to send.
pub const ULAW_SILENCE: u8 = 0xFF;

/// G.711 adds this bias before segmenting so every segment has the same number of mantissa
/// steps; decoding must subtract it again.
const BIAS: i32 = 0x84;

/// Largest magnitude that still fits in the top segment once BIAS is added (32635 + 0x84 = 0x7FFF).
const CLIP: i32 = 32635;

const fn decode_one(b: u8) -> i16 {
    // μ-law bytes are transmitted bit-inverted so that silence is 0xFF (line idles high).
    let u = !b;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if u & 0x80 != 0 {
        (-magnitude) as i16
    } else {
        magnitude as i16
    }
}

/// A decoding table of all 256 codes, computed at compile time from a `const fn` decoder.
macro_rules! decode_table {
    ($decode:ident) => {{
        let mut table = [0i16; 256];
        let mut i = 0;
        while i < 256 {
            table[i] = $decode(i as u8);
            i += 1;
        }
        table
    }};
}

/// Decoding is on the hot path for every carrier frame, so it is a single table lookup computed
/// at compile time rather than bit twiddling per sample.
const ULAW_TABLE: [i16; 256] = decode_table!(decode_one);

/// Decodes one G.711 μ-law byte to a linear 16-bit sample.
#[inline]
pub fn ulaw_to_linear(b: u8) -> i16 {
    ULAW_TABLE[b as usize]
}

/// Encodes one linear 16-bit sample to G.711 μ-law, clipping magnitudes above 32635.
#[inline]
pub fn linear_to_ulaw(s: i16) -> u8 {
    // Widen first: negating i16::MIN would overflow in 16 bits.
    let mut pcm = i32::from(s);
    let sign: u8 = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    if pcm > CLIP {
        pcm = CLIP;
    }
    pcm += BIAS;
    // pcm is now in [0x84, 0x7FFF]; the segment is how far its top set bit sits above bit 7.
    let top_bit = 31 - pcm.leading_zeros() as i32;
    let exponent = if top_bit > 7 { top_bit - 7 } else { 0 };
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | ((exponent as u8) << 4) | (mantissa as u8))
}

/// Appends the linear samples for every μ-law byte in `src` to `out`.
pub fn decode_ulaw(src: &[u8], out: &mut Vec<i16>) {
    out.reserve(src.len());
    out.extend(src.iter().map(|&b| ulaw_to_linear(b)));
}

/// Appends one μ-law byte per sample in `src` to `out`.
pub fn encode_ulaw(src: &[i16], out: &mut Vec<u8>) {
    out.reserve(src.len());
    out.extend(src.iter().map(|&s| linear_to_ulaw(s)));
}

/// A-law bytes are sent with every other bit inverted (G.711's even-bit inversion, for line density).
const ALAW_XOR: u8 = 0x55;

const fn decode_alaw_one(b: u8) -> i16 {
    let a = b ^ ALAW_XOR;
    let segment = ((a >> 4) & 0x07) as i32;
    // The step's middle: half a step above the mantissa in segments 0 and 1, doubled per segment above.
    let mut magnitude = (((a & 0x0F) as i32) << 4) + 8;
    if segment > 0 {
        magnitude = (magnitude + 0x100) << (segment - 1);
    }
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        (-magnitude) as i16
    }
}

/// A table for the same reason as μ-law's: one lookup per sample on the media path.
const ALAW_TABLE: [i16; 256] = decode_table!(decode_alaw_one);

/// A-law byte for digital silence (positive zero).
pub const ALAW_SILENCE: u8 = 0xD5;

/// Decodes one G.711 A-law byte to a linear 16-bit sample.
#[inline]
pub fn alaw_to_linear(b: u8) -> i16 {
    ALAW_TABLE[b as usize]
}

/// Encodes one linear 16-bit sample to G.711 A-law (13-bit magnitude, 8 segments).
#[inline]
pub fn linear_to_alaw(s: i16) -> u8 {
    // A-law works on 13 bits; the sign bit is set for positive values, and negatives are offset by one so
    // that -1 and 0 land in the smallest step of each sign.
    let v = i32::from(s) >> 3;
    let (sign, magnitude) = if v >= 0 { (0x80u8, v) } else { (0u8, -v - 1) };
    let code = if magnitude >= 0x1000 {
        0x7F
    } else if magnitude < 0x20 {
        (magnitude >> 1) as u8
    } else {
        // Segment = how far the top set bit sits above bit 4.
        let segment = 27 - magnitude.leading_zeros() as i32;
        ((segment << 4) as u8) | ((magnitude >> segment) & 0x0F) as u8
    };
    (sign | code) ^ ALAW_XOR
}

/// Appends the linear samples for every A-law byte in `src` to `out`.
pub fn decode_alaw(src: &[u8], out: &mut Vec<i16>) {
    out.reserve(src.len());
    out.extend(src.iter().map(|&b| alaw_to_linear(b)));
}

/// Appends one A-law byte per sample in `src` to `out`.
pub fn encode_alaw(src: &[i16], out: &mut Vec<u8>) {
    out.reserve(src.len());
    out.extend(src.iter().map(|&s| linear_to_alaw(s)));
}

/// Appends the samples of little-endian PCM16 bytes to `out`. A trailing odd byte is ignored
/// because it cannot form a sample on its own; callers that split a stream mid-sample must carry
/// that byte themselves.
pub fn decode_pcm16le(src: &[u8], out: &mut Vec<i16>) {
    out.reserve(src.len() / 2);
    out.extend(src.chunks_exact(2).map(|pair| i16::from_le_bytes([pair[0], pair[1]])));
}

/// Appends the little-endian PCM16 bytes of `src` to `out`.
pub fn encode_pcm16le(src: &[i16], out: &mut Vec<u8>) {
    out.reserve(src.len() * 2);
    for &s in src {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_bytes_decode_to_zero() {
        assert_eq!(ulaw_to_linear(ULAW_SILENCE), 0);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        // 0x7F is "negative zero" in μ-law.
        assert!(ulaw_to_linear(0x7F).abs() <= 8);
        assert_eq!(linear_to_ulaw(0), ULAW_SILENCE);
    }

    #[test]
    fn extreme_codes_decode_to_standard_values() {
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(linear_to_ulaw(i16::MIN)), -32124);
    }

    #[test]
    fn table_matches_reference_decoder() {
        for b in 0..=255u8 {
            assert_eq!(ulaw_to_linear(b), decode_one(b), "byte {b:#04x}");
        }
    }

    #[test]
    fn decode_is_monotonic_within_each_sign() {
        // Codes 0x80..=0xFF are positive, with larger magnitude toward 0x80.
        for b in 0x80u8..0xFF {
            assert!(ulaw_to_linear(b) > ulaw_to_linear(b + 1), "byte {b:#04x}");
        }
        // Codes 0x00..=0x7F are negative, with larger magnitude toward 0x00.
        for b in 0x00u8..0x7F {
            assert!(ulaw_to_linear(b) < ulaw_to_linear(b + 1), "byte {b:#04x}");
        }
    }

    #[test]
    fn encode_of_decoded_code_is_stable() {
        for b in 0..=255u8 {
            if b == 0x7F {
                // Negative zero has no distinct linear value; it re-encodes as positive zero.
                assert_eq!(linear_to_ulaw(ulaw_to_linear(b)), 0xFF);
                continue;
            }
            assert_eq!(linear_to_ulaw(ulaw_to_linear(b)), b, "byte {b:#04x}");
        }
    }

    #[test]
    fn round_trip_error_within_quantisation_step() {
        let mut x: i32 = i32::from(i16::MIN);
        while x <= i32::from(i16::MAX) {
            let s = x as i16;
            let back = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let err = (back - x).abs();
            let bound = std::cmp::max(16, x.abs() / 16);
            assert!(err <= bound, "x={x} back={back} err={err} bound={bound}");
            // The sign must survive for anything clearly away from zero.
            if x.abs() > 16 {
                assert_eq!(back.signum(), x.signum(), "x={x} back={back}");
            }
            x += 97;
        }
    }

    #[test]
    fn ulaw_slices_append() {
        let samples: Vec<i16> = vec![0, 1000, -1000, 32767, -32768, 123];
        let mut bytes = vec![0xAAu8];
        encode_ulaw(&samples, &mut bytes);
        assert_eq!(bytes.len(), 1 + samples.len());
        assert_eq!(bytes[0], 0xAA);
        for (i, &s) in samples.iter().enumerate() {
            assert_eq!(bytes[i + 1], linear_to_ulaw(s));
        }

        let mut decoded = vec![7i16];
        decode_ulaw(&bytes[1..], &mut decoded);
        assert_eq!(decoded.len(), 1 + samples.len());
        assert_eq!(decoded[0], 7);
        for (i, &b) in bytes[1..].iter().enumerate() {
            assert_eq!(decoded[i + 1], ulaw_to_linear(b));
        }
    }

    #[test]
    fn alaw_reference_values_and_stability() {
        assert_eq!(alaw_to_linear(ALAW_SILENCE), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(linear_to_alaw(0), ALAW_SILENCE);
        assert_eq!(alaw_to_linear(0xAA), 32256, "the largest positive code");
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        // Every code decodes to a value that encodes back to it: A-law has no second zero.
        for b in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "byte {b:#04x}");
        }
    }

    #[test]
    fn alaw_round_trip_error_within_quantisation_step() {
        let mut x: i32 = i32::from(i16::MIN);
        while x <= i32::from(i16::MAX) {
            let back = i32::from(alaw_to_linear(linear_to_alaw(x as i16)));
            let bound = std::cmp::max(16, x.abs() / 16);
            assert!((back - x).abs() <= bound, "x={x} back={back}");
            x += 89;
        }
        let mut bytes = Vec::new();
        encode_alaw(&[0, 1000, -1000], &mut bytes);
        let mut back = Vec::new();
        decode_alaw(&bytes, &mut back);
        assert_eq!(back.len(), 3);
    }

    #[test]
    fn pcm16_round_trip_is_exact() {
        let samples: Vec<i16> = (-40i32..40)
            .map(|k| (k * 819) as i16)
            .chain([i16::MIN, i16::MAX, 0, -1, 1])
            .collect();
        let mut bytes = Vec::new();
        encode_pcm16le(&samples, &mut bytes);
        assert_eq!(bytes.len(), samples.len() * 2);
        let mut back = Vec::new();
        decode_pcm16le(&bytes, &mut back);
        assert_eq!(back, samples);
    }

    #[test]
    fn pcm16_is_little_endian_and_appends() {
        let mut bytes = vec![0x99u8];
        encode_pcm16le(&[0x1234, -2], &mut bytes);
        assert_eq!(bytes, vec![0x99, 0x34, 0x12, 0xFE, 0xFF]);

        let mut out = vec![5i16];
        decode_pcm16le(&[0x34, 0x12, 0xFE, 0xFF], &mut out);
        assert_eq!(out, vec![5, 0x1234, -2]);
    }

    #[test]
    fn pcm16_odd_trailing_byte_is_ignored() {
        let mut out = Vec::new();
        decode_pcm16le(&[0x01, 0x00, 0x02], &mut out);
        assert_eq!(out, vec![1]);

        out.clear();
        decode_pcm16le(&[0x7F], &mut out);
        assert!(out.is_empty());
    }
}
