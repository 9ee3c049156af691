//! Admin endpoints (docs/admin-api.md), served on `admin.listen`. With `admin.token` set they need
//! `Authorization: Bearer <token>` (on both listeners); without one they are not on the carrier-facing
//! listener at all, so who reaches them is decided by where `admin.listen` is bound.

use super::reply::{bearer_token, error_json, read_db, same_secret};
use super::state::AppState;
use crate::call::view::CallView;
use crate::call::EndReason;
use crate::carriers::Carrier;
use crate::db;
use crate::registry::SlotView;
use crate::values::CallId;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::join_all;
use serde::Deserialize;

/// `None` when the request may see admin data, else the refusal to send: with a token, it must be given.
pub fn refuse_admin(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let token = state.config.admin.token.as_deref()?;
    let given = bearer_token(req).unwrap_or_default();
    (!same_secret(given.as_bytes(), token.as_bytes())).then(|| error_json(StatusCode::UNAUTHORIZED, "unauthorized"))
}

/// A call id from an admin's path, validated like a carrier's; a 400 naming what is wrong with it.
pub(super) fn call_id_of(path: web::Path<String>) -> Result<CallId, Box<HttpResponse>> {
    CallId::parse("call_id", &path.into_inner())
        .map_err(|e| Box::new(error_json(StatusCode::BAD_REQUEST, &e.to_string())))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `fleet`: every live instance's calls; anything else (or absent): this instance's.
    scope: Option<String>,
}

/// `GET /calls[?scope=fleet]`: totals and every call holding a slot, here or across the fleet.
pub async fn list_calls(req: HttpRequest, query: web::Query<ListQuery>, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_admin(&req, &state) {
        return refusal;
    }
    let (summary, slots) = state.registry.list();
    let views = join_all(slots.into_iter().map(live_view)).await;
    let local = serde_json::json!({
        "instance_id": state.instance,
        "max_concurrent_calls": summary.max_concurrent_calls,
        "active": summary.active,
        "available": summary.available,
        "draining": summary.draining,
        "calls": views,
    });
    match query.scope.as_deref() {
        Some("fleet") => super::fleet::fleet_calls(&req, &state, local).await,
        Some("local") | None => HttpResponse::Ok().json(local),
        Some(_) => error_json(StatusCode::BAD_REQUEST, "scope: fleet or local"),
    }
}

/// `GET /fleet`: the instances sharing the database and the fleet's cap.
pub async fn fleet(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_admin(&req, &state) {
        return refusal;
    }
    super::fleet::fleet_view(&state).await
}

async fn live_view(slot: SlotView) -> CallView {
    match slot.call {
        Some(call) => call
            .describe()
            .await
            .unwrap_or_else(|| CallView::reserved(&slot.info, slot.admitted_at)),
        None => CallView::reserved(&slot.info, slot.admitted_at),
    }
}

#[derive(Debug, Deserialize)]
pub struct CallQuery {
    /// Which attempt of the call id; the latest when absent.
    attempt: Option<i64>,
    /// Whose call of this id (`mcube`, `plivo`, `exotel`, `twilio`): needed when two carriers use the id.
    carrier: Option<String>,
}

/// The call an admin's request names: its id, its carrier (when named) and its live slot, if any.
pub(super) struct NamedCall {
    pub id: CallId,
    pub carrier: Option<Carrier>,
    pub live: Option<SlotView>,
}

/// The call an admin names (`/calls/{call_id}[?carrier=]`), once the admin check passes: 400 for an id or
/// carrier that is none.
fn named_call(
    req: &HttpRequest,
    state: &AppState,
    path: web::Path<String>,
    carrier: Option<&str>,
) -> Result<NamedCall, Box<HttpResponse>> {
    if let Some(refusal) = refuse_admin(req, state) {
        return Err(Box::new(refusal));
    }
    let id = call_id_of(path)?;
    find_call(state, id, carrier)
}

