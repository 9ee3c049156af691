//! `UpstreamBreaker`: whether ElevenLabs is taking conversations for this account at all. Account-level
//! failures (refusals that will not pass on retry: 401/403/429, 5xx, connect and TLS failures) from any
//! call's dial count; past a threshold within a window it opens and new calls are refused at the refurl
//! (`upstream_unavailable`) instead of being admitted to fail one by one. After a cool-down one probe call
//! is let through (half-open): its success closes the breaker, its failure opens it again. Live calls are
//! never touched. `Breaker` decides with the time passed in (unit-tested); `UpstreamBreaker` shares it.

use crate::metrics::Metrics;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    pub failures: u32,
    pub window: Duration,
    pub cooldown: Duration,
}

/// Why a new call is refused while the breaker is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// When to ask again (`Retry-After`).
    pub retry_after: Duration,
    /// The last failure that counted.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        since: Instant,
    },
    /// One probe call was let through at `probe_at`; the rest wait for its outcome (or the next cool-down).
    HalfOpen {
        probe_at: Instant,
    },
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: State,
    failures: VecDeque<Instant>,
    reason: String,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        Breaker {
            policy,
            state: State::Closed,
            failures: VecDeque::new(),
            reason: String::new(),
        }
    }

    /// Whether a new call may be admitted at `now`. Past the cool-down the first asker is the probe.
    pub fn admit(&mut self, now: Instant) -> Result<(), Open> {
        let cooldown = self.policy.cooldown;
        match self.state {
            State::Closed => Ok(()),
            State::Open { since } | State::HalfOpen { probe_at: since } if now.duration_since(since) >= cooldown => {
                self.state = State::HalfOpen { probe_at: now };
                Ok(())
            }
            State::Open { since } | State::HalfOpen { probe_at: since } => Err(Open {
                retry_after: cooldown.saturating_sub(now.duration_since(since)),
                reason: self.reason.clone(),
            }),
        }
    }

    /// The refusal new calls get at `now`, without letting a probe through (for `/readyz`).
    pub fn refusal(&self, now: Instant) -> Option<Open> {
        match self.state {
            State::Closed => None,
            State::Open { since } | State::HalfOpen { probe_at: since } => Some(Open {
                retry_after: self.policy.cooldown.saturating_sub(now.duration_since(since)),
                reason: self.reason.clone(),
            }),
        }
    }

    /// A conversation started: the upstream takes calls.
    pub fn succeeded(&mut self) {
        self.state = State::Closed;
        self.failures.clear();
    }

    /// An account-level failure at `now`; true when it opened the breaker.
    pub fn failed(&mut self, now: Instant, reason: &str) -> bool {
        self.reason = reason.to_string();
        match self.state {
            State::Open { .. } => false,
            State::HalfOpen { .. } => {
                self.state = State::Open { since: now };
                true
            }
            State::Closed => {
                let window = self.policy.window;
                self.failures.push_back(now);
                while self.failures.front().is_some_and(|t| now.duration_since(*t) > window) {
                    self.failures.pop_front();
                }
                if self.failures.len() >= self.policy.failures as usize {
                    self.failures.clear();
                    self.state = State::Open { since: now };
                    true
                } else {
                    false
                }
            }
        }
    }

    /// 0 closed, 1 open, 2 half-open (the metric's values).
    pub fn gauge(&self) -> i64 {
        match self.state {
            State::Closed => 0,
            State::Open { .. } => 1,
            State::HalfOpen { .. } => 2,
        }
    }
}

/// The process's breaker, shared by the refurl, `/readyz` and every call's dials.
pub struct UpstreamBreaker {
    inner: Mutex<Breaker>,
    metrics: Arc<Metrics>,
}

impl UpstreamBreaker {
    pub fn new(policy: BreakerPolicy, metrics: Arc<Metrics>) -> Self {
        UpstreamBreaker {
            inner: Mutex::new(Breaker::new(policy)),
            metrics,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Breaker) -> T) -> T {
        let mut b = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let out = f(&mut b);
        self.metrics.upstream_breaker_state.set(b.gauge());
        out
    }

    pub fn admit(&self) -> Result<(), Open> {
        self.with(|b| {
            let was = b.gauge();
            let res = b.admit(Instant::now());
            if res.is_ok() && was == 1 {
                log::warn!("elevenlabs: breaker half-open, one probe call let through");
            }
            res
        })
    }

    pub fn refusal(&self) -> Option<Open> {
        self.with(|b| b.refusal(Instant::now()))
    }

    pub fn succeeded(&self) {
        self.with(|b| {
            if b.gauge() != 0 {
                log::warn!("elevenlabs: a conversation started; breaker closed, taking calls again");
            }
            b.succeeded()
        })
    }

    pub fn failed(&self, reason: &str) {
        let opened = self.with(|b| b.failed(Instant::now(), reason));
        if opened {
            self.metrics.upstream_breaker_opened.inc();
            log::error!(
                "elevenlabs: breaker open after account-level failures (last: {reason}); new calls are refused \
                 upstream_unavailable until a probe call succeeds"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerPolicy {
            failures: 3,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(5),
        })
    }

    #[test]
    fn opens_at_the_threshold_within_the_window_only() {
        let mut b = breaker();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert!(!b.failed(t0, "a"));
        assert!(!b.failed(t0 + s(1), "b"));
        assert!(!b.failed(t0 + s(20), "c"), "the first two fell out of the window");
        assert!(b.admit(t0 + s(20)).is_ok());
        assert!(!b.failed(t0 + s(21), "d"));
        assert!(b.failed(t0 + s(22), "e"), "three within ten seconds");
        let open = b.admit(t0 + s(23)).expect_err("open");
        assert_eq!(
            open,
            Open {
                retry_after: s(4),
                reason: "e".into()
            }
        );
        assert_eq!(b.refusal(t0 + s(23)), Some(open));
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_through_and_its_outcome_decides() {
        let mut b = breaker();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        for _ in 0..3 {
            b.failed(t0, "quota");
        }
        assert!(b.admit(t0 + s(5)).is_ok(), "the probe");
        assert_eq!(b.gauge(), 2);
        assert!(b.admit(t0 + s(6)).is_err(), "only one probe at a time");
        assert!(b.failed(t0 + s(7), "still refused"), "a failed probe opens it again");
        assert!(b.admit(t0 + s(11)).is_err(), "a fresh cool-down");
        assert!(b.admit(t0 + s(12)).is_ok(), "the next probe");
        b.succeeded();
        assert_eq!(b.gauge(), 0);
        assert!(b.admit(t0 + s(12)).is_ok() && b.admit(t0 + s(12)).is_ok());
        assert!(b.refusal(t0 + s(12)).is_none());
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced_after_a_cooldown() {
        let mut b = breaker();
        let t0 = Instant::now();
        for _ in 0..3 {
            b.failed(t0, "down");
        }
        assert!(b.admit(t0 + Duration::from_secs(5)).is_ok());
        assert!(
            b.admit(t0 + Duration::from_secs(10)).is_ok(),
            "the probe's call never dialled"
        );
    }
}
