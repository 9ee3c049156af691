//! ElevenLabs' post-call webhook body, read once at the edge into a bounded `PostCall`: the conversation it
//! is about, and (for `post_call_transcription`) the status, the analysis (`call_successful`, the summary
//! and its title, data collection and evaluation results), the metadata (duration, cost, termination
//! reason, main language) and the transcript with its turn metrics; for `call_initiation_failure`, why.
//! Unknown fields are ignored; an unknown `type` is reported as such (ElevenLabs adds types, e.g.
//! `post_call_audio`), never an error.

use serde::Deserialize;
use serde_json::Value;

/// The most a webhook body may be (a long call's transcript with its metrics).
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// The most text kept of a summary or a failure reason.
const MAX_TEXT_CHARS: usize = 16_384;
/// The most kept of a JSON part (data collection, evaluation, transcript), serialized.
const MAX_JSON_BYTES: usize = 1 << 20;

/// What a delivery says.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// A conversation's outcome.
    Outcome(Box<PostCall>),
    /// A type the gateway does not keep (its name, bounded).
    Other(String),
}

/// One conversation's outcome, bounded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PostCall {
    /// `post_call_transcription` or `call_initiation_failure`.
    pub kind: &'static str,
    pub conversation_id: String,
    pub agent_id: Option<String>,
    /// Unix seconds, from `event_timestamp`.
    pub event_at: i64,
    pub status: Option<String>,
    /// `success`, `failure` or `unknown`.
    pub call_successful: Option<String>,
    pub summary: Option<String>,
    pub title: Option<String>,
    /// JSON text.
    pub data_collection: Option<String>,
    pub evaluation: Option<String>,
    pub transcript: Option<String>,
    pub duration_secs: Option<i64>,
    /// ElevenLabs' cost of the conversation, in its own units (credits).
    pub cost: Option<i64>,
    pub termination_reason: Option<String>,
    pub main_language: Option<String>,
    /// `call_initiation_failure`'s reason.
    pub failure: Option<String>,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    event_timestamp: Option<Value>,
    #[serde(default)]
    data: Value,
}

/// Why a body is refused (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// Reads a delivery's body.
pub fn parse(body: &[u8]) -> Result<Delivery, Unreadable> {
    let wire: Wire = serde_json::from_slice(body).map_err(|e| Unreadable(format!("not a webhook body: {e}")))?;
    let kind = match wire.kind.as_str() {
        "post_call_transcription" => "post_call_transcription",
        "call_initiation_failure" => "call_initiation_failure",
        other => return Ok(Delivery::Other(bounded(other, 64))),
    };
    let data = &wire.data;
    let conversation_id = text(&data["conversation_id"], 256)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Unreadable("data.conversation_id: missing".into()))?;
    let analysis = &data["analysis"];
    let metadata = &data["metadata"];
    Ok(Delivery::Outcome(Box::new(PostCall {
        kind,
        conversation_id,
        agent_id: text(&data["agent_id"], 256),
        event_at: wire.event_timestamp.as_ref().and_then(number).unwrap_or(0),
        status: text(&data["status"], 64),
        call_successful: text(&analysis["call_successful"], 64),
        summary: text(&analysis["transcript_summary"], MAX_TEXT_CHARS),
        title: text(&analysis["call_summary_title"], 1024),
        data_collection: json(&analysis["data_collection_results"]),
        evaluation: json(&analysis["evaluation_criteria_results"]),
        transcript: json(&data["transcript"]),
        duration_secs: number(&metadata["call_duration_secs"]),
        cost: number(&metadata["cost"]),
        termination_reason: text(&metadata["termination_reason"], 1024),
        main_language: text(&metadata["main_language"], 64),
        failure: text(&data["failure_reason"], MAX_TEXT_CHARS),
    })))
}

fn bounded(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => s[..cut].to_string(),
        None => s.to_string(),
    }
}

/// A string, bounded, with NULs taken out (PostgreSQL's text refuses them).
fn text(v: &Value, max_chars: usize) -> Option<String> {
    v.as_str().map(|s| bounded(&s.replace('\0', ""), max_chars))
}

