//! The ElevenLabs Agents WebSocket protocol (specs/elevenlabs-agent.asyncapi.yaml), both directions: what a
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

/// `user_audio_chunk` for a carrier's base64 payload passed through as is, or `None` when the payload is
/// not base64 (it would otherwise be spliced into the JSON unchecked).
pub fn passthrough_user_audio(payload_b64: &str) -> Option<String> {
    if !super::is_base64(payload_b64) {
        return None;
    }
    let mut text = String::new();
    write_user_audio_chunk(payload_b64, &mut text);
    Some(text)
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
        }
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
    AgentResponseCorrection {
        text: Text,
    },
    UserTranscript {
        text: Text,
    },
    ClientToolCall {
        tool_name: Text,
        tool_call_id: Text,
    },
    Error {
        code: Option<i64>,
        error_type: Option<Text>,
        message: Option<Text>,
    },
    /// A known-but-unused or unknown `type`; ignored (counted) as the schema asks.
    Other {
        kind: String,
    },
}

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
    corrected_agent_response: String,
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
        "conversation_initiation_metadata" => {
            let m = raw
                .conversation_initiation_metadata_event
                .ok_or(missing("conversation_initiation_metadata"))?;
            let conversation_id = (!m.conversation_id.is_empty())
                .then(|| ConversationId::parse("conversation_id", &m.conversation_id))
                .transpose()?;
            let formats = agent_format("user_input_audio_format", &m.user_input_audio_format).and_then(|input| {
                Ok(AgentFormats {
                    input,
                    output: agent_format("agent_output_audio_format", &m.agent_output_audio_format)?,
                })
            });
            AgentEvent::Metadata {
                conversation_id,
                formats,
            }
        }
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
        "agent_response_correction" => AgentEvent::AgentResponseCorrection {
            text: speech(raw.agent_response_correction_event.map(|r| r.corrected_agent_response)),
        },
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
        "error" => {
            let e = raw.error_event.unwrap_or(RawError {
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
        other => AgentEvent::Other { kind: shown(other) },
    })
}

fn speech(text: Option<String>) -> Text {
    Text::clean(text.as_deref().unwrap_or_default(), Text::SPEECH)
}

// ---------------------------------------------------------------------------------------------------------
// Client → server, as the agent simulator reads it

/// One message from a client (the gateway), as a server sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage<'a> {
    UserAudio { audio_b64: Cow<'a, str> },
    Initiation(ConversationInitiation),
    Pong { event_id: i64 },
    UserActivity,
    ContextualUpdate { text: String },
    ClientToolResult { tool_call_id: String },
    Other { kind: String },
}

#[derive(Deserialize)]
struct RawClient<'a> {
    #[serde(borrow, default)]
    user_audio_chunk: Option<super::CowStr<'a>>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

/// Parses one client message; the initiation is re-read in full since it is rare.
pub fn parse_client_message(text: &str) -> Result<ClientMessage<'_>, AgentParseError> {
    let raw: RawClient<'_> = serde_json::from_str(text).map_err(|e| AgentParseError::NotJson(e.to_string()))?;
    if let Some(audio_b64) = raw.user_audio_chunk {
        return Ok(ClientMessage::UserAudio { audio_b64: audio_b64.0 });
    }
    let kind = raw.kind.ok_or(AgentParseError::NoType)?;
    let full = || serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    Ok(match kind.as_str() {
        INITIATION_TYPE => {
            ClientMessage::Initiation(serde_json::from_str(text).map_err(|e| AgentParseError::NotJson(e.to_string()))?)
        }
        "pong" => ClientMessage::Pong {
            event_id: full()["event_id"]
                .as_i64()
                .ok_or(AgentParseError::MissingBody("pong"))?,
        },
        "user_activity" => ClientMessage::UserActivity,
        "contextual_update" => ClientMessage::ContextualUpdate {
            text: full()["text"].as_str().unwrap_or_default().to_string(),
        },
        "client_tool_result" => ClientMessage::ClientToolResult {
            tool_call_id: full()["tool_call_id"].as_str().unwrap_or_default().to_string(),
        },
        _ => ClientMessage::Other { kind },
    })
}

// ---------------------------------------------------------------------------------------------------------
// Server → client, as the agent simulator writes it

/// `conversation_initiation_metadata` announcing the conversation and its formats.
pub fn metadata(conversation_id: &str, output_format: &str, input_format: &str) -> String {
    json!({"type": "conversation_initiation_metadata", "conversation_initiation_metadata_event": {
        "conversation_id": conversation_id, "agent_output_audio_format": output_format,
        "user_input_audio_format": input_format}})
    .to_string()
}

