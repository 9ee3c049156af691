//! `CallActor`: one per call, supervised. It owns the call's state machine, the audio format decision, the
//! outbound pacer and every timer, and it is the only place a call ends (`end_call`). It never touches a
//! socket: the carrier and agent legs do, and report back.

use super::elevenlabs_leg::{dial, AgentSocket, ElevenLabsLeg, LegSetup};
use super::mcube_leg::McubeLeg;
use super::messages::*;
use super::{CallInfo, CallState, CallView, EndReason, RoutedAudio, TranscriptLine};
use crate::audio::format::AudioFormat;
use crate::audio::pacer::Pacer;
use crate::audio::transcode::Transcoder;
use crate::config::Config;
use crate::db::batcher::{DbBatcher, Save};
use crate::db::models::{now_ms, CallEvent, CallRecord, DbWrite};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::protocol::elevenlabs::{self as el, AgentFormats, ConversationInitiation};
use crate::protocol::mcube::{CarrierWriter, StreamStart};
use crate::registry::Slots;
use crate::values::{ConversationId, Invalid, Text};
use actix::prelude::*;
use base64::Engine as _;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Most transcript lines kept on a live call.
const MAX_TRANSCRIPT_LINES: usize = 500;
/// Events held on the call before they are sent to the database without waiting for the call's end.
const EVENT_FLUSH_AT: usize = 32;
/// How often a call adds its frame and byte counts to the process-wide metrics and checks its length.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// A pacing wake-up this many frames late counts as a resync (the carrier heard a gap).
const MAX_PACING_LAG_FRAMES: u32 = 5;
/// How far ahead of the carrier's playback the pacer may run, in frames. A little lead absorbs network
/// jitter and the burst that follows an agent (re)connect without adding latency to a live stream, and it
/// costs nothing on barge-in because `clearAudio` empties the carrier's buffer.
const PACING_LEAD_FRAMES: u32 = 3;
/// How long the outbound stream must have been quiet before its end is marked with a checkpoint.
const CHECKPOINT_QUIET: Duration = Duration::from_millis(100);

/// What every call needs from the process.
#[derive(Clone)]
pub struct CallDeps {
    pub config: Arc<Config>,
    /// The registry's table, where the call gives its slot back.
    pub slots: Slots,
    pub metrics: Arc<Metrics>,
    /// Where the call's records go (`do_send` only: the media path never waits on the database).
    pub db: Addr<DbBatcher>,
}

/// Per-call counters (plain integers: the call is single-threaded).
#[derive(Debug, Default, Clone)]
struct CallStats {
    frames_in: u64,
    frames_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    interruptions: u64,
    stale_audio_dropped: u64,
    inbound_dropped: u64,
    upstream_reconnects: u64,
    pacing_resyncs: u64,
    bad_carrier_audio: u64,
}

/// Reconnects allowed within a sliding window from the first failure.
#[derive(Debug, Default)]
struct ReconnectBudget {
    used: u32,
    window_start: Option<Instant>,
}

