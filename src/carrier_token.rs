//! Per-call tokens for the carrier's WebSocket URL: HMAC-SHA256 over the call id and an expiry, so only the
//! carrier we answered can open that call's media socket, and only for a short while.

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

    fn mac(&self, call_id: &str, expires: u64) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(call_id.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// `<expiry unix seconds>.<hex hmac>`.
    pub fn issue(&self, call_id: &str) -> String {
        self.issue_at(call_id, SystemTime::now())
    }

    fn issue_at(&self, call_id: &str, now: SystemTime) -> String {
        let expires = (now + self.ttl).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        format!(
            "{expires}.{}",
            hex::encode(self.mac(call_id, expires).finalize().into_bytes())
        )
    }

    /// True when the token was issued for this call id and has not expired (constant-time compare).
    pub fn verify(&self, call_id: &str, token: &str) -> bool {
        self.verify_at(call_id, token, SystemTime::now())
    }

    fn verify_at(&self, call_id: &str, token: &str, now: SystemTime) -> bool {
        let Some((exp, sig)) = token.split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(sig)) = (exp.parse::<u64>(), hex::decode(sig)) else {
            return false;
        };
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        expires >= now && self.mac(call_id, expires).verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_to_call_and_expiry() {
        let t = CallTokens::new(Some("s3cret"), Duration::from_secs(30)).expect("key");
        let tok = t.issue("CALL-1");
        assert!(t.verify("CALL-1", &tok));
        assert!(!t.verify("CALL-2", &tok));
        assert!(!t.verify("CALL-1", "garbage"));
        assert!(!t.verify("CALL-1", &tok.replace('.', "x")));
        let later = SystemTime::now() + Duration::from_secs(31);
        assert!(!t.verify_at("CALL-1", &tok, later));
        let other = CallTokens::new(Some("other"), Duration::from_secs(30)).expect("key");
        assert!(!other.verify("CALL-1", &tok));
    }
}
