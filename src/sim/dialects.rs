//! The other carriers as their documentation describes them (not as our writer does): Plivo's signed
//! answer-URL request, and Exotel's dynamic-URL request and stream events. Their streams open with
//! `carrier::CarrierConn`.

use super::carrier::{client, CallRequest};
use base64::Engine as _;
use serde_json::{json, Value};

/// Plivo's answer-URL request, signed as Plivo documents `X-Plivo-Signature-V2` (HMAC-SHA256 of the URL
/// without its query, then the nonce, keyed with the auth token, base64) when `auth_token` is given.
pub struct PlivoRequest<'a> {
    pub call: &'a CallRequest,
    /// The URL Plivo is configured to call (the gateway's carrier listener + `/plivo/answer`).
    pub answer_url: String,
    pub auth_token: Option<&'a str>,
    /// Sent instead of the right signature (a forgery).
    pub forged_signature: Option<&'a str>,
}

/// The gateway's answer to Plivo: its status and body (Plivo XML when 200).
#[derive(Debug, Clone, PartialEq)]
pub struct PlivoAnswer {
    pub status: u16,
    pub body: String,
}

impl PlivoAnswer {
    /// The `<Stream>` element's URL, unescaped, when the answer streams the call.
    pub fn stream_url(&self) -> Option<String> {
        let start = self.body.find("<Stream")?;
        let open = start + self.body[start..].find('>')? + 1;
        let close = open + self.body[open..].find("</Stream>")?;
        Some(self.body[open..close].replace("&amp;", "&"))
    }
}

/// POSTs Plivo's answer-URL form (`CallUUID`, `From`, `To`, `Direction`, `CallStatus`, `Event`).
pub async fn post_plivo_answer(req: PlivoRequest<'_>) -> Result<PlivoAnswer, String> {
    use base64::Engine as _;
    use hmac::Mac as _;
    let form = [
        ("CallUUID", req.call.call_id.as_str()),
        ("From", req.call.from.trim_start_matches('+')),
        ("To", req.call.to.trim_start_matches('+')),
        ("Direction", req.call.direction.as_str()),
        ("CallStatus", "in-progress"),
        ("Event", "StartApp"),
    ];
    let nonce = format!("{}", rand::random::<u64>());
    let mut post = client().post(&req.answer_url);
    if let Some(token) = req.auth_token {
        let signature = match req.forged_signature {
            Some(forged) => forged.to_string(),
            None => {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes())
                    .map_err(|e| format!("HMAC key: {e}"))?;
                mac.update(req.answer_url.split('?').next().unwrap_or_default().as_bytes());
                mac.update(nonce.as_bytes());
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            }
        };
        post = post
            .insert_header(("X-Plivo-Signature-V2", signature))
            .insert_header(("X-Plivo-Signature-V2-Nonce", nonce));
    }
    let mut resp = post
        .send_form(&form)
        .await
        .map_err(|e| format!("plivo answer POST failed: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.body().await.map_err(|e| format!("plivo answer unreadable: {e}"))?;
    Ok(PlivoAnswer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Exotel's `start` event, as its Voicebot applet documents it (values as strings, snake_case), for raw
/// PCM16 at `rate` Hz.
pub fn exotel_start_event(call_sid: &str, stream_sid: &str, rate: u32) -> String {
    json!({"event": "start", "sequence_number": "1", "stream_sid": stream_sid,
        "start": {"stream_sid": stream_sid, "call_sid": call_sid, "account_sid": "ACsim",
            "from": "+919876543210", "to": "+918047491899", "custom_parameters": {},
            "media_format": {"encoding": "audio/x-raw", "sample_rate": rate.to_string(), "bit_rate": "16"}}})
    .to_string()
}

/// Exotel's `media` event: raw PCM16 as base64.
pub fn exotel_media_event(stream_sid: &str, pcm: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(pcm);
    json!({"event": "media", "sequence_number": "3", "stream_sid": stream_sid,
        "media": {"chunk": "2", "timestamp": "200", "payload": b64}})
    .to_string()
}

/// Exotel's `dtmf` event.
pub fn exotel_dtmf_event(stream_sid: &str, digit: &str) -> String {
    json!({"event": "dtmf", "sequence_number": "7", "stream_sid": stream_sid,
        "dtmf": {"digit": digit, "duration": "100"}})
    .to_string()
}

/// Exotel's `stop` event, before it closes the socket.
pub fn exotel_stop_event(stream_sid: &str) -> String {
    json!({"event": "stop", "stream_sid": stream_sid, "stop": {"call_sid": "CAsim", "reason": "callended"}}).to_string()
}

/// The Voicebot applet's dynamic-URL request: where should this call stream? Its status and JSON answer.
pub async fn get_exotel_voicebot(
    http_base: &str,
    call: &CallRequest,
    authorization: Option<&str>,
) -> Result<(u16, Value), String> {
    let query = serde_urlencoded::to_string([
        ("CallSid", call.call_id.as_str()),
        ("From", call.from.as_str()),
        ("To", call.to.as_str()),
        (
            "Direction",
            if call.direction == "outbound" {
                "outbound-dial"
            } else {
                "incoming"
            },
        ),
    ])
    .map_err(|e| e.to_string())?;
    let mut req = client().get(format!("{http_base}/exotel/voicebot?{query}"));
    if let Some(auth) = authorization {
        req = req.insert_header(("authorization", auth));
    }
    let mut resp = req.send().await.map_err(|e| format!("voicebot GET failed: {e}"))?;
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    Ok((status, v))
}
