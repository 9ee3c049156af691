//! The carriers' stream protocol, Mcube's (Plivo-style) and the dialects like it: tolerant parsing of what
//! a carrier sends (camelCase or snake_case, numbers as strings or numbers, unknown fields ignored; Plivo's
//! and Exotel's events read the same) into typed, bounded values — a field we use that is out of bounds is
//! refused with the field's name. What we send back, in each carrier's dialect, is `writer`'s. Plain serde,
//! no I/O.

use crate::audio::format::{AudioFormat, Codec};
use crate::protocol::{loose, CowStr};
use crate::values::{shown, whole_number, CallId, DtmfDigit, Invalid, Label};
use serde::Deserialize;
use std::borrow::Cow;

/// The longest stream id and checkpoint name we accept.
pub const MAX_NAME: usize = 128;

/// One event from the carrier's WebSocket, borrowed from the frame text where possible.
#[derive(Debug, Clone, PartialEq)]
pub enum CarrierEvent<'a> {
    /// The stream starts: its id and media format.
    Start(StreamStart),
    /// Caller audio, base64 in the negotiated encoding (its shape and size are checked by the leg).
    Media {
        payload: Cow<'a, str>,
        sequence: Option<u64>,
    },
    /// A checkpoint we sent has played out (`playedStream`, or an Exotel/Twilio style `mark`).
    PlayedStream { name: Option<Label> },
    /// The caller pressed a key.
    Dtmf { digit: DtmfDigit },
    /// The carrier ends the stream.
    Stop,
    /// Events we understand and have nothing to do for (`connected`, `clearedAudio`).
    Ignored,
    /// An event name we do not know; counted and logged (escaped), never fatal.
    Unknown { event: String },
}

/// The `start` event's content, with the protocol's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStart {
    pub stream_id: Option<Label>,
    pub format: AudioFormat,
    /// The call and token our answer passed as the stream's parameters (Twilio's `customParameters`),
    /// when the stream URL could not carry them.
    pub claim: Option<StreamClaim>,
}

/// The call a stream names in its `start`, and the token that proves the carrier was told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamClaim {
    pub call_id: CallId,
    pub token: Option<Label>,
}

/// The longest token we read from a stream's parameters (ours are far shorter).
const MAX_TOKEN: usize = 512;

/// Why a carrier frame was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierParseError {
    #[error("carrier: frame is not JSON: {0}")]
    NotJson(String),
    #[error("carrier: frame has no 'event' field")]
    NoEvent,
    #[error("carrier: 'media' event without a payload")]
    NoPayload,
    /// A field we use holds a value out of bounds.
    #[error("carrier: {0}")]
    Invalid(#[from] Invalid),
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    media: Option<RawMedia<'a>>,
    #[serde(default)]
    start: Option<RawStart>,
    #[serde(default)]
    dtmf: Option<RawDtmf>,
    #[serde(default)]
    mark: Option<RawMark>,
    #[serde(default, deserialize_with = "loose::opt_string")]
    name: Option<String>,
    #[serde(default, alias = "sequenceNumber", deserialize_with = "loose::opt_u64")]
    sequence_number: Option<u64>,
}

#[derive(Deserialize)]
struct RawMedia<'a> {
    #[serde(borrow, default)]
    payload: Option<CowStr<'a>>,
}

#[derive(Deserialize, Default)]
struct RawStart {
    #[serde(
        default,
        alias = "streamId",
        alias = "streamSid",
        alias = "stream_sid",
        deserialize_with = "loose::opt_string"
    )]
    stream_id: Option<String>,
    #[serde(default, alias = "mediaFormat")]
    media_format: Option<RawMediaFormat>,
    #[serde(default, alias = "customParameters")]
    custom_parameters: Option<RawParameters>,
}

