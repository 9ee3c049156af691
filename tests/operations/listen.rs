//! Listening in (`GET /calls/{id}/listen`) on the real gateway: an admin hears both sides of a live call as
//! PCM16 (the caller's tone on side 0, the agent's echo of it on side 1) until the call ends, and the call
//! notes who listened; the socket opens for the token or a ticket for that call only, never for an
//! expired ticket (nor does the event stream), and not at all with `admin.allow_listen = false`; a
//! listener that stops reading loses frames and is let go while the call loses none.

use crate::common::*;
use futures_util::StreamExt as _;
use serde_json::Value;
use std::time::Duration;
use websocket_api::audio::codec::{encode_ulaw, ulaw_to_linear};
use websocket_api::audio::format::AudioFormat;
use websocket_api::audio::signal::{dominant_frequency, tone};
use websocket_api::db::batcher::FlushAll;
use websocket_api::http::tickets::TICKET_TTL;
use websocket_api::tools::sim::carrier::{CarrierConn, Heard};

const TOKEN: &str = "listen-token";

type Socket = actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>;

/// 20 ms μ-law frames of a 440 Hz tone.
fn tone_frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut samples = Vec::new();
            tone(440.0, 8000, (i * 160) as u64, 160, 8000, &mut samples);
            let mut frame = Vec::new();
            encode_ulaw(&samples, &mut frame);
            frame
        })
        .collect()
}

/// Opens the listen socket with `query` and `token`: the socket, or the status it was refused with.
async fn open(h: &Harness, call_id: &str, query: &str, token: Option<&str>) -> Result<Socket, u16> {
    let mut req = awc::Client::default().ws(format!("{}/calls/{call_id}/listen{query}", h.gw.admin_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.connect().await {
        Ok((_, socket)) => Ok(socket),
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
        Err(e) => panic!("the listen socket answers: {e}"),
    }
}

/// A request to the admin API with the token.
fn as_admin(h: &Harness, method: awc::http::Method, path: &str) -> awc::ClientRequest {
    awc::Client::default()
        .request(method, format!("{}{path}", h.gw.admin_url))
        .bearer_auth(TOKEN)
}

async fn ticket(h: &Harness, path: &str) -> String {
    let mut resp = as_admin(h, awc::http::Method::POST, path)
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status().as_u16(), 200, "{path}");
    let body: Value = resp.json().await.expect("JSON");
    body["ticket"].as_str().expect("a ticket").to_string()
}

/// What the listener heard within `span`: the hello, and the PCM of each side.
#[derive(Default)]
struct Listened {
    hello: Option<Value>,
    sides: [Vec<i16>; 2],
    close: Option<awc::ws::CloseReason>,
}

/// Reads until the hello: the listener is then attached to the call's leg and hears every frame after.
async fn hear_until_hello(socket: &mut Socket, heard: &mut Listened) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while heard.hello.is_none() && tokio::time::Instant::now() < deadline {
        hear(socket, Duration::from_millis(50), heard).await;
    }
}

async fn hear(socket: &mut Socket, span: Duration, heard: &mut Listened) {
    let deadline = tokio::time::Instant::now() + span;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, socket.next()).await {
        match frame {
            awc::ws::Frame::Text(text) => heard.hello = serde_json::from_slice(&text).ok(),
            awc::ws::Frame::Binary(bin) => {
                let side = &mut heard.sides[usize::from(bin[0])];
                side.extend(bin[1..].chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])));
            }
            awc::ws::Frame::Close(reason) => {
                heard.close = reason;
                return;
            }
            _ => {}
        }
    }
}

#[actix_rt::test]
async fn an_admin_hears_both_sides_of_a_live_call_and_the_call_notes_who_listened() {
    let h = start_echo(|c| c.admin.token = Some(TOKEN.into())).await;
    let mut conn = start_call(&h, "LIS-1", "stream-LIS-1", AudioFormat::ULAW_8K).await;
    let mut socket = open(&h, "LIS-1", "", Some(TOKEN)).await.expect("the token opens it");
    let mut heard = Listened::default();
    hear_until_hello(&mut socket, &mut heard).await;
    let frames = tone_frames(50);
    stream_frames(&conn, &frames).await;
    hear(&mut socket, Duration::from_millis(500), &mut heard).await;

    let hello = heard.hello.as_ref().expect("the rate comes first");
    assert_eq!(hello["rate"], 8000);
    assert_eq!(hello["encoding"], "pcm_s16le");
    let [caller, agent] = &heard.sides;
    let sent: Vec<i16> = frames.concat().into_iter().map(ulaw_to_linear).collect();
    assert_eq!(caller, &sent, "the caller's side is what the carrier sent, decoded");
    assert!(
        agent.len() >= 8000 * 8 / 10,
        "the agent's echo: {} samples",
        agent.len()
    );
    let pitch = dominant_frequency(agent, 8000);
    assert!(
        (pitch - 440.0).abs() < 20.0,
        "the agent's side is its echo of the tone: {pitch} Hz"
    );

    conn.close(1000);
    let _ = listen(&mut conn, Duration::from_millis(300)).await;
    hear(&mut socket, Duration::from_secs(3), &mut heard).await;
    let close = heard.close.expect("the listener is told the call ended");
    assert_eq!(close.code, awc::ws::CloseCode::Normal);
    assert_eq!(close.description.as_deref(), Some("the call ended"));

    let _ = h.gw.db.send(FlushAll).await;
    let stored = get_json_with(&h, "/calls/LIS-1").await;
    let events = stored["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "listen" && e["detail"] == "admin at 127.0.0.1 listened in"),
        "the call notes who listened: {events:?}"
    );
    let metrics = metrics_text(&h).await;
    assert!(metrics.contains("wsapi_listens_total 1"), "counted");
    assert!(metrics.contains("wsapi_listeners 0"), "and let go");
}

