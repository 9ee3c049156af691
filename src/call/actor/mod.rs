//! `CallActor`: one per call. It owns the call's phase, its timers and its sends, and it is the
//! only place a call ends (`end_call`). Its four parts decide without touching actix: `Playout` (pacing and
//! checkpoints), `CallerAudio` (hold, route, convert), `AgentLink` (which agent connection counts, and what
//! to do when it fails) and `CallLog` (counters, events, the snapshot). It never touches a socket: the
//! carrier and agent legs do, and report back.

mod agent;
mod bookkeeping;
mod media;

use crate::audio::format::AudioFormat;
use crate::audio::transcode::Transcoder;
use crate::call::agent_dial::{close_unused, dial, AgentSocket, DialError};
use crate::call::agent_link::{AgentFailure, AgentLink, RedialPolicy};
use crate::call::elevenlabs_leg::{ElevenLabsLeg, LegSetup};
use crate::call::failure::{Failure, FailureScope};
use crate::call::feed::FeedEvent;
use crate::call::hold::HoldAudio;
use crate::call::messages::*;
use crate::call::playout::{AfterPump, Playout};
use crate::call::record::{CallLog, Facts};
use crate::call::turns::TurnStart;
use crate::call::upstream::CallerAudio;
use crate::call::{CallInfo, CallState, Crossing, EndReason, Role};
use crate::carriers::stream::StreamStart;
use crate::config::Config;
use crate::db::batcher::{DbBatcher, Save};
use crate::db::models::{CallRecord, DbWrite, EventKind};
use crate::metrics::Metrics;
use crate::protocol::elevenlabs::{AgentFormats, ConversationInitiation};
use crate::supervise::{self, Panic, Part};
use crate::values::{ConversationId, Direction, Invalid, Text};
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Agent audio's facts besides its bytes (see `AgentReport::Audio`).
struct AgentAudio {
    event_id: Option<i64>,
    read_at: Instant,
    turn: Option<TurnStart>,
}

/// How often a call adds its frame and byte counts to the process-wide metrics and checks its length.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// What every call needs from the process.
#[derive(Clone)]
pub struct CallDeps {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Where the call's records go (`do_send` only: the media path never waits on the database).
    pub db: Addr<DbBatcher>,
    /// Told how each dial went: account-level failures open it, a conversation that starts closes it.
    pub breaker: Arc<crate::call::breaker::UpstreamBreaker>,
    /// Told each change of the call's state, for whoever watches.
    pub feed: crate::call::feed::CallFeed,
    /// Records each call, when `recording.enabled`.
    pub recorder: Option<crate::recording::Recorder>,
}

/// Where the call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the carrier's `start` and the agent's metadata.
    Connecting,
    /// Bridged.
    Active,
    /// The agent ended the conversation: what is queued plays out, then the call ends.
    PlayingOut,
    /// `end_call` ran: the actor is stopping.
    Ended,
    /// `stopped` ran: the record is final and the slot released.
    Finished,
}

impl Phase {
    fn state(self) -> CallState {
        match self {
            Phase::Connecting => CallState::Connecting,
            Phase::Active => CallState::Active,
            Phase::PlayingOut => CallState::Ending,
            Phase::Ended | Phase::Finished => CallState::Ended,
        }
    }
}

pub struct CallActor {
    deps: CallDeps,
    phase: Phase,
    /// The call's slot under the cap; given back when dropped, in `stopped`.
    slot: Option<super::HeldSlot>,
    carrier: Option<Recipient<ToCarrier>>,
    /// The carrier leg's queue was found full: it stopped reading.
    carrier_stalled: bool,
    stream: Option<StreamStart>,
    agent: AgentLink,
    caller: CallerAudio,
    /// Agent → carrier, once bridged.
    downstream: Crossing<Transcoder>,
    /// Agent audio that arrived before the bridge, in the agent's format, bounded.
    early_agent_audio: Vec<u8>,
    playout: Playout,
    /// The wake-up `playout` asked for, while one is pending.
    pace_timer: Option<SpawnHandle>,
    /// How the call ends once what is queued has played out.
    playout_reason: EndReason,
    /// What the caller hears while the agent is redialled; `None` when not redialling.
    hold: Option<HoldAudio>,
    /// What this call last added to the process-wide queue gauge.
    queue_reported: i64,
    log: CallLog,
    scratch: Vec<u8>,
}

