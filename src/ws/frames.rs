//! The WebSocket plumbing every socket we serve shares: reassembly of fragmented messages with a size cap,
//! the frame guard that refuses oversized frames at their header, and the sorting of what a peer sent into
//! messages and close codes.

use actix_http::ws::{CloseCode, CloseReason, Item, Message, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

/// A whole message rebuilt from its fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    Text(Bytes),
    Binary(Bytes),
}

/// Why a fragment sequence was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    /// The message grew past the cap (close 1009).
    #[error("fragmented message larger than {0} bytes")]
    TooLarge(usize),
    /// A continuation without a first fragment, or a new first fragment mid-message (close 1002).
    #[error("continuation frame out of sequence")]
    OutOfSequence,
}

/// Collects one fragmented message at a time.
pub struct Reassembler {
    buf: BytesMut,
    text: Option<bool>,
    max: usize,
}

impl Reassembler {
    pub fn new(max: usize) -> Self {
        Reassembler {
            buf: BytesMut::new(),
            text: None,
            max,
        }
    }

    /// Feeds one continuation item; returns the message once its last fragment has arrived.
    pub fn push(&mut self, item: Item) -> Result<Option<Assembled>, ReassemblyError> {
        let (first, data, last) = match item {
            Item::FirstText(b) => (Some(true), b, false),
            Item::FirstBinary(b) => (Some(false), b, false),
            Item::Continue(b) => (None, b, false),
            Item::Last(b) => (None, b, true),
        };
        match (first, self.text) {
            (Some(_), Some(_)) | (None, None) => {
                self.reset();
                return Err(ReassemblyError::OutOfSequence);
            }
            (Some(is_text), None) => self.text = Some(is_text),
            (None, Some(_)) => {}
        }
        if self.buf.len() + data.len() > self.max {
            self.reset();
            return Err(ReassemblyError::TooLarge(self.max));
        }
        self.buf.extend_from_slice(&data);
        if !last {
            return Ok(None);
        }
        let whole = self.buf.split().freeze();
        let is_text = self.text.take().unwrap_or(false);
        self.buf = BytesMut::new();
        Ok(Some(if is_text {
            Assembled::Text(whole)
        } else {
            Assembled::Binary(whole)
        }))
    }

    fn reset(&mut self) {
        self.buf = BytesMut::new();
        self.text = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_fragments_and_enforces_cap_and_order() {
        let mut r = Reassembler::new(10);
        assert_eq!(r.push(Item::FirstText(Bytes::from_static(b"ab"))), Ok(None));
        assert_eq!(r.push(Item::Continue(Bytes::from_static(b"cd"))), Ok(None));
        assert_eq!(
            r.push(Item::Last(Bytes::from_static(b"e"))),
            Ok(Some(Assembled::Text(Bytes::from_static(b"abcde"))))
        );
        assert_eq!(
            r.push(Item::Continue(Bytes::from_static(b"x"))),
            Err(ReassemblyError::OutOfSequence)
        );
        assert_eq!(r.push(Item::FirstBinary(Bytes::from_static(b"123456"))), Ok(None));
        assert_eq!(
            r.push(Item::Last(Bytes::from_static(b"789012"))),
            Err(ReassemblyError::TooLarge(10))
        );
    }
}

/// What one read from a peer's WebSocket amounts to, after reassembly and the checks every socket we serve
/// shares (the carrier's media socket and the conformance echo), so both close with the same codes.
#[derive(Debug)]
pub enum Inbound {
    /// A whole text message, valid UTF-8.
    Text(ByteString),
    /// A whole binary message.
    Binary(Bytes),
    Ping(Bytes),
    /// A pong, a fragment of a message still arriving, or nothing.
    Nothing,
    /// The peer closed, with its reason.
    Closed(Option<CloseReason>),
    /// The peer broke the protocol: close with `code`.
    Refuse {
        code: CloseCode,
        why: String,
    },
    /// The connection dropped under us.
    Lost(std::io::Error),
}

/// Sorts one item of an actix WebSocket stream. `oversized`: the frame guard in front of the codec cut
/// the stream because a frame declared more than the limit.
pub fn sort_inbound(msg: Result<Message, ProtocolError>, reassembler: &mut Reassembler, oversized: bool) -> Inbound {
    let refuse = |code, why: &str| Inbound::Refuse {
        code,
        why: why.to_string(),
    };
    match msg {
        Ok(Message::Text(text)) => Inbound::Text(text),
        Ok(Message::Binary(bin)) => Inbound::Binary(bin),
        Ok(Message::Continuation(item)) => match reassembler.push(item) {
            Ok(Some(Assembled::Text(b))) => match ByteString::try_from(b) {
                Ok(text) => Inbound::Text(text),
                Err(_) => refuse(CloseCode::Invalid, "fragmented text message is not UTF-8"),
            },
            Ok(Some(Assembled::Binary(bin))) => Inbound::Binary(bin),
            Ok(None) => Inbound::Nothing,
            Err(e @ ReassemblyError::TooLarge(_)) => refuse(CloseCode::Size, &e.to_string()),
            Err(e @ ReassemblyError::OutOfSequence) => refuse(CloseCode::Protocol, &e.to_string()),
        },
        Ok(Message::Ping(p)) => Inbound::Ping(p),
        Ok(Message::Pong(_)) | Ok(Message::Nop) => Inbound::Nothing,
        Ok(Message::Close(reason)) => Inbound::Closed(reason),
        Err(_) if oversized => refuse(CloseCode::Size, "frame larger than the limit declared"),
        // actix reports a text frame that is not UTF-8 as an I/O error; RFC 6455 wants 1007.
        Err(ProtocolError::Io(e)) if e.to_string().to_ascii_lowercase().contains("utf-8") => {
            refuse(CloseCode::Invalid, "text frame is not UTF-8")
        }
        Err(ProtocolError::Io(e)) => Inbound::Lost(e),
        Err(ProtocolError::Overflow) => refuse(CloseCode::Size, "frame over the size limit"),
        Err(e) => refuse(CloseCode::Protocol, &format!("WebSocket protocol error: {e}")),
    }
}

/// Watches a WebSocket byte stream frame header by frame header, passing the bytes through unchanged, and
/// ends the stream with an error as soon as a frame *declares* more than `max_frame` bytes — before any of
/// that frame is buffered. The codec behind it checks sizes only once a frame is whole, and the actor
/// layer reads everything available before decoding, so a peer declaring a 1 GiB frame could otherwise
/// make the server buffer it.
pub struct FrameGuard<S> {
    inner: S,
    max_frame: u64,
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to pass; `None` while reading a header.
    remaining: Option<u64>,
    /// Set when the guard cut the stream, so the reader can answer 1009 rather than treat it as a drop.
    tripped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    done: bool,
}

impl<S> FrameGuard<S> {
    pub fn new(inner: S, max_frame: usize, tripped: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        FrameGuard {
            inner,
            max_frame: max_frame as u64,
            header: [0; 14],
            have: 0,
            remaining: None,
            tripped,
            done: false,
        }
    }

