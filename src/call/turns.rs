//! The turn clock: how long a caller waits for the agent's answer, measured where the caller hears it —
//! from the end of the caller's speech (the caller's audio falling to silence) to the first frame of the
//! agent's answer handed to the carrier — and split into ElevenLabs' share (caller audio sent → first agent
//! audio received) and the gateway's (both hops). Plain parts with synthetic time: `CallerTurns` lives in the
//! agent leg, which sees every piece of caller audio as it writes it and every agent message as it reads
//! it; `TurnLog` lives in the call, which knows when the answer's first frame is played.

use std::time::{Duration, Instant};

/// Speech shorter than this (a click, a cough) asks for no answer.
pub const MIN_SPEECH: Duration = Duration::from_millis(200);
/// Agent audio this long after the caller fell silent is not an answer (the agent spoke up by itself).
pub const MAX_TURN: Duration = Duration::from_secs(10);
/// Turns a call keeps for its percentiles (about 8 KB); later turns still feed the histogram.
const MAX_KEPT: usize = 1000;

/// When the caller stopped and the agent answered, as the agent leg saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnStart {
    /// When the carrier leg read the first silent audio after the caller's speech.
    pub silent_at: Instant,
    /// When that audio was written to ElevenLabs.
    pub sent_at: Instant,
    /// When the first agent audio after it was read.
    pub answered_at: Instant,
}

/// The caller's side of the turn clock.
#[derive(Debug, Default)]
pub struct CallerTurns {
    /// Speech heard since the agent last spoke.
    speech: Duration,
    /// The first silent audio after that speech: when it was read and when it was written.
    silence: Option<(Instant, Instant)>,
}

impl CallerTurns {
    /// A piece of caller audio `len` long, read from the carrier at `read_at`, written to ElevenLabs at
    /// `sent_at`.
    pub fn caller_audio(&mut self, speech: bool, len: Duration, read_at: Instant, sent_at: Instant) {
        if speech {
            self.speech += len;
            self.silence = None;
        } else if self.speech >= MIN_SPEECH && self.silence.is_none() {
            self.silence = Some((read_at, sent_at));
        }
    }

    /// Agent audio read at `at`: the turn it answers, when it is the first audio after the caller fell
    /// silent. Audio while the caller still speaks (the agent talking over them) answers nothing.
    pub fn agent_audio(&mut self, at: Instant) -> Option<TurnStart> {
        let silence = self.silence.take();
        self.speech = Duration::ZERO;
        let (silent_at, sent_at) = silence?;
        (at.saturating_duration_since(silent_at) <= MAX_TURN).then_some(TurnStart {
            silent_at,
            sent_at,
            answered_at: at,
        })
    }
}

/// One measured turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// Caller silent → the answer's first frame handed to the carrier.
    pub total: Duration,
    /// Caller audio sent → first agent audio read.
    pub elevenlabs: Duration,
}

impl Turn {
    /// What the gateway added: the caller's last audio on its way to the agent, and the answer on its way
    /// to the carrier.
    pub fn gateway(&self) -> Duration {
        self.total.saturating_sub(self.elevenlabs)
    }
}

/// A call's turns in short: how many, and their percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TurnSummary {
    pub turns: u32,
    pub turn_p50_ms: Option<u32>,
    pub turn_p95_ms: Option<u32>,
    /// ElevenLabs' share at the median.
    pub turn_elevenlabs_p50_ms: Option<u32>,
}

impl TurnSummary {
    /// As a record stores it (`turns`, `turn_p50_ms`, `turn_p95_ms`, `turn_elevenlabs_p50_ms`).
    pub fn stored(turns: i64, p50: Option<i64>, p95: Option<i64>, elevenlabs_p50: Option<i64>) -> TurnSummary {
        let ms = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
        TurnSummary {
            turns: u32::try_from(turns).unwrap_or(0),
            turn_p50_ms: ms(p50),
            turn_p95_ms: ms(p95),
            turn_elevenlabs_p50_ms: ms(elevenlabs_p50),
        }
    }
}

