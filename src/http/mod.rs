//! The HTTP surface, on two listeners over one shared `AppState`: the carrier-facing one (refurl webhook,
//! media WebSocket, health) and the admin one (`/calls`, `/metrics`, `/capacity`, health). The admin
//! endpoints are on the carrier-facing listener too only when an admin token guards them: a proxy in
//! front of the carrier port connects from loopback, so "loopback only" would publish them.
pub mod access;
pub mod admin;
pub mod carrier;
pub mod exotel;
pub mod fleet;
pub mod health;
pub mod media;
pub mod nonces;
pub mod plivo;
pub mod twilio;

pub mod reply;
pub mod state;

use actix_web::web;
pub use state::AppState;

/// The carrier-facing listener's routes; with `admin_too` (an admin token is set) the admin routes as well.
pub fn carrier_routes(cfg: &mut web::ServiceConfig, admin_too: bool) {
    cfg.route("/mcube/call", web::post().to(carrier::refurl))
        .route("/plivo/answer", web::post().to(plivo::answer))
        .route("/exotel/voicebot", web::get().to(exotel::voicebot))
        .route("/twilio/voice", web::post().to(twilio::voice))
        .route("/ws/twilio", web::get().to(media::twilio_socket))
        // Before the next route, which would take it: in a fleet Twilio's stream names its instance here.
        .route("/ws/twilio/{instance}", web::get().to(media::twilio_socket))
        .route("/ws/{carrier}/{call_id}", web::get().to(media::media_socket));
    if admin_too {
        admin_routes(cfg);
    } else {
        health_routes(cfg);
    }
}

/// The admin listener's routes (health included).
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/calls", web::get().to(admin::list_calls))
        .route("/calls/history", web::get().to(admin::call_history))
        .route("/calls/limit", web::put().to(admin::set_limit))
        .route("/calls/{call_id}", web::get().to(admin::get_call))
        .route("/calls/{call_id}", web::delete().to(admin::end_call))
        .route("/metrics", web::get().to(admin::metrics))
        .route("/capacity", web::get().to(admin::capacity))
        .route("/fleet", web::get().to(admin::fleet));
    health_routes(cfg);
}

/// Probes, open on both listeners.
fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
}
