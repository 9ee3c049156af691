//! `/healthz` (the process serves; with what the records side is doing) and `/readyz` (it takes calls: not
//! draining, not at the cap).

use super::state::AppState;
use actix_web::{web, HttpResponse};

/// 200 while the process serves. The records side is detail, not health: a database that is down still
/// loses nothing (the spool), and rows it refused are counted in `dead_letter_total`.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok", "db": state.db_stats.summary()}))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let s = state.registry.summary();
    if !s.draining && s.available > 0 {
        HttpResponse::Ok().json(s)
    } else {
        HttpResponse::ServiceUnavailable().json(s)
    }
}