impl ReconnectBudget {
    fn allow(&mut self, now: Instant, max: u32, window: Duration) -> bool {
        if self.window_start.is_none_or(|s| now.duration_since(s) > window) {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used < max {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

/// The conversions the agent's formats imply.
struct Bridge {
    /// Carrier → agent; `None` passes the base64 through untouched.
    upstream: Option<Transcoder>,
    /// Agent → carrier; `None` queues the agent's bytes as they are.
    downstream: Option<Transcoder>,
}

/// The carrier's stream once `start` has arrived.
struct CarrierStream {
    start: StreamStart,
    writer: CarrierWriter,
}

pub struct CallActor {
    info: CallInfo,
    deps: CallDeps,
    state: CallState,
    started_at: SystemTime,
    started: Instant,
    restarted: bool,
    /// The call's end has been recorded and its slot released (exactly once).
    finished: bool,
    carrier: Option<Addr<McubeLeg>>,
    stream: Option<CarrierStream>,
    agent: Option<Addr<ElevenLabsLeg>>,
    /// Which agent connection is current; reports from older ones are ignored.
    generation: u32,
    failed_generation: u32,
    agent_formats: Option<AgentFormats>,
    bridge: Option<Bridge>,
    reconnect: ReconnectBudget,
    /// Caller audio held while the agent is not ready, bounded.
    pending_in: VecDeque<CarrierPayload>,
    pending_in_bytes: usize,
    /// The carrier leg's queue was found full.
    carrier_stalled: bool,
    /// Counts of caller audio the carrier leg forwarded straight to the agent leg.
    routed: Arc<RoutedAudio>,
    /// The agent generation the carrier leg forwards caller audio to, if any.
    routed_to: Option<u32>,
    /// Agent audio that arrived before the carrier's `start`, in the agent's format, bounded.
    pending_out: Vec<u8>,
    pacer: Pacer,
    /// A wake-up to play queued audio; only set while audio waits for the clock or a partial frame waits.
    pace_timer: Option<SpawnHandle>,
    /// When the carrier will have played everything sent so far (if it plays in real time from now on).
    play_clock: Instant,
    /// Since when a partial frame waits for the rest of its utterance.
    partial_since: Option<Instant>,
    /// What this call last added to the process-wide queue gauge.
    queue_reported: i64,
    /// Audio was played since the last checkpoint.
    unmarked_audio: bool,
    checkpoint_seq: u64,
    awaiting_checkpoint: Option<String>,
    /// The agent ended the call; we are playing out what is queued.
    playing_out: bool,
    last_interruption: Option<i64>,
    conversation_id: Option<ConversationId>,
    transcript: VecDeque<TranscriptLine>,
    end_reason: Option<EndReason>,
    stats: CallStats,
    /// `stats` as last added to the process-wide counters.
    reported: CallStats,
    /// The record: each snapshot a higher, time-ordered revision; events numbered per call.
    revision: i64,
    event_seq: i64,
    pending_events: Vec<CallEvent>,
    started_ms: i64,
    answered_ms: Option<i64>,
    error_detail: Option<String>,
    frame_raw: Vec<u8>,
    scratch: Vec<u8>,
    b64: base64::engine::GeneralPurpose,
}

impl CallActor {
    pub fn new(info: CallInfo, deps: CallDeps) -> Self {
        let pacer = Self::pacer_for(&deps.config, AudioFormat::ULAW_8K);
        CallActor {
            info,
            deps,
            state: CallState::Connecting,
            started_at: SystemTime::now(),
            started: Instant::now(),
            restarted: false,
            finished: false,
            carrier: None,
            stream: None,
            agent: None,
            generation: 0,
            failed_generation: 0,
            agent_formats: None,
            bridge: None,
            reconnect: ReconnectBudget::default(),
            pending_in: VecDeque::new(),
            pending_in_bytes: 0,
            carrier_stalled: false,
            routed: Arc::default(),
            routed_to: None,
            pending_out: Vec::new(),
            pacer,
            pace_timer: None,
            play_clock: Instant::now(),
            partial_since: None,
            queue_reported: 0,
            unmarked_audio: false,
            checkpoint_seq: 0,
            awaiting_checkpoint: None,
            playing_out: false,
            last_interruption: None,
            conversation_id: None,
            transcript: VecDeque::new(),
            end_reason: None,
            stats: CallStats::default(),
            reported: CallStats::default(),
            revision: 0,
            event_seq: 0,
            pending_events: Vec::new(),
            started_ms: now_ms(),
            answered_ms: None,
            error_detail: None,
            frame_raw: Vec::new(),
            scratch: Vec::new(),
            b64: base64::engine::general_purpose::STANDARD,
        }
    }

    /// Starts the call under a supervisor on the current arbiter.
    pub fn launch(info: CallInfo, deps: CallDeps) -> Addr<CallActor> {
        actix::Supervisor::start(move |_| CallActor::new(info, deps))
    }

    fn pacer_for(config: &Config, format: AudioFormat) -> Pacer {
        Pacer::new(
            format.bytes_for_ms(config.calls.frame_ms),
            format.bytes_for_ms(config.calls.outbound_queue_ms),
        )
    }

    fn cfg(&self) -> &Config {
        &self.deps.config
    }

    fn carrier_format(&self) -> AudioFormat {
        self.stream.as_ref().map_or(AudioFormat::ULAW_8K, |s| s.start.format)
    }

    fn send_carrier(&mut self, text: String) {
        self.send_carrier_timed(text, None);
    }

    /// Queues text for the carrier. Its leg's queue is bounded: a full one means the carrier stopped
    /// reading (its socket is not being written), and the call ends at the next housekeeping tick.
    fn send_carrier_timed(&mut self, text: String, since: Option<Instant>) {
        if let Some(c) = &self.carrier {
            if let Err(SendError::Full(_)) = c.try_send(SendToCarrier { text, since }) {
                self.carrier_stalled = true;
            }
        }
    }

    fn send_agent(&self, text: String) {
        self.send_agent_timed(text, None);
    }

    fn send_agent_timed(&self, text: String, since: Option<Instant>) {
        if let Some(a) = &self.agent {
            a.do_send(SendToAgent { text, since });
        }
    }

    fn is_over(&self) -> bool {
        self.state == CallState::Ended
    }

    // ----- ending: the only way out ------------------------------------------------------------------

    /// Ends the call: tells the carrier (terminate, when its socket may still be up), closes the agent with
    /// 1000, stops both legs and this actor. `stopped` then releases the slot.
    fn end_call(&mut self, ctx: &mut Context<Self>, reason: EndReason) {
        if self.is_over() {
            return;
        }
        self.state = CallState::Ended;
        self.end_reason = Some(reason);
        self.add_event("state", format!("ended: {}", reason.as_str()));
        if let Some(carrier) = self.carrier.take() {
            if reason.carrier_still_there() {
                if let Some(s) = &self.stream {
                    carrier.do_send(SendToCarrier {
                        text: s.writer.terminate(),
                        since: None,
                    });
                }
            }
            carrier.do_send(CloseCarrier { code: 1000 });
        }
        if let Some(agent) = self.agent.take() {
            agent.do_send(CloseAgent);
        }
        ctx.stop();
    }

    // ----- the agent connection -----------------------------------------------------------------------

    fn initiation(&self) -> String {
        let i = &self.info;
        ConversationInitiation::for_call(&[
            ("caller_number", &CallInfo::number(&i.from)),
            ("called_number", &CallInfo::number(&i.to)),
            ("call_id", i.call_id.as_str()),
            ("direction", i.direction.as_str()),
        ])
        .to_json()
    }

    /// Whether reports from agent connection `generation` still count: it is the current connection, it has
    /// not been given up on, and the call goes on. The one place this is decided.
    fn is_current_agent(&self, generation: u32) -> bool {
        generation == self.generation && generation > self.failed_generation && !self.is_over()
    }

    fn connect_agent(&mut self, ctx: &mut Context<Self>) {
        if self.is_over() || self.playing_out {
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        self.agent_formats = None;
        self.bridge = None;
        self.update_route();
        self.last_interruption = None;
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
                    act.deps
                        .metrics
                        .upstream_connect_seconds
                        .with_label_values(&[outcome])
                        .observe(took);
                    act.on_dialed(res, generation, ctx)
                }),
        );
        ctx.run_later(deadline, move |act, ctx| {
            if act.is_current_agent(generation) && act.agent_formats.is_none() {
                act.agent_failed(ctx, None, "no conversation_initiation_metadata in time".into());
            }
        });
    }

    fn on_dialed(&mut self, res: Result<AgentSocket, GatewayError>, generation: u32, ctx: &mut Context<Self>) {
        if !self.is_current_agent(generation) {
            return; // a late answer for a connection we gave up on: dropping the socket closes it
        }
        match res {
            Ok(socket) => {
                let calls = &self.cfg().calls;
                let setup = LegSetup {
                    call_id: self.info.call_id.to_string(),
                    call: ctx.address().downgrade(),
                    generation,
                    metrics: self.deps.metrics.clone(),
                    initiation: self.initiation(),
                    heartbeat: Duration::from_millis(calls.heartbeat_interval_ms),
                    peer_timeout: Duration::from_millis(calls.peer_timeout_ms),
                    max_message_bytes: self.cfg().elevenlabs.max_frame_bytes,
                };
                self.agent = Some(ElevenLabsLeg::start(socket, setup));
            }
            Err(e) => {
                self.deps.metrics.upstream_connect_failures.inc();
                self.agent_failed(ctx, None, e.to_string());
            }
        }
    }

    /// The current agent connection failed or ended: play out (1000), give up (1008), or reconnect within
    /// the budget; past the budget the call ends. From here on nothing from that connection counts.
    fn agent_failed(&mut self, ctx: &mut Context<Self>, close_code: Option<u16>, detail: String) {
        self.failed_generation = self.generation;
        let code = close_code.map_or("none".to_string(), |c| c.to_string());
        let error = format!("elevenlabs: {detail} (close code {code})");
        if close_code != Some(1000) {
            self.add_event("error", error.clone());
            self.error_detail = Some(error);
        }
        if let Some(agent) = self.agent.take() {
            agent.do_send(CloseAgent);
        }
        self.agent_formats = None;
        self.bridge = None;
        self.update_route();
        let call_id = &self.info.call_id;
        match close_code {
            Some(1000) => {
                log::info!("call_id={call_id} elevenlabs ended the conversation; playing out queued audio");
                self.begin_playout(ctx);
            }
            Some(1008) => {
                log::warn!("call_id={call_id} elevenlabs refused the conversation (1008): {detail}");
                self.end_call(ctx, EndReason::ElevenlabsRejected);
            }
            _ => {
                let el = &self.cfg().elevenlabs;
                let (max, window) = (el.reconnect_attempts, Duration::from_millis(el.reconnect_window_ms));
                if self.reconnect.allow(Instant::now(), max, window) {
                    let attempt = self.reconnect.used;
                    log::warn!("call_id={call_id} elevenlabs: {detail} (code {close_code:?}); reconnect attempt {attempt}/{max}");
                    self.stats.upstream_reconnects += 1;
                    self.deps.metrics.upstream_reconnects.inc();
                    let backoff = Duration::from_millis(100 * u64::from(attempt));
                    ctx.run_later(backoff, |act, ctx| act.connect_agent(ctx));
                } else {
                    log::warn!("call_id={call_id} elevenlabs: {detail} (code {close_code:?}); reconnect budget spent, ending the call");
                    self.end_call(ctx, EndReason::ElevenlabsUnavailable);
                }
            }
        }
    }

    // ----- bridging -----------------------------------------------------------------------------------

    /// Once both the carrier's `start` and the agent's metadata are known: decide the conversions, then
    /// flush what was held.
    fn try_bridge(&mut self, ctx: &mut Context<Self>) {
        let (Some(stream), Some(agent)) = (&self.stream, self.agent_formats) else {
            return;
        };
        let carrier = stream.start.format;
        let convert = |from: AudioFormat, to: AudioFormat| (from != to).then(|| Transcoder::new(from, to));
        self.bridge = Some(Bridge {
            upstream: convert(carrier, agent.input),
            downstream: convert(agent.output, carrier),
        });
        if self.state == CallState::Connecting {
            self.state = CallState::Active;
            self.answered_ms = Some(now_ms());
            self.add_event("state", "active".into());
            self.save();
        }
        log::info!(
            "call_id={} bridging carrier {} <-> agent in {} / out {}",
            self.info.call_id,
            carrier.elevenlabs_name(),
            agent.input.elevenlabs_name(),
            agent.output.elevenlabs_name()
        );
        while let Some(p) = self.pending_in.pop_front() {
            self.forward_upstream(p, None);
        }
        self.pending_in_bytes = 0;
        self.update_route();
        let held = std::mem::take(&mut self.pending_out);
        if !held.is_empty() {
            self.enqueue_downstream(&held, ctx);
        }
    }

    /// Lets the carrier leg write caller audio straight to the agent leg while no conversion is needed and
    /// the agent is bridged; otherwise the audio comes through the call (held, converted, or dropped).
    fn update_route(&mut self) {
        let direct = self.bridge.as_ref().is_some_and(|b| b.upstream.is_none());
        let want = self
            .agent
            .as_ref()
            .filter(|_| direct)
            .map(|a| (self.generation, a.clone()));
        if want.as_ref().map(|(g, _)| *g) == self.routed_to {
            return;
        }
        let Some(carrier) = &self.carrier else { return };
        self.routed_to = want.as_ref().map(|(g, _)| *g);
        carrier.do_send(RouteCallerAudio {
            to: want.map(|(_, a)| a),
            counts: self.routed.clone(),
        });
    }

    /// Adds what the carrier leg forwarded by itself to the call's own counts.
    fn absorb_routed(&mut self) {
        let r = &self.routed;
        self.stats.frames_in += r.frames.swap(0, Ordering::Relaxed);
        self.stats.bytes_in += r.bytes.swap(0, Ordering::Relaxed);
        self.stats.bad_carrier_audio += r.bad.swap(0, Ordering::Relaxed);
    }

    fn hold_inbound(&mut self, payload: CarrierPayload) {
        let limit = self.carrier_format().bytes_for_ms(self.cfg().calls.inbound_buffer_ms) * 4 / 3 + 64;
        self.pending_in_bytes += payload_len(&payload);
        self.pending_in.push_back(payload);
        while self.pending_in_bytes > limit {
            match self.pending_in.pop_front() {
                Some(old) => {
                    self.pending_in_bytes -= payload_len(&old);
                    self.stats.inbound_dropped += 1;
                }
                None => break,
            }
        }
    }

    fn forward_upstream(&mut self, payload: CarrierPayload, received_at: Option<Instant>) {
        let Some(bridge) = self.bridge.as_mut() else {
            return;
        };
        let mut text = String::new();
        match (&mut bridge.upstream, payload) {
            (None, CarrierPayload::Base64(b64)) => match el::passthrough_user_audio(&b64) {
                Some(t) => text = t,
                None => {
                    self.stats.bad_carrier_audio += 1;
                    self.deps.metrics.carrier_bad_audio.inc();
                    return;
                }
            },
            (None, CarrierPayload::Raw(raw)) => el::write_user_audio_chunk(&self.b64.encode(&raw), &mut text),
            (Some(tc), payload) => {
                let raw = match payload {
                    CarrierPayload::Raw(raw) => raw.to_vec(),
                    CarrierPayload::Base64(b64) => match self.b64.decode(b64.as_bytes()) {
                        Ok(raw) => raw,
                        Err(_) => {
                            self.stats.bad_carrier_audio += 1;
                            self.deps.metrics.carrier_bad_audio.inc();
                            return;
                        }
                    },
                };
                self.scratch.clear();
                tc.convert(&raw, &mut self.scratch);
                el::write_user_audio_chunk(&self.b64.encode(&self.scratch), &mut text);
            }
        }
        self.send_agent_timed(text, received_at);
    }

    fn enqueue_downstream(&mut self, audio: &[u8], ctx: &mut Context<Self>) {
        let Some(bridge) = self.bridge.as_mut() else { return };
        let dropped = match &mut bridge.downstream {
            None => self.pacer.push(audio),
            Some(tc) => {
                self.scratch.clear();
                tc.convert(audio, &mut self.scratch);
                self.pacer.push(&self.scratch)
            }
        };
        if dropped > 0 {
            self.deps.metrics.outbound_dropped_bytes.inc_by(dropped as u64);
        }
        self.start_pacing(ctx);
    }

    // ----- pacing: never more than `PACING_LEAD_FRAMES` ahead of the carrier's playback -----------
    //
    // A frame is written as soon as the carrier has less than the lead of ours still to play, so a live
    // stream goes out the moment it arrives (no timer, no added latency) and a faster-than-real-time burst
    // is released one frame per period. The timer only runs while audio waits.

    fn pacing_lead(&self) -> Duration {
        self.cfg().calls.frame() * PACING_LEAD_FRAMES
    }

    /// New audio is queued: play what the clock allows now, unless a wake-up already covers it.
    fn start_pacing(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if self.pace_timer.is_some() {
            let playable_now = self.pacer.has_full_frame() && self.play_clock <= now + self.pacing_lead();
            if !playable_now {
                return;
            }
            self.stop_pacing(ctx);
        }
        self.pump(ctx, now, now);
    }

    fn stop_pacing(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.pace_timer.take() {
            ctx.cancel_future(h);
        }
        self.partial_since = None;
    }

    /// Plays every frame the clock allows at `now`, then arranges the next wake-up or the end-of-stream
    /// mark. `ready_at`: since when the audio could be played (for hop latency).
    fn pump(&mut self, ctx: &mut Context<Self>, now: Instant, ready_at: Instant) {
        let (frame, lead) = (self.cfg().calls.frame(), self.pacing_lead());
        loop {
            let full = self.pacer.has_full_frame();
            let partial_due = !full && !self.pacer.is_empty() && self.partial_since.is_some_and(|t| t + frame <= now);
            if !(full || partial_due) || self.play_clock > now + lead {
                break;
            }
            self.pacer.pop_frame(&mut self.frame_raw, true);
            self.partial_since = None;
            self.play_clock = self.play_clock.max(now) + frame;
            self.play_frame(ready_at);
        }
        if self.pacer.is_empty() {
            self.partial_since = None;
            if self.playing_out {
                self.on_queue_drained(ctx);
            }
            return;
        }
        let clock_opens = self.play_clock.checked_sub(lead).unwrap_or(now);
        let wake = if self.pacer.has_full_frame() {
            clock_opens
        } else {
            // Give the rest of the utterance one period to arrive before sending a short frame.
            clock_opens.max(*self.partial_since.get_or_insert(now) + frame)
        };
        self.pace_timer = Some(ctx.run_later(wake.saturating_duration_since(now), move |act, ctx| {
            act.pace_timer = None;
            let now = Instant::now();
            if now.saturating_duration_since(wake) > act.cfg().calls.frame() * MAX_PACING_LAG_FRAMES {
                act.stats.pacing_resyncs += 1;
                act.deps.metrics.pacing_resyncs.inc();
            }
            act.pump(ctx, now, wake);
        }));
    }

    /// At housekeeping: marks the end of the outbound stream once it has been quiet for `CHECKPOINT_QUIET`.
    /// Only play-out waits on a checkpoint, and it sends its own at once, so a live call's mark can wait
    /// for the next housekeeping tick instead of costing a timer per frame.
    fn mark_if_quiet(&mut self, ctx: &mut Context<Self>) {
        let quiet = self.pacer.is_empty() && self.pace_timer.is_none();
        if self.unmarked_audio && quiet && Instant::now() >= self.play_clock + CHECKPOINT_QUIET {
            self.on_queue_drained(ctx);
        }
    }

    /// Adds what the call counted since the last flush to the process-wide counters. Per-frame counting
    /// stays in plain integers on the call: shared atomics bumped by every frame on every worker thread
    /// cost more than the frame's own work.
    fn flush_counters(&mut self) {
        self.absorb_routed();
        let (s, r, m) = (&self.stats, &mut self.reported, &self.deps.metrics);
        m.frames_in.inc_by(s.frames_in - r.frames_in);
        m.bytes_in.inc_by(s.bytes_in - r.bytes_in);
        m.frames_out.inc_by(s.frames_out - r.frames_out);
        m.bytes_out.inc_by(s.bytes_out - r.bytes_out);
        *r = s.clone();
        self.sync_queue_gauge();
    }

    /// Keeps the process-wide queue gauge equal to the sum of every call's queue.
    fn sync_queue_gauge(&mut self) {
        let now = self.pacer.len() as i64;
        self.deps.metrics.outbound_queue_bytes.add(now - self.queue_reported);
        self.queue_reported = now;
    }

    fn play_frame(&mut self, ready_at: Instant) {
        let Some(stream) = &self.stream else { return };
        let mut text = String::with_capacity(self.frame_raw.len() * 4 / 3 + 128);
        let payload = self.b64.encode(&self.frame_raw);
        stream.writer.play_audio(&payload, &mut text);
        self.stats.frames_out += 1;
        self.stats.bytes_out += self.frame_raw.len() as u64;
        self.unmarked_audio = true;
        // Hop latency is sampled: one played frame in `HOP_SAMPLE_EVERY` is timed.
        let since = self
            .stats
            .frames_out
            .is_multiple_of(HOP_SAMPLE_EVERY as u64)
            .then_some(ready_at);
        self.send_carrier_timed(text, since);
    }

    /// The queue ran dry: mark the end of what was played so the carrier tells us when it has been heard.
    fn on_queue_drained(&mut self, ctx: &mut Context<Self>) {
        if self.unmarked_audio {
            if let Some(stream) = &self.stream {
                self.checkpoint_seq += 1;
                let name = format!("cp-{}", self.checkpoint_seq);
                self.send_carrier(stream.writer.checkpoint(&name));
                self.awaiting_checkpoint = Some(name);
            }
            self.unmarked_audio = false;
        }
        self.maybe_finish_playout(ctx);
    }

    fn begin_playout(&mut self, ctx: &mut Context<Self>) {
        self.playing_out = true;
        self.state = CallState::Ending;
        let queued_ms = self.carrier_format().ms_for_bytes(self.pacer.len());
        let limit = Duration::from_millis(queued_ms + self.cfg().calls.playout_timeout_ms);
        ctx.run_later(limit, |act, ctx| {
            log::info!(
                "call_id={} play-out not acknowledged in time; terminating",
                act.info.call_id
            );
            act.end_call(ctx, EndReason::AgentEnded);
        });
        if self.pace_timer.is_none() {
            self.on_queue_drained(ctx);
        }
    }

    fn maybe_finish_playout(&mut self, ctx: &mut Context<Self>) {
        if self.playing_out && self.pacer.is_empty() && self.pace_timer.is_none() && self.awaiting_checkpoint.is_none()
        {
            self.end_call(ctx, EndReason::AgentEnded);
        }
    }

    fn record_line(&mut self, role: &'static str, text: Text) {
        let kind = match role {
            "user" => "user_transcript",
            "agent" => "agent_response",
            other => other,
        };
        self.add_event(kind, text.to_string());
        if self.transcript.len() == MAX_TRANSCRIPT_LINES {
            self.transcript.pop_front();
        }
        let at_ms = self.started.elapsed().as_millis() as u64;
        self.transcript.push_back(TranscriptLine { role, text, at_ms });
    }

    fn last_line(&self, role: &str) -> Option<Text> {
        self.transcript
            .iter()
            .rev()
            .find(|l| l.role == role)
            .map(|l| l.text.clone())
    }

    fn add_event(&mut self, kind: &str, detail: String) {
        self.event_seq += 1;
        self.pending_events.push(CallEvent {
            call_id: self.info.call_id.to_string(),
            attempt: self.info.attempt,
            seq: self.event_seq,
            at_ms: now_ms(),
            kind: kind.to_string(),
            detail,
        });
        if self.pending_events.len() >= EVENT_FLUSH_AT {
            self.save();
        }
    }

    /// Sends the call's current snapshot and its new events to the database (never waits).
    fn save(&mut self) {
        // Time-ordered, so a snapshot from a later process (a reused call id) also wins over an older one;
        // the low digits order snapshots taken within the same millisecond.
        self.revision = (now_ms() * 1000).max(self.revision + 1);
        self.absorb_routed();
        let mut writes = vec![DbWrite::Call(Box::new(self.record()))];
        if !self.pending_events.is_empty() {
            writes.push(DbWrite::Events(std::mem::take(&mut self.pending_events)));
        }
        self.deps.db.do_send(Save { writes });
    }

    fn record(&self) -> CallRecord {
        let ended = self.state == CallState::Ended;
        let now = now_ms();
        let s = &self.stats;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let state = match self.state {
            CallState::Connecting => "connecting",
            CallState::Active => "active",
            CallState::Ending => "ending",
            CallState::Ended => "ended",
        };
        CallRecord {
            stream_id: self.stream_id(),
            agent_id: self.cfg().elevenlabs.agent_id.clone(),
            conversation_id: self.conversation_id.as_ref().map(|c| c.to_string()),
            end_reason: self.end_reason.map(|r| r.as_str().to_string()),
            answered_at: self.answered_ms,
            ended_at: ended.then_some(now),
            duration_ms: count(self.started.elapsed().as_millis() as u64),
            frames_in: count(s.frames_in),
            frames_out: count(s.frames_out),
            bytes_in: count(s.bytes_in),
            bytes_out: count(s.bytes_out),
            interruptions: count(s.interruptions),
            upstream_reconnects: count(s.upstream_reconnects),
            carrier_format: self.carrier_format_name(),
            agent_input_format: self.agent_formats.map(|f| f.input.elevenlabs_name()),
            agent_output_format: self.agent_formats.map(|f| f.output.elevenlabs_name()),
            error_detail: self.error_detail.clone(),
            revision: self.revision,
            updated_at: now,
            ..CallRecord::of(&self.info, state, self.started_ms)
        }
    }

    fn stream_id(&self) -> Option<String> {
        self.stream
            .as_ref()
            .and_then(|s| s.start.stream_id.as_ref())
            .map(|id| id.to_string())
    }

    fn carrier_format_name(&self) -> Option<String> {
        self.stream.as_ref().map(|s| s.start.format.elevenlabs_name())
    }

    fn view(&self) -> CallView {
        CallView {
            call_id: self.info.call_id.clone(),
            attempt: self.info.attempt,
            stream_id: self.stream_id(),
            from: CallInfo::number(&self.info.from),
            to: CallInfo::number(&self.info.to),
            direction: self.info.direction,
            state: self.state,
            started_at: humantime::format_rfc3339_millis(self.started_at).to_string(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            frames_in: self.stats.frames_in,
            frames_out: self.stats.frames_out,
            bytes_in: self.stats.bytes_in,
            bytes_out: self.stats.bytes_out,
            interruptions: self.stats.interruptions,
            upstream_reconnects: self.stats.upstream_reconnects,
            conversation_id: self.conversation_id.as_ref().map(|c| c.to_string()),
            carrier_format: self.carrier_format_name(),
            agent_input_format: self.agent_formats.map(|f| f.input.elevenlabs_name()),
            agent_output_format: self.agent_formats.map(|f| f.output.elevenlabs_name()),
            last_user_transcript: self.last_line("user"),
            last_agent_response: self.last_line("agent"),
            end_reason: self.end_reason,
        }
    }
}

fn payload_len(p: &CarrierPayload) -> usize {
    match p {
        CarrierPayload::Base64(b) => b.len(),
        CarrierPayload::Raw(r) => r.len(),
    }
}

impl Actor for CallActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.finished {
            // Restarted after the call ended because something still held the address: stay idle, holding
            // nothing and scheduling nothing, so the actor goes as soon as the last address is dropped.
            return;
        }
        if self.restarted {
            self.end_call(ctx, EndReason::Internal);
            return;
        }
        self.deps.metrics.calls_started.inc();
        let calls = &self.cfg().calls;
        let (start_timeout, max_len) = (
            Duration::from_millis(calls.start_timeout_ms),
            Duration::from_secs(calls.max_call_seconds),
        );
        ctx.run_later(start_timeout, |act, ctx| {
            if act.stream.is_none() {
                log::warn!("call_id={} carrier sent no start event in time", act.info.call_id);
                act.end_call(ctx, EndReason::CarrierNoStart);
            }
        });
        self.save();
        // One interval for the call's slow chores: actix polls every timer of an actor each time it wakes,
        // and a call wakes for every frame, so long-lived timers are kept to this one.
        ctx.run_interval(HOUSEKEEPING_EVERY, move |act, ctx| {
            act.flush_counters();
            if act.carrier_stalled {
                log::warn!(
                    "call_id={} carrier stopped reading: its queue is full",
                    act.info.call_id
                );
                act.end_call(ctx, EndReason::CarrierStalled);
                return;
            }
            act.mark_if_quiet(ctx);
            if act.started.elapsed() >= max_len {
                act.end_call(ctx, EndReason::MaxDuration);
            }
        });
        self.connect_agent(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if std::mem::replace(&mut self.finished, true) {
            return; // the call was already finalized before a supervisor restart
        }
        if self.state != CallState::Ended {
            // Stopped by something other than end_call (the arbiter shutting down): still a final record.
            self.state = CallState::Ended;
            self.end_reason.get_or_insert(EndReason::Shutdown);
        }
        self.save();
        self.flush_counters();
        let m = &self.deps.metrics;
        let reason = self.end_reason.map_or("unknown", |r| r.as_str());
        m.calls_ended.with_label_values(&[reason]).inc();
        m.call_duration.observe(self.started.elapsed().as_secs_f64());
        self.pacer.clear();
        self.sync_queue_gauge();
        self.deps.slots.release(&self.info.call_id);
        let s = &self.stats;
        log::info!(
            "call_id={} ended reason={} duration_ms={} frames_in={} frames_out={} interruptions={} reconnects={} stale_dropped={} inbound_dropped={} queue_dropped_bytes={}",
            self.info.call_id,
            self.end_reason.map_or("unknown", |r| r.as_str()),
            self.started.elapsed().as_millis(),
            s.frames_in,
            s.frames_out,
            s.interruptions,
            s.upstream_reconnects,
            s.stale_audio_dropped,
            s.inbound_dropped,
            self.pacer.dropped_bytes()
        );
    }
}

impl actix::Supervised for CallActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // A restarted call has lost its legs' trust: end it cleanly instead of bridging half a call.
        if self.finished {
            return;
        }
        log::error!(
            "call_id={} call actor restarted by its supervisor; ending the call",
            self.info.call_id
        );
        self.restarted = true;
        self.state = CallState::Ending;
    }
}

