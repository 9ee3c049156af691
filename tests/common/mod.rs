//! Shared test harness: the real gateway on 127.0.0.1:0 with the agent simulator as ElevenLabs, a carrier
//! client that dials through the real refurl + WebSocket path, and the ElevenLabs schema to validate what
//! the gateway sent.
#![allow(dead_code)]

pub mod ca;
pub mod db;
pub mod process;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use websocket_api::audio::format::AudioFormat;
use websocket_api::config::{Config, ElevenLabsAuth};
use websocket_api::gateway::{self, Gateway};
use websocket_api::tools::sim::agent::{self, AgentScript, AgentSimulator};
use websocket_api::tools::sim::carrier::{post_refurl, Admission, CallRequest, CarrierConn, Heard};

pub struct Harness {
    pub gw: Gateway,
    pub sim: AgentSimulator,
    /// This harness's own directory: the SQLite database and the spool.
    pub dir: PathBuf,
}

/// Every test, whatever else it checks, also checks that each message the gateway sent to the agent
/// validates against the ElevenLabs schema.
impl Drop for Harness {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_gateway_messages_valid(self);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A quiet agent: no greeting, no replies, no pings; tests switch on what they exercise.
pub fn quiet_script() -> AgentScript {
    AgentScript {
        greeting_ms: 0,
        reply_after_user_ms: 0,
        ping_interval_ms: 0,
        transcripts: false,
        record: true,
        ..AgentScript::default()
    }
}

/// The call's recorded end reason, once its record says it ended (or was refused).
pub async fn end_reason(h: &Harness, id: &str) -> Value {
    for _ in 0..40 {
        let (_, record) = get_json(h, &format!("/calls/{id}")).await;
        if record["state"] == "ended" || record["state"] == "rejected" {
            return record["end_reason"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Value::Null
}

/// A gateway in front of a quiet agent that echoes the caller's audio back.
pub async fn start_echo(tweak: impl FnOnce(&mut Config)) -> Harness {
    start(
        AgentScript {
            echo: true,
            ..quiet_script()
        },
        tweak,
    )
    .await
}

static HARNESS_SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir, unique to this process and call.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let n = HARNESS_SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("wsapi-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

pub fn test_config(sim: &AgentSimulator, dir: &Path) -> Config {
    let mut cfg = Config::default();
    cfg.database.url = format!("sqlite://{}", dir.join("calls.db").display());
    cfg.database.spool_path = dir.join("spool.jsonl").display().to_string();
    cfg.database.replay_interval_ms = 200;
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.admin.listen = "127.0.0.1:0".into();
    cfg.server.public_url = String::new();
    cfg.server.workers = 1;
    cfg.calls.max_concurrent_calls = 10;
    cfg.calls.heartbeat_interval_ms = 500;
    cfg.calls.peer_timeout_ms = 5_000;
    cfg.calls.playout_timeout_ms = 3_000;
    cfg.calls.reconcile_interval_ms = 500;
    cfg.elevenlabs.url = sim.url.clone();
    cfg.elevenlabs.signed_url_endpoint = sim.signed_url_endpoint.clone();
    cfg.elevenlabs.agent_id = Some("agent_test".into());
    cfg.elevenlabs.auth = ElevenLabsAuth::None;
    cfg.elevenlabs.connect_timeout_ms = 2_000;
    cfg.elevenlabs.metadata_timeout_ms = 2_000;
    // Tests count redials, not wait for their spacing.
    cfg.elevenlabs.redial_min_spacing_ms = 0;
    cfg
}

/// Starts the agent simulator on a free loopback port inside the current actix system.
pub fn start_agent(script: AgentScript) -> AgentSimulator {
    let (sim, server) = agent::start("127.0.0.1:0", script).expect("agent simulator starts");
    actix_rt::spawn(server);
    sim
}

/// Starts the simulator with `script` and the gateway with the test config (its own SQLite file),
/// adjusted by `tweak`.
pub async fn start(script: AgentScript, tweak: impl FnOnce(&mut Config)) -> Harness {
    start_with_agent(start_agent(script), tweak).await
}

/// The gateway with the test config, in front of `sim` (one started its own way, e.g. serving TLS).
pub async fn start_with_agent(sim: AgentSimulator, tweak: impl FnOnce(&mut Config)) -> Harness {
    // RUST_LOG=websocket_api=debug shows the gateway's log under `cargo test -- --nocapture`.
    let _ = env_logger::builder().is_test(true).try_init();
    let dir = scratch_dir("harness");
    let mut cfg = test_config(&sim, &dir);
    tweak(&mut cfg);
    let (gw, gw_server) = gateway::start(cfg, false).await.expect("gateway starts");
    actix_rt::spawn(gw_server);
    Harness { gw, sim, dir }
}

pub fn call(call_id: &str) -> CallRequest {
    CallRequest::inbound(call_id)
}

/// Refurl POST that must be admitted; returns the `wss_url`.
pub async fn admit(h: &Harness, call_id: &str) -> String {
    match post_refurl(&h.gw.http_url, &call(call_id))
        .await
        .expect("refurl answers")
    {
        Admission::Admitted { wss_url } => wss_url,
        other => panic!("call {call_id} not admitted: {other:?}"),
    }
}

/// Admits and opens the media socket (checkpoints acknowledged), without sending `start`.
pub async fn dial(h: &Harness, call_id: &str) -> CarrierConn {
    let url = admit(h, call_id).await;
    CarrierConn::connect(&url, true).await.expect("media socket opens")
}

/// Dials `call_id` (admitted, media socket open) and sends its `start`: stream `stream_id`, audio in `format`.
pub async fn start_call(h: &Harness, call_id: &str, stream_id: &str, format: AudioFormat) -> CarrierConn {
    let conn = dial(h, call_id).await;
    conn.send_start(call_id, stream_id, format);
    conn
}

/// Polls `f` every 50 ms until it is true or `limit` passes; returns whether it became true.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

/// Polls `/calls` until `active` equals `n` or `limit` passes; returns whether it did.
pub async fn active_becomes(h: &Harness, n: u64, limit: Duration) -> bool {
    let t0 = Instant::now();
    loop {
        let (_, calls) = get_json(h, "/calls").await;
        if calls["active"].as_u64() == Some(n) {
            return true;
        }
        if t0.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the gateway hangs the carrier up (`terminate`, or the socket closed) within 5 s.
pub async fn hung_up(conn: &mut CarrierConn) -> bool {
    while let Some((_, heard)) = conn.next(Duration::from_secs(5)).await {
        if matches!(heard, Heard::Terminate | Heard::Closed(_)) {
            return true;
        }
    }
    false
}

/// `[[routes]]` of `(name, number, agent_id)`; a route without a number takes every other call.
pub fn routes_toml(routes: &[(&str, Option<&str>, &str)]) -> String {
    routes
        .iter()
        .map(|(name, number, agent)| {
            let number = number.map_or(String::new(), |n| format!("number = \"{n}\"\n"));
            format!("[[routes]]\nname = \"{name}\"\n{number}agent_id = \"{agent}\"\n\n")
        })
        .collect()
}

/// Everything heard during `span` (or until the socket closes).
pub async fn listen(conn: &mut CarrierConn, span: Duration) -> Vec<Heard> {
    let t0 = Instant::now();
    let mut heard = Vec::new();
    while let Some(left) = span.checked_sub(t0.elapsed()) {
        match conn.next(left).await {
            Some((_, h)) => {
                let closed = matches!(h, Heard::Closed(_));
                heard.push(h);
                if closed {
                    break;
                }
            }
            None => break,
        }
    }
    heard
}

pub fn audio_of(heard: &[Heard]) -> Vec<u8> {
    heard
        .iter()
        .filter_map(|h| {
            if let Heard::Audio(a) = h {
                Some(a.as_slice())
            } else {
                None
            }
        })
        .flatten()
        .copied()
        .collect()
}

/// GET a JSON endpoint of the gateway's admin listener.
pub async fn get_json(h: &Harness, path: &str) -> (u16, Value) {
    let mut resp = awc::Client::default()
        .get(format!("{}{path}", h.gw.admin_url))
        .send()
        .await
        .expect("GET answers");
    let status = resp.status().as_u16();
    (status, resp.json::<Value>().limit(1 << 20).await.unwrap_or(Value::Null))
}

/// Whether the caller's key `digit` reaches the agent (as a contextual update) within 2 s.
pub async fn dtmf_reaches_the_agent(h: &Harness, digit: char) -> bool {
    let said = format!("DTMF key {digit}");
    eventually(Duration::from_secs(2), || {
        h.sim
            .log
            .connections()
            .first()
            .is_some_and(|c| c.contextual_updates.iter().any(|u| u.contains(&said)))
    })
    .await
}

/// The live calls' `/calls` entry for `call_id`, if any.
pub async fn call_view(h: &Harness, call_id: &str) -> Option<Value> {
    let (_, v) = get_json(h, "/calls").await;
    v["calls"].as_array()?.iter().find(|c| c["call_id"] == call_id).cloned()
}

/// Sends `n` frames of μ-law at real time (20 ms), from `frames`.
pub async fn stream_frames(conn: &CarrierConn, frames: &[Vec<u8>]) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for f in frames {
        tick.tick().await;
        conn.send_media(f);
    }
}

// ----- the ElevenLabs schema ------------------------------------------------------------------------------

/// Validators for both directions of specs/elevenlabs-agent.asyncapi.yaml (a copy with its MIT licence is
/// in tests/fixtures).
pub struct AgentSchema {
    client_to_server: jsonschema::Validator,
    server_to_client: jsonschema::Validator,
}

fn direction_schema(doc: &Value, op: &str) -> jsonschema::Validator {
    let refs: Vec<Value> = doc["channels"]["AgentMessages"][op]["message"]["oneOf"]
        .as_array()
        .expect("channel lists its messages")
        .iter()
        .map(|m| {
            let name = m["$ref"]
                .as_str()
                .expect("message $ref")
                .rsplit('/')
                .next()
                .expect("name");
            let payload = &doc["components"]["messages"][name]["payload"];
            payload.clone()
        })
        .collect();
    let schema = json!({ "oneOf": refs, "components": doc["components"].clone() });
    jsonschema::validator_for(&schema).expect("the asyncapi payload schemas compile")
}

/// The MCP tool call states: each is `allOf` the base and its own part, and both parts say
/// `additionalProperties: false`, so each forbids the other's fields and no MCP tool call can validate.
pub const MCP_STATE_SCHEMAS: [&str; 5] = [
    "MCPToolCallBase",
    "MCPToolCallLoading",
    "MCPToolCallAwaitingApproval",
    "MCPToolCallSuccess",
    "MCPToolCallFailure",
];

impl AgentSchema {
    fn document() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/elevenlabs-agent.asyncapi.yaml"
        );
        let text = std::fs::read_to_string(path).expect("schema fixture present");
        serde_yaml::from_str(&text).expect("schema is YAML")
    }

    fn from_document(doc: &Value) -> AgentSchema {
        AgentSchema {
            client_to_server: direction_schema(doc, "subscribe"),
            server_to_client: direction_schema(doc, "publish"),
        }
    }

    /// The schema as published, its one defect (`MCP_STATE_SCHEMAS`) mended: the MCP states' parts lose
    /// `additionalProperties: false`, so a tool call is checked against the base's and its state's fields.
    pub fn load() -> AgentSchema {
        let mut doc = Self::document();
        let schemas = &mut doc["components"]["schemas"];
        for name in MCP_STATE_SCHEMAS {
            let s = &mut schemas[name];
            if let Some(o) = s.as_object_mut() {
                o.remove("additionalProperties");
            }
            for part in s.get_mut("allOf").and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(o) = part.as_object_mut() {
                    o.remove("additionalProperties");
                }
            }
        }
        Self::from_document(&doc)
    }

    /// The schema exactly as published.
    pub fn load_as_published() -> AgentSchema {
        Self::from_document(&Self::document())
    }

    fn check(v: &jsonschema::Validator, text: &str) -> Result<(), String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}: {text}"))?;
        let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{text} fails the schema: {}", errors.join("; ")))
        }
    }

