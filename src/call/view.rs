//! How a call is shown — `/calls`, `/calls/{id}` and `/calls/history` alike (docs/admin-api.md): one view,
//! made from the one record (`db::models::CallRecord`). `CallView::of` takes the record apart whole, so a
//! field added to the record does not compile until it says how the field is shown, or that it is not.
//! What hangs off the call's key (its events, the carrier's status report, the other attempts) is added
//! beside it by `with_*`.

use super::turns::TurnSummary;
use super::CallInfo;
use crate::db::models::{AnalysisRow, CallEvent, CallRecord, CallRow, RecordState, RecordingRow};
use crate::db::AttemptSummary;
use crate::values::Text;
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A call as the admin API shows it, live or stored.
#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    pub call_id: String,
    pub attempt: i64,
    pub stream_id: Option<String>,
    /// Which carrier's webhook admitted it (`mcube`, `plivo`, `exotel`, `twilio`).
    pub carrier: String,
    /// The route it was admitted on (docs/routes.md); '' when none.
    pub route: String,
    /// The agent it talks to (its route's).
    pub agent_id: Option<String>,
    pub from: String,
    pub to: String,
    pub direction: String,
    pub state: String,
    pub started_at: String,
    pub answered_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: i64,
    pub frames_in: i64,
    pub frames_out: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub interruptions: i64,
    pub upstream_reconnects: i64,
    pub conversation_id: Option<String>,
    /// Every conversation of the call, in order (a redial starts a new one).
    pub conversation_ids: Vec<String>,
    pub carrier_format: Option<String>,
    pub agent_input_format: Option<String>,
    pub agent_output_format: Option<String>,
    pub end_reason: Option<String>,
    pub error_detail: Option<String>,
    /// How long the caller waited for the agent's answers (docs/metrics.md, Turn latency).
    #[serde(flatten)]
    pub turns: TurnSummary,
    /// The last things said, while the call is live (a stored call's are in its events).
    pub last_user_transcript: Option<Text>,
    pub last_agent_response: Option<Text>,
    /// The carrier's status report, once it came (`calls.dial_status`, `calls.recording_url`).
    pub dial_status: Option<String>,
    pub recording_url: Option<String>,
    /// `/calls/{id}` of a stored call: its events in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<StoredEvent>>,
    /// `/calls/{id}` of a stored call: every attempt of this call id, newest first (the one shown among them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<AttemptSummary>>,
    /// `/calls/{id}` of a stored call the gateway recorded (docs/recording.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingView>,
    /// What the call came to, once stored: ElevenLabs' verdict on its last judged conversation and the
    /// gateway's recording (on `/calls/history` and its CSV too; empty while live or not yet known).
    pub outcome: Outcome,
    /// `/calls/{id}` of a stored call: ElevenLabs' verdict on each of its conversations that has one
    /// (docs/post-call.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyses: Option<Vec<AnalysisView>>,
}

/// ElevenLabs' verdict on one conversation, as shown (its JSON parts as JSON).
#[derive(Debug, Clone, Serialize)]
pub struct AnalysisView {
    pub conversation_id: String,
    pub kind: String,
    pub status: Option<String>,
    pub call_successful: Option<String>,
    pub summary: Option<String>,
    pub title: Option<String>,
    pub duration_secs: Option<i64>,
    pub cost: Option<i64>,
    pub termination_reason: Option<String>,
    pub main_language: Option<String>,
    pub failure: Option<String>,
    pub data_collection: Option<serde_json::Value>,
    pub evaluation: Option<serde_json::Value>,
    pub transcript: Option<serde_json::Value>,
    /// `webhook` or `reconciler`.
    pub source: String,
}

/// What a stored call came to, in a few fields (docs/post-call.md, docs/recording.md).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// ElevenLabs' `call_successful`: `success`, `failure` or `unknown`.
    pub call_successful: Option<String>,
    pub summary: Option<String>,
    /// ElevenLabs' cost of the conversation (credits).
    pub cost: Option<i64>,
    /// The recording's upload URL, else its file.
    pub recording: Option<String>,
    pub recording_complete: Option<bool>,
}

impl Outcome {
    pub fn of(verdict: Option<&AnalysisRow>, recording: Option<&RecordingRow>) -> Outcome {
        Outcome {
            call_successful: verdict.and_then(|v| v.call_successful.clone()),
            summary: verdict.and_then(|v| v.summary.clone()),
            cost: verdict.and_then(|v| v.cost),
            recording: recording.map(|r| r.url.clone().unwrap_or_else(|| r.path.clone())),
            recording_complete: recording.map(|r| r.complete),
        }
    }
}

/// The gateway's recording of a call attempt, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingView {
    pub path: String,
    pub bytes: i64,
    pub duration_ms: i64,
    pub complete: bool,
    pub lost_ms: i64,
    pub paused_ms: i64,
    pub error: Option<String>,
    pub url: Option<String>,
}

