//! The HTTP surface, on two listeners over one shared `AppState`: the carrier-facing one (refurl webhook,
//! media WebSocket, health) and the admin one (`/calls`, `/metrics`, `/capacity`, health). The admin
//! endpoints are on the carrier-facing listener too only when an admin token guards them: a proxy in
//! front of the carrier port connects from loopback, so "loopback only" would publish them.
pub mod access;
pub mod admin;
pub mod carrier;
pub mod health;

use crate::carrier_token::CallTokens;
use crate::config::Config;
use crate::db::batcher::DbBatcher;
use crate::db::writer::DbStats;
use crate::db::DbPool;
use crate::metrics::Metrics;
use crate::registry::{CallRegistry, Slots};
use actix::Addr;
use actix_web::{web, HttpResponse};
use std::sync::Arc;

/// What every handler can reach.
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Addr<CallRegistry>,
    /// The registry's table, for admitting and claiming without a mailbox round trip.
    pub slots: Slots,
    pub metrics: Arc<Metrics>,
    pub tokens: CallTokens,
    /// Base of the `wss_url` handed to the carrier (no trailing slash).
    pub public_url: String,
    /// Where records are sent (never awaited).
    pub db: Addr<DbBatcher>,
    /// For the admin endpoints' reads.
    pub pool: DbPool,
    pub db_stats: Arc<DbStats>,
    /// Who may reach the carrier endpoints (reloaded on SIGHUP).
    pub access: access::SharedAccess,
    /// This gateway's measured per-call cost.
    pub meter: Arc<std::sync::Mutex<crate::capacity::CostMeter>>,
}

/// The carrier-facing listener's routes; with `admin_too` (an admin token is set) the admin routes as well.
pub fn carrier_routes(cfg: &mut web::ServiceConfig, admin_too: bool) {
    cfg.route("/mcube/call", web::post().to(carrier::refurl))
        .route("/ws/mcube/{call_id}", web::get().to(carrier::media_socket));
    if admin_too {
        admin_routes(cfg);
    } else {
        health_routes(cfg);
    }
}

/// The admin listener's routes (health included).
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/calls", web::get().to(admin::list_calls))
        .route("/calls/history", web::get().to(admin::call_history))
        .route("/calls/limit", web::put().to(admin::set_limit))
        .route("/calls/{call_id}", web::get().to(admin::get_call))
        .route("/calls/{call_id}", web::delete().to(admin::end_call))
        .route("/metrics", web::get().to(admin::metrics))
        .route("/capacity", web::get().to(admin::capacity));
    health_routes(cfg);
}

/// Probes, open on both listeners.
fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
}

/// Constant-time equality, so a wrong token's timing says nothing about the right one.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &actix_web::HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// `{"error": "..."}` with a status.
pub fn error_json(status: actix_web::http::StatusCode, error: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": error }))
}
