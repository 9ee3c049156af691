//! The ElevenLabs agent simulator: a real Agents WebSocket server (interface.md §6) speaking the protocol of
//! specs/elevenlabs-agent.asyncapi.yaml. It expects the initiation first, announces its formats, pings and
//! expects pongs, speaks (tones or an echo of the caller), and can interrupt, transcribe, call tools, drop,
//! fail or end the conversation — all scripted, so the gateway can be tested and demonstrated without
//! ElevenLabs.

use crate::audio::codec::{encode_pcm16le, encode_ulaw};
use crate::audio::format::{AudioFormat, Codec};
use crate::audio::signal::tone;
use crate::audio::transcode::Transcoder;
use crate::protocol::elevenlabs::{self as el, parse_client_message, ClientMessage, ConversationInitiation};
use actix::prelude::*;
use actix_web::{dev::Server, web, App, HttpRequest, HttpResponse, HttpServer};
use actix_web_actors::ws;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Byte the simulator fills audio with when it is stale by design (sent after an interruption with an old
/// event id): a gateway that plays it to the carrier has failed to drop stale audio.
pub const STALE_MARKER: u8 = 0x2A;

/// What the simulated agent does. Times are in milliseconds; 0 disables a behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentScript {
    /// `user_input_audio_format` announced in the metadata.
    pub input_format: String,
    /// `agent_output_audio_format` announced in the metadata.
    pub output_format: String,
    /// Delay before `conversation_initiation_metadata`.
    pub metadata_delay_ms: u64,
    /// Agent speech sent right after the metadata (sent at once, faster than real time, as ElevenLabs does).
    pub greeting_ms: u64,
    /// Pitch of the agent's tone speech.
    pub tone_hz: f32,
    /// Size of each agent `audio` message.
    pub chunk_ms: u64,
    /// Send the caller's audio back as agent audio (converted to the output format).
    pub echo: bool,
    /// Reply with `reply_ms` of speech each time this much caller audio has arrived.
    pub reply_after_user_ms: u64,
    pub reply_ms: u64,
    /// Send a `user_transcript` and an `agent_response` with each reply.
    pub transcripts: bool,
    /// Interval of `ping` events.
    pub ping_interval_ms: u64,
    /// After this long, interrupt: `interruption`, one stale chunk (old event id), then fresh speech.
    pub interrupt_after_ms: u64,
    /// After this long, send a `client_tool_call`.
    pub tool_call_after_ms: u64,
    /// After this long, say goodbye (`goodbye_ms` of speech) and close with 1000.
    pub end_after_ms: u64,
    pub goodbye_ms: u64,
    /// The first `drop_first` connections drop without a close frame `drop_after_ms` after the metadata.
    pub drop_first: u32,
    pub drop_after_ms: u64,
    /// With `drop_first`: instead of dropping, send an `error` event and close with this code.
    pub fail_with_code: Option<u16>,
    /// The first `stall_first` connections go mute after the metadata: no audio, no pongs (a hung agent).
    pub stall_first: u32,
    /// The first `refuse_first` upgrades are answered 503.
    pub refuse_first: u32,
    /// Refuse upgrades whose `xi-api-key` header differs.
    pub require_api_key: Option<String>,
    /// Keep every message received (tests); otherwise only counts.
    pub record: bool,
}

impl Default for AgentScript {
    fn default() -> Self {
        AgentScript {
            input_format: "ulaw_8000".into(),
            output_format: "ulaw_8000".into(),
            metadata_delay_ms: 0,
            greeting_ms: 1000,
            tone_hz: 440.0,
            chunk_ms: 250,
            echo: false,
            reply_after_user_ms: 2000,
            reply_ms: 1000,
            transcripts: true,
            ping_interval_ms: 2000,
            interrupt_after_ms: 0,
            tool_call_after_ms: 0,
            end_after_ms: 0,
            goodbye_ms: 500,
            drop_first: 0,
            drop_after_ms: 0,
            fail_with_code: None,
            stall_first: 0,
            refuse_first: 0,
            require_api_key: None,
            record: false,
        }
    }
}

