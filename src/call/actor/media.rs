//! Audio both ways: the bridge once both formats are known, the caller's audio on its way to the agent, and
//! the agent's audio paced out to the carrier. `CallerAudio` and `Playout` decide; the call keeps the one
//! pacing timer and the sends.

use super::*;
use crate::recording::writer::RecordingOf;
use crate::recording::CallRecording;

impl CallActor {
    // ----- bridging -----------------------------------------------------------------------------------

    /// Once both the carrier's `start` and the agent's metadata are known: decide the conversions, then
    /// flush what was held.
    pub(super) fn try_bridge(&mut self, ctx: &mut Context<Self>) {
        let (Some(stream), Some(agent)) = (&self.stream, self.agent.formats()) else {
            return;
        };
        let carrier = stream.format;
        self.stop_hold();
        let convert = |from: AudioFormat, to: AudioFormat| (from != to).then(|| Transcoder::new(from, to));
        self.caller.bridge(convert(carrier, agent.input));
        self.downstream = Crossing::bridged(convert(agent.output, carrier));
        if self.phase == Phase::Connecting {
            self.phase = Phase::Active;
            self.announce("state");
            self.log.answered();
            self.event(EventKind::State, "active".into());
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
            self.enqueue_downstream(&held, Instant::now(), ctx);
        }
    }

    /// The agent connection is being replaced: caller audio is held and agent audio waits for the bridge.
    pub(super) fn unbridge(&mut self) {
        self.caller.unbridge();
        self.downstream = Crossing::Held;
        self.update_route();
    }

    /// Tells the carrier leg where caller audio goes when that changed (see `CallerAudio::reroute`).
    pub(super) fn update_route(&mut self) {
        let Some(carrier) = &self.carrier else { return };
        let agent = self.agent.leg().map(|leg| (self.agent.generation(), leg));
        if let Some(r) = self.caller.reroute(agent) {
            carrier.do_send(ToCarrier::Route {
                to: r.to,
                convert: r.convert,
                counts: r.counts,
            });
        }
    }

    /// Adds what the carrier leg forwarded by itself to the call's own counts.
    pub(super) fn absorb_routed(&mut self) {
        let r = self.caller.take_routed();
        let s = &mut self.log.stats;
        s.frames_in += r.frames;
        s.bytes_in += r.bytes;
    }

    pub(super) fn on_caller_audio(&mut self, payload: CarrierPayload, frames: u64, bytes: usize, received_at: Instant) {
        self.log.stats.frames_in += frames;
        self.log.stats.bytes_in += bytes as u64;
        if self.caller.is_bridged() && self.agent.leg().is_some() {
            match self.caller.to_agent(payload, received_at) {
                Some(chunk) => self.send_agent(chunk),
                // The leg checked the payload; a conversion that still cannot read it drops it, counted.
                None => self.deps.metrics.unread.carrier_bad_audio.inc(),
            }
        } else if self.phase != Phase::PlayingOut {
            self.log.stats.inbound_dropped += self.caller.hold(payload);
        }
    }

    pub(super) fn on_carrier_start(&mut self, start: StreamStart, ctx: &mut Context<Self>) {
        if self.stream.is_some() {
            log::warn!("call_id={} carrier sent a second start; ignored", self.call_id());
            return;
        }
        let (format, calls) = (start.format, &self.deps.config.calls);
        // A carrier that needs longer frames (Exotel: 100 ms) gets them; the pacing follows.
        let frame_ms = calls.frame_ms.max(self.log.info.carrier.min_frame_ms(format));
        self.playout.resize(
            format.bytes_for_ms(frame_ms),
            format.bytes_for_ms(calls.outbound_queue_ms.max(frame_ms)),
            Duration::from_millis(frame_ms),
        );
        self.caller.set_hold_limit(Self::hold_limit(self.cfg(), format));
        self.stream = Some(start);
        self.start_recording(format);
        self.try_bridge(ctx);
    }

    /// With `recording.enabled`, the carrier leg records the call from its `start` on.
    fn start_recording(&mut self, format: AudioFormat) {
        let (Some(recorder), Some(leg)) = (&self.deps.recorder, &self.carrier) else {
            return;
        };
        let info = &self.log.info;
        let of = RecordingOf {
            carrier: info.carrier.as_str(),
            call_id: info.call_id.to_string(),
            attempt: info.attempt,
        };
        let recording = CallRecording::start(recorder, of, format.rate.hz(), Instant::now());
        leg.do_send(ToCarrier::Record(Box::new(recording)));
    }

    /// Queues agent audio (read from the agent at `read_at`) for the carrier.
    pub(super) fn enqueue_downstream(&mut self, audio: &[u8], read_at: Instant, ctx: &mut Context<Self>) {
        let dropped = match &mut self.downstream {
            Crossing::Held => return,
            Crossing::Same => self.playout.push(audio),
            Crossing::Convert(tc) => {
                self.scratch.clear();
                tc.convert(audio, &mut self.scratch);
                self.playout.push(&self.scratch)
            }
        };
        if dropped > 0 {
            self.deps.metrics.outbound_dropped_bytes.inc_by(dropped as u64);
        }
        self.start_pacing(ctx, read_at);
    }

    // ----- pacing: `Playout` decides, the call keeps the one timer and sends --------------------------