/// Our own stream parameters (`twilio::CALL_PARAMETER`, `twilio::TOKEN_PARAMETER`); others are ignored.
#[derive(Deserialize, Default)]
struct RawParameters {
    #[serde(default, deserialize_with = "loose::opt_string")]
    call_id: Option<String>,
    #[serde(default, deserialize_with = "loose::opt_string")]
    token: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawMediaFormat {
    #[serde(default)]
    encoding: Option<serde_json::Value>,
    #[serde(default, alias = "sampleRate")]
    sample_rate: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawDtmf {
    #[serde(default, deserialize_with = "loose::opt_string")]
    digit: Option<String>,
}

#[derive(Deserialize)]
struct RawMark {
    #[serde(default, deserialize_with = "loose::opt_string")]
    name: Option<String>,
}

/// Parses one text frame from the carrier.
pub fn parse_event(text: &str) -> Result<CarrierEvent<'_>, CarrierParseError> {
    let raw: RawEvent<'_> = serde_json::from_str(text).map_err(|e| CarrierParseError::NotJson(e.to_string()))?;
    let event = raw.event.ok_or(CarrierParseError::NoEvent)?;
    // "media" is the hot path: match it exactly before normalising the name.
    if event == "media" {
        let payload = raw.media.and_then(|m| m.payload).ok_or(CarrierParseError::NoPayload)?.0;
        return Ok(CarrierEvent::Media {
            payload,
            sequence: raw.sequence_number,
        });
    }
    let normalized: String = event
        .chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    Ok(match normalized.as_str() {
        "start" => CarrierEvent::Start(stream_start(raw.start.unwrap_or_default())?),
        "playedstream" | "played" | "mark" => {
            let name = raw.name.or_else(|| raw.mark.and_then(|m| m.name));
            CarrierEvent::PlayedStream {
                name: name.map(|n| Label::parse("name", &n, MAX_NAME)).transpose()?,
            }
        }
        "dtmf" => {
            let digit = raw.dtmf.and_then(|d| d.digit).unwrap_or_default();
            CarrierEvent::Dtmf {
                digit: DtmfDigit::parse("dtmf.digit", &digit)?,
            }
        }
        "stop" | "hangup" => CarrierEvent::Stop,
        "connected" | "clearedaudio" | "cleared" => CarrierEvent::Ignored,
        _ => CarrierEvent::Unknown { event: shown(&event) },
    })
}

fn stream_start(raw: RawStart) -> Result<StreamStart, Invalid> {
    let mf = raw.media_format.unwrap_or_default();
    Ok(StreamStart {
        stream_id: raw
            .stream_id
            .map(|id| Label::parse("start.streamId", &id, MAX_NAME))
            .transpose()?,
        format: media_format(mf.encoding.as_ref(), mf.sample_rate.as_ref())?,
        claim: raw.custom_parameters.map(stream_claim).transpose()?.flatten(),
    })
}

fn stream_claim(raw: RawParameters) -> Result<Option<StreamClaim>, Invalid> {
    let Some(call_id) = raw.call_id else { return Ok(None) };
    Ok(Some(StreamClaim {
        call_id: CallId::parse("start.customParameters.call_id", &call_id)?,
        token: raw
            .token
            .map(|t| Label::parse("start.customParameters.token", &t, MAX_TOKEN))
            .transpose()?,
    }))
}

/// The carrier's `mediaFormat`: a MIME-style encoding (μ-law, A-law or linear PCM16, optionally with a
/// `;rate=` parameter) at a rate we bridge. Absent means the protocol's default, μ-law at 8 kHz.
fn media_format(
    encoding: Option<&serde_json::Value>,
    rate: Option<&serde_json::Value>,
) -> Result<AudioFormat, Invalid> {
    const ENCODING: &str = "start.mediaFormat.encoding";
    const RATE: &str = "start.mediaFormat.sampleRate";
    let encoding = match encoding {
        None | Some(serde_json::Value::Null) => "audio/x-mulaw".to_string(),
        Some(serde_json::Value::String(s)) => s.trim().to_ascii_lowercase(),
        Some(other) => {
            return Err(Invalid::new(
                ENCODING,
                format!("{} is not a string", shown(&other.to_string())),
            ))
        }
    };
    let (mime, params) = encoding.split_once(';').unwrap_or((&encoding, ""));
    let codec = match mime.trim() {
        "audio/x-mulaw" | "audio/mulaw" | "audio/pcmu" | "audio/basic" | "mulaw" | "ulaw" | "pcmu" => Codec::Ulaw,
        "audio/x-alaw" | "audio/alaw" | "audio/pcma" | "alaw" | "pcma" => Codec::Alaw,
        "audio/x-l16" | "audio/l16" | "audio/x-raw" | "raw" | "slin" | "l16" | "linear16" | "pcm" => Codec::Pcm16,
        other => {
            return Err(Invalid::new(
                ENCODING,
                format!(
                    "'{}' is not an encoding we bridge (audio/x-mulaw, audio/x-alaw, audio/x-l16)",
                    shown(other)
                ),
            ))
        }
    };
    let param_rate = params
        .split(';')
        .find_map(|p| p.trim().strip_prefix("rate="))
        .map(|r| serde_json::Value::String(r.to_string()));
    let hz = match rate.filter(|v| !v.is_null()).or(param_rate.as_ref()) {
        Some(v) => whole_number(RATE, v)?,
        None => 8000,
    };
    AudioFormat::new(RATE, codec, hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_in_camel_case_with_string_rate() {
        let e = parse_event(
            r#"{"event":"start","sequenceNumber":"1","start":{"callId":"C1","streamId":"S1","tracks":["inbound"],
               "mediaFormat":{"encoding":"audio/x-l16","sampleRate":"16000"}},"extra_headers":"a=b"}"#,
        )
        .expect("parses");
        let CarrierEvent::Start(s) = e else {
            panic!("not start: {e:?}")
        };
        assert_eq!(s.stream_id.as_ref().map(Label::as_str), Some("S1"));
        assert_eq!(s.format, AudioFormat::PCM_16K);
    }

