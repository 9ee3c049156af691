//! A simulated call in any carrier's dialect, for the demo and the load tool: the carrier's own webhook
//! (Mcube's refurl, Plivo's answer URL, Exotel's dynamic URL, Twilio's voice webhook), then its stream's
//! opening events and media messages as its documentation describes them (`dialects`), in its codec:
//! μ-law at 8 kHz, or Exotel's PCM16 in 100 ms messages.

use super::carrier::{post_refurl, start_event, Admission, CallRequest, CarrierConn, Heard};
use super::dialects::*;
use crate::audio::codec::{encode_pcm16le, encode_ulaw};
use crate::audio::format::{AudioFormat, Codec};
use crate::audio::signal::SpeechLike;
use crate::carriers::Carrier;
use crate::values::Invalid;
use serde_json::json;
use std::time::{Duration, Instant};

/// A call a carrier's webhook admitted: where its stream goes and what the carrier says on it.
#[derive(Debug, Clone)]
pub struct DialectCall {
    pub carrier: Carrier,
    pub wss_url: String,
    /// What the carrier sends first (`connected`, `start`).
    pub opening: Vec<String>,
    /// The audio the stream carries.
    pub format: AudioFormat,
    stream_sid: String,
    call_sid: String,
    chunk: u64,
}

/// What the webhook answered.
#[derive(Debug, Clone)]
pub enum Placed {
    Admitted(DialectCall),
    /// Refused, in the carrier's own way (the status and reason, or what the XML said).
    Refused(String),
    Failed(String),
}

/// The carrier named on a command line (`mcube`, `plivo`, `exotel`, `twilio`).
pub fn parse_carrier(name: &str) -> Result<Carrier, Invalid> {
    Carrier::from_path(&name.to_ascii_lowercase())
        .ok_or_else(|| Invalid::new("--carrier", format!("'{name}' is not mcube, plivo, exotel or twilio")))
}

/// A count of calls on a command line: 1 or more.
pub fn parse_count(s: &str) -> Result<usize, Invalid> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Invalid::new("--calls", format!("'{s}' is not a count of 1 or more"))),
    }
}

/// A length on a command line: a positive number of seconds.
pub fn parse_seconds(s: &str) -> Result<f64, Invalid> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(Invalid::new(
            "--seconds",
            format!("'{s}' is not a positive number of seconds"),
        )),
    }
}

/// Asks `carrier`'s webhook on the gateway at `http_base` to take `call`.
pub async fn place(http_base: &str, carrier: Carrier, call: &CallRequest) -> Placed {
    let stream_sid = format!("MZ-{}", call.call_id);
    let call_sid = call.call_id.clone();
    let opened = |wss_url: String, opening: Vec<String>, format| {
        Placed::Admitted(DialectCall {
            carrier,
            wss_url,
            opening,
            format,
            stream_sid: stream_sid.clone(),
            call_sid: call_sid.clone(),
            chunk: 0,
        })
    };
    match carrier {
        Carrier::Mcube => match post_refurl(http_base, call).await {
            Ok(Admission::Admitted { wss_url }) => {
                let start = start_event(&call.call_id, &stream_sid, AudioFormat::ULAW_8K);
                opened(wss_url, vec![start], AudioFormat::ULAW_8K)
            }
            Ok(Admission::Refused { status, error, .. }) => Placed::Refused(format!("{status} {error}")),
            Err(e) => Placed::Failed(e.to_string()),
        },
        Carrier::Plivo => {
            let req = PlivoRequest::new(call, format!("{http_base}/plivo/answer"));
            match post_plivo_answer(req).await {
                Ok(answer) => match answer.stream_url() {
                    Some(url) => {
                        let start = start_event(&call.call_id, &stream_sid, AudioFormat::ULAW_8K);
                        opened(url, vec![start], AudioFormat::ULAW_8K)
                    }
                    None => Placed::Refused(refusal(answer.status, &answer.body)),
                },
                Err(e) => Placed::Failed(e.to_string()),
            }
        }
        Carrier::Exotel => match get_exotel_voicebot(http_base, call, None, None).await {
            Ok((200, answer)) => match answer["url"].as_str() {
                Some(url) => {
                    let opening = vec![
                        json!({"event": "connected"}).to_string(),
                        exotel_start_event(&call.call_id, &stream_sid, 8000),
                    ];
                    opened(url.to_string(), opening, pcm16_8k())
                }
                None => Placed::Failed(format!("no url in {answer}")),
            },
            Ok((status, answer)) => {
                Placed::Refused(format!("{status} {}", answer["error"].as_str().unwrap_or_default()))
            }
            Err(e) => Placed::Failed(e.to_string()),
        },
        Carrier::Twilio => {
            let req = TwilioRequest {
                call,
                voice_url: format!("{http_base}/twilio/voice"),
                auth_token: None,
                forged_signature: None,
            };
            match post_twilio_voice(req).await {
                Ok(answer) => match answer.twiml_stream() {
                    Some((url, parameters)) => {
                        let opening = vec![
                            twilio_connected_event(),
                            twilio_start_event(&call.call_id, &stream_sid, &parameters),
                        ];
                        opened(url, opening, AudioFormat::ULAW_8K)
                    }
                    None => Placed::Refused(refusal(answer.status, &answer.body)),
                },
                Err(e) => Placed::Failed(e.to_string()),
            }
        }
    }
}