    /// New audio (ready since `ready_at`) is queued: play what the clock allows now, unless a pending
    /// wake-up already covers it.
    pub(super) fn start_pacing(&mut self, ctx: &mut Context<Self>, ready_at: Instant) {
        let now = Instant::now();
        if !self.playout.send_now(now) {
            return;
        }
        if self.playout.waiting() {
            self.stop_pacing(ctx);
        }
        self.pump(ctx, now, ready_at.min(now));
    }

    pub(super) fn stop_pacing(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.pace_timer.take() {
            ctx.cancel_future(h);
        }
        self.playout.cancel_wake();
    }

    /// Sends every frame the clock allows at `now`, then arranges the next wake-up or marks the end of the
    /// stream. `ready_at`: since when the audio could be played (for hop latency).
    pub(super) fn pump(&mut self, ctx: &mut Context<Self>, now: Instant, ready_at: Instant) {
        while let Some(frame) = self.playout.next_frame(now) {
            self.play_frame(frame, ready_at);
        }
        match self.playout.after_pump(now) {
            AfterPump::Drained if self.phase == Phase::PlayingOut => self.on_queue_drained(ctx),
            AfterPump::Drained if self.hold.is_some() => self.queue_hold(ctx),
            AfterPump::Drained => {}
            AfterPump::WakeAt(wake) => {
                let timer = Self::later(ctx, wake.saturating_duration_since(now), |act, ctx| {
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

    pub(super) fn play_frame(&mut self, frame: Vec<u8>, ready_at: Instant) {
        let s = &mut self.log.stats;
        s.frames_out += 1;
        s.bytes_out += frame.len() as u64;
        if let Some(turn) = self.log.turns.played(s.bytes_out, Instant::now()) {
            let m = &self.deps.metrics.turns;
            m.latency.observe(turn.total.as_secs_f64());
            m.elevenlabs.observe(turn.elevenlabs.as_secs_f64());
            m.gateway.observe(turn.gateway().as_secs_f64());
        }
        let s = &self.log.stats;
        // Hop latency is sampled: one played frame in `HOP_SAMPLE_EVERY` is timed.
        let since = s
            .frames_out
            .is_multiple_of(u64::from(HOP_SAMPLE_EVERY))
            .then_some(ready_at);
        self.send_carrier(ToCarrier::Play { frame, since });
    }

    /// The queue ran dry: mark the end of what was played so the carrier tells us when it has been heard.
    pub(super) fn on_queue_drained(&mut self, ctx: &mut Context<Self>) {
        if let Some(name) = self.playout.mark_end() {
            self.send_carrier(ToCarrier::Checkpoint { name });
        }
        self.maybe_finish_playout(ctx);
    }

    /// The agent leg is being redialled: once the agent's last words have played, the caller hears the
    /// hold clip (or silence) until the new conversation is bridged.
    pub(super) fn start_hold(&mut self, ctx: &mut Context<Self>) {
        let Some(stream) = &self.stream else { return };
        let format = stream.format;
        let audio = match &self.cfg().elevenlabs.hold_audio {
            Some(clip) => crate::audio::clip::converted(clip, format),
            None => crate::audio::clip::silence(format, crate::call::hold::HOLD_PIECE_MS),
        };
        self.hold = Some(HoldAudio::new(audio));
        if !self.playout.waiting() {
            self.queue_hold(ctx);
        }
    }

    /// Queues the next piece of hold audio.
    pub(super) fn queue_hold(&mut self, ctx: &mut Context<Self>) {
        let len = self.carrier_format().bytes_for_ms(crate::call::hold::HOLD_PIECE_MS);
        let Some(piece) = self.hold.as_mut().map(|h| h.next_piece(len)) else {
            return;
        };
        if piece.is_empty() {
            return;
        }
        self.playout.push(&piece);
        self.start_pacing(ctx, Instant::now());
    }

    /// The agent is back: the hold audio still queued (here and at the carrier) is dropped.
    pub(super) fn stop_hold(&mut self) {
        if self.hold.take().is_some_and(|h| h.was_queued()) {
            self.log.turns.dropped();
            self.playout.clear(Instant::now());
            self.sync_queue_gauge();
            self.send_carrier(ToCarrier::ClearAudio);
        }
    }

    pub(super) fn begin_playout(&mut self, ctx: &mut Context<Self>, reason: EndReason) {
        self.stop_hold();
        self.playout_reason = reason;
        self.phase = Phase::PlayingOut;
        self.announce("state");
        let queued_ms = self.carrier_format().ms_for_bytes(self.playout.queued_bytes());
        let limit = Duration::from_millis(queued_ms) + self.cfg().calls.playout_timeout();
        Self::later(ctx, limit, |act, ctx| {
            log::info!(
                "call_id={} play-out not acknowledged in time; terminating",
                act.call_id()
            );
            act.end_call(ctx, act.playout_reason);
        });
        if !self.playout.waiting() {
            self.on_queue_drained(ctx);
        }
    }

    pub(super) fn maybe_finish_playout(&mut self, ctx: &mut Context<Self>) {
        if self.phase == Phase::PlayingOut && self.playout.done() {
            self.end_call(ctx, self.playout_reason);
        }
    }
}
