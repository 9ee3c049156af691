//! Messages between a call and its legs, and the handles others hold to a call. Plain types: no actor is
//! named here, so every side knows the others only as `Recipient`s. Legs report what their peer did; only
//! the call decides. Each leg writes its own peer's wire format: the call sends typed requests.

use super::listen::Listener;
use super::turns::TurnStart;
use super::view::CallView;
use super::{EndReason, Role, RoutedAudio};
use crate::audio::transcode::Transcoder;
use crate::carriers::stream::StreamStart;
use crate::protocol::elevenlabs::AgentFormats;
use crate::supervise::Panic;
use crate::values::{ConversationId, DtmfDigit, Invalid, Label, Text};
use actix::prelude::*;
use actix::WeakRecipient;
use bytes::Bytes;
use bytestring::ByteString;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Hop latency is measured on one frame in this many: enough for the percentiles, cheap for the media path.
pub const HOP_SAMPLE_EVERY: u32 = 8;

/// Caller audio in the carrier's format, checked by its leg: base64 here is well-formed. Audio stays as
/// it came while nothing needs its samples (base64 from a `media` event passes undecoded); once decoded
/// (joined into a chunk, or a binary frame) it stays raw, and is encoded once, on its way to the agent
/// (`chunks::for_agent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarrierPayload {
    /// Base64 text from a `media` event (a slice of the frame, not a copy).
    Base64(ByteString),
    /// Raw audio in the stream's encoding: a binary frame, or frames joined into a chunk.
    Raw(Bytes),
}

/// What the carrier did, as its leg read it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromCarrier(pub CarrierReport);

pub enum CarrierReport {
    /// The carrier's `start` event: stream ids and media format.
    Started(StreamStart),
    /// A chunk of caller audio (one or more carrier frames, joined by the leg), undecoded.
    Audio {
        payload: CarrierPayload,
        /// The carrier frames joined into it.
        frames: u64,
        /// Its size decoded, as the leg measured it for its size check.
        bytes: usize,
        /// When the leg read its oldest frame (for the hop latency and the turn clock).
        received_at: Instant,
    },
    /// The carrier played everything up to the named checkpoint.
    Played { name: Option<Label> },
    /// The caller pressed a key.
    Dtmf { digit: DtmfDigit },
    /// The carrier leg is over (or is going): stop, close, drop, timeout, unreadable frames.
    Gone {
        /// How it ended, from the carrier's side.
        reason: EndReason,
        /// The value the carrier sent that was refused, when that is why.
        invalid: Option<Invalid>,
    },
    /// The leg panicked (`crate::supervise`): it hung the carrier up and is closing; the call ends.
    Fault(Panic),
}

/// What the call asks of the carrier's leg, which writes it in the carrier's protocol.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ToCarrier {
    /// Play one frame of raw audio in the stream's format. For one frame in `HOP_SAMPLE_EVERY`, `since` is
    /// when it could be played (read from the agent, or its pacing slot came): the leg records how long it
    /// took to be written.
    Play { frame: Vec<u8>, since: Option<Instant> },
    /// Barge-in: the carrier drops what it has buffered.
    ClearAudio,
    /// Ask the carrier to say when everything sent so far has been played.
    Checkpoint { name: String },
    /// Where caller audio goes. Once bridged, the call hands the leg the agent leg (and the conversion to
    /// apply, if the formats differ): each frame then takes one actor hop instead of two. `None` sends it
    /// to the call again.
    Route {
        to: Option<Recipient<ToAgent>>,
        /// Caller audio's conversion to the agent's input format; `None`: it passes as it came.
        convert: Option<Box<Transcoder>>,
        /// Where the leg counts what it forwarded.
        counts: Arc<RoutedAudio>,
    },
    /// Close the socket with `code` and stop the leg; with `terminate`, first ask the carrier to hang up.
    Close { code: u16, terminate: bool },
    /// Give a listener copies of both sides' audio while the call lasts (`call::listen`).
    Listen(Listener),
    /// Record both sides from now on (`crate::recording`); the leg's end closes the file.
    Record(Box<crate::recording::CallRecording>),
    /// Pause or resume the recording: paused, both sides are recorded as silence.
    PauseRecording(bool),
}