fn pcm16_8k() -> AudioFormat {
    AudioFormat::new("exotel", Codec::Pcm16, 8000).unwrap_or(AudioFormat::ULAW_8K)
}

/// What a refusing webhook said: the status, and a busy XML answer as such.
fn refusal(status: u16, body: &str) -> String {
    if body.contains("busy") {
        format!("{status} busy")
    } else {
        format!("{status} {}", body.chars().take(80).collect::<String>())
    }
}

impl DialectCall {
    /// The shortest media message the carrier sends: Exotel's are 100 ms; the others send what they are given.
    pub fn frame_ms(&self, wanted: u64) -> u64 {
        match self.carrier {
            Carrier::Exotel => wanted.max(100),
            _ => wanted,
        }
    }

    /// Bytes of the stream's audio per millisecond.
    pub fn bytes_per_ms(&self) -> usize {
        self.format.bytes_for_ms(1)
    }

    /// A media message carrying `audio` (already in the stream's format).
    pub fn media(&mut self, audio: &[u8]) -> String {
        self.chunk += 1;
        match self.carrier {
            Carrier::Exotel => exotel_media_event(&self.stream_sid, audio),
            Carrier::Twilio => twilio_media_event(&self.stream_sid, audio, self.chunk),
            Carrier::Mcube | Carrier::Plivo => super::carrier::media_event(audio),
        }
    }

    /// The carrier's `stop` before it closes the stream, where its dialect has one.
    pub fn stop(&self) -> Option<String> {
        match self.carrier {
            Carrier::Exotel => Some(exotel_stop_event(&self.stream_sid)),
            Carrier::Twilio => Some(twilio_stop_event(&self.stream_sid, &self.call_sid)),
            Carrier::Mcube | Carrier::Plivo => None,
        }
    }
}

/// What one simulated call did, for the demo and load reports.
#[derive(Debug, Clone, Default)]
pub struct CallReport {
    pub call_id: String,
    pub carrier: Carrier,
    pub admitted: bool,
    pub refused: Option<String>,
    pub frames_sent: u64,
    pub frames_heard: u64,
    pub audio_ms_heard: u64,
    pub clears: u64,
    pub checkpoints: u64,
    pub terminated: bool,
    pub close_code: Option<u16>,
    /// Webhook → first agent audio heard.
    pub setup_ms: Option<u64>,
    pub error: Option<String>,
}

