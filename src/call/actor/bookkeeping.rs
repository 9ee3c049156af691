//! The call's bookkeeping: the once-a-second chores, counters into the metrics, events, the snapshot saved
//! to the database, and the call's end once it has stopped.

use super::*;

impl CallActor {
    // ----- housekeeping and the record ----------------------------------------------------------------

    /// Tells whoever watches (`CallFeed`) the call's state now: `event` is `state` or `ended`.
    pub(super) fn announce(&self, event: &'static str) {
        let reason = self.log.end_reason().map(|r| r.as_str());
        let state = Some(self.phase.state().as_str());
        self.deps
            .feed
            .publish(&FeedEvent::of(&self.log.info, event, state, reason));
    }

    /// Once a second: counters to the metrics, a stalled carrier, the quiet mark, the call's length.
    pub(super) fn housekeeping(&mut self, ctx: &mut Context<Self>, max_len: Duration) {
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

    pub(super) fn flush_counters(&mut self) {
        self.absorb_routed();
        self.log.flush_counters(&self.deps.metrics);
        self.sync_queue_gauge();
    }

    /// Keeps the process-wide queue gauge equal to the sum of every call's queue.
    pub(super) fn sync_queue_gauge(&mut self) {
        let now = self.playout.queued_bytes() as i64;
        self.deps.metrics.outbound_queue_bytes.add(now - self.queue_reported);
        self.queue_reported = now;
    }

    pub(super) fn event(&mut self, kind: EventKind, detail: String) {
        if self.log.event(kind, detail) {
            self.save();
        }
    }

    pub(super) fn error(&mut self, error: String) {
        if self.log.error(error) {
            self.save();
        }
    }

    pub(super) fn line(&mut self, role: Role, text: Text) {
        if self.log.line(role, text) {
            self.save();
        }
    }

    pub(super) fn snapshot(&self) -> CallRecord {
        self.log.snapshot(Facts {
            state: self.phase.state(),
            stream_id: self
                .stream
                .as_ref()
                .and_then(|s| s.stream_id.as_ref())
                .map(|id| id.to_string()),
            agent_id: self.log.info.agent_id(self.cfg()),
            conversation_id: self.agent.conversation_id(),
            conversation_ids: self.agent.conversation_ids(),
            carrier_format: self.stream.as_ref().map(|s| s.format.elevenlabs_name()),
            agent_formats: self.agent.formats(),
        })
    }

    /// Sends the call's current snapshot and its new events to the database (never waits).
    pub(super) fn save(&mut self) {
        self.log.next_revision();
        self.absorb_routed();
        let mut writes = vec![DbWrite::Call(Box::new(self.snapshot()))];
        let events = self.log.take_events();
        if !events.is_empty() {
            writes.push(DbWrite::Events(events));
        }
        writes.extend(self.log.take_revisions().into_iter().map(DbWrite::Revise));
        self.deps.db.do_send(Save { writes });
    }

    /// The call's end, once: final record, metrics, the slot given back, one log line.
    pub(super) fn finish(&mut self) {
        self.log.ended(EndReason::Shutdown); // stopped by something other than end_call: the arbiter going
        self.phase = Phase::Finished;
        self.save();
        self.announce("ended");
        self.flush_counters();
        let m = &self.deps.metrics;
        let reason = self.log.end_reason().map_or("unknown", |r| r.as_str());
        m.traffic
            .ended
            .with_label_values(&[reason, self.log.info.carrier.as_str()])
            .inc();
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

impl CallActor {
    /// A panic that no guard caught is taking the actor's task (actix runs `stopped` as the task unwinds,
    /// else `Drop` does): the call still ends, its legs closed and its record saying why.
    pub(super) fn died(&mut self) {
        if self.is_over() {
            return;
        }
        let panic = Panic {
            part: Part::Call,
            message: supervise::unwinding().unwrap_or_else(|| "the call's task ended without stopping".into()),
        };
        supervise::count(panic.part, &panic.message);
        log::error!("call_id={} {panic}", self.call_id());
        self.phase = Phase::Ended;
        self.log.error(panic.to_string());
        self.log.ended(EndReason::InternalError);
        if let Some(carrier) = self.carrier.take() {
            carrier.do_send(ToCarrier::Close {
                code: 1011,
                terminate: true,
            });
        }
        if let Some(agent) = self.agent.take_leg() {
            agent.do_send(ToAgent::Close);
        }
    }
}

impl Drop for CallActor {
    fn drop(&mut self) {
        if self.phase != Phase::Finished {
            self.died();
            self.finish();
        }
    }
}
