//! Per-call tokens for the carrier's WebSocket URL: HMAC-SHA256 over the call (its carrier and id) and an
//! expiry, so only the carrier we answered can open that call's media socket, and only for a short while.
//! Each field goes into the MAC with its length before it, so no choice of call id can make one call's
//! fields read as another's (an id may hold `:` or `.`, which a separator would have to forbid).

use crate::carriers::CallKey;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Issues and checks tokens with one secret.
pub struct CallTokens {
    /// The MAC keyed once at start-up; each token clones it.
    keyed: HmacSha256,
    ttl: Duration,
}

impl CallTokens {
    /// With no configured secret a random one is made, valid for this process only.
    pub fn new(secret: Option<&str>, ttl: Duration) -> Result<Self, hmac::digest::InvalidLength> {
        let key = match secret {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let mut k = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut k);
                k
            }
        };
        let keyed = HmacSha256::new_from_slice(&key)?;
        Ok(CallTokens { keyed, ttl })
    }

    fn mac(&self, call: &CallKey, expires: u64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        let expires = expires.to_string();
        for field in [call.carrier.as_str(), call.id.as_str(), expires.as_str()] {
            let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
            mac.update(&len.to_be_bytes());
            mac.update(field.as_bytes());
        }
        mac
    }

    /// `<expiry unix seconds>.<hex hmac>`.
    pub fn issue(&self, call: &CallKey) -> String {
        self.issue_at(call, SystemTime::now())
    }

    fn issue_at(&self, call: &CallKey, now: SystemTime) -> String {
        let expires = (now + self.ttl).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!(
            "{expires}.{}",
            hex::encode(self.mac(call, expires).finalize().into_bytes())
        )
    }

    /// True when the token was issued for this call (carrier and id) and has not expired (constant-time
    /// compare).
    pub fn verify(&self, call: &CallKey, token: &str) -> bool {
        self.verify_at(call, token, SystemTime::now())
    }

    fn verify_at(&self, call: &CallKey, token: &str, now: SystemTime) -> bool {
        let Some((exp, sig)) = token.split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(sig)) = (exp.parse::<u64>(), hex::decode(sig)) else {
            return false;
        };
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        expires >= now && self.mac(call, expires).verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::carriers::Carrier;
    use crate::values::CallId;

    fn key(carrier: Carrier, id: &str) -> CallKey {
        CallKey::new(carrier, CallId::parse("id", id).expect("id"))
    }

    #[test]
    fn bound_to_call_and_expiry() {
        let t = CallTokens::new(Some("s3cret"), Duration::from_secs(30)).expect("key");
        let call = key(Carrier::Mcube, "CALL-1");
        let tok = t.issue(&call);
        assert!(t.verify(&call, &tok));
        assert!(!t.verify(&key(Carrier::Mcube, "CALL-2"), &tok));
        assert!(
            !t.verify(&key(Carrier::Plivo, "CALL-1"), &tok),
            "another carrier's call"
        );
        assert!(!t.verify(&call, "garbage"));
        assert!(!t.verify(&call, &tok.replace('.', "x")));
        let later = SystemTime::now() + Duration::from_secs(31);
        assert!(!t.verify_at(&call, &tok, later));
        let other = CallTokens::new(Some("other"), Duration::from_secs(30)).expect("key");
        assert!(!other.verify(&call, &tok));
    }

    #[test]
    fn no_call_id_forges_another_carriers_subject() {
        let t = CallTokens::new(Some("s3cret"), Duration::from_secs(30)).expect("key");
        // The old subject was `plivo:<id>` for Plivo and the bare id for Mcube: Mcube's call `plivo:X`
        // opened Plivo's call `X`.
        let forged = t.issue(&key(Carrier::Mcube, "plivo:X"));
        assert!(!t.verify(&key(Carrier::Plivo, "X"), &forged));
        let forged = t.issue(&key(Carrier::Mcube, "plivoX"));
        assert!(!t.verify(&key(Carrier::Plivo, "X"), &forged));
    }
}
