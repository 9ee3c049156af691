//! What the simulated agent does (its script) and what it saw (its log).

use crate::protocol::elevenlabs::ConversationInitiation;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Byte the simulator fills audio with when it is stale by design (sent after an interruption with an old
/// event id): a gateway that plays it to the carrier has failed to drop stale audio.
pub const STALE_MARKER: u8 = 0x2A;

/// What the simulated agent answers, and what it corrects that to (as if a barge-in cut it short).
pub const REPLY_TEXT: &str = "Sure, let me check that order for you.";
pub const CORRECTED_REPLY: &str = "Sure, let me check";

/// What the simulated agent does. Times are in milliseconds; 0 disables a behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentScript {
    /// `user_input_audio_format` announced in the metadata.
    pub input_format: String,
    /// `agent_output_audio_format` announced in the metadata.
    pub output_format: String,
    /// Delay before `conversation_initiation_metadata`.
    pub metadata_delay_ms: u64,
    /// Agent speech sent right after the metadata (sent at once, faster than real time, as ElevenLabs does).
    pub greeting_ms: u64,
    /// Pitch of the agent's tone speech.
    pub tone_hz: f32,
    /// Size of each agent `audio` message.
    pub chunk_ms: u64,
    /// Send the caller's audio back as agent audio (converted to the output format).
    pub echo: bool,
    /// Reply with `reply_ms` of speech each time this much caller audio has arrived.
    pub reply_after_user_ms: u64,
    pub reply_ms: u64,
    /// Send a `user_transcript` and an `agent_response` with each reply.
    pub transcripts: bool,
    /// Answer (`reply_ms` of speech) this long after the caller's speech falls silent, as a real agent's
    /// turn detection would, with the `user_transcript` at a quarter of it: a known turn latency to measure.
    pub answer_after_silence_ms: u64,
    /// Interval of `ping` events.
    pub ping_interval_ms: u64,
    /// After this long, interrupt: `interruption`, one stale chunk (old event id), then fresh speech.
    pub interrupt_after_ms: u64,
    /// After this long, send a `client_tool_call`.
    pub tool_call_after_ms: u64,
    /// After this long, say goodbye (`goodbye_ms` of speech) and close with 1000.
    pub end_after_ms: u64,
    pub goodbye_ms: u64,
    /// The first `drop_first` connections drop without a close frame `drop_after_ms` after the metadata.
    pub drop_first: u32,
    pub drop_after_ms: u64,
    /// With `drop_first`: instead of dropping, send an `error` event and close with this code.
    pub fail_with_code: Option<u16>,
    /// The first `stall_first` connections go mute after the metadata: no audio, no pongs (a hung agent).
    pub stall_first: u32,
    /// The first `refuse_first` upgrades are answered with `refuse_status` (a quota or concurrency limit
    /// is 429, a bad key 401/403, an outage 5xx).
    pub refuse_first: u32,
    pub refuse_status: u16,
    /// Refuse a conversation whose initiation carries a `conversation_config_override` (an agent whose
    /// security settings allow none): `error` override_error, then close 1008.
    pub refuse_overrides: bool,
    /// After this long, correct the last agent response (`agent_response_correction`).
    pub correct_after_ms: u64,
    /// After this long, send an MCP tool call awaiting approval.
    pub mcp_approval_after_ms: u64,
    /// Answer each upgrade this long after it arrived (a slow dial; the connection is logged on arrival).
    pub upgrade_delay_ms: u64,
    /// Refuse upgrades whose `xi-api-key` header differs.
    pub require_api_key: Option<String>,
    /// Agents ElevenLabs does not know (deleted): upgrades naming one are answered 404.
    pub unknown_agents: Vec<String>,
    /// The dynamic variables each agent's prompt needs, by agent id: an initiation without one of them is
    /// refused as ElevenLabs refuses it (`error` missing_dynamic_variable, then close 1008).
    pub required_variables: std::collections::BTreeMap<String, Vec<String>>,
    /// Keep every message received (tests); otherwise only counts.
    pub record: bool,
}

