//! One phone call: the `CallActor` that owns its state and the two legs it talks to — `CarrierLeg` (the
//! carrier's inbound WebSocket) and `ElevenLabsLeg` (the outbound agent WebSocket) — plus the messages
//! between them and the views `/calls` shows.
//!
//! Inside, imports run one way: `messages` and this file are plain vocabulary; the call's four parts
//! (`playout`, `upstream`, `agent_link`, `record`) are plain structs that take `now` and return decisions;
//! the legs know the call only as `Recipient`s; `actor` uses all of them and nothing here uses it.
pub mod actor;
pub mod agent_dial;
pub mod agent_link;
pub mod breaker;
pub mod carrier_leg;
pub mod chunks;
pub mod elevenlabs_leg;
pub mod failure;
pub mod feed;
pub mod hold;
pub mod lag;
pub mod listen;
pub mod messages;
pub mod playout;
pub mod record;
pub mod tap;
pub mod turns;
pub mod upstream;
pub mod view;

use crate::db::models::{CallRecord, EventKind, RecordState};
use crate::values::{CallId, Direction, PhoneNumber};
use serde::Serialize;

/// Whether a peer has been heard from, judged at each heartbeat. A flag set per frame instead of a clock
/// read per frame: on the media path the clock read costs more than the frame's bookkeeping.
#[derive(Debug, Clone)]
pub struct Liveness {
    heard: bool,
    silent_ticks: u32,
    ticks_allowed: u32,
}

impl Liveness {
    /// Silence of at least `peer_timeout` is reported, at most one `heartbeat` after it began to count.
    pub fn new(heartbeat: std::time::Duration, peer_timeout: std::time::Duration) -> Self {
        let hb = heartbeat.as_millis().max(1);
        let ticks_allowed = (peer_timeout.as_millis().div_ceil(hb) + 1).min(u128::from(u32::MAX)) as u32;
        Liveness {
            heard: true,
            silent_ticks: 0,
            ticks_allowed,
        }
    }

    /// Something arrived from the peer.
    pub fn heard(&mut self) {
        self.heard = true;
    }

    /// At each heartbeat: true once the peer has been silent for the whole timeout.
    pub fn silent_too_long(&mut self) -> bool {
        if std::mem::replace(&mut self.heard, false) {
            self.silent_ticks = 0;
        } else {
            self.silent_ticks += 1;
        }
        self.silent_ticks >= self.ticks_allowed
    }
}

/// Caller audio the carrier leg forwarded straight to the agent leg, for the call's counts. Both legs and
/// the call run on one worker thread, so these atomics are never contended.
#[derive(Debug, Default)]
pub struct RoutedAudio {
    pub frames: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
}

/// The slot a call holds under the cap, as the call sees it: held for the call's life, and given back when
/// dropped. What it is (the registry's guard) is admission's business, so the call does not depend on the
/// registry that lists it.
pub struct HeldSlot {
    /// Never read: it is held only to be dropped.
    _guard: Box<dyn Send>,
}

impl HeldSlot {
    /// Holds `guard` (whatever gives the slot back when dropped) for the call.
    pub fn new(guard: impl Send + 'static) -> HeldSlot {
        HeldSlot {
            _guard: Box::new(guard),
        }
    }
}

/// Who the call is, as validated at the refurl (or at the upgrade, for a call nobody announced); feeds
/// ElevenLabs' `dynamic_variables` and every record of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub call_id: CallId,
    /// This attempt of the call id (a record key): a call id used again gets a record of its own.
    pub attempt: i64,
    pub from: Option<PhoneNumber>,
    pub to: Option<PhoneNumber>,
    pub direction: Direction,
    /// Which carrier's webhook admitted it.
    pub carrier: crate::carriers::Carrier,
    /// The route it was admitted on (kept when the routes are reloaded); `None` for a call the carrier
    /// opened a socket for without a webhook, which goes to `elevenlabs.agent_id`.
    pub route: Option<std::sync::Arc<crate::routing::Route>>,
}

