//! WebSocket plumbing shared by every socket we serve and by the conformance server: frame reassembly, the
//! frame guard, sorting what a peer sent (`frames`), and starting a served socket behind them.
pub mod frames;

use actix_web::error::PayloadError;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use frames::FrameGuard;
use futures_util::future::ready;
use futures_util::StreamExt as _;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Upgrades to a WebSocket served by the actor `make` builds, behind the plumbing every socket we serve
/// shares: the frame guard (frames declaring more than `max_frame` are refused at their header, before
/// their payload is buffered; `make` gets the flag it raises) and an orderly end of a stream cut short.
pub fn start_guarded_socket<A>(
    make: impl FnOnce(Arc<AtomicBool>) -> A,
    req: &HttpRequest,
    payload: web::Payload,
    max_frame: usize,
) -> Result<(actix::Addr<A>, HttpResponse), actix_web::Error>
where
    A: actix::Actor<Context = ws::WebsocketContext<A>> + actix::StreamHandler<Result<ws::Message, ws::ProtocolError>>,
{
    // A peer that sends its last frames and a close, then shuts the socket at once, makes the HTTP layer
    // report "incomplete payload"; actix-web-actors would return that error before decoding the frames it
    // already holds, losing the caller's last audio and the close. Ending the stream there instead keeps them.
    let payload = payload.take_while(|chunk| ready(!matches!(chunk, Err(PayloadError::Incomplete(_)))));
    let oversized = Arc::new(AtomicBool::new(false));
    let payload = FrameGuard::new(payload, max_frame, oversized.clone());
    ws::WsResponseBuilder::new(make(oversized), req, payload)
        .frame_size(max_frame)
        .start_with_addr()
}
