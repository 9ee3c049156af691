//! The HTTP surface, on two listeners over one shared `AppState`: the carrier-facing one (refurl webhook,
//! media WebSocket, health) and the admin one (`/calls`, `/metrics`, `/capacity`, health). The admin
//! endpoints are on the carrier-facing listener too only when an admin token guards them: a proxy in
//! front of the carrier port connects from loopback, so "loopback only" would publish them.
pub mod access;
pub mod admin;
pub mod admission;
pub mod caught;
pub mod console;
pub mod events;
pub mod fleet;
pub mod health;
pub mod history;
pub mod listen;
pub mod media;
pub mod nonces;
pub mod post_call;
pub mod recording;

pub mod reply;
pub mod seats;
pub mod state;
pub mod tickets;

use actix_web::web;
pub use state::AppState;

/// `path`'s resource, each of its requests run guarded by `guard` (`caught`: a panic answers 500). Per
/// resource, not per app: the request may be held only once routing is done.
macro_rules! guarded {
    ($guard:path, $path:expr) => {
        web::resource($path).wrap(actix_web::middleware::from_fn($guard))
    };
}

/// Makes `mount_webhooks` from the one list of carriers (`carriers::carriers_list`).
macro_rules! mount_every_webhook {
    ($($variant:ident => $folder:ident),+ $(,)?) => {
        /// Every carrier's webhook, and any socket of its own, each mounted by its carrier's folder.
        fn mount_webhooks(cfg: &mut web::ServiceConfig) {
            $(crate::carriers::$folder::endpoint::mount(cfg);)+
        }
    };
}
crate::carriers::carriers_list!(mount_every_webhook);

/// The carrier-facing listener's routes; with `admin_too` (an admin token is set) the admin routes as well.
pub fn carrier_routes(cfg: &mut web::ServiceConfig, admin_too: bool) {
    use caught::webhook;
    // Before the media socket's route: a carrier's own sockets (Twilio's) would be taken by it.
    mount_webhooks(cfg);
    cfg.service(guarded!(webhook, "/ws/{carrier}/{call_id}").route(web::get().to(media::media_socket)));
    cfg.service(
        guarded!(webhook, "/elevenlabs/post-call")
            .app_data(post_call::body_limit())
            .route(web::post().to(post_call::post_call)),
    );
    if admin_too {
        admin_routes(cfg);
    } else {
        health_routes(cfg);
    }
}

/// The admin listener's routes (health included).
pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    use caught::admin as guard;
    cfg.service(guarded!(guard, "/calls").route(web::get().to(admin::list_calls)))
        .service(guarded!(guard, "/calls/history").route(web::get().to(history::call_history)))
        .service(guarded!(guard, "/calls/history.csv").route(web::get().to(history::call_history_csv)))
        .service(guarded!(guard, "/calls/limit").route(web::put().to(admin::set_limit)))
        .service(guarded!(guard, "/calls/events").route(web::get().to(events::events)))
        .service(guarded!(guard, "/calls/events/ticket").route(web::post().to(events::ticket)))
        .service(guarded!(guard, "/calls/{call_id}/listen").route(web::get().to(listen::listen)))
        .service(guarded!(guard, "/calls/{call_id}/listen/ticket").route(web::post().to(listen::ticket)))
        .service(guarded!(guard, "/calls/{call_id}/recording").route(web::post().to(recording::pause)))
        .service(
            guarded!(guard, "/calls/{call_id}")
                .route(web::get().to(admin::get_call))
                .route(web::delete().to(admin::end_call)),
        )
        .service(guarded!(guard, "/metrics").route(web::get().to(admin::metrics)))
        .service(guarded!(guard, "/capacity").route(web::get().to(admin::capacity)))
        .service(guarded!(guard, "/fleet").route(web::get().to(admin::fleet)))
        .service(guarded!(guard, "/console").route(web::get().to(console::page)))
        .service(guarded!(guard, "/console/{file}").route(web::get().to(console::file)));
    #[cfg(feature = "fault-injection")]
    cfg.route("/faults/{part}/{subject}", web::put().to(caught::arm_fault));
    health_routes(cfg);
}

/// Probes, open on both listeners.
fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
}
