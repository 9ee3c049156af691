//! `websocket_api loadtest`: simulated carriers (Mcube unless told; any dialect) against a running gateway,
//! through the carrier's real webhook + WebSocket path, with an echoing agent behind it (`simulate-agent --echo`). It measures what an operator
//! sizes a box by: admissions, setup time, frames lost, silences heard, round trips, the gateway's own
//! hop latency (from `/metrics`), and the gateway's RSS, CPU and FDs per call read from `/proc/<pid>`.

use crate::capacity::procfs;
use crate::capacity::PerCallCost;
use crate::tools::sim::carrier::{open_media_socket, post_refurl, Admission, CallRequest, MediaSocket};
use crate::tools::sim::sent::{read_sent, Sent};
use crate::tools::sim::stamp;
use crate::tools::sim::stream::{place, Placed};
use awc::ws::{CloseCode, Frame, Message as WsMessage};
use base64::Engine as _;
use futures_util::future::join_all;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt as _, StreamExt as _};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Whose dialect the calls speak (their webhook, events and codec).
    pub carrier: crate::carriers::Carrier,
    /// `http://host:port` of the gateway (its carrier-facing listener).
    pub target: String,
    /// `http://host:port` of the gateway's admin listener, for its `/metrics`.
    pub admin: String,
    pub calls: usize,
    /// New calls per second.
    pub ramp_per_s: f64,
    /// How long each call talks once connected.
    pub seconds: f64,
    pub frame_ms: u64,
    /// The gateway's pid for `/proc` readings; found from the target's listening port when absent.
    pub gateway_pid: Option<u32>,
    /// Only POST this many refurl requests at once (no media): the admission burst.
    pub burst: Option<usize>,
}

#[derive(Debug, Default)]
struct CallOutcome {
    admitted: bool,
    refused: Option<String>,
    failed: bool,
    setup_ms: Option<f64>,
    sent: u64,
    echoed: u64,
    sent_bytes: u64,
    echoed_bytes: u64,
    lost_frames: u64,
    rtts: Vec<f64>,
    /// Frame sent → the agent received it, and the agent received it → its echo heard (from the stamps).
    to_agent: Vec<f64>,
    from_agent: Vec<f64>,
    max_silence_ms: f64,
    silences: u64,
}

/// A frame whose first bytes carry its number and send time (`sim::stamp`), so its echo can be matched and
/// the agent can say when it heard it (μ-law passes through untouched).
fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0xD5u8; len];
    stamp::write(&mut f, seq, stamp::now_us());
    f
}

/// What the load generator needs from a gateway message: audio fast, the rest rarely.
#[derive(serde::Deserialize)]
struct Outbound<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    media: Option<OutboundMedia<'a>>,
}

#[derive(serde::Deserialize)]
struct OutboundMedia<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

/// One call's talk, on one task: a load generator that spends less per frame leaves more of a shared
/// machine to the gateway it measures.
struct Talk {
    sink: SplitSink<MediaSocket, WsMessage>,
    t0: Instant,
    frame_ms: u64,
    /// Bytes of the stream's audio a millisecond (μ-law 8, Exotel's PCM16 16).
    bytes_per_ms: u64,
    sent_at: Vec<Instant>,
    /// When a listener would have played everything heard so far.
    heard_until: Option<Instant>,
    out: CallOutcome,
}

impl Talk {
    async fn send(&mut self, text: String) -> bool {
        self.sink.send(WsMessage::Text(text.into())).await.is_ok()
    }

    /// Handles one frame from the gateway; false once the socket is done.
    async fn hear(&mut self, frame: Option<Result<Frame, awc::error::WsProtocolError>>) -> bool {
        let at = Instant::now();
        match frame {
            Some(Ok(Frame::Text(text))) => {
                let Ok(msg) = serde_json::from_slice::<Outbound>(&text) else {
                    return true;
                };
                match (&*msg.event, msg.media) {
                    ("playAudio" | "media", Some(media)) => self.note_audio(at, &media.payload),
                    // Marks are rare: read them in whichever dialect they came in, and answer in it.
                    ("checkpoint" | "mark", _) => {
                        if let Sent::Mark { answer, .. } = read_sent(&text) {
                            return self.send(answer).await;
                        }
                    }
                    ("terminate", _) => return false,
                    _ => {}
                }
                true
            }
            Some(Ok(Frame::Ping(p))) => self.sink.send(WsMessage::Pong(p)).await.is_ok(),
            Some(Ok(Frame::Close(_))) | Some(Err(_)) | None => false,
            Some(Ok(_)) => true,
        }
    }

