//! Exotel's stream as its documentation describes it (not as our writer does), for the carrier simulator.

use base64::Engine as _;
use serde_json::{json, Value};

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
