//! `CallActor`: one per call, supervised. It owns the call's phase, its timers and its sends, and it is the
//! only place a call ends (`end_call`). Its four parts decide without touching actix: `Playout` (pacing and
//! checkpoints), `CallerAudio` (hold, route, convert), `AgentLink` (which agent connection counts, and what
//! to do when it fails) and `CallLog` (counters, events, the snapshot). It never touches a socket: the
//! carrier and agent legs do, and report back.

use super::agent_link::{AgentFailure, AgentLink, ReconnectPolicy};
use super::elevenlabs_leg::{dial, AgentSocket, ElevenLabsLeg, LegSetup};
use super::messages::*;
use super::playout::{AfterPump, Playout};
use super::record::{CallLog, Facts};
use super::upstream::CallerAudio;
use super::{CallInfo, CallState, EndReason};
use crate::audio::format::AudioFormat;
use crate::audio::transcode::Transcoder;
use crate::config::Config;
use crate::db::batcher::{DbBatcher, Save};
use crate::db::models::{CallRecord, DbWrite};
use crate::metrics::Metrics;
use crate::protocol::elevenlabs::{AgentFormats, ConversationInitiation};
use crate::protocol::mcube::StreamStart;
use crate::registry::SlotGuard;
use crate::values::{ConversationId, Invalid, Text};
use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a call adds its frame and byte counts to the process-wide metrics and checks its length.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// What every call needs from the process.
#[derive(Clone)]
pub struct CallDeps {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Where the call's records go (`do_send` only: the media path never waits on the database).
    pub db: Addr<DbBatcher>,
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
    /// Restarted by its supervisor before it ended: it ends as soon as it starts.
    Restarted,
    /// `end_call` ran: the actor is stopping.
    Ended,
    /// `stopped` ran: the record is final and the slot released. A restart after this stays idle.
    Finished,
}

impl Phase {
    fn state(self) -> CallState {
        match self {
            Phase::Connecting => CallState::Connecting,
            Phase::Active => CallState::Active,
            Phase::PlayingOut | Phase::Restarted => CallState::Ending,
            Phase::Ended | Phase::Finished => CallState::Ended,
        }
    }
}

pub struct CallActor {
    deps: CallDeps,
    phase: Phase,
    /// The call's slot under the cap; given back when dropped, in `stopped`.
    slot: Option<SlotGuard>,
    carrier: Option<Recipient<ToCarrier>>,
    /// The carrier leg's queue was found full: it stopped reading.
    carrier_stalled: bool,
    stream: Option<StreamStart>,
    agent: AgentLink,
    caller: CallerAudio,
    /// Agent → carrier conversion once bridged (the inner `None`: none needed).
    downstream: Option<Option<Transcoder>>,
    /// Agent audio that arrived before the bridge, in the agent's format, bounded.
    early_agent_audio: Vec<u8>,
    playout: Playout,
    /// The wake-up `playout` asked for, while one is pending.
    pace_timer: Option<SpawnHandle>,
    /// What this call last added to the process-wide queue gauge.
    queue_reported: i64,
    log: CallLog,
    scratch: Vec<u8>,
}

impl CallActor {
    pub fn new(info: CallInfo, slot: SlotGuard, deps: CallDeps) -> Self {
        let (calls, el) = (&deps.config.calls, &deps.config.elevenlabs);
        let policy = ReconnectPolicy {
            max: el.reconnect_attempts,
            window: Duration::from_millis(el.reconnect_window_ms),
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
            downstream: None,
            early_agent_audio: Vec::new(),
            playout,
            pace_timer: None,
            queue_reported: 0,
            log: CallLog::new(info),
            scratch: Vec::new(),
            deps,
        }
    }

    /// Starts the call under a supervisor on the current arbiter.
    pub fn launch(info: CallInfo, slot: SlotGuard, deps: CallDeps) -> Addr<CallActor> {
        actix::Supervisor::start(move |_| CallActor::new(info, slot, deps))
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
        self.event("state", format!("ended: {}", reason.as_str()));
        if let Some(carrier) = self.carrier.take() {
            let terminate = reason.carrier_still_there() && self.stream.is_some();
            carrier.do_send(ToCarrier::Close { code: 1000, terminate });
        }
        if let Some(agent) = self.agent.take_leg() {
            agent.do_send(ToAgent::Close);
        }
        ctx.stop();
    }

    // ----- the agent connection -----------------------------------------------------------------------

