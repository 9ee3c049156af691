//! `ElevenLabsLeg`: the outbound WebSocket to an ElevenLabs agent, once `agent_dial` has opened it. It sends
//! the initiation first, answers pings itself, and turns agent messages into typed reports for its call.
//! When it dies, the call decides what next.

use super::agent_dial::{AgentSocket, CLOSE_GRACE};
use super::chunks::QueuedAudio;
use super::messages::*;
use super::turns::CallerTurns;
use super::Role;
use crate::audio::format::AudioFormat;
use crate::metrics::Metrics;
use crate::protocol::elevenlabs::{self as el, parse_agent_event, AgentEvent};
use crate::supervise::{self, Part};
use crate::values::Text;
use crate::ws::frames::{Assembled, Reassembler};
use actix::io::{SinkWrite, WriteHandler};
use actix::prelude::*;
use actix::WeakRecipient;
use awc::ws::{CloseCode, CloseReason, Frame, Message as WsMessage};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::stream::{SplitSink, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

type AgentSink = SplitSink<AgentSocket, WsMessage>;

pub struct ElevenLabsLeg {
    call_id: String,
    call: WeakRecipient<FromAgent>,
    generation: u32,
    sink: SinkWrite<WsMessage, AgentSink>,
    metrics: Arc<Metrics>,
    initiation: String,
    heartbeat: Duration,
    peer_timeout: Duration,
    liveness: super::Liveness,
    reassembler: Reassembler,
    close_code: Option<u16>,
    error_type: Option<Text>,
    detail: Text,
    closing: bool,
    b64: base64::engine::GeneralPurpose,
    /// Caller audio waiting for the end of the leg's current turn (see `QueuedAudio`).
    caller_audio: QueuedAudio,
    /// Caller audio messages written, for sampling the hop latency.
    written: u32,
    /// The agent's input format once its metadata named it, for telling the caller's speech from silence.
    input: Option<AudioFormat>,
    turns: CallerTurns,
    scratch: Vec<u8>,
    /// `stopped` ran and reported the end (else the task died: see `Drop`).
    reported: bool,
}

/// What a leg needs besides its socket.
pub struct LegSetup {
    pub call_id: String,
    pub call: WeakRecipient<FromAgent>,
    pub generation: u32,
    pub metrics: Arc<Metrics>,
    /// `conversation_initiation_client_data`, sent before anything else.
    pub initiation: String,
    pub heartbeat: Duration,
    pub peer_timeout: Duration,
    pub max_message_bytes: usize,
}

impl ElevenLabsLeg {
    pub fn start(socket: AgentSocket, setup: LegSetup) -> Addr<ElevenLabsLeg> {
        let (sink, stream) = socket.split();
        ElevenLabsLeg::create(move |ctx| {
            ctx.add_stream(stream);
            ElevenLabsLeg {
                call_id: setup.call_id,
                call: setup.call,
                generation: setup.generation,
                sink: SinkWrite::new(sink, ctx),
                metrics: setup.metrics,
                initiation: setup.initiation,
                heartbeat: setup.heartbeat,
                peer_timeout: setup.peer_timeout,
                liveness: super::Liveness::new(setup.heartbeat, setup.peer_timeout),
                reassembler: Reassembler::new(setup.max_message_bytes),
                close_code: None,
                error_type: None,
                detail: Text::clean("connection ended", Text::SHORT),
                closing: false,
                b64: base64::engine::general_purpose::STANDARD,
                caller_audio: QueuedAudio::default(),
                written: 0,
                input: None,
                turns: CallerTurns::default(),
                scratch: Vec::new(),
                reported: false,
            }
        })
    }

    fn send(&mut self, msg: WsMessage, ctx: &mut Context<Self>) {
        if self.sink.write(msg).is_err() {
            self.set_detail("write to a closed socket");
            ctx.stop();
        }
    }

    /// Writes the caller audio queued this turn as one `user_audio_chunk`; the hop latency (sampled) counts
    /// from its oldest piece's read, so the wait in the queue is inside.
    fn write_caller_audio(&mut self, ctx: &mut Context<Self>) {
        let Some((audio, since)) = self.caller_audio.take() else {
            return;
        };
        if self.closing {
            return;
        }
        let mut text = String::new();
        el::write_user_audio_chunk(&audio, &mut text);
        self.send(WsMessage::Text(text.into()), ctx);
        let now = Instant::now();
        self.written = self.written.wrapping_add(1);
        if self.written.is_multiple_of(HOP_SAMPLE_EVERY) {
            let waited = now.saturating_duration_since(since);
            self.metrics.hop_carrier_to_agent.observe(waited.as_secs_f64());
        }
        self.watch_caller(&audio, since, now);
    }

    /// Feeds the turn clock: whether this caller audio was speech, and when it was read and written.
    fn watch_caller(&mut self, b64: &str, read_at: Instant, sent_at: Instant) {
        let Some(format) = self.input else { return };
        self.scratch.clear();
        if self.b64.decode_vec(b64, &mut self.scratch).is_err() {
            return;
        }
        let speech = crate::audio::level::is_speech(format, &self.scratch);
        let len = Duration::from_millis(format.ms_for_bytes(self.scratch.len()));
        self.turns.caller_audio(speech, len, read_at, sent_at);
    }

    fn set_detail(&mut self, detail: &str) {
        self.detail = Text::clean(detail, Text::SHORT);
    }

    /// Hands a report to the call, marked with this connection's generation.
    fn report(&self, report: AgentReport) {
        report_to_call(
            &self.call,
            FromAgent {
                generation: self.generation,
                report,
            },
        );
    }

    /// Agent audio, decoded, with when it was read and the turn it answers, if any.
    fn on_audio(&mut self, audio_b64: &str, event_id: Option<i64>) {
        match self.b64.decode(audio_b64.as_bytes()) {
            Ok(audio) => {
                let read_at = Instant::now();
                let turn = self.turns.agent_audio(read_at);
                self.report(AgentReport::Audio {
                    audio,
                    event_id,
                    read_at,
                    turn,
                })
            }
            Err(e) => {
                self.metrics.unread.agent_bad_messages.inc();
                log::warn!(
                    "call_id={} elevenlabs: audio with bad base64 dropped: {e}",
                    self.call_id
                );
            }
        }
    }

    fn on_text(&mut self, text: &[u8], ctx: &mut Context<Self>) {
        supervise::fault::point(Part::AgentLeg, &self.call_id);
        let parsed = std::str::from_utf8(text)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_agent_event(t).map_err(|e| e.to_string()));
        let event = match parsed {
            Ok(ev) => ev,
            Err(e) => {
                self.metrics.unread.agent_bad_messages.inc();
                log::warn!("call_id={} elevenlabs: unreadable message ignored: {e}", self.call_id);
                return;
            }
        };
        match event {
            AgentEvent::Audio { audio_b64, event_id } => self.on_audio(&audio_b64, event_id),
            AgentEvent::Ping { event_id, ping_ms } => {
                if let Some(ms) = ping_ms {
                    self.metrics.upstream.ping_ms.observe(ms as f64);
                }
                self.send(WsMessage::Text(el::pong(event_id).into()), ctx)
            }
            AgentEvent::Metadata {
                conversation_id,
                formats,
            } => {
                self.input = formats.as_ref().ok().map(|f| f.input);
                self.report(AgentReport::Metadata {
                    conversation_id,
                    formats,
                })
            }
            AgentEvent::Error {
                code,
                error_type,
                message,
            } => self.on_error(code, error_type, message),
            AgentEvent::Unused { .. } => {}
            AgentEvent::Other { kind } => {
                self.metrics.unread.agent_ignored_events.inc();
                log::debug!(
                    "call_id={} elevenlabs: unknown message type '{kind}' ignored",
                    self.call_id
                );
            }
            said => {
                if let Some(report) = reported(said) {
                    self.report(report)
                }
            }
        }
    }

    /// ElevenLabs' `error` event: logged, and kept as the reason if the connection then closes.
    fn on_error(&mut self, code: Option<i64>, error_type: Option<Text>, message: Option<Text>) {
        let error_type = error_type.unwrap_or_default();
        log::warn!(
            "call_id={} elevenlabs: error event code={code:?} type={error_type} message={}",
            self.call_id,
            message.unwrap_or_default()
        );
        self.set_detail(&format!("error event {error_type}"));
        self.error_type = Some(error_type);
    }

    fn check_heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        if !call_alive(&self.call) {
            self.close_normally(ctx);
        } else if self.liveness.silent_too_long() {
            log::warn!(
                "call_id={} elevenlabs: silent for {:?}",
                self.call_id,
                self.peer_timeout
            );
            self.set_detail("agent silent past the peer timeout");
            ctx.stop();
        } else {
            self.send(WsMessage::Ping(Bytes::new()), ctx);
        }
    }

    fn close_normally(&mut self, ctx: &mut Context<Self>) {
        self.close_with(CloseCode::Normal, "closed by the gateway", ctx);
    }

    /// Sends a close and waits (bounded) for the agent's answering close, so the frame is really written
    /// before the leg goes.
    fn close_with(&mut self, code: CloseCode, detail: &str, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.closing = true;
        let _ = self.sink.write(WsMessage::Close(Some(CloseReason::from(code))));
        self.set_detail(detail);
        ctx.run_later(CLOSE_GRACE, |_, ctx| ctx.stop());
    }

    /// Runs a handler's or a timer's work; a panic in it closes the connection (1011) and ends the call
    /// (`crate::supervise`).
    fn supervised(&mut self, ctx: &mut Context<Self>, work: impl FnOnce(&mut Self, &mut Context<Self>)) {
        if let Err(panic) = supervise::guard(Part::AgentLeg, || work(self, ctx)) {
            // The call logs it, once, as it ends.
            self.report(AgentReport::Fault(panic));
            self.close_with(CloseCode::Error, "internal error", ctx);
        }
    }
}

