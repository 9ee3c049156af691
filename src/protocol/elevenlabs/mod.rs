//! The ElevenLabs Agents WebSocket protocol (tests/fixtures/elevenlabs-agent.asyncapi.yaml), both directions: what a
//! client (our gateway) sends and parses, and what a server (our agent simulator) parses and sends. Plain
//! serde, no I/O; audio is borrowed from the frame text on the hot path.

use crate::audio::format::AudioFormat;
use crate::values::{shown, ConversationId, Invalid, Text};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

// ---------------------------------------------------------------------------------------------------------
// Client → server

/// Writes `{"user_audio_chunk":"<b64>"}` into a reused buffer; the payload is already base64.
pub fn write_user_audio_chunk(payload_b64: &str, out: &mut String) {
    out.clear();
    out.reserve(payload_b64.len() + 24);
    out.push_str("{\"user_audio_chunk\":\"");
    out.push_str(payload_b64);
    out.push_str("\"}");
}

/// `pong` echoing the ping's `event_id`.
pub fn pong(event_id: i64) -> String {
    format!("{{\"type\":\"pong\",\"event_id\":{event_id}}}")
}

/// Keeps the conversation from timing out while the caller is on hold.
pub fn user_activity() -> String {
    "{\"type\":\"user_activity\"}".to_string()
}

/// A non-interrupting note for the agent, e.g. a DTMF key.
pub fn contextual_update(text: &str) -> String {
    json!({"type": "contextual_update", "text": text}).to_string()
}

/// The answer to an MCP tool call awaiting approval.
pub fn mcp_tool_approval_result(tool_call_id: &str, is_approved: bool) -> String {
    json!({"type": "mcp_tool_approval_result", "tool_call_id": tool_call_id, "is_approved": is_approved}).to_string()
}

/// The answer to a `client_tool_call`.
pub fn client_tool_result(tool_call_id: &str, result: &str, is_error: bool) -> String {
    json!({"type": "client_tool_result", "tool_call_id": tool_call_id, "result": result, "is_error": is_error})
        .to_string()
}

/// The first message on every connection.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct ConversationInitiation {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dynamic_variables: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Only the overrides the operator configured: ElevenLabs refuses the conversation for any field the
    /// agent's security settings do not allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_config_override: Option<Value>,
}

pub const INITIATION_TYPE: &str = "conversation_initiation_client_data";

impl ConversationInitiation {
    /// Initiation carrying the call's numbers as dynamic variables.
    pub fn for_call(vars: &[(&str, &str)]) -> Self {
        ConversationInitiation {
            kind: INITIATION_TYPE.into(),
            dynamic_variables: vars
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect(),
            user_id: None,
            conversation_config_override: None,
        }
    }

