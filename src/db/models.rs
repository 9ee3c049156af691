//! Rows of the `calls` and `call_events` tables, and what the gateway writes: a call's snapshot, its events,
//! a carrier status report. Serializable, because what the database cannot take goes to the spool.
//!
//! The fields are plain strings because the writer must survive anything (a row the database refuses is
//! set aside, never retried forever), but the gateway builds records only from validated values
//! (`CallInfo::record` in `call`), so what the carrier sent reaches a record only through them.

use super::schema::{call_analyses, call_events, call_recordings, calls};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};

/// Everything the gateway knows about one attempt of a call, written as a whole each time (an idempotent
/// upsert keyed on `(call_id, carrier, attempt)`; a lower `revision` never overwrites a higher one). The carrier's
/// status report columns (`dial_status`, `recording_url`) are not part of it, so a snapshot never erases
/// them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Insertable, AsChangeset, Queryable, Selectable)]
#[diesel(table_name = calls, treat_none_as_null = true)]
pub struct CallRecord {
    pub call_id: String,
    /// Which attempt of this call id (`new_attempt`); spool lines from before attempts existed read as 0.
    #[serde(default)]
    pub attempt: i64,
    pub stream_id: Option<String>,
    pub carrier: String,
    pub direction: String,
    pub from_number: String,
    pub to_number: String,
    pub agent_id: Option<String>,
    pub conversation_id: Option<String>,
    /// `connecting`, `active`, `ended`, `rejected`, `aborted`.
    pub state: String,
    pub end_reason: Option<String>,
    /// Unix milliseconds.
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub duration_ms: i64,
    pub frames_in: i64,
    pub frames_out: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub interruptions: i64,
    pub upstream_reconnects: i64,
    pub carrier_format: Option<String>,
    pub agent_input_format: Option<String>,
    pub agent_output_format: Option<String>,
    pub error_detail: Option<String>,
    /// Grows with each snapshot of the same call; 0 means "only if there is no row yet" (refusals).
    pub revision: i64,
    pub updated_at: i64,
    /// The gateway instance that carried the call (`server.instance_id`); stamped by the batcher when
    /// empty. Spool lines from before instances existed read as ''.
    #[serde(default)]
    pub instance_id: String,
    /// Every ElevenLabs conversation of the call, in order, comma-separated (a redial starts a new one).
    #[serde(default)]
    pub conversation_ids: String,
    /// The route the call was admitted on (docs/routes.md); '' when none was chosen.
    #[serde(default)]
    pub route: String,
    /// Agent answers measured (docs/metrics.md, Turn latency), their median and 95th percentile in ms, and
    /// ElevenLabs' share at the median; spool lines from before turns were measured read as none.
    #[serde(default)]
    pub turns: i64,
    #[serde(default)]
    pub turn_p50_ms: Option<i64>,
    #[serde(default)]
    pub turn_p95_ms: Option<i64>,
    #[serde(default)]
    pub turn_elevenlabs_p50_ms: Option<i64>,
}

impl CallRecord {
    /// A row for a call the database has no record of, known by its key only (a carrier's status report
    /// about a call it never had admitted here); what the gateway knows is filled in by its callers.
    pub fn stub(call_id: &str, attempt: i64, state: RecordState, at_ms: i64) -> CallRecord {
        CallRecord {
            call_id: call_id.to_string(),
            attempt,
            carrier: "mcube".into(),
            state: state.as_str().into(),
            started_at: at_ms,
            updated_at: at_ms,
            ..CallRecord::default()
        }
    }
}

/// The states a record is written in: a call's own (`call::CallState`), and those of calls that never
/// became one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Connecting,
    Active,
    Ending,
    Ended,
    /// Refused at admission (its end reason says why).
    Rejected,
    /// Admitted, but its carrier's socket never came before the admission deadline.
    Expired,
    /// Left live by an instance that stopped without ending it; closed by the next start or a peer.
    Aborted,
    /// Known only from the carrier's status report.
    Reported,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Connecting => "connecting",
            RecordState::Active => "active",
            RecordState::Ending => "ending",
            RecordState::Ended => "ended",
            RecordState::Rejected => "rejected",
            RecordState::Expired => "expired",
            RecordState::Aborted => "aborted",
            RecordState::Reported => "reported",
        }
    }

    /// The states of a call still under way somewhere.
    pub const LIVE: [RecordState; 3] = [RecordState::Connecting, RecordState::Active, RecordState::Ending];

    /// Every state, in a call's order.
    pub const ALL: [RecordState; 8] = [
        RecordState::Connecting,
        RecordState::Active,
        RecordState::Ending,
        RecordState::Ended,
        RecordState::Rejected,
        RecordState::Expired,
        RecordState::Aborted,
        RecordState::Reported,
    ];

    /// The state named `name` (as records store it).
    pub fn parse(name: &str) -> Option<RecordState> {
        RecordState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What a call's event is about (docs/records.md); stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    State,
    UserTranscript,
    AgentResponse,
    Interruption,
    Dtmf,
    ToolCall,
    McpToolCall,
    AgentTool,
    GuardrailTriggered,
    Resumed,
    GreetingMuted,
    /// An admin listened in (who, from where).
    Listen,
    /// The recording was paused or resumed.
    Recording,
    Error,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::State => "state",
            EventKind::UserTranscript => "user_transcript",
            EventKind::AgentResponse => "agent_response",
            EventKind::Interruption => "interruption",
            EventKind::Dtmf => "dtmf",
            EventKind::ToolCall => "tool_call",
            EventKind::McpToolCall => "mcp_tool_call",
            EventKind::AgentTool => "agent_tool",
            EventKind::GuardrailTriggered => "guardrail_triggered",
            EventKind::Resumed => "resumed",
            EventKind::GreetingMuted => "greeting_muted",
            EventKind::Listen => "listen",
            EventKind::Recording => "recording",
            EventKind::Error => "error",
        }
    }
}

