//! `GET /console`: the operator's page, served from the binary on the admin listener — its HTML, script
//! and style, and nothing from anywhere else (`Content-Security-Policy: default-src 'self'`). The page
//! holds no data: it signs in with the admin token and reads and acts only through the admin API, whose
//! endpoints each check the token (docs/console.md).

use actix_web::{web, HttpResponse};

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Nothing but this gateway: no inline script or style, no other origin, not framed by anyone.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; \
                       form-action 'self'";

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("content-security-policy", CSP))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "no-referrer"))
        .insert_header(("cache-control", "no-cache"))
        .body(body)
}

/// `GET /console`.
pub async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /console/{file}`: the page's script and style.
pub async fn file(name: web::Path<String>) -> HttpResponse {
    match name.as_str() {
        "console.js" => asset("text/javascript; charset=utf-8", SCRIPT),
        "console.css" => asset("text/css; charset=utf-8", STYLE),
        _ => HttpResponse::NotFound().finish(),
    }
}

/// Every asset, by its path (for the tests: the page's size and what it may reach).
pub fn assets() -> [(&'static str, &'static str); 3] {
    [
        ("/console", INDEX),
        ("/console/console.js", SCRIPT),
        ("/console/console.css", STYLE),
    ]
}
