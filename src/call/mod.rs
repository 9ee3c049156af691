//! One phone call: the `CallActor` that owns its state and the two legs it talks to — `McubeLeg` (the
//! carrier's inbound WebSocket) and `ElevenLabsLeg` (the outbound agent WebSocket) — plus the messages
//! between them and the views `/calls` shows.
pub mod actor;
pub mod elevenlabs_leg;
pub mod mcube_leg;
pub mod messages;

use serde::Serialize;

/// What the refurl told us about the call; feeds ElevenLabs' `dynamic_variables`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallInfo {
    pub call_id: String,
    pub from: String,
    pub to: String,
    pub direction: String,
}

/// Where a call is in its life (interface.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Connecting,
    Active,
    Ending,
    Ended,
}

/// Why a call ended; the `end_reason` on the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The carrier closed the WebSocket (or it dropped).
    CarrierHangup,
    /// The carrier sent `stop`.
    CarrierStop,
    /// The carrier went silent past the peer timeout.
    CarrierTimeout,
    /// No `start` event in time.
    CarrierNoStart,
    /// The carrier sent frames we cannot read at all.
    CarrierProtocolError,
    /// The agent closed with 1000 (end_call tool, max duration).
    AgentEnded,
    /// ElevenLabs could not be reached, or dropped, past the reconnect budget.
    ElevenlabsUnavailable,
    /// ElevenLabs refused the conversation (close 1008: contract or policy error).
    ElevenlabsRejected,
    /// The agent's formats cannot be bridged.
    ElevenlabsBadFormat,
    /// The call reached `calls.max_call_seconds`.
    MaxDuration,
    /// An operator ended it.
    Admin,
    /// The gateway shut down.
    Shutdown,
    /// The call actor was restarted by its supervisor.
    Internal,
}

impl EndReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::CarrierHangup => "carrier_hangup",
            EndReason::CarrierStop => "carrier_stop",
            EndReason::CarrierTimeout => "carrier_timeout",
            EndReason::CarrierNoStart => "carrier_no_start",
            EndReason::CarrierProtocolError => "carrier_protocol_error",
            EndReason::AgentEnded => "agent_ended",
            EndReason::ElevenlabsUnavailable => "elevenlabs_unavailable",
            EndReason::ElevenlabsRejected => "elevenlabs_rejected",
            EndReason::ElevenlabsBadFormat => "elevenlabs_bad_format",
            EndReason::MaxDuration => "max_duration",
            EndReason::Admin => "admin",
            EndReason::Shutdown => "shutdown",
            EndReason::Internal => "internal",
        }
    }

    /// Whether the carrier's socket may still be open, so it should be told `terminate`.
    pub fn carrier_still_there(&self) -> bool {
        !matches!(
            self,
            EndReason::CarrierHangup
                | EndReason::CarrierTimeout
                | EndReason::CarrierStop
                | EndReason::CarrierProtocolError
        )
    }
}

/// One line of what was said, kept on the call.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptLine {
    /// `user` or `agent`.
    pub role: &'static str,
    pub text: String,
    pub at_ms: u64,
}

/// A call as `/calls` shows it (interface.md §4 CALL).
#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    pub call_id: String,
    pub stream_id: Option<String>,
    pub from: String,
    pub to: String,
    pub direction: String,
    pub state: CallState,
    pub started_at: String,
    pub duration_ms: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub interruptions: u64,
    pub upstream_reconnects: u64,
    pub conversation_id: Option<String>,
    pub carrier_format: Option<String>,
    pub agent_input_format: Option<String>,
    pub agent_output_format: Option<String>,
    pub last_user_transcript: Option<String>,
    pub last_agent_response: Option<String>,
    pub end_reason: Option<EndReason>,
}

impl CallView {
    /// A call that holds a slot but whose carrier WebSocket has not arrived yet.
    pub fn reserved(info: &CallInfo, admitted_at: std::time::SystemTime) -> CallView {
        CallView {
            call_id: info.call_id.clone(),
            stream_id: None,
            from: info.from.clone(),
            to: info.to.clone(),
            direction: info.direction.clone(),
            state: CallState::Connecting,
            started_at: humantime::format_rfc3339_millis(admitted_at).to_string(),
            duration_ms: admitted_at.elapsed().map_or(0, |d| d.as_millis() as u64),
            frames_in: 0,
            frames_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            interruptions: 0,
            upstream_reconnects: 0,
            conversation_id: None,
            carrier_format: None,
            agent_input_format: None,
            agent_output_format: None,
            last_user_transcript: None,
            last_agent_response: None,
            end_reason: None,
        }
    }
}