/// The call of `id` (and `carrier`, when named): 400 for a carrier that is none. Two carriers may each have
/// a live call of that id: then the admin must say whose (409 listing them), as acting on either could be
/// wrong.
pub(super) fn find_call(state: &AppState, id: CallId, carrier: Option<&str>) -> Result<NamedCall, Box<HttpResponse>> {
    let bad = |why: &str| Box::new(error_json(StatusCode::BAD_REQUEST, why));
    let carrier = carrier
        .map(|name| {
            Carrier::from_path(name).ok_or_else(|| bad(&format!("carrier: {}", crate::carriers::list::spoken())))
        })
        .transpose()?;
    let mut live = state.registry.find_id(&id);
    live.retain(|s| carrier.is_none_or(|c| s.info.carrier == c));
    if live.len() > 1 {
        let carriers: Vec<&str> = live.iter().map(|s| s.info.carrier.as_str()).collect();
        return Err(Box::new(super::reply::ambiguous_call(&carriers)));
    }
    Ok(NamedCall {
        id,
        carrier,
        live: live.pop(),
    })
}

/// `GET /calls/{call_id}[?carrier=][?attempt=N]`: the live call, or the stored one (the latest attempt
/// unless one is named) with its events and the list of every attempt of that call id; 404 if unknown.
pub async fn get_call(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CallQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let call = match named_call(&req, &state, path, query.carrier.as_deref()) {
        Ok(call) => call,
        Err(refused) => return *refused,
    };
    let attempt = query.attempt;
    if let Some(slot) = call.live.filter(|s| attempt.is_none_or(|a| a == s.info.attempt)) {
        return HttpResponse::Ok().json(live_view(slot).await);
    }
    let (id, carrier) = (call.id, call.carrier.map(Carrier::as_str));
    let read = move |c: &mut db::DbConnection| {
        let Some(stored) = db::get_call(c, id.as_str(), carrier, attempt)? else {
            return Ok(None);
        };
        let (recording, analyses) = db::after_call::of_call(c, &stored.row.call)?;
        Ok(Some((stored, recording, analyses)))
    };
    match read_db(&state.pool, read).await {
        Ok(Some((stored, recording, analyses))) => HttpResponse::Ok().json(
            CallView::of_row(stored.row)
                .with_events(stored.events)
                .with_attempts(stored.attempts)
                .with_after_call(recording, analyses),
        ),
        Ok(None) => error_json(StatusCode::NOT_FOUND, "unknown call"),
        Err(resp) => resp,
    }
}

#[derive(Debug, Deserialize)]
pub struct LimitBody {
    max_concurrent_calls: usize,
}

/// `PUT /calls/limit`: changes the cap at run time; live calls are untouched.
pub async fn set_limit(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_admin(&req, &state) {
        return refusal;
    }
    let limit: LimitBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(_) => return error_json(StatusCode::BAD_REQUEST, "body must be {\"max_concurrent_calls\": N}"),
    };
    if limit.max_concurrent_calls == 0 || limit.max_concurrent_calls > 1_000_000 {
        return error_json(StatusCode::BAD_REQUEST, "max_concurrent_calls must be 1..=1000000");
    }
    HttpResponse::Ok().json(state.registry.set_limit(limit.max_concurrent_calls))
}

/// `DELETE /calls/{call_id}[?carrier=]`: hangs a live call up (terminate to the carrier, close 1000 to
/// ElevenLabs, record written); in a fleet, a call live on another instance is hung up there; 404 if it is
/// not live.
pub async fn end_call(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CallQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let call = match named_call(&req, &state, path, query.carrier.as_deref()) {
        Ok(call) => call,
        Err(refused) => return *refused,
    };
    match call.live {
        Some(SlotView {
            call: Some(live), info, ..
        }) if live.end(EndReason::Admin) => {
            log::info!(
                "call_id={} carrier={} ended by an admin",
                call.id,
                info.carrier.as_str()
            );
            HttpResponse::Accepted().json(serde_json::json!({
                "call_id": call.id, "carrier": info.carrier, "status": "ending",
            }))
        }
        _ => super::fleet::forward_end(&req, &state, &call.id, call.carrier)
            .await
            .unwrap_or_else(|| error_json(StatusCode::NOT_FOUND, "not a live call")),
    }
}