#[actix_rt::test]
async fn the_listen_socket_opens_for_the_token_or_that_calls_ticket_only() {
    let h = start(quiet_script(), |c| c.admin.token = Some(TOKEN.into())).await;
    let _one = start_call(&h, "LIS-A", "stream-LIS-A", AudioFormat::ULAW_8K).await;
    let _two = start_call(&h, "LIS-B", "stream-LIS-B", AudioFormat::ULAW_8K).await;
    assert_eq!(open(&h, "LIS-A", "", None).await.err(), Some(401), "no token");
    assert_eq!(
        open(&h, "LIS-A", "", Some("wrong")).await.err(),
        Some(401),
        "a wrong token"
    );
    let for_b = ticket(&h, "/calls/LIS-B/listen/ticket").await;
    let other_call = open(&h, "LIS-A", &format!("?ticket={for_b}"), None).await;
    assert_eq!(other_call.err(), Some(401), "another call's ticket");
    let events = ticket(&h, "/calls/events/ticket").await;
    let event_ticket = open(&h, "LIS-A", &format!("?ticket={events}"), None).await;
    assert_eq!(event_ticket.err(), Some(401), "the event stream's ticket");
    assert!(
        open(&h, "LIS-B", &format!("?ticket={for_b}"), None).await.is_ok(),
        "its own ticket"
    );
    assert_eq!(
        open(&h, "LIS-Z", "", Some(TOKEN)).await.err(),
        Some(404),
        "not a live call"
    );

    let off = start(quiet_script(), |c| c.admin.allow_listen = false).await;
    let _three = start_call(&off, "LIS-C", "stream-LIS-C", AudioFormat::ULAW_8K).await;
    assert_eq!(
        open(&off, "LIS-C", "", None).await.err(),
        Some(403),
        "admin.allow_listen = false"
    );
}

#[actix_rt::test]
async fn an_expired_ticket_opens_neither_the_listen_socket_nor_the_event_stream() {
    let h = start(quiet_script(), |c| c.admin.token = Some(TOKEN.into())).await;
    let _conn = start_call(&h, "LIS-X", "stream-LIS-X", AudioFormat::ULAW_8K).await;
    let listen_ticket = ticket(&h, "/calls/LIS-X/listen/ticket").await;
    let events_ticket = ticket(&h, "/calls/events/ticket").await;
    tokio::time::sleep(TICKET_TTL + Duration::from_secs(1)).await;
    let refused = open(&h, "LIS-X", &format!("?ticket={listen_ticket}"), None).await;
    assert_eq!(refused.err(), Some(401), "the listen socket");
    let resp = awc::Client::default()
        .get(format!("{}/calls/events?ticket={events_ticket}", h.gw.admin_url))
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status().as_u16(), 401, "the event stream");
}

#[actix_rt::test]
async fn a_listener_that_stops_reading_loses_frames_and_the_call_loses_none() {
    let h = start_echo(|_| {}).await;
    let mut conn = start_call(&h, "LIS-S", "stream-LIS-S", AudioFormat::ULAW_8K).await;
    let _stalled = stalled_listener(&h, "LIS-S").await;
    let frames = tone_frames(50);
    let (mut sent, mut echoed, mut let_go) = (0, 0, false);
    for _ in 0..20 {
        stream_frames(&conn, &frames).await;
        sent += frames.len() * 160;
        echoed += audio_of(&listen(&mut conn, Duration::from_millis(20)).await).len();
        if h.gw.metrics.watching.listeners.get() == 0 {
            let_go = true;
            break;
        }
    }
    assert!(let_go, "the stalled listener is let go");
    assert!(
        h.gw.metrics.watching.listen_frames_dropped.get() > 0,
        "it lost frames on the way"
    );
    echoed += audio_of(&listen(&mut conn, Duration::from_millis(500)).await).len();
    assert_eq!(echoed, sent, "the carrier heard every frame of the agent's echo");
    let _ = conn_closed(conn).await;
}

async fn conn_closed(mut conn: CarrierConn) -> Vec<Heard> {
    conn.close(1000);
    listen(&mut conn, Duration::from_millis(200)).await
}

/// A listener whose socket reads nothing after the upgrade, with a receive buffer as small as the kernel
/// allows: what the gateway sends it piles up in the gateway.
async fn stalled_listener(h: &Harness, call_id: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(1024).expect("small buffer");
    let addr =
        h.gw.admin_url
            .trim_start_matches("http://")
            .parse()
            .expect("admin address");
    let mut sock = socket.connect(addr).await.expect("connect");
    let upgrade = format!(
        "GET /calls/{call_id}/listen HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    sock.write_all(upgrade.as_bytes()).await.expect("upgrade sent");
    let mut head = vec![0u8; 256];
    let n = sock.read(&mut head).await.expect("upgrade answered");
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101"));
    sock
}

async fn get_json_with(h: &Harness, path: &str) -> Value {
    let mut resp = as_admin(h, awc::http::Method::GET, path).send().await.expect("answers");
    resp.json().await.unwrap_or_default()
}

async fn metrics_text(h: &Harness) -> String {
    let mut resp = as_admin(h, awc::http::Method::GET, "/metrics")
        .send()
        .await
        .expect("answers");
    String::from_utf8_lossy(&resp.body().await.expect("body")).into_owned()
}
