//! The Mcube carrier simulator: POSTs the refurl, opens the returned `wss_url`, sends `start` and 20 ms
//! frames of caller audio, and reports what it hears back (`playAudio`, `checkpoint`, `clearAudio`,
//! `terminate`, the close; Exotel's `media`, `mark`, `clear` too). Used by the demo, the tests and load
//! generation. The other carriers' webhooks and events are in `dialects`.

use super::placing::client;
pub use super::placing::CallRequest;
use super::sent::{decoded, read_sent, Sent};
use crate::audio::codec::decode_pcm16le;
use crate::audio::format::AudioFormat;
pub use crate::carriers::mcube::sim::{media_event, played_stream_event, post_refurl, start_event, Admission};
use actix_codec::Framed;
use awc::ws::{Codec as WsCodec, Frame, Message as WsMessage};
use awc::BoxedSocket;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the carrier heard from the gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// A `playAudio` frame, decoded.
    Audio(Vec<u8>),
    Checkpoint(String),
    Clear,
    Terminate,
    /// Any other text.
    Other(String),
    /// The socket closed (with the gateway's close code, if it sent one).
    Closed(Option<u16>),
}

/// An open media WebSocket to the gateway.
/// Dropping it drops the socket at once, with no close frame: a caller whose line died.
pub struct CarrierConn {
    tx: mpsc::UnboundedSender<WsMessage>,
    heard: mpsc::UnboundedReceiver<(Instant, Heard)>,
    tasks: [tokio::task::JoinHandle<()>; 2],
    /// Whether the gateway's pings are answered (a carrier that vanished answers nothing).
    answer_pings: Arc<AtomicBool>,
}

impl Drop for CarrierConn {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A carrier's media WebSocket to the gateway, as frames.
pub type MediaSocket = Framed<BoxedSocket, WsCodec>;

/// Opens the media WebSocket at the refurl's `wss_url`.
pub async fn open_media_socket(wss_url: &str) -> Result<MediaSocket, UpgradeRefused> {
    open_media_socket_as(wss_url, None).await
}

/// Opens the media WebSocket with an `Authorization` header (Exotel's Basic auth), if given.
pub async fn open_media_socket_as(wss_url: &str, authorization: Option<&str>) -> Result<MediaSocket, UpgradeRefused> {
    let mut req = client().ws(wss_url).max_frame_size(1 << 20);
    if let Some(auth) = authorization {
        req = req.set_header("authorization", auth);
    }
    let (_, socket) = req.connect().await.map_err(|e| {
        let status = match &e {
            awc::error::WsClientError::InvalidResponseStatus(s) => Some(s.as_u16()),
            _ => None,
        };
        UpgradeRefused {
            status,
            detail: e.to_string(),
        }
    })?;
    Ok(socket)
}

/// Why the gateway refused the WebSocket upgrade.
#[derive(Debug, Clone, PartialEq)]
pub struct UpgradeRefused {
    /// HTTP status, when the gateway answered one.
    pub status: Option<u16>,
    pub detail: String,
}

impl CarrierConn {
    /// Opens the media socket. With `auto_ack`, every `checkpoint` is answered with `playedStream` as the
    /// real carrier does once the audio before it has played.
    pub async fn connect(wss_url: &str, auto_ack: bool) -> Result<CarrierConn, UpgradeRefused> {
        Self::connect_as(wss_url, auto_ack, None).await
    }

    /// `connect`, presenting `authorization` on the upgrade (Exotel's Basic auth).
    pub async fn connect_as(
        wss_url: &str,
        auto_ack: bool,
        authorization: Option<&str>,
    ) -> Result<CarrierConn, UpgradeRefused> {
        let socket = open_media_socket_as(wss_url, authorization).await?;
        Ok(Self::over(socket, auto_ack))
    }

    /// A carrier on a media socket opened elsewhere (say, over TLS with a client trusting a private CA).
    pub fn over(socket: MediaSocket, auto_ack: bool) -> CarrierConn {
        let (tx, rx) = mpsc::unbounded_channel();
        let (heard_tx, heard) = mpsc::unbounded_channel();
        let (sink, stream) = socket.split();
        let writer = actix_rt::spawn(write_loop(sink, rx));
        let answer_pings = Arc::new(AtomicBool::new(true));
        let pongs = Pongs {
            tx: tx.clone(),
            on: answer_pings.clone(),
        };
        let reader = actix_rt::spawn(read_loop(stream, heard_tx, auto_ack.then(|| tx.clone()), pongs));
        CarrierConn {
            tx,
            heard,
            tasks: [writer, reader],
            answer_pings,
        }
    }

