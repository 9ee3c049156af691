//! Synthetic test signals (tones, speech-like audio) and simple measurements (pitch, RMS) for the carrier simulator and tests.

use std::f64::consts::PI;

/// Appends `n` samples of a sine at `freq_hz`, continuing the phase from absolute sample index
/// `start_sample`, so frames generated one after another join without a discontinuity.
pub fn tone(freq_hz: f32, rate_hz: u32, start_sample: u64, n: usize, amplitude: i16, out: &mut Vec<i16>) {
    out.reserve(n);
    if rate_hz == 0 {
        out.extend(std::iter::repeat_n(0i16, n));
        return;
    }
    let cycles_per_sample = f64::from(freq_hz) / f64::from(rate_hz);
    let amp = f64::from(amplitude);
    for i in 0..n {
        let k = start_sample.wrapping_add(i as u64);
        // Phase is derived from the absolute index rather than accumulated, so it cannot drift
        // and any frame split reproduces the same samples bit for bit; `fract` keeps the sine
        // argument small for precision on long calls.
        let cycles = (k as f64 * cycles_per_sample).fract();
        let v = amp * (2.0 * PI * cycles).sin();
        out.push(v.round().clamp(-32768.0, 32767.0) as i16);
    }
}

/// Harmonics above this many add cost without making the simulator more realistic.
const MAX_HARMONICS: usize = 16;
/// Recompute formant weights this often (in samples) instead of every sample; pitch moves slowly.
const WEIGHT_INTERVAL: u32 = 32;
/// Envelope level in the gaps between syllables: quiet but not digital zero, like a real line.
const GAP_LEVEL: f64 = 0.02;
/// Peak output scale; leaves headroom so harmonic peaks plus noise stay well inside i16.
const FULL_SCALE: f64 = 16000.0;

/// Cheap deterministic speech-like generator: a harmonic (glottal-pulse-like) source with a
/// pitch glide between 100 and 220 Hz, two formant-like resonances per syllable, a little
/// aspiration noise, and a syllable envelope of roughly 200 ms on / 80 ms near-silence.
///
/// Every parameter evolves per sample, so the output does not depend on the frame sizes asked
/// for, only on the seed and the number of samples produced so far.
#[derive(Debug, Clone)]
pub struct SpeechLike {
    rate: f64,
    rng: u64,
    /// Glottal phase in cycles, kept in [0, 1).
    phase: f64,
    voiced: bool,
    seg_len: u64,
    seg_left: u64,
    pitch_start: f64,
    pitch_end: f64,
    gain: f64,
    f1: f64,
    f2: f64,
    env: f64,
    env_alpha: f64,
    weights: [f64; MAX_HARMONICS],
    n_harm: usize,
    weight_norm: f64,
    until_weights: u32,
}

impl SpeechLike {
    /// Creates a generator at `rate_hz` (0 is treated as 8000) whose output depends only on `seed`.
    pub fn new(rate_hz: u32, seed: u64) -> Self {
        let rate = if rate_hz == 0 { 8000.0 } else { f64::from(rate_hz) };
        // splitmix64 spreads nearby seeds (0, 1, 2...) into unrelated xorshift states, and the
        // fallback keeps xorshift away from its all-zero fixed point.
        let mut rng = splitmix64(seed);
        if rng == 0 {
            rng = 0x9E37_79B9_7F4A_7C15;
        }
        let mut s = SpeechLike {
            rate,
            rng,
            phase: 0.0,
            voiced: false,
            seg_len: 1,
            seg_left: 0,
            pitch_start: 0.0,
            pitch_end: 0.0,
            gain: 0.0,
            f1: 500.0,
            f2: 1500.0,
            env: 0.0,
            // ~8 ms time constant: fast enough for syllable onsets, slow enough not to click.
            env_alpha: 1.0 - (-1.0 / (0.008 * rate)).exp(),
            weights: [0.0; MAX_HARMONICS],
            n_harm: 0,
            weight_norm: 1.0,
            until_weights: 0,
        };
        let p = 100.0 + 120.0 * s.next_unit();
        s.pitch_start = p;
        s.pitch_end = p;
        s
    }

    /// Appends the next `n` samples of the signal to `out`.
    pub fn next_frame(&mut self, n: usize, out: &mut Vec<i16>) {
        out.reserve(n);
        for _ in 0..n {
            let v = self.next_sample();
            out.push(v.round().clamp(-32768.0, 32767.0) as i16);
        }
    }