    pub fn check_client_message(&self, text: &str) -> Result<(), String> {
        Self::check(&self.client_to_server, text)
    }

    pub fn check_server_message(&self, text: &str) -> Result<(), String> {
        Self::check(&self.server_to_client, text)
    }
}

/// Every message the gateway sent to the simulator validates; returns how many were checked.
pub fn assert_gateway_messages_valid(h: &Harness) -> usize {
    let schema = AgentSchema::load();
    let mut n = 0;
    for conn in h.sim.log.connections() {
        for text in &conn.received {
            if let Err(e) = schema.check_client_message(text) {
                panic!("connection {}: {e}", conn.index);
            }
            n += 1;
        }
    }
    n
}

/// A raw TCP connection upgraded to the call's media WebSocket, for frames no well-behaved client sends.
pub async fn raw_media_socket(h: &Harness, call_id: &str) -> tokio::net::TcpStream {
    let sock = tokio::net::TcpStream::connect(h.gw.addr).await.expect("connect");
    raw_media_socket_on(h, call_id, sock).await
}

/// `raw_media_socket` over a connection the test opened itself (with its own socket options).
pub async fn raw_media_socket_on(h: &Harness, call_id: &str, mut sock: tokio::net::TcpStream) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let wss = admit(h, call_id).await;
    let path = wss
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, p)| format!("/{p}"))
        .expect("path");
    let upgrade = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        h.gw.addr
    );
    sock.write_all(upgrade.as_bytes()).await.expect("upgrade sent");
    let mut head = vec![0u8; 1024];
    let n = sock.read(&mut head).await.expect("upgrade answered");
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    sock
}