    /// From now on the gateway's pings go unanswered, as from a carrier whose network vanished.
    pub fn stop_answering_pings(&self) {
        self.answer_pings.store(false, Ordering::SeqCst);
    }

    pub fn send_text(&self, text: String) {
        let _ = self.tx.send(WsMessage::Text(text.into()));
    }

    /// The Mcube `start` event.
    pub fn send_start(&self, call_id: &str, stream_id: &str, format: AudioFormat) {
        self.send_text(start_event(call_id, stream_id, format));
    }

    /// A `media` event carrying `audio` as base64.
    pub fn send_media(&self, audio: &[u8]) {
        self.send_text(media_event(audio));
    }

    /// Raw audio as a binary frame.
    pub fn send_binary(&self, audio: &[u8]) {
        let _ = self.tx.send(WsMessage::Binary(Bytes::copy_from_slice(audio)));
    }

    /// Closes with `code` (the caller hangs up).
    pub fn close(&self, code: u16) {
        let _ = self
            .tx
            .send(WsMessage::Close(Some(awc::ws::CloseCode::from(code).into())));
    }

    /// The next thing heard, or `None` when nothing arrives within `timeout` or the socket is done.
    pub async fn next(&mut self, timeout: Duration) -> Option<(Instant, Heard)> {
        tokio::time::timeout(timeout, self.heard.recv()).await.ok().flatten()
    }

    /// Everything heard until the socket closes or `timeout` passes with nothing new.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<(Instant, Heard)> {
        let mut all = Vec::new();
        while let Some(h) = self.next(quiet).await {
            let closed = matches!(h.1, Heard::Closed(_));
            all.push(h);
            if closed {
                break;
            }
        }
        all
    }
}

/// Where the reader sends pongs, and whether it should.
struct Pongs {
    tx: mpsc::UnboundedSender<WsMessage>,
    on: Arc<AtomicBool>,
}

type Sink = futures_util::stream::SplitSink<MediaSocket, WsMessage>;
type Stream = futures_util::stream::SplitStream<MediaSocket>;

async fn write_loop(mut sink: Sink, mut rx: mpsc::UnboundedReceiver<WsMessage>) {
    while let Some(msg) = rx.recv().await {
        let closing = matches!(msg, WsMessage::Close(_));
        if sink.send(msg).await.is_err() || closing {
            break;
        }
    }
    let _ = sink.close().await;
}

async fn read_loop(
    mut stream: Stream,
    heard: mpsc::UnboundedSender<(Instant, Heard)>,
    ack: Option<mpsc::UnboundedSender<WsMessage>>,
    pongs: Pongs,
) {
    while let Some(frame) = stream.next().await {
        let event = match frame {
            Ok(Frame::Text(text)) => classify(&text, ack.as_ref()),
            Ok(Frame::Ping(p)) => {
                // A real carrier answers the gateway's heartbeat.
                if pongs.on.load(Ordering::SeqCst) {
                    let _ = pongs.tx.send(WsMessage::Pong(p));
                }
                continue;
            }
            Ok(Frame::Close(reason)) => {
                let _ = heard.send((Instant::now(), Heard::Closed(reason.map(|r| u16::from(r.code)))));
                return;
            }
            Ok(_) => continue,
            Err(_) => break,
        };
        if heard.send((Instant::now(), event)).is_err() {
            return;
        }
    }
    let _ = heard.send((Instant::now(), Heard::Closed(None)));
}

fn classify(text: &[u8], ack: Option<&mpsc::UnboundedSender<WsMessage>>) -> Heard {
    match read_sent(text) {
        Sent::Audio(b64) => Heard::Audio(decoded(&b64)),
        Sent::Mark { name, answer } => {
            if let Some(ack) = ack {
                let _ = ack.send(WsMessage::Text(answer.into()));
            }
            Heard::Checkpoint(name)
        }
        Sent::Clear => Heard::Clear,
        Sent::Terminate => Heard::Terminate,
        Sent::Other => Heard::Other(String::from_utf8_lossy(text).into_owned()),
    }
}

/// PCM16 bytes to samples (for checks on what was heard in a linear format).
pub fn pcm_samples(bytes: &[u8]) -> Vec<i16> {
    let mut out = Vec::with_capacity(bytes.len() / 2);
    decode_pcm16le(bytes, &mut out);
    out
}