    fn next_sample(&mut self) -> f64 {
        if self.seg_left == 0 {
            self.start_segment();
        }
        let progress = (self.seg_len - self.seg_left) as f64 / self.seg_len as f64;
        let f0 = self.pitch_start + (self.pitch_end - self.pitch_start) * progress;
        if self.until_weights == 0 {
            self.update_weights(f0);
            self.until_weights = WEIGHT_INTERVAL;
        }
        self.until_weights -= 1;

        let target = if self.voiced { self.gain } else { GAP_LEVEL };
        self.env += (target - self.env) * self.env_alpha;

        self.phase += f0 / self.rate;
        self.phase -= self.phase.floor();

        // sin(h·θ) for all harmonics from one sin/cos via the Chebyshev recurrence
        // sin((h+1)θ) = 2cosθ·sin(hθ) − sin((h−1)θ); all harmonics start in phase, which gives
        // the peaky, pulse-like waveform of a glottal source.
        let theta = 2.0 * PI * self.phase;
        let two_cos = 2.0 * theta.cos();
        let mut s_prev = 0.0;
        let mut s_cur = theta.sin();
        let mut harmonic_sum = 0.0;
        for &w in &self.weights[..self.n_harm] {
            harmonic_sum += w * s_cur;
            let s_next = two_cos * s_cur - s_prev;
            s_prev = s_cur;
            s_cur = s_next;
        }
        let voiced_part = harmonic_sum / self.weight_norm;
        let noise = (self.next_unit() - 0.5) * 0.16;

        self.seg_left -= 1;
        FULL_SCALE * self.env * (0.9 * voiced_part + noise)
    }

    fn start_segment(&mut self) {
        self.voiced = !self.voiced;
        let seconds = if self.voiced {
            // A new syllable: new vowel colour, level and pitch target, gliding from where the
            // previous syllable ended so intonation is continuous.
            self.pitch_start = self.pitch_end;
            self.pitch_end = 100.0 + 120.0 * self.next_unit();
            self.gain = 0.6 + 0.4 * self.next_unit();
            self.f1 = 300.0 + 500.0 * self.next_unit();
            self.f2 = 900.0 + 1300.0 * self.next_unit();
            0.16 + 0.08 * self.next_unit()
        } else {
            self.pitch_start = self.pitch_end;
            0.06 + 0.04 * self.next_unit()
        };
        let len = (seconds * self.rate).round();
        self.seg_len = if len >= 1.0 { len as u64 } else { 1 };
        self.seg_left = self.seg_len;
    }

