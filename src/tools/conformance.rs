//! A WebSocket echo over the production plumbing (frame guard, reassembly, inbound sorting, close codes),
//! for the Autobahn|Testsuite conformance run (`scripts/autobahn`). Only the `conformance_echo` binary
//! mounts it; `websocket_api serve` never does.

use crate::ws::frames::{sort_inbound, Inbound, Reassembler};
use crate::ws::start_guarded_socket;
use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The frame and message limit, the gateway's default `server.max_frame_bytes`.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Echoes every message; closes as the carrier leg would.
pub struct EchoLeg {
    reassembler: Reassembler,
    oversized: Arc<AtomicBool>,
}

impl Actor for EchoLeg {
    type Context = ws::WebsocketContext<Self>;
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for EchoLeg {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match sort_inbound(msg, &mut self.reassembler, self.oversized.load(Ordering::SeqCst)) {
            Inbound::Text(text) => ctx.text(text),
            Inbound::Binary(bin) => ctx.binary(bin),
            Inbound::Ping(p) => ctx.pong(&p),
            Inbound::Nothing => {}
            Inbound::Closed(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
            Inbound::Refuse { code, .. } => {
                ctx.close(Some(code.into()));
                ctx.stop();
            }
            Inbound::Lost(_) => ctx.stop(),
        }
    }
}

/// `GET /echo`: the conformance echo socket.
pub async fn echo_socket(req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let make = |oversized| EchoLeg {
        reassembler: Reassembler::new(MAX_FRAME_BYTES),
        oversized,
    };
    match start_guarded_socket(make, &req, payload, MAX_FRAME_BYTES) {
        Ok((_, resp)) => resp,
        Err(e) => HttpResponse::from_error(e),
    }
}