impl Handler<AttachCarrier> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: AttachCarrier, _: &mut Context<Self>) {
        if self.is_over() {
            msg.leg.do_send(CloseCarrier { code: 1000 });
        } else {
            self.carrier = Some(msg.leg);
            self.update_route();
        }
    }
}

impl Handler<CarrierStarted> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: CarrierStarted, ctx: &mut Context<Self>) {
        if self.stream.is_some() {
            log::warn!("call_id={} carrier sent a second start; ignored", self.info.call_id);
            return;
        }
        let start = msg.start;
        let stream_id = start
            .stream_id
            .as_ref()
            .map_or(self.info.call_id.as_str(), |id| id.as_str());
        let writer = CarrierWriter::new(stream_id, start.format);
        self.pacer = Self::pacer_for(self.cfg(), start.format);
        self.stream = Some(CarrierStream { start, writer });
        self.try_bridge(ctx);
    }
}

impl Handler<CarrierAudio> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: CarrierAudio, _: &mut Context<Self>) {
        self.stats.frames_in += 1;
        self.stats.bytes_in += msg.bytes as u64;
        if self.bridge.is_some() && self.agent.is_some() {
            self.forward_upstream(msg.payload, msg.received_at);
        } else if !self.playing_out {
            self.hold_inbound(msg.payload);
        }
    }
}

