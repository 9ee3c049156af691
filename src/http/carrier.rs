//! Carrier-facing endpoints (interface.md §3): the Mcube refurl webhook, which admits or refuses a call
//! before anything else happens, and the media WebSocket, which is refused before the upgrade (no 101) when
//! the token is bad or the call holds no slot.

use super::{bearer_token, error_json, same_secret, AppState};
use crate::call::actor::{CallActor, CallDeps};
use crate::call::mcube_leg::McubeLeg;
use crate::call::messages::{AttachCarrier, EndCall};
use crate::call::{CallInfo, EndReason};
use crate::db::batcher::Save;
use crate::db::models::{now_ms, CallRecord, DbWrite, StatusReport};
use crate::protocol::loose;
use crate::registry::Refusal;
use crate::ws_frames::FrameGuard;
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use futures_util::future::ready;
use futures_util::StreamExt as _;
use serde::Deserialize;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Seconds a refused carrier is asked to wait before trying again.
const RETRY_AFTER_SECONDS: &str = "1";

/// The refurl body, read tolerantly: camelCase or snake_case, numbers or strings.
#[derive(Debug, Default, Deserialize)]
struct RefurlBody {
    #[serde(
        default,
        alias = "callId",
        alias = "callid",
        alias = "CallId",
        deserialize_with = "loose::opt_string"
    )]
    call_id: Option<String>,
    #[serde(
        default,
        alias = "fromNumber",
        alias = "from_number",
        deserialize_with = "loose::opt_string"
    )]
    from: Option<String>,
    #[serde(
        default,
        alias = "toNumber",
        alias = "to_number",
        deserialize_with = "loose::opt_string"
    )]
    to: Option<String>,
    #[serde(default, alias = "callDirection", alias = "call_direction")]
    direction: Option<String>,
    #[serde(default, alias = "dialStatus", alias = "dial_status")]
    dial_status: Option<String>,
    #[serde(default, alias = "endTime", alias = "end_time")]
    end_time: Option<serde_json::Value>,
    #[serde(default, alias = "filename", alias = "recordingUrl", alias = "recording_url")]
    recording: Option<String>,
}

fn refused(refusal: Refusal) -> HttpResponse {
    let status = match refusal {
        Refusal::NotAdmitted => StatusCode::NOT_FOUND,
        Refusal::AlreadyConnected => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut resp = error_json(status, refusal.as_str());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        if let Ok(v) = RETRY_AFTER_SECONDS.parse() {
            resp.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
        }
    }
    resp
}

/// Call ids end up in URLs and logs: keep them to a safe alphabet and length.
fn valid_call_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// `POST /mcube/call`: admission (`dialStatus` CONNECTING or absent) or a hang-up/status report.
pub async fn refurl(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_source(&req, &state).or_else(|| refuse_carrier_token(&req, &state)) {
        return refusal;
    }
    let timer = state.metrics.refurl_seconds.start_timer();
    let resp = answer_refurl(body, &state).await;
    timer.observe_duration();
    resp
}

