//! Twilio's endpoints: `POST /twilio/voice` (the number's voice webhook: signature, then admission,
//! answered in TwiML) and, in `media`, the socket `/ws/twilio` its `<Stream>` opens.

use crate::http::admission::{admit_call, refuse_carrier_token, refuse_source, webhook_call};
use crate::http::reply::{error_json, same_secret};
use crate::http::state::AppState;
use super::webhook::{busy_answer, parse_voice, signature, stream_answer};
use crate::carriers::Carrier;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// `POST /twilio/voice`: a call Twilio asks us to answer.
pub async fn voice(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_source(&req, &state)
        .or_else(|| refuse_carrier_token(&req, &state))
        .or_else(|| refuse_unsigned(&req, &body, &state))
    {
        return refusal;
    }
    let info = match webhook_call(parse_voice(&body), Carrier::Twilio, &state) {
        Ok(info) => info,
        Err(bad_request) => return *bad_request,
    };
    let twiml = match admit_call(info, &state) {
        Ok(call) => stream_answer(&call.stream_base, call.call_id.as_str(), &call.token),
        // Twilio's way to refuse: the caller hears busy (an HTTP error would play Twilio's error message).
        Err(_) => busy_answer(),
    };
    HttpResponse::Ok().content_type("text/xml").body(twiml)
}

/// With Twilio's auth token set, `X-Twilio-Signature` must verify (constant time); missing or wrong gets
/// 403 and no record.
fn refuse_unsigned(req: &HttpRequest, body: &[u8], state: &AppState) -> Option<HttpResponse> {
    let token = state.config.carriers.twilio.auth_token.as_deref()?;
    let given = req
        .headers()
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let url = crate::http::admission::signed_url(req, state, &state.config.carriers.twilio.voice_url, "/twilio/voice");
    let expected = signature(token, &url, body);
    if !given.is_empty() && same_secret(given.as_bytes(), expected.as_bytes()) {
        return None;
    }
    log::warn!("carrier: twilio voice webhook without a valid X-Twilio-Signature refused (403)");
    state.metrics.traffic.refused("bad_signature", "twilio");
    Some(error_json(StatusCode::FORBIDDEN, "bad_signature"))
}

/// Serves the voice webhook and the Media Stream's socket (`/ws/twilio`, and in a fleet
/// `/ws/twilio/{instance}`: before the generic media socket's route, which would take it).
pub fn mount(cfg: &mut web::ServiceConfig) {
    use crate::http::caught::webhook;
    use crate::http::media::named_at_start_socket;
    let guarded = |path| web::resource(path).wrap(actix_web::middleware::from_fn(webhook));
    let socket = |req, payload, instance, state| named_at_start_socket(Carrier::Twilio, req, payload, instance, state);
    cfg.service(crate::http::caught::webhook_resource(&super::DIALECT, voice))
        .service(guarded("/ws/twilio").route(web::get().to(socket)))
        .service(guarded("/ws/twilio/{instance}").route(web::get().to(socket)));
}