impl CallActor {
    pub fn new(info: CallInfo, slot: super::HeldSlot, deps: CallDeps) -> Self {
        let (calls, el) = (&deps.config.calls, &deps.config.elevenlabs);
        let policy = RedialPolicy {
            max: el.max_redials_per_call,
            min_spacing: el.redial_min_spacing(),
        };
        let format = AudioFormat::ULAW_8K;
        let playout = Playout::new(
            format.bytes_for_ms(calls.frame_ms),
            format.bytes_for_ms(calls.outbound_queue_ms),
            calls.frame(),
            Instant::now(),
        );
        CallActor {
            phase: Phase::Connecting,
            slot: Some(slot),
            carrier: None,
            carrier_stalled: false,
            stream: None,
            agent: AgentLink::new(policy),
            caller: CallerAudio::new(Self::hold_limit(&deps.config, format)),
            downstream: Crossing::Held,
            early_agent_audio: Vec::new(),
            playout,
            pace_timer: None,
            playout_reason: EndReason::AgentEnded,
            hold: None,
            queue_reported: 0,
            log: CallLog::new(info),
            scratch: Vec::new(),
            deps,
        }
    }

    /// Starts the call on the current arbiter. It is not supervised: every way out of a call, a stop by
    /// the arbiter included, passes through `stopped`, which writes the final record and gives the slot
    /// back; a restart would have nothing left to do.
    pub fn launch(info: CallInfo, slot: super::HeldSlot, deps: CallDeps) -> Addr<CallActor> {
        let actor = CallActor::new(info, slot, deps);
        actor.announce("state");
        actor.start()
    }

    /// How much caller audio is held while the agent is not ready (base64 as it came, with some slack).
    fn hold_limit(config: &Config, format: AudioFormat) -> usize {
        format.bytes_for_ms(config.calls.inbound_buffer_ms) * 4 / 3 + 64
    }

    fn cfg(&self) -> &Config {
        &self.deps.config
    }

    fn call_id(&self) -> &str {
        self.log.info.call_id.as_str()
    }

    fn carrier_format(&self) -> AudioFormat {
        self.stream.as_ref().map_or(AudioFormat::ULAW_8K, |s| s.format)
    }

    fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Ended | Phase::Finished)
    }

    /// Whether reports from agent connection `generation` still count.
    fn is_current_agent(&self, generation: u32) -> bool {
        self.agent.is_current(generation) && !self.is_over()
    }

    /// The carrier leg's queue is bounded: a full one means the carrier stopped reading (its socket is not
    /// being written), and the call ends at the next housekeeping tick.
    fn send_carrier(&mut self, msg: ToCarrier) {
        if let Some(c) = &self.carrier {
            if let Err(SendError::Full(_)) = c.try_send(msg) {
                self.carrier_stalled = true;
            }
        }
    }

    fn send_agent(&self, msg: ToAgent) {
        if let Some(a) = self.agent.leg() {
            a.do_send(msg);
        }
    }

    // ----- ending: the only way out ------------------------------------------------------------------

    /// Ends the call: tells the carrier (terminate, when its socket may still be up), closes the agent with
    /// 1000, stops both legs and this actor. `stopped` then saves the final record and releases the slot.
    fn end_call(&mut self, ctx: &mut Context<Self>, reason: EndReason) {
        if self.is_over() {
            return;
        }
        self.phase = Phase::Ended;
        self.log.ended(reason);
        self.event(EventKind::State, format!("ended: {}", reason.as_str()));
        if let Some(carrier) = self.carrier.take() {
            let terminate = reason.carrier_still_there() && self.stream.is_some();
            carrier.do_send(ToCarrier::Close { code: 1000, terminate });
        }
        if let Some(agent) = self.agent.take_leg() {
            agent.do_send(ToAgent::Close);
        }
        // A dial still out would be dropped with the actor, and its answer cut without a close frame: the
        // call stops once it is answered (bounded by the connect timeout), and closes it.
        if !self.agent.dial_out() {
            ctx.stop();
        }
    }
}