    fn initiation(&self) -> String {
        let i = &self.log.info;
        ConversationInitiation::for_call(&[
            ("caller_number", &CallInfo::number(&i.from)),
            ("called_number", &CallInfo::number(&i.to)),
            ("call_id", i.call_id.as_str()),
            ("direction", i.direction.as_str()),
        ])
        .to_json()
    }

    fn connect_agent(&mut self, ctx: &mut Context<Self>) {
        if self.is_over() || self.phase == Phase::PlayingOut {
            return;
        }
        let generation = self.agent.dialling();
        self.unbridge();
        let el_cfg = self.cfg().elevenlabs.clone();
        let agent_id = el_cfg.agent_id.clone().unwrap_or_default();
        let deadline = Duration::from_millis(el_cfg.connect_timeout_ms + el_cfg.metadata_timeout_ms);
        let dialed_at = Instant::now();
        ctx.spawn(
            async move { dial(&el_cfg, &agent_id).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    let outcome = if res.is_ok() { "ok" } else { "error" };
                    let took = dialed_at.elapsed().as_secs_f64();
                    let m = &act.deps.metrics;
                    m.upstream_connect_seconds.with_label_values(&[outcome]).observe(took);
                    act.on_dialed(res, generation, ctx)
                }),
        );
        ctx.run_later(deadline, move |act, ctx| {
            if act.is_current_agent(generation) && act.agent.formats().is_none() {
                act.agent_failed(ctx, None, "no conversation_initiation_metadata in time".into());
            }
        });
    }

    fn on_dialed(
        &mut self,
        res: Result<AgentSocket, super::elevenlabs_leg::DialError>,
        generation: u32,
        ctx: &mut Context<Self>,
    ) {
        if !self.is_current_agent(generation) {
            return; // a late answer for a connection we gave up on: dropping the socket closes it
        }
        match res {
            Ok(socket) => {
                let calls = &self.cfg().calls;
                let setup = LegSetup {
                    call_id: self.call_id().to_string(),
                    call: ctx.address().downgrade().recipient(),
                    generation,
                    metrics: self.deps.metrics.clone(),
                    initiation: self.initiation(),
                    heartbeat: Duration::from_millis(calls.heartbeat_interval_ms),
                    peer_timeout: Duration::from_millis(calls.peer_timeout_ms),
                    max_message_bytes: self.cfg().elevenlabs.max_frame_bytes,
                };
                self.agent.connected(ElevenLabsLeg::start(socket, setup).recipient());
            }
            Err(e) => {
                self.deps.metrics.upstream_connect_failures.inc();
                self.agent_failed(ctx, None, e.to_string());
            }
        }
    }

    /// The current agent connection failed or ended; from here on nothing from it counts. `AgentLink`
    /// decides what follows: play out, give up, or redial within the budget.
    fn agent_failed(&mut self, ctx: &mut Context<Self>, close_code: Option<u16>, detail: String) {
        let code = close_code.map_or("none".to_string(), |c| c.to_string());
        if close_code != Some(1000) {
            self.error(format!("elevenlabs: {detail} (close code {code})"));
        }
        if let Some(agent) = self.agent.take_leg() {
            agent.do_send(ToAgent::Close);
        }
        let decision = self.agent.on_failure(close_code, Instant::now());
        self.unbridge();
        let call_id = self.call_id().to_string();
        match decision {
            AgentFailure::PlayOut => {
                log::info!("call_id={call_id} elevenlabs ended the conversation; playing out queued audio");
                self.begin_playout(ctx);
            }
            AgentFailure::GiveUp(EndReason::ElevenlabsRejected) => {
                log::warn!("call_id={call_id} elevenlabs refused the conversation (1008): {detail}");
                self.end_call(ctx, EndReason::ElevenlabsRejected);
            }
            AgentFailure::GiveUp(reason) => {
                log::warn!(
                    "call_id={call_id} elevenlabs: {detail} (code {code}); reconnect budget spent, ending the call"
                );
                self.end_call(ctx, reason);
            }
            AgentFailure::Redial { attempt, backoff } => {
                let max = self.agent.policy().max;
                log::warn!("call_id={call_id} elevenlabs: {detail} (code {code}); reconnect attempt {attempt}/{max}");
                self.log.stats.upstream_reconnects += 1;
                self.deps.metrics.upstream_reconnects.inc();
                ctx.run_later(backoff, |act, ctx| act.connect_agent(ctx));
            }
        }
    }

    // ----- bridging -----------------------------------------------------------------------------------

    /// Once both the carrier's `start` and the agent's metadata are known: decide the conversions, then
    /// flush what was held.
    fn try_bridge(&mut self, ctx: &mut Context<Self>) {
        let (Some(stream), Some(agent)) = (&self.stream, self.agent.formats()) else {
            return;
        };
        let carrier = stream.format;
        let convert = |from: AudioFormat, to: AudioFormat| (from != to).then(|| Transcoder::new(from, to));
        self.caller.bridge(convert(carrier, agent.input));
        self.downstream = Some(convert(agent.output, carrier));
        if self.phase == Phase::Connecting {
            self.phase = Phase::Active;
            self.log.answered();
            self.event("state", "active".into());
            self.save();
        }
        log::info!(
            "call_id={} bridging carrier {} <-> agent in {} / out {}",
            self.call_id(),
            carrier.elevenlabs_name(),
            agent.input.elevenlabs_name(),
            agent.output.elevenlabs_name()
        );
        for chunk in self.caller.release_held() {
            self.send_agent(chunk);
        }
        self.update_route();
        let held = std::mem::take(&mut self.early_agent_audio);
        if !held.is_empty() {
            self.enqueue_downstream(&held, ctx);
        }
    }

    /// The agent connection is being replaced: caller audio is held and agent audio waits for the bridge.
    fn unbridge(&mut self) {
        self.caller.unbridge();
        self.downstream = None;
        self.update_route();
    }

    /// Tells the carrier leg where caller audio goes when that changed (see `CallerAudio::reroute`).
    fn update_route(&mut self) {
        let Some(carrier) = &self.carrier else { return };
        let agent = self.agent.leg().map(|leg| (self.agent.generation(), leg));
        if let Some(r) = self.caller.reroute(agent) {
            carrier.do_send(ToCarrier::Route {
                to: r.to,
                counts: r.counts,
            });
        }
    }

    /// Adds what the carrier leg forwarded by itself to the call's own counts.
    fn absorb_routed(&mut self) {
        let r = self.caller.take_routed();
        let s = &mut self.log.stats;
        s.frames_in += r.frames;
        s.bytes_in += r.bytes;
        s.bad_carrier_audio += r.bad;
    }

    fn on_caller_audio(&mut self, payload: CarrierPayload, bytes: usize, received_at: Option<Instant>) {
        self.log.stats.frames_in += 1;
        self.log.stats.bytes_in += bytes as u64;
        if self.caller.is_bridged() && self.agent.leg().is_some() {
            match self.caller.to_agent(payload, received_at) {
                Some(chunk) => self.send_agent(chunk),
                None => {
                    self.log.stats.bad_carrier_audio += 1;
                    self.deps.metrics.carrier_bad_audio.inc();
                }
            }
        } else if self.phase != Phase::PlayingOut {
            self.log.stats.inbound_dropped += self.caller.hold(payload);
        }
    }

    fn on_carrier_start(&mut self, start: StreamStart, ctx: &mut Context<Self>) {
        if self.stream.is_some() {
            log::warn!("call_id={} carrier sent a second start; ignored", self.call_id());
            return;
        }
        let (format, calls) = (start.format, &self.deps.config.calls);
        self.playout.resize(
            format.bytes_for_ms(calls.frame_ms),
            format.bytes_for_ms(calls.outbound_queue_ms),
        );
        self.caller.set_hold_limit(Self::hold_limit(self.cfg(), format));
        self.stream = Some(start);
        self.try_bridge(ctx);
    }

    fn on_agent_metadata(
        &mut self,
        conversation_id: Option<ConversationId>,
        formats: Result<AgentFormats, Invalid>,
        ctx: &mut Context<Self>,
    ) {
        let formats = match formats {
            Ok(f) => f,
            Err(invalid) => {
                log::warn!(
                    "call_id={} elevenlabs announced a format we cannot bridge: {invalid}",
                    self.call_id()
                );
                self.error(format!("elevenlabs: {invalid}"));
                self.end_call(ctx, EndReason::ElevenlabsBadFormat);
                return;
            }
        };
        if let Some(id) = &conversation_id {
            log::info!("call_id={} elevenlabs conversation_id={id}", self.call_id());
        }
        self.agent.announced(conversation_id, formats);
        self.try_bridge(ctx);
    }

    fn on_agent_audio(&mut self, audio: &[u8], event_id: Option<i64>, ctx: &mut Context<Self>) {
        if self.agent.is_stale(event_id) {
            self.log.stats.stale_audio_dropped += 1;
            self.deps.metrics.stale_audio_dropped.inc();
            return;
        }
        if self.downstream.is_some() {
            self.enqueue_downstream(audio, ctx);
        } else {
            let queue_ms = self.cfg().calls.outbound_queue_ms;
            let cap = self.agent.formats().map_or(0, |f| f.output.bytes_for_ms(queue_ms));
            let room = cap.saturating_sub(self.early_agent_audio.len());
            self.early_agent_audio
                .extend_from_slice(&audio[..audio.len().min(room)]);
        }
    }

    fn on_interruption(&mut self, event_id: Option<i64>, ctx: &mut Context<Self>) {
        self.log.stats.interruptions += 1;
        self.deps.metrics.interruptions.inc();
        self.agent.interrupted(event_id);
        self.stop_pacing(ctx);
        self.playout.clear(Instant::now());
        self.sync_queue_gauge();
        self.early_agent_audio.clear();
        if self.stream.is_some() {
            self.send_carrier(ToCarrier::ClearAudio);
        }
        self.line("interruption", Text::default());
    }

    fn enqueue_downstream(&mut self, audio: &[u8], ctx: &mut Context<Self>) {
        let Some(conversion) = self.downstream.as_mut() else {
            return;
        };
        let dropped = match conversion {
            None => self.playout.push(audio),
            Some(tc) => {
                self.scratch.clear();
                tc.convert(audio, &mut self.scratch);
                self.playout.push(&self.scratch)
            }
        };
        if dropped > 0 {
            self.deps.metrics.outbound_dropped_bytes.inc_by(dropped as u64);
        }
        self.start_pacing(ctx);
    }

    // ----- pacing: `Playout` decides, the call keeps the one timer and sends --------------------------

    /// New audio is queued: play what the clock allows now, unless a pending wake-up already covers it.
    fn start_pacing(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if !self.playout.send_now(now) {
            return;
        }
        if self.playout.waiting() {
            self.stop_pacing(ctx);
        }
        self.pump(ctx, now, now);
    }

    fn stop_pacing(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.pace_timer.take() {
            ctx.cancel_future(h);
        }
        self.playout.cancel_wake();
    }

    /// Sends every frame the clock allows at `now`, then arranges the next wake-up or marks the end of the
    /// stream. `ready_at`: since when the audio could be played (for hop latency).
    fn pump(&mut self, ctx: &mut Context<Self>, now: Instant, ready_at: Instant) {
        while let Some(frame) = self.playout.next_frame(now) {
            let frame = frame.to_vec();
            self.play_frame(frame, ready_at);
        }
        match self.playout.after_pump(now) {
            AfterPump::Drained if self.phase == Phase::PlayingOut => self.on_queue_drained(ctx),
            AfterPump::Drained => {}
            AfterPump::WakeAt(wake) => {
                let timer = ctx.run_later(wake.saturating_duration_since(now), |act, ctx| {
                    act.pace_timer = None;
                    let now = Instant::now();
                    let (due, late) = act.playout.woke(now);
                    if late {
                        act.log.stats.pacing_resyncs += 1;
                        act.deps.metrics.pacing_resyncs.inc();
                    }
                    act.pump(ctx, now, due);
                });
                self.pace_timer = Some(timer);
            }
        }
    }

    fn play_frame(&mut self, frame: Vec<u8>, ready_at: Instant) {
        let s = &mut self.log.stats;
        s.frames_out += 1;
        s.bytes_out += frame.len() as u64;
        // Hop latency is sampled: one played frame in `HOP_SAMPLE_EVERY` is timed.
        let since = s
            .frames_out
            .is_multiple_of(u64::from(HOP_SAMPLE_EVERY))
            .then_some(ready_at);
        self.send_carrier(ToCarrier::Play { frame, since });
    }

    /// The queue ran dry: mark the end of what was played so the carrier tells us when it has been heard.
    fn on_queue_drained(&mut self, ctx: &mut Context<Self>) {
        if let Some(name) = self.playout.mark_end() {
            self.send_carrier(ToCarrier::Checkpoint { name });
        }
        self.maybe_finish_playout(ctx);
    }

    fn begin_playout(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::PlayingOut;
        let queued_ms = self.carrier_format().ms_for_bytes(self.playout.queued_bytes());
        let limit = Duration::from_millis(queued_ms + self.cfg().calls.playout_timeout_ms);
        ctx.run_later(limit, |act, ctx| {
            log::info!(
                "call_id={} play-out not acknowledged in time; terminating",
                act.call_id()
            );
            act.end_call(ctx, EndReason::AgentEnded);
        });
        if !self.playout.waiting() {
            self.on_queue_drained(ctx);
        }
    }

    fn maybe_finish_playout(&mut self, ctx: &mut Context<Self>) {
        if self.phase == Phase::PlayingOut && self.playout.done() {
            self.end_call(ctx, EndReason::AgentEnded);
        }
    }

    // ----- housekeeping and the record ----------------------------------------------------------------

    /// Once a second: counters to the metrics, a stalled carrier, the quiet mark, the call's length.
    fn housekeeping(&mut self, ctx: &mut Context<Self>, max_len: Duration) {
        self.flush_counters();
        if self.carrier_stalled {
            log::warn!("call_id={} carrier stopped reading: its queue is full", self.call_id());
            self.end_call(ctx, EndReason::CarrierStalled);
            return;
        }
        if let Some(name) = self.playout.quiet_mark(Instant::now()) {
            self.send_carrier(ToCarrier::Checkpoint { name });
            self.maybe_finish_playout(ctx);
        }
        if self.log.started.elapsed() >= max_len {
            self.end_call(ctx, EndReason::MaxDuration);
        }
    }

    fn flush_counters(&mut self) {
        self.absorb_routed();
        self.log.flush_counters(&self.deps.metrics);
        self.sync_queue_gauge();
    }

    /// Keeps the process-wide queue gauge equal to the sum of every call's queue.
    fn sync_queue_gauge(&mut self) {
        let now = self.playout.queued_bytes() as i64;
        self.deps.metrics.outbound_queue_bytes.add(now - self.queue_reported);
        self.queue_reported = now;
    }

    fn event(&mut self, kind: &str, detail: String) {
        if self.log.event(kind, detail) {
            self.save();
        }
    }

    fn error(&mut self, error: String) {
        if self.log.error(error) {
            self.save();
        }
    }

    fn line(&mut self, role: &'static str, text: Text) {
        if self.log.line(role, text) {
            self.save();
        }
    }

    fn snapshot(&self) -> CallRecord {
        self.log.snapshot(Facts {
            state: self.phase.state(),
            stream_id: self
                .stream
                .as_ref()
                .and_then(|s| s.stream_id.as_ref())
                .map(|id| id.to_string()),
            agent_id: self.cfg().elevenlabs.agent_id.as_deref(),
            conversation_id: self.agent.conversation_id(),
            carrier_format: self.stream.as_ref().map(|s| s.format.elevenlabs_name()),
            agent_formats: self.agent.formats(),
        })
    }

    /// Sends the call's current snapshot and its new events to the database (never waits).
    fn save(&mut self) {
        self.log.next_revision();
        self.absorb_routed();
        let mut writes = vec![DbWrite::Call(Box::new(self.snapshot()))];
        let events = self.log.take_events();
        if !events.is_empty() {
            writes.push(DbWrite::Events(events));
        }
        self.deps.db.do_send(Save { writes });
    }

    /// The call's end, once: final record, metrics, the slot given back, one log line.
    fn finish(&mut self) {
        self.log.ended(EndReason::Shutdown); // stopped by something other than end_call: the arbiter going
        self.phase = Phase::Finished;
        self.save();
        self.flush_counters();
        let m = &self.deps.metrics;
        let reason = self.log.end_reason().map_or("unknown", |r| r.as_str());
        m.calls_ended.with_label_values(&[reason]).inc();
        m.call_duration.observe(self.log.started.elapsed().as_secs_f64());
        self.playout.clear(Instant::now());
        self.sync_queue_gauge();
        self.slot.take();
        let s = &self.log.stats;
        log::info!(
            "call_id={} ended reason={reason} duration_ms={} frames_in={} frames_out={} interruptions={} reconnects={} stale_dropped={} inbound_dropped={} queue_dropped_bytes={}",
            self.call_id(),
            self.log.started.elapsed().as_millis(),
            s.frames_in,
            s.frames_out,
            s.interruptions,
            s.upstream_reconnects,
            s.stale_audio_dropped,
            s.inbound_dropped,
            self.playout.dropped_bytes()
        );
    }
}

