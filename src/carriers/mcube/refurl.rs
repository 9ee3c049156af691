//! The Mcube refurl webhook's body (docs/admin-api.md, `POST /mcube/call`): read tolerantly (camelCase or snake_case, numbers
//! or strings) and parsed into typed, bounded values — an admission request or a hang-up/status report — or
//! refused naming the first field that is not acceptable. Plain serde, no I/O.

use crate::values::{shown, text_of, CallId, DialStatus, Direction, HttpUrl, Invalid, PhoneNumber};
use serde::Deserialize;
use serde_json::Value;

/// The refurl body as sent, each field kept raw so that it is validated with its own reason: camelCase or
/// snake_case, numbers or strings.
#[derive(Debug, Default, Deserialize)]
struct RawRefurl {
    #[serde(default, alias = "callId", alias = "callid", alias = "CallId")]
    call_id: Option<Value>,
    #[serde(default, alias = "fromNumber", alias = "from_number")]
    from: Option<Value>,
    #[serde(default, alias = "toNumber", alias = "to_number")]
    to: Option<Value>,
    #[serde(default, alias = "callDirection", alias = "call_direction")]
    direction: Option<Value>,
    #[serde(default, alias = "dialStatus", alias = "dial_status")]
    dial_status: Option<Value>,
    #[serde(default, alias = "endTime", alias = "end_time")]
    end_time: Option<Value>,
    #[serde(default, alias = "filename", alias = "recordingUrl", alias = "recording_url")]
    recording: Option<Value>,
}

/// A call the carrier asks us to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub call_id: CallId,
    pub from: Option<PhoneNumber>,
    pub to: Option<PhoneNumber>,
    pub direction: Direction,
}

/// What a refurl POST asks, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refurl {
    /// `dialStatus` CONNECTING (or absent) and no `endTime`: take the call?
    Admit(Admission),
    /// The hang-up/status report.
    Status {
        call_id: CallId,
        dial_status: DialStatus,
        recording: Option<HttpUrl>,
    },
}

/// A refurl body refused: the call id of an admission request, when it was valid (the refusal is then
/// recorded against it), and the first field that was not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefurlRefused {
    pub admitting: Option<CallId>,
    pub invalid: Invalid,
}

/// An optional field: absent, `null` or blank is `None`; anything else must parse.
fn optional<T>(
    raw: &Option<Value>,
    field: &'static str,
    parse: impl Fn(&'static str, &str) -> Result<T, Invalid>,
) -> Result<Option<T>, Invalid> {
    let Some(v) = raw.as_ref().filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let text = text_of(field, v)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse(field, &text).map(Some)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses a refurl body into typed values, or names the first field that is not acceptable.
pub fn parse_refurl(body: &[u8]) -> Result<Refurl, RefurlRefused> {
    let refused = |admitting: Option<CallId>, invalid| RefurlRefused { admitting, invalid };
    let not_an_object = |e: String| {
        refused(
            None,
            Invalid::new(
                "body",
                format!("not a JSON object of the refurl's fields: {}", shown(&e)),
            ),
        )
    };
    // An object only: serde would also read a struct from an array, field by field.
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => return Err(not_an_object(format!("a JSON {}", json_kind(&other)))),
        Err(e) => return Err(not_an_object(e.to_string())),
    };
    let raw = RawRefurl::deserialize(object).map_err(|e| not_an_object(e.to_string()))?;
    let call_id = optional(&raw.call_id, "callId", CallId::parse)
        .and_then(|id| id.ok_or_else(|| Invalid::new("callId", "missing")))
        .map_err(|e| refused(None, e))?;
    let dial_status = optional(&raw.dial_status, "dialStatus", DialStatus::parse)
        .map_err(|e| refused(None, e))?
        .unwrap_or(DialStatus::Connecting);
    let ended = raw.end_time.as_ref().is_some_and(|v| !v.is_null());
    if dial_status != DialStatus::Connecting || ended {
        return Ok(Refurl::Status {
            recording: optional(&raw.recording, "filename", HttpUrl::parse).map_err(|e| refused(None, e))?,
            call_id,
            dial_status,
        });
    }
    let with_id = |e| refused(Some(call_id.clone()), e);
    Ok(Refurl::Admit(Admission {
        from: optional(&raw.from, "fromNumber", PhoneNumber::parse).map_err(with_id)?,
        to: optional(&raw.to, "toNumber", PhoneNumber::parse).map_err(with_id)?,
        direction: optional(&raw.direction, "callDirection", Direction::parse)
            .map_err(with_id)?
            .unwrap_or_default(),
        call_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refurl_fields_are_typed_or_refused_with_their_name() {
        let parse = |v: Value| parse_refurl(v.to_string().as_bytes());
        let Ok(Refurl::Admit(info)) = parse(serde_json::json!({"callId": 42, "fromNumber": "+91 415 555 1234",
            "to_number": 918001234567u64, "callDirection": "OUTBOUND", "accountId": "ignored"}))
        else {
            panic!("admitted")
        };
        assert_eq!(info.call_id.as_str(), "42");
        assert_eq!(info.from.map(|n| n.to_string()).as_deref(), Some("+914155551234"));
        assert_eq!(info.to.map(|n| n.to_string()).as_deref(), Some("918001234567"));
        assert_eq!(info.direction, Direction::Outbound);
        assert!(matches!(
            parse(serde_json::json!({"callId": "C1", "dialStatus": "ANSWER", "filename": "https://r.example/1.mp3"})),
            Ok(Refurl::Status {
                dial_status: DialStatus::Answer,
                recording: Some(_),
                ..
            })
        ));
        assert!(matches!(
            parse(serde_json::json!({"callId": "C1", "endTime": "2026-01-01T12:05:00"})),
            Ok(Refurl::Status {
                dial_status: DialStatus::Connecting,
                ..
            })
        ));
        assert!(matches!(
            parse(serde_json::json!({"callId": "C1", "fromNumber": ""})),
            Ok(Refurl::Admit(_))
        ));
        for (body, field, has_id) in [
            (serde_json::json!({}), "callId", false),
            (serde_json::json!({"callId": "a b"}), "callId", false),
            (
                serde_json::json!({"callId": "C1", "fromNumber": "+91\u{0}4"}),
                "fromNumber",
                true,
            ),
            (
                serde_json::json!({"callId": "C1", "toNumber": {"n": 1}}),
                "toNumber",
                true,
            ),
            (
                serde_json::json!({"callId": "C1", "callDirection": "sideways"}),
                "callDirection",
                true,
            ),
            (
                serde_json::json!({"callId": "C1", "dialStatus": "A\u{7}"}),
                "dialStatus",
                false,
            ),
            (
                serde_json::json!({"callId": "C1", "dialStatus": "ANSWER", "filename": "ftp://x"}),
                "filename",
                false,
            ),
        ] {
            let refused = parse(body.clone()).expect_err("refused");
            assert_eq!(refused.invalid.field, field, "{body}");
            assert_eq!(refused.admitting.is_some(), has_id, "{body}");
        }
        assert_eq!(parse_refurl(b"[1,2]").expect_err("refused").invalid.field, "body");
    }
}
