//! Plivo Audio Streams: the answer URL (`POST /plivo/answer`, signed V3, or V2 when allowed, with a nonce
//! seen once) answered in Plivo XML, and the stream Mcube's mirrors; Plivo hangs up when the stream closes.

pub mod config;
pub mod endpoint;
pub mod sim;
pub mod webhook;

use super::{Dialect, Framing};

pub struct Plivo;

pub static DIALECT: Plivo = Plivo;

impl Dialect for Plivo {
    fn webhook(&self) -> (&'static str, &'static str) {
        ("POST", "/plivo/answer")
    }

    fn framing(&self) -> Framing {
        Framing::Plivo { terminate: false }
    }
}
