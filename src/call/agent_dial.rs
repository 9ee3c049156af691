//! Dialling the ElevenLabs agent: the one awc client per worker thread (no connection limit of its own,
//! TCP_USER_TIMEOUT on every socket, TLS with the public roots plus `elevenlabs.ca_file`, HTTP/1.1 only),
//! the signed-URL request, the upgrade within the connect timeout, and why a dial failed in words an
//! operator can act on. `ElevenLabsLeg` runs the connection once it is up.

use super::failure::FailureScope;
use crate::config::{ElevenLabsAuth, ElevenLabsConfig};
use actix_codec::Framed;
use awc::ws::{CloseCode, Codec, Message as WsMessage};
use awc::BoxedSocket;
use futures_util::stream::StreamExt;
use futures_util::SinkExt as _;
use std::cell::RefCell;
use std::time::Duration;

/// An upgraded connection to the agent.
pub type AgentSocket = Framed<BoxedSocket, Codec>;

/// Why the agent could not be reached. Every one of them means no conversation started, so each counts
/// toward a breaker: the agent's when ElevenLabs says the agent is the problem (`scope`), else the
/// account's.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("no WebSocket upgrade within {0:?}")]
    Timeout(Duration),
    #[error("connect failed: {0}")]
    Connect(String),
    #[error("upgrade refused with HTTP {0}")]
    Refused(u16),
    #[error("signed URL request refused with HTTP {0}")]
    SignedUrlRefused(u16),
    #[error("signed URL request failed: {0}")]
    SignedUrl(String),
}

impl DialError {
    /// Whose failure it is: an agent ElevenLabs does not know (404) is that agent's; a bad key, a quota,
    /// an outage or the network is the account's.
    pub fn scope(&self) -> FailureScope {
        match self {
            DialError::Refused(status) | DialError::SignedUrlRefused(status) => FailureScope::of_status(*status),
            _ => FailureScope::Account,
        }
    }
}

/// What an operator should read in a TLS failure, from rustls' wording (the certificate checks are the
/// usual cause when a private deployment or an inspecting proxy is in the way).
fn explained(error: String) -> String {
    let reasons = [
        (
            ["UnknownIssuer", "unknown issuer"],
            "the certificate is not trusted (add its CA to elevenlabs.ca_file)",
        ),
        (
            ["NotValidForName", "not valid for name"],
            "the certificate does not name this host",
        ),
        (["Expired", "expired"], "the certificate has expired"),
    ];
    match reasons
        .iter()
        .find(|(words, _)| words.iter().any(|w| error.contains(w)))
    {
        Some((_, why)) => format!("TLS: {why}: {error}"),
        None => error,
    }
}

/// How long a closing leg waits for the agent's answering close frame.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(2);

thread_local! {
    /// One client per worker thread (awc clients are not `Send`); its connector has no limit of its own
    /// because the registry's cap is the limit, and awc's default of 100 would stall call 101.
    static CLIENT: RefCell<Option<awc::Client>> = const { RefCell::new(None) };
}

fn agent_client(cfg: &ElevenLabsConfig) -> awc::Client {
    let timeout = cfg.connect_timeout();
    CLIENT.with(|c| {
        c.borrow_mut()
            .get_or_insert_with(|| {
                let tcp = BoundedSendConnector {
                    inner: actix_tls::connect::ConnectorService::default(),
                    send_timeout_ms: cfg.send_timeout_ms,
                };
                let connector = awc::Connector::new()
                    .connector(tcp)
                    .limit(0)
                    .timeout(timeout)
                    // First, as it replaces the TLS settings with awc's defaults.
                    .max_http_version(awc::http::Version::HTTP_11)
                    .rustls_0_23(tls_config(&cfg.extra_roots));
                awc::Client::builder().connector(connector).timeout(timeout).finish()
            })
            .clone()
    })
}

/// The public roots plus `elevenlabs.ca_file`'s; HTTP/1.1 only, as a WebSocket cannot ride an h2
/// connection that the server may offer over TLS.
pub(crate) fn tls_config(
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = actix_tls::connect::rustls_0_23::webpki_roots_cert_store();
    let (added, refused) = roots.add_parsable_certificates(extra_roots.iter().cloned());
    if refused > 0 {
        log::warn!("elevenlabs.ca_file: {refused} certificate(s) unusable as trust anchors ({added} added)");
    }
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    std::sync::Arc::new(config)
}

