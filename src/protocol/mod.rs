//! Wire formats of both legs as plain serde types and writers, with no I/O: `mcube` (the carrier's
//! stream), `refurl` (the carrier's webhook) and `elevenlabs` (the agent), plus the tolerant field readers
//! they share.
pub mod elevenlabs;
pub mod exotel;
pub mod mcube;
pub mod plivo;
pub mod refurl;
pub mod twilio;
pub mod writer;

/// Exotel's smallest media message, by its documentation.
pub const EXOTEL_MIN_MEDIA_BYTES: usize = 3200;

/// A call a carrier's webhook asks us to take, read from its form or query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookCall {
    pub call_id: crate::values::CallId,
    pub from: Option<crate::values::PhoneNumber>,
    pub to: Option<crate::values::PhoneNumber>,
    pub direction: crate::values::Direction,
}

/// The names a carrier gives its webhook's fields.
pub struct WebhookFields {
    pub call_id: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub direction: &'static str,
}

/// Reads a carrier's form-encoded webhook (a POST body or a query string); a field we use that is out of
/// bounds is refused with its name, the rest are ignored. A direction reads by its first letters (Exotel
/// says `incoming`, `outbound-dial`, `outbound-api`).
pub fn parse_webhook_form(form: &[u8], names: &WebhookFields) -> Result<WebhookCall, crate::values::Invalid> {
    use crate::values::{CallId, Direction, Invalid, PhoneNumber};
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(form).map_err(|e| Invalid::new("body", format!("not a form: {e}")))?;
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let number = |name: &'static str| field(name).map(|v| PhoneNumber::parse(name, v)).transpose();
    let direction = match field(names.direction).map(|d| d.trim().to_ascii_lowercase()) {
        Some(d) if d.starts_with("out") => Direction::Outbound,
        Some(d) if d.starts_with("in") => Direction::Inbound,
        Some(d) => {
            let why = format!("'{}' is neither inbound nor outbound", crate::values::shown(&d));
            return Err(Invalid::new(names.direction, why));
        }
        None => Direction::Inbound,
    };
    Ok(WebhookCall {
        call_id: CallId::parse(
            names.call_id,
            field(names.call_id).ok_or_else(|| Invalid::new(names.call_id, "missing"))?,
        )?,
        from: number(names.from)?,
        to: number(names.to)?,
        direction,
    })
}

/// The carrier a call came from: which webhook admitted it, and which dialect its stream speaks. Plivo's
/// Audio Streams are the protocol Mcube mirrors, and Exotel's Voicebot and Twilio's Media Streams use the
/// same event names (snake_case and camelCase), so every stream reads with `mcube`'s tolerant parser; what we send differs
/// (`writer::CarrierWriter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    #[default]
    Mcube,
    Plivo,
    Exotel,
    Twilio,
}

impl Carrier {
    pub const ALL: [Carrier; 4] = [Carrier::Mcube, Carrier::Plivo, Carrier::Exotel, Carrier::Twilio];

    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::Mcube => "mcube",
            Carrier::Plivo => "plivo",
            Carrier::Exotel => "exotel",
            Carrier::Twilio => "twilio",
        }
    }

    /// The carrier's webhook on the carrier-facing listener: its method and path.
    pub fn webhook(self) -> (&'static str, &'static str) {
        match self {
            Carrier::Mcube => ("POST", "/mcube/call"),
            Carrier::Plivo => ("POST", "/plivo/answer"),
            Carrier::Exotel => ("GET", "/exotel/voicebot"),
            Carrier::Twilio => ("POST", "/twilio/voice"),
        }
    }

    /// The carrier named in a media socket's path (`/ws/{carrier}/…`).
    pub fn from_path(name: &str) -> Option<Carrier> {
        Carrier::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The shortest media message the carrier plays without gaps, in `format`: Exotel breaks up on media
    /// under 100 ms or under 3.2 KB (both are in its documentation; 3.2 KB is 200 ms at 8 kHz).
    pub fn min_frame_ms(self, format: crate::audio::format::AudioFormat) -> u64 {
        match self {
            Carrier::Exotel => format.ms_for_bytes(EXOTEL_MIN_MEDIA_BYTES).max(100),
            _ => 0,
        }
    }

    /// Whether the stream names its call and token only in its `start` event (Twilio forbids a query on the
    /// stream URL, so they come as `customParameters`): the call is claimed when `start` arrives.
    pub fn names_call_at_start(self) -> bool {
        matches!(self, Carrier::Twilio)
    }

    /// Whether the dialect has a hang-up message (Mcube's `terminate`); the others hang up by closing the
    /// stream (Plivo then runs out of XML and ends the call).
    pub fn hangs_up_in_band(self) -> bool {
        matches!(self, Carrier::Mcube)
    }
}

