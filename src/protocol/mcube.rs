//! The Mcube (Plivo-style) stream protocol: tolerant parsing of what the carrier sends (camelCase or
//! snake_case, numbers as strings or numbers, unknown fields ignored) and the messages we send back
//! (`playAudio`, `checkpoint`, `clearAudio`, `terminate`). Plain serde, no I/O.

use crate::audio::format::{AudioFormat, Codec};
use crate::protocol::{loose, CowStr};
use serde::Deserialize;
use std::borrow::Cow;

/// One event from the carrier's WebSocket, borrowed from the frame text where possible.
#[derive(Debug, Clone, PartialEq)]
pub enum CarrierEvent<'a> {
    /// The stream starts: ids and the media format.
    Start(StreamStart),
    /// Caller audio, base64 in the negotiated encoding.
    Media {
        payload: Cow<'a, str>,
        sequence: Option<u64>,
    },
    /// A checkpoint we sent has played out (`playedStream`, or an Exotel/Twilio style `mark`).
    PlayedStream { name: Option<String> },
    /// The caller pressed a key.
    Dtmf { digit: String },
    /// The carrier ends the stream.
    Stop,
    /// Events we understand and have nothing to do for (`connected`, `clearedAudio`).
    Ignored { event: String },
    /// An event name we do not know; counted and logged, never fatal.
    Unknown { event: String },
}

/// The `start` event's content, with the protocol's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStart {
    pub call_id: Option<String>,
    pub stream_id: Option<String>,
    pub format: AudioFormat,
    pub tracks: Vec<String>,
}

/// Why a carrier frame could not be understood at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierParseError {
    #[error("carrier: frame is not JSON: {0}")]
    NotJson(String),
    #[error("carrier: frame has no 'event' field")]
    NoEvent,
    #[error("carrier: 'media' event without a payload")]
    NoPayload,
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
    #[serde(default)]
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
    #[serde(default, alias = "callId", alias = "callSid", alias = "call_sid")]
    call_id: Option<String>,
    #[serde(default, alias = "streamId", alias = "streamSid", alias = "stream_sid")]
    stream_id: Option<String>,
    #[serde(default)]
    tracks: Option<Vec<String>>,
    #[serde(default, alias = "mediaFormat")]
    media_format: Option<RawMediaFormat>,
}

#[derive(Deserialize, Default)]
struct RawMediaFormat {
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default, alias = "sampleRate", deserialize_with = "loose::opt_u64")]
    sample_rate: Option<u64>,
}

#[derive(Deserialize)]
struct RawDtmf {
    #[serde(default, deserialize_with = "loose::opt_string")]
    digit: Option<String>,
}

#[derive(Deserialize)]
struct RawMark {
    #[serde(default)]
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
        "start" => CarrierEvent::Start(stream_start(raw.start.unwrap_or_default())),
        "playedstream" | "played" | "mark" => CarrierEvent::PlayedStream {
            name: raw.name.or_else(|| raw.mark.and_then(|m| m.name)),
        },
        "dtmf" => CarrierEvent::Dtmf {
            digit: raw.dtmf.and_then(|d| d.digit).unwrap_or_default(),
        },
        "stop" | "hangup" => CarrierEvent::Stop,
        "connected" | "clearedaudio" | "cleared" => CarrierEvent::Ignored {
            event: event.into_owned(),
        },
        _ => CarrierEvent::Unknown {
            event: truncate(&event, 64),
        },
    })
}