impl Actor for CallActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        match self.phase {
            // Restarted after the call ended because something still held the address: stay idle, holding
            // nothing and scheduling nothing, so the actor goes as soon as the last address is dropped.
            Phase::Finished => return,
            Phase::Restarted => return self.end_call(ctx, EndReason::Internal),
            _ => {}
        }
        self.deps.metrics.calls_started.inc();
        let calls = &self.cfg().calls;
        let start_timeout = Duration::from_millis(calls.start_timeout_ms);
        let max_len = Duration::from_secs(calls.max_call_seconds);
        ctx.run_later(start_timeout, |act, ctx| {
            if act.stream.is_none() {
                log::warn!("call_id={} carrier sent no start event in time", act.call_id());
                act.end_call(ctx, EndReason::CarrierNoStart);
            }
        });
        self.save();
        // One interval for the call's slow chores: actix polls every timer of an actor each time it wakes,
        // and a call wakes for every frame, so long-lived timers are kept to this one.
        ctx.run_interval(HOUSEKEEPING_EVERY, move |act, ctx| act.housekeeping(ctx, max_len));
        self.connect_agent(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if self.phase != Phase::Finished {
            self.finish();
        }
    }
}

impl actix::Supervised for CallActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // A restarted call has lost its legs' trust: end it cleanly instead of bridging half a call.
        if self.phase == Phase::Finished {
            return;
        }
        log::error!(
            "call_id={} call actor restarted by its supervisor; ending the call",
            self.call_id()
        );
        self.phase = Phase::Restarted;
    }
}

