//! One simulated conversation: the agent's side of one WebSocket, following its script.

use super::script::*;
use crate::audio::codec::{encode_pcm16le, encode_ulaw};
use crate::audio::format::{AudioFormat, Codec};
use crate::audio::signal::tone;
use crate::audio::transcode::Transcoder;
use crate::protocol::elevenlabs::agent_side::{self as agent_el, parse_client_message, ClientMessage};

use actix::prelude::*;
use actix_web_actors::ws;
use base64::Engine as _;

use std::sync::Arc;
use std::time::Duration;

/// One simulated conversation.
pub(super) struct AgentSession {
    index: u32,
    script: AgentScript,
    log: Arc<SimLog>,
    initiated: bool,
    input: AudioFormat,
    output: AudioFormat,
    next_event_id: i64,
    tone_sample: u64,
    user_ms_since_reply: u64,
    /// Caller speech heard since the last answer, and since when the caller has been silent after it
    /// (`answer_after_silence_ms`).
    speech_ms: u64,
    silent_since: Option<std::time::Instant>,
    echo: Option<Transcoder>,
    ended: bool,
    /// Whether the conversation opens with speech (an empty `first_message` override: it waits).
    greeting: bool,
    /// The dynamic variables this agent's prompt needs.
    needs: Vec<String>,
}

/// The caller's base64 audio with this moment written into its load-test stamps; as it came without any.
fn stamped(b64: &str) -> std::borrow::Cow<'_, str> {
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(mut raw) = engine.decode(b64) else {
        return b64.into();
    };
    if crate::tools::sim::stamp::mark_received(&mut raw, crate::tools::sim::stamp::now_us()) == 0 {
        return b64.into();
    }
    engine.encode(&raw).into()
}

/// The `first_message` override of an initiation, if it has one.
fn first_message(init: &crate::protocol::elevenlabs::ConversationInitiation) -> Option<&str> {
    init.conversation_config_override.as_ref()?["agent"]["first_message"].as_str()
}

impl AgentSession {
    pub(super) fn new(index: u32, script: AgentScript, log: Arc<SimLog>) -> Self {
        let input = AudioFormat::from_elevenlabs(&script.input_format).unwrap_or(AudioFormat::ULAW_8K);
        let output = AudioFormat::from_elevenlabs(&script.output_format).unwrap_or(AudioFormat::ULAW_8K);
        let echo = (script.echo && input != output).then(|| Transcoder::new(input, output));
        AgentSession {
            index,
            script,
            log,
            initiated: false,
            input,
            output,
            next_event_id: 1,
            tone_sample: 0,
            user_ms_since_reply: 0,
            speech_ms: 0,
            silent_since: None,
            echo,
            ended: false,
            greeting: true,
            needs: Vec::new(),
        }
    }

    /// The agent's prompt needs these dynamic variables.
    pub(super) fn needing(self, needs: Vec<String>) -> Self {
        AgentSession { needs, ..self }
    }

    fn event_id(&mut self) -> i64 {
        let id = self.next_event_id;
        self.next_event_id += 1;
        id
    }

    /// Speech as a tone in the output format, continuing the tone's phase across calls.
    fn tone_audio(&mut self, ms: u64) -> Vec<u8> {
        let n = (u64::from(self.output.rate.hz()) * ms / 1000) as usize;
        let mut samples = Vec::with_capacity(n);
        tone(
            self.script.tone_hz,
            self.output.rate.hz(),
            self.tone_sample,
            n,
            8000,
            &mut samples,
        );
        self.tone_sample += n as u64;
        let mut out = Vec::with_capacity(n * 2);
        match self.output.codec {
            Codec::Ulaw => encode_ulaw(&samples, &mut out),
            Codec::Alaw => crate::audio::codec::encode_alaw(&samples, &mut out),
            Codec::Pcm16 => encode_pcm16le(&samples, &mut out),
        }
        out
    }

    /// Sends audio as `audio` events of `chunk_ms`, each with a new event id; returns the last id.
    fn speak(&mut self, audio: &[u8], ctx: &mut ws::WebsocketContext<Self>) -> i64 {
        let chunk = self.output.bytes_for_ms(self.script.chunk_ms.max(10)).max(1);
        let mut last = self.next_event_id - 1;
        let mut text = String::new();
        for part in audio.chunks(chunk) {
            last = self.event_id();
            agent_el::audio(&base64::engine::general_purpose::STANDARD.encode(part), last, &mut text);
            ctx.text(text.clone());
        }
        last
    }

    fn send_metadata(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let conversation_id = super::conversations::conversation_id(self.index);
        ctx.text(agent_el::metadata(
            &conversation_id,
            &self.script.output_format,
            &self.script.input_format,
        ));
        self.schedule(ctx);
        if self.greeting && self.script.greeting_ms > 0 {
            let greeting = self.tone_audio(self.script.greeting_ms);
            self.speak(&greeting, ctx);
        }
    }