/// The carrier's leg, as its call holds it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachCarrier {
    /// The only strong handle to the leg.
    pub leg: Recipient<ToCarrier>,
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
    Audio {
        audio: Vec<u8>,
        event_id: Option<i64>,
        /// When the leg read it: the agent-to-carrier hop latency counts from here.
        read_at: Instant,
        /// Set on the first agent audio after the caller fell silent: the turn it answers.
        turn: Option<TurnStart>,
    },
    /// The caller barged in: audio with an event id up to this one is stale.
    Interruption { event_id: Option<i64> },
    /// Something was said or done: `user` (transcript), `agent` (response), `agent_tool` (a server tool
    /// ran), `guardrail_triggered`.
    Transcript { role: Role, text: Text },
    /// The agent's last response was cut short: it now reads `corrected`.
    Correction { original: Text, corrected: Text },
    /// The agent asked for a client tool we do not have.
    ToolCall { tool_name: Text, tool_call_id: Text },
    /// An MCP tool call in state `state`; `awaiting_approval` needs our answer.
    McpToolCall {
        tool_call_id: Text,
        tool_name: Text,
        state: Text,
    },
    /// The connection is over.
    Gone {
        /// The close code ElevenLabs sent, if it sent one.
        close_code: Option<u16>,
        /// The `error_type` of the last `error` event ElevenLabs sent before it closed, if any.
        error_type: Option<Text>,
        /// What happened, for the log and the record.
        detail: Text,
    },
    /// The leg panicked (`crate::supervise`) and is closing: the call ends rather than redial, since
    /// a fault is not a network drop.
    Fault(Panic),
}

/// What the call (or the carrier leg, for routed caller audio) asks of the agent's leg, which writes it in
/// ElevenLabs' protocol.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ToAgent {
    /// Caller audio in the agent's input format, base64. `read_at`: when the carrier leg read its oldest
    /// frame, for the hop latency (sampled) and the turn clock.
    CallerAudio { audio: ByteString, read_at: Instant },
    /// A non-interrupting note for the agent (a DTMF key, the conversation so far after a redial).
    Note { text: String },
    /// The answer to an MCP tool call awaiting approval.
    McpApproval { tool_call_id: Text, approved: bool },
    /// The answer to a client tool call.
    ToolResult {
        tool_call_id: Text,
        result: String,
        is_error: bool,
    },
    /// Close with 1000 and stop the leg.
    Close,
}

/// Ends a call from outside (admin, shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndCall {
    /// Recorded as the call's end reason.
    pub reason: EndReason,
}

/// An admin listens in (`GET /calls/{id}/listen`): the call notes who in its events and hands the listener
/// to its carrier leg. A call that is over drops it, which closes the listener's queue.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ListenIn {
    pub listener: Listener,
}

/// An admin pauses the recording (payment details) or resumes it: the call notes it in its events and tells
/// its carrier leg, which records both sides as silence while paused.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PauseRecording {
    pub paused: bool,
}

/// The call's current view for `/calls`.
#[derive(Message)]
#[rtype(result = "CallView")]
pub struct DescribeCall;

/// How the registry and the admin API reach a live call. Weak, so holding it keeps nothing of an ended call
/// alive, and an ended call shows as gone.
#[derive(Clone)]
pub struct CallHandle {
    pub describe: WeakRecipient<DescribeCall>,
    pub end: WeakRecipient<EndCall>,
    pub listen: WeakRecipient<ListenIn>,
    pub pause: WeakRecipient<PauseRecording>,
}

impl CallHandle {
    /// Whether the call actor is still running.
    pub fn is_alive(&self) -> bool {
        self.end.upgrade().is_some_and(|r| r.connected())
    }

    /// Asks the call to end; false when it is already gone.
    pub fn end(&self, reason: EndReason) -> bool {
        tell(&self.end, EndCall { reason })
    }

    /// Hands the call a listener; false when the call is already gone.
    pub fn listen(&self, listener: Listener) -> bool {
        tell(&self.listen, ListenIn { listener })
    }

    /// Pauses or resumes the call's recording; false when the call is already gone.
    pub fn pause_recording(&self, paused: bool) -> bool {
        tell(&self.pause, PauseRecording { paused })
    }

    /// The call's view, with a bound so a stuck call cannot stall `/calls`.
    pub async fn describe(&self) -> Option<CallView> {
        let request = self.describe.upgrade()?.send(DescribeCall);
        request.timeout(Duration::from_secs(1)).await.ok()
    }
}

/// Sends `msg` to a call that may have ended: false when it has.
fn tell<M>(call: &WeakRecipient<M>, msg: M) -> bool
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    call.upgrade().map(|call| call.do_send(msg)).is_some()
}

/// A leg's report to its call. Legs hold only a weak handle, so a call that has ended is not kept alive
/// by a leg still draining its socket; such reports are dropped.
pub fn report_to_call<M>(call: &WeakRecipient<M>, msg: M)
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    if let Some(call) = call.upgrade() {
        call.do_send(msg);
    }
}

/// Whether the call behind a leg's weak handle is still running.
pub fn call_alive<M>(call: &WeakRecipient<M>) -> bool
where
    M: Message + Send + 'static,
    M::Result: Send,
{
    call.upgrade().is_some_and(|c| c.connected())
}
