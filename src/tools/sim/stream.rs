//! A simulated call in any carrier's dialect, for the demo and the load tool: the carrier's own webhook
//! (Mcube's refurl, Plivo's answer URL, Exotel's dynamic URL, Twilio's voice webhook), then its stream's
//! opening events and media messages as its documentation describes them (`dialects`), in its codec:
//! μ-law at 8 kHz, or Exotel's PCM16 in 100 ms messages.

use super::carrier::{CarrierConn, Heard};
use super::placing::{Answered, CallRequest};
use crate::audio::codec::{encode_pcm16le, encode_ulaw};
use crate::audio::format::{AudioFormat, Codec};
use crate::audio::signal::SpeechLike;
use crate::carriers::Carrier;
use crate::values::Invalid;
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

/// The carrier named on a command line (`carriers::list::NAMES`).
pub fn parse_carrier(name: &str) -> Result<Carrier, Invalid> {
    Carrier::from_path(&name.to_ascii_lowercase()).ok_or_else(|| {
        Invalid::new(
            "--carrier",
            format!("'{name}' is not {}", crate::carriers::list::spoken()),
        )
    })
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

/// Each carrier's simulator, from the one list of carriers: `place`, `media` and `stop` ask the carrier's
/// folder (`carriers::<name>::sim`).
macro_rules! each_simulator {
    ($($variant:ident => $folder:ident),+ $(,)?) => {
        async fn answered(http_base: &str, carrier: Carrier, call: &CallRequest, stream_sid: &str) -> Answered {
            match carrier {
                $(Carrier::$variant => crate::carriers::$folder::sim::place(http_base, call, stream_sid).await),+
            }
        }

        fn sends_at_least_ms(carrier: Carrier) -> u64 {
            match carrier {
                $(Carrier::$variant => crate::carriers::$folder::sim::FRAME_MS),+
            }
        }

        fn media_message(carrier: Carrier, stream_sid: &str, audio: &[u8], chunk: u64) -> String {
            match carrier {
                $(Carrier::$variant => crate::carriers::$folder::sim::media(stream_sid, audio, chunk)),+
            }
        }

        fn stop_message(carrier: Carrier, stream_sid: &str, call_sid: &str) -> Option<String> {
            match carrier {
                $(Carrier::$variant => crate::carriers::$folder::sim::stop(stream_sid, call_sid)),+
            }
        }
    };
}
crate::carriers::list::carriers_list!(each_simulator);

/// Asks `carrier`'s webhook on the gateway at `http_base` to take `call`.
pub async fn place(http_base: &str, carrier: Carrier, call: &CallRequest) -> Placed {
    let stream_sid = format!("MZ-{}", call.call_id);
    match answered(http_base, carrier, call, &stream_sid).await {
        Answered::Streams {
            wss_url,
            opening,
            format,
        } => Placed::Admitted(DialectCall {
            carrier,
            wss_url,
            opening,
            format,
            stream_sid,
            call_sid: call.call_id.clone(),
            chunk: 0,
        }),
        Answered::Refused(why) => Placed::Refused(why),
        Answered::Failed(why) => Placed::Failed(why),
    }
}

/// How long `carrier`'s media messages are when `wanted` is asked: it sends no shorter than its own least.
pub fn frame_ms(carrier: Carrier, wanted: u64) -> u64 {
    wanted.max(sends_at_least_ms(carrier))
}

impl DialectCall {
    /// The shortest media message the carrier sends (Exotel's are 100 ms; the others send what they are
    /// given).
    pub fn frame_ms(&self, wanted: u64) -> u64 {
        frame_ms(self.carrier, wanted)
    }

    /// Bytes of the stream's audio per millisecond.
    pub fn bytes_per_ms(&self) -> usize {
        self.format.bytes_for_ms(1)
    }

    /// A media message carrying `audio` (already in the stream's format).
    pub fn media(&mut self, audio: &[u8]) -> String {
        self.chunk += 1;
        media_message(self.carrier, &self.stream_sid, audio, self.chunk)
    }

    /// The carrier's `stop` before it closes the stream, where its dialect has one.
    pub fn stop(&self) -> Option<String> {
        stop_message(self.carrier, &self.stream_sid, &self.call_sid)
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