    fn schedule(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let ms = Duration::from_millis;
        let s = self.script.clone();
        if s.ping_interval_ms > 0 {
            ctx.run_interval(ms(s.ping_interval_ms), |act, ctx| {
                let id = act.event_id();
                act.log.update(act.index, |c| c.pings_sent.push(id));
                ctx.text(agent_el::ping(id, Some(20)));
            });
        }
        if s.interrupt_after_ms > 0 {
            ctx.run_later(ms(s.interrupt_after_ms), |act, ctx| act.interrupt(ctx));
        }
        if s.tool_call_after_ms > 0 {
            ctx.run_later(ms(s.tool_call_after_ms), |act, ctx| {
                let id = act.event_id();
                ctx.text(agent_el::client_tool_call("check_account", &format!("tc_{id}"), id));
            });
        }
        if s.correct_after_ms > 0 {
            ctx.run_later(ms(s.correct_after_ms), |act, ctx| {
                let id = act.event_id();
                ctx.text(agent_el::agent_response_correction(REPLY_TEXT, CORRECTED_REPLY, id));
            });
        }
        if s.mcp_approval_after_ms > 0 {
            ctx.run_later(ms(s.mcp_approval_after_ms), |act, ctx| {
                let id = act.event_id();
                ctx.text(agent_el::mcp_tool_awaiting_approval(
                    "refund_order",
                    &format!("mcp_{id}"),
                ));
            });
        }
        if s.end_after_ms > 0 {
            ctx.run_later(ms(s.end_after_ms), |act, ctx| act.end_conversation(ctx));
        }
        if self.index < s.drop_first {
            ctx.run_later(ms(s.drop_after_ms), |act, ctx| act.drop_connection(ctx));
        }
    }

    fn interrupt(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let interrupted = self.next_event_id - 1;
        ctx.text(agent_el::interruption(interrupted));
        // A stale chunk from before the barge-in, as ElevenLabs can still deliver: it must not be played.
        let stale = vec![STALE_MARKER; self.output.bytes_for_ms(200)];
        let mut text = String::new();
        agent_el::audio(
            &base64::engine::general_purpose::STANDARD.encode(&stale),
            interrupted,
            &mut text,
        );
        ctx.text(text);
        let fresh = self.tone_audio(self.script.reply_ms.max(200));
        self.speak(&fresh, ctx);
    }

