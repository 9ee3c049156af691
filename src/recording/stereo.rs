//! A call's two sides on the call's own clock, as one stereo track (caller left, agent right). Each side's
//! audio goes where the clock says it was heard: a side that was silent (no frames: the agent not
//! speaking, a barge-in's cut) is silence for as long, never collapsed, and the two never drift apart.
//! Interleaved samples are handed on `HOLD` behind the clock, so a frame a little late still finds its
//! place; a side more than `AHEAD` ahead of the clock (a burst) loses the excess, so what is held stays
//! small. Paused (payment details), both sides are written as silence. Takes `now`: no clock of its own.

use std::time::{Duration, Instant};

/// How far behind the clock samples are handed on: late frames within it keep their place.
pub const HOLD: Duration = Duration::from_millis(200);
/// How far a side's audio may run ahead of the clock before the excess is dropped.
pub const AHEAD: Duration = Duration::from_millis(500);
/// A side this far behind where a frame belongs gets silence before it (less is the carrier's jitter).
const JITTER: Duration = Duration::from_millis(60);

/// Which side: the left channel is the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Caller = 0,
    Agent = 1,
}

pub struct Stereo {
    rate: u64,
    started: Instant,
    /// Each side's samples from `handed` on.
    sides: [Vec<i16>; 2],
    /// Samples (per side) already handed on.
    handed: u64,
    paused: bool,
    /// Samples dropped for running ahead, and written as silence while paused.
    pub dropped: u64,
    pub paused_samples: u64,
}

impl Stereo {
    pub fn new(rate: u32, started: Instant) -> Self {
        Stereo {
            rate: u64::from(rate),
            started,
            sides: [Vec::new(), Vec::new()],
            handed: 0,
            paused: false,
            dropped: 0,
            paused_samples: 0,
        }
    }

    fn samples(&self, d: Duration) -> u64 {
        (d.as_micros() as u64).saturating_mul(self.rate) / 1_000_000
    }

