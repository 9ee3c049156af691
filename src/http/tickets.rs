//! Short-lived tickets for the admin event stream: a browser's `EventSource` cannot send the admin token as
//! a header, and a token in a URL ends up in logs, so the page trades the token (`POST
//! /calls/events/ticket`) for a ticket that is good for `TICKET_TTL` and for the event stream only.

use crate::values::same_secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a ticket opens the stream for (the stream, once open, stays open).
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// Issues and checks tickets with a key of this process's own (a restart voids them all).
pub struct Tickets {
    key: [u8; 32],
}

impl Default for Tickets {
    fn default() -> Self {
        Tickets { key: rand::random() }
    }
}

impl Tickets {
    /// A ticket good until `TICKET_TTL` from now: `<expiry ms>.<HMAC-SHA256 of it, hex>`.
    pub fn issue(&self) -> String {
        let expires = unix_ms(SystemTime::now() + TICKET_TTL);
        format!("{expires}.{}", self.sign(expires))
    }

    /// Whether `ticket` is one of ours and not expired.
    pub fn verify(&self, ticket: &str) -> bool {
        let Some((expires, sig)) = ticket.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<u64>() else {
            return false;
        };
        expires >= unix_ms(SystemTime::now()) && same_secret(sig.as_bytes(), self.sign(expires).as_bytes())
    }

    fn sign(&self, expires: u64) -> String {
        // A 32-byte key always makes a MAC; the fallback only keeps this free of a panic path.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(format!("events:{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_until_it_expires_and_only_as_issued() {
        let t = Tickets::default();
        let ticket = t.issue();
        assert!(t.verify(&ticket));
        assert!(!Tickets::default().verify(&ticket), "another process's key");
        let (expires, sig) = ticket.split_once('.').expect("shape");
        let later = expires.parse::<u64>().expect("ms") + 60_000;
        assert!(
            !t.verify(&format!("{later}.{sig}")),
            "a longer life is not given by editing it"
        );
        let past = unix_ms(SystemTime::now()) - 1;
        assert!(!t.verify(&format!("{past}.{}", t.sign(past))), "an expired ticket");
        assert!(!t.verify("") && !t.verify("x.y") && !t.verify("1."));
    }
}