/// One of a stored call's events, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub detail: String,
}

impl CallView {
    /// The record, as shown.
    pub fn of(record: CallRecord) -> CallView {
        // Whole, without `..`: a new field is shown here or named as not shown.
        let CallRecord {
            call_id,
            attempt,
            stream_id,
            carrier,
            direction,
            from_number,
            to_number,
            agent_id,
            conversation_id,
            state,
            end_reason,
            started_at,
            answered_at,
            ended_at,
            duration_ms,
            frames_in,
            frames_out,
            bytes_in,
            bytes_out,
            interruptions,
            upstream_reconnects,
            carrier_format,
            agent_input_format,
            agent_output_format,
            error_detail,
            revision: _,
            updated_at: _,
            instance_id: _,
            conversation_ids,
            route,
            turns,
            turn_p50_ms,
            turn_p95_ms,
            turn_elevenlabs_p50_ms,
        } = record;
        CallView {
            call_id,
            attempt,
            stream_id,
            carrier,
            route,
            agent_id,
            from: from_number,
            to: to_number,
            direction,
            state,
            started_at: rfc3339(started_at),
            answered_at: answered_at.map(rfc3339),
            ended_at: ended_at.map(rfc3339),
            duration_ms,
            frames_in,
            frames_out,
            bytes_in,
            bytes_out,
            interruptions,
            upstream_reconnects,
            conversation_id,
            conversation_ids: conversations(&conversation_ids),
            carrier_format,
            agent_input_format,
            agent_output_format,
            end_reason,
            error_detail,
            turns: TurnSummary::stored(turns, turn_p50_ms, turn_p95_ms, turn_elevenlabs_p50_ms),
            last_user_transcript: None,
            last_agent_response: None,
            dial_status: None,
            recording_url: None,
            events: None,
            attempts: None,
            recording: None,
            analyses: None,
            outcome: Outcome::default(),
        }
    }

    /// A stored row: the record and the carrier's status report beside it.
    pub fn of_row(row: CallRow) -> CallView {
        let CallRow {
            call,
            dial_status,
            recording_url,
        } = row;
        CallView {
            dial_status,
            recording_url,
            ..CallView::of(call)
        }
    }

    /// With its events, in order.
    pub fn with_events(mut self, events: Vec<CallEvent>) -> CallView {
        let shown = events.into_iter().map(|e| StoredEvent {
            seq: e.seq,
            at: rfc3339(e.at_ms),
            kind: e.kind,
            detail: e.detail,
        });
        self.events = Some(shown.collect());
        self
    }

    /// With every attempt of its call id.
    pub fn with_attempts(mut self, attempts: Vec<AttemptSummary>) -> CallView {
        self.attempts = Some(attempts);
        self
    }

    /// What the stored call came to (`outcome`), its recording and its verdicts shown whole.
    pub fn with_after_call(self, recording: Option<RecordingRow>, analyses: Vec<AnalysisRow>) -> CallView {
        let outcome = Outcome::of(analyses.last(), recording.as_ref());
        CallView {
            outcome,
            ..self.with_recording(recording).with_analyses(analyses)
        }
    }

    pub fn with_analyses(mut self, rows: Vec<AnalysisRow>) -> CallView {
        let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
        let shown = rows.into_iter().map(|a| AnalysisView {
            conversation_id: a.conversation_id,
            kind: a.kind,
            status: a.status,
            call_successful: a.call_successful,
            summary: a.summary,
            title: a.title,
            duration_secs: a.duration_secs,
            cost: a.cost,
            termination_reason: a.termination_reason,
            main_language: a.main_language,
            failure: a.failure,
            data_collection: json(a.data_collection),
            evaluation: json(a.evaluation),
            transcript: json(a.transcript),
            source: a.source,
        });
        self.analyses = Some(shown.collect());
        self
    }

    pub fn with_recording(mut self, row: Option<RecordingRow>) -> CallView {
        self.recording = row.map(|r| RecordingView {
            path: r.path,
            bytes: r.bytes,
            duration_ms: r.duration_ms,
            complete: r.complete,
            lost_ms: r.lost_ms,
            paused_ms: r.paused_ms,
            error: r.error,
            url: r.url,
        });
        self
    }

    /// A call that holds a slot but whose carrier WebSocket has not arrived yet.
    pub fn reserved(info: &CallInfo, admitted_at: SystemTime) -> CallView {
        let admitted_ms = admitted_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut rec = info.record(RecordState::Connecting, admitted_ms);
        rec.duration_ms = admitted_at.elapsed().map_or(0, |d| d.as_millis() as i64);
        CallView::of(rec)
    }
}

/// Unix milliseconds as RFC 3339 (a negative time shows as the epoch).
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// The stored list of conversation ids, as a list.
pub fn conversations(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