/// One row of `calls` as read back: the call's snapshot and the carrier's status report beside it. Reading
/// a field of the snapshot reads it through the row (`row.state`).
#[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable)]
#[diesel(table_name = calls)]
pub struct CallRow {
    #[diesel(embed)]
    #[serde(flatten)]
    pub call: CallRecord,
    pub dial_status: Option<String>,
    pub recording_url: Option<String>,
}

impl std::ops::Deref for CallRow {
    type Target = CallRecord;

    fn deref(&self) -> &CallRecord {
        &self.call
    }
}

/// Something that happened during a call; `(call_id, carrier, attempt, seq)` is unique, so replays insert it
/// once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Insertable, Queryable, Selectable)]
#[diesel(table_name = call_events)]
pub struct CallEvent {
    pub call_id: String,
    /// Whose call (events spooled before calls were keyed by carrier were all Mcube's).
    #[serde(default = "mcube")]
    pub carrier: String,
    #[serde(default)]
    pub attempt: i64,
    pub seq: i64,
    pub at_ms: i64,
    /// An `EventKind`'s name (docs/records.md).
    pub kind: String,
    pub detail: String,
}

fn mcube() -> String {
    "mcube".into()
}

/// The carrier's hang-up/status report from the refurl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub call_id: String,
    /// The attempt it is about when the call is still known to the registry; otherwise the latest one.
    #[serde(default)]
    pub attempt: Option<i64>,
    pub dial_status: String,
    pub recording_url: Option<String>,
    pub at_ms: i64,
}

/// The gateway's own recording of a call attempt (docs/recording.md), once its file is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Insertable, Queryable, Selectable, AsChangeset)]
#[diesel(table_name = call_recordings)]
pub struct RecordingRow {
    pub call_id: String,
    pub carrier: String,
    pub attempt: i64,
    /// The file, under `recording.dir`.
    pub path: String,
    pub bytes: i64,
    pub duration_ms: i64,
    /// Nothing was lost: every sample of both sides reached the file.
    pub complete: bool,
    /// Audio lost (a slow or full disk, a side running ahead of the call's clock).
    pub lost_ms: i64,
    /// Written as silence while the recording was paused.
    pub paused_ms: i64,
    /// Why it is incomplete, when the disk said.
    pub error: Option<String>,
    /// Where it was uploaded.
    pub url: Option<String>,
    pub updated_at: i64,
}

/// ElevenLabs' verdict on one conversation (docs/post-call.md): from its post-call webhook or the
/// reconciler, as `protocol::post_call` read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Insertable, Queryable, Selectable)]
#[diesel(table_name = call_analyses)]
pub struct AnalysisRow {
    pub conversation_id: String,
    /// `post_call_transcription` or `call_initiation_failure`.
    pub kind: String,
    pub agent_id: Option<String>,
    /// ElevenLabs' `event_timestamp`, Unix seconds.
    pub event_at: i64,
    pub status: Option<String>,
    pub call_successful: Option<String>,
    pub summary: Option<String>,
    pub title: Option<String>,
    /// JSON text.
    pub data_collection: Option<String>,
    pub evaluation: Option<String>,
    pub transcript: Option<String>,
    pub duration_secs: Option<i64>,
    pub cost: Option<i64>,
    pub termination_reason: Option<String>,
    pub main_language: Option<String>,
    pub failure: Option<String>,
    /// `webhook` or `reconciler`.
    pub source: String,
    pub received_at: i64,
}

impl AnalysisRow {
    /// A verdict as read at the edge, to be stored; `source` says how it came (`webhook`, `reconciler`).
    pub fn of(p: crate::protocol::post_call::PostCall, source: &str) -> AnalysisRow {
        AnalysisRow {
            conversation_id: p.conversation_id,
            kind: p.kind.to_string(),
            agent_id: p.agent_id,
            event_at: p.event_at,
            status: p.status,
            call_successful: p.call_successful,
            summary: p.summary,
            title: p.title,
            data_collection: p.data_collection,
            evaluation: p.evaluation,
            transcript: p.transcript,
            duration_secs: p.duration_secs,
            cost: p.cost,
            termination_reason: p.termination_reason,
            main_language: p.main_language,
            failure: p.failure,
            source: source.to_string(),
            received_at: now_ms(),
        }
    }
}

/// One unit of work for the database, as written to the spool when the database cannot take it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Adjacently tagged: an internally tagged enum cannot carry the list of events.
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum DbWrite {
    Call(Box<CallRecord>),
    Events(Vec<CallEvent>),
    Status(StatusReport),
    /// An event saved before whose text changed (a corrected agent response): replaces the stored one by
    /// its key, or is inserted if it never arrived.
    Revise(CallEvent),
    /// A recording's row: replaces the one of its attempt.
    Recording(Box<RecordingRow>),
    /// A conversation's verdict: kept unless one is already there (deliveries are retried).
    Analysis(Box<AnalysisRow>),
}

impl DbWrite {
    /// The call a snapshot is of (`None` for events, status reports and revisions).
    pub fn call_id(&self) -> Option<&str> {
        match self {
            DbWrite::Call(rec) => Some(&rec.call_id),
            _ => None,
        }
    }
}

/// A new attempt number: Unix microseconds, made unique and increasing within the process, so attempts of
/// one call id sort in the order they were made.
pub fn new_attempt() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = now_ms().saturating_mul(1000);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
