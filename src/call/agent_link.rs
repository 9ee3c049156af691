//! `AgentLink`: which connection to the agent is current, what it announced, and what to do when it fails.
//! A plain part of the call (no actix context): it takes `now` and returns decisions, so its rules — the
//! generation guard, the stale-audio drop after a barge-in, the call's redial budget and spacing, the muted
//! greeting of a resumed conversation — are unit-tested with synthetic time.

use super::messages::ToAgent;
use super::EndReason;
use crate::protocol::elevenlabs::AgentFormats;
use crate::values::ConversationId;
use actix::Recipient;
use std::time::{Duration, Instant};

/// What the call does after its agent connection failed or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentFailure {
    /// Dial again after `backoff`; this is redial number `attempt` of the call.
    Redial { attempt: u32, backoff: Duration },
    /// The agent ended the conversation (1000): play out what is queued, then end.
    PlayOut,
    /// The call's redials are spent: play out what is queued, then end (`ElevenlabsUnavailable`).
    BudgetSpent,
    /// ElevenLabs refused an override we sent: a configuration problem, not retried.
    ConfigRefused,
    /// End the call now.
    GiveUp(EndReason),
}

/// How many redials a call may make over its whole life, and how far apart.
#[derive(Debug, Clone, Copy)]
pub struct RedialPolicy {
    pub max: u32,
    pub min_spacing: Duration,
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
    /// Every conversation the call had, in order; the last is the current one.
    conversation_ids: Vec<ConversationId>,
    /// The event id of the last barge-in: agent audio up to it is stale.
    last_interruption: Option<i64>,
    /// Dials not yet answered (a redial can start while an abandoned dial is still out).
    dials_out: u32,
    /// When the last dial began, for the spacing.
    last_dial: Option<Instant>,
    /// Redials made over the call.
    redials: u32,
    /// Whether any connection of this call got as far as its metadata: a redial then resumes it.
    conversed: bool,
    /// On a resumed conversation without a first-message override: agent audio is the greeting (dropped)
    /// until the caller has been heard.
    muting_greeting: bool,
    policy: RedialPolicy,
}

impl AgentLink {
    pub fn new(policy: RedialPolicy) -> Self {
        AgentLink {
            leg: None,
            generation: 0,
            failed_generation: 0,
            formats: None,
            conversation_ids: Vec::new(),
            last_interruption: None,
            dials_out: 0,
            last_dial: None,
            redials: 0,
            conversed: false,
            muting_greeting: false,
            policy,
        }
    }