    fn note_audio(&mut self, at: Instant, b64: &str) {
        let out = &mut self.out;
        out.setup_ms
            .get_or_insert(at.duration_since(self.t0).as_secs_f64() * 1000.0);
        // The stamp is in the first 24 bytes: 32 base64 characters.
        let head = b64
            .get(..32)
            .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok());
        if let Some(st) = head.as_deref().and_then(stamp::read) {
            if let Some(s) = self.sent_at.get(st.seq as usize) {
                out.rtts.push(at.duration_since(*s).as_secs_f64() * 1000.0);
            }
            if let Some(agent_us) = st.agent_us {
                let ms = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1000.0;
                out.to_agent.push(ms(st.sent_us, agent_us));
                out.from_agent.push(ms(agent_us, stamp::now_us()));
            }
        }
        // The gateway may write a few frames at once (its pacing lead): what a caller hears is silence only
        // when a frame comes after everything before it has been played.
        let bytes = crate::protocol::base64_decoded_len(b64);
        if let Some(until) = self.heard_until {
            let silence = at.saturating_duration_since(until).as_secs_f64() * 1000.0;
            out.max_silence_ms = out.max_silence_ms.max(silence);
            if silence > 2.0 * self.frame_ms as f64 {
                out.silences += 1;
            }
        }
        let played = Duration::from_micros(bytes as u64 * 1000 / self.bytes_per_ms.max(1));
        self.heard_until = Some(self.heard_until.map_or(at, |u| u.max(at)) + played);
        out.echoed += 1;
        out.echoed_bytes += bytes as u64;
    }
}

async fn one_call(opts: LoadOptions, id: String, start_at: Instant) -> CallOutcome {
    tokio::time::sleep_until(start_at.into()).await;
    let mut out = CallOutcome::default();
    let t0 = Instant::now();
    let mut dialect = match place(&opts.target, opts.carrier, &CallRequest::inbound(&id)).await {
        Placed::Admitted(d) => d,
        Placed::Refused(why) => {
            out.refused = Some(why.split_once(' ').map_or(why.clone(), |(_, e)| e.to_string()));
            return out;
        }
        Placed::Failed(_) => {
            out.failed = true;
            return out;
        }
    };
    out.admitted = true;
    let Ok(socket) = open_media_socket(&dialect.wss_url).await else {
        out.failed = true;
        return out;
    };
    let (sink, mut stream) = socket.split();
    let frame_ms = dialect.frame_ms(opts.frame_ms);
    let bytes_per_ms = dialect.bytes_per_ms() as u64;
    let frame_len = (bytes_per_ms * frame_ms) as usize;
    let total = (opts.seconds * 1000.0 / frame_ms as f64) as usize;
    let mut talk = Talk {
        sink,
        t0,
        frame_ms,
        bytes_per_ms,
        sent_at: Vec::with_capacity(total),
        heard_until: None,
        out,
    };
    let mut open = true;
    for event in std::mem::take(&mut dialect.opening) {
        open = open && talk.send(event).await;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(frame_ms));
    while open && talk.sent_at.len() < total {
        tokio::select! {
            _ = tick.tick() => {
                open = talk.send(dialect.media(&frame(talk.sent_at.len() as u32, frame_len))).await;
                talk.sent_at.push(Instant::now());
            }
            frame = stream.next() => open = talk.hear(frame).await,
        }
    }
    // The echo trails by the agent's and the gateway's hops: collect it, then hang up.
    while open {
        match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
            Ok(frame) => open = talk.hear(frame).await,
            Err(_) => break,
        }
    }
    if let Some(stop) = dialect.stop() {
        let _ = talk.send(stop).await;
    }
    let _ = talk.sink.send(WsMessage::Close(Some(CloseCode::Normal.into()))).await;
    let mut out = talk.out;
    out.sent = talk.sent_at.len() as u64;
    out.sent_bytes = out.sent * frame_len as u64;
    // The gateway re-frames the echo into its own frame size, so audio is counted, not frames; a transcoded
    // echo may come back a few samples short (resampler delay), which is not a lost frame.
    out.lost_frames = out
        .sent_bytes
        .saturating_sub(out.echoed_bytes + TRANSCODE_SLACK_BYTES)
        .div_ceil(frame_len as u64);
    out
}

