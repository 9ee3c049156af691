//! Short-lived tickets for the admin listener's browser connections: a browser's `EventSource` and
//! `WebSocket` cannot send the admin token as a header, and a token in a URL ends up in logs, so the page
//! trades the token for a ticket that is good for `TICKET_TTL` and for one purpose: the event stream
//! (`POST /calls/events/ticket`) or listening to one call (`POST /calls/{id}/listen/ticket`).

use crate::values::{same_secret, CallId};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a ticket opens its connection for (the connection, once open, stays open).
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// What a ticket opens.
pub enum Purpose<'a> {
    /// `GET /calls/events`.
    Events,
    /// `GET /calls/{id}/listen` for this call id.
    Listen(&'a CallId),
}

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
    /// A ticket for `purpose`, good until `TICKET_TTL` from now: `<expiry ms>.<HMAC-SHA256 of the purpose
    /// and expiry, hex>`.
    pub fn issue(&self, purpose: &Purpose) -> String {
        let expires = unix_ms(SystemTime::now() + TICKET_TTL);
        format!("{expires}.{}", self.sign(purpose, expires))
    }

    /// Whether `ticket` is one of ours, for `purpose`, and not expired.
    pub fn verify(&self, purpose: &Purpose, ticket: &str) -> bool {
        let Some((expires, sig)) = ticket.split_once('.') else {
            return false;
        };
        let Ok(expires) = expires.parse::<u64>() else {
            return false;
        };
        let signed = self.sign(purpose, expires);
        expires >= unix_ms(SystemTime::now()) && same_secret(sig.as_bytes(), signed.as_bytes())
    }

    fn sign(&self, purpose: &Purpose, expires: u64) -> String {
        // A 32-byte key always makes a MAC; the fallback only keeps this free of a panic path.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        let scope = match purpose {
            Purpose::Events => "events".to_string(),
            Purpose::Listen(call) => format!("listen:{call}"),
        };
        mac.update(format!("{scope}:{expires}").as_bytes());
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
        let ticket = t.issue(&Purpose::Events);
        assert!(t.verify(&Purpose::Events, &ticket));
        assert!(
            !Tickets::default().verify(&Purpose::Events, &ticket),
            "another process's key"
        );
        let (a, b) = (
            CallId::parse("c", "A").expect("id"),
            CallId::parse("c", "B").expect("id"),
        );
        let listen_a = t.issue(&Purpose::Listen(&a));
        assert!(t.verify(&Purpose::Listen(&a), &listen_a));
        assert!(!t.verify(&Purpose::Listen(&b), &listen_a), "another call");
        assert!(!t.verify(&Purpose::Events, &listen_a), "another purpose");
        let (expires, sig) = ticket.split_once('.').expect("shape");
        let later = expires.parse::<u64>().expect("ms") + 60_000;
        assert!(
            !t.verify(&Purpose::Events, &format!("{later}.{sig}")),
            "a longer life is not given by editing it"
        );
        let past = unix_ms(SystemTime::now()) - 1;
        let expired = format!("{past}.{}", t.sign(&Purpose::Events, past));
        assert!(!t.verify(&Purpose::Events, &expired), "an expired ticket");
        assert!(["", "x.y", "1."].iter().all(|bad| !t.verify(&Purpose::Events, bad)));
    }
}
