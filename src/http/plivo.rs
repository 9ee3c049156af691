//! Plivo's endpoints: `POST /plivo/answer` (the answer URL: signature, then admission, answered in Plivo
//! XML) and, in `carrier`, the media socket `/ws/plivo/{call}` its `<Stream>` opens.

use super::carrier::{admit_call, refuse_carrier_token, refuse_source, webhook_call, AdmissionRefused};
use super::reply::{error_json, same_secret};
use super::state::AppState;
use crate::protocol::plivo::{busy_answer, parse_answer, signature_v2, stream_answer};
use crate::protocol::Carrier;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

/// `POST /plivo/answer`: a call Plivo asks us to answer.
pub async fn answer(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_source(&req, &state)
        .or_else(|| refuse_carrier_token(&req, &state))
        .or_else(|| refuse_unsigned(&req, &state))
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

/// The URL Plivo signs: as configured, or `server.public_url` over HTTP(S) + `/plivo/answer`.
fn answer_url(state: &AppState) -> String {
    let configured = &state.config.carriers.plivo.answer_url;
    if !configured.is_empty() {
        return configured.clone();
    }
    super::carrier::public_http_url(state, "/plivo/answer")
}

/// With Plivo's auth token set, `X-Plivo-Signature-V2` must verify (constant time); missing or wrong gets
/// 403 and no record.
fn refuse_unsigned(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    let token = state.config.carriers.plivo.auth_token.as_deref()?;
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let given = header("x-plivo-signature-v2");
    let expected = signature_v2(token, &answer_url(state), header("x-plivo-signature-v2-nonce"));
    if !given.is_empty() && same_secret(given.as_bytes(), expected.as_bytes()) {
        return None;
    }
    log::warn!("carrier: plivo answer without a valid X-Plivo-Signature-V2 refused (403)");
    state.metrics.calls_refused.with_label_values(&["bad_signature"]).inc();
    Some(error_json(StatusCode::FORBIDDEN, "bad_signature"))
}
