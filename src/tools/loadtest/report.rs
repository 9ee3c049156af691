//! The load test's report: the gateway's hop histograms scraped from its metrics, their quantiles, and the
//! report as text.

use crate::capacity::procfs::ProcessSample;
use crate::capacity::PerCallCost;
use serde::Serialize;
use std::collections::BTreeMap;

/// p50 / p95 / p99 / max of a set of values.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(mut v: Vec<f64>) -> Spread {
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        Spread {
            count: v.len(),
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// The gateway's resource use with the calls live, less its idle baseline.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayUse {
    pub pid: u32,
    pub baseline: ProcessSample,
    pub loaded: ProcessSample,
    pub live_calls: u64,
    /// Seconds over which CPU was measured.
    pub window_s: f64,
    pub cpu_cores: f64,
    pub per_call: PerCallCost,
}

/// Everything the run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    pub calls: usize,
    pub frame_ms: u64,
    pub admitted: u64,
    pub refused: BTreeMap<String, u64>,
    pub failed: u64,
    /// Refurl POST → first agent audio heard, ms.
    pub setup_ms: Spread,
    pub frames_sent: u64,
    /// Frames heard back (in the gateway's frame size, which may differ from the load's).
    pub frames_echoed: u64,
    /// Audio sent but not heard back, in frames of the load's size.
    pub frames_lost: u64,
    pub bytes_sent: u64,
    pub bytes_echoed: u64,
    /// Frame sent → its echo heard, ms (through the gateway both ways and the agent).
    pub round_trip_ms: Spread,
    /// Frame sent → the agent received it, ms, read from the stamps inside the audio (passthrough runs).
    pub caller_to_agent_ms: Spread,
    /// The agent received a frame → its echo heard, ms (the agent's own echo delay included).
    pub agent_to_caller_ms: Spread,
    /// Longest silence per call that a listener playing the echo as it comes (no jitter buffer) would
    /// hear, ms: a frame that came after everything before it had been played.
    pub max_silence_ms: Spread,
    /// Silences longer than two frame periods (audible dropouts).
    pub silences_over_two_frames: u64,
    /// The gateway's own hop latency from `/metrics` (p50, p99 in ms), each direction.
    pub hop_ms: BTreeMap<String, (f64, f64)>,
    /// Refurl answer times in a burst, ms.
    pub refurl_ms: Spread,
    pub gateway: Option<GatewayUse>,
    pub ramp_per_s_achieved: f64,
}

pub(super) async fn scrape_hops(admin: &str) -> BTreeMap<String, (f64, f64)> {
    let mut hops = BTreeMap::new();
    let Ok(mut resp) = awc::Client::default().get(format!("{admin}/metrics")).send().await else {
        return hops;
    };
    let Ok(body) = resp.body().limit(16 << 20).await else {
        return hops;
    };
    let text = String::from_utf8_lossy(&body);
    let refurl = histogram_buckets(&text, "wsapi_refurl_seconds", "");
    hops.insert(
        "refurl_answer".into(),
        (quantile(&refurl, 0.5) * 1000.0, quantile(&refurl, 0.99) * 1000.0),
    );
    for dir in [crate::metrics::CARRIER_TO_AGENT, crate::metrics::AGENT_TO_CARRIER] {
        let buckets = histogram_buckets(&text, "wsapi_hop_latency_seconds", &format!("direction=\"{dir}\""));
        hops.insert(
            dir.to_string(),
            (quantile(&buckets, 0.5) * 1000.0, quantile(&buckets, 0.99) * 1000.0),
        );
    }
    hops
}

/// `(le, cumulative count)` of one histogram series in Prometheus text; `label` (e.g. `direction="x"`)
/// picks the series, empty for an unlabelled histogram.
pub fn histogram_buckets(text: &str, name: &str, label: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.starts_with(&prefix) && l.contains(label)) {
        let le = line.split("le=\"").nth(1).and_then(|r| r.split('"').next());
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let (Some(le), Some(v)) = (le, value) {
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            out.push((le, v));
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The bucket bound under which a `q` share of observations fall (an upper bound of the quantile).
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    if total <= 0.0 {
        return 0.0;
    }
    buckets
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map_or(f64::INFINITY, |(le, _)| *le)
}

impl LoadReport {
    /// A human table.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let refused: Vec<String> = self.refused.iter().map(|(k, v)| format!("{k} {v}")).collect();
        o.push_str(&format!(
            "calls {}  admitted {}  refused [{}]  failed {}  ramp {:.0}/s\n",
            self.calls,
            self.admitted,
            refused.join(", "),
            self.failed,
            self.ramp_per_s_achieved
        ));
        let s = |x: &Spread| {
            format!(
                "p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}  (n={})",
                x.p50, x.p95, x.p99, x.max, x.count
            )
        };
        if self.refurl_ms.count > 0 {
            o.push_str(&format!("refurl answer ms at the client: {}\n", s(&self.refurl_ms)));
            if let Some((p50, p99)) = self.hop_ms.get("refurl_answer") {
                o.push_str(&format!(
                    "refurl answer inside the gateway: p50 ≤ {p50:.2} ms  p99 ≤ {p99:.2} ms\n"
                ));
            }
            return o;
        }
        o.push_str(&format!(
            "frames sent {}  echoed {}  lost {}  ({} ms frames)\n",
            self.frames_sent, self.frames_echoed, self.frames_lost, self.frame_ms
        ));
        o.push_str(&format!(
            "setup ms (refurl → first agent audio): {}\n",
            s(&self.setup_ms)
        ));
        o.push_str(&format!(
            "round trip ms (frame sent → echo heard): {}\n",
            s(&self.round_trip_ms)
        ));
        let stamped = [
            ("caller → agent", &self.caller_to_agent_ms),
            ("agent → caller", &self.agent_to_caller_ms),
        ];
        for (way, spread) in stamped.into_iter().filter(|(_, x)| x.count > 0) {
            o.push_str(&format!("{way} ms (stamps in the audio): {}\n", s(spread)));
        }
        o.push_str(&format!(
            "longest silence heard per call ms: {}  silences > 2 frames: {}\n",
            s(&self.max_silence_ms),
            self.silences_over_two_frames
        ));
        for (dir, (p50, p99)) in &self.hop_ms {
            o.push_str(&format!("gateway hop {dir}: p50 ≤ {p50:.2} ms  p99 ≤ {p99:.2} ms\n"));
        }
        if let Some(g) = &self.gateway {
            o.push_str(&format!(
                "gateway pid {}: {} live calls, RSS {:.1} MiB (baseline {:.1}), CPU {:.2} cores, FDs {} (baseline {})\n",
                g.pid,
                g.live_calls,
                g.loaded.rss_bytes as f64 / 1048576.0,
                g.baseline.rss_bytes as f64 / 1048576.0,
                g.cpu_cores,
                g.loaded.open_fds,
                g.baseline.open_fds
            ));
            o.push_str(&format!(
                "per call: {:.1} KiB RSS, {:.4} % of a core, {:.2} FDs\n",
                g.per_call.rss_bytes / 1024.0,
                g.per_call.cpu_cores * 100.0,
                g.per_call.fds
            ));
        } else {
            o.push_str("gateway process not found: no /proc figures (pass --gateway-pid)\n");
        }
        o
    }
}