impl CallActor {
    /// Runs a handler's or a timer's work; a panic in it ends the call as `internal_error`, through
    /// `end_call` like every other end (`crate::supervise`).
    fn supervised(&mut self, ctx: &mut Context<Self>, work: impl FnOnce(&mut Self, &mut Context<Self>)) {
        if let Err(panic) = supervise::guard(Part::Call, || work(self, ctx)) {
            self.internal_error(ctx, panic);
        }
    }

    /// `run_later`, supervised.
    fn later(
        ctx: &mut Context<Self>,
        after: Duration,
        work: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
    ) -> SpawnHandle {
        ctx.run_later(after, move |act, ctx| act.supervised(ctx, work))
    }

    /// A part of the call panicked: logged once with the call id, the panic kept as the record's error,
    /// and the call ended.
    fn internal_error(&mut self, ctx: &mut Context<Self>, panic: Panic) {
        log::error!("call_id={} {panic}; ending the call", self.call_id());
        self.error(panic.to_string());
        self.end_call(ctx, EndReason::InternalError);
    }
}

impl Actor for CallActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.deps.metrics.calls_started.inc();
        let calls = &self.cfg().calls;
        let start_timeout = calls.start_timeout();
        let max_len = calls.max_call();
        Self::later(ctx, start_timeout, |act, ctx| {
            if act.stream.is_none() {
                log::warn!("call_id={} carrier sent no start event in time", act.call_id());
                act.end_call(ctx, EndReason::CarrierNoStart);
            }
        });
        self.save();
        // One interval for the call's slow chores: actix polls every timer of an actor each time it wakes,
        // and a call wakes for every frame, so long-lived timers are kept to this one.
        ctx.run_interval(HOUSEKEEPING_EVERY, move |act, ctx| {
            act.supervised(ctx, |act, ctx| act.housekeeping(ctx, max_len))
        });
        self.supervised(ctx, |act, ctx| act.connect_agent(ctx));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if std::thread::panicking() {
            self.died();
        }
        self.finish();
    }
}

impl Handler<AttachCarrier> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: AttachCarrier, ctx: &mut Context<Self>) {
        self.supervised(ctx, |act, _| act.attach_carrier(msg.leg));
    }
}

impl Handler<FromCarrier> for CallActor {
    type Result = ();

    fn handle(&mut self, FromCarrier(report): FromCarrier, ctx: &mut Context<Self>) {
        self.supervised(ctx, |act, ctx| act.on_carrier_report(report, ctx));
    }
}

impl Handler<FromAgent> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: FromAgent, ctx: &mut Context<Self>) {
        self.supervised(ctx, |act, ctx| act.on_agent_report(msg, ctx));
    }
}

impl Handler<EndCall> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: EndCall, ctx: &mut Context<Self>) {
        self.supervised(ctx, |act, ctx| act.end_call(ctx, msg.reason));
    }
}

impl Handler<ListenIn> for CallActor {
    type Result = ();

    fn handle(&mut self, ListenIn { listener }: ListenIn, ctx: &mut Context<Self>) {
        self.supervised(ctx, |act, _| {
            let Some(leg) = act.carrier.clone().filter(|_| !act.is_over()) else {
                return;
            };
            act.event(EventKind::Listen, format!("{} listened in", listener.who));
            leg.do_send(ToCarrier::Listen(listener));
        });
    }
}

impl Handler<PauseRecording> for CallActor {
    type Result = ();

    fn handle(&mut self, PauseRecording { paused }: PauseRecording, ctx: &mut Context<Self>) {
        self.supervised(ctx, |act, _| {
            let Some(leg) = act.carrier.clone().filter(|_| !act.is_over()) else {
                return;
            };
            let what = if paused { "paused" } else { "resumed" };
            act.event(EventKind::Recording, format!("recording {what} by an admin"));
            leg.do_send(ToCarrier::PauseRecording(paused));
        });
    }
}

impl CallActor {
    fn attach_carrier(&mut self, leg: Recipient<ToCarrier>) {
        if self.is_over() {
            leg.do_send(ToCarrier::Close {
                code: 1000,
                terminate: false,
            });
        } else {
            self.carrier = Some(leg);
            self.update_route();
        }
    }

