//! Mcube's endpoint: `POST /mcube/call`, the refurl webhook — an admission (`dialStatus` CONNECTING or
//! absent) answered with the stream's `wss_url`, or a hang-up/status report saved on its attempt.

use super::refurl::{parse_refurl, Admission, Refurl, RefurlRefused};
use crate::call::{CallInfo, EndReason};
use crate::carriers::{CallKey, Carrier};
use crate::db::models::{new_attempt, now_ms, DbWrite, StatusReport};
use crate::http::admission::{
    admit_call, refuse_carrier_token, refuse_source, refused_for, rejected_record, save, AdmissionRefused,
};
use crate::http::state::AppState;
use crate::values::{CallId, DialStatus, HttpUrl};
use actix_web::{web, HttpRequest, HttpResponse};

/// `POST /mcube/call`: admission (`dialStatus` CONNECTING or absent) or a hang-up/status report.
pub async fn refurl(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_source(&req, &state).or_else(|| refuse_carrier_token(&req, &state)) {
        return refusal;
    }
    let timer = state.metrics.refurl_seconds.start_timer();
    let resp = match parse_refurl(&body) {
        Ok(Refurl::Admit(a)) => admit(admitted(a), &state),
        Ok(Refurl::Status {
            call_id,
            dial_status,
            recording,
        }) => status_report(call_id, dial_status, recording, &state),
        Err(refused) => refuse_refurl(refused, &state),
    };
    timer.observe_duration();
    resp
}

/// A body with a field out of bounds: 400 naming it, counted; an admission request for a valid call id
/// also leaves a `rejected` record saying why.
fn refuse_refurl(refused: RefurlRefused, state: &AppState) -> HttpResponse {
    let RefurlRefused { admitting, invalid } = refused;
    state.metrics.unread.invalid(invalid.field);
    let who = admitting.as_ref().map_or_else(|| "-".to_string(), |c| c.to_string());
    log::warn!("call_id={who} carrier: refurl refused (400): {invalid}");
    if let Some(call_id) = admitting {
        let info = CallInfo::bare(CallKey::new(Carrier::Mcube, call_id), new_attempt());
        let mut rec = rejected_record(state, &info, EndReason::CarrierInvalidData.as_str());
        rec.error_detail = Some(format!("carrier: {invalid}"));
        save(state, DbWrite::Call(Box::new(rec)));
    }
    HttpResponse::BadRequest().json(serde_json::json!({
        "error": "invalid_field", "field": invalid.field, "reason": invalid.reason,
    }))
}

fn status_report(
    call_id: CallId,
    dial_status: DialStatus,
    recording: Option<HttpUrl>,
    state: &AppState,
) -> HttpResponse {
    log::info!(
        "call_id={call_id} carrier status report: dialStatus={}",
        dial_status.as_str()
    );
    // The attempt still holding a slot, if any; otherwise the database applies it to Mcube's latest one.
    let attempt = state
        .registry
        .find(&CallKey::new(Carrier::Mcube, call_id.clone()))
        .map(|s| s.info.attempt);
    let report = StatusReport {
        call_id: call_id.to_string(),
        attempt,
        dial_status: dial_status.as_str().to_string(),
        recording_url: recording.map(|r| r.to_string()),
        at_ms: now_ms(),
    };
    save(state, DbWrite::Status(report));
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

fn admit(info: CallInfo, state: &AppState) -> HttpResponse {
    match admit_call(info, state) {
        Ok(call) => HttpResponse::Ok().json(serde_json::json!({ "wss_url": call.wss_url })),
        Err(AdmissionRefused { refusal, retry_after }) => refused_for(refusal, retry_after),
    }
}

/// The call to admit, as the refurl asked for it: a new attempt of its id.
fn admitted(a: Admission) -> CallInfo {
    CallInfo {
        call_id: a.call_id,
        attempt: new_attempt(),
        from: a.from,
        to: a.to,
        direction: a.direction,
        carrier: Carrier::Mcube,
        route: None,
    }
}

/// Serves the refurl webhook.
pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::http::caught::webhook_resource(&super::DIALECT, refurl));
}
