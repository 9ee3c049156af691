//! Every carrier's media WebSocket: `/ws/{carrier}/{call_id}?token=…`, refused before the upgrade (no 101)
//! when the token is bad or the call holds no slot; and the socket of a carrier whose stream URL carries no
//! query (`Dialect::names_call_at_start`: Twilio forbids one), mounted by its endpoint at its own path (in
//! a fleet with the instance as the last segment, for the balancer to route on): its call and token are
//! checked when its `start` arrives, and a refusal closes the socket with 1008. Either way the call actor
//! starts only once both hold, and a call is its carrier's and id's: no carrier's socket can claim
//! another's call.

use super::admission::{refuse_carrier_token, refuse_source, refuse_uncredentialed, refused};
use super::reply::error_json;
use super::state::AppState;
use crate::admission::ClaimRefused;
use crate::call::carrier_leg::{CarrierLeg, ClaimAtStart};
use crate::call::messages::{EndCall, FromCarrier, ToCarrier};
use crate::call::EndReason;
use crate::carriers::stream::StreamClaim;
use crate::carriers::{CallKey, Carrier};
use crate::values::CallId;
use crate::ws::start_guarded_socket;
use actix::{Recipient, WeakRecipient};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct MediaQuery {
    #[serde(default)]
    token: Option<String>,
    /// The instance that admitted the call (in a fleet's `wss_url`).
    #[serde(default)]
    instance: Option<String>,
}

