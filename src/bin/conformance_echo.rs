//! `conformance_echo [ADDR]`: serves the gateway's WebSocket plumbing as an echo at `ws://ADDR/echo`
//! (default 127.0.0.1:9001) for the Autobahn|Testsuite run in `scripts/autobahn`. A test tool, not a
//! service: it carries no calls.
use actix_web::{web, App, HttpServer};

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9001".into());
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().route("/echo", web::get().to(websocket_api::tools::conformance::echo_socket)))
            .workers(1)
            .bind(&addr)?
            .run()
            .await
    })
}