impl CallInfo {
    /// A call known by its carrier and id only.
    pub fn bare(call: crate::carriers::CallKey, attempt: i64) -> CallInfo {
        CallInfo {
            call_id: call.id,
            attempt,
            from: None,
            to: None,
            direction: Direction::Inbound,
            carrier: call.carrier,
            route: None,
        }
    }

    /// The call as the registry, tokens and records know it: its carrier and id.
    pub fn key(&self) -> crate::carriers::CallKey {
        crate::carriers::CallKey::new(self.carrier, self.call_id.clone())
    }

    /// The agent this call talks to: its route's, else the configured one.
    pub fn agent_id<'a>(&'a self, cfg: &'a crate::config::Config) -> Option<&'a str> {
        match &self.route {
            Some(route) => Some(route.agent_id.as_str()),
            None => cfg.elevenlabs.agent_id.as_deref(),
        }
    }

    /// Our line: the number the caller dialled, or on an outbound call the one we called from (Mcube's
    /// `fromNumber`). Routes match on it.
    pub fn our_line(&self) -> Option<&PhoneNumber> {
        match self.direction {
            Direction::Outbound => self.from.as_ref(),
            _ => self.to.as_ref(),
        }
    }

    /// The name of its route, as records show it (empty: none).
    pub fn route_name(&self) -> &str {
        self.route.as_ref().map_or("", |r| r.name.as_str())
    }

    /// A record of what was admitted (or refused) about this call, in `state` since `at_ms`; revision 0, so
    /// it only ever fills a missing row.
    pub fn record(&self, state: RecordState, at_ms: i64) -> CallRecord {
        let mut rec = CallRecord::stub(self.call_id.as_str(), self.attempt, state, at_ms);
        rec.direction = self.direction.as_str().into();
        rec.carrier = self.carrier.as_str().into();
        rec.from_number = CallInfo::number(&self.from);
        rec.to_number = CallInfo::number(&self.to);
        rec.route = self.route_name().to_string();
        rec.agent_id = self.route.as_ref().map(|r| r.agent_id.clone());
        rec
    }

    /// A number as records and views show it: empty when the carrier gave none.
    pub fn number(n: &Option<PhoneNumber>) -> String {
        n.as_ref().map(|n| n.to_string()).unwrap_or_default()
    }
}

/// Where a call is in its life (docs/admin-api.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    Connecting,
    Active,
    Ending,
    Ended,
}

/// A call's state is one of its record's.
impl From<CallState> for RecordState {
    fn from(state: CallState) -> RecordState {
        match state {
            CallState::Connecting => RecordState::Connecting,
            CallState::Active => RecordState::Active,
            CallState::Ending => RecordState::Ending,
            CallState::Ended => RecordState::Ended,
        }
    }
}

impl CallState {
    pub fn as_str(&self) -> &'static str {
        match self {
            CallState::Connecting => "connecting",
            CallState::Active => "active",
            CallState::Ending => "ending",
            CallState::Ended => "ended",
        }
    }
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
    /// The carrier sent a value out of bounds (an id, a digit, an encoding or rate we do not bridge).
    CarrierInvalidData,
    /// Admitted at the refurl, but the carrier's WebSocket never came before the admission deadline.
    CarrierNeverConnected,
    /// The carrier stopped reading what we send: its queue filled up.
    CarrierStalled,
    /// The agent closed with 1000 (end_call tool, max duration).
    AgentEnded,
    /// ElevenLabs could not be reached, or dropped, past the reconnect budget.
    ElevenlabsUnavailable,
    /// ElevenLabs refused the conversation (close 1008: contract or policy error).
    ElevenlabsRejected,
    /// The agent's formats cannot be bridged.
    ElevenlabsBadFormat,
    /// ElevenLabs refused an override the gateway is configured to send (the agent's security settings do
    /// not allow it): a configuration problem.
    ElevenlabsConfigRefused,
    /// The call reached `calls.max_call_seconds`.
    MaxDuration,
    /// An operator ended it.
    Admin,
    /// The gateway shut down.
    Shutdown,
    /// A part of the call panicked (`crate::supervise`); the record's error says where and what.
    InternalError,
}

