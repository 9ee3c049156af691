//! `/healthz` (the process serves; with what the records side is doing) and `/readyz` (it takes calls: not
//! draining, not at the cap).

use super::state::AppState;
use actix_web::{web, HttpResponse};

/// 200 while the process serves. The records side is detail, not health: a database that is down still
/// loses nothing (the spool), and rows it refused are counted in `dead_letter_total`. Parts that recovered from a panic (`crate::supervise`) are listed under `recovered`: the process still
/// serves, and says what it survived.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let mut body = serde_json::json!({"status": "ok", "db": state.db_stats.summary()});
    let recovered = crate::supervise::report();
    if !recovered.is_empty() {
        body["recovered"] = serde_json::Value::Object(recovered);
    }
    HttpResponse::Ok().json(body)
}

/// 200 when a new call would be taken; 503 while draining, at the cap, with the upstream breaker open, or
/// with every route's agent unavailable (the answer then says why). One broken agent does not make the
/// gateway unready while other routes take calls: the answer lists it.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let s = state.registry.summary();
    let upstream = state.breaker.refusal();
    let broken = state.breaker.unavailable_agents();
    let routes = state.routes();
    let no_agent = !broken.is_empty() && routes.all_agents_in(&broken);
    let mut body = serde_json::to_value(&s).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        if let Some(open) = &upstream {
            map.insert(
                "upstream".into(),
                serde_json::json!({
                    "breaker": "open",
                    "reason": open.reason,
                    "retry_after_ms": open.retry_after.as_millis() as u64,
                }),
            );
        }
        if !broken.is_empty() {
            let unavailable: Vec<&str> = routes.routes_of(&broken).collect();
            map.insert(
                "agents_unavailable".into(),
                serde_json::json!({ "agents": broken, "routes": unavailable }),
            );
        }
    }
    if !s.draining && s.available > 0 && upstream.is_none() && !no_agent {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