    /// A new connection is being dialled at `now`: its generation. What the previous one announced no
    /// longer holds.
    pub fn dialling(&mut self, now: Instant) -> u32 {
        self.dials_out += 1;
        self.generation += 1;
        self.formats = None;
        self.last_interruption = None;
        self.last_dial = Some(now);
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

    /// Whether the connection being dialled continues an earlier conversation of this call.
    pub fn resuming(&self) -> bool {
        self.conversed
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

    /// The agent's metadata arrived on the current connection. A resumed conversation whose greeting is
    /// not overridden (`greeting_overridden`) has it muted until the caller speaks.
    pub fn announced(
        &mut self,
        conversation_id: Option<ConversationId>,
        formats: AgentFormats,
        greeting_overridden: bool,
    ) {
        self.muting_greeting = self.conversed && !greeting_overridden;
        self.conversed = true;
        self.conversation_ids.extend(conversation_id);
        self.formats = Some(formats);
    }

    pub fn formats(&self) -> Option<AgentFormats> {
        self.formats
    }

    pub fn conversation_id(&self) -> Option<&ConversationId> {
        self.conversation_ids.last()
    }

    pub fn conversation_ids(&self) -> &[ConversationId] {
        &self.conversation_ids
    }

    /// The caller was heard by the agent (a transcript or a barge-in): what the agent says now is an answer.
    pub fn caller_heard(&mut self) {
        self.muting_greeting = false;
    }

    /// Whether agent audio is the greeting of a resumed conversation, which the caller must not hear again.
    pub fn is_greeting_muted(&self) -> bool {
        self.muting_greeting
    }

    /// The caller barged in at `event_id` (an interruption without one keeps the last mark).
    pub fn interrupted(&mut self, event_id: Option<i64>) {
        self.last_interruption = event_id.or(self.last_interruption);
        self.caller_heard();
    }

    /// Agent audio with this event id was spoken before the last barge-in: drop it.
    pub fn is_stale(&self, event_id: Option<i64>) -> bool {
        matches!((self.last_interruption, event_id), (Some(last), Some(id)) if id <= last)
    }

    /// The current connection failed or ended with `close_code` (after an `error` event of `error_type`)
    /// at `now`: from here on nothing from it counts. 1000 plays out; 1008 is a refusal (of an override we
    /// sent, `override_error`: a configuration problem); a failure that is the agent's (`agent_refused`:
    /// no such agent) gives up, as a redial would be refused again; anything else redials within the
    /// call's budget, no sooner than the spacing after the last dial.
    pub fn on_failure(
        &mut self,
        close_code: Option<u16>,
        error_type: Option<&str>,
        agent_refused: bool,
        now: Instant,
    ) -> AgentFailure {
        self.failed_generation = self.generation;
        self.leg = None;
        self.formats = None;
        match close_code {
            Some(1000) => AgentFailure::PlayOut,
            Some(1008) if error_type == Some("override_error") => AgentFailure::ConfigRefused,
            Some(1008) => AgentFailure::GiveUp(EndReason::ElevenlabsRejected),
            _ if agent_refused => AgentFailure::GiveUp(EndReason::ElevenlabsRejected),
            _ if self.redials < self.policy.max => {
                self.redials += 1;
                let since_dial = self.last_dial.map_or(Duration::MAX, |t| now.duration_since(t));
                let backoff = Duration::from_millis(100 * u64::from(self.redials))
                    .max(self.policy.min_spacing.saturating_sub(since_dial));
                AgentFailure::Redial {
                    attempt: self.redials,
                    backoff,
                }
            }
            _ => AgentFailure::BudgetSpent,
        }
    }

    pub fn policy(&self) -> RedialPolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(max: u32, spacing_ms: u64) -> AgentLink {
        AgentLink::new(RedialPolicy {
            max,
            min_spacing: Duration::from_millis(spacing_ms),
        })
    }

    fn formats() -> AgentFormats {
        let f = crate::audio::format::AudioFormat::ULAW_8K;
        AgentFormats { input: f, output: f }
    }

    #[test]
    fn redials_are_counted_over_the_whole_call_and_spaced() {
        let mut l = link(2, 1000);
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        l.dialling(t0);
        assert_eq!(
            l.on_failure(None, None, false, t0 + ms(200)),
            AgentFailure::Redial {
                attempt: 1,
                backoff: ms(800)
            },
            "no sooner than the spacing after the last dial"
        );
        l.dialling(t0 + ms(1000));
        assert_eq!(
            l.on_failure(Some(1006), None, false, t0 + ms(60_000)),
            AgentFailure::Redial {
                attempt: 2,
                backoff: ms(200)
            },
            "long after the last dial: the plain backoff"
        );
        l.dialling(t0 + ms(60_200));
        assert_eq!(
            l.on_failure(None, None, false, t0 + ms(3_600_000)),
            AgentFailure::BudgetSpent,
            "the budget does not renew, however long the call"
        );
    }

    #[test]
    fn a_normal_close_plays_out_and_policy_closes_give_up_without_spending_the_budget() {
        let mut l = link(1, 0);
        let t0 = Instant::now();
        l.dialling(t0);
        assert_eq!(l.on_failure(Some(1000), None, false, t0), AgentFailure::PlayOut);
        l.dialling(t0);
        assert_eq!(
            l.on_failure(Some(1008), Some("missing_dynamic_variable"), false, t0),
            AgentFailure::GiveUp(EndReason::ElevenlabsRejected)
        );
        l.dialling(t0);
        assert_eq!(
            l.on_failure(Some(1008), Some("override_error"), false, t0),
            AgentFailure::ConfigRefused
        );
        l.dialling(t0);
        assert!(matches!(
            l.on_failure(None, None, false, t0),
            AgentFailure::Redial { .. }
        ));
        l.dialling(t0);
        assert_eq!(
            l.on_failure(None, None, true, t0),
            AgentFailure::GiveUp(EndReason::ElevenlabsRejected),
            "no such agent: a redial would be refused again"
        );
    }

    #[test]
    fn every_conversation_is_kept_and_a_resumed_greeting_is_muted_until_the_caller_is_heard() {
        let mut l = link(3, 0);
        let t0 = Instant::now();
        let id = |s: &str| ConversationId::parse("c", s).ok();
        l.dialling(t0);
        assert!(!l.resuming());
        l.announced(id("conv_1"), formats(), false);
        assert!(!l.is_greeting_muted(), "the first greeting is heard");
        l.on_failure(None, None, false, t0);
        l.dialling(t0);
        assert!(l.resuming());
        l.announced(id("conv_2"), formats(), false);
        assert!(l.is_greeting_muted());
        l.caller_heard();
        assert!(!l.is_greeting_muted());
        l.on_failure(None, None, false, t0);
        l.dialling(t0);
        l.announced(id("conv_3"), formats(), true);
        assert!(
            !l.is_greeting_muted(),
            "an overridden first message is meant to be heard"
        );
        let ids: Vec<&str> = l.conversation_ids().iter().map(|c| c.as_str()).collect();
        assert_eq!(ids, ["conv_1", "conv_2", "conv_3"]);
        assert_eq!(l.conversation_id().map(|c| c.as_str()), Some("conv_3"));
    }

    #[test]
    fn only_the_current_connection_that_has_not_failed_counts() {
        let mut l = link(3, 0);
        let now = Instant::now();
        let first = l.dialling(now);
        assert!(l.is_current(first));
        assert!(l.dial_out());
        let second = l.dialling(now);
        l.dialled();
        assert!(l.dial_out(), "the second dial is still out");
        l.dialled();
        assert!(!l.dial_out());
        assert!(!l.is_current(first), "an abandoned connection's reports are stale");
        assert!(l.is_current(second));
        l.on_failure(None, None, false, now);
        assert!(!l.is_current(second), "nothing from a connection given up on counts");
        let third = l.dialling(now);
        assert!(l.is_current(third));
    }

    #[test]
    fn audio_spoken_before_a_barge_in_is_stale() {
        let mut l = link(1, 0);
        let now = Instant::now();
        l.dialling(now);
        assert!(!l.is_stale(Some(1)), "nothing is stale before an interruption");
        l.interrupted(Some(7));
        assert!(l.is_stale(Some(7)));
        assert!(l.is_stale(Some(3)));
        assert!(!l.is_stale(Some(8)));
        assert!(!l.is_stale(None), "audio without an event id cannot be judged stale");
        l.interrupted(None);
        assert!(l.is_stale(Some(7)), "an interruption without an id keeps the last mark");
        l.dialling(now);
        assert!(!l.is_stale(Some(3)), "a new connection numbers its events afresh");
    }
}