/// Places one call in `carrier`'s dialect: its webhook, the stream, its opening events, then `seconds` of
/// audio in the stream's codec, in `frame_ms` frames (Exotel's at least 100 ms) at real time while
/// listening: the caller speaks (speech-like audio) for `SPEAKS_MS`, then pauses for the agent's answer,
/// and again; hangs up (`stop` where the dialect has one, then close 1000) unless the gateway ended
/// the call first.
/// How long a simulated caller speaks before it pauses, and how long it pauses for the agent's answer.
pub const SPEAKS_MS: u64 = 2000;
pub const PAUSES_MS: u64 = 1000;

pub async fn run_call(
    http_base: &str,
    carrier: Carrier,
    call: CallRequest,
    seconds: f64,
    frame_ms: u64,
    seed: u64,
) -> CallReport {
    let mut report = CallReport {
        call_id: call.call_id.clone(),
        carrier,
        ..CallReport::default()
    };
    let t0 = Instant::now();
    let mut dialect = match place(http_base, carrier, &call).await {
        Placed::Admitted(d) => d,
        Placed::Refused(why) => {
            report.refused = Some(why);
            return report;
        }
        Placed::Failed(e) => {
            report.error = Some(e);
            return report;
        }
    };
    report.admitted = true;
    let mut conn = match CarrierConn::connect(&dialect.wss_url, true).await {
        Ok(c) => c,
        Err(e) => {
            report.error = Some(e.detail);
            return report;
        }
    };
    for event in &dialect.opening {
        conn.send_text(event.clone());
    }
    let frame_ms = dialect.frame_ms(frame_ms);
    let per_ms = dialect.bytes_per_ms() as u64;
    let mut speech = SpeechLike::new(8000, seed);
    let frame_samples = (8 * frame_ms) as usize;
    let mut samples = Vec::with_capacity(frame_samples);
    let mut encoded = Vec::with_capacity(frame_samples * 2);
    let mut ticker = tokio::time::interval(Duration::from_millis(frame_ms));
    let total_frames = (seconds * 1000.0 / frame_ms as f64) as u64;
    let mut gateway_ended = false;
    while report.frames_sent < total_frames && !gateway_ended {
        tokio::select! {
            _ = ticker.tick() => {
                samples.clear();
                encoded.clear();
                if (report.frames_sent * frame_ms) % (SPEAKS_MS + PAUSES_MS) < SPEAKS_MS {
                    speech.next_frame(frame_samples, &mut samples);
                } else {
                    samples.resize(frame_samples, 0);
                }
                match dialect.format.codec {
                    Codec::Pcm16 => encode_pcm16le(&samples, &mut encoded),
                    _ => encode_ulaw(&samples, &mut encoded),
                }
                conn.send_text(dialect.media(&encoded));
                report.frames_sent += 1;
            }
            heard = conn.next(Duration::from_secs(3600)) => match heard {
                Some((at, h)) => gateway_ended = note(&mut report, at, t0, h, per_ms),
                None => gateway_ended = true,
            }
        }
    }
    if !gateway_ended {
        if let Some(stop) = dialect.stop() {
            conn.send_text(stop);
        }
        conn.close(1000);
    }
    for (at, h) in conn.drain(Duration::from_millis(1500)).await {
        note(&mut report, at, t0, h, per_ms);
    }
    report
}

/// Records one heard event (`per_ms`: bytes of the stream's audio a millisecond); true when the gateway
/// ended the call.
fn note(report: &mut CallReport, at: Instant, t0: Instant, heard: Heard, per_ms: u64) -> bool {
    match heard {
        Heard::Audio(bytes) => {
            report.frames_heard += 1;
            report.audio_ms_heard += bytes.len() as u64 / per_ms.max(1);
            report.setup_ms.get_or_insert(at.duration_since(t0).as_millis() as u64);
            false
        }
        Heard::Checkpoint(_) => {
            report.checkpoints += 1;
            false
        }
        Heard::Clear => {
            report.clears += 1;
            false
        }
        Heard::Terminate => {
            report.terminated = true;
            false
        }
        Heard::Other(_) => false,
        Heard::Closed(code) => {
            report.close_code = code;
            true
        }
    }
}