/// The call's side: the answer under way, and the turns so far.
#[derive(Debug, Default)]
pub struct TurnLog {
    /// An answer queued behind this many bytes of played audio, and when its turn started.
    pending: Option<(u64, TurnStart)>,
    total_ms: Vec<u32>,
    elevenlabs_ms: Vec<u32>,
    turns: u32,
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl TurnLog {
    /// The answer to `start` was queued; its first byte plays once `played_bytes_before` bytes have been
    /// handed to the carrier.
    pub fn answer_queued(&mut self, start: TurnStart, played_bytes_before: u64) {
        self.pending = Some((played_bytes_before, start));
    }

    /// A frame was handed to the carrier at `now`, making `played_bytes` in all: the turn it completes.
    pub fn played(&mut self, played_bytes: u64, now: Instant) -> Option<Turn> {
        let (at_byte, start) = self.pending?;
        if played_bytes <= at_byte {
            return None;
        }
        self.pending = None;
        let turn = Turn {
            total: now.saturating_duration_since(start.silent_at),
            elevenlabs: start.answered_at.saturating_duration_since(start.sent_at),
        };
        self.turns += 1;
        if self.total_ms.len() < MAX_KEPT {
            self.total_ms.push(ms(turn.total));
            self.elevenlabs_ms.push(ms(turn.elevenlabs));
        }
        Some(turn)
    }

    /// The queued answer was dropped (a barge-in cleared the queue): it is not measured.
    pub fn dropped(&mut self) {
        self.pending = None;
    }

    pub fn summary(&self) -> TurnSummary {
        TurnSummary {
            turns: self.turns,
            turn_p50_ms: percentile(&self.total_ms, 50),
            turn_p95_ms: percentile(&self.total_ms, 95),
            turn_elevenlabs_p50_ms: percentile(&self.elevenlabs_ms, 50),
        }
    }
}

/// The nearest-rank percentile.
fn percentile(values: &[u32], pct: usize) -> Option<u32> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `speech` frames of speech then `silence` frames of silence from `t0`, each written 1 ms after it
    /// was read; returns when the first silent frame was read.
    fn talk(c: &mut CallerTurns, t0: Instant, speech: u64, silence: u64) -> Instant {
        for i in 0..speech + silence {
            let read = t0 + FRAME * i as u32;
            c.caller_audio(i < speech, FRAME, read, read + ms(1));
        }
        t0 + FRAME * speech as u32
    }

    #[test]
    fn a_turn_runs_from_the_first_silence_to_the_answers_first_frame() {
        let t0 = Instant::now();
        let mut c = CallerTurns::default();
        let silent = talk(&mut c, t0, 50, 30);
        let start = c.agent_audio(silent + ms(400)).expect("an answer");
        assert_eq!(start.silent_at, silent, "the first silent frame, not a later one");
        assert_eq!(start.sent_at, silent + ms(1));
        assert!(
            c.agent_audio(silent + ms(420)).is_none(),
            "the rest of the answer is no new turn"
        );

        let mut log = TurnLog::default();
        log.answer_queued(start, 3200);
        assert!(
            log.played(3200, silent + ms(405)).is_none(),
            "older audio still playing"
        );
        let turn = log.played(3360, silent + ms(410)).expect("the answer's first frame");
        assert_eq!(turn.total, ms(410));
        assert_eq!(turn.elevenlabs, ms(399));
        assert_eq!(turn.gateway(), ms(11));
        assert!(log.played(3520, silent + ms(430)).is_none(), "measured once");
        let s = log.summary();
        assert_eq!(
            (s.turns, s.turn_p50_ms, s.turn_elevenlabs_p50_ms),
            (1, Some(410), Some(399))
        );
    }

    #[test]
    fn short_noises_talking_over_and_late_speech_are_not_turns() {
        let t0 = Instant::now();
        let mut c = CallerTurns::default();
        let silent = talk(&mut c, t0, 5, 10);
        assert!(
            c.agent_audio(silent + ms(300)).is_none(),
            "100 ms of noise asks no answer"
        );
        talk(&mut c, t0, 50, 0);
        assert!(c.agent_audio(t0 + ms(1000)).is_none(), "the caller is still speaking");
        let silent = talk(&mut c, t0 + ms(1000), 0, 10);
        assert!(
            c.agent_audio(silent + ms(300)).is_none(),
            "speech the agent talked over asks no answer once it stops"
        );
        let silent = talk(&mut c, silent, 20, 5);
        assert!(
            c.agent_audio(silent + MAX_TURN + ms(1)).is_none(),
            "the agent spoke up by itself"
        );
    }

    #[test]
    fn a_dropped_answer_is_not_measured_and_percentiles_are_nearest_rank() {
        let t0 = Instant::now();
        let start = TurnStart {
            silent_at: t0,
            sent_at: t0,
            answered_at: t0,
        };
        let mut log = TurnLog::default();
        log.answer_queued(start, 0);
        log.dropped();
        assert!(log.played(160, t0 + ms(5)).is_none());
        for n in 1..=20u64 {
            log.answer_queued(start, 0);
            log.played(160, t0 + ms(n * 100));
        }
        let s = log.summary();
        assert_eq!((s.turns, s.turn_p50_ms, s.turn_p95_ms), (20, Some(1000), Some(1900)));
        assert_eq!(TurnLog::default().summary().turn_p50_ms, None);
    }
}
