//! Typed, bounded values for what a carrier, ElevenLabs or an admin sends, made once where the data enters
//! (the refurl, the media socket, the agent socket, the admin API). Inner code — the call, its records, the
//! resampler — takes only these, so it never sees a raw string, rate or size from the wire: no control
//! characters (a NUL stops a PostgreSQL batch), no unbounded lengths, no number a carrier made up.

use serde::Serialize;
use std::fmt;

/// Why a value from a peer was refused: which field, and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    /// The field as the peer names it, e.g. `fromNumber` or `start.mediaFormat.sampleRate`.
    pub field: &'static str,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// What a peer sent, shown in a refusal: escaped and cut, so the reason itself is safe to log and store.
pub fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(40).flat_map(char::escape_debug).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// Checks `s` against a length and an alphabet; the common shape of every identifier a peer sends.
fn token(field: &'static str, s: &str, max: usize, allowed: fn(u8) -> bool, what: &str) -> Result<String, Invalid> {
    if s.is_empty() {
        return Err(Invalid::new(field, "empty"));
    }
    if s.len() > max {
        return Err(Invalid::new(field, format!("{} bytes, at most {max}", s.len())));
    }
    if let Some(bad) = s.bytes().find(|b| !allowed(*b)) {
        return Err(Invalid::new(
            field,
            format!("'{}' holds byte 0x{bad:02x}; {what}", shown(s)),
        ));
    }
    Ok(s.to_string())
}

fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.:".contains(&b)
}

/// Visible ASCII without the characters that need escaping in JSON.
fn label_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'"' && b != b'\\'
}

macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A call id: 1 to 128 characters of `A-Z a-z 0-9 - _ . :` (it goes into URLs, logs and keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CallId(String);
string_value!(CallId);

impl CallId {
    pub const MAX: usize = 128;

    pub fn parse(field: &'static str, s: &str) -> Result<CallId, Invalid> {
        token(field, s, Self::MAX, id_byte, "letters, digits and - _ . : only").map(CallId)
    }
}

/// A gateway instance's name in a fleet: 1 to 64 characters of `A-Z a-z 0-9 - _ .` (it goes into the
/// `wss_url` a balancer routes on, into records and into the fleet's table). Comes from the operator's
/// configuration, or from the host name and port, or from another instance's `wss_url` (then only compared).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InstanceId(String);
string_value!(InstanceId);

impl InstanceId {
    pub const MAX: usize = 64;

    pub fn parse(field: &'static str, s: &str) -> Result<InstanceId, Invalid> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
        token(field, s, Self::MAX, allowed, "letters, digits and - _ . only").map(InstanceId)
    }

    /// `host-port`, from the host name with anything outside the alphabet made `-`: the same name after a
    /// restart on the same box and port, another one for another box or port.
    pub fn derived(host: &str, port: u16) -> InstanceId {
        let suffix = format!("-{port}");
        let host: String = host
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                    b as char
                } else {
                    '-'
                }
            })
            .take(Self::MAX - suffix.len())
            .collect();
        let host = if host.is_empty() { "gateway".to_string() } else { host };
        InstanceId(format!("{host}{suffix}"))
    }
}

/// ElevenLabs' conversation id: the same alphabet as a call id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ConversationId(String);
string_value!(ConversationId);

impl ConversationId {
    pub fn parse(field: &'static str, s: &str) -> Result<ConversationId, Invalid> {
        token(field, s, CallId::MAX, id_byte, "letters, digits and - _ . : only").map(ConversationId)
    }
}

/// A short name from a peer — a stream id, a checkpoint's name: 1 to `max` bytes of visible ASCII without
/// quotes or backslashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Label(String);
string_value!(Label);

impl Label {
    pub fn parse(field: &'static str, s: &str, max: usize) -> Result<Label, Invalid> {
        token(
            field,
            s,
            max,
            label_byte,
            "visible ASCII without quotes or backslashes only",
        )
        .map(Label)
    }
}

/// A phone number: an optional `+` and 1 to 20 digits, with the spaces, dashes, dots and brackets people
/// write taken out; or `anonymous` for a withheld number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);
string_value!(PhoneNumber);

/// What carriers send for a number they will not show.
const WITHHELD: [&str; 6] = [
    "anonymous",
    "private",
    "restricted",
    "unknown",
    "unavailable",
    "withheld",
];

impl PhoneNumber {
    pub const MAX_DIGITS: usize = 20;

    pub fn parse(field: &'static str, s: &str) -> Result<PhoneNumber, Invalid> {
        let t = s.trim();
        if WITHHELD.iter().any(|w| t.eq_ignore_ascii_case(w)) {
            return Ok(PhoneNumber("anonymous".into()));
        }
        let (plus, rest) = match t.strip_prefix('+') {
            Some(rest) => ("+", rest),
            None => ("", t),
        };
        let digits: String = rest.chars().filter(|c| !" -.()".contains(*c)).collect();
        let ok = !digits.is_empty() && digits.len() <= Self::MAX_DIGITS && digits.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(Invalid::new(
                field,
                format!(
                    "'{}' is not a phone number (an optional + and 1 to {} digits)",
                    shown(s),
                    Self::MAX_DIGITS
                ),
            ));
        }
        Ok(PhoneNumber(format!("{plus}{digits}")))
    }
}