/// `GET /capacity`: live limits × per-call cost (measured here when enough calls are live).
pub async fn capacity(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_admin(&req, &state) {
        return refusal;
    }
    let cap = state.registry.summary().max_concurrent_calls as u64;
    let measured = state.meter.lock().ok().and_then(|m| m.cost());
    let cost = measured.unwrap_or_else(|| crate::capacity::configured_profile(&state.config));
    let limits = crate::capacity::procfs::SystemLimits::read();
    HttpResponse::Ok().json(crate::capacity::report(&limits, &cost, cap))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_admin(&req, &state) {
        return refusal;
    }
    let s = state.registry.summary();
    let m = &state.metrics;
    m.calls_active.set(s.active as i64);
    m.calls_cap.set(s.max_concurrent_calls as i64);
    m.draining.set(i64::from(s.draining));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::time::Duration;

    async fn state(token: Option<&str>) -> web::Data<AppState> {
        let mut config = Config::default();
        config.admin.token = token.map(str::to_string);
        config.database.url = format!("sqlite://{}/wsapi-admin-unit/calls.db", std::env::temp_dir().display());
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new().expect("metrics"));
        let instance = crate::fleet::instance_id("unit", 0);
        let db = crate::gateway::start_database(&config, &metrics.registry, &instance)
            .await
            .expect("db");
        let registry = crate::registry::Registry::start(crate::registry::RegistrySetup {
            max_calls: 1,
            admission_deadline: Duration::from_secs(1),
            reconcile_every: Duration::from_secs(1),
            records: None,
        });
        let policy = crate::call::breaker::BreakerPolicy {
            failures: 1,
            window: Duration::from_secs(1),
            cooldown: Duration::from_secs(1),
        };
        web::Data::new(AppState {
            breaker: std::sync::Arc::new(crate::call::breaker::UpstreamBreaker::new(
                policy,
                policy,
                metrics.clone(),
            )),
            signed_nonces: crate::http::nonces::SharedNonces::new(Duration::from_secs(1)),
            feed: Default::default(),
            watchers: crate::http::seats::Watchers::new(&metrics),
            recorder: None,
            config: std::sync::Arc::new(config),
            registry,
            metrics,
            tokens: crate::carrier_token::CallTokens::new(None, Duration::from_secs(1)).expect("key"),
            public_url: String::new(),
            db: db.batcher,
            pool: db.pool,
            db_stats: db.stats,
            meter: Default::default(),
            access: Default::default(),
            routes: crate::routing::shared_routes(&Config::default()),
            instance,
            fleet: None,
        })
    }

    #[actix_rt::test]
    async fn without_a_token_nothing_is_asked() {
        // Without a token the admin routes exist on the admin listener only; there, any client it lets in
        // is answered (the listener's address is the control).
        let st = state(None).await;
        let remote = actix_web::test::TestRequest::default()
            .peer_addr("203.0.113.7:40000".parse().expect("addr"))
            .to_http_request();
        assert!(refuse_admin(&remote, &st).is_none());
    }

    #[actix_rt::test]
    async fn with_a_token_any_client_needs_it() {
        let st = state(Some("tok")).await;
        let remote = |auth: &str| {
            actix_web::test::TestRequest::default()
                .peer_addr("203.0.113.7:40000".parse().expect("addr"))
                .insert_header(("authorization", auth.to_string()))
                .to_http_request()
        };
        assert!(refuse_admin(&remote("Bearer tok"), &st).is_none());
        assert_eq!(
            refuse_admin(&remote("Bearer nope"), &st).map(|r| r.status()),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            refuse_admin(&remote("tok"), &st).map(|r| r.status()),
            Some(StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn same_secret_compares_whole_values() {
        assert!(super::same_secret(b"abc", b"abc"));
        assert!(!super::same_secret(b"abc", b"abd"));
        assert!(!super::same_secret(b"abc", b"abcd"));
    }
}
