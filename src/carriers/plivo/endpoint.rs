//! Plivo's endpoints: `POST /plivo/answer` (the answer URL: signature, then admission, answered in Plivo
//! XML) and, in `carrier`, the media socket `/ws/plivo/{call}` its `<Stream>` opens.

use crate::http::admission::{admit_call, refuse_carrier_token, refuse_source, signed_url, webhook_call, AdmissionRefused};
use crate::http::reply::error_json;
use crate::http::state::AppState;
use super::webhook::{busy_answer, parse_answer, stream_answer, verify_v2, verify_v3};
use crate::carriers::Carrier;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use std::time::Instant;

/// `POST /plivo/answer`: a call Plivo asks us to answer.
pub async fn answer(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_source(&req, &state)
        .or_else(|| refuse_carrier_token(&req, &state))
        .or_else(|| refuse_unsigned(&req, &body, &state))
    {
        return refusal;
    }
    let info = match webhook_call(parse_answer(&body), Carrier::Plivo, &state) {
        Ok(info) => info,
        Err(bad_request) => return *bad_request,
    };
    let xml = match admit_call(info, &state) {
        Ok(call) => stream_answer(&call.wss_url, crate::audio::format::AudioFormat::ULAW_8K),
        // Plivo's way to refuse: a busy hang-up (it does not act on an HTTP error the way a caller hears).
        Err(AdmissionRefused { .. }) => busy_answer(),
    };
    HttpResponse::Ok().content_type("application/xml").body(xml)
}

/// How a request was signed: the nonce it came with, once its signature verified.
enum Signed<'a> {
    Verified(&'a str),
    Not(&'static str),
}

/// Which signature the request carries and whether it verifies: `X-Plivo-Signature-V3` (or the main
/// account's `-Ma-V3`) over the URL, the parameters and the nonce; `X-Plivo-Signature-V2` over the URL and
/// the nonce only when `accept_v2` is set.
fn signed<'a>(req: &'a HttpRequest, body: &[u8], state: &AppState, token: &str) -> Signed<'a> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let url = signed_url(req, state, &state.config.carriers.plivo.answer_url, "/plivo/answer");
    let v3 = header("x-plivo-signature-v3").or_else(|| header("x-plivo-signature-ma-v3"));
    match (v3, header("x-plivo-signature-v2")) {
        (Some(sig), _) => {
            let nonce = header("x-plivo-signature-v3-nonce").unwrap_or_default();
            let form = std::str::from_utf8(body).unwrap_or_default();
            match !nonce.is_empty() && verify_v3(token, &url, form, nonce, sig) {
                true => Signed::Verified(nonce),
                false => Signed::Not("X-Plivo-Signature-V3 does not verify"),
            }
        }
        (None, Some(_)) if !state.config.carriers.plivo.accept_v2 => {
            Signed::Not("X-Plivo-Signature-V2 only (it does not cover the call; carriers.plivo.accept_v2 is off)")
        }
        (None, Some(sig)) => {
            let nonce = header("x-plivo-signature-v2-nonce").unwrap_or_default();
            match !nonce.is_empty() && verify_v2(token, &url, nonce, sig) {
                true => Signed::Verified(nonce),
                false => Signed::Not("X-Plivo-Signature-V2 does not verify"),
            }
        }
        (None, None) => Signed::Not("no X-Plivo-Signature-V3"),
    }
}

/// With Plivo's auth token set, the request must be signed (see `signed`) with a nonce not seen within
/// `replay_window_s`: otherwise 403 and no record.
fn refuse_unsigned(req: &HttpRequest, body: &[u8], state: &AppState) -> Option<HttpResponse> {
    let token = state.config.carriers.plivo.auth_token.as_deref()?;
    let why = match signed(req, body, state, token) {
        Signed::Verified(nonce) if state.signed_nonces.first_use(nonce, Instant::now()) => return None,
        Signed::Verified(_) => "a replay: its signature's nonce was seen already",
        Signed::Not(why) => why,
    };
    log::warn!("carrier: plivo answer refused (403): {why}");
    state.metrics.traffic.refused("bad_signature", "plivo");
    Some(error_json(StatusCode::FORBIDDEN, "bad_signature"))
}

/// Serves the answer URL.
pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::http::caught::webhook_resource(&super::DIALECT, answer));
}
