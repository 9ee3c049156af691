//! `CallLog`: what a call counts and says about itself — counters, events, the transcript — and the one
//! snapshot (`CallRecord`) that both the database and `/calls` get. A plain part of the call.

use super::view::CallView;
use super::{CallInfo, CallState, EndReason, Role, TranscriptLine};
use crate::db::models::{now_ms, CallEvent, CallRecord, EventKind};
use crate::metrics::{Metrics, AGENT_TO_CARRIER, CARRIER_TO_AGENT};
use crate::protocol::elevenlabs::AgentFormats;
use crate::values::{ConversationId, Text};
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// Most transcript lines kept on a live call.
const MAX_TRANSCRIPT_LINES: usize = 500;
/// Events held on the call before they are sent to the database without waiting for the call's end.
pub const EVENT_FLUSH_AT: usize = 32;

/// Per-call counters (plain integers: the call is single-threaded).
#[derive(Debug, Default, Clone)]
pub struct CallStats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub interruptions: u64,
    pub stale_audio_dropped: u64,
    /// Chunks of caller audio dropped while held past the limit (the agent not ready).
    pub inbound_dropped: u64,
    pub upstream_reconnects: u64,
    pub pacing_resyncs: u64,
}

/// When the call began: the wall clock for records, the monotonic one for its length.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    at: SystemTime,
    instant: Instant,
}

