//! Messages between a call and its legs. Legs report what their peer did; only the call decides.

use super::actor::CallActor;
use super::elevenlabs_leg::ElevenLabsLeg;
use super::mcube_leg::McubeLeg;
use super::{CallView, EndReason, RoutedAudio};
use crate::protocol::elevenlabs::AgentFormats;
use crate::protocol::mcube::StreamStart;
use crate::values::{ConversationId, DtmfDigit, Invalid, Label, Text};
use actix::prelude::*;
use actix::WeakAddr;
use bytes::Bytes;
use bytestring::ByteString;
use std::sync::Arc;
use std::time::Instant;

/// Hop latency is measured on one frame in this many: enough for the percentiles, cheap for the media path.
pub const HOP_SAMPLE_EVERY: u32 = 8;

/// Caller audio as the carrier sent it.
#[derive(Debug, Clone)]
pub enum CarrierPayload {
    /// Base64 text from a `media` event (a slice of the frame, not a copy).
    Base64(ByteString),
    /// A binary frame of raw audio in the stream's encoding.
    Raw(Bytes),
}

/// The carrier's `start` event.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CarrierStarted {
    /// Stream ids and media format.
    pub start: StreamStart,
}

/// One frame of caller audio.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CarrierAudio {
    /// The audio, undecoded.
    pub payload: CarrierPayload,
    /// Its size decoded, as the leg measured it for its size check.
    pub bytes: usize,
    /// When the leg read it, for one frame in `HOP_SAMPLE_EVERY` (hop latency is sampled).
    pub received_at: Option<Instant>,
}

/// The carrier played everything up to the named checkpoint.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CarrierPlayed {
    /// The checkpoint's name, as we sent it.
    pub name: Option<Label>,
}

/// The caller pressed a key.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CarrierDtmf {
    pub digit: DtmfDigit,
}

/// The carrier leg is over (or is going): stop, close, drop, timeout, unreadable frames.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CarrierGone {
    /// How it ended, from the carrier's side.
    pub reason: EndReason,
    /// The value the carrier sent that was refused, when that is why.
    pub invalid: Option<Invalid>,
}

/// The carrier's WebSocket actor, attached right after the upgrade.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachCarrier {
    /// The leg; the call holds the only strong address to it.
    pub leg: Addr<McubeLeg>,
}

/// Where the carrier leg sends caller audio. When the carrier's audio needs no conversion, the call hands
/// the leg the agent leg's address: each frame then takes one actor hop instead of two.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RouteCallerAudio {
    /// The agent leg to write base64 `media` payloads to, or `None` to send them to the call again.
    pub to: Option<Addr<ElevenLabsLeg>>,
    /// Where the leg counts what it forwarded.
    pub counts: Arc<RoutedAudio>,
}

/// Text for the carrier's socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendToCarrier {
    /// A complete protocol message.
    pub text: String,
    /// For one audio frame in `HOP_SAMPLE_EVERY`, since when the call could play it: the leg records how
    /// long it took to be written.
    pub since: Option<Instant>,
}

/// Close the carrier's socket and stop the leg.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseCarrier {
    /// WebSocket close code.
    pub code: u16,
}

/// What one connection to the agent reported. One message for all of it, so the call decides in one place
/// whether the connection it came from is still the current one: nothing from an abandoned connection (a
/// late metadata, audio, a transcript or a tool call while the call redials) reaches the call.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromAgent {
    /// Which connection of this call it came from.
    pub generation: u32,
    pub report: AgentReport,
}

/// The agent's side of a call, typed and bounded by its leg.
pub enum AgentReport {
    /// `conversation_initiation_metadata` arrived.
    Metadata {
        conversation_id: Option<ConversationId>,
        /// A format we cannot bridge ends the call.
        formats: Result<AgentFormats, Invalid>,
    },
    /// Agent audio, base64-decoded, in the agent's output format; its event id is compared with the last
    /// interruption's.
    Audio { audio: Vec<u8>, event_id: Option<i64> },
    /// The caller barged in: audio with an event id up to this one is stale.
    Interruption { event_id: Option<i64> },
    /// Something was said: `user` (transcript) or `agent` (response).
    Transcript { role: &'static str, text: Text },
    /// The agent asked for a client tool we do not have.
    ToolCall { tool_name: Text, tool_call_id: Text },
    /// The connection is over.
    Gone {
        /// The close code ElevenLabs sent, if it sent one.
        close_code: Option<u16>,
        /// What happened, for the log and the record.
        detail: Text,
    },
}

/// Text for the agent's socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendToAgent {
    /// A complete protocol message.
    pub text: String,
    /// For caller audio, when the carrier leg read it: the leg records the hop latency.
    pub since: Option<Instant>,
}

/// Close the agent's socket with 1000 and stop the leg.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAgent;

/// Ends a call from outside (admin, shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndCall {
    /// Recorded as the call's end reason.
    pub reason: EndReason,
}

/// The call's current view for `/calls`.
#[derive(Message)]
#[rtype(result = "CallView")]
pub struct DescribeCall;

/// A leg's report to its call. Legs hold only a weak address, so a call that has ended is not kept alive
/// (or restarted by its supervisor) by a leg still draining its socket; such reports are dropped.
pub fn report_to_call<M>(call: &WeakAddr<CallActor>, msg: M)
where
    M: Message + Send + 'static,
    M::Result: Send,
    CallActor: Handler<M>,
{
    if let Some(call) = call.upgrade() {
        call.do_send(msg);
    }
}
