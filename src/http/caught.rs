//! Every request runs guarded (`crate::supervise`): a panic in a handler is answered 500, counted, and
//! logged once with the request, instead of dropping the connection. The admin's answer says what
//! panicked; a carrier's (the internet's) says only `internal_error`.

use super::reply::error_json;
use crate::supervise::{self, Part};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::HttpServiceFactory;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, Error, FromRequest, Handler, HttpResponse, Responder};

/// A carrier's webhook (`dialect.webhook()`: its method and path) served by `handler`, each request run
/// guarded (`webhook`). For each carrier's `endpoint::mount`.
pub fn webhook_resource<F, Args>(dialect: &dyn crate::carriers::Dialect, handler: F) -> impl HttpServiceFactory
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    let (method, path) = dialect.webhook();
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
    web::resource(path)
        .route(web::method(method).to(handler))
        .wrap(actix_web::middleware::from_fn(webhook))
}

/// The admin listener's guard (`middleware::from_fn`).
pub async fn admin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    caught(Part::Admin, req, next).await
}

/// The carrier listener's guard (`middleware::from_fn`).
pub async fn webhook(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    caught(Part::Webhook, req, next).await
}

async fn caught(
    part: Part,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request = req.request().clone();
    let served = supervise::guard_future(part, async move {
        #[cfg(feature = "fault-injection")]
        supervise::fault::point(part, &req.uri().to_string());
        next.call(req).await
    })
    .await;
    match served {
        Ok(response) => response.map(ServiceResponse::map_into_boxed_body),
        Err(panic) => {
            log::error!("{panic} (request {} {})", request.method(), request.path());
            Ok(ServiceResponse::new(request, answer(part, &panic.to_string())))
        }
    }
}

fn answer(part: Part, what: &str) -> HttpResponse {
    if part == Part::Admin {
        HttpResponse::InternalServerError().json(serde_json::json!({"error": "internal_error", "reason": what}))
    } else {
        error_json(StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
    }
}

/// `PUT /faults/{part}/{subject}` on the admin listener, in test builds only (feature `fault-injection`):
/// arms one fault point (`supervise::fault`) in a gateway a test runs as a process.
#[cfg(feature = "fault-injection")]
pub async fn arm_fault(
    req: actix_web::HttpRequest,
    path: actix_web::web::Path<(String, String)>,
    state: actix_web::web::Data<super::state::AppState>,
) -> HttpResponse {
    if let Some(refusal) = super::admin::refuse_admin(&req, &state) {
        return refusal;
    }
    let (part, subject) = path.into_inner();
    match Part::parse(&part) {
        Some(part) => {
            supervise::fault::arm(part, &subject);
            HttpResponse::NoContent().finish()
        }
        None => error_json(StatusCode::NOT_FOUND, "no such part"),
    }
}
