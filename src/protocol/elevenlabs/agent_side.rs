//! The agent's side of the ElevenLabs protocol, as the simulator speaks it: the client's messages parsed,
//! the agent's events written. The gateway itself uses only the other direction.

use super::*;

/// One message from a client (the gateway), as a server sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage<'a> {
    UserAudio { audio_b64: Cow<'a, str> },
    Initiation(ConversationInitiation),
    Pong { event_id: i64 },
    UserActivity,
    ContextualUpdate { text: String },
    ClientToolResult { tool_call_id: String },
    McpToolApproval { tool_call_id: String, is_approved: bool },
    Other { kind: String },
}

#[derive(Deserialize)]
struct RawClient<'a> {
    #[serde(borrow, default)]
    user_audio_chunk: Option<crate::protocol::CowStr<'a>>,
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
        "mcp_tool_approval_result" => {
            let v = full();
            ClientMessage::McpToolApproval {
                tool_call_id: v["tool_call_id"].as_str().unwrap_or_default().to_string(),
                is_approved: v["is_approved"].as_bool().unwrap_or(false),
            }
        }
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

/// The agent's last response corrected after a barge-in cut it short.
pub fn agent_response_correction(original: &str, corrected: &str, event_id: i64) -> String {
    json!({"type": "agent_response_correction", "agent_response_correction_event": {
        "original_agent_response": original, "corrected_agent_response": corrected, "event_id": event_id}})
    .to_string()
}

/// An MCP tool call waiting for the client's approval.
pub fn mcp_tool_awaiting_approval(tool_name: &str, tool_call_id: &str) -> String {
    json!({"type": "mcp_tool_call", "mcp_tool_call": {"service_id": "sim-mcp", "tool_call_id": tool_call_id,
        "tool_name": tool_name, "parameters": {}, "timestamp": "2026-01-01T00:00:00Z",
        "state": "awaiting_approval", "approval_timeout_secs": 30}})
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

// Both directions are tested here, where the agent's side can write what the gateway parses.
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
            Ok(AgentEvent::Unused { kind: "vad_score" }),
            "a schema message deliberately unused, not an unknown one"
        );
        assert_eq!(
            parse_agent_event(r#"{"type":"a_future_event"}"#),
            Ok(AgentEvent::Other {
                kind: "a_future_event".into()
            })
        );
        assert_eq!(
            parse_agent_event(&agent_response_correction("Sure, let me", "Sure, let me check", 4)),
            Ok(AgentEvent::AgentResponseCorrection {
                original: Text::clean("Sure, let me", Text::SPEECH),
                corrected: Text::clean("Sure, let me check", Text::SPEECH),
            })
        );
        assert!(
            matches!(
                parse_agent_event(r#"{"type":"agent_response_correction","correction_event":{"corrected_response":"x"}}"#),
                Ok(AgentEvent::AgentResponseCorrection { corrected, .. }) if corrected.as_str() == "x"
            ),
            "the older schema's shape"
        );
        assert_eq!(
            parse_agent_event(&mcp_tool_awaiting_approval("lookup", "mcp_1")),
            Ok(AgentEvent::McpToolCall {
                tool_call_id: Text::clean("mcp_1", Text::SHORT),
                tool_name: Text::clean("lookup", Text::SHORT),
                state: Text::clean("awaiting_approval", Text::SHORT),
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
