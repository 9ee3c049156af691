//! Mcube: the refurl webhook (`POST /mcube/call`, JSON: an admission or a hang-up report) answered with the
//! stream's `wss_url`, and a Plivo-style stream that hangs up in band (`terminate`).

pub mod config;
pub mod endpoint;
pub mod sim;
pub mod refurl;

use super::{Dialect, Framing};

pub struct Mcube;

pub static DIALECT: Mcube = Mcube;

impl Dialect for Mcube {
    fn webhook(&self) -> (&'static str, &'static str) {
        ("POST", "/mcube/call")
    }

    fn framing(&self) -> Framing {
        Framing::Plivo { terminate: true }
    }
}
