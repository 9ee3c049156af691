//! What every carrier's webhook shares at the edge (each carrier's own endpoint, in `crate::carriers`,
//! answers in its dialect): the access rules, reading the call, handing it to admission
//! (`crate::admission`, which decides) and the refusals in HTTP. The media sockets are `media`'s.

use super::access;
use super::reply::{bearer_token, error_json, same_secret};
use super::state::AppState;
use crate::call::CallInfo;
use crate::carriers::{CallKey, Carrier};
use crate::db::models::{new_attempt, CallRecord, DbWrite};
use crate::registry::Refusal;
use crate::supervise::{self, Part};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub(crate) use crate::admission::AdmissionRefused;
use crate::admission::RETRY_AFTER;

pub(crate) fn refused(refusal: Refusal) -> HttpResponse {
    refused_for(refusal, RETRY_AFTER)
}

/// `refused`, asking the carrier to come back after `retry_after` (in whole seconds, at least one).
pub(crate) fn refused_for(refusal: Refusal, retry_after: std::time::Duration) -> HttpResponse {
    let status = match refusal {
        Refusal::NotAdmitted | Refusal::Unrouted => StatusCode::NOT_FOUND,
        Refusal::AlreadyConnected | Refusal::Duplicate => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut resp = error_json(status, refusal.as_str());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        resp.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, seconds.into());
    }
    resp
}

/// A carrier webhook's call, read at the edge: the `CallInfo` to admit, or the 400 that names the field
/// out of bounds (counted).
pub(crate) fn webhook_call(
    parsed: Result<crate::carriers::WebhookCall, crate::values::Invalid>,
    carrier: Carrier,
    state: &AppState,
) -> Result<CallInfo, Box<HttpResponse>> {
    let call = parsed.map_err(|invalid| {
        log::warn!("carrier: {} webhook refused: {invalid}", carrier.as_str());
        state.metrics.unread.invalid(invalid.field);
        Box::new(HttpResponse::BadRequest().json(serde_json::json!({
            "error": "invalid_field", "field": invalid.field, "reason": invalid.reason,
        })))
    })?;
    Ok(CallInfo {
        call_id: call.call_id,
        attempt: new_attempt(),
        from: call.from,
        to: call.to,
        direction: call.direction,
        carrier,
        route: None,
    })
}

/// An admitted call, for its carrier's webhook to answer with.
pub(crate) struct AdmittedCall {
    /// The media socket's URL with the call and its token in it.
    pub wss_url: String,
    /// The media socket's URL with neither (`…/ws/{carrier}`, and in a fleet `/{instance}`), for a carrier
    /// that passes them otherwise.
    pub stream_base: String,
    pub call_id: crate::values::CallId,
    pub token: String,
}

/// Admits a call from any carrier's webhook (`admission::Gate::admit`): admitted, the URLs the carrier
/// opens its media socket at.
pub(crate) fn admit_call(info: CallInfo, state: &AppState) -> Result<AdmittedCall, AdmissionRefused> {
    let admitted = state.gate().admit(info)?;
    let key = admitted.key;
    Ok(AdmittedCall {
        wss_url: wss_url(state, &key, &admitted.token),
        stream_base: stream_base(state, key.carrier),
        call_id: key.id,
        token: admitted.token,
    })
}

/// `path` on this gateway as a carrier's webhook reaches it: `server.public_url` over HTTP(S).
pub(crate) fn public_http_url(state: &AppState, path: &str) -> String {
    let base = state
        .public_url
        .replacen("wss://", "https://", 1)
        .replacen("ws://", "http://", 1);
    format!("{base}{path}")
}

/// The URL a carrier signs a webhook request with: as `configured` at the carrier (which may carry its
/// own query), or `server.public_url` over HTTP(S) + `path` with the request's query as the carrier sent it.
pub(crate) fn signed_url(req: &HttpRequest, state: &AppState, configured: &str, path: &str) -> String {
    let base = match configured {
        "" => public_http_url(state, path),
        url => url.to_string(),
    };
    match req.query_string() {
        "" => base,
        query if !base.contains('?') => format!("{base}?{query}"),
        _ => base,
    }
}

/// Where the carrier opens the call's media socket. In a fleet the URL names this instance, so the
/// balancer in front of every instance sends the socket here (docs/fleet.md).
fn wss_url(state: &AppState, call: &CallKey, token: &str) -> String {
    let base = format!(
        "{}/ws/{}/{}?token={token}",
        state.public_url,
        call.carrier.as_str(),
        call.id
    );
    match state.fleet {
        Some(_) => format!("{base}&instance={}", state.instance),
        None => base,
    }
}

