//! The call's agent side: dialling, the leg's start, what to do when a connection fails, and what the agent
//! says (metadata, audio, barge-in). `AgentLink` decides; this applies its decisions.

use super::*;
use crate::config::McpApproval;

impl CallActor {
    // ----- the agent connection -----------------------------------------------------------------------

    /// The first message of a connection: the call's variables, and on a resumed conversation the
    /// configured first message (only when configured: an override the agent does not allow is refused).
    /// `caller_number` is always the customer and `called_number` our line: on an outbound call Mcube's
    /// `fromNumber` is our line and `toNumber` the customer.
    pub(super) fn initiation(&self) -> String {
        let i = &self.log.info;
        let customer = match i.direction {
            Direction::Outbound => &i.to,
            _ => &i.from,
        };
        let mut init = ConversationInitiation::for_call(&[
            ("caller_number", &CallInfo::number(customer)),
            ("called_number", &CallInfo::number(&i.our_line().cloned())),
            ("call_id", i.call_id.as_str()),
            ("direction", i.direction.as_str()),
        ]);
        if let Some(route) = &i.route {
            init.add_variables(&route.dynamic_variables);
        }
        match self.greeting_override() {
            Some(first) => init.with_first_message(first),
            None => init,
        }
        .to_json()
    }

    /// The first message a resumed conversation opens with, when one is configured.
    fn greeting_override(&self) -> Option<&str> {
        let configured = self.cfg().elevenlabs.resume_first_message.as_deref();
        configured.filter(|_| self.agent.resuming())
    }

    /// What a redialled conversation is told first: the conversation so far (bounded), and that it
    /// continues one that was cut off.
    fn resume_context(&self) -> String {
        let turns = self.log.recent_turns(self.cfg().elevenlabs.resume_context_bytes);
        let said = if turns.is_empty() {
            "Nothing had been said yet.".to_string()
        } else {
            format!("The conversation so far (most recent last):\n{}", turns.join("\n"))
        };
        format!(
            "The phone line to the caller stayed up, but your previous session with them was cut off and this \
             one continues it. Do not greet the caller again; carry on from where the conversation stopped. {said}"
        )
    }