/// A number given as a number or a string.
fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON part kept as text when present and not too large (a larger one is dropped, not cut: cut JSON
/// would not read back), with NULs taken out of its strings (PostgreSQL's text refuses them).
fn json(v: &Value) -> Option<String> {
    if v.is_null() {
        return None;
    }
    let mut clean = v.clone();
    drop_nuls(&mut clean);
    let text = clean.to_string();
    (text.len() <= MAX_JSON_BYTES).then_some(text)
}

fn drop_nuls(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', ""),
        Value::Array(items) => items.iter_mut().for_each(drop_nuls),
        Value::Object(fields) => {
            let keys: Vec<String> = fields.keys().filter(|k| k.contains('\0')).cloned().collect();
            for key in keys {
                if let Some(value) = fields.remove(&key) {
                    fields.insert(key.replace('\0', ""), value);
                }
            }
            fields.values_mut().for_each(drop_nuls);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcription_is_read_and_bounded() {
        let body = serde_json::json!({
            "type": "post_call_transcription",
            "event_timestamp": "1765000000",
            "data": {
                "agent_id": "agent_1", "conversation_id": "conv_1", "status": "done",
                "transcript": [{"role": "agent", "message": "Hi", "conversation_turn_metrics": {"x": 1}}],
                "metadata": {"call_duration_secs": 22, "cost": "296", "termination_reason": "end_call", "main_language": "en"},
                "analysis": {"call_successful": "success", "transcript_summary": "s\u{0}um".repeat(10_000),
                             "call_summary_title": "Order", "data_collection_results": {"order": {"value": "42"}}},
                "unknown_field": true
            }
        });
        let Ok(Delivery::Outcome(p)) = parse(body.to_string().as_bytes()) else {
            panic!("read")
        };
        assert_eq!(
            (p.kind, p.conversation_id.as_str(), p.event_at),
            ("post_call_transcription", "conv_1", 1765000000)
        );
        assert_eq!(
            (p.duration_secs, p.cost),
            (Some(22), Some(296)),
            "numbers as numbers or strings"
        );
        assert_eq!(p.call_successful.as_deref(), Some("success"));
        assert_eq!(p.summary.as_ref().map(|s| s.chars().count()), Some(MAX_TEXT_CHARS));
        assert!(!p.summary.unwrap_or_default().contains('\0'));
        assert!(p.transcript.is_some_and(|t| t.contains("conversation_turn_metrics")));
        assert_eq!(p.data_collection.as_deref(), Some(r#"{"order":{"value":"42"}}"#));
    }

    #[test]
    fn nuls_leave_json_parts_and_an_escape_written_out_stays_as_written() {
        let body = serde_json::json!({
            "type": "post_call_transcription",
            "data": {"conversation_id": "c", "analysis": {"data_collection_results": {"k\u{0}ey": "a\u{0}b", "t": "x\\u0000y"}}}
        });
        let Ok(Delivery::Outcome(p)) = parse(body.to_string().as_bytes()) else {
            panic!("read")
        };
        let kept: Value = serde_json::from_str(p.data_collection.as_deref().unwrap_or("null")).expect("JSON");
        assert_eq!(kept, serde_json::json!({"key": "ab", "t": "x\\u0000y"}));
    }

    #[test]
    fn other_types_are_named_and_junk_is_refused() {
        let audio = parse(br#"{"type": "post_call_audio", "data": {}}"#);
        assert_eq!(audio, Ok(Delivery::Other("post_call_audio".into())));
        assert!(parse(b"not json").is_err());
        assert!(
            parse(br#"{"type": "post_call_transcription", "data": {}}"#).is_err(),
            "no conversation"
        );
        let failure = br#"{"type":"call_initiation_failure","event_timestamp":1,"data":{"conversation_id":"c","failure_reason":"busy"}}"#;
        let Ok(Delivery::Outcome(f)) = parse(failure) else {
            panic!("read")
        };
        assert_eq!(
            (f.kind, f.failure.as_deref()),
            ("call_initiation_failure", Some("busy"))
        );
    }
}