/// Which way the call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Inbound,
    Outbound,
}

impl Direction {
    pub fn parse(field: &'static str, s: &str) -> Result<Direction, Invalid> {
        match s.trim().to_ascii_lowercase().as_str() {
            "inbound" | "in" | "incoming" => Ok(Direction::Inbound),
            "outbound" | "out" | "outgoing" => Ok(Direction::Outbound),
            _ => Err(Invalid::new(
                field,
                format!("'{}' is neither inbound nor outbound", shown(s)),
            )),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Mcube's `dialStatus`: the known ones, or another short upper-case word kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DialStatus {
    Connecting,
    Answer,
    Busy,
    Cancel,
    NoAnswer,
    ExecutiveBusy,
    Other(String),
}

impl DialStatus {
    pub fn parse(field: &'static str, s: &str) -> Result<DialStatus, Invalid> {
        let norm: String = s
            .trim()
            .chars()
            .map(|c| {
                if c == ' ' || c == '-' {
                    '_'
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        Ok(match norm.as_str() {
            "CONNECTING" => DialStatus::Connecting,
            "ANSWER" | "ANSWERED" => DialStatus::Answer,
            "BUSY" => DialStatus::Busy,
            "CANCEL" | "CANCELLED" | "CANCELED" => DialStatus::Cancel,
            "NOANSWER" | "NO_ANSWER" => DialStatus::NoAnswer,
            "EXECUTIVE_BUSY" => DialStatus::ExecutiveBusy,
            _ => {
                let ok = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
                DialStatus::Other(token(field, &norm, 32, ok, "a word of letters, digits and _ only")?)
            }
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            DialStatus::Connecting => "CONNECTING",
            DialStatus::Answer => "ANSWER",
            DialStatus::Busy => "BUSY",
            DialStatus::Cancel => "CANCEL",
            DialStatus::NoAnswer => "NOANSWER",
            DialStatus::ExecutiveBusy => "EXECUTIVE_BUSY",
            DialStatus::Other(s) => s,
        }
    }
}

/// An `http(s)://` URL a peer gave us (a recording): at most 2048 bytes of visible ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct HttpUrl(String);
string_value!(HttpUrl);

impl HttpUrl {
    pub const MAX: usize = 2048;

    pub fn parse(field: &'static str, s: &str) -> Result<HttpUrl, Invalid> {
        let url = token(field, s.trim(), Self::MAX, label_byte, "a URL of visible ASCII only")?;
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(Invalid::new(field, format!("'{}' is not an http(s) URL", shown(s))));
        }
        Ok(HttpUrl(url))
    }
}

/// A DTMF key: `0`–`9`, `*`, `#`, `A`–`D`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfDigit(char);

impl DtmfDigit {
    pub fn parse(field: &'static str, s: &str) -> Result<DtmfDigit, Invalid> {
        let mut chars = s.trim().chars();
        match (chars.next().map(|c| c.to_ascii_uppercase()), chars.next()) {
            (Some(c @ ('0'..='9' | '*' | '#' | 'A'..='D')), None) => Ok(DtmfDigit(c)),
            _ => Err(Invalid::new(
                field,
                format!("'{}' is not a DTMF key (0-9, *, #, A-D)", shown(s)),
            )),
        }
    }

    pub fn as_char(&self) -> char {
        self.0
    }
}

impl fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Free text from a peer (a transcript, an agent's answer, an error message). It never fails: the words are
/// kept, the bytes a database or a log cannot take are not — control characters other than newline and tab
/// are dropped, and it is cut to at most `max` bytes at a character boundary.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Text(String);
string_value!(Text);

impl Text {
    /// Transcripts and agent answers.
    pub const SPEECH: usize = 4096;
    /// Names, ids and error types.
    pub const SHORT: usize = 256;

    pub fn clean(s: &str, max: usize) -> Text {
        let mut out = String::with_capacity(s.len().min(max));
        for c in s.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t') {
            if out.len() + c.len_utf8() > max {
                break;
            }
            out.push(c);
        }
        Text(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// An address block an operator allows or trusts: `10.0.0.1` or `10.0.0.0/8` (v4 or v6).
pub fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// A whole number a peer sent as a JSON number or a numeric string.
pub fn whole_number(field: &'static str, v: &serde_json::Value) -> Result<u64, Invalid> {
    let parsed = match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| Invalid::new(field, format!("{} is not a whole number", shown(&v.to_string()))))
}

/// A string a peer sent as a JSON string or a number (ids and numbers come either way).
pub fn text_of(field: &'static str, v: &serde_json::Value) -> Result<String, Invalid> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(Invalid::new(
            field,
            format!("{} is not a string", shown(&other.to_string())),
        )),
    }
}

/// Constant-time equality, so a wrong credential's timing says nothing about the right one.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_keep_to_what_a_balancer_and_a_url_can_carry() {
        assert!(InstanceId::parse("i", "gw-1.eu_west").is_ok());
        for bad in ["", "gw 1", "gw:1", "gw/1", "gw&instance=x", &"g".repeat(65)] {
            assert!(InstanceId::parse("i", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            InstanceId::derived("box-7.example", 7900).as_str(),
            "box-7.example-7900"
        );
        assert_eq!(InstanceId::derived("weird host/é", 1).as_str(), "weird-host----1");
        assert_eq!(InstanceId::derived("", 80).as_str(), "gateway-80");
        let long = InstanceId::derived(&"h".repeat(100), 65535);
        assert_eq!(long.as_str().len(), InstanceId::MAX);
        assert!(InstanceId::parse("i", long.as_str()).is_ok());
    }

    #[test]
    fn call_ids_keep_to_a_safe_alphabet_and_length() {
        assert_eq!(
            CallId::parse("callId", "CALL-1_a.b:c").map(|c| c.to_string()),
            Ok("CALL-1_a.b:c".into())
        );
        for bad in ["", "a b", "a/b", "a\0b", "ü", &"x".repeat(129)] {
            assert!(CallId::parse("callId", bad).is_err(), "{bad:?}");
        }
        assert!(CallId::parse("callId", &"x".repeat(128)).is_ok());
    }

    #[test]
    fn numbers_are_normalised_or_refused() {
        let p = |s| PhoneNumber::parse("fromNumber", s).map(|n| n.to_string());
        assert_eq!(p("+91 415-555 (1234)"), Ok("+914155551234".into()));
        assert_eq!(p("04155551234"), Ok("04155551234".into()));
        assert_eq!(p("Anonymous"), Ok("anonymous".into()));
        assert_eq!(
            p(" 4155551234\n"),
            Ok("4155551234".into()),
            "surrounding whitespace is trimmed"
        );
        for bad in ["", "+", "+91\u{0}415", "12a4", "++91", &"9".repeat(21), "41555\n51234"] {
            let e = p(bad).expect_err(bad);
            assert!(!e.to_string().contains('\0'), "the reason is safe to store: {e}");
        }
    }

    #[test]
    fn statuses_directions_digits_and_urls() {
        assert_eq!(
            DialStatus::parse("dialStatus", "Executive Busy"),
            Ok(DialStatus::ExecutiveBusy)
        );
        assert_eq!(DialStatus::parse("dialStatus", "no-answer"), Ok(DialStatus::NoAnswer));
        assert_eq!(
            DialStatus::parse("dialStatus", "transferred").map(|s| s.as_str().to_string()),
            Ok("TRANSFERRED".into())
        );
        assert!(DialStatus::parse("dialStatus", "ANS\u{0}WER").is_err());
        assert_eq!(Direction::parse("callDirection", "OUTBOUND"), Ok(Direction::Outbound));
        assert!(Direction::parse("callDirection", "sideways").is_err());
        assert_eq!(DtmfDigit::parse("dtmf.digit", "#").map(|d| d.as_char()), Ok('#'));
        assert_eq!(DtmfDigit::parse("dtmf.digit", "b").map(|d| d.as_char()), Ok('B'));
        for bad in ["", "12", "x", "\0"] {
            assert!(DtmfDigit::parse("dtmf.digit", bad).is_err(), "{bad:?}");
        }
        assert!(HttpUrl::parse("filename", "https://rec.example/a.mp3").is_ok());
        assert!(HttpUrl::parse("filename", "javascript:alert(1)").is_err());
        assert!(HttpUrl::parse("filename", "https://a b").is_err());
    }

    #[test]
    fn free_text_keeps_words_and_drops_what_cannot_be_stored() {
        assert_eq!(Text::clean("hi\0 there\r\n\tok", 100).as_str(), "hi there\n\tok");
        let long = "é".repeat(100);
        let cut = Text::clean(&long, 51);
        assert_eq!(cut.as_str().len(), 50, "cut at a character boundary");
    }

    #[test]
    fn loose_numbers_and_strings() {
        use serde_json::json;
        assert_eq!(whole_number("sampleRate", &json!(8000)), Ok(8000));
        assert_eq!(whole_number("sampleRate", &json!(" 16000 ")), Ok(16000));
        for bad in [json!(-1), json!(8000.5), json!("fast"), json!(null), json!([8000])] {
            assert!(whole_number("sampleRate", &bad).is_err(), "{bad}");
        }
        assert_eq!(
            text_of("fromNumber", &json!(914155551234u64)),
            Ok("914155551234".into())
        );
        assert!(text_of("fromNumber", &json!({"a": 1})).is_err());
    }
}