impl Handler<AttachCarrier> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: AttachCarrier, _: &mut Context<Self>) {
        if self.is_over() {
            msg.leg.do_send(ToCarrier::Close {
                code: 1000,
                terminate: false,
            });
        } else {
            self.carrier = Some(msg.leg);
            self.update_route();
        }
    }
}

impl Handler<FromCarrier> for CallActor {
    type Result = ();

    fn handle(&mut self, FromCarrier(report): FromCarrier, ctx: &mut Context<Self>) {
        match report {
            CarrierReport::Audio {
                payload,
                bytes,
                received_at,
            } => self.on_caller_audio(payload, bytes, received_at),
            CarrierReport::Started(start) => self.on_carrier_start(start, ctx),
            CarrierReport::Played { name } => {
                if name.is_some_and(|n| self.playout.played(n.as_str())) {
                    self.maybe_finish_playout(ctx);
                }
            }
            CarrierReport::Dtmf { digit } => {
                let text = format!("The caller pressed DTMF key {digit}");
                self.send_agent(ToAgent::Note { text });
                self.line("dtmf", Text::clean(&digit.to_string(), 1));
            }
            CarrierReport::Gone { reason, invalid } => {
                if self.is_over() {
                    return;
                }
                log::info!("call_id={} carrier leg ended: {}", self.call_id(), reason.as_str());
                if let Some(invalid) = invalid {
                    self.error(format!("carrier: {invalid}"));
                }
                self.end_call(ctx, reason);
            }
        }
    }
}