    fn end_conversation(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.script.goodbye_ms > 0 {
            let bye = self.tone_audio(self.script.goodbye_ms);
            self.speak(&bye, ctx);
        }
        self.ended = true;
        self.log.update(self.index, |c| c.ended = true);
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Normal,
            description: Some("end_call".into()),
        }));
        ctx.stop();
    }

    fn drop_connection(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.ended = true;
        if let Some(code) = self.script.fail_with_code {
            ctx.text(agent_el::error(i64::from(code), "llm_error", "simulated failure"));
            ctx.close(Some(ws::CloseReason {
                code: ws::CloseCode::from(code),
                description: Some("llm_error".into()),
            }));
        }
        // Without a close frame the client sees the TCP stream end, as when a connection is lost.
        ctx.stop();
    }

    fn on_user_audio(&mut self, b64: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let bytes = crate::protocol::base64_decoded_len(b64);
        self.log.update(self.index, |c| {
            c.audio_chunks += 1;
            c.audio_bytes += bytes as u64;
        });
        if self.script.echo && self.echo.is_none() {
            // Same format both ways: the caller's audio goes back as it came, with the time it arrived
            // written into the load generator's stamps (if it carries any).
            let id = self.event_id();
            let mut text = String::with_capacity(b64.len() + 80);
            agent_el::audio(&stamped(b64), id, &mut text);
            ctx.text(text);
            return;
        }
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            return;
        };
        let ms = self.input.ms_for_bytes(raw.len());
        if let Some(tc) = &mut self.echo {
            let mut out = Vec::new();
            tc.convert(&raw, &mut out);
            self.speak(&out, ctx);
            return;
        }
        if self.script.answer_after_silence_ms > 0 {
            return self.answer_after_silence(&raw, ms, ctx);
        }
        self.user_ms_since_reply += ms;
        if self.script.reply_after_user_ms > 0 && self.user_ms_since_reply >= self.script.reply_after_user_ms {
            self.user_ms_since_reply = 0;
            if self.script.transcripts {
                let id = self.event_id();
                ctx.text(agent_el::user_transcript("hello, I am calling about my order", id));
            }
            let reply = self.tone_audio(self.script.reply_ms);
            let id = self.speak(&reply, ctx);
            if self.script.transcripts {
                ctx.text(agent_el::agent_response(REPLY_TEXT, id));
            }
        }
    }

    /// Answers once the caller's speech (at least 200 ms of it) falls silent and stays so: the transcript
    /// after a quarter of `answer_after_silence_ms`, the answer after all of it, both counted from the first
    /// silent audio; speech again before then (a pause between words) cancels both, as a real agent's turn
    /// detection waits for the caller to finish.
    fn answer_after_silence(&mut self, raw: &[u8], ms: u64, ctx: &mut ws::WebsocketContext<Self>) {
        if crate::audio::level::is_speech(self.input, raw) {
            self.speech_ms += ms;
            self.silent_since = None;
            return;
        }
        if self.speech_ms < 200 || self.silent_since.is_some() {
            return;
        }
        let since = std::time::Instant::now();
        self.silent_since = Some(since);
        let still_silent = move |act: &Self| act.silent_since == Some(since);
        let wait = self.script.answer_after_silence_ms;
        if self.script.transcripts {
            ctx.run_later(Duration::from_millis(wait / 4), move |act, ctx| {
                if !still_silent(act) {
                    return;
                }
                let id = act.event_id();
                ctx.text(agent_el::user_transcript("hello, I am calling about my order", id));
            });
        }
        ctx.run_later(Duration::from_millis(wait), move |act, ctx| {
            if !still_silent(act) {
                return;
            }
            act.speech_ms = 0;
            let reply = act.tone_audio(act.script.reply_ms);
            let id = act.speak(&reply, ctx);
            if act.script.transcripts {
                ctx.text(agent_el::agent_response(REPLY_TEXT, id));
            }
        });
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        if self.script.record {
            self.log.update(self.index, |c| c.received.push(text.to_string()));
        }
        let msg = match parse_client_message(text) {
            Ok(m) => m,
            Err(e) => return self.fail(ctx, "invalid_message", &e.to_string()),
        };
        match (self.initiated, msg) {
            (false, ClientMessage::Initiation(init))
                if self.script.refuse_overrides && init.conversation_config_override.is_some() =>
            {
                self.log.update(self.index, |c| c.initiation = Some(init));
                self.fail(
                    ctx,
                    "override_error",
                    "Override for field 'first_message' is not allowed by config.",
                )
            }
            (false, ClientMessage::Initiation(init))
                if self.needs.iter().any(|v| !init.dynamic_variables.contains_key(v)) =>
            {
                let missing = self
                    .needs
                    .iter()
                    .find(|v| !init.dynamic_variables.contains_key(*v))
                    .cloned();
                self.log.update(self.index, |c| c.initiation = Some(init));
                let message = format!("Missing required dynamic variables: {}", missing.unwrap_or_default());
                self.fail(ctx, "missing_dynamic_variable", &message)
            }
            (false, ClientMessage::Initiation(init)) => {
                self.initiated = true;
                self.greeting = first_message(&init).map_or(self.greeting, |m| !m.is_empty());
                self.log.update(self.index, |c| c.initiation = Some(init));
                let delay = Duration::from_millis(self.script.metadata_delay_ms);
                ctx.run_later(delay, |act, ctx| act.send_metadata(ctx));
            }
            (false, _) => self.fail(
                ctx,
                "invalid_message",
                "conversation_initiation_client_data must come first",
            ),
            (true, ClientMessage::UserAudio { audio_b64 }) => self.on_user_audio(&audio_b64, ctx),
            (true, ClientMessage::Pong { event_id }) => self.log.update(self.index, |c| c.pongs.push(event_id)),
            (true, ClientMessage::ContextualUpdate { text }) => {
                self.log.update(self.index, |c| c.contextual_updates.push(text))
            }
            (true, ClientMessage::ClientToolResult { tool_call_id }) => {
                self.log.update(self.index, |c| c.tool_results.push(tool_call_id))
            }
            (
                true,
                ClientMessage::McpToolApproval {
                    tool_call_id,
                    is_approved,
                },
            ) => self
                .log
                .update(self.index, |c| c.mcp_approvals.push((tool_call_id, is_approved))),
            (true, _) => {}
        }
    }

    /// Protocol violation: an `error` event, then close 1008, as the real service does.
    fn fail(&mut self, ctx: &mut ws::WebsocketContext<Self>, error_type: &str, message: &str) {
        ctx.text(agent_el::error(1008, error_type, message));
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Policy,
            description: Some(error_type.into()),
        }));
        ctx.stop();
    }
}

impl Actor for AgentSession {
    type Context = ws::WebsocketContext<Self>;

    /// The conversation is over: its post-call webhook goes out, if one is wanted.
    fn stopped(&mut self, _: &mut Self::Context) {
        let (Some((url, secret)), Some(conn)) = (self.log.webhook(), self.log.connection(self.index)) else {
            return;
        };
        let id = super::conversations::conversation_id(self.index);
        let details = super::conversations::of(&id, &conn, self.input.bytes_for_ms(1000) as u64);
        actix_rt::spawn(super::conversations::deliver(url, secret, details));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for AgentSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        if self.ended {
            return;
        }
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(_)) if self.index < self.script.stall_first => {}
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Close(reason)) => {
                let code = reason.as_ref().map(|r| u16::from(r.code));
                self.log.update(self.index, |c| c.client_close = code);
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(_) => ctx.stop(),
        }
    }
}
