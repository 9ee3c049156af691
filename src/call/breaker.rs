//! `UpstreamBreaker`: whether ElevenLabs takes conversations, for the account and for each agent. Every
//! way a conversation can fail to start has a scope (`FailureScope`): the account's (bad key, quota,
//! concurrency limit, upstream 5xx, connect or TLS failure: every call would fail) or one agent's (agent
//! gone, a prompt variable its route does not send, an override it refuses: only calls to that agent
//! fail). Past a threshold within a window the breaker of that scope opens: account-level, every new call
//! is refused at the webhook (`upstream_unavailable`); agent-level, only calls to that agent
//! (`agent_unavailable`), while every other route's go on. After a cool-down one trial call is let
//! through (half-open), taken only by a call that was admitted: its success closes the breaker, its failure
//! opens it again. Live calls are never touched. `Breaker` decides with the time passed in (unit-tested);
//! `UpstreamBreaker` holds the account's and the agents' under one lock.

use super::failure::FailureScope;
use crate::metrics::Metrics;
use std::collections::{HashMap, VecDeque};
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

    /// Whether a new call would be let through at `now` (as the probe, past the cool-down), without
    /// taking the probe: the admission asks this first, and takes the probe only once the call is admitted.
    pub fn check(&self, now: Instant) -> Result<(), Open> {
        match self.state {
            State::Open { since } | State::HalfOpen { probe_at: since }
                if now.duration_since(since) < self.policy.cooldown =>
            {
                Err(Open {
                    retry_after: self.policy.cooldown.saturating_sub(now.duration_since(since)),
                    reason: self.reason.clone(),
                })
            }
            _ => Ok(()),
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

/// Why a new call is refused: whose breaker is open, and since when to ask again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub scope: FailureScope,
    pub open: Open,
}

/// The account's breaker and each agent's (made at an agent's first failure; agents come from the
/// configuration, so there are few).
struct Breakers {
    account: Breaker,
    agents: HashMap<String, Breaker>,
    agent_policy: BreakerPolicy,
}

impl Breakers {
    fn check(&self, agent: &str, now: Instant) -> Result<(), Refused> {
        let refused = |scope| move |open| Refused { scope, open };
        if let Some(b) = self.agents.get(agent) {
            b.check(now).map_err(refused(FailureScope::Agent))?;
        }
        self.account.check(now).map_err(refused(FailureScope::Account))
    }

    /// Lets a call through both breakers, taking each one's probe where it is due; nothing is taken when
    /// either refuses.
    fn admit(&mut self, agent: &str, now: Instant) -> Result<(), Refused> {
        self.check(agent, now)?;
        let account = self.account.admit(now);
        let agent = self.agents.get_mut(agent).map(|b| b.admit(now));
        debug_assert!(
            account.is_ok() && agent.is_none_or(|a| a.is_ok()),
            "checked under the same lock"
        );
        Ok(())
    }
}

/// The process's breakers, shared by the webhooks, `/readyz` and every call's dials.
pub struct UpstreamBreaker {
    inner: Mutex<Breakers>,
    metrics: Arc<Metrics>,
}

impl UpstreamBreaker {
    /// The breakers `elevenlabs.breaker_*` (the account's) and `elevenlabs.agent_breaker_*` (each agent's)
    /// describe.
    pub fn from_config(el: &crate::config::ElevenLabsConfig, metrics: Arc<Metrics>) -> Self {
        let policy = |failures, window, cooldown| BreakerPolicy {
            failures,
            window,
            cooldown,
        };
        UpstreamBreaker::new(
            policy(el.breaker_failures, el.breaker_window(), el.breaker_cooldown()),
            policy(
                el.agent_breaker_failures,
                el.agent_breaker_window(),
                el.agent_breaker_cooldown(),
            ),
            metrics,
        )
    }

    /// `account` for account-level failures, `agent` for each agent's.
    pub fn new(account: BreakerPolicy, agent: BreakerPolicy, metrics: Arc<Metrics>) -> Self {
        UpstreamBreaker {
            inner: Mutex::new(Breakers {
                account: Breaker::new(account),
                agents: HashMap::new(),
                agent_policy: agent,
            }),
            metrics,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Breakers) -> T) -> T {
        let mut b = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let out = f(&mut b);
        self.metrics.upstream.breaker_state.set(b.account.gauge());
        out
    }

    /// Whether a new call to `agent` would be let through, without taking a probe.
    pub fn check(&self, agent: &str) -> Result<(), Refused> {
        self.with(|b| b.check(agent, Instant::now()))
    }

    /// Lets a call to `agent` through, taking a due probe: ask only for a call that is being admitted.
    pub fn admit(&self, agent: &str) -> Result<(), Refused> {
        self.with(|b| {
            let was = (b.account.gauge(), b.agents.get(agent).map(Breaker::gauge));
            let res = b.admit(agent, Instant::now());
            if res.is_ok() && was.0 == 1 {
                log::warn!("elevenlabs: breaker half-open, one probe call let through");
            }
            if res.is_ok() && was.1 == Some(1) {
                log::warn!("elevenlabs: agent {agent} half-open, one probe call let through");
            }
            res
        })
    }

    /// The account's refusal (for `/readyz`: one agent's does not make the gateway unready).
    pub fn refusal(&self) -> Option<Open> {
        self.with(|b| b.account.refusal(Instant::now()))
    }

    /// The agents whose calls are refused now.
    pub fn unavailable_agents(&self) -> Vec<String> {
        let now = Instant::now();
        self.with(|b| {
            let mut open: Vec<String> = b
                .agents
                .iter()
                .filter(|(_, a)| a.check(now).is_err())
                .map(|(id, _)| id.clone())
                .collect();
            open.sort();
            open
        })
    }

    /// A conversation with `agent` started: the account and the agent take calls.
    pub fn succeeded(&self, agent: &str) {
        self.with(|b| {
            if b.account.gauge() != 0 {
                log::warn!("elevenlabs: a conversation started; breaker closed, taking calls again");
            }
            b.account.succeeded();
            if let Some(a) = b.agents.get_mut(agent) {
                if a.gauge() != 0 {
                    log::warn!("elevenlabs: agent {agent} took a conversation again; its routes take calls");
                    self.metrics
                        .upstream
                        .agent_unavailable
                        .with_label_values(&[agent])
                        .set(0);
                }
                a.succeeded();
            }
        })
    }

    /// A conversation with `agent` (on `route`) failed to start, for a reason of `scope`. An agent-level
    /// failure counts toward that agent's breaker only; ElevenLabs answered, so the account is fine.
    pub fn failed(&self, agent: &str, route: &str, scope: FailureScope, reason: &str) {
        let now = Instant::now();
        let opened = self.with(|b| match scope {
            FailureScope::Account => b.account.failed(now, reason),
            FailureScope::Agent => {
                b.account.succeeded();
                let policy = b.agent_policy;
                let a = b
                    .agents
                    .entry(agent.to_string())
                    .or_insert_with(|| Breaker::new(policy));
                a.failed(now, reason)
            }
        });
        if !opened {
            return;
        }
        match scope {
            FailureScope::Account => {
                self.metrics.upstream.breaker_opened.inc();
                log::error!(
                    "elevenlabs: breaker open after account-level failures (last: {reason}); new calls are \
                     refused upstream_unavailable until a probe call succeeds"
                );
            }
            FailureScope::Agent => {
                self.metrics
                    .upstream
                    .agent_breaker_opened
                    .with_label_values(&[agent])
                    .inc();
                self.metrics
                    .upstream
                    .agent_unavailable
                    .with_label_values(&[agent])
                    .set(1);
                log::error!(
                    "elevenlabs: agent {agent} unavailable after agent-level failures (last on route '{route}': \
                     {reason}); calls to the routes of agent {agent} are refused agent_unavailable until a probe \
                     call succeeds; other routes go on"
                );
            }
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

    fn breakers() -> Breakers {
        let policy = BreakerPolicy {
            failures: 2,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(5),
        };
        Breakers {
            account: Breaker::new(policy),
            agents: HashMap::new(),
            agent_policy: policy,
        }
    }

    #[test]
    fn an_agent_breaker_refuses_its_agent_only() {
        let mut b = breakers();
        let t0 = Instant::now();
        for _ in 0..2 {
            b.agents
                .entry("broken".into())
                .or_insert_with(|| Breaker::new(b.agent_policy))
                .failed(t0, "missing_dynamic_variable");
        }
        let refused = b.admit("broken", t0).expect_err("its agent is open");
        assert_eq!(refused.scope, FailureScope::Agent);
        assert!(b.admit("healthy", t0).is_ok(), "another agent's calls go on");
        assert_eq!(b.account.gauge(), 0, "the account is untouched");
    }

    #[test]
    fn a_probe_is_taken_only_when_the_call_is_admitted() {
        let mut b = breakers();
        let t0 = Instant::now();
        b.account.failed(t0, "down");
        b.account.failed(t0, "down");
        let due = t0 + Duration::from_secs(5);
        for _ in 0..3 {
            assert!(b.check("a", due).is_ok(), "checking does not take the probe");
        }
        assert_eq!(b.account.gauge(), 1, "still open: nobody took the probe");
        assert!(b.admit("a", due).is_ok(), "the admitted call is the probe");
        assert_eq!(b.account.gauge(), 2);
        assert_eq!(
            b.admit("a", due).map_err(|r| r.scope),
            Err(FailureScope::Account),
            "one probe at a time"
        );
    }

    #[test]
    fn an_open_agent_does_not_spend_the_accounts_probe() {
        let mut b = breakers();
        let t0 = Instant::now();
        b.account.failed(t0, "down");
        b.account.failed(t0, "down");
        let agent = b
            .agents
            .entry("broken".into())
            .or_insert_with(|| Breaker::new(b.agent_policy));
        agent.failed(t0 + Duration::from_secs(4), "gone");
        agent.failed(t0 + Duration::from_secs(4), "gone");
        let due = t0 + Duration::from_secs(5);
        assert_eq!(b.admit("broken", due).map_err(|r| r.scope), Err(FailureScope::Agent));
        assert_eq!(
            b.account.gauge(),
            1,
            "the account's probe is still there for another agent"
        );
        assert!(b.admit("healthy", due).is_ok());
    }
}
