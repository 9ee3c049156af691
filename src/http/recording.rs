//! `POST /calls/{call_id}/recording` with `{"paused": true | false}`: pauses the live call's recording (a
//! caller reading out card details) or resumes it. Paused, both sides are recorded as silence, and the call's
//! events say when and by whom (docs/recording.md).

use super::admin::{call_id_of, find_call, refuse_admin};
use super::reply::error_json;
use super::state::AppState;
use crate::registry::SlotView;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    paused: bool,
}

#[derive(Debug, Deserialize)]
pub struct RecordingQuery {
    carrier: Option<String>,
}

/// 202 with what was asked; 400 for another body, 404 unless the call is live here, 409 with recording off.
pub async fn pause(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<RecordingQuery>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Some(refusal) = refuse_admin(&req, &state) {
        return refusal;
    }
    let id = match call_id_of(path) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let Ok(PauseBody { paused }) = serde_json::from_slice(&body) else {
        return error_json(StatusCode::BAD_REQUEST, "body must be {\"paused\": true | false}");
    };
    if state.recorder.is_none() {
        return error_json(StatusCode::CONFLICT, "recording is off (recording.enabled)");
    }
    let live = match find_call(&state, id, query.carrier.as_deref()) {
        Ok(call) => call.live,
        Err(refused) => return *refused,
    };
    match live {
        Some(SlotView {
            info, call: Some(call), ..
        }) if call.pause_recording(paused) => {
            log::info!(
                "call_id={} carrier={} recording {} by an admin",
                info.call_id,
                info.carrier.as_str(),
                if paused { "paused" } else { "resumed" }
            );
            HttpResponse::Accepted().json(serde_json::json!({
                "call_id": info.call_id, "carrier": info.carrier, "paused": paused,
            }))
        }
        _ => error_json(StatusCode::NOT_FOUND, "not a live call on this instance"),
    }
}
