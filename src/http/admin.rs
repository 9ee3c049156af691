//! Admin endpoints (interface.md §4). With `admin.token` set they need `Authorization: Bearer <token>`;
//! without one they answer loopback clients only.

use super::{error_json, AppState};
use crate::call::CallView;
use crate::registry::{describe, ListCalls};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::join_all;

/// Constant-time equality, so a wrong token's timing says nothing about the right one.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `None` when the request may see admin data, else the refusal to send.
pub fn refuse_admin(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    match state.config.admin.token.as_deref() {
        Some(token) => {
            let given = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            (!same_secret(given.as_bytes(), token.as_bytes()))
                .then(|| error_json(StatusCode::UNAUTHORIZED, "unauthorized"))
        }
        None => {
            let loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
            (!loopback).then(|| {
                error_json(
                    StatusCode::FORBIDDEN,
                    "admin endpoints answer loopback clients only without admin.token",
                )
            })
        }
    }
}

/// `GET /calls`: totals and every call holding a slot.
pub async fn list_calls(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_admin(&req, &state) {
        return refusal;
    }
    let Ok((summary, slots)) = state.registry.send(ListCalls).await else {
        return error_json(StatusCode::SERVICE_UNAVAILABLE, "registry_unavailable");
    };
    let views = join_all(slots.into_iter().map(|slot| async move {
        match slot.call {
            Some(call) => describe(call)
                .await
                .unwrap_or_else(|| CallView::reserved(&slot.info, slot.admitted_at)),
            None => CallView::reserved(&slot.info, slot.admitted_at),
        }
    }))
    .await;
    HttpResponse::Ok().json(serde_json::json!({
        "max_concurrent_calls": summary.max_concurrent_calls,
        "active": summary.active,
        "available": summary.available,
        "draining": summary.draining,
        "calls": views,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_secret_compares_whole_values() {
        assert!(super::same_secret(b"abc", b"abc"));
        assert!(!super::same_secret(b"abc", b"abd"));
        assert!(!super::same_secret(b"abc", b"abcd"));
    }
}