/// awc's TCP connector with TCP_NODELAY and TCP_USER_TIMEOUT set on every socket it opens: an agent that stops reading what
/// we send is dropped by the kernel after `send_timeout_ms`, however much actix would otherwise buffer for it.
#[derive(Clone)]
struct BoundedSendConnector {
    inner: actix_tls::connect::ConnectorService,
    send_timeout_ms: u64,
}

type TcpConnection = actix_tls::connect::Connection<awc::http::Uri, actix_rt::net::TcpStream>;

impl actix_service::Service<actix_tls::connect::ConnectInfo<awc::http::Uri>> for BoundedSendConnector {
    type Response = TcpConnection;
    type Error = actix_tls::connect::ConnectError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<TcpConnection, Self::Error>>;

    fn poll_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        actix_service::Service::<actix_tls::connect::ConnectInfo<awc::http::Uri>>::poll_ready(&self.inner, cx)
    }

    fn call(&self, req: actix_tls::connect::ConnectInfo<awc::http::Uri>) -> Self::Future {
        let connecting = self.inner.call(req);
        let ms = self.send_timeout_ms;
        Box::pin(async move {
            let conn = connecting.await?;
            crate::net::send_at_once(conn.io_ref(), "elevenlabs");
            if let Err(e) = crate::net::set_send_timeout(conn.io_ref(), ms) {
                log::warn!("elevenlabs: TCP_USER_TIMEOUT not set: {e}");
            }
            Ok(conn)
        })
    }
}

/// Closes a connection no call will use (its call ended, or gave up on it, while it was being dialled) with
/// 1000, and waits (bounded) for the agent's answering close.
pub fn close_unused(mut socket: AgentSocket) {
    actix_rt::spawn(async move {
        if socket
            .send(WsMessage::Close(Some(CloseCode::Normal.into())))
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout(CLOSE_GRACE, socket.next()).await;
        }
    });
}

fn with_agent_id(url: &str, agent_id: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}agent_id={agent_id}")
}

/// Dials the agent and completes the upgrade, within the connect timeout.
pub async fn dial(cfg: &ElevenLabsConfig, agent_id: &str) -> Result<AgentSocket, DialError> {
    let timeout = cfg.connect_timeout();
    let client = agent_client(cfg);
    let url = match cfg.auth {
        ElevenLabsAuth::SignedUrl => fetch_signed_url(&client, cfg, agent_id).await?,
        _ => with_agent_id(&cfg.url, agent_id),
    };
    let mut req = client.ws(url).max_frame_size(cfg.max_frame_bytes);
    if let (ElevenLabsAuth::Header, Some(key)) = (cfg.auth, cfg.api_key.as_deref()) {
        req = req.set_header("xi-api-key", key);
    }
    match tokio::time::timeout(timeout, req.connect()).await {
        Err(_) => Err(DialError::Timeout(timeout)),
        Ok(Err(awc::error::WsClientError::InvalidResponseStatus(status))) => Err(DialError::Refused(status.as_u16())),
        Ok(Err(e)) => Err(DialError::Connect(explained(e.to_string()))),
        Ok(Ok((_, socket))) => Ok(socket),
    }
}

/// `GET get-signed-url?agent_id=…` with the API key; the answer's `signed_url` is valid for 15 minutes.
async fn fetch_signed_url(client: &awc::Client, cfg: &ElevenLabsConfig, agent_id: &str) -> Result<String, DialError> {
    #[derive(serde::Deserialize)]
    struct Signed {
        signed_url: String,
    }
    let key = cfg.api_key.as_deref().unwrap_or_default();
    let mut resp = client
        .get(with_agent_id(&cfg.signed_url_endpoint, agent_id))
        .insert_header(("xi-api-key", key))
        .send()
        .await
        .map_err(|e| DialError::SignedUrl(explained(e.to_string())))?;
    if !resp.status().is_success() {
        return Err(DialError::SignedUrlRefused(resp.status().as_u16()));
    }
    let signed: Signed = resp
        .json()
        .await
        .map_err(|e| DialError::SignedUrl(format!("answer unreadable: {e}")))?;
    // The URL we are about to dial comes from the wire: a WebSocket URL of visible ASCII, bounded.
    let url = signed.signed_url;
    let lower = url.to_ascii_lowercase();
    let dialable = (lower.starts_with("wss://") || lower.starts_with("ws://"))
        && url.len() <= 4096
        && url.bytes().all(|b| b.is_ascii_graphic());
    if !dialable {
        return Err(DialError::SignedUrl(format!(
            "answer is not a WebSocket URL: {}",
            crate::values::shown(&url)
        )));
    }
    Ok(url)
}