    pub(super) fn connect_agent(&mut self, ctx: &mut Context<Self>) {
        if self.is_over() || self.phase == Phase::PlayingOut {
            return;
        }
        let generation = self.agent.dialling(Instant::now());
        self.unbridge();
        let el_cfg = self.cfg().elevenlabs.clone();
        let agent_id = self.log.info.agent_id(self.cfg()).unwrap_or_default().to_string();
        let deadline = el_cfg.connect_timeout() + el_cfg.metadata_timeout();
        let dialed_at = Instant::now();
        ctx.spawn(
            async move { dial(&el_cfg, &agent_id).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    let outcome = if res.is_ok() { "ok" } else { "error" };
                    let took = dialed_at.elapsed().as_secs_f64();
                    let m = &act.deps.metrics;
                    m.upstream.connect_seconds.with_label_values(&[outcome]).observe(took);
                    act.supervised(ctx, |act, ctx| act.on_dialed(res, generation, ctx))
                }),
        );
        Self::later(ctx, deadline, move |act, ctx| {
            if act.is_current_agent(generation) && act.agent.formats().is_none() {
                let failure = Failure::account("no conversation_initiation_metadata in time".into());
                act.agent_failed(ctx, failure);
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
                    heartbeat: calls.heartbeat_interval(),
                    peer_timeout: calls.peer_timeout(),
                    max_message_bytes: self.cfg().elevenlabs.max_frame_bytes,
                };
                self.agent.connected(ElevenLabsLeg::start(socket, setup).recipient());
            }
            Err(e) => {
                self.deps.metrics.upstream.connect_failures.inc();
                let failure = Failure {
                    scope: e.scope(),
                    ..Failure::account(e.to_string())
                };
                self.agent_failed(ctx, failure);
            }
        }
    }

    /// The current agent connection failed or ended; from here on nothing from it counts. A connection
    /// that never got as far as a conversation counts toward a breaker: its agent's when the failure is the
    /// agent's (then the call does not redial: the agent would refuse again), else the account's.
    /// `AgentLink` decides what follows: play out, give up, or redial within the call's budget.
    pub(super) fn agent_failed(&mut self, ctx: &mut Context<Self>, failure: Failure) {
        let Failure {
            close_code,
            error_type,
            detail,
            scope,
        } = failure;
        let code = close_code.map_or("none".to_string(), |c| c.to_string());
        if close_code != Some(1000) {
            self.error(format!("elevenlabs: {detail} (close code {code})"));
        }
        if let Some(agent) = self.agent.take_leg() {
            agent.do_send(ToAgent::Close);
        }
        let error_type = error_type.as_ref().map(|t| t.as_str());
        let no_conversation = self.agent.formats().is_none() && close_code != Some(1000);
        // Refused by the agent before a conversation: a redial would be refused again.
        let agent_refused = scope == FailureScope::Agent && no_conversation;
        let decision = self
            .agent
            .on_failure(close_code, error_type, agent_refused, Instant::now());
        if no_conversation {
            let i = &self.log.info;
            let agent = i.agent_id(self.cfg()).unwrap_or_default();
            self.deps.breaker.failed(agent, i.route_name(), scope, &detail);
        }
        self.unbridge();
        let call_id = self.call_id().to_string();
        match decision {
            AgentFailure::PlayOut => {
                log::info!("call_id={call_id} elevenlabs ended the conversation; playing out queued audio");
                self.begin_playout(ctx, EndReason::AgentEnded);
            }
            AgentFailure::ConfigRefused => {
                self.deps.metrics.upstream.config_refused.inc();
                let problem = "elevenlabs: the agent refused the conversation_config_override we sent \
                               (elevenlabs.resume_first_message): allow overriding the first message in the \
                               agent's security settings, or unset it; a configuration problem, not retried";
                log::error!("call_id={call_id} {problem}");
                self.error(problem.into());
                self.begin_playout(ctx, EndReason::ElevenlabsConfigRefused);
            }
            AgentFailure::GiveUp(reason) => {
                let i = &self.log.info;
                let agent = i.agent_id(self.cfg()).unwrap_or_default();
                log::warn!(
                    "call_id={call_id} elevenlabs refused the conversation with agent {agent} (route '{}', close \
                     code {code}): {detail}",
                    i.route_name()
                );
                self.end_call(ctx, reason);
            }
            AgentFailure::BudgetSpent => {
                let budget = match self.agent.policy().max {
                    0 => "no redials allowed (elevenlabs.max_redials_per_call = 0)".to_string(),
                    max => format!("all {max} redials of the call spent (elevenlabs.max_redials_per_call)"),
                };
                let closed = close_code.map_or(String::new(), |c| format!(" (close code {c})"));
                let spent = format!("elevenlabs: {detail}{closed}; {budget}; playing out and ending the call");
                log::warn!("call_id={call_id} {spent}");
                self.error(spent);
                self.begin_playout(ctx, EndReason::ElevenlabsUnavailable);
            }
            AgentFailure::Redial { attempt, backoff } => {
                let max = self.agent.policy().max;
                log::warn!("call_id={call_id} elevenlabs: {detail} (code {code}); redial {attempt}/{max} of the call");
                self.log.stats.upstream_reconnects += 1;
                self.deps.metrics.upstream.reconnects.inc();
                self.start_hold(ctx);
                Self::later(ctx, backoff, |act, ctx| act.connect_agent(ctx));
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
        let agent = self.log.info.agent_id(self.cfg()).unwrap_or_default();
        self.deps.breaker.succeeded(agent);
        let resumed = self.agent.resuming();
        let overridden = self.greeting_override().is_some();
        self.agent.announced(conversation_id, formats, overridden);
        if resumed {
            // Before the bridge flushes what the caller said meanwhile: the agent reads the context first.
            self.deps.metrics.upstream.resumed.inc();
            let context = self.resume_context();
            self.send_agent(ToAgent::Note { text: context });
            let id = self.agent.conversation_id().map_or("-", |c| c.as_str()).to_string();
            self.event(
                EventKind::Resumed,
                format!("conversation {id} seeded with the conversation so far"),
            );
        }
        self.try_bridge(ctx);
    }

    /// Agent audio; a turn is set on the first audio after the caller fell silent (the turn clock starts
    /// its answer once its first byte is played).
    pub(super) fn on_agent_audio(&mut self, audio: &[u8], what: AgentAudio, ctx: &mut Context<Self>) {
        crate::supervise::fault::point(crate::supervise::Part::Call, self.call_id());
        let AgentAudio {
            event_id,
            read_at,
            turn,
        } = what;
        if self.agent.is_stale(event_id) {
            self.log.stats.stale_audio_dropped += 1;
            self.deps.metrics.stale_audio_dropped.inc();
            return;
        }
        if self.agent.is_greeting_muted() {
            return;
        }
        if self.downstream.is_bridged() {
            // An answer queued behind the agent's own earlier speech is no turn: the caller was still
            // hearing the agent when they fell silent.
            if let Some(start) = turn.filter(|_| self.playout.queued_bytes() == 0) {
                self.log.turns.answer_queued(start, self.log.stats.bytes_out);
            }
            self.enqueue_downstream(audio, read_at, ctx);
        } else {
            let queue_ms = self.cfg().calls.outbound_queue_ms;
            let cap = self.agent.formats().map_or(0, |f| f.output.bytes_for_ms(queue_ms));
            let room = cap.saturating_sub(self.early_agent_audio.len());
            self.early_agent_audio
                .extend_from_slice(&audio[..audio.len().min(room)]);
        }
    }

    /// MCP tools run on ElevenLabs' side; one that needs approval waits for the client, and nobody on a
    /// phone line can give it: the configured answer is sent at once so the agent never stalls.
    pub(super) fn on_mcp_tool_call(&mut self, tool_call_id: Text, tool_name: Text, state: Text) {
        if state.as_str() == "awaiting_approval" {
            let approved = self.cfg().elevenlabs.mcp_approval == McpApproval::Allow;
            let answer = if approved { "allowed" } else { "denied" };
            self.deps
                .metrics
                .upstream
                .mcp_approvals
                .with_label_values(&[answer])
                .inc();
            self.send_agent(ToAgent::McpApproval { tool_call_id, approved });
            self.line(
                Role::McpToolCall,
                Text::clean(&format!("{tool_name}: approval {answer}"), Text::SHORT),
            );
        } else if state.as_str() != "loading" {
            self.line(
                Role::McpToolCall,
                Text::clean(&format!("{tool_name}: {state}"), Text::SHORT),
            );
        }
    }

    pub(super) fn on_interruption(&mut self, event_id: Option<i64>, ctx: &mut Context<Self>) {
        self.log.stats.interruptions += 1;
        self.deps.metrics.interruptions.inc();
        self.agent.interrupted(event_id);
        self.log.turns.dropped();
        self.stop_pacing(ctx);
        self.playout.clear(Instant::now());
        self.sync_queue_gauge();
        self.early_agent_audio.clear();
        if self.stream.is_some() {
            self.send_carrier(ToCarrier::ClearAudio);
        }
        self.line(Role::Interruption, Text::default());
    }
}
