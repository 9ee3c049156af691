//! Streaming mono i16 sample-rate conversion between carrier and agent rates (8 kHz ↔ 16/22.05/24/44.1/48 kHz).
//! It takes `SampleRate`s only, so no rate from the wire can size its buffers.

use super::format::SampleRate;
use std::f64::consts::PI;

/// Tap count for a 2:1 decimation; enough for a clean 16 kHz → 8 kHz with a Hamming window.
const BASE_TAPS: usize = 31;
/// Upper bound so a pathological ratio cannot make per-sample cost explode.
const MAX_TAPS: usize = 127;
/// Anti-alias cutoff as a fraction of the output rate: just under Nyquist (0.5) so the
/// transition band is mostly spent below it rather than folding back.
const CUTOFF_FRACTION: f64 = 0.45;

/// Streaming linear-interpolation resampler with an anti-alias FIR in front when downsampling.
///
/// The read position is kept as an exact rational (`ipos + frac / step_den` input samples), so
/// there is no floating-point drift over long calls and the output does not depend on how the
/// input was split into chunks.
#[derive(Debug, Clone)]
pub struct Resampler {
    from_hz: u32,
    to_hz: u32,
    identity: bool,
    /// Input samples advanced per output sample is `step_num / step_den` (= from/to, reduced).
    step_num: u64,
    step_den: u64,
    /// Integer part of the read position, indexing `work` (whose slot 0 is `prev`).
    ipos: usize,
    /// Fractional part of the read position, in units of `1 / step_den`; always < `step_den`.
    frac: u64,
    /// Last (filtered) input sample of the previous call, so interpolation spans chunk edges.
    prev: f32,
    /// Low-pass FIR coefficients; empty when not downsampling.
    taps: Vec<f32>,
    /// FIR history (`taps.len() - 1` samples) followed by the current chunk.
    fir_buf: Vec<f32>,
    /// `prev` followed by the current chunk after filtering; reused to avoid per-call allocation.
    work: Vec<f32>,
}

impl Resampler {
    /// Creates a resampler from one rate to another.
    pub fn new(from: SampleRate, to: SampleRate) -> Resampler {
        let (from_hz, to_hz) = (from.hz(), to.hz());
        let identity = from == to;
        let (step_num, step_den) = if identity {
            (1, 1)
        } else {
            let g = gcd(u64::from(from_hz), u64::from(to_hz));
            (u64::from(from_hz) / g, u64::from(to_hz) / g)
        };
        let taps = if !identity && to_hz < from_hz {
            let ratio = f64::from(from_hz) / f64::from(to_hz);
            let cutoff = CUTOFF_FRACTION / ratio;
            design_lowpass(cutoff, tap_count(ratio))
        } else {
            Vec::new()
        };
        let fir_buf = vec![0.0; taps.len().saturating_sub(1)];
        Resampler {
            from_hz,
            to_hz,
            identity,
            step_num,
            step_den,
            ipos: 0,
            frac: 0,
            // Silence before the stream starts; this also makes the total output length come out
            // at exactly ceil(n * to / from) instead of lagging by one input sample's worth.
            prev: 0.0,
            taps,
            fir_buf,
            work: Vec::new(),
        }
    }

    /// True when `process` simply copies its input.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Input rate this resampler was built for.
    pub fn from_hz(&self) -> u32 {
        self.from_hz
    }

    /// Output rate this resampler was built for.
    pub fn to_hz(&self) -> u32 {
        self.to_hz
    }

    /// Resamples `input` (the next chunk of the stream) and appends the result to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if input.is_empty() {
            return;
        }
        if self.identity {
            out.extend_from_slice(input);
            return;
        }

        let n = input.len();
        self.work.clear();
        self.work.push(self.prev);
        if self.taps.is_empty() {
            self.work.extend(input.iter().map(|&s| f32::from(s)));
        } else {
            let t = self.taps.len();
            self.fir_buf.extend(input.iter().map(|&s| f32::from(s)));
            for i in 0..n {
                let window = &self.fir_buf[i..i + t];
                // Sequential sum in a fixed order, so chunked and whole-buffer runs are bit-identical.
                let acc: f32 = self.taps.iter().zip(window).map(|(h, x)| h * x).sum();
                self.work.push(acc);
            }
            // Keep only the last taps-1 samples as history for the next chunk.
            self.fir_buf.drain(..n);
        }

        let estimate = (n as u64).saturating_mul(self.step_den) / self.step_num + 2;
        out.reserve(usize::try_from(estimate).unwrap_or(0));

        // work[0] is the previous chunk's last sample, work[1..=n] this chunk; an output at
        // position p needs work[floor(p)] and work[floor(p) + 1].
        while self.ipos < n {
            let a = self.work[self.ipos];
            let b = self.work[self.ipos + 1];
            let t = self.frac as f32 / self.step_den as f32;
            out.push(to_i16(a + (b - a) * t));
            self.frac += self.step_num;
            self.ipos += (self.frac / self.step_den) as usize;
            self.frac %= self.step_den;
        }
        // Re-base so that work[n] becomes slot 0 of the next call. When downsampling the
        // position may already be past it; the remainder carries over.
        self.ipos -= n;
        self.prev = self.work[n];
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a.max(1)
}