/// An agent `audio` event; `audio_b64` is already base64.
pub fn audio(audio_b64: &str, event_id: i64, out: &mut String) {
    out.clear();
    let _ = write!(
        out,
        "{{\"type\":\"audio\",\"audio_event\":{{\"audio_base_64\":\"{audio_b64}\",\"event_id\":{event_id}}}}}"
    );
}

pub fn interruption(event_id: i64) -> String {
    json!({"type": "interruption", "interruption_event": {"event_id": event_id}}).to_string()
}

pub fn ping(event_id: i64, ping_ms: Option<u64>) -> String {
    json!({"type": "ping", "ping_event": {"event_id": event_id, "ping_ms": ping_ms}}).to_string()
}

pub fn agent_response(text: &str, event_id: i64) -> String {
    json!({"type": "agent_response", "agent_response_event": {"agent_response": text, "event_id": event_id}})
        .to_string()
}

pub fn user_transcript(text: &str, event_id: i64) -> String {
    json!({"type": "user_transcript", "user_transcription_event": {"user_transcript": text, "event_id": event_id}})
        .to_string()
}

pub fn client_tool_call(tool_name: &str, tool_call_id: &str, event_id: i64) -> String {
    json!({"type": "client_tool_call", "client_tool_call": {"tool_name": tool_name, "tool_call_id": tool_call_id,
        "parameters": {}, "event_id": event_id}})
    .to_string()
}

pub fn error(code: i64, error_type: &str, message: &str) -> String {
    json!({"type": "error", "error_event": {"code": code, "error_type": error_type, "message": message}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_events() {
        let text = metadata("conv_1", "ulaw_8000", "pcm_16000");
        let m = parse_agent_event(&text).expect("meta");
        assert_eq!(
            m,
            AgentEvent::Metadata {
                conversation_id: ConversationId::parse("c", "conv_1").ok(),
                formats: Ok(AgentFormats {
                    input: AudioFormat::PCM_16K,
                    output: AudioFormat::ULAW_8K
                })
            }
        );
        let odd = metadata("conv_1", "mp3_44100", "pcm_16000");
        assert!(matches!(
            parse_agent_event(&odd),
            Ok(AgentEvent::Metadata { formats: Err(ref e), .. }) if e.field == "agent_output_audio_format"
        ));
        assert!(matches!(
            parse_agent_event(&metadata("conv\u{0}1", "ulaw_8000", "ulaw_8000")),
            Err(AgentParseError::Invalid(_))
        ));
        let mut buf = String::new();
        audio("AAEC", 7, &mut buf);
        let a = parse_agent_event(&buf).expect("audio");
        assert!(matches!(
            a,
            AgentEvent::Audio {
                audio_b64: Cow::Borrowed("AAEC"),
                event_id: Some(7)
            }
        ));
        assert_eq!(
            parse_agent_event(&interruption(9)),
            Ok(AgentEvent::Interruption { event_id: Some(9) })
        );
        assert_eq!(
            parse_agent_event(&ping(5, None)),
            Ok(AgentEvent::Ping {
                event_id: 5,
                ping_ms: None
            })
        );
        assert_eq!(
            parse_agent_event(&user_transcript("hel\u{0}lo", 2)),
            Ok(AgentEvent::UserTranscript {
                text: Text::clean("hello", Text::SPEECH)
            })
        );
        assert_eq!(
            parse_agent_event(r#"{"type":"vad_score","vad_score_event":{"vad_score":0.9}}"#),
            Ok(AgentEvent::Other {
                kind: "vad_score".into()
            })
        );
        assert_eq!(
            parse_agent_event(r#"{"type":"audio"}"#),
            Err(AgentParseError::MissingBody("audio"))
        );
        assert_eq!(parse_agent_event("{}"), Err(AgentParseError::NoType));
        assert!(matches!(parse_agent_event("[1"), Err(AgentParseError::NotJson(_))));
    }

    #[test]
    fn client_messages_round_trip() {
        let mut buf = String::new();
        write_user_audio_chunk("QUJD", &mut buf);
        assert!(matches!(
            parse_client_message(&buf),
            Ok(ClientMessage::UserAudio {
                audio_b64: Cow::Borrowed("QUJD")
            })
        ));
        assert_eq!(
            parse_client_message(&pong(42)),
            Ok(ClientMessage::Pong { event_id: 42 })
        );
        let init = ConversationInitiation::for_call(&[("caller_number", "+91"), ("call_id", "C1")]);
        assert_eq!(
            parse_client_message(&init.to_json()),
            Ok(ClientMessage::Initiation(init))
        );
        assert_eq!(parse_client_message(&user_activity()), Ok(ClientMessage::UserActivity));
        assert_eq!(
            parse_client_message(&contextual_update("DTMF 5")),
            Ok(ClientMessage::ContextualUpdate { text: "DTMF 5".into() })
        );
    }
}