impl Started {
    pub fn now() -> Self {
        Started {
            at: SystemTime::now(),
            instant: Instant::now(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.instant.elapsed()
    }

    pub fn unix_ms(&self) -> i64 {
        self.at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// What the call knows beyond its log, for a snapshot.
pub struct Facts<'a> {
    pub state: CallState,
    pub stream_id: Option<String>,
    pub agent_id: Option<&'a str>,
    pub conversation_id: Option<&'a ConversationId>,
    /// Every conversation of the call so far, in order.
    pub conversation_ids: &'a [ConversationId],
    pub carrier_format: Option<String>,
    pub agent_formats: Option<AgentFormats>,
}

pub struct CallLog {
    pub info: CallInfo,
    pub started: Started,
    pub stats: CallStats,
    /// How long the caller waited for each answer.
    pub turns: crate::call::turns::TurnLog,
    /// `stats` as last added to the process-wide counters.
    reported: CallStats,
    /// Each snapshot a higher, time-ordered revision; events numbered per call.
    revision: i64,
    event_seq: i64,
    pending_events: Vec<CallEvent>,
    /// Saved events whose text changed since (a corrected agent response): saved again under their key.
    pending_revisions: Vec<CallEvent>,
    transcript: VecDeque<TranscriptLine>,
    answered_ms: Option<i64>,
    error_detail: Option<String>,
    end_reason: Option<EndReason>,
}

impl CallLog {
    pub fn new(info: CallInfo) -> Self {
        CallLog {
            info,
            started: Started::now(),
            stats: CallStats::default(),
            turns: Default::default(),
            reported: CallStats::default(),
            revision: 0,
            event_seq: 0,
            pending_events: Vec::new(),
            pending_revisions: Vec::new(),
            transcript: VecDeque::new(),
            answered_ms: None,
            error_detail: None,
            end_reason: None,
        }
    }

    /// Adds an event; true when enough are held that they should be saved now.
    pub fn event(&mut self, kind: EventKind, detail: String) -> bool {
        self.event_seq += 1;
        self.pending_events.push(CallEvent {
            call_id: self.info.call_id.to_string(),
            carrier: self.info.carrier.as_str().into(),
            attempt: self.info.attempt,
            seq: self.event_seq,
            at_ms: now_ms(),
            kind: kind.as_str().to_string(),
            detail,
        });
        self.pending_events.len() >= EVENT_FLUSH_AT
    }

    /// An error on the record (the last one stands) and in the events. `error` says which side failed.
    pub fn error(&mut self, error: String) -> bool {
        self.error_detail = Some(error.clone());
        self.event(EventKind::Error, error)
    }

    /// Something said or done on the call, stored as its role's kind of event.
    pub fn line(&mut self, role: Role, text: Text) -> bool {
        let flush = self.event(role.event_kind(), text.to_string());
        if self.transcript.len() == MAX_TRANSCRIPT_LINES {
            self.transcript.pop_front();
        }
        let at_ms = self.started.elapsed().as_millis() as u64;
        let seq = self.event_seq;
        self.transcript.push_back(TranscriptLine { role, text, at_ms, seq });
        flush
    }

    /// The agent's response `original` was cut short: it now reads `corrected`, in the transcript and in
    /// its stored event (the latest agent line when none matches). False when there is no agent line.
    pub fn correct(&mut self, original: &Text, corrected: Text) -> bool {
        let agent_lines = || {
            self.transcript
                .iter()
                .enumerate()
                .rev()
                .filter(|(_, l)| l.role == Role::Agent)
        };
        let found = agent_lines()
            .find(|(_, l)| l.text == *original)
            .or_else(|| agent_lines().next())
            .map(|(i, _)| i);
        let Some(line) = found.and_then(|i| self.transcript.get_mut(i)) else {
            return false;
        };
        line.text = corrected.clone();
        let seq = line.seq;
        match self.pending_events.iter_mut().find(|e| e.seq == seq) {
            Some(e) => e.detail = corrected.to_string(),
            None => self.pending_revisions.push(CallEvent {
                call_id: self.info.call_id.to_string(),
                carrier: self.info.carrier.as_str().into(),
                attempt: self.info.attempt,
                seq,
                at_ms: self.started.unix_ms() + line.at_ms as i64,
                kind: "agent_response".into(),
                detail: corrected.to_string(),
            }),
        }
        true
    }

    /// What was said so far, newest last, as the lines that fit in `max_bytes`: a redialled conversation's
    /// context.
    pub fn recent_turns(&self, max_bytes: usize) -> Vec<String> {
        let mut used = 0;
        let mut turns: Vec<String> = self
            .transcript
            .iter()
            .rev()
            .filter_map(|l| match l.role {
                Role::User => Some(format!("Caller: {}", l.text)),
                Role::Agent => Some(format!("Agent: {}", l.text)),
                _ => None,
            })
            .take_while(|t| {
                used += t.len() + 1;
                used <= max_bytes
            })
            .collect();
        turns.reverse();
        turns
    }

    fn last_line(&self, role: Role) -> Option<Text> {
        self.transcript
            .iter()
            .rev()
            .find(|l| l.role == role)
            .map(|l| l.text.clone())
    }

    /// The call is bridged (once).
    pub fn answered(&mut self) {
        self.answered_ms.get_or_insert_with(now_ms);
    }

    /// How the call ended; the first reason stands.
    pub fn ended(&mut self, reason: EndReason) {
        self.end_reason.get_or_insert(reason);
    }

    pub fn end_reason(&self) -> Option<EndReason> {
        self.end_reason
    }

    /// The events not yet saved.
    pub fn take_events(&mut self) -> Vec<CallEvent> {
        std::mem::take(&mut self.pending_events)
    }

    /// Saved events to save again with their new text.
    pub fn take_revisions(&mut self) -> Vec<CallEvent> {
        std::mem::take(&mut self.pending_revisions)
    }

    /// A new revision for the next saved snapshot. Time-ordered, so a snapshot from a later process (a
    /// reused call id) also wins over an older one; the low digits order snapshots within one millisecond.
    pub fn next_revision(&mut self) -> i64 {
        self.revision = (now_ms() * 1000).max(self.revision + 1);
        self.revision
    }

    /// Adds what the call counted since the last flush to the process-wide counters. Per-frame counting
    /// stays in plain integers on the call: shared atomics bumped by every frame on every worker thread
    /// cost more than the frame's own work.
    pub fn flush_counters(&mut self, m: &Metrics) {
        let (s, r) = (&self.stats, &mut self.reported);
        let carrier = self.info.carrier.as_str();
        let add = |v: &prometheus::IntCounterVec, direction, n: u64| {
            if n > 0 {
                v.with_label_values(&[direction, carrier]).inc_by(n);
            }
        };
        add(&m.traffic.frames, CARRIER_TO_AGENT, s.frames_in - r.frames_in);
        add(&m.traffic.bytes, CARRIER_TO_AGENT, s.bytes_in - r.bytes_in);
        add(&m.traffic.frames, AGENT_TO_CARRIER, s.frames_out - r.frames_out);
        add(&m.traffic.bytes, AGENT_TO_CARRIER, s.bytes_out - r.bytes_out);
        *r = s.clone();
    }

    /// The call as it stands: the one snapshot that is saved and shown. Written whole, without `..`: a
    /// field added to the record does not compile until the call says what it holds.
    pub fn snapshot(&self, facts: Facts<'_>) -> CallRecord {
        let ended = facts.state == CallState::Ended;
        let now = now_ms();
        let (s, turns) = (&self.stats, self.turns.summary());
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let known = self.info.record(facts.state.into(), self.started.unix_ms());
        CallRecord {
            call_id: known.call_id,
            attempt: known.attempt,
            carrier: known.carrier,
            direction: known.direction,
            from_number: known.from_number,
            to_number: known.to_number,
            route: known.route,
            state: known.state,
            started_at: known.started_at,
            instance_id: known.instance_id,
            stream_id: facts.stream_id,
            agent_id: facts.agent_id.map(str::to_string),
            conversation_id: facts.conversation_id.map(|c| c.to_string()),
            conversation_ids: facts
                .conversation_ids
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(","),
            end_reason: self.end_reason.map(|r| r.as_str().to_string()),
            answered_at: self.answered_ms,
            ended_at: ended.then_some(now),
            duration_ms: count(self.started.elapsed().as_millis() as u64),
            frames_in: count(s.frames_in),
            frames_out: count(s.frames_out),
            bytes_in: count(s.bytes_in),
            bytes_out: count(s.bytes_out),
            interruptions: count(s.interruptions),
            upstream_reconnects: count(s.upstream_reconnects),
            carrier_format: facts.carrier_format,
            agent_input_format: facts.agent_formats.map(|f| f.input.elevenlabs_name()),
            agent_output_format: facts.agent_formats.map(|f| f.output.elevenlabs_name()),
            error_detail: self.error_detail.clone(),
            turns: i64::from(turns.turns),
            turn_p50_ms: turns.turn_p50_ms.map(i64::from),
            turn_p95_ms: turns.turn_p95_ms.map(i64::from),
            turn_elevenlabs_p50_ms: turns.turn_elevenlabs_p50_ms.map(i64::from),
            revision: self.revision,
            updated_at: now,
        }
    }

    /// `/calls`' view of a snapshot, with the last things said.
    pub fn view(&self, record: CallRecord) -> CallView {
        CallView {
            last_user_transcript: self.last_line(Role::User),
            last_agent_response: self.last_line(Role::Agent),
            ..CallView::of(record)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::CallId;

    fn log() -> CallLog {
        let id = CallId::parse("call_id", "LOG-1").expect("valid");
        CallLog::new(CallInfo::bare(
            crate::carriers::CallKey::new(crate::carriers::Carrier::Mcube, id),
            7,
        ))
    }

    #[test]
    fn events_are_numbered_and_ask_to_be_saved_in_batches() {
        let mut l = log();
        for i in 1..EVENT_FLUSH_AT {
            assert!(!l.event(EventKind::State, format!("{i}")), "event {i} waits");
        }
        assert!(l.event(EventKind::State, "last".into()), "a batch is due");
        let events = l.take_events();
        assert_eq!(events.len(), EVENT_FLUSH_AT);
        assert_eq!(
            events.last().map(|e| (e.seq, e.attempt)),
            Some((EVENT_FLUSH_AT as i64, 7))
        );
        assert!(l.take_events().is_empty());
    }

    #[test]
    fn a_correction_rewrites_the_agent_line_held_or_already_saved() {
        let mut l = log();
        let t = |s: &str| Text::clean(s, Text::SPEECH);
        l.line(Role::Agent, t("Your order ships on Monday and"));
        assert!(l.correct(&t("Your order ships on Monday and"), t("Your order ships on Monday")));
        let held = l.take_events();
        assert_eq!(
            held[0].detail, "Your order ships on Monday",
            "a held event is rewritten in place"
        );
        assert!(l.take_revisions().is_empty());
        l.line(Role::User, t("when?"));
        l.line(Role::Agent, t("It will arrive by"));
        let saved = l.take_events();
        assert!(
            l.correct(&t("something else"), t("It will arrive")),
            "no match: the latest agent line"
        );
        let revised = l.take_revisions();
        assert_eq!(revised.len(), 1);
        assert_eq!(
            (revised[0].seq, revised[0].kind.as_str()),
            (saved[1].seq, "agent_response")
        );
        assert_eq!(revised[0].detail, "It will arrive");
        assert_eq!(l.last_line(Role::Agent), Some(t("It will arrive")));
        assert_eq!(
            l.recent_turns(1000),
            vec![
                "Agent: Your order ships on Monday",
                "Caller: when?",
                "Agent: It will arrive"
            ]
        );
        assert_eq!(
            l.recent_turns(40),
            vec!["Caller: when?", "Agent: It will arrive"],
            "the newest that fit"
        );
        assert!(!log().correct(&t("x"), t("y")), "nothing to correct");
    }

    #[test]
    fn the_snapshot_and_the_view_say_the_same() {
        let mut l = log();
        l.stats.frames_in = 5;
        l.line(Role::User, Text::clean("hello", Text::SHORT));
        l.line(Role::Agent, Text::clean("hi there", Text::SHORT));
        l.error("elevenlabs: gone".into());
        l.ended(EndReason::CarrierStop);
        l.ended(EndReason::Admin);
        l.next_revision();
        let facts = Facts {
            state: CallState::Ended,
            stream_id: Some("S1".into()),
            agent_id: Some("agent"),
            conversation_id: None,
            conversation_ids: &[],
            carrier_format: Some("ulaw_8000".into()),
            agent_formats: None,
        };
        let rec = l.snapshot(facts);
        assert_eq!(
            rec.end_reason.as_deref(),
            Some("carrier_stop"),
            "the first end reason stands"
        );
        assert_eq!(rec.state, "ended");
        assert!(rec.ended_at.is_some() && rec.revision > 0);
        let view = l.view(rec.clone());
        assert_eq!(view.frames_in, 5);
        assert_eq!(view.stream_id, rec.stream_id);
        assert_eq!(view.carrier_format, rec.carrier_format);
        assert_eq!(
            view.last_user_transcript.map(|t| t.to_string()).as_deref(),
            Some("hello")
        );
        assert_eq!(
            view.last_agent_response.map(|t| t.to_string()).as_deref(),
            Some("hi there")
        );
    }
}