    /// Header length once its first two bytes are known.
    fn header_len(&self) -> usize {
        let masked = self.header[1] & 0x80 != 0;
        let ext = match self.header[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if masked { 4 } else { 0 }
    }

    fn declared_len(&self) -> u64 {
        match self.header[1] & 0x7F {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        }
    }

    /// Follows the frame structure through `chunk`; false when a frame declares too much. Public for the
    /// property tests and the fuzz target, which drive it without a stream (`FrameGuard<()>`).
    pub fn inspect(&mut self, mut chunk: &[u8]) -> bool {
        while !chunk.is_empty() {
            match self.remaining {
                Some(left) => {
                    let n = (chunk.len() as u64).min(left);
                    chunk = &chunk[n as usize..];
                    self.remaining = (left > n).then_some(left - n);
                }
                None => {
                    let want = if self.have < 2 { 2 } else { self.header_len() };
                    let take = (want - self.have).min(chunk.len());
                    self.header[self.have..self.have + take].copy_from_slice(&chunk[..take]);
                    self.have += take;
                    chunk = &chunk[take..];
                    if self.have >= 2 && self.have == self.header_len() {
                        let len = self.declared_len();
                        if len > self.max_frame {
                            return false;
                        }
                        self.have = 0;
                        self.remaining = (len > 0).then_some(len);
                    }
                }
            }
        }
        true
    }
}

impl<S> futures_util::Stream for FrameGuard<S>
where
    S: futures_util::Stream<Item = Result<Bytes, actix_http::error::PayloadError>> + Unpin,
{
    type Item = Result<Bytes, actix_http::error::PayloadError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        match std::pin::Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if self.inspect(&chunk) {
                    Poll::Ready(Some(Ok(chunk)))
                } else {
                    self.done = true;
                    self.tripped.store(true, std::sync::atomic::Ordering::SeqCst);
                    Poll::Ready(Some(Err(actix_http::error::PayloadError::Overflow)))
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod guard_tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn frame(len: u64) -> Vec<u8> {
        let mut f = vec![0x82];
        match len {
            0..=125 => f.push(0x80 | len as u8),
            126..=0xFFFF => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(0x80 | 127);
                f.extend_from_slice(&len.to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f
    }

    async fn run(chunks: Vec<Vec<u8>>, max: usize) -> (usize, bool, bool) {
        let tripped = Arc::new(AtomicBool::new(false));
        let inner = futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from(c))));
        let mut g = FrameGuard::new(inner, max, tripped.clone());
        let (mut passed, mut errored) = (0, false);
        while let Some(item) = g.next().await {
            match item {
                Ok(b) => passed += b.len(),
                Err(_) => errored = true,
            }
        }
        (passed, errored, tripped.load(Ordering::SeqCst))
    }

    #[actix_rt::test]
    async fn small_frames_pass_split_anywhere() {
        let mut bytes = Vec::new();
        for len in [0u64, 5, 125, 126, 300, 70_000] {
            bytes.extend(frame(len));
            bytes.extend(std::iter::repeat_n(0u8, len as usize));
        }
        let chunks: Vec<Vec<u8>> = bytes.chunks(7).map(<[u8]>::to_vec).collect();
        let total = bytes.len();
        assert_eq!(run(chunks, 100_000).await, (total, false, false));
    }

    #[actix_rt::test]
    async fn a_huge_declared_frame_is_cut_at_its_header() {
        let mut first = frame(5);
        first.extend([0u8; 5]);
        let huge = frame(1 << 30);
        let (passed, errored, tripped) = run(
            vec![first.clone(), huge[..3].to_vec(), huge[3..].to_vec(), vec![0; 1000]],
            65_536,
        )
        .await;
        assert_eq!(passed, first.len() + 3, "nothing of the huge frame's payload passes");
        assert!(errored && tripped);
    }
}
