//! Assembles the gateway: binds the listener, starts the registry, and serves the HTTP/WebSocket routes.

use crate::carrier_token::CallTokens;
use crate::config::Config;
use crate::http::{routes, AppState};
use crate::metrics::Counters;
use crate::registry::CallRegistry;
use actix::{Actor, Addr};
use actix_web::{dev::Server, web, App, HttpServer};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// A started gateway: where it listens and the handles tests and the demo use.
pub struct Gateway {
    pub addr: SocketAddr,
    /// `http://addr` for the refurl and admin endpoints.
    pub http_url: String,
    /// Base of the carrier's `wss_url`.
    pub public_url: String,
    pub registry: Addr<CallRegistry>,
    pub counters: Arc<Counters>,
    pub server: actix_web::dev::ServerHandle,
}

/// Binds and starts the gateway inside the current actix system. The returned `Server` must be polled
/// (spawned or awaited). `handle_signals`: let actix-web stop on SIGINT/SIGTERM.
pub fn start(config: Config, handle_signals: bool) -> std::io::Result<(Gateway, Server)> {
    let listener = TcpListener::bind(&config.server.listen)?;
    let addr = listener.local_addr()?;
    let public_url = if config.server.public_url.is_empty() {
        format!("ws://{addr}")
    } else {
        config.server.public_url.trim_end_matches('/').to_string()
    };
    let calls = &config.calls;
    let registry = CallRegistry::new(
        calls.max_concurrent_calls,
        Duration::from_millis(calls.admission_deadline_ms),
        Duration::from_millis(calls.reconcile_interval_ms),
    )
    .start();
    let counters = Arc::new(Counters::default());
    let state = web::Data::new(AppState {
        tokens: CallTokens::new(
            config.carrier.secret.as_deref(),
            Duration::from_secs(config.carrier.token_ttl_seconds),
        ),
        config: Arc::new(config.clone()),
        registry: registry.clone(),
        counters: counters.clone(),
        public_url: public_url.clone(),
    });
    let mut server = HttpServer::new(move || App::new().app_data(state.clone()).configure(routes))
        .listen(listener)?
        .backlog(4096)
        .max_connections(100_000)
        .shutdown_timeout(5);
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    if !handle_signals {
        server = server.disable_signals();
    }
    let server = server.run();
    let gateway = Gateway {
        addr,
        http_url: format!("http://{addr}"),
        public_url,
        registry,
        counters,
        server: server.handle(),
    };
    Ok((gateway, server))
}