    #[test]
    fn twilios_start_names_the_call_in_its_parameters() {
        let e = parse_event(
            r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1",
               "tracks":["inbound"],"customParameters":{"call_id":"CA1","token":"t.1","extra":"x"},
               "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}"#,
        )
        .expect("parses");
        let CarrierEvent::Start(s) = e else {
            panic!("not start: {e:?}")
        };
        let claim = s.claim.expect("claim");
        assert_eq!(
            (claim.call_id.as_str(), claim.token.as_ref().map(Label::as_str)),
            ("CA1", Some("t.1"))
        );
        assert_eq!(s.stream_id.as_ref().map(Label::as_str), Some("MZ1"));
        let bad = parse_event(r#"{"event":"start","start":{"customParameters":{"call_id":"a\u0000b"}}}"#);
        assert!(
            matches!(bad, Err(CarrierParseError::Invalid(ref i)) if i.field == "start.customParameters.call_id"),
            "{bad:?}"
        );
    }

    #[test]
    fn every_encoding_we_bridge_and_nothing_else() {
        let format = |mf: &str| match parse_event(&format!(r#"{{"event":"start","start":{{"mediaFormat":{mf}}}}}"#)) {
            Ok(CarrierEvent::Start(s)) => Ok(s.format),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(format(r#"{"encoding":"audio/x-alaw"}"#), Ok(AudioFormat::ALAW_8K));
        assert_eq!(
            format(r#"{"encoding":"PCMA","sampleRate":8000}"#),
            Ok(AudioFormat::ALAW_8K)
        );
        assert_eq!(format(r#"{"encoding":"audio/PCMU"}"#), Ok(AudioFormat::ULAW_8K));
        assert_eq!(
            format(r#"{"encoding":"audio/x-l16;rate=16000"}"#),
            Ok(AudioFormat::PCM_16K)
        );
        assert_eq!(format(r#"{"encoding":"audio/x-l16"}"#).map(|f| f.rate.hz()), Ok(8000));
        for (bad, field) in [
            (
                r#"{"encoding":"audio/x-l16","sampleRate":4294967295}"#,
                "start.mediaFormat.sampleRate",
            ),
            (
                r#"{"encoding":"audio/x-l16","sampleRate":0}"#,
                "start.mediaFormat.sampleRate",
            ),
            (
                r#"{"encoding":"audio/x-l16","sampleRate":"fast"}"#,
                "start.mediaFormat.sampleRate",
            ),
            (
                r#"{"encoding":"audio/x-mulaw","sampleRate":16000}"#,
                "start.mediaFormat.sampleRate",
            ),
            (r#"{"encoding":"audio/opus"}"#, "start.mediaFormat.encoding"),
            (r#"{"encoding":7}"#, "start.mediaFormat.encoding"),
        ] {
            match format(bad) {
                Err(CarrierParseError::Invalid(e)) => assert_eq!(e.field, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn ids_digits_and_names_out_of_bounds_are_refused_with_their_field() {
        let field = |text: &str| match parse_event(text) {
            Err(CarrierParseError::Invalid(e)) => e.field,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(
            field(r#"{"event":"start","start":{"streamId":"a\u0000b"}}"#),
            "start.streamId"
        );
        let long = "s".repeat(MAX_NAME + 1);
        assert_eq!(
            field(&format!(r#"{{"event":"start","start":{{"streamId":"{long}"}}}}"#)),
            "start.streamId"
        );
        assert_eq!(field(r#"{"event":"dtmf","dtmf":{"digit":"\u0000"}}"#), "dtmf.digit");
        assert_eq!(field(r#"{"event":"dtmf","dtmf":{}}"#), "dtmf.digit");
        assert_eq!(field(r#"{"event":"playedStream","name":"cp\n1"}"#), "name");
        assert_eq!(
            parse_event(r#"{"event":"we\u0000ird"}"#),
            Ok(CarrierEvent::Unknown {
                event: "we\\0ird".into()
            })
        );
    }

    #[test]
    fn start_in_snake_case_and_defaults() {
        let e = parse_event(r#"{"event":"start","start":{"stream_sid":"S2","media_format":{}}}"#).expect("parses");
        let CarrierEvent::Start(s) = e else { panic!() };
        assert_eq!(s.stream_id.as_ref().map(Label::as_str), Some("S2"));
        assert_eq!(s.format, AudioFormat::ULAW_8K);
        let e = parse_event(r#"{"event":"start"}"#).expect("parses");
        assert!(matches!(e, CarrierEvent::Start(ref s) if s.format == AudioFormat::ULAW_8K && s.stream_id.is_none()));
    }

    #[test]
    fn media_borrows_payload_and_reads_loose_sequence() {
        let text = r#"{"event":"media","sequenceNumber":42,"streamId":"S","media":{"track":"inbound","timestamp":"5","chunk":"1","payload":"AAEC"}}"#;
        let e = parse_event(text).expect("parses");
        let CarrierEvent::Media { payload, sequence } = e else {
            panic!()
        };
        assert!(matches!(payload, Cow::Borrowed("AAEC")));
        assert_eq!(sequence, Some(42));
        let e = parse_event(r#"{"event":"media","sequence_number":"7","media":{"payload":"QQ=="}}"#).expect("parses");
        assert!(matches!(e, CarrierEvent::Media { sequence: Some(7), .. }));
    }

    #[test]
    fn other_events_and_failures() {
        let label = |s: &str| Label::parse("name", s, MAX_NAME).ok();
        assert_eq!(
            parse_event(r#"{"event":"playedStream","streamId":"S","name":"cp-1"}"#),
            Ok(CarrierEvent::PlayedStream { name: label("cp-1") })
        );
        assert_eq!(
            parse_event(r#"{"event":"mark","mark":{"name":"m"}}"#),
            Ok(CarrierEvent::PlayedStream { name: label("m") })
        );
        assert!(matches!(
            parse_event(r#"{"event":"dtmf","dtmf":{"digit":5}}"#),
            Ok(CarrierEvent::Dtmf { digit }) if digit.as_char() == '5'
        ));
        assert_eq!(parse_event(r#"{"event":"stop"}"#), Ok(CarrierEvent::Stop));
        assert_eq!(
            parse_event(r#"{"event":"played_stream"}"#),
            Ok(CarrierEvent::PlayedStream { name: None })
        );
        assert!(matches!(
            parse_event(r#"{"event":"weird"}"#),
            Ok(CarrierEvent::Unknown { .. })
        ));
        assert_eq!(parse_event(r#"{"media":{}}"#), Err(CarrierParseError::NoEvent));
        assert_eq!(
            parse_event(r#"{"event":"media","media":{}}"#),
            Err(CarrierParseError::NoPayload)
        );
        assert!(matches!(parse_event("not json"), Err(CarrierParseError::NotJson(_))));
        assert!(matches!(parse_event("null"), Err(CarrierParseError::NotJson(_))));
    }
}