/// The media socket's URL with neither call nor token (`…/ws/{carrier}`), for a carrier that passes them
/// in its stream's first message (Twilio, which allows no query). In a fleet a path segment names this
/// instance, for the balancer to route on.
fn stream_base(state: &AppState, carrier: Carrier) -> String {
    let base = format!("{}/ws/{}", state.public_url, carrier.as_str());
    match state.fleet {
        Some(_) => format!("{base}/{}", state.instance),
        None => base,
    }
}

pub(crate) fn save(state: &AppState, write: DbWrite) {
    state.gate().save(write);
}

/// The carrier's own credentials (its section's `authorized`: Exotel's Basic auth) on its webhook or
/// media socket: missing or wrong gets 401 and no record.
pub(crate) fn refuse_uncredentialed(carrier: Carrier, req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    let section = state.config.carriers.section(carrier.as_str());
    if section.is_none_or(|s| s.authorized(authorization)) {
        return None;
    }
    log::warn!(
        "carrier: {} request without valid credentials refused (401)",
        carrier.as_str()
    );
    state.metrics.traffic.refused("unauthorized", carrier.as_str());
    Some(error_json(StatusCode::UNAUTHORIZED, "unauthorized"))
}

/// The access rules: a source address not allowed, or a browser Origin not allowed, gets 403. Behind a
/// trusted proxy, the source is the address it forwarded.
pub(crate) fn refuse_source(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let forwarded = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok());
    let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
    let peer = req.peer_addr().map(|a| a.ip());
    // A check that panics refuses: never open by accident.
    let (client, verdict) = supervise::guard(Part::Access, || {
        #[cfg(feature = "fault-injection")]
        supervise::fault::point(Part::Access, &req.uri().to_string());
        access::judge(&state.access, peer, forwarded, origin)
    })
    .unwrap_or_else(|panic| {
        log::error!("carrier: {panic}; the request is refused");
        (peer, Some("internal_error"))
    });
    let reason = verdict?;
    log::warn!("carrier: request from {client:?} refused: {reason}");
    state.metrics.traffic.refused(reason, carrier_of_path(req.path()));
    let status = match reason {
        "address_not_allowed" | "origin_not_allowed" => StatusCode::FORBIDDEN,
        _ => StatusCode::SERVICE_UNAVAILABLE, // our fault, not the caller's: it may try again
    };
    Some(error_json(status, reason))
}

/// With `WSAPI__CARRIER__STATIC_TOKEN` set, the carrier must present it: `Authorization: Bearer <t>`,
/// `X-Carrier-Token: <t>` or `?carrier_token=<t>`. Missing or wrong gets 401, and no record is written: an
/// unauthenticated client must not be able to add rows to the call history.
pub(crate) fn refuse_carrier_token(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let expected = state.config.carrier.static_token.as_deref()?;
    let query = web::Query::<CarrierTokenQuery>::from_query(req.query_string()).ok();
    let given = bearer_token(req)
        .or_else(|| req.headers().get("x-carrier-token").and_then(|v| v.to_str().ok()))
        .or(query.as_ref().and_then(|q| q.carrier_token.as_deref()))
        .unwrap_or_default();
    if same_secret(given.as_bytes(), expected.as_bytes()) {
        return None;
    }
    // Which carrier's webhook, and how to fix it: Plivo, Twilio and Exotel cannot send a header, so their
    // URL at the carrier must carry `?carrier_token=`.
    let path = req.path();
    let carrier = carrier_of_path(path);
    log::warn!(
        "carrier: {} {path} ({carrier}) refused (401): no carrier token; with WSAPI__CARRIER__STATIC_TOKEN set, \
         the URL configured at the carrier must carry ?carrier_token=<token> (or send Authorization: Bearer)",
        req.method()
    );
    state.metrics.traffic.refused("unauthorized", carrier);
    Some(error_json(StatusCode::UNAUTHORIZED, "unauthorized"))
}

/// Whose endpoint a request reached, by its path (`/plivo/answer`, `/ws/plivo/…`): for the log and the
/// refusal counts of requests refused before their carrier is read.
pub(crate) fn carrier_of_path(path: &str) -> &'static str {
    let first = path.trim_start_matches("/ws").trim_start_matches('/');
    Carrier::ALL
        .iter()
        .find(|c| first.starts_with(c.as_str()))
        .map_or("unknown", |c| c.as_str())
}

#[derive(Debug, Deserialize)]
struct CarrierTokenQuery {
    #[serde(default)]
    carrier_token: Option<String>,
}

/// A call refused at the refurl: a `rejected` record of its own attempt, with the reason.
pub(crate) fn rejected_record(state: &AppState, info: &CallInfo, reason: &str) -> CallRecord {
    state.gate().rejected_record(info, reason)
}