/// A call as the gateway knows it: its carrier and the id that carrier gave it. Carriers name their calls
/// independently, so an id alone names no call: two carriers may use the same one at once, and one
/// carrier's webhook can never reach, claim or end another's call by naming its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct CallKey {
    pub carrier: Carrier,
    pub id: crate::values::CallId,
}

impl CallKey {
    pub fn new(carrier: Carrier, id: crate::values::CallId) -> CallKey {
        CallKey { carrier, id }
    }
}

/// `carrier/id`, as logs show a call (a call id holds no `/`).
impl std::fmt::Display for CallKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.carrier.as_str(), self.id)
    }
}

/// Text made safe inside an XML attribute or element (Plivo's and Twilio's answers).
pub(crate) fn xml_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Standard base64 by its shape (alphabet, padding, length), without decoding. Passthrough audio is spliced
/// into the JSON sent to ElevenLabs as is, so this is also what keeps a carrier's payload from injecting JSON.
pub fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let body = b.len() - b.iter().rev().take(2).take_while(|&&c| c == b'=').count();
    b[..body]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// Bytes a base64 string decodes to, without decoding it (passthrough never decodes).
pub fn base64_decoded_len(b64: &str) -> usize {
    let padding = b64.bytes().rev().take(2).filter(|&b| b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(padding)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_shape() {
        for ok in ["", "AAEC", "AAE=", "AA==", "+/9z"] {
            assert!(super::is_base64(ok), "{ok}");
        }
        for bad in ["AAE", "AA=C", "A===", "AB\"}", "AA\\n", "ÀÀÀÀ", "AAEC AAEC"] {
            assert!(!super::is_base64(bad), "{bad}");
        }
    }

    #[test]
    fn decoded_length_of_base64() {
        use base64::Engine as _;
        for n in [0usize, 1, 2, 3, 159, 160, 161, 320] {
            let b64 = base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
            assert_eq!(super::base64_decoded_len(&b64), n, "{n}");
        }
    }
}

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use std::borrow::Cow;

/// A string borrowed from the frame when it has no escapes, owned otherwise. serde borrows a bare
/// `Cow<str>` field but not one inside an `Option`, which is where the audio payloads live.
#[derive(Debug)]
pub(crate) struct CowStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(CowStr)
    }
}

/// Readers for fields that peers send as a number or as a string.
pub(crate) mod loose {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(serde_json::Number),
        Str(String),
    }

    /// `42`, `"42"`, `null` or absent → `Option<u64>`; anything unparsable becomes `None` rather than an error.
    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Ok(match Option::<NumOrStr>::deserialize(d).unwrap_or(None) {
            Some(NumOrStr::Num(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
            Some(NumOrStr::Str(s)) => s.trim().parse().ok(),
            None => None,
        })
    }

    /// `"5"` or `5` → `Some("5")`.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Option::<NumOrStr>::deserialize(d).unwrap_or(None) {
            Some(NumOrStr::Num(n)) => Some(n.to_string()),
            Some(NumOrStr::Str(s)) => Some(s),
            None => None,
        })
    }
}
