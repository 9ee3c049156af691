//! The call's agent side: dialling, the leg's start, what to do when a connection fails, and what the agent
//! says (metadata, audio, barge-in). `AgentLink` decides; this applies its decisions.

use super::*;

impl CallActor {
    // ----- the agent connection -----------------------------------------------------------------------

    pub(super) fn initiation(&self) -> String {
        let i = &self.log.info;
        ConversationInitiation::for_call(&[
            ("caller_number", &CallInfo::number(&i.from)),
            ("called_number", &CallInfo::number(&i.to)),
            ("call_id", i.call_id.as_str()),
            ("direction", i.direction.as_str()),
        ])
        .to_json()
    }

    pub(super) fn connect_agent(&mut self, ctx: &mut Context<Self>) {
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

    pub(super) fn on_dialed(&mut self, res: Result<AgentSocket, DialError>, generation: u32, ctx: &mut Context<Self>) {
        self.agent.dialled();
        if !self.is_current_agent(generation) {
            // A late answer for a connection given up on, or for a call that ended meanwhile: the agent is
            // told 1000 like every other connection we end.
            if let Ok(socket) = res {
                close_unused(socket);
            }
            if self.is_over() && !self.agent.dial_out() {
                ctx.stop();
            }
            return;
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
    pub(super) fn agent_failed(&mut self, ctx: &mut Context<Self>, close_code: Option<u16>, detail: String) {
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

    pub(super) fn on_agent_metadata(
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

    pub(super) fn on_agent_audio(&mut self, audio: &[u8], event_id: Option<i64>, ctx: &mut Context<Self>) {
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

    pub(super) fn on_interruption(&mut self, event_id: Option<i64>, ctx: &mut Context<Self>) {
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
}