    /// Adds `extra` variables (a route's); the call's own keep their values.
    pub fn add_variables(&mut self, extra: &BTreeMap<String, Value>) {
        for (k, v) in extra {
            self.dynamic_variables.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }

    /// The agent opens with `first_message` (empty: it waits for the caller) instead of its greeting.
    pub fn with_first_message(mut self, first_message: &str) -> Self {
        self.conversation_config_override = Some(json!({"agent": {"first_message": first_message}}));
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| format!("{{\"type\":\"{INITIATION_TYPE}\"}}"))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Server → client, as the gateway's ElevenLabs leg reads it

/// One message from the agent, its values typed and bounded (free text cleaned, formats parsed).
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent<'a> {
    Metadata {
        conversation_id: Option<ConversationId>,
        /// The caller's audio as the agent wants it and the agent's audio as it sends it; a format we
        /// cannot bridge is an error the call ends on.
        formats: Result<AgentFormats, Invalid>,
    },
    Audio {
        audio_b64: Cow<'a, str>,
        event_id: Option<i64>,
    },
    Interruption {
        event_id: Option<i64>,
    },
    Ping {
        event_id: i64,
        ping_ms: Option<u64>,
    },
    AgentResponse {
        text: Text,
    },
    /// The agent's last response was cut short by a barge-in: what was really said.
    AgentResponseCorrection {
        original: Text,
        corrected: Text,
    },
    UserTranscript {
        text: Text,
    },
    ClientToolCall {
        tool_name: Text,
        tool_call_id: Text,
    },
    /// An MCP tool call in one of its states; one `awaiting_approval` waits for our answer.
    McpToolCall {
        tool_call_id: Text,
        tool_name: Text,
        state: Text,
    },
    /// A server-side tool ran (transfer, end call, a webhook tool…).
    AgentToolResponse {
        tool_name: Text,
        is_error: bool,
    },
    /// A guardrail stopped the agent's response.
    GuardrailTriggered,
    Error {
        code: Option<i64>,
        error_type: Option<Text>,
        message: Option<Text>,
    },
    /// A type of the schema a phone gateway has no use for (docs/elevenlabs.md); not counted.
    Unused {
        kind: &'static str,
    },
    /// A type the schema does not have; ignored (counted) as the schema asks.
    Other {
        kind: String,
    },
}

/// Server messages of the schema the gateway deliberately does not act on, and why (docs/elevenlabs.md).
pub const UNUSED_SERVER_MESSAGES: [(&str, &str); 16] = [
    ("tentative_user_transcript", "the final user_transcript follows"),
    ("vad_score", "turn-taking is the agent's"),
    ("internal_turn_probability", "turn-taking is the agent's"),
    ("internal_tentative_agent_response", "the final agent_response follows"),
    ("agent_chat_response_part", "text-only conversations; a call speaks"),
    ("agent_reasoning_response_part", "the agent's reasoning is not spoken"),
    ("agent_typing", "text-only conversations"),
    ("rich_content", "nothing to show on a phone line"),
    ("agent_tool_request", "its agent_tool_response is recorded"),
    (
        "agent_tool_response_full_payload",
        "its agent_tool_response is recorded",
    ),
    ("mcp_connection_status", "the agent's own MCP connections"),
    ("context_usage", "the agent's own LLM context"),
    ("asr_initiation_metadata", "the agent's own recogniser"),
    ("external_agent_connected", "a human agent joining the agent's side"),
    ("external_agent_disconnected", "a human agent leaving the agent's side"),
    (
        "conversation_mode_change",
        "text-only conversations (the JS client's types)",
    ),
];

/// The agent's two audio formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentFormats {
    /// `user_input_audio_format`: what we send.
    pub input: AudioFormat,
    /// `agent_output_audio_format`: what we receive.
    pub output: AudioFormat,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentParseError {
    #[error("elevenlabs: message is not JSON: {0}")]
    NotJson(String),
    #[error("elevenlabs: message has no 'type'")]
    NoType,
    #[error("elevenlabs: '{0}' message lacks its event body")]
    MissingBody(&'static str),
    #[error("elevenlabs: {0}")]
    Invalid(#[from] Invalid),
}

fn agent_format(field: &'static str, name: &str) -> Result<AudioFormat, Invalid> {
    AudioFormat::from_elevenlabs(name)
        .ok_or_else(|| Invalid::new(field, format!("'{}' is not a format we bridge", shown(name))))
}

#[derive(Deserialize)]
struct RawAgent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    audio_event: Option<RawAudio<'a>>,
    #[serde(default)]
    conversation_initiation_metadata_event: Option<RawMetadata>,
    #[serde(default)]
    interruption_event: Option<RawEventId>,
    #[serde(default)]
    ping_event: Option<RawPing>,
    #[serde(default)]
    agent_response_event: Option<RawAgentResponse>,
    #[serde(default)]
    agent_response_correction_event: Option<RawCorrection>,
    /// The older fern schema's name for the correction's body.
    #[serde(default)]
    correction_event: Option<RawCorrection>,
    #[serde(default)]
    mcp_tool_call: Option<RawMcpToolCall>,
    #[serde(default)]
    agent_tool_response: Option<RawAgentToolResponse>,
    #[serde(default)]
    user_transcription_event: Option<RawTranscript>,
    #[serde(default)]
    client_tool_call: Option<RawToolCall>,
    #[serde(default)]
    error_event: Option<RawError>,
}

#[derive(Deserialize)]
struct RawAudio<'a> {
    #[serde(borrow)]
    audio_base_64: Cow<'a, str>,
    #[serde(default)]
    event_id: Option<i64>,
}

#[derive(Deserialize)]
struct RawMetadata {
    #[serde(default)]
    conversation_id: String,
    #[serde(default = "default_format")]
    agent_output_audio_format: String,
    #[serde(default = "default_format")]
    user_input_audio_format: String,
}

/// ElevenLabs' documented default when a format is not announced.
fn default_format() -> String {
    "pcm_16000".into()
}

#[derive(Deserialize)]
struct RawEventId {
    #[serde(default)]
    event_id: Option<i64>,
}

#[derive(Deserialize)]
struct RawPing {
    event_id: i64,
    #[serde(default)]
    ping_ms: Option<u64>,
}

#[derive(Deserialize)]
struct RawAgentResponse {
    #[serde(default)]
    agent_response: String,
}

#[derive(Deserialize)]
struct RawCorrection {
    #[serde(default)]
    original_agent_response: String,
    #[serde(default, alias = "corrected_response")]
    corrected_agent_response: String,
}

#[derive(Deserialize)]
struct RawMcpToolCall {
    #[serde(default)]
    tool_call_id: String,
    #[serde(default)]
    tool_name: String,
    #[serde(default)]
    state: String,
}

#[derive(Deserialize)]
struct RawAgentToolResponse {
    #[serde(default)]
    tool_name: String,
    #[serde(default)]
    is_error: bool,
}

#[derive(Deserialize)]
struct RawTranscript {
    #[serde(default)]
    user_transcript: String,
}

#[derive(Deserialize)]
struct RawToolCall {
    #[serde(default)]
    tool_name: String,
    #[serde(default)]
    tool_call_id: String,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Parses one text message from the agent.
pub fn parse_agent_event(text: &str) -> Result<AgentEvent<'_>, AgentParseError> {
    let raw: RawAgent<'_> = serde_json::from_str(text).map_err(|e| AgentParseError::NotJson(e.to_string()))?;
    let kind = raw.kind.ok_or(AgentParseError::NoType)?;
    let missing = AgentParseError::MissingBody;
    Ok(match kind.as_ref() {
        "audio" => {
            let a = raw.audio_event.ok_or(missing("audio"))?;
            AgentEvent::Audio {
                audio_b64: a.audio_base_64,
                event_id: a.event_id,
            }
        }
        "conversation_initiation_metadata" => metadata(
            raw.conversation_initiation_metadata_event
                .ok_or(missing("conversation_initiation_metadata"))?,
        )?,
        "interruption" => AgentEvent::Interruption {
            event_id: raw.interruption_event.and_then(|e| e.event_id),
        },
        "ping" => {
            let p = raw.ping_event.ok_or(missing("ping"))?;
            AgentEvent::Ping {
                event_id: p.event_id,
                ping_ms: p.ping_ms,
            }
        }
        "agent_response" => AgentEvent::AgentResponse {
            text: speech(raw.agent_response_event.map(|r| r.agent_response)),
        },
        "agent_response_correction" => {
            let c = raw
                .agent_response_correction_event
                .or(raw.correction_event)
                .ok_or(missing("agent_response_correction"))?;
            AgentEvent::AgentResponseCorrection {
                original: speech(Some(c.original_agent_response)),
                corrected: speech(Some(c.corrected_agent_response)),
            }
        }
        "mcp_tool_call" => {
            let m = raw.mcp_tool_call.ok_or(missing("mcp_tool_call"))?;
            AgentEvent::McpToolCall {
                tool_call_id: Text::clean(&m.tool_call_id, Text::SHORT),
                tool_name: Text::clean(&m.tool_name, Text::SHORT),
                state: Text::clean(&m.state, Text::SHORT),
            }
        }
        "agent_tool_response" => {
            let t = raw.agent_tool_response.ok_or(missing("agent_tool_response"))?;
            AgentEvent::AgentToolResponse {
                tool_name: Text::clean(&t.tool_name, Text::SHORT),
                is_error: t.is_error,
            }
        }
        "guardrail_triggered" => AgentEvent::GuardrailTriggered,
        "user_transcript" => AgentEvent::UserTranscript {
            text: speech(raw.user_transcription_event.map(|r| r.user_transcript)),
        },
        "client_tool_call" => {
            let t = raw.client_tool_call.ok_or(missing("client_tool_call"))?;
            AgentEvent::ClientToolCall {
                tool_name: Text::clean(&t.tool_name, Text::SHORT),
                tool_call_id: Text::clean(&t.tool_call_id, Text::SHORT),
            }
        }
        "error" => error(raw.error_event),
        other => match UNUSED_SERVER_MESSAGES.iter().find(|(k, _)| *k == other) {
            Some((kind, _)) => AgentEvent::Unused { kind },
            None => AgentEvent::Other { kind: shown(other) },
        },
    })
}

/// `conversation_initiation_metadata`: the conversation's id, and the formats (a format we cannot bridge is
/// kept as the error, for the call to end on).
fn metadata<'a>(m: RawMetadata) -> Result<AgentEvent<'a>, AgentParseError> {
    let conversation_id = (!m.conversation_id.is_empty())
        .then(|| ConversationId::parse("conversation_id", &m.conversation_id))
        .transpose()?;
    let formats = agent_format("user_input_audio_format", &m.user_input_audio_format).and_then(|input| {
        Ok(AgentFormats {
            input,
            output: agent_format("agent_output_audio_format", &m.agent_output_audio_format)?,
        })
    });
    Ok(AgentEvent::Metadata {
        conversation_id,
        formats,
    })
}

/// An `error` event, its fields bounded (all of them optional: ElevenLabs sends what it has).
fn error<'a>(e: Option<RawError>) -> AgentEvent<'a> {
    let e = e.unwrap_or(RawError {
        code: None,
        error_type: None,
        message: None,
    });
    AgentEvent::Error {
        code: e.code,
        error_type: e.error_type.map(|t| Text::clean(&t, Text::SHORT)),
        message: e.message.map(|m| Text::clean(&m, Text::SHORT)),
    }
}

fn speech(text: Option<String>) -> Text {
    Text::clean(text.as_deref().unwrap_or_default(), Text::SPEECH)
}

// ---------------------------------------------------------------------------------------------------------
// Client → server, as the agent simulator reads it

pub mod agent_side;