/// `GET /ws/{carrier}/{call_id}`: a carrier's media socket (behind its own credentials, when its dialect
/// asks any): token, then slot, then the upgrade. A refused upgrade writes no record
/// (whoever sent it has not shown they are the carrier): it is counted.
pub async fn media_socket(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<(String, String)>,
    query: web::Query<MediaQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (carrier, call_id) = path.into_inner();
    let Some(carrier) = Carrier::from_path(&carrier).filter(|c| !c.names_call_at_start()) else {
        return error_json(StatusCode::NOT_FOUND, "no such carrier");
    };
    if let Some(refusal) = refuse_unauthenticated(carrier, &req, &state) {
        return refusal;
    }
    let cfg = &state.config;
    let call_id = match CallId::parse("call_id", &call_id) {
        Ok(id) => id,
        Err(e) => {
            state.metrics.unread.invalid(e.field);
            return error_json(StatusCode::BAD_REQUEST, "invalid call id");
        }
    };
    let key = CallKey::new(carrier, call_id.clone());
    if let Some(refusal) = refuse_misdirected(query.instance.as_deref(), &state, &key.to_string()) {
        return refusal;
    }
    let gate = state.gate();
    if let Err(refusal) = gate.check_token(&key, query.token.as_deref()) {
        return claim_refused(refusal);
    }
    if let Err(e) = ws::handshake(&req) {
        return HttpResponse::from_error(e);
    }
    let (info, slot) = match gate.claim(&key) {
        Ok(claimed) => claimed,
        Err(refusal) => return claim_refused(refusal),
    };
    let attempt = info.attempt;
    let call = gate.launch(info, slot);
    let leg = carrier_leg(&state, call_id.to_string(), Some(call.downgrade().recipient()));
    match start_guarded_socket(
        |oversized| leg.speaking(carrier).guarded_by(oversized),
        &req,
        payload,
        cfg.server.max_frame_bytes,
    ) {
        Ok((leg, resp)) => {
            gate.attach(&call, &key, attempt, leg.recipient());
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

/// The media stream of a carrier that names its call at `start` (Twilio's `/ws/twilio[/{instance}]`, as
/// its endpoint mounts it). The upgrade passes the access rules (and, in a fleet, names this instance)
/// only; the call and its token arrive in the `start` event, and the call is claimed then
/// (`claim_named_call`).
pub async fn named_at_start_socket(
    carrier: Carrier,
    req: HttpRequest,
    payload: web::Payload,
    instance: Option<web::Path<String>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Some(refusal) = refuse_unauthenticated(carrier, &req, &state) {
        return refusal;
    }
    let wanted = instance.map(web::Path::into_inner);
    if let Some(refusal) = refuse_misdirected(wanted.as_deref(), &state, &format!("{}/-", carrier.as_str())) {
        return refusal;
    }
    let claim = claim_named_call(carrier, state.clone());
    let leg = carrier_leg(&state, "-".into(), None);
    match start_guarded_socket(
        |oversized| {
            leg.speaking(carrier)
                .claiming_at_start(claim, state.config.calls.start_timeout())
                .guarded_by(oversized)
        },
        &req,
        payload,
        state.config.server.max_frame_bytes,
    ) {
        Ok((_, resp)) => resp,
        Err(e) => HttpResponse::from_error(e),
    }
}

/// The access rules and the carrier's own credentials, before any upgrade.
fn refuse_unauthenticated(carrier: Carrier, req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let unbound = !state.config.carrier.require_token;
    refuse_uncredentialed(carrier, req, state)
        .or_else(|| refuse_source(req, state))
        .or_else(|| unbound.then(|| refuse_carrier_token(req, state))?)
}

/// Claims the call a stream names at `start`: its token (when tokens are required), then its slot;
/// then the call starts with the leg attached.
fn claim_named_call(carrier: Carrier, state: web::Data<AppState>) -> ClaimAtStart {
    Box::new(move |named: &StreamClaim, leg: Recipient<ToCarrier>| {
        let key = CallKey::new(carrier, named.call_id.clone());
        let gate = state.gate();
        gate.check_token(&key, named.token.as_ref().map(|t| t.as_str()))
            .map_err(ClaimRefused::as_str)?;
        let (info, slot) = gate.claim(&key).map_err(ClaimRefused::as_str)?;
        let attempt = info.attempt;
        let call = gate.launch(info, slot);
        gate.attach(&call, &key, attempt, leg);
        Ok(call.downgrade().recipient())
    })
}

/// A refused claim, before the upgrade: 401 for the token, else the registry's refusal.
fn claim_refused(refusal: ClaimRefused) -> HttpResponse {
    match refusal {
        ClaimRefused::Unauthorized => error_json(StatusCode::UNAUTHORIZED, "unauthorized"),
        ClaimRefused::Slot(refusal) => refused(refusal),
    }
}

/// A carrier leg for `call`, as configured.
fn carrier_leg(state: &AppState, call_id: String, call: Option<WeakRecipient<FromCarrier>>) -> CarrierLeg {
    let cfg = &state.config;
    CarrierLeg::new(
        call_id,
        call,
        state.metrics.clone(),
        cfg.calls.heartbeat_interval(),
        cfg.calls.peer_timeout(),
        cfg.server.max_frame_bytes,
        cfg.elevenlabs.user_audio_chunk(),
    )
}

/// A media socket for a call another instance admitted (the balancer did not route on the instance its
/// URL names: `wanted`, from the `instance` query parameter or the last path segment of a socket named at
/// start): 421 naming both
/// instances, never a bare 404.
fn refuse_misdirected(wanted: Option<&str>, state: &AppState, call: &str) -> Option<HttpResponse> {
    let wanted = wanted?;
    if wanted == state.instance.as_str() {
        return None;
    }
    let wanted = crate::values::InstanceId::parse("instance", wanted)
        .map_or_else(|_| "(invalid)".to_string(), |i| i.to_string());
    log::warn!(
        "call={call} carrier: media socket for instance {wanted} reached {}: check the balancer routes on \
         the `instance` query parameter and on the last segment of `/ws/twilio/<instance>`",
        state.instance
    );
    state.metrics.fleet.misdirected_sockets.inc();
    Some(HttpResponse::MisdirectedRequest().json(serde_json::json!({
        "error": "wrong_instance",
        "detail": "this call was admitted by another gateway instance; the load balancer must route the media \
                   socket on its `instance` query parameter (a socket named at start, Twilio's: on the last segment of \
                   its path)",
        "instance": wanted,
        "this_instance": state.instance,
    })))
}
