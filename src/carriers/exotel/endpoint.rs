//! Exotel's endpoints: `GET /exotel/voicebot` (the Voicebot applet's dynamic URL: Basic auth, then
//! admission, answered with the `wss` URL) and, in `carrier`, the media socket `/ws/exotel/{call}` it opens.

use crate::http::admission::{
    admit_call, refuse_carrier_token, refuse_source, refuse_uncredentialed, refused_for, webhook_call, AdmissionRefused,
};
use crate::http::state::AppState;
use super::webhook::{parse_voicebot, requested_rate, voicebot_answer};
use crate::carriers::Carrier;
use actix_web::{web, HttpRequest, HttpResponse};

/// `GET /exotel/voicebot?CallSid=…&From=…&To=…[&sample-rate=16000]`: the applet asks where to stream this
/// call (at 8 kHz, or the rate its URL asks for).
pub async fn voicebot(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_source(&req, &state)
        .or_else(|| refuse_carrier_token(&req, &state))
        .or_else(|| refuse_uncredentialed(Carrier::Exotel, &req, &state))
    {
        return refusal;
    }
    let query = req.query_string();
    let read = parse_voicebot(query).and_then(|call| Ok((call, requested_rate(query)?)));
    let (call, rate) = match read {
        Ok((call, rate)) => (Ok(call), rate),
        Err(invalid) => (Err(invalid), None),
    };
    let info = match webhook_call(call, Carrier::Exotel, &state) {
        Ok(info) => info,
        Err(bad_request) => return *bad_request,
    };
    match admit_call(info, &state) {
        Ok(call) => HttpResponse::Ok().json(voicebot_answer(&call.wss_url, rate)),
        // The applet fails over on an error answer (its flow moves on); 503 with Retry-After says why.
        Err(AdmissionRefused { refusal, retry_after }) => refused_for(refusal, retry_after),
    }
}

/// Serves the Voicebot applet's dynamic URL.
pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::http::caught::webhook_resource(&super::DIALECT, voicebot));
}
