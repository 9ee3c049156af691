//! `POST /elevenlabs/post-call`: ElevenLabs' post-call webhook, on the carrier-facing listener (ElevenLabs
//! calls it from the internet; docs/post-call.md). Nothing is read before it verifies: `ElevenLabs-Signature:
//! t=<unix>,v0=<hex>`, HMAC-SHA256 of `"<t>.<raw body>"` keyed with `WSAPI__ELEVENLABS__WEBHOOK_SECRET`, `t`
//! no older than `MAX_AGE` (nor more than `MAX_AHEAD` ahead). Any failure is a 401, counted, and writes
//! nothing. A verified delivery is read once (`protocol::post_call`) and handed to the records without
//! waiting on them: ElevenLabs gets its 200 at once. Without the secret the endpoint is not served.

use super::reply::{error_json, same_secret};
use super::state::AppState;
use crate::db::batcher::Save;
use crate::db::models::{AnalysisRow, DbWrite};
use crate::protocol::post_call::{self, Delivery};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The oldest a signed delivery may be (ElevenLabs' own advice): a replay later than this is refused.
const MAX_AGE: Duration = Duration::from_secs(30 * 60);
/// How far ahead of our clock a timestamp may be (clock skew).
const MAX_AHEAD: Duration = Duration::from_secs(5 * 60);

/// The payload limit of this route (a long call's transcript).
pub fn body_limit() -> web::PayloadConfig {
    web::PayloadConfig::new(post_call::MAX_BODY_BYTES)
}

pub async fn post_call(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let Some(secret) = state.config.elevenlabs.webhook_secret.as_deref() else {
        return error_json(
            StatusCode::NOT_FOUND,
            "the post-call webhook is off (no WSAPI__ELEVENLABS__WEBHOOK_SECRET)",
        );
    };
    let counted = |outcome: &str| state.metrics.upstream.post_call.with_label_values(&[outcome]).inc();
    let signature = req.headers().get("elevenlabs-signature").and_then(|v| v.to_str().ok());
    if let Err(refusal) = verify(secret, signature, &body, SystemTime::now()) {
        counted(refusal.outcome());
        log::warn!("elevenlabs: post-call webhook refused: {}", refusal.why());
        return error_json(StatusCode::UNAUTHORIZED, refusal.outcome());
    }
    match post_call::parse(&body) {
        Ok(Delivery::Outcome(outcome)) => {
            counted("accepted");
            log::info!(
                "elevenlabs: post-call {} for conversation {}",
                outcome.kind,
                outcome.conversation_id
            );
            state.db.do_send(Save {
                writes: vec![DbWrite::Analysis(Box::new(AnalysisRow::of(*outcome, "webhook")))],
            });
            HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
        }
        Ok(Delivery::Other(kind)) => {
            counted("ignored");
            log::debug!("elevenlabs: post-call webhook of type '{kind}' not kept");
            HttpResponse::Ok().json(serde_json::json!({"status": "ignored"}))
        }
        Err(unreadable) => {
            counted("unreadable");
            log::warn!("elevenlabs: post-call webhook unreadable: {}", unreadable.0);
            error_json(StatusCode::BAD_REQUEST, &unreadable.0)
        }
    }
}

/// Why a delivery was not believed.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// No header, or not `t=…,v0=…`.
    Unsigned,
    /// Signed with another key, or the body was changed after signing.
    BadSignature,
    /// Signed too long ago (or too far ahead): a replay.
    Stale(i64),
}

impl Refusal {
    fn outcome(&self) -> &'static str {
        match self {
            Refusal::Unsigned | Refusal::BadSignature => "bad_signature",
            Refusal::Stale(_) => "stale",
        }
    }

    fn why(&self) -> String {
        match self {
            Refusal::Unsigned => "no ElevenLabs-Signature header of the form t=…,v0=…".into(),
            Refusal::BadSignature => "the signature does not match the body".into(),
            Refusal::Stale(age) => format!("signed {age} s from now (at most 1800 s old, 300 s ahead)"),
        }
    }
}

/// Checks `header` (`t=<unix>,v0=<hex>`, several `v0` allowed, for a key being rotated) over `body`.
fn verify(secret: &str, header: Option<&str>, body: &[u8], now: SystemTime) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::Unsigned)?;
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v0", v)) => signatures.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(Refusal::Unsigned)?;
    if signatures.is_empty() {
        return Err(Refusal::Unsigned);
    }
    let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let age = now_s - t;
    if age > MAX_AGE.as_secs() as i64 || -age > MAX_AHEAD.as_secs() as i64 {
        return Err(Refusal::Stale(-age));
    }
    let expected = sign(secret, t, body);
    if signatures
        .iter()
        .any(|s| same_secret(s.as_bytes(), expected.as_bytes()))
    {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

/// `v0` of a body sent at `t`: hex HMAC-SHA256 of `"<t>.<body>"`. Public for the agent simulator, which
/// signs its deliveries as ElevenLabs does.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; the fallback only keeps this free of a panic path.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_is_believed_only_as_signed_and_only_while_fresh() {
        let now = SystemTime::now();
        let t = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let body = br#"{"type":"post_call_transcription"}"#;
        let good = format!("t={t},v0={}", sign("whsec", t, body));
        assert_eq!(verify("whsec", Some(&good), body, now), Ok(()));
        let rotated = format!("t={t},v0=00,v0={}", sign("whsec", t, body));
        assert_eq!(verify("whsec", Some(&rotated), body, now), Ok(()), "any of several v0");
        assert_eq!(verify("other", Some(&good), body, now), Err(Refusal::BadSignature));
        let altered = br#"{"type":"post_call_transcription" }"#;
        assert_eq!(verify("whsec", Some(&good), altered, now), Err(Refusal::BadSignature));
        let old = t - 31 * 60;
        let stale = format!("t={old},v0={}", sign("whsec", old, body));
        assert!(matches!(
            verify("whsec", Some(&stale), body, now),
            Err(Refusal::Stale(_))
        ));
        for bad in ["", "v0=ab", "t=x,v0=ab", &format!("t={t}")] {
            assert_eq!(verify("whsec", Some(bad), body, now), Err(Refusal::Unsigned), "{bad}");
        }
        assert_eq!(verify("whsec", None, body, now), Err(Refusal::Unsigned));
    }
}
