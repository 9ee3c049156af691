//! Mcube as its carrier simulator speaks it: the refurl POST, and the Plivo-style stream events (`start`,
//! `media`, `playedStream`) that Plivo's stream shares.

use crate::audio::format::{AudioFormat, Codec};
use crate::tools::sim::placing::{client, Answered, CallRequest};
use crate::tools::sim::SimError;
use base64::Engine as _;
use serde_json::{json, Value};

/// The shortest media message Mcube sends: whatever it is given.
pub const FRAME_MS: u64 = 0;

/// The gateway's answer to the refurl.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    Admitted {
        wss_url: String,
    },
    Refused {
        status: u16,
        retry_after: Option<String>,
        error: String,
    },
}

/// POSTs the Mcube connect request.
pub async fn post_refurl(http_base: &str, call: &CallRequest) -> Result<Admission, SimError> {
    let body = json!({"callId": call.call_id, "callDirection": call.direction, "fromNumber": call.from,
        "toNumber": call.to, "dialStatus": "CONNECTING", "callProvider": "MCUBE"});
    let mut resp = client()
        .post(format!("{http_base}/mcube/call"))
        .send_json(&body)
        .await
        .map_err(|e| SimError::Request("refurl POST", e.to_string()))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let v: Value = match resp.json().await {
        Ok(v) => v,
        Err(e) => {
            let kind = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            let why = format!("{status}, content-type {kind}: {e}");
            return Err(SimError::Answer("refurl answer", why));
        }
    };
    Ok(match (status, v["wss_url"].as_str()) {
        (200, Some(url)) => Admission::Admitted {
            wss_url: url.to_string(),
        },
        _ => Admission::Refused {
            status,
            retry_after,
            error: v["error"].as_str().unwrap_or_default().to_string(),
        },
    })
}

/// The Mcube `start` event.
pub fn start_event(call_id: &str, stream_id: &str, format: AudioFormat) -> String {
    let encoding = match format.codec {
        Codec::Ulaw => "audio/x-mulaw",
        Codec::Alaw => "audio/x-alaw",
        Codec::Pcm16 => "audio/x-l16",
    };
    json!({"event": "start", "sequenceNumber": 1, "start": {"callId": call_id, "streamId": stream_id,
        "tracks": ["inbound"], "mediaFormat": {"encoding": encoding, "sampleRate": format.rate.hz()}}})
    .to_string()
}

/// A `media` event carrying `audio` as base64.
pub fn media_event(audio: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(audio);
    format!("{{\"event\":\"media\",\"media\":{{\"track\":\"inbound\",\"payload\":\"{b64}\"}}}}")
}

/// The carrier's answer to a `checkpoint`, once the audio before it has played.
pub fn played_stream_event(stream_id: &Value, name: &str) -> String {
    json!({"event": "playedStream", "streamId": stream_id, "name": name}).to_string()
}

/// Places `call` through the refurl: its stream opens with `start`, in μ-law at 8 kHz.
pub async fn place(http_base: &str, call: &CallRequest, stream_sid: &str) -> Answered {
    match post_refurl(http_base, call).await {
        Ok(Admission::Admitted { wss_url }) => Answered::Streams {
            wss_url,
            opening: vec![start_event(&call.call_id, stream_sid, AudioFormat::ULAW_8K)],
            format: AudioFormat::ULAW_8K,
        },
        Ok(Admission::Refused { status, error, .. }) => Answered::Refused(format!("{status} {error}")),
        Err(e) => Answered::Failed(e.to_string()),
    }
}

/// A media message carrying `audio`.
pub fn media(_stream_sid: &str, audio: &[u8], _chunk: u64) -> String {
    media_event(audio)
}

/// Mcube closes its stream without a `stop`.
pub fn stop(_stream_sid: &str, _call_sid: &str) -> Option<String> {
    None
}