impl Handler<CarrierPlayed> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: CarrierPlayed, ctx: &mut Context<Self>) {
        let played = msg.name.as_ref().map(|n| n.as_str());
        if played.is_some() && played == self.awaiting_checkpoint.as_deref() {
            self.awaiting_checkpoint = None;
            self.maybe_finish_playout(ctx);
        }
    }
}

impl Handler<CarrierDtmf> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: CarrierDtmf, _: &mut Context<Self>) {
        self.send_agent(el::contextual_update(&format!(
            "The caller pressed DTMF key {}",
            msg.digit
        )));
        self.record_line("dtmf", Text::clean(&msg.digit.to_string(), 1));
    }
}

impl Handler<CarrierGone> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: CarrierGone, ctx: &mut Context<Self>) {
        if self.is_over() {
            return;
        }
        log::info!(
            "call_id={} carrier leg ended: {}",
            self.info.call_id,
            msg.reason.as_str()
        );
        if let Some(invalid) = msg.invalid {
            let error = format!("carrier: {invalid}");
            self.add_event("error", error.clone());
            self.error_detail = Some(error);
        }
        self.end_call(ctx, msg.reason);
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
            AgentReport::Transcript { role, text } => self.record_line(role, text),
            AgentReport::ToolCall {
                tool_name,
                tool_call_id,
            } => {
                // No client tools run on a phone gateway; answering keeps the agent from waiting for one.
                let result = format!("client tool '{tool_name}' is not available on this phone gateway");
                self.send_agent(el::client_tool_result(tool_call_id.as_str(), &result, true));
                self.record_line("tool_call", tool_name);
            }
            AgentReport::Gone { close_code, detail } => self.agent_failed(ctx, close_code, detail.to_string()),
        }
    }
}

