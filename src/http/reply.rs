//! What the handlers share: error answers, the bearer token of a request, constant-time comparison, reads
//! from the database off the worker.

use crate::db::{DbConnection, DbPool};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

pub use crate::values::same_secret;

/// 409 for an admin naming a call by an id that calls of several carriers have: `carriers` lists whose.
pub fn ambiguous_call<S: serde::Serialize>(carriers: &[S]) -> HttpResponse {
    HttpResponse::Conflict().json(serde_json::json!({
        "error": "ambiguous",
        "detail": "calls of several carriers have this id: name one with ?carrier=",
        "carriers": carriers,
    }))
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(req: &actix_web::HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// `{"error": "..."}` with a status.
pub fn error_json(status: actix_web::http::StatusCode, error: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": error }))
}

/// Runs a read on the pool off the actix worker; a database that is down answers 503.
pub async fn read_db<T: Send + 'static>(
    pool: &DbPool,
    f: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> Result<T, HttpResponse> {
    let pool = pool.clone();
    let result = web::block(move || {
        let mut conn = pool.get().map_err(|e| format!("db: no connection: {e}"))?;
        f(&mut conn).map_err(|e| format!("db: query failed: {e}"))
    })
    .await;
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            log::warn!("{e}");
            Err(error_json(StatusCode::SERVICE_UNAVAILABLE, "db_unavailable"))
        }
        Err(_) => Err(error_json(StatusCode::SERVICE_UNAVAILABLE, "db_unavailable")),
    }
}