    /// Where the clock is, in samples.
    fn clock(&self, now: Instant) -> u64 {
        self.samples(now.saturating_duration_since(self.started))
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// A frame of one side, heard (read or written) at `now`: it ends there.
    pub fn push(&mut self, channel: Channel, frame: &[i16], now: Instant) {
        let clock = self.clock(now);
        let (jitter, ahead) = (self.samples(JITTER), self.samples(AHEAD));
        let side = &mut self.sides[channel as usize];
        let end = self.handed + side.len() as u64;
        let starts = clock.saturating_sub(frame.len() as u64);
        if starts > end + jitter {
            side.resize(side.len() + (starts - end) as usize, 0);
        }
        let room = (clock + ahead).saturating_sub(self.handed + side.len() as u64) as usize;
        let kept = frame.len().min(room);
        self.dropped += (frame.len() - kept) as u64;
        if self.paused {
            self.paused_samples += kept as u64;
            side.resize(side.len() + kept, 0);
        } else {
            side.extend_from_slice(&frame[..kept]);
        }
    }

    /// Appends to `out` the interleaved PCM16 LE samples up to `HOLD` behind the clock; a side with nothing
    /// there is silent there.
    pub fn take_ready(&mut self, now: Instant, out: &mut Vec<u8>) {
        let upto = self.clock(now).saturating_sub(self.samples(HOLD));
        if upto > self.handed {
            self.hand_on((upto - self.handed) as usize, out);
        }
    }

    /// Appends everything held, the shorter side padded with silence: the call is over.
    pub fn take_all(&mut self, out: &mut Vec<u8>) {
        let longest = self.sides.iter().map(Vec::len).max().unwrap_or(0);
        self.hand_on(longest, out);
    }

    /// Samples handed on so far: the recording's length.
    pub fn length(&self) -> Duration {
        Duration::from_micros(self.handed.saturating_mul(1_000_000) / self.rate.max(1))
    }

    fn hand_on(&mut self, n: usize, out: &mut Vec<u8>) {
        for side in &mut self.sides {
            if side.len() < n {
                side.resize(n, 0);
            }
        }
        out.reserve(n * 4);
        for (left, right) in self.sides[0][..n].iter().zip(&self.sides[1][..n]) {
            out.extend_from_slice(&left.to_le_bytes());
            out.extend_from_slice(&right.to_le_bytes());
        }
        for side in &mut self.sides {
            side.drain(..n);
        }
        self.handed += n as u64;
    }

    /// Samples held, both sides (what a recording costs in memory, besides what waits to be written).
    pub fn held(&self) -> usize {
        self.sides.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn frame(v: i16) -> Vec<i16> {
        vec![v; 160]
    }

    fn channels(bytes: &[u8]) -> (Vec<i16>, Vec<i16>) {
        let s: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|p| i16::from_le_bytes([p[0], p[1]]))
            .collect();
        (
            s.iter().step_by(2).copied().collect(),
            s.iter().skip(1).step_by(2).copied().collect(),
        )
    }

    #[test]
    fn each_side_keeps_its_place_on_the_clock_and_a_silent_side_is_silence() {
        let t0 = Instant::now();
        let mut st = Stereo::new(8000, t0);
        let mut out = Vec::new();
        // The caller speaks for a second; the agent only from 500 ms to 700 ms.
        for i in 1..=50u32 {
            let now = t0 + i * 20 * MS;
            st.push(Channel::Caller, &frame(100), now);
            if (26..=35).contains(&i) {
                st.push(Channel::Agent, &frame(-100), now);
            }
            st.take_ready(now, &mut out);
        }
        st.take_all(&mut out);
        let (left, right) = channels(&out);
        assert_eq!(left.len(), 8000, "a second, both sides");
        assert_eq!(right.len(), 8000);
        assert!(left.iter().all(|&s| s == 100));
        assert!(right[..4000].iter().all(|&s| s == 0), "silent before it spoke");
        assert!(right[4000..5600].iter().all(|&s| s == -100), "where it spoke");
        assert!(right[5600..].iter().all(|&s| s == 0), "silent after");
        assert_eq!(st.length(), Duration::from_secs(1));
    }

    #[test]
    fn a_late_frame_keeps_its_place_a_gap_is_silence_and_a_burst_is_cut() {
        let t0 = Instant::now();
        let mut st = Stereo::new(8000, t0);
        let mut out = Vec::new();
        st.push(Channel::Caller, &frame(1), t0 + 20 * MS);
        st.push(Channel::Caller, &frame(2), t0 + 70 * MS); // 30 ms late: jitter, kept in order
        st.push(Channel::Caller, &frame(3), t0 + 300 * MS); // after a gap: silence first
        st.take_all(&mut out);
        let (left, _) = channels(&out);
        assert_eq!(&left[..160], &frame(1)[..]);
        assert_eq!(&left[160..320], &frame(2)[..]);
        assert!(left[320..2240].iter().all(|&s| s == 0), "the gap is silence");
        assert_eq!(&left[2240..2400], &frame(3)[..]);

        let mut burst = Stereo::new(8000, t0);
        for _ in 0..100 {
            burst.push(Channel::Agent, &frame(5), t0 + 20 * MS);
        }
        assert_eq!(burst.held(), 4000 + 160, "half a second ahead of the clock and no more");
        assert_eq!(burst.dropped, 100 * 160 - 4160);
    }

    #[test]
    fn paused_both_sides_are_silence() {
        let t0 = Instant::now();
        let mut st = Stereo::new(8000, t0);
        let mut out = Vec::new();
        st.push(Channel::Caller, &frame(9), t0 + 20 * MS);
        st.set_paused(true);
        st.push(Channel::Caller, &frame(9), t0 + 40 * MS);
        st.push(Channel::Agent, &frame(9), t0 + 40 * MS);
        st.set_paused(false);
        st.push(Channel::Caller, &frame(9), t0 + 60 * MS);
        st.take_all(&mut out);
        let (left, right) = channels(&out);
        assert!(left[..160].iter().all(|&s| s == 9));
        assert!(left[160..320].iter().all(|&s| s == 0) && right.iter().all(|&s| s == 0));
        assert!(left[320..].iter().all(|&s| s == 9));
        assert_eq!(st.paused_samples, 320);
    }
}