impl Handler<FromAgent> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: FromAgent, ctx: &mut Context<Self>) {
        if !self.is_current_agent(msg.generation) {
            // Every abandoned connection reports its end: that one is expected, the rest is stale talk.
            if !matches!(msg.report, AgentReport::Gone { .. }) {
                self.deps.metrics.agent_stale_reports.inc();
            }
            return;
        }
        match msg.report {
            AgentReport::Metadata {
                conversation_id,
                formats,
            } => self.on_agent_metadata(conversation_id, formats, ctx),
            AgentReport::Audio { audio, event_id } => self.on_agent_audio(&audio, event_id, ctx),
            AgentReport::Interruption { event_id } => self.on_interruption(event_id, ctx),
            AgentReport::Transcript { role, text } => self.line(role, text),
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
                self.line("tool_call", tool_name);
            }
            AgentReport::Gone { close_code, detail } => self.agent_failed(ctx, close_code, detail.to_string()),
        }
    }
}

impl Handler<EndCall> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: EndCall, ctx: &mut Context<Self>) {
        self.end_call(ctx, msg.reason);
    }
}

impl Handler<DescribeCall> for CallActor {
    type Result = MessageResult<DescribeCall>;

    fn handle(&mut self, _: DescribeCall, _: &mut Context<Self>) -> Self::Result {
        self.absorb_routed();
        MessageResult(self.log.view(self.snapshot(), self.phase.state()))
    }
}