    fn update_weights(&mut self, f0: f64) {
        // Keep harmonics below telephone band edge and safely below Nyquist at any rate.
        let limit = (0.45 * self.rate).min(3800.0);
        let mut n = 0;
        let mut norm = 0.0;
        for h in 1..=MAX_HARMONICS {
            let f = f0 * h as f64;
            if f > limit {
                break;
            }
            // 1/h is the source's spectral tilt; the resonances shape it into a vowel.
            let w = (0.3 + 2.0 * resonance(f, self.f1, 120.0) + 1.2 * resonance(f, self.f2, 160.0)) / h as f64;
            self.weights[h - 1] = w;
            norm += w;
            n = h;
        }
        self.n_harm = n;
        // Dividing by the weight sum bounds |voiced_part| by 1 even when all harmonics peak together.
        self.weight_norm = if norm > 0.0 { norm } else { 1.0 };
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn resonance(f: f64, centre: f64, bandwidth: f64) -> f64 {
    let d = (f - centre) / bandwidth;
    1.0 / (1.0 + d * d)
}

/// Estimates the frequency of a mostly-pure tone from its zero crossings, locating each crossing
/// by linear interpolation between the samples either side. Returns 0.0 when there are fewer
/// than two crossings (or the crossings coincide), since no period can be measured.
pub fn dominant_frequency(samples: &[i16], rate_hz: u32) -> f32 {
    let mut first: Option<f64> = None;
    let mut last = 0.0f64;
    let mut count = 0usize;
    for (i, w) in samples.windows(2).enumerate() {
        let a = f64::from(w[0]);
        let b = f64::from(w[1]);
        // Zero counts as positive so a sample landing exactly on zero is one crossing, not two.
        if (a < 0.0) != (b < 0.0) {
            // Signs differ, so a != b and the division is safe.
            let t = i as f64 + a / (a - b);
            if first.is_none() {
                first = Some(t);
            }
            last = t;
            count += 1;
        }
    }
    let Some(first) = first else {
        return 0.0;
    };
    if count < 2 || last <= first {
        return 0.0;
    }
    // Consecutive crossings are half a period apart.
    let half_periods = (count - 1) as f64;
    (half_periods / (2.0 * (last - first)) * f64::from(rate_hz)) as f32
}

/// Root-mean-square level of `samples` in linear sample units (0.0 for an empty slice).
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum_sq: f64 = samples
        .iter()
        .map(|&s| {
            let v = f64::from(s);
            v * v
        })
        .sum();
    (sum_sq / samples.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_measures_its_frequency() {
        let mut s = Vec::new();
        tone(1000.0, 8000, 0, 8000, 10000, &mut s);
        assert_eq!(s.len(), 8000);
        let f = dominant_frequency(&s, 8000);
        assert!((f - 1000.0).abs() <= 5.0, "measured {f}");

        for &(freq, rate) in &[(440.0f32, 8000u32), (440.0, 16000), (3000.0, 8000), (123.4, 48000)] {
            let mut s = Vec::new();
            tone(freq, rate, 0, rate as usize, 8000, &mut s);
            let f = dominant_frequency(&s, rate);
            assert!((f - freq).abs() <= freq * 0.005, "{freq} Hz @ {rate}: measured {f}");
        }
    }

    #[test]
    fn tone_has_requested_amplitude() {
        let mut s = Vec::new();
        tone(1000.0, 8000, 0, 8000, 10000, &mut s);
        let peak = s.iter().map(|&v| i32::from(v).abs()).max().unwrap_or(0);
        assert_eq!(peak, 10000);
        let expected_rms = 10000.0 / 2f64.sqrt();
        assert!((rms(&s) - expected_rms).abs() < 5.0, "rms {}", rms(&s));
    }

    #[test]
    fn tone_frames_join_into_one_tone() {
        let mut whole = Vec::new();
        tone(437.0, 8000, 0, 1600, 12000, &mut whole);
        let mut framed = Vec::new();
        let mut start = 0u64;
        for _ in 0..10 {
            tone(437.0, 8000, start, 160, 12000, &mut framed);
            start += 160;
        }
        assert_eq!(framed, whole);
    }

    #[test]
    fn tone_appends() {
        let mut s = vec![42i16];
        tone(1000.0, 8000, 0, 4, 1000, &mut s);
        assert_eq!(s.len(), 5);
        assert_eq!(s[0], 42);
        assert_eq!(s[1], 0);
    }

    #[test]
    fn dominant_frequency_degenerate_inputs() {
        assert_eq!(dominant_frequency(&[], 8000), 0.0);
        assert_eq!(dominant_frequency(&[5], 8000), 0.0);
        assert_eq!(dominant_frequency(&[0; 100], 8000), 0.0);
        assert_eq!(dominant_frequency(&[100, -100], 8000), 0.0);
    }

    #[test]
    fn rms_basics() {
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(rms(&[0, 0, 0]), 0.0);
        assert!((rms(&[3, -3, 3, -3]) - 3.0).abs() < 1e-12);
        assert!((rms(&[i16::MIN]) - 32768.0).abs() < 1e-9);
    }

    fn speech(seed: u64, rate: u32, frame: usize, total: usize) -> Vec<i16> {
        let mut g = SpeechLike::new(rate, seed);
        let mut out = Vec::new();
        while out.len() < total {
            let n = frame.min(total - out.len());
            g.next_frame(n, &mut out);
        }
        out
    }

    #[test]
    fn speech_is_deterministic_per_seed() {
        let a = speech(7, 8000, 160, 16000);
        let b = speech(7, 8000, 160, 16000);
        assert_eq!(a, b);
        let c = speech(8, 8000, 160, 16000);
        assert_ne!(a, c);
    }

    #[test]
    fn speech_does_not_depend_on_frame_size() {
        let a = speech(3, 16000, 320, 32000);
        let b = speech(3, 16000, 37, 32000);
        assert_eq!(a, b);
    }

    #[test]
    fn speech_is_non_silent_and_syllabic() {
        let rate = 8000u32;
        let s = speech(42, rate, 160, rate as usize * 2);
        assert_eq!(s.len(), 16000);
        let level = rms(&s);
        assert!(level > 500.0, "rms {level}");
        assert!(level < 12000.0, "rms {level}");

        // 20 ms frame levels should rise and fall with the syllables.
        let frame_levels: Vec<f64> = s.chunks(160).map(rms).collect();
        let loudest = frame_levels.iter().cloned().fold(0.0f64, f64::max);
        let quietest = frame_levels.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(
            loudest > 8.0 * quietest.max(1.0),
            "loudest {loudest} quietest {quietest}"
        );
    }

    #[test]
    fn speech_pitch_stays_in_voice_range() {
        // The fundamental dominates neither crossings nor spectrum reliably, so check the glide
        // parameters directly over many syllables.
        let mut g = SpeechLike::new(8000, 99);
        let mut sink = Vec::new();
        for _ in 0..200 {
            g.next_frame(160, &mut sink);
            assert!(g.pitch_start >= 100.0 && g.pitch_start <= 220.0);
            assert!(g.pitch_end >= 100.0 && g.pitch_end <= 220.0);
            assert!(g.n_harm >= 1 && g.n_harm <= MAX_HARMONICS);
        }
    }
}