/// What happened on one connection, for tests and the demo.
#[derive(Debug, Clone, Default)]
pub struct ConnectionLog {
    pub index: u32,
    /// The `xi-api-key` header of the upgrade, if any.
    pub api_key: Option<String>,
    /// The upgrade's query string.
    pub query: String,
    /// Every text message received, in order (when the script records).
    pub received: Vec<String>,
    pub initiation: Option<ConversationInitiation>,
    pub audio_chunks: u64,
    pub audio_bytes: u64,
    pub pings_sent: Vec<i64>,
    pub pongs: Vec<i64>,
    pub contextual_updates: Vec<String>,
    pub tool_results: Vec<String>,
    /// The close code the client sent, if it sent one.
    pub client_close: Option<u16>,
    pub ended: bool,
}

/// Shared record of every connection the simulator saw.
#[derive(Debug, Default)]
pub struct SimLog {
    connections: Mutex<Vec<ConnectionLog>>,
    upgrades_refused: AtomicU32,
}

impl SimLog {
    pub fn connections(&self) -> Vec<ConnectionLog> {
        self.connections.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn connection_count(&self) -> usize {
        self.connections.lock().map(|c| c.len()).unwrap_or(0)
    }

    pub fn upgrades_refused(&self) -> u32 {
        self.upgrades_refused.load(Ordering::Relaxed)
    }

    fn update(&self, index: u32, f: impl FnOnce(&mut ConnectionLog)) {
        if let Ok(mut conns) = self.connections.lock() {
            if let Some(c) = conns.get_mut(index as usize) {
                f(c);
            }
        }
    }

    fn open(&self, api_key: Option<String>, query: String) -> u32 {
        match self.connections.lock() {
            Ok(mut conns) => {
                let index = conns.len() as u32;
                conns.push(ConnectionLog {
                    index,
                    api_key,
                    query,
                    ..ConnectionLog::default()
                });
                index
            }
            Err(_) => 0,
        }
    }
}

struct SimState {
    script: AgentScript,
    log: Arc<SimLog>,
    attempts: AtomicU32,
    public_ws: String,
}

/// A running simulator.
pub struct AgentSimulator {
    pub addr: SocketAddr,
    /// The Agents WebSocket endpoint (`elevenlabs.url`).
    pub url: String,
    /// The signed-URL endpoint (`elevenlabs.signed_url_endpoint`).
    pub signed_url_endpoint: String,
    pub log: Arc<SimLog>,
    pub server: actix_web::dev::ServerHandle,
}

/// Starts the simulator on `listen` inside the current actix system; poll the returned `Server`.
pub fn start(listen: &str, script: AgentScript) -> std::io::Result<(AgentSimulator, Server)> {
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    let log = Arc::new(SimLog::default());
    let url = format!("ws://{addr}/v1/convai/conversation");
    let state = web::Data::new(SimState {
        script,
        log: log.clone(),
        attempts: AtomicU32::new(0),
        public_ws: url.clone(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/v1/convai/conversation", web::get().to(upgrade))
            .route("/v1/convai/conversation/get-signed-url", web::get().to(signed_url))
    })
    .listen(listener)?
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .run();
    let sim = AgentSimulator {
        addr,
        signed_url_endpoint: format!("http://{addr}/v1/convai/conversation/get-signed-url"),
        url,
        log,
        server: server.handle(),
    };
    Ok((sim, server))
}

fn api_key(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn signed_url(req: HttpRequest, state: web::Data<SimState>) -> HttpResponse {
    if state.script.require_api_key.is_some() && api_key(&req) != state.script.require_api_key {
        return HttpResponse::Unauthorized().json(serde_json::json!({"detail": "invalid api key"}));
    }
    let agent = req.query_string().to_string();
    HttpResponse::Ok().json(serde_json::json!({
        "signed_url": format!("{}?{agent}&conversation_signature=sim-signature", state.public_ws)
    }))
}

async fn upgrade(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<SimState>,
) -> actix_web::Result<HttpResponse> {
    let attempt = state.attempts.fetch_add(1, Ordering::Relaxed);
    if attempt < state.script.refuse_first {
        state.log.upgrades_refused.fetch_add(1, Ordering::Relaxed);
        return Ok(HttpResponse::ServiceUnavailable().finish());
    }
    let key = api_key(&req);
    if state.script.require_api_key.is_some() && key != state.script.require_api_key {
        let signed = req.query_string().contains("conversation_signature=");
        if !signed {
            state.log.upgrades_refused.fetch_add(1, Ordering::Relaxed);
            return Ok(HttpResponse::Unauthorized().finish());
        }
    }
    let index = state.log.open(key, req.query_string().to_string());
    let session = AgentSession::new(index, state.script.clone(), state.log.clone());
    ws::WsResponseBuilder::new(session, &req, payload)
        .frame_size(4 * 1024 * 1024)
        .start()
}

/// One simulated conversation.
struct AgentSession {
    index: u32,
    script: AgentScript,
    log: Arc<SimLog>,
    initiated: bool,
    input: AudioFormat,
    output: AudioFormat,
    next_event_id: i64,
    tone_sample: u64,
    user_ms_since_reply: u64,
    echo: Option<Transcoder>,
    ended: bool,
}

impl AgentSession {
    fn new(index: u32, script: AgentScript, log: Arc<SimLog>) -> Self {
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
            echo,
            ended: false,
        }
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
            el::audio(&base64::engine::general_purpose::STANDARD.encode(part), last, &mut text);
            ctx.text(text.clone());
        }
        last
    }

    fn send_metadata(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let conversation_id = format!("conv_sim_{}_{}", std::process::id(), self.index);
        ctx.text(el::metadata(
            &conversation_id,
            &self.script.output_format,
            &self.script.input_format,
        ));
        self.schedule(ctx);
        if self.script.greeting_ms > 0 {
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
                ctx.text(el::ping(id, Some(20)));
            });
        }
        if s.interrupt_after_ms > 0 {
            ctx.run_later(ms(s.interrupt_after_ms), |act, ctx| act.interrupt(ctx));
        }
        if s.tool_call_after_ms > 0 {
            ctx.run_later(ms(s.tool_call_after_ms), |act, ctx| {
                let id = act.event_id();
                ctx.text(el::client_tool_call("check_account", &format!("tc_{id}"), id));
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
        ctx.text(el::interruption(interrupted));
        // A stale chunk from before the barge-in, as ElevenLabs can still deliver: it must not be played.
        let stale = vec![STALE_MARKER; self.output.bytes_for_ms(200)];
        let mut text = String::new();
        el::audio(
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
            ctx.text(el::error(i64::from(code), "llm_error", "simulated failure"));
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
            // Same format both ways: the caller's base64 goes back as it came, as a load generator's echo
            // should cost the simulator as little as possible.
            let id = self.event_id();
            let mut text = String::with_capacity(b64.len() + 80);
            el::audio(b64, id, &mut text);
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
        self.user_ms_since_reply += ms;
        if self.script.reply_after_user_ms > 0 && self.user_ms_since_reply >= self.script.reply_after_user_ms {
            self.user_ms_since_reply = 0;
            if self.script.transcripts {
                let id = self.event_id();
                ctx.text(el::user_transcript("hello, I am calling about my order", id));
            }
            let reply = self.tone_audio(self.script.reply_ms);
            let id = self.speak(&reply, ctx);
            if self.script.transcripts {
                ctx.text(el::agent_response("Sure, let me check that order for you.", id));
            }
        }
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
            (false, ClientMessage::Initiation(init)) => {
                self.initiated = true;
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
            (true, _) => {}
        }
    }

    /// Protocol violation: an `error` event, then close 1008, as the real service does.
    fn fail(&mut self, ctx: &mut ws::WebsocketContext<Self>, error_type: &str, message: &str) {
        ctx.text(el::error(1008, error_type, message));
        ctx.close(Some(ws::CloseReason {
            code: ws::CloseCode::Policy,
            description: Some(error_type.into()),
        }));
        ctx.stop();
    }
}

impl Actor for AgentSession {
    type Context = ws::WebsocketContext<Self>;
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
