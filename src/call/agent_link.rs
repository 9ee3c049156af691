//! `AgentLink`: which connection to the agent is current, what it announced, and what to do when it fails.
//! A plain part of the call (no actix context): it takes `now` and returns decisions, so its rules — the
//! generation guard, the stale-audio drop after a barge-in, the reconnect budget — are unit-tested with
//! synthetic time.

use super::messages::ToAgent;
use super::EndReason;
use crate::protocol::elevenlabs::AgentFormats;
use crate::values::ConversationId;
use actix::Recipient;
use std::time::{Duration, Instant};

/// What the call does after its agent connection failed or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentFailure {
    /// Dial again after `backoff`; this is reconnect number `attempt` of the window.
    Redial { attempt: u32, backoff: Duration },
    /// The agent ended the conversation (1000): play out what is queued, then end.
    PlayOut,
    /// End the call now.
    GiveUp(EndReason),
}

/// How many reconnects a call may make, and within how long.
#[derive(Debug, Clone, Copy)]
pub struct ReconnectPolicy {
    pub max: u32,
    pub window: Duration,
}

/// Reconnects allowed within a sliding window from the first failure.
#[derive(Debug, Default)]
struct ReconnectBudget {
    used: u32,
    window_start: Option<Instant>,
}

impl ReconnectBudget {
    fn allow(&mut self, now: Instant, policy: ReconnectPolicy) -> bool {
        if self.window_start.is_none_or(|s| now.duration_since(s) > policy.window) {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used < policy.max {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

pub struct AgentLink {
    /// The current connection's leg, once dialled.
    leg: Option<Recipient<ToAgent>>,
    /// Which connection is current; reports from older ones are ignored.
    generation: u32,
    /// The last connection given up on: nothing from it or before it counts.
    failed_generation: u32,
    /// What the current connection announced; `None` until its metadata arrives.
    formats: Option<AgentFormats>,
    conversation_id: Option<ConversationId>,
    /// The event id of the last barge-in: agent audio up to it is stale.
    last_interruption: Option<i64>,
    /// Dials not yet answered (a redial can start while an abandoned dial is still out).
    dials_out: u32,
    budget: ReconnectBudget,
    policy: ReconnectPolicy,
}

impl AgentLink {
    pub fn new(policy: ReconnectPolicy) -> Self {
        AgentLink {
            leg: None,
            generation: 0,
            failed_generation: 0,
            formats: None,
            conversation_id: None,
            last_interruption: None,
            dials_out: 0,
            budget: ReconnectBudget::default(),
            policy,
        }
    }

    /// A new connection is being dialled: its generation. What the previous one announced no longer holds.
    pub fn dialling(&mut self) -> u32 {
        self.dials_out += 1;
        self.generation += 1;
        self.formats = None;
        self.last_interruption = None;
        self.generation
    }

    /// A dial was answered (or failed).
    pub fn dialled(&mut self) {
        self.dials_out = self.dials_out.saturating_sub(1);
    }

    /// Whether a dial is still out: an answer may yet come that must be closed cleanly.
    pub fn dial_out(&self) -> bool {
        self.dials_out > 0
    }

    /// Whether reports from connection `generation` still count: it is the current one and has not been
    /// given up on. The one place this is decided.
    pub fn is_current(&self, generation: u32) -> bool {
        generation == self.generation && generation > self.failed_generation
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The current connection's leg is up.
    pub fn connected(&mut self, leg: Recipient<ToAgent>) {
        self.leg = Some(leg);
    }

    pub fn leg(&self) -> Option<&Recipient<ToAgent>> {
        self.leg.as_ref()
    }

    /// Takes the leg away (to close it): the call ends, or the connection failed.
    pub fn take_leg(&mut self) -> Option<Recipient<ToAgent>> {
        self.leg.take()
    }

    /// The agent's metadata arrived on the current connection.
    pub fn announced(&mut self, conversation_id: Option<ConversationId>, formats: AgentFormats) {
        if conversation_id.is_some() {
            self.conversation_id = conversation_id;
        }
        self.formats = Some(formats);
    }

    pub fn formats(&self) -> Option<AgentFormats> {
        self.formats
    }

    pub fn conversation_id(&self) -> Option<&ConversationId> {
        self.conversation_id.as_ref()
    }

    /// The caller barged in at `event_id` (an interruption without one keeps the last mark).
    pub fn interrupted(&mut self, event_id: Option<i64>) {
        self.last_interruption = event_id.or(self.last_interruption);
    }

    /// Agent audio with this event id was spoken before the last barge-in: drop it.
    pub fn is_stale(&self, event_id: Option<i64>) -> bool {
        matches!((self.last_interruption, event_id), (Some(last), Some(id)) if id <= last)
    }

    /// The current connection failed or ended with `close_code` at `now`: from here on nothing from it
    /// counts. 1000 plays out, 1008 is a refusal, anything else redials within the budget.
    pub fn on_failure(&mut self, close_code: Option<u16>, now: Instant) -> AgentFailure {
        self.failed_generation = self.generation;
        self.leg = None;
        self.formats = None;
        match close_code {
            Some(1000) => AgentFailure::PlayOut,
            Some(1008) => AgentFailure::GiveUp(EndReason::ElevenlabsRejected),
            _ if self.budget.allow(now, self.policy) => {
                let attempt = self.budget.used;
                AgentFailure::Redial {
                    attempt,
                    backoff: Duration::from_millis(100 * u64::from(attempt)),
                }
            }
            _ => AgentFailure::GiveUp(EndReason::ElevenlabsUnavailable),
        }
    }

    pub fn policy(&self) -> ReconnectPolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(max: u32, window_s: u64) -> AgentLink {
        AgentLink::new(ReconnectPolicy {
            max,
            window: Duration::from_secs(window_s),
        })
    }

    #[test]
    fn reconnects_count_within_the_window_and_renew_after_it() {
        let mut l = link(2, 5);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        l.dialling();
        assert_eq!(
            l.on_failure(None, t0),
            AgentFailure::Redial {
                attempt: 1,
                backoff: Duration::from_millis(100)
            }
        );
        l.dialling();
        assert_eq!(
            l.on_failure(Some(1006), t0 + s(1)),
            AgentFailure::Redial {
                attempt: 2,
                backoff: Duration::from_millis(200)
            }
        );
        l.dialling();
        assert_eq!(
            l.on_failure(None, t0 + s(2)),
            AgentFailure::GiveUp(EndReason::ElevenlabsUnavailable),
            "the budget is spent within the window"
        );
        l.dialling();
        assert!(
            matches!(l.on_failure(None, t0 + s(10)), AgentFailure::Redial { attempt: 1, .. }),
            "a new window after a long healthy stretch"
        );
    }

    #[test]
    fn a_normal_close_plays_out_and_a_policy_close_gives_up_without_spending_the_budget() {
        let mut l = link(1, 5);
        let t0 = Instant::now();
        l.dialling();
        assert_eq!(l.on_failure(Some(1000), t0), AgentFailure::PlayOut);
        l.dialling();
        assert_eq!(
            l.on_failure(Some(1008), t0),
            AgentFailure::GiveUp(EndReason::ElevenlabsRejected)
        );
        l.dialling();
        assert!(matches!(l.on_failure(None, t0), AgentFailure::Redial { .. }));
    }

    #[test]
    fn only_the_current_connection_that_has_not_failed_counts() {
        let mut l = link(3, 5);
        let first = l.dialling();
        assert!(l.is_current(first));
        assert!(l.dial_out());
        let second = l.dialling();
        l.dialled();
        assert!(l.dial_out(), "the second dial is still out");
        l.dialled();
        assert!(!l.dial_out());
        assert!(!l.is_current(first), "an abandoned connection's reports are stale");
        assert!(l.is_current(second));
        l.on_failure(None, Instant::now());
        assert!(!l.is_current(second), "nothing from a connection given up on counts");
        let third = l.dialling();
        assert!(l.is_current(third));
    }

    #[test]
    fn audio_spoken_before_a_barge_in_is_stale() {
        let mut l = link(1, 5);
        l.dialling();
        assert!(!l.is_stale(Some(1)), "nothing is stale before an interruption");
        l.interrupted(Some(7));
        assert!(l.is_stale(Some(7)));
        assert!(l.is_stale(Some(3)));
        assert!(!l.is_stale(Some(8)));
        assert!(!l.is_stale(None), "audio without an event id cannot be judged stale");
        l.interrupted(None);
        assert!(l.is_stale(Some(7)), "an interruption without an id keeps the last mark");
        l.dialling();
        assert!(!l.is_stale(Some(3)), "a new connection numbers its events afresh");
    }
}
