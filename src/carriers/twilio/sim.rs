//! Twilio as its documentation describes it (not as our writer does), for the carrier simulator: its signed
//! voice webhook, the `<Stream>` of its TwiML answer, and its Media Streams events.

use crate::audio::format::AudioFormat;
use crate::tools::sim::placing::{post_form, refusal, Answered, CallRequest, XmlAnswer};
use crate::tools::sim::SimError;
use base64::Engine as _;
use serde_json::{json, Value};

/// The shortest media message Twilio sends: whatever it is given.
pub const FRAME_MS: u64 = 0;

/// Twilio's first stream message.
pub fn twilio_connected_event() -> String {
    json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string()
}

/// Twilio's `start`: μ-law at 8 kHz, with the `<Parameter>`s of the TwiML as `customParameters`.
pub fn twilio_start_event(call_sid: &str, stream_sid: &str, parameters: &[(String, String)]) -> String {
    let custom: serde_json::Map<String, Value> = parameters
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {"accountSid": "ACsim", "streamSid": stream_sid, "callSid": call_sid,
            "tracks": ["inbound"], "customParameters": custom,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
    .to_string()
}

/// Twilio's `media`: μ-law as base64, numbers as strings.
pub fn twilio_media_event(stream_sid: &str, ulaw: &[u8], chunk: u64) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(ulaw);
    let (sid, seq, ts) = (Value::from(stream_sid), chunk + 2, chunk * 20);
    format!(
        "{{\"event\":\"media\",\"sequenceNumber\":\"{seq}\",\"media\":{{\"track\":\"inbound\",\"chunk\":\"{chunk}\",\"timestamp\":\"{ts}\",\"payload\":\"{b64}\"}},\"streamSid\":{sid}}}"
    )
}

/// Twilio's `dtmf`.
pub fn twilio_dtmf_event(stream_sid: &str, digit: &str) -> String {
    json!({"event": "dtmf", "sequenceNumber": "50", "streamSid": stream_sid,
        "dtmf": {"track": "inbound_track", "digit": digit}})
    .to_string()
}

/// Twilio's `stop`, when the call ends on its side.
pub fn twilio_stop_event(stream_sid: &str, call_sid: &str) -> String {
    json!({"event": "stop", "sequenceNumber": "99", "streamSid": stream_sid,
        "stop": {"accountSid": "ACsim", "callSid": call_sid}})
    .to_string()
}

/// Twilio's voice webhook request, signed as Twilio documents `X-Twilio-Signature` (HMAC-SHA1 of the full
/// URL followed by each POST parameter's name and value sorted by name, keyed with the auth token, base64)
/// when `auth_token` is given.
pub struct TwilioRequest<'a> {
    pub call: &'a CallRequest,
    /// The URL the Twilio number's voice webhook is set to (the gateway's carrier listener + `/twilio/voice`).
    pub voice_url: String,
    pub auth_token: Option<&'a str>,
    /// Sent instead of the right signature (a forgery).
    pub forged_signature: Option<&'a str>,
}

/// POSTs Twilio's voice webhook form (`CallSid`, `AccountSid`, `From`, `To`, `Direction`, `CallStatus`).
pub async fn post_twilio_voice(req: TwilioRequest<'_>) -> Result<XmlAnswer, SimError> {
    use hmac::Mac as _;
    let direction = if req.call.direction == "outbound" {
        "outbound-api"
    } else {
        "inbound"
    };
    let form = [
        ("AccountSid", "ACsim"),
        ("CallSid", req.call.call_id.as_str()),
        ("CallStatus", "ringing"),
        ("Direction", direction),
        ("From", req.call.from.as_str()),
        ("To", req.call.to.as_str()),
        ("ApiVersion", "2010-04-01"),
    ];
    let mut headers = Vec::new();
    if let Some(token) = req.auth_token {
        let signature = match req.forged_signature {
            Some(forged) => forged.to_string(),
            None => {
                let mut sorted = form.to_vec();
                sorted.sort();
                let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes())
                    .map_err(|e| SimError::Request("HMAC key", e.to_string()))?;
                mac.update(req.voice_url.as_bytes());
                for (name, value) in sorted {
                    mac.update(name.as_bytes());
                    mac.update(value.as_bytes());
                }
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            }
        };
        headers.push(("X-Twilio-Signature", signature));
    }
    post_form(&req.voice_url, &form, headers).await
}

impl XmlAnswer {
    /// TwiML's `<Stream url="…">` and its `<Parameter>`s, unescaped, when the answer streams the call.
    pub fn twiml_stream(&self) -> Option<(String, Vec<(String, String)>)> {
        let start = self.body.find("<Stream")?;
        let url = attribute(&self.body[start..], "url")?;
        let end = start + self.body[start..].find("</Stream>")?;
        let params = self.body[start..end]
            .split("<Parameter")
            .skip(1)
            .filter_map(|p| Some((attribute(p, "name")?, attribute(p, "value")?)))
            .collect();
        Some((url, params))
    }
}

/// An XML attribute's value in `element`, unescaped.
fn attribute(element: &str, name: &str) -> Option<String> {
    let at = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = element[at..].find('"')?;
    let raw = &element[at..at + len];
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

/// Places `call` through the voice webhook: its stream opens with `connected` and `start` (carrying the
/// TwiML's parameters), in μ-law at 8 kHz.
pub async fn place(http_base: &str, call: &CallRequest, stream_sid: &str) -> Answered {
    let req = TwilioRequest {
        call,
        voice_url: format!("{http_base}/twilio/voice"),
        auth_token: None,
        forged_signature: None,
    };
    match post_twilio_voice(req).await {
        Ok(answer) => match answer.twiml_stream() {
            Some((wss_url, parameters)) => Answered::Streams {
                wss_url,
                opening: vec![
                    twilio_connected_event(),
                    twilio_start_event(&call.call_id, stream_sid, &parameters),
                ],
                format: AudioFormat::ULAW_8K,
            },
            None => Answered::Refused(refusal(answer.status, &answer.body)),
        },
        Err(e) => Answered::Failed(e.to_string()),
    }
}

/// A media message carrying `audio`.
pub fn media(stream_sid: &str, audio: &[u8], chunk: u64) -> String {
    twilio_media_event(stream_sid, audio, chunk)
}

/// Twilio's `stop`, before it closes the stream.
pub fn stop(stream_sid: &str, call_sid: &str) -> Option<String> {
    Some(twilio_stop_event(stream_sid, call_sid))
}
