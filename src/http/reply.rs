//! What the handlers share: error answers, the bearer token of a request, constant-time comparison.

use actix_web::HttpResponse;

/// Constant-time equality, so a wrong token's timing says nothing about the right one.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
