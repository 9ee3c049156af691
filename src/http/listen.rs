//! `GET /calls/{call_id}/listen`: an admin hears a live call. A WebSocket on which the gateway sends, once
//! the carrier has named its format, a text `{"rate": <Hz>, "encoding": "pcm_s16le", "sides": ["caller",
//! "agent"]}`, then a binary message per `LISTEN_BATCH` of either side: the side's index as one byte, then
//! PCM16 LE mono samples.
//! Of what the admin sends only pings and the close are read. The call's carrier leg drops frames for a
//! listener that falls behind (`call::listen`), and a listener whose socket takes nothing for
//! `SEND_LIMIT` (its kernel buffer bounded to `SEND_BUFFER`) is let go: the call never waits, and nothing
//! here grows. Off with `admin.allow_listen =
//! false`; at most `MAX_LISTENERS` at once; each listener is logged (address, call, how long, frames lost)
//! and noted in the call's events. A browser opens it with a ticket (`POST /calls/{id}/listen/ticket`).

use super::admin::{call_id_of, find_call, refuse_admin};
use super::reply::error_json;
use super::seats::Seat;
use super::state::AppState;
use super::tickets::{Purpose, TICKET_TTL};
use crate::call::listen::{Heard, Listener};
use crate::registry::SlotView;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use serde::Deserialize;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Receiver;

/// How long a listener's socket may take nothing before it is let go.
const SEND_LIMIT: Duration = Duration::from_secs(5);
/// What the kernel may hold unsent for a listener (it doubles it): about half a second of audio.
const SEND_BUFFER: usize = 8 * 1024;
/// The largest message an admin may send (a close or a ping): nothing else is read.
const MAX_ADMIN_MESSAGE: usize = 4096;

#[derive(Debug, Deserialize)]
pub struct ListenQuery {
    ticket: Option<String>,
    /// Whose call of this id, when several carriers have one.
    carrier: Option<String>,
}

/// `POST /calls/{call_id}/listen/ticket`: a ticket that opens this call's listen socket for `TICKET_TTL`.
pub async fn ticket(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_admin(&req, &state) {
        return refusal;
    }
    let id = match call_id_of(path) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    HttpResponse::Ok().json(serde_json::json!({
        "ticket": state.watchers.tickets.issue(&Purpose::Listen(&id)),
        "expires_in_s": TICKET_TTL.as_secs(),
    }))
}

/// `GET /calls/{call_id}/listen[?carrier=][&ticket=]`: 401 without the token or a ticket for this call, 403
/// when listening is off, 404 unless the call is live on this instance, 503 when every seat is taken.
pub async fn listen(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ListenQuery>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = match call_id_of(path) {
        Ok(id) => id,
        Err(refused) => return *refused,
    };
    let tickets = &state.watchers.tickets;
    let by_ticket = query
        .ticket
        .as_deref()
        .is_some_and(|t| tickets.verify(&Purpose::Listen(&id), t));
    if let Some(refusal) = refuse_admin(&req, &state).filter(|_| !by_ticket) {
        return refusal;
    }
    if !state.config.admin.allow_listen {
        return error_json(StatusCode::FORBIDDEN, "listening is off (admin.allow_listen)");
    }
    let live = match find_call(&state, id, query.carrier.as_deref()) {
        Ok(call) => call.live,
        Err(refused) => return *refused,
    };
    let Some(SlotView {
        info, call: Some(call), ..
    }) = live
    else {
        return error_json(StatusCode::NOT_FOUND, "not a live call on this instance");
    };
    let Some(seat) = state.watchers.listeners.take() else {
        return error_json(StatusCode::SERVICE_UNAVAILABLE, "too_many_listeners");
    };
    let (response, session, from_admin) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(e) => return HttpResponse::from_error(e),
    };
    if let Some(sock) = req.conn_data::<crate::net::AdminSocket>() {
        sock.bound_send_buffer(SEND_BUFFER);
    }
    let who = req
        .peer_addr()
        .map_or_else(|| "an admin".to_string(), |a| format!("admin at {}", a.ip()));
    let (listener, heard) = Listener::new(who.clone());
    let dropped = listener.dropped.clone();
    if !call.listen(listener) {
        return error_json(StatusCode::NOT_FOUND, "not a live call on this instance");
    }
    state.metrics.watching.listens.inc();
    log::info!(
        "call_id={} carrier={} {who} listens in ({} listening)",
        info.call_id,
        info.carrier.as_str(),
        state.watchers.listeners.taken()
    );
    let relay = Relay {
        session,
        from_admin: from_admin.max_frame_size(MAX_ADMIN_MESSAGE),
        heard,
        _seat: seat,
    };
    actix_web::rt::spawn(async move {
        let started = Instant::now();
        let (sent, why) = relay.run().await;
        log::info!(
            "call_id={} {who} stopped listening after {:.0?} ({why}; {sent} messages of audio sent, {} lost)",
            info.call_id,
            started.elapsed(),
            dropped.load(Ordering::Relaxed)
        );
    });
    response
}

/// One listener's socket: what the call's leg queues for it goes out, one message at a time.
struct Relay {
    session: Session,
    from_admin: MessageStream,
    heard: Receiver<Heard>,
    _seat: Seat,
}

impl Relay {
    /// Relays until the call ends, the admin goes, or the socket stops taking frames; how many frames
    /// went out, and why it ended.
    async fn run(mut self) -> (u64, &'static str) {
        let mut sent = 0u64;
        let (why, close) = loop {
            tokio::select! {
                heard = self.heard.recv() => match heard {
                    Some(heard) => {
                        let is_audio = matches!(heard, Heard::Audio(_));
                        match tokio::time::timeout(SEND_LIMIT, self.send(heard)).await {
                            Ok(true) => sent += u64::from(is_audio),
                            Ok(false) => break ("the socket closed", false),
                            Err(_) => break ("the socket took nothing for 5 s", false),
                        }
                    }
                    None => break ("the call ended", true),
                },
                from_admin = self.from_admin.recv() => match from_admin {
                    Some(Ok(Message::Ping(ping))) => {
                        if self.session.pong(&ping).await.is_err() {
                            break ("the socket closed", false);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => break ("the admin closed it", true),
                    Some(Err(_)) => break ("the admin sent what is not a WebSocket frame", true),
                    Some(Ok(_)) => {}
                },
            }
        };
        if close {
            let reason = CloseReason {
                code: CloseCode::Normal,
                description: Some(why.to_string()),
            };
            let _ = self.session.close(Some(reason)).await;
        }
        (sent, why)
    }

    /// Sends one thing heard; false once the socket is closed.
    async fn send(&mut self, heard: Heard) -> bool {
        match heard {
            Heard::Rate(rate) => {
                let hello = serde_json::json!({
                    "rate": rate.hz(), "encoding": "pcm_s16le", "sides": ["caller", "agent"],
                });
                self.session.text(hello.to_string()).await.is_ok()
            }
            Heard::Audio(frame) => self.session.binary(frame).await.is_ok(),
        }
    }
}