async fn answer_refurl(body: web::Bytes, state: &web::Data<AppState>) -> HttpResponse {
    let parsed: RefurlBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            log::warn!("carrier: refurl body is not the expected JSON: {e}");
            return error_json(StatusCode::BAD_REQUEST, "body must be a JSON object with callId");
        }
    };
    let Some(call_id) = parsed.call_id.filter(|id| valid_call_id(id)) else {
        return error_json(StatusCode::BAD_REQUEST, "missing or invalid callId");
    };
    let status = parsed.dial_status.as_deref().unwrap_or("CONNECTING");
    if !status.eq_ignore_ascii_case("connecting") || parsed.end_time.is_some() {
        log::info!("call_id={call_id} carrier status report: dialStatus={status}");
        let report = StatusReport {
            call_id,
            dial_status: status.to_string(),
            recording_url: parsed.recording,
            at_ms: now_ms(),
        };
        state.db.do_send(Save {
            writes: vec![DbWrite::Status(report)],
        });
        return HttpResponse::Ok().json(serde_json::json!({"status": "ok"}));
    }
    let info = CallInfo {
        call_id: call_id.clone(),
        from: parsed.from.unwrap_or_default(),
        to: parsed.to.unwrap_or_default(),
        direction: parsed.direction.unwrap_or_else(|| "inbound".into()),
    };
    let info_copy = info.clone();
    match state.slots.admit(info) {
        Ok(()) => {
            state.metrics.calls_admitted.inc();
            let token = state.tokens.issue(&call_id);
            let wss_url = format!("{}/ws/mcube/{call_id}?token={token}", state.public_url);
            let show = state.config.log.show_numbers;
            log::info!(
                "call_id={call_id} admitted from={} to={}",
                mask_number(&info_copy.from, show),
                mask_number(&info_copy.to, show)
            );
            HttpResponse::Ok().json(serde_json::json!({ "wss_url": wss_url }))
        }
        Err(refusal) => {
            log::info!("call_id={call_id} refused: {}", refusal.as_str());
            record_refusal(state, &info_copy, refusal.as_str());
            refused(refusal)
        }
    }
}

/// The access rules: a source address not allowed, or a browser Origin not allowed, gets 403.
fn refuse_source(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let peer = req.peer_addr().map(|a| a.ip());
    let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
    let reason = state.access.read().ok()?.refuse(peer, origin)?;
    log::warn!("carrier: request from {peer:?} refused: {reason}");
    state.metrics.calls_refused.with_label_values(&[reason]).inc();
    Some(error_json(StatusCode::FORBIDDEN, reason))
}

/// Upgrades to a WebSocket served by the actor `make` builds, behind the plumbing every socket we serve
/// shares: the frame guard (frames declaring more than `max_frame` are refused at their header, before
/// their payload is buffered; `make` gets the flag it raises) and an orderly end of a stream cut short.
pub fn start_guarded_socket<A>(
    make: impl FnOnce(Arc<AtomicBool>) -> A,
    req: &HttpRequest,
    payload: web::Payload,
    max_frame: usize,
) -> Result<(actix::Addr<A>, HttpResponse), actix_web::Error>
where
    A: actix::Actor<Context = ws::WebsocketContext<A>> + actix::StreamHandler<Result<ws::Message, ws::ProtocolError>>,
{
    // A peer that sends its last frames and a close, then shuts the socket at once, makes the HTTP layer
    // report "incomplete payload"; actix-web-actors would return that error before decoding the frames it
    // already holds, losing the caller's last audio and the close. Ending the stream there instead keeps them.
    let payload = payload.take_while(|chunk| ready(!matches!(chunk, Err(PayloadError::Incomplete(_)))));
    let oversized = Arc::new(AtomicBool::new(false));
    let payload = FrameGuard::new(payload, max_frame, oversized.clone());
    ws::WsResponseBuilder::new(make(oversized), req, payload)
        .frame_size(max_frame)
        .start_with_addr()
}

/// With `WSAPI__CARRIER__STATIC_TOKEN` set, the carrier must present it: `Authorization: Bearer <t>`,
/// `X-Carrier-Token: <t>` or `?carrier_token=<t>`. Missing or wrong gets 401, and no record is written: an
/// unauthenticated client must not be able to add rows to the call history.
fn refuse_carrier_token(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let expected = state.config.carrier.static_token.as_deref()?;
    let query = web::Query::<CarrierTokenQuery>::from_query(req.query_string()).ok();
    let given = bearer_token(req)
        .or_else(|| req.headers().get("x-carrier-token").and_then(|v| v.to_str().ok()))
        .or(query.as_ref().and_then(|q| q.carrier_token.as_deref()))
        .unwrap_or_default();
    if same_secret(given.as_bytes(), expected.as_bytes()) {
        return None;
    }
    log::warn!("carrier: request without the carrier token refused (401)");
    state.metrics.calls_refused.with_label_values(&["unauthorized"]).inc();
    Some(error_json(StatusCode::UNAUTHORIZED, "unauthorized"))
}

