//! Reassembly of fragmented WebSocket messages (continuation frames) with a size cap, shared by every
//! socket we read, so a fragmented message is handled instead of ending the connection.

use actix_http::ws::Item;
use bytes::{Bytes, BytesMut};

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