    fn on_carrier_report(&mut self, report: CarrierReport, ctx: &mut Context<Self>) {
        if self.is_over() {
            return;
        }
        match report {
            CarrierReport::Audio {
                payload,
                frames,
                bytes,
                received_at,
            } => self.on_caller_audio(payload, frames, bytes, received_at),
            CarrierReport::Started(start) => self.on_carrier_start(start, ctx),
            CarrierReport::Played { name } => {
                if name.is_some_and(|n| self.playout.played(n.as_str())) {
                    self.maybe_finish_playout(ctx);
                }
            }
            CarrierReport::Dtmf { digit } => {
                let text = format!("The caller pressed DTMF key {digit}");
                self.send_agent(ToAgent::Note { text });
                self.line(Role::Dtmf, Text::clean(&digit.to_string(), 1));
            }
            CarrierReport::Fault(panic) => self.internal_error(ctx, panic),
            CarrierReport::Gone { reason, invalid } => {
                log::info!("call_id={} carrier leg ended: {}", self.call_id(), reason.as_str());
                if let Some(invalid) = invalid {
                    self.error(format!("carrier: {invalid}"));
                }
                self.end_call(ctx, reason);
            }
        }
    }

    fn on_agent_report(&mut self, msg: FromAgent, ctx: &mut Context<Self>) {
        if !self.is_current_agent(msg.generation) {
            // Every abandoned connection reports its end: that one is expected, the rest is stale talk.
            if !matches!(msg.report, AgentReport::Gone { .. }) {
                self.deps.metrics.unread.agent_stale_reports.inc();
            }
            return;
        }
        match msg.report {
            AgentReport::Metadata {
                conversation_id,
                formats,
            } => self.on_agent_metadata(conversation_id, formats, ctx),
            AgentReport::Audio {
                audio,
                event_id,
                read_at,
                turn,
            } => self.on_agent_audio(
                &audio,
                AgentAudio {
                    event_id,
                    read_at,
                    turn,
                },
                ctx,
            ),
            AgentReport::Interruption { event_id } => self.on_interruption(event_id, ctx),
            AgentReport::Transcript {
                role: Role::Agent,
                text,
            } if self.agent.is_greeting_muted() => self.event(EventKind::GreetingMuted, text.to_string()),
            AgentReport::Transcript { role, text } => {
                if role == Role::User {
                    self.agent.caller_heard();
                }
                self.line(role, text)
            }
            AgentReport::Correction { original, corrected } => {
                if self.log.correct(&original, corrected) {
                    self.save();
                }
            }
            AgentReport::McpToolCall {
                tool_call_id,
                tool_name,
                state,
            } => self.on_mcp_tool_call(tool_call_id, tool_name, state),
            AgentReport::ToolCall {
                tool_name,
                tool_call_id,
            } => {
                // No client tools run on a phone gateway; answering keeps the agent from waiting for one.
                let result = format!("client tool '{tool_name}' is not available on this phone gateway");
                self.send_agent(ToAgent::ToolResult {
                    tool_call_id,
                    result,
                    is_error: true,
                });
                self.line(Role::ToolCall, tool_name);
            }
            AgentReport::Fault(panic) => self.internal_error(ctx, panic),
            AgentReport::Gone {
                close_code,
                error_type,
                detail,
            } => {
                let scope = FailureScope::of_close(close_code, error_type.as_ref().map(|t| t.as_str()));
                let failure = Failure {
                    close_code,
                    error_type,
                    detail: detail.to_string(),
                    scope,
                };
                self.agent_failed(ctx, failure)
            }
        }
    }
}

impl Handler<DescribeCall> for CallActor {
    type Result = MessageResult<DescribeCall>;

    fn handle(&mut self, _: DescribeCall, _: &mut Context<Self>) -> Self::Result {
        // Not guarded: a panic here is one no guard catches, and `died` ends the call (tested through this
        // point, as `<call id>:describe`).
        #[cfg(feature = "fault-injection")]
        supervise::fault::point(Part::Call, &format!("{}:describe", self.call_id()));
        self.absorb_routed();
        MessageResult(self.log.view(self.snapshot()))
    }
}