#[derive(Debug, Deserialize)]
struct CarrierTokenQuery {
    #[serde(default)]
    carrier_token: Option<String>,
}

/// Phone numbers in logs: all but the last 4 digits masked unless `log.show_numbers`.
pub fn mask_number(number: &str, show: bool) -> String {
    if show {
        return number.to_string();
    }
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    number
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen + 4 > digits {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// A refused call leaves a `rejected` row with its reason (never over a real call's row).
fn record_refusal(state: &AppState, info: &CallInfo, reason: &str) {
    state.metrics.calls_refused.with_label_values(&[reason]).inc();
    let mut rec = CallRecord::new(&info.call_id, "rejected", now_ms());
    rec.direction = info.direction.clone();
    rec.from_number = info.from.clone();
    rec.to_number = info.to.clone();
    rec.agent_id = state.config.elevenlabs.agent_id.clone();
    rec.end_reason = Some(reason.to_string());
    state.db.do_send(Save {
        writes: vec![DbWrite::Call(Box::new(rec))],
    });
}

#[derive(Debug, Deserialize)]
pub struct MediaQuery {
    #[serde(default)]
    token: Option<String>,
}

/// `GET /ws/mcube/{call_id}`: token, then slot, then the upgrade; the call actor starts only after both.
pub async fn media_socket(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
    query: web::Query<MediaQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let unbound = !state.config.carrier.require_token;
    let refusal = refuse_source(&req, &state).or_else(|| unbound.then(|| refuse_carrier_token(&req, &state))?);
    if let Some(refusal) = refusal {
        return refusal;
    }
    let call_id = path.into_inner();
    let cfg = &state.config;
    if !valid_call_id(&call_id) {
        return error_json(StatusCode::BAD_REQUEST, "invalid call id");
    }
    let token_ok = query.token.as_deref().is_some_and(|t| state.tokens.verify(&call_id, t));
    let bare = CallInfo {
        call_id: call_id.clone(),
        ..CallInfo::default()
    };
    if cfg.carrier.require_token && !token_ok {
        log::warn!("call_id={call_id} carrier: WebSocket refused, missing or bad token");
        record_refusal(&state, &bare, "unauthorized");
        return error_json(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Err(e) = ws::handshake(&req) {
        return HttpResponse::from_error(e);
    }
    let info = match state.slots.claim(&call_id, !cfg.carrier.require_token) {
        Ok(info) => info,
        Err(refusal) => {
            log::info!("call_id={call_id} carrier: WebSocket refused: {}", refusal.as_str());
            record_refusal(&state, &bare, refusal.as_str());
            return refused(refusal);
        }
    };
    let deps = CallDeps {
        config: cfg.clone(),
        slots: state.slots.clone(),
        metrics: state.metrics.clone(),
        db: state.db.clone(),
    };
    let call = CallActor::launch(info, deps);
    let leg = McubeLeg::new(
        call_id.clone(),
        call.downgrade(),
        state.metrics.clone(),
        Duration::from_millis(cfg.calls.heartbeat_interval_ms),
        Duration::from_millis(cfg.calls.peer_timeout_ms),
        cfg.server.max_frame_bytes,
    );
    match start_guarded_socket(
        |oversized| leg.guarded_by(oversized),
        &req,
        payload,
        cfg.server.max_frame_bytes,
    ) {
        Ok((leg, resp)) => {
            state.slots.attach(&call_id, call.downgrade());
            call.do_send(AttachCarrier { leg });
            resp
        }
        Err(e) => {
            call.do_send(EndCall {
                reason: EndReason::CarrierProtocolError,
            });
            HttpResponse::from_error(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mask_number;

    #[test]
    fn numbers_are_masked_but_the_last_four_digits() {
        assert_eq!(mask_number("+914155551234", false), "+********1234");
        assert_eq!(mask_number("+914155551234", true), "+914155551234");
        assert_eq!(mask_number("123", false), "123");
        assert_eq!(mask_number("", false), "");
    }
}