impl Default for AgentScript {
    fn default() -> Self {
        AgentScript {
            input_format: "ulaw_8000".into(),
            output_format: "ulaw_8000".into(),
            metadata_delay_ms: 0,
            greeting_ms: 1000,
            tone_hz: 440.0,
            chunk_ms: 250,
            echo: false,
            reply_after_user_ms: 2000,
            reply_ms: 1000,
            transcripts: true,
            answer_after_silence_ms: 0,
            ping_interval_ms: 2000,
            interrupt_after_ms: 0,
            tool_call_after_ms: 0,
            end_after_ms: 0,
            goodbye_ms: 500,
            drop_first: 0,
            drop_after_ms: 0,
            fail_with_code: None,
            stall_first: 0,
            refuse_first: 0,
            refuse_status: 503,
            refuse_overrides: false,
            correct_after_ms: 0,
            mcp_approval_after_ms: 0,
            upgrade_delay_ms: 0,
            require_api_key: None,
            unknown_agents: Vec::new(),
            required_variables: std::collections::BTreeMap::new(),
            record: false,
        }
    }
}

/// What happened on one connection, for tests and the demo.
#[derive(Debug, Clone, Default)]
pub struct ConnectionLog {
    pub index: u32,
    /// The `agent_id` the upgrade named.
    pub agent_id: String,
    /// The `xi-api-key` header of the upgrade, if any.
    pub api_key: Option<String>,
    /// The upgrade's query string.
    pub query: String,
    /// Every text message received, in order (when the script records).
    pub received: Vec<String>,
    pub initiation: Option<ConversationInitiation>,
    pub audio_chunks: u64,
    pub audio_bytes: u64,
    pub pings_sent: Vec<i64>,
    pub pongs: Vec<i64>,
    pub contextual_updates: Vec<String>,
    pub tool_results: Vec<String>,
    /// Answers to MCP approval requests: tool call id and whether it was approved.
    pub mcp_approvals: Vec<(String, bool)>,
    /// The close code the client sent, if it sent one.
    pub client_close: Option<u16>,
    pub ended: bool,
}

/// Shared record of every connection the simulator saw.
#[derive(Debug, Default)]
pub struct SimLog {
    connections: Mutex<Vec<ConnectionLog>>,
    pub(super) upgrades_refused: AtomicU32,
    /// Where each ended conversation's post-call webhook goes, and the secret it is signed with.
    webhook: Mutex<Option<(String, String)>>,
}

impl SimLog {
    /// Sends each conversation's signed post-call webhook to `url` once it ends, as ElevenLabs does.
    pub fn deliver_to(&self, url: &str, secret: &str) {
        if let Ok(mut w) = self.webhook.lock() {
            *w = Some((url.to_string(), secret.to_string()));
        }
    }

    pub(super) fn webhook(&self) -> Option<(String, String)> {
        self.webhook.lock().ok().and_then(|w| w.clone())
    }

    pub(super) fn connection(&self, index: u32) -> Option<ConnectionLog> {
        self.connections.lock().ok()?.get(index as usize).cloned()
    }

    pub fn connections(&self) -> Vec<ConnectionLog> {
        self.connections.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn connection_count(&self) -> usize {
        self.connections.lock().map(|c| c.len()).unwrap_or(0)
    }

    pub fn upgrades_refused(&self) -> u32 {
        self.upgrades_refused.load(Ordering::Relaxed)
    }

    pub(super) fn update(&self, index: u32, f: impl FnOnce(&mut ConnectionLog)) {
        if let Ok(mut conns) = self.connections.lock() {
            if let Some(c) = conns.get_mut(index as usize) {
                f(c);
            }
        }
    }

    pub(super) fn open(&self, api_key: Option<String>, query: String, agent_id: String) -> u32 {
        match self.connections.lock() {
            Ok(mut conns) => {
                let index = conns.len() as u32;
                conns.push(ConnectionLog {
                    index,
                    agent_id,
                    api_key,
                    query,
                    ..ConnectionLog::default()
                });
                index
            }
            Err(_) => 0,
        }
    }
}