impl EndReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::CarrierHangup => "carrier_hangup",
            EndReason::CarrierStop => "carrier_stop",
            EndReason::CarrierTimeout => "carrier_timeout",
            EndReason::CarrierNoStart => "carrier_no_start",
            EndReason::CarrierProtocolError => "carrier_protocol_error",
            EndReason::CarrierInvalidData => "carrier_invalid_data",
            EndReason::CarrierNeverConnected => "carrier_never_connected",
            EndReason::CarrierStalled => "carrier_stalled",
            EndReason::AgentEnded => "agent_ended",
            EndReason::ElevenlabsUnavailable => "elevenlabs_unavailable",
            EndReason::ElevenlabsRejected => "elevenlabs_rejected",
            EndReason::ElevenlabsBadFormat => "elevenlabs_bad_format",
            EndReason::ElevenlabsConfigRefused => "elevenlabs_config_refused",
            EndReason::MaxDuration => "max_duration",
            EndReason::Admin => "admin",
            EndReason::Shutdown => "shutdown",
            EndReason::InternalError => "internal_error",
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
                | EndReason::CarrierInvalidData
                | EndReason::CarrierNeverConnected
                | EndReason::CarrierStalled
        )
    }
}

/// How audio crosses from one side's format to the other's.
#[derive(Debug, Default)]
pub enum Crossing<T> {
    /// Not bridged (yet, or any more): audio waits.
    #[default]
    Held,
    /// Both sides speak one format: the bytes pass as they are.
    Same,
    /// Converted on the way.
    Convert(T),
}

impl<T> Crossing<T> {
    /// Bridged, with `conversion` when the formats differ.
    pub fn bridged(conversion: Option<T>) -> Crossing<T> {
        conversion.map_or(Crossing::Same, Crossing::Convert)
    }

    pub fn is_bridged(&self) -> bool {
        !matches!(self, Crossing::Held)
    }
}

/// Who said or did a line of the call: its role in the transcript, and the kind of event it is stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The caller, as ElevenLabs transcribed them.
    User,
    /// The agent's response.
    Agent,
    /// A server tool the agent ran.
    AgentTool,
    GuardrailTriggered,
    /// A key the caller pressed.
    Dtmf,
    /// A client tool the agent asked for (refused: none run on a phone gateway).
    ToolCall,
    McpToolCall,
    /// The caller barged in.
    Interruption,
}

impl Role {
    /// The event kind a line of this role is stored as.
    pub fn event_kind(self) -> EventKind {
        match self {
            Role::User => EventKind::UserTranscript,
            Role::Agent => EventKind::AgentResponse,
            Role::AgentTool => EventKind::AgentTool,
            Role::GuardrailTriggered => EventKind::GuardrailTriggered,
            Role::Dtmf => EventKind::Dtmf,
            Role::ToolCall => EventKind::ToolCall,
            Role::McpToolCall => EventKind::McpToolCall,
            Role::Interruption => EventKind::Interruption,
        }
    }
}

/// One line of what was said, kept on the call.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptLine {
    pub role: Role,
    pub text: crate::values::Text,
    pub at_ms: u64,
    /// Its event's number, so a correction can rewrite the stored event.
    #[serde(skip)]
    pub seq: i64,
}

#[cfg(test)]
mod tests {
    use super::Liveness;
    use std::time::Duration;

    #[test]
    fn silence_is_reported_only_after_the_whole_timeout() {
        let mut l = Liveness::new(Duration::from_secs(5), Duration::from_secs(20));
        // Heard at start; then silent: ticks at 5, 10, 15, 20 s are not yet the whole timeout past a tick.
        for _ in 0..5 {
            assert!(!l.silent_too_long());
        }
        assert!(l.silent_too_long(), "silent for at least 20 s, reported by 25 s");
        l.heard();
        assert!(!l.silent_too_long(), "anything heard resets the count");
    }
}