/// A server WebSocket text frame (unmasked).
pub fn server_text(payload: &str) -> Vec<u8> {
    let mut f = vec![0x81u8];
    match payload.len() {
        n @ 0..=125 => f.push(n as u8),
        n => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(payload.as_bytes());
    f
}

/// Reads a WebSocket upgrade request off `s` and answers 101: the server side of a hand-made peer.
pub async fn accept_ws_upgrade(s: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read_exact(&mut byte).await.is_ok() {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let key = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("sec-websocket-key: ")
                .or(l.strip_prefix("Sec-WebSocket-Key: "))
        })
        .unwrap_or_default()
        .trim()
        .to_string();
    let accept = actix_http::ws::hash_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        String::from_utf8_lossy(&accept)
    );
    s.write_all(answer.as_bytes()).await.is_ok()
}

/// Reads one client (masked) frame: its opcode and unmasked payload; `None` when the stream ends.
pub async fn read_client_frame(s: &mut tokio::net::TcpStream) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.ok()?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).await.ok()?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut mask = [0u8; 4];
    if head[1] & 0x80 != 0 {
        s.read_exact(&mut mask).await.ok()?;
    }
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    s.read_exact(&mut payload).await.ok()?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Some((head[0] & 0x0F, payload))
}

/// A client (masked) WebSocket frame.
pub fn masked_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let mut f = vec![first_byte];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// The close code of the first close frame in `bytes` read from the gateway, if any.
pub fn close_code(bytes: &[u8]) -> Option<u16> {
    let pos = bytes.iter().position(|b| *b == 0x88)?;
    Some(u16::from_be_bytes([*bytes.get(pos + 2)?, *bytes.get(pos + 3)?]))
}