impl Actor for ElevenLabsLeg {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The protocol requires the initiation before any audio.
        let first = std::mem::take(&mut self.initiation);
        self.send(WsMessage::Text(first.into()), ctx);
        ctx.run_interval(self.heartbeat, |act, ctx| {
            act.supervised(ctx, |act, ctx| act.check_heartbeat(ctx))
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        let detail = std::mem::take(&mut self.detail);
        let error_type = self.error_type.take();
        self.report(AgentReport::Gone {
            close_code: self.close_code,
            error_type,
            detail,
        });
        self.reported = true;
    }
}

impl Drop for ElevenLabsLeg {
    /// A panic that no guard caught ended the leg's task without `stopped` (its socket went with it): the
    /// call is told, and ends.
    fn drop(&mut self) {
        if !self.reported {
            let message = "the agent leg's task ended without stopping".to_string();
            supervise::count(Part::AgentLeg, &message);
            self.report(AgentReport::Fault(supervise::Panic {
                part: Part::AgentLeg,
                message,
            }));
        }
    }
}

impl WriteHandler<awc::error::WsProtocolError> for ElevenLabsLeg {
    fn error(&mut self, err: awc::error::WsProtocolError, _: &mut Self::Context) -> Running {
        self.set_detail(&format!("write failed: {err}"));
        Running::Stop
    }
}

impl StreamHandler<Result<Frame, awc::error::WsProtocolError>> for ElevenLabsLeg {
    fn handle(&mut self, item: Result<Frame, awc::error::WsProtocolError>, ctx: &mut Self::Context) {
        self.supervised(ctx, |act, ctx| act.on_frame(item, ctx));
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<ToAgent> for ElevenLabsLeg {
    type Result = ();

    fn handle(&mut self, msg: ToAgent, ctx: &mut Self::Context) {
        self.supervised(ctx, |act, ctx| act.on_command(msg, ctx));
    }
}

impl ElevenLabsLeg {
    fn on_frame(&mut self, item: Result<Frame, awc::error::WsProtocolError>, ctx: &mut Context<Self>) {
        self.liveness.heard();
        match item {
            Ok(Frame::Text(text)) => self.on_text(&text, ctx),
            Ok(Frame::Binary(_)) => self.metrics.unread.agent_ignored_events.inc(),
            Ok(Frame::Continuation(part)) => match self.reassembler.push(part) {
                Ok(Some(Assembled::Text(text))) => self.on_text(&text, ctx),
                Ok(Some(Assembled::Binary(_))) | Ok(None) => {}
                Err(e) => {
                    self.set_detail(&format!("fragmented message refused: {e}"));
                    self.close_normally(ctx);
                }
            },
            Ok(Frame::Ping(p)) => self.send(WsMessage::Pong(p), ctx),
            Ok(Frame::Pong(_)) => {}
            Ok(Frame::Close(reason)) => {
                if !self.closing {
                    // Answer the agent's close, as RFC 6455 asks.
                    let _ = self.sink.write(WsMessage::Close(reason.clone()));
                }
                self.close_code = reason.as_ref().map(|r| u16::from(r.code));
                let said = reason
                    .as_ref()
                    .and_then(|r| r.description.as_deref())
                    .unwrap_or_default();
                self.set_detail(&format!("agent closed: {said}"));
                self.sink.close();
                ctx.stop();
            }
            Err(e) => {
                self.metrics.unread.agent_bad_messages.inc();
                self.set_detail(&format!("protocol error: {e}"));
                ctx.stop();
            }
        }
    }

    fn on_command(&mut self, msg: ToAgent, ctx: &mut Context<Self>) {
        if let ToAgent::CallerAudio { audio, read_at } = msg {
            if self.caller_audio.push(audio, read_at) {
                // Written when this turn of the leg's loop ends, with whatever caller audio queued behind it.
                ctx.spawn(
                    fut::ready(())
                        .map(|(), act: &mut Self, ctx| act.supervised(ctx, |act, ctx| act.write_caller_audio(ctx))),
                );
            }
            return;
        }
        // Caller audio said before this message reaches the agent before it.
        self.write_caller_audio(ctx);
        let text = match msg {
            ToAgent::CallerAudio { .. } => return,
            ToAgent::Note { text } => el::contextual_update(&text),
            ToAgent::McpApproval { tool_call_id, approved } => {
                el::mcp_tool_approval_result(tool_call_id.as_str(), approved)
            }
            ToAgent::ToolResult {
                tool_call_id,
                result,
                is_error,
            } => el::client_tool_result(tool_call_id.as_str(), &result, is_error),
            ToAgent::Close => return self.close_normally(ctx),
        };
        self.send(WsMessage::Text(text.into()), ctx);
    }
}

/// What the agent said or did, as the call hears it: the events that pass to the call as they came.
fn reported(event: AgentEvent<'_>) -> Option<AgentReport> {
    Some(match event {
        AgentEvent::Interruption { event_id } => AgentReport::Interruption { event_id },
        AgentEvent::AgentResponse { text } => AgentReport::Transcript {
            role: Role::Agent,
            text,
        },
        AgentEvent::AgentResponseCorrection { original, corrected } => AgentReport::Correction { original, corrected },
        AgentEvent::McpToolCall {
            tool_call_id,
            tool_name,
            state,
        } => AgentReport::McpToolCall {
            tool_call_id,
            tool_name,
            state,
        },
        AgentEvent::AgentToolResponse { tool_name, is_error } => AgentReport::Transcript {
            role: Role::AgentTool,
            text: if is_error {
                Text::clean(&format!("{tool_name} (error)"), Text::SHORT)
            } else {
                tool_name
            },
        },
        AgentEvent::GuardrailTriggered => AgentReport::Transcript {
            role: Role::GuardrailTriggered,
            text: Text::default(),
        },
        AgentEvent::UserTranscript { text } => AgentReport::Transcript { role: Role::User, text },
        AgentEvent::ClientToolCall {
            tool_name,
            tool_call_id,
        } => AgentReport::ToolCall {
            tool_name,
            tool_call_id,
        },
        _ => return None,
    })
}
