//! Twilio's Media Streams events as its documentation describes them (not as our writer does), for the
//! carrier simulator.

use base64::Engine as _;
use serde_json::{json, Value};

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