/// Scales taps with the decimation ratio so the transition band stays roughly the same width in
/// output-rate terms (48 kHz → 8 kHz needs ~6x the taps of 16 kHz → 8 kHz for the same slope).
fn tap_count(ratio: f64) -> usize {
    let want = (15.5 * ratio).ceil();
    let want = if want.is_finite() && want > 0.0 {
        want as usize
    } else {
        BASE_TAPS
    };
    // Odd length keeps the filter symmetric around a whole sample (integer group delay).
    want.clamp(BASE_TAPS, MAX_TAPS) | 1
}

/// Hamming-windowed sinc low-pass. `cutoff` is in cycles per input sample (0 < cutoff < 0.5).
/// Normalised to unity DC gain so levels do not shift with the rate pair.
fn design_lowpass(cutoff: f64, n_taps: usize) -> Vec<f32> {
    let n_taps = n_taps.max(1);
    let m = (n_taps - 1) as f64 / 2.0;
    let denom = (n_taps.max(2) - 1) as f64;
    let mut h: Vec<f64> = (0..n_taps)
        .map(|i| {
            let x = i as f64 - m;
            let sinc = if x == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * PI * cutoff * x).sin() / (PI * x)
            };
            let window = 0.54 - 0.46 * (2.0 * PI * i as f64 / denom).cos();
            sinc * window
        })
        .collect();
    let sum: f64 = h.iter().sum();
    if sum.abs() > f64::EPSILON {
        for v in &mut h {
            *v /= sum;
        }
    }
    h.into_iter().map(|v| v as f32).collect()
}