impl CallActor {
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
                    self.info.call_id
                );
                self.error_detail = Some(format!("elevenlabs: {invalid}"));
                self.end_call(ctx, EndReason::ElevenlabsBadFormat);
                return;
            }
        };
        if let Some(id) = &conversation_id {
            log::info!("call_id={} elevenlabs conversation_id={id}", self.info.call_id);
        }
        self.conversation_id = conversation_id;
        self.agent_formats = Some(formats);
        self.try_bridge(ctx);
    }

    fn on_agent_audio(&mut self, audio: &[u8], event_id: Option<i64>, ctx: &mut Context<Self>) {
        if let (Some(last), Some(id)) = (self.last_interruption, event_id) {
            if id <= last {
                self.stats.stale_audio_dropped += 1;
                self.deps.metrics.stale_audio_dropped.inc();
                return;
            }
        }
        if self.bridge.is_some() {
            self.enqueue_downstream(audio, ctx);
        } else {
            let cap = self
                .agent_formats
                .map_or(0, |f| f.output.bytes_for_ms(self.cfg().calls.outbound_queue_ms));
            let room = cap.saturating_sub(self.pending_out.len());
            self.pending_out.extend_from_slice(&audio[..audio.len().min(room)]);
        }
    }

    fn on_interruption(&mut self, event_id: Option<i64>, ctx: &mut Context<Self>) {
        self.stats.interruptions += 1;
        self.deps.metrics.interruptions.inc();
        self.last_interruption = event_id.or(self.last_interruption);
        self.pacer.clear();
        self.sync_queue_gauge();
        self.pending_out.clear();
        self.stop_pacing(ctx);
        // The carrier drops what it holds on `clearAudio`, so the next utterance starts at once.
        self.play_clock = Instant::now();
        self.unmarked_audio = false;
        self.awaiting_checkpoint = None;
        if let Some(stream) = &self.stream {
            self.send_carrier(stream.writer.clear_audio());
        }
        self.record_line("interruption", Text::default());
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
        MessageResult(self.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_budget_counts_within_the_window_and_renews_after_it() {
        let mut b = ReconnectBudget::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(5);
        assert!(b.allow(t0, 2, w));
        assert!(b.allow(t0 + Duration::from_secs(1), 2, w));
        assert!(!b.allow(t0 + Duration::from_secs(2), 2, w));
        assert!(
            b.allow(t0 + Duration::from_secs(10), 2, w),
            "a new window after a long healthy stretch"
        );
    }
}
