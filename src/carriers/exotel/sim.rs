//! Exotel as its documentation describes it (not as our writer does), for the carrier simulator: the
//! Voicebot applet's dynamic-URL request, and its stream's events (raw PCM16 in 100 ms messages).

use crate::audio::format::{AudioFormat, Codec};
use crate::tools::sim::placing::{client, Answered, CallRequest};
use crate::tools::sim::SimError;
use base64::Engine as _;
use serde_json::{json, Value};

/// The shortest media message Exotel sends: 100 ms.
pub const FRAME_MS: u64 = 100;

/// Exotel's `start` event, as its Voicebot applet documents it (values as strings, snake_case), for raw
/// PCM16 at `rate` Hz.
pub fn exotel_start_event(call_sid: &str, stream_sid: &str, rate: u32) -> String {
    json!({"event": "start", "sequence_number": "1", "stream_sid": stream_sid,
        "start": {"stream_sid": stream_sid, "call_sid": call_sid, "account_sid": "ACsim",
            "from": "+919876543210", "to": "+918047491899", "custom_parameters": {},
            "media_format": {"encoding": "audio/x-raw", "sample_rate": rate.to_string(), "bit_rate": "16"}}})
    .to_string()
}

/// Exotel's `media` event: raw PCM16 as base64. Written out directly, as the media events of the other
/// dialects are: the load tool sends tens of thousands a second.
pub fn exotel_media_event(stream_sid: &str, pcm: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(pcm);
    let sid = Value::from(stream_sid);
    format!(
        "{{\"event\":\"media\",\"sequence_number\":\"3\",\"stream_sid\":{sid},\"media\":{{\"chunk\":\"2\",\"timestamp\":\"200\",\"payload\":\"{b64}\"}}}}"
    )
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

/// The Voicebot applet's dynamic-URL request: where should this call stream (at `sample_rate`, when its URL
/// asks for one)? Its status and JSON answer.
pub async fn get_exotel_voicebot(
    http_base: &str,
    call: &CallRequest,
    authorization: Option<&str>,
    sample_rate: Option<u32>,
) -> Result<(u16, Value), SimError> {
    let rate = sample_rate.map(|hz| hz.to_string()).unwrap_or_default();
    let mut query = vec![
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
    ];
    if sample_rate.is_some() {
        query.push(("sample-rate", rate.as_str()));
    }
    let query = serde_urlencoded::to_string(query).map_err(|e| SimError::Request("query encoding", e.to_string()))?;
    let mut req = client().get(format!("{http_base}/exotel/voicebot?{query}"));
    if let Some(auth) = authorization {
        req = req.insert_header(("authorization", auth));
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| SimError::Request("voicebot GET", e.to_string()))?;
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    Ok((status, v))
}

/// Places `call` through the applet's dynamic URL: its stream opens with `connected` and `start`, in
/// PCM16 at 8 kHz.
pub async fn place(http_base: &str, call: &CallRequest, stream_sid: &str) -> Answered {
    match get_exotel_voicebot(http_base, call, None, None).await {
        Ok((200, answer)) => match answer["url"].as_str() {
            Some(url) => Answered::Streams {
                wss_url: url.to_string(),
                opening: vec![
                    json!({"event": "connected"}).to_string(),
                    exotel_start_event(&call.call_id, stream_sid, 8000),
                ],
                format: AudioFormat::new("exotel", Codec::Pcm16, 8000).unwrap_or(AudioFormat::ULAW_8K),
            },
            None => Answered::Failed(format!("no url in {answer}")),
        },
        Ok((status, answer)) => {
            Answered::Refused(format!("{status} {}", answer["error"].as_str().unwrap_or_default()))
        }
        Err(e) => Answered::Failed(e.to_string()),
    }
}

/// A media message carrying `audio`.
pub fn media(stream_sid: &str, audio: &[u8], _chunk: u64) -> String {
    exotel_media_event(stream_sid, audio)
}

/// Exotel's `stop`, before it closes the stream.
pub fn stop(stream_sid: &str, _call_sid: &str) -> Option<String> {
    Some(exotel_stop_event(stream_sid))
}