#[inline]
fn to_i16(v: f32) -> i16 {
    // `as` saturates and maps NaN to 0; the clamp documents intent.
    v.round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::super::signal::{dominant_frequency, rms, tone};
    use super::*;

    fn rate(hz: u32) -> SampleRate {
        SampleRate::from_hz(u64::from(hz)).expect("a rate we bridge")
    }

    fn resampler(from: u32, to: u32) -> Resampler {
        Resampler::new(rate(from), rate(to))
    }

    fn run_chunked(r: &mut Resampler, input: &[i16], chunk: usize) -> Vec<i16> {
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            r.process(c, &mut out);
        }
        out
    }

    fn middle(s: &[i16]) -> &[i16] {
        &s[s.len() / 8..s.len() * 7 / 8]
    }

    fn db(ratio: f64) -> f64 {
        20.0 * ratio.log10()
    }

    #[test]
    fn identity_copies_input() {
        let mut r = resampler(8000, 8000);
        assert!(r.is_identity());
        let input: Vec<i16> = (0..500).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        let mut out = vec![1i16];
        r.process(&input, &mut out);
        assert_eq!(out[0], 1);
        assert_eq!(&out[1..], &input[..]);
        assert!(!resampler(8000, 16000).is_identity());
    }

    #[test]
    fn round_trip_8k_16k_8k_keeps_length_and_frequency() {
        let mut sig = Vec::new();
        tone(1000.0, 8000, 0, 8000, 10000, &mut sig);

        let mut up = resampler(8000, 16000);
        let mid = run_chunked(&mut up, &sig, 160);
        assert!((mid.len() as i64 - 16000).abs() <= 4, "len {}", mid.len());
        let f_mid = dominant_frequency(middle(&mid), 16000);
        assert!((f_mid - 1000.0).abs() <= 20.0, "16k freq {f_mid}");

        let mut down = resampler(16000, 8000);
        let back = run_chunked(&mut down, &mid, 320);
        assert!((back.len() as i64 - 8000).abs() <= 4, "len {}", back.len());
        let f_back = dominant_frequency(middle(&back), 8000);
        assert!((f_back - 1000.0).abs() <= 20.0, "8k freq {f_back}");

        // Level should survive too (linear interpolation costs ~0.45 dB at 1 kHz).
        let loss = db(rms(middle(&sig)) / rms(middle(&back)));
        assert!(loss.abs() < 1.5, "round trip loss {loss} dB");
    }

    #[test]
    fn downsample_keeps_3500_hz_tone() {
        let mut sig = Vec::new();
        tone(3500.0, 16000, 0, 16000, 10000, &mut sig);
        let mut r = resampler(16000, 8000);
        let out = run_chunked(&mut r, &sig, 320);
        assert!((out.len() as i64 - 8000).abs() <= 2);
        let f = dominant_frequency(middle(&out), 8000);
        assert!((f - 3500.0).abs() <= 70.0, "freq {f}");
        // Near the cutoff, so some loss is expected, but it must not be gone.
        assert!(rms(middle(&out)) > 0.25 * rms(&sig), "rms {}", rms(middle(&out)));
    }

    #[test]
    fn downsample_attenuates_6000_hz_alias() {
        let mut sig = Vec::new();
        tone(6000.0, 16000, 0, 16000, 10000, &mut sig);
        let mut r = resampler(16000, 8000);
        let out = run_chunked(&mut r, &sig, 320);
        let attenuation = db(rms(&sig) / rms(middle(&out)).max(1e-9));
        assert!(attenuation >= 10.0, "only {attenuation} dB");
    }

    #[test]
    fn downsample_passband_has_unity_gain() {
        for &(from, to) in &[(16000u32, 8000u32), (48000, 8000), (44100, 8000), (24000, 16000)] {
            let mut sig = Vec::new();
            tone(500.0, from, 0, from as usize, 10000, &mut sig);
            let mut r = resampler(from, to);
            let out = run_chunked(&mut r, &sig, (from / 50) as usize);
            let gain = db(rms(middle(&out)) / rms(middle(&sig)));
            assert!(gain.abs() < 0.5, "{from}->{to}: gain {gain} dB");
            let f = dominant_frequency(middle(&out), to);
            assert!((f - 500.0).abs() <= 5.0, "{from}->{to}: freq {f}");
        }
    }

    #[test]
    fn output_length_tracks_rate_ratio() {
        let pairs: [(u32, u32); 14] = [
            (8000, 16000),
            (16000, 8000),
            (8000, 22050),
            (22050, 8000),
            (8000, 24000),
            (24000, 8000),
            (8000, 44100),
            (44100, 8000),
            (8000, 48000),
            (48000, 8000),
            (16000, 48000),
            (48000, 16000),
            (16000, 22050),
            (44100, 48000),
        ];
        for &(from, to) in &pairs {
            let n = from as usize * 3;
            let mut sig = Vec::new();
            tone(440.0, from, 0, n, 8000, &mut sig);
            let mut r = resampler(from, to);
            let out = run_chunked(&mut r, &sig, (from / 50) as usize);
            let expected = n as i64 * i64::from(to) / i64::from(from);
            assert!(
                (out.len() as i64 - expected).abs() <= 2,
                "{from}->{to}: got {} expected {expected}",
                out.len()
            );
        }
    }

    #[test]
    fn chunked_matches_whole_buffer() {
        let chunk_sizes = [1usize, 7, 160, 33, 320, 2, 999, 64];
        for &(from, to) in &[
            (8000u32, 16000u32),
            (16000, 8000),
            (8000, 44100),
            (44100, 8000),
            (48000, 8000),
            (22050, 16000),
            (8000, 24000),
        ] {
            let mut sig = Vec::new();
            tone(700.0, from, 0, from as usize / 2, 9000, &mut sig);
            tone(1900.0, from, 0, from as usize / 2, 5000, &mut sig);

            let mut whole_r = resampler(from, to);
            let mut whole = Vec::new();
            whole_r.process(&sig, &mut whole);

            let mut chunk_r = resampler(from, to);
            let mut chunked = Vec::new();
            let mut pos = 0;
            let mut k = 0;
            while pos < sig.len() {
                let len = chunk_sizes[k % chunk_sizes.len()].min(sig.len() - pos);
                chunk_r.process(&sig[pos..pos + len], &mut chunked);
                pos += len;
                k += 1;
            }

            assert_eq!(whole.len(), chunked.len(), "{from}->{to}");
            for (i, (a, b)) in whole.iter().zip(&chunked).enumerate().skip(64) {
                assert!(
                    (i32::from(*a) - i32::from(*b)).abs() <= 1,
                    "{from}->{to} sample {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn chunk_boundaries_do_not_click() {
        // A smooth low tone must stay smooth: the biggest step between neighbouring output samples
        // is bounded by the tone's own slope, whatever the chunking.
        let mut sig = Vec::new();
        tone(200.0, 8000, 0, 8000, 20000, &mut sig);
        let mut r = resampler(8000, 48000);
        let out = run_chunked(&mut r, &sig, 160);
        let max_step = 2.0 * std::f64::consts::PI * 200.0 / 48000.0 * 20000.0;
        for w in out.windows(2).skip(48) {
            let step = (i32::from(w[1]) - i32::from(w[0])).abs() as f64;
            assert!(step <= max_step * 1.2 + 2.0, "step {step}");
        }
    }

    #[test]
    fn full_scale_input_is_clamped_not_wrapped() {
        // A full-scale square wave makes the FIR overshoot slightly. If the result wrapped instead
        // of clamping, overshooting samples would flip sign and add spurious zero crossings.
        let sig: Vec<i16> = (0..4000)
            .map(|i| if (i / 20) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let mut r = resampler(16000, 8000);
        let mut out = Vec::new();
        r.process(&sig, &mut out);
        let sign_changes = |s: &[i16]| s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        let expected = sign_changes(&sig) as i64;
        let got = sign_changes(&out) as i64;
        assert!(
            // Gibbs ringing near each edge may add a few crossings; wrapping would add hundreds.
            (got - expected).abs() <= 16,
            "got {got} sign changes, expected {expected}"
        );
        assert!(out.iter().any(|&s| s > 30000));
        assert!(out.iter().any(|&s| s < -30000));
    }
}
