//! The ElevenLabs agent simulator: a real Agents WebSocket server (docs/getting-started.md) speaking the protocol of
//! tests/fixtures/elevenlabs-agent.asyncapi.yaml. It expects the initiation first, announces its formats, pings and
//! expects pongs, speaks (tones or an echo of the caller), and can interrupt, transcribe, call tools, drop,
//! fail or end the conversation — all scripted, so the gateway can be tested and demonstrated without
//! ElevenLabs.

use actix_web::{dev::Server, web, App, HttpRequest, HttpResponse, HttpServer};
use actix_web_actors::ws;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub mod conversations;
mod script;
mod session;
pub use script::*;

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
    /// The REST API's base (`elevenlabs.api_url`): conversation details for the reconciler.
    pub api_url: String,
    pub log: Arc<SimLog>,
    pub server: actix_web::dev::ServerHandle,
}

/// Starts the simulator on `listen` inside the current actix system; poll the returned `Server`.
pub fn start(listen: &str, script: AgentScript) -> std::io::Result<(AgentSimulator, Server)> {
    start_with(listen, script, None)
}

/// A certificate chain and its key (PEM files) to serve TLS with, and the host name they are for.
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
    /// The name its URLs use (`localhost` for a test CA's certificate).
    pub host: String,
}

/// The simulator serving `wss://` and `https://` with `tls`, as ElevenLabs does.
pub fn start_tls(listen: &str, script: AgentScript, tls: &TlsFiles) -> std::io::Result<(AgentSimulator, Server)> {
    start_with(listen, script, Some(tls))
}

fn server_tls(tls: &TlsFiles) -> std::io::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |e: rustls::pki_types::pem::Error| std::io::Error::other(format!("TLS files: {e}"));
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(bad)?;
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(std::io::Error::other)
}

fn start_with(listen: &str, script: AgentScript, tls: Option<&TlsFiles>) -> std::io::Result<(AgentSimulator, Server)> {
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    let log = Arc::new(SimLog::default());
    let (ws, http, host) = match tls {
        Some(t) => ("wss", "https", format!("{}:{}", t.host, addr.port())),
        None => ("ws", "http", addr.to_string()),
    };
    let url = format!("{ws}://{host}/v1/convai/conversation");
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
            .route("/v1/convai/conversations/{id}", web::get().to(conversations::details))
    });
    let server = match tls {
        Some(t) => server.listen_rustls_0_23(listener, server_tls(t)?)?,
        None => server.listen(listener)?,
    };
    let server = server.workers(1).disable_signals().shutdown_timeout(1).run();
    let sim = AgentSimulator {
        addr,
        signed_url_endpoint: format!("{http}://{host}/v1/convai/conversation/get-signed-url"),
        api_url: format!("{http}://{host}"),
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
    let agent_id = agent_of(req.query_string());
    if state.script.unknown_agents.contains(&agent_id) {
        state.log.upgrades_refused.fetch_add(1, Ordering::Relaxed);
        return Ok(HttpResponse::NotFound().json(serde_json::json!({"detail": "agent not found"})));
    }
    if attempt < state.script.refuse_first {
        state.log.upgrades_refused.fetch_add(1, Ordering::Relaxed);
        let status = actix_web::http::StatusCode::from_u16(state.script.refuse_status)
            .unwrap_or(actix_web::http::StatusCode::SERVICE_UNAVAILABLE);
        return Ok(HttpResponse::build(status).finish());
    }
    let key = api_key(&req);
    if state.script.require_api_key.is_some() && key != state.script.require_api_key {
        let signed = req.query_string().contains("conversation_signature=");
        if !signed {
            state.log.upgrades_refused.fetch_add(1, Ordering::Relaxed);
            return Ok(HttpResponse::Unauthorized().finish());
        }
    }
    let index = state.log.open(key, req.query_string().to_string(), agent_id.clone());
    if state.script.upgrade_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(state.script.upgrade_delay_ms)).await;
    }
    let needs = state
        .script
        .required_variables
        .get(&agent_id)
        .cloned()
        .unwrap_or_default();
    let session = AgentSession::new(index, state.script.clone(), state.log.clone()).needing(needs);
    ws::WsResponseBuilder::new(session, &req, payload)
        .frame_size(4 * 1024 * 1024)
        .start()
}

use session::AgentSession;

/// The `agent_id` an upgrade's query names ('' when none).
fn agent_of(query: &str) -> String {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs
        .into_iter()
        .find(|(k, _)| k == "agent_id")
        .map(|(_, v)| v)
        .unwrap_or_default()
}
