//! `/healthz` (the process serves) and `/readyz` (it takes calls: not draining, not at the cap).

use super::AppState;
use crate::registry::Summarize;
use actix_web::{web, HttpResponse};

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.registry.send(Summarize).await {
        Ok(s) if !s.draining && s.available > 0 => HttpResponse::Ok().json(s),
        Ok(s) => HttpResponse::ServiceUnavailable().json(s),
        Err(_) => super::error_json(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, "registry_unavailable"),
    }
}