/// Bytes a transcoded round trip may come back short by without a frame being lost.
const TRANSCODE_SLACK_BYTES: u64 = 32;

/// Fires `n` refurl POSTs at once; returns their answer times and outcomes.
async fn burst(opts: &LoadOptions, n: usize) -> (Spread, u64, BTreeMap<String, u64>) {
    let run = std::process::id();
    let posts = (0..n).map(|i| {
        let target = opts.target.clone();
        async move {
            let t = Instant::now();
            let r = post_refurl(&target, &CallRequest::inbound(&format!("BURST-{run}-{i}"))).await;
            (t.elapsed().as_secs_f64() * 1000.0, r)
        }
    });
    let results = join_all(posts).await;
    let mut refused = BTreeMap::new();
    let mut admitted = 0;
    for (_, r) in &results {
        match r {
            Ok(Admission::Admitted { .. }) => admitted += 1,
            Ok(Admission::Refused { error, .. }) => *refused.entry(error.clone()).or_default() += 1,
            Err(_) => *refused.entry("error".into()).or_default() += 1,
        }
    }
    (
        Spread::of(results.iter().map(|(ms, _)| *ms).collect()),
        admitted,
        refused,
    )
}

/// The pid of the process listening on the target's port (from `/proc/net/tcp*` and `/proc/*/fd`).
pub fn find_listener_pid(target: &str) -> Option<u32> {
    let port: u16 = target.rsplit(':').next()?.trim_end_matches('/').parse().ok()?;
    let hex = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address ends with the port; st 0A is LISTEN; field 9 is the inode.
            if f.len() > 9 && f[1].ends_with(&hex) && f[3] == "0A" {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| link.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// Runs the load and measures it.
pub async fn run(opts: LoadOptions) -> LoadReport {
    let pid = opts.gateway_pid.or_else(|| find_listener_pid(&opts.target));
    let baseline = pid.and_then(|p| procfs::sample_process(&p.to_string()).ok());
    let mut report = LoadReport {
        calls: opts.calls,
        frame_ms: opts.frame_ms,
        ..LoadReport::default()
    };
    if let Some(n) = opts.burst {
        let (spread, admitted, refused) = burst(&opts, n).await;
        report.refurl_ms = spread;
        report.admitted = admitted;
        report.refused = refused;
        report.hop_ms = scrape_hops(&opts.admin).await;
        return report;
    }
    let t0 = Instant::now();
    let run_id = std::process::id();
    let step = Duration::from_secs_f64(1.0 / opts.ramp_per_s.max(0.001));
    let calls = (0..opts.calls).map(|i| {
        let id = format!("LOAD-{run_id}-{i}");
        one_call(opts.clone(), id, t0 + step * i as u32)
    });
    // Measure the gateway mid-run, once every call is up and talking.
    let ramp_s = step.as_secs_f64() * opts.calls as f64;
    let measure = async {
        let window = (opts.seconds / 3.0).clamp(1.0, 20.0);
        let settle = ramp_s + (opts.seconds - window).max(0.0) / 2.0;
        tokio::time::sleep(Duration::from_secs_f64(settle)).await;
        let (Some(p), Some(base)) = (pid, baseline) else {
            return None;
        };
        let a = procfs::sample_process(&p.to_string()).ok()?;
        tokio::time::sleep(Duration::from_secs_f64(window)).await;
        let b = procfs::sample_process(&p.to_string()).ok()?;
        Some((p, base, a, b, window))
    };
    let (outcomes, measured) = futures_util::future::join(join_all(calls), measure).await;
    tally(&mut report, &outcomes);
    report.ramp_per_s_achieved = opts.calls as f64 / ramp_s.max(0.001);
    report.hop_ms = scrape_hops(&opts.admin).await;
    report.gateway = measured.map(|m| gateway_use(m, report.admitted, opts.frame_ms));
    report
}

/// The gateway's pid, its idle sample, and two samples `window` seconds apart with the calls live.
type Measured = (
    u32,
    procfs::ProcessSample,
    procfs::ProcessSample,
    procfs::ProcessSample,
    f64,
);

/// Adds every call's outcome to the report.
fn tally(report: &mut LoadReport, outcomes: &[CallOutcome]) {
    let mut setup = Vec::new();
    let mut rtts = Vec::new();
    let (mut to_agent, mut from_agent) = (Vec::new(), Vec::new());
    let mut silences = Vec::new();
    for o in outcomes {
        if o.admitted {
            report.admitted += 1;
        }
        if let Some(r) = &o.refused {
            *report.refused.entry(r.clone()).or_default() += 1;
        }
        report.failed += u64::from(o.failed);
        setup.extend(o.setup_ms);
        rtts.extend_from_slice(&o.rtts);
        to_agent.extend_from_slice(&o.to_agent);
        from_agent.extend_from_slice(&o.from_agent);
        if o.echoed > 1 {
            silences.push(o.max_silence_ms);
        }
        report.frames_sent += o.sent;
        report.frames_echoed += o.echoed;
        report.bytes_sent += o.sent_bytes;
        report.bytes_echoed += o.echoed_bytes;
        report.silences_over_two_frames += o.silences;
    }
    report.frames_lost = outcomes.iter().map(|o| o.lost_frames).sum();
    report.setup_ms = Spread::of(setup);
    report.round_trip_ms = Spread::of(rtts);
    report.caller_to_agent_ms = Spread::of(to_agent);
    report.agent_to_caller_ms = Spread::of(from_agent);
    report.max_silence_ms = Spread::of(silences);
}

/// The gateway's use over the measured window (`pid`, its idle baseline, samples before and after), per call.
fn gateway_use(measured: Measured, admitted: u64, frame_ms: u64) -> GatewayUse {
    let (pid, base, a, b, window) = measured;
    let live = admitted.max(1);
    let cpu_cores = (b.cpu_seconds - a.cpu_seconds) / window;
    GatewayUse {
        pid,
        baseline: base,
        loaded: b,
        live_calls: live,
        window_s: window,
        cpu_cores,
        per_call: PerCallCost {
            rss_bytes: (b.rss_bytes.saturating_sub(base.rss_bytes)) as f64 / live as f64,
            cpu_cores: cpu_cores / live as f64,
            fds: (b.open_fds.saturating_sub(base.open_fds)) as f64 / live as f64,
            outbound_ports: 1.0,
            source: format!("loadtest: {live} calls, {frame_ms} ms frames"),
            measured_calls: live,
        },
    }
}

mod report;
use report::scrape_hops;
pub use report::{histogram_buckets, quantile, GatewayUse, LoadReport, Spread};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_quantiles() {
        let s = Spread::of((1..=100).map(f64::from).collect());
        assert_eq!((s.p50, s.p99, s.max, s.count), (51.0, 99.0, 100.0, 100));
        let text = "wsapi_hop_latency_seconds_bucket{direction=\"carrier_to_agent\",le=\"0.0001\"} 50\n\
                    wsapi_hop_latency_seconds_bucket{direction=\"carrier_to_agent\",le=\"0.001\"} 99\n\
                    wsapi_hop_latency_seconds_bucket{direction=\"carrier_to_agent\",le=\"+Inf\"} 100\n\
                    wsapi_hop_latency_seconds_bucket{direction=\"agent_to_carrier\",le=\"0.0001\"} 7\n";
        let b = histogram_buckets(text, "wsapi_hop_latency_seconds", "direction=\"carrier_to_agent\"");
        assert_eq!(b.len(), 3);
        assert_eq!(quantile(&b, 0.5), 0.0001);
        assert_eq!(quantile(&b, 0.99), 0.001);
        assert_eq!(quantile(&b, 1.0), f64::INFINITY);
    }
}