fn stream_start(raw: RawStart) -> StreamStart {
    let mf = raw.media_format.unwrap_or_default();
    let encoding = mf.encoding.unwrap_or_else(|| "audio/x-mulaw".into());
    let rate = mf.sample_rate.and_then(|r| u32::try_from(r).ok()).unwrap_or(8000);
    StreamStart {
        call_id: raw.call_id,
        stream_id: raw.stream_id,
        format: AudioFormat::from_carrier_encoding(&encoding, rate),
        tracks: raw.tracks.unwrap_or_else(|| vec!["inbound".into(), "outbound".into()]),
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Writes our messages to the carrier into a caller-owned buffer (reused per call on the hot path).
#[derive(Debug, Clone)]
pub struct CarrierWriter {
    /// The stream id as a JSON string literal, quotes included, escaped once per call.
    stream_id_json: String,
    /// Everything of a `playAudio` before its payload, built once per call: it goes out with every frame.
    play_audio_head: String,
}

impl CarrierWriter {
    pub fn new(stream_id: &str, format: AudioFormat) -> Self {
        let stream_id_json = serde_json::to_string(stream_id).unwrap_or_else(|_| "\"\"".into());
        let content_type = match format.codec {
            Codec::Ulaw => "audio/x-mulaw",
            Codec::Pcm16 => "audio/x-l16",
        };
        let play_audio_head = format!(
            "{{\"event\":\"playAudio\",\"streamId\":{stream_id_json},\"media\":{{\"contentType\":\"{content_type}\",\"sampleRate\":{},\"payload\":\"",
            format.rate
        );
        CarrierWriter {
            stream_id_json,
            play_audio_head,
        }
    }

    /// `playAudio` with an already base64-encoded payload.
    pub fn play_audio(&self, payload_b64: &str, out: &mut String) {
        out.clear();
        out.push_str(&self.play_audio_head);
        out.push_str(payload_b64);
        out.push_str("\"}}");
    }

    /// `checkpoint`: the carrier answers `playedStream` with the same name once what came before has played.
    pub fn checkpoint(&self, name: &str) -> String {
        let name = serde_json::to_string(name).unwrap_or_else(|_| "\"\"".into());
        format!(
            "{{\"event\":\"checkpoint\",\"streamId\":{},\"name\":{name}}}",
            self.stream_id_json
        )
    }

    /// `clearAudio`: barge-in, the carrier flushes what it has buffered.
    pub fn clear_audio(&self) -> String {
        format!("{{\"event\":\"clearAudio\",\"streamId\":{}}}", self.stream_id_json)
    }

    /// `terminate`: Mcube hangs the call up.
    pub fn terminate(&self) -> String {
        format!("{{\"event\":\"terminate\",\"streamId\":{}}}", self.stream_id_json)
    }
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
        assert_eq!(s.call_id.as_deref(), Some("C1"));
        assert_eq!(s.stream_id.as_deref(), Some("S1"));
        assert_eq!(
            s.format,
            AudioFormat {
                codec: Codec::Pcm16,
                rate: 16000
            }
        );
        assert_eq!(s.tracks, vec!["inbound".to_string()]);
    }

    #[test]
    fn start_in_snake_case_and_defaults() {
        let e = parse_event(r#"{"event":"start","start":{"stream_sid":"S2","media_format":{}}}"#).expect("parses");
        let CarrierEvent::Start(s) = e else { panic!() };
        assert_eq!(s.stream_id.as_deref(), Some("S2"));
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
        assert_eq!(
            parse_event(r#"{"event":"playedStream","streamId":"S","name":"cp-1"}"#),
            Ok(CarrierEvent::PlayedStream {
                name: Some("cp-1".into())
            })
        );
        assert_eq!(
            parse_event(r#"{"event":"mark","mark":{"name":"m"}}"#),
            Ok(CarrierEvent::PlayedStream { name: Some("m".into()) })
        );
        assert_eq!(
            parse_event(r#"{"event":"dtmf","dtmf":{"digit":5}}"#),
            Ok(CarrierEvent::Dtmf { digit: "5".into() })
        );
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

    #[test]
    fn outbound_messages_are_valid_json() {
        let w = CarrierWriter::new("S\"1", AudioFormat::ULAW_8K);
        let mut buf = String::new();
        w.play_audio("AAEC", &mut buf);
        let v: serde_json::Value = serde_json::from_str(&buf).expect("json");
        assert_eq!(v["event"], "playAudio");
        assert_eq!(v["media"]["payload"], "AAEC");
        assert_eq!(v["media"]["contentType"], "audio/x-mulaw");
        assert_eq!(v["media"]["sampleRate"], 8000);
        assert_eq!(v["streamId"], "S\"1");
        for (msg, ev) in [
            (w.checkpoint("n"), "checkpoint"),
            (w.clear_audio(), "clearAudio"),
            (w.terminate(), "terminate"),
        ] {
            let v: serde_json::Value = serde_json::from_str(&msg).expect("json");
            assert_eq!(v["event"], ev);
            assert_eq!(v["streamId"], "S\"1");
        }
    }
}
