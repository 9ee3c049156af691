//! Process-wide metrics (Prometheus client): bumped where things happen (atomics, no locks on the media
//! path), gathered on `GET /metrics`. Gauges that describe state owned by an actor (active calls, the cap)
//! are set at scrape time from that actor. The metrics come in groups (traffic, the ElevenLabs side, what
//! was not understood, the fleet, turn latency, watching, recording), each registered by its own `new`; `register` holds the
//! helpers and the catalog.

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};
use std::sync::LazyLock;

mod recording;
mod register;
mod watching;
pub use recording::RecordingMetrics;
pub use register::catalog;
pub(crate) use register::{
    counter, counter_vec, counter_vec_by, gauge, gauge_vec, histogram, histogram_vec, registered,
};
pub use watching::Watching;

/// Errors of the listener's accept loop (EMFILE when the descriptor limit is reached, ENFILE, ENOMEM…).
/// actix-server only logs them, so the process's logger counts them here (`count_accept_error`); one
/// counter for the process, registered in every `Metrics`.
pub static ACCEPT_ERRORS: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    IntCounter::new(
        "accept_errors_total",
        "Errors accepting connections (EMFILE: the descriptor limit is reached); the listener backs off 500 ms",
    )
    .ok()
});

/// Called by the logger with every log record: counts the accept loop's error reports.
pub fn count_accept_error(record: &log::Record<'_>) {
    if record.level() == log::Level::Error
        && record.target().starts_with("actix_server::accept")
        && record.args().to_string().starts_with("Error accepting connection")
    {
        if let Some(c) = ACCEPT_ERRORS.as_ref() {
            c.inc();
        }
    }
}

/// Traffic, by carrier: Plivo's calls told from Mcube's (docs/metrics.md).
pub struct Traffic {
    pub admitted: IntCounterVec,
    pub refused: IntCounterVec,
    pub ended: IntCounterVec,
    /// Audio frames and bytes, by direction and carrier: each call adds its own once a second, so no label
    /// is looked up per frame.
    pub frames: IntCounterVec,
    pub bytes: IntCounterVec,
}

impl Traffic {
    fn new(r: &Registry) -> prometheus::Result<Traffic> {
        let by = |name: &str, help: &str, labels: &[&str]| counter_vec_by(r, name, help, labels);
        let (direction, reason) = (&["direction", "carrier"][..], &["reason", "carrier"][..]);
        Ok(Traffic {
            admitted: by(
                "calls_admitted_total",
                "Calls admitted (refurl or direct upgrade), by carrier",
                &["carrier"],
            )?,
            refused: by("calls_refused_total", "Calls refused, by reason and carrier", reason)?,
            ended: by("calls_ended_total", "Calls ended, by end reason and carrier", reason)?,
            frames: by("frames_total", "Audio frames, by direction and carrier", direction)?,
            bytes: by(
                "audio_bytes_total",
                "Audio bytes (decoded), by direction and carrier",
                direction,
            )?,
        })
    }

    /// A call refused for `reason`, at `carrier`'s door (`unknown` before the carrier is known).
    pub fn refused(&self, reason: &str, carrier: &str) {
        self.refused.with_label_values(&[reason, carrier]).inc();
    }
}

/// The ElevenLabs side of the calls.
pub struct Upstream {
    /// The upstream breaker: 0 closed, 1 open (refusing new calls), 2 half-open (one probe call out).
    pub breaker_state: IntGauge,
    pub breaker_opened: IntCounter,
    /// Agents refused by ElevenLabs (agent-level failures): 1 while its routes' calls are refused
    /// `agent_unavailable`, by agent.
    pub agent_unavailable: IntGaugeVec,
    /// Times an agent's breaker opened, by agent.
    pub agent_breaker_opened: IntCounterVec,
    /// Redialled conversations seeded with the conversation so far.
    pub resumed: IntCounter,
    /// Conversations ElevenLabs refused for our configuration (an override the agent does not allow).
    pub config_refused: IntCounter,
    /// MCP tool calls awaiting approval, by the answer given.
    pub mcp_approvals: IntCounterVec,
    pub connect_failures: IntCounter,
    pub reconnects: IntCounter,
    pub ping_ms: Histogram,
    pub connect_seconds: HistogramVec,
    /// ElevenLabs' post-call webhook deliveries, by outcome (`accepted`, `ignored`, `bad_signature`,
    /// `stale`, `unreadable`).
    pub post_call: IntCounterVec,
    /// Verdicts the reconciler fetched, by outcome (`joined`, `retried`, `gave_up`, `unknown`).
    pub reconciled: IntCounterVec,
}

impl Upstream {
    fn new(r: &Registry) -> prometheus::Result<Upstream> {
        Ok(Upstream {
            post_call: counter_vec(
                r,
                "post_call_deliveries_total",
                "ElevenLabs post-call webhook deliveries, by outcome (accepted, ignored, bad_signature, stale, unreadable)",
                "outcome",
            )?,
            reconciled: counter_vec(
                r,
                "post_call_reconciled_total",
                "Conversations whose verdict the reconciler fetched (no webhook came), by outcome (joined, retried, gave_up, unknown)",
                "outcome",
            )?,
            connect_seconds: histogram_vec(
                r,
                "upstream_connect_seconds",
                "ElevenLabs dial + upgrade time, by outcome",
                "outcome",
                vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
            )?,
            breaker_state: gauge(
                r,
                "upstream_breaker_state",
                "The ElevenLabs breaker: 0 closed, 1 open (new calls refused upstream_unavailable), 2 half-open",
            )?,
            breaker_opened: counter(
                r,
                "upstream_breaker_opened_total",
                "Times the ElevenLabs breaker opened after account-level failures",
            )?,
            agent_unavailable: gauge_vec(
                r,
                "agent_unavailable",
                "1 while an agent's calls are refused agent_unavailable after agent-level failures",
                "agent_id",
            )?,
            agent_breaker_opened: counter_vec(
                r,
                "agent_breaker_opened_total",
                "Times an agent's breaker opened after agent-level failures (agent gone, prompt variable missing)",
                "agent_id",
            )?,
            resumed: counter(
                r,
                "upstream_resumed_total",
                "Redialled ElevenLabs conversations seeded with the conversation so far",
            )?,
            config_refused: counter(
                r,
                "elevenlabs_config_refused_total",
                "Conversations ElevenLabs refused for the gateway's configuration (e.g. an override not allowed)",
            )?,
            mcp_approvals: counter_vec(
                r,
                "mcp_approvals_total",
                "MCP tool calls awaiting approval, by the answer the gateway gave",
                "answer",
            )?,
            connect_failures: counter(
                r,
                "upstream_connect_failures_total",
                "ElevenLabs connection attempts that failed",
            )?,
            reconnects: counter(
                r,
                "upstream_reconnects_total",
                "ElevenLabs reconnects made within a call's budget",
            )?,
            ping_ms: histogram(
                r,
                "elevenlabs_ping_ms",
                "ping_ms reported by ElevenLabs ping events",
                vec![10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0],
            )?,
        })
    }
}

/// What either side sent that was not understood or not acceptable (dropped, refused or ignored, and counted).
pub struct Unread {
    pub carrier_unknown_events: IntCounter,
    /// Values a carrier sent out of bounds (refurl answered 400, media socket closed 1007), by field.
    pub carrier_invalid: IntCounterVec,
    /// Reports from an agent connection the call had already given up on (dropped).
    pub agent_stale_reports: IntCounter,
    /// Carrier audio payloads that were not base64 or far larger than a frame (dropped; the call goes on).
    pub carrier_bad_audio: IntCounter,
    pub carrier_bad_frames: IntCounter,
    pub agent_ignored_events: IntCounter,
    pub agent_bad_messages: IntCounter,
}

impl Unread {
    /// A value a carrier sent out of bounds, by the field it came in.
    pub fn invalid(&self, field: &str) {
        self.carrier_invalid.with_label_values(&[field]).inc();
    }

    fn new(r: &Registry) -> prometheus::Result<Unread> {
        Ok(Unread {
            carrier_unknown_events: counter(
                r,
                "carrier_unknown_events_total",
                "Carrier events with an unknown name (ignored)",
            )?,
            carrier_invalid: counter_vec(
                r,
                "carrier_invalid_total",
                "Values a carrier sent out of bounds (refurl 400, media socket 1007), by field",
                "field",
            )?,
            agent_stale_reports: counter(
                r,
                "agent_stale_reports_total",
                "Messages from an ElevenLabs connection the call had given up on (dropped)",
            )?,
            carrier_bad_audio: counter(
                r,
                "carrier_bad_audio_total",
                "Carrier audio payloads that were not base64 or far larger than a frame (dropped)",
            )?,
            carrier_bad_frames: counter(
                r,
                "carrier_bad_frames_total",
                "Carrier frames that could not be read, and ping floods (connection closed)",
            )?,
            agent_ignored_events: counter(
                r,
                "agent_ignored_events_total",
                "ElevenLabs message types the bridge does not use",
            )?,
            agent_bad_messages: counter(
                r,
                "agent_bad_messages_total",
                "ElevenLabs messages that could not be read",
            )?,
        })
    }
}

/// A fleet instance's lease and share (docs/fleet.md).
pub struct FleetMetrics {
    /// the slots of the fleet's cap this instance holds.
    pub held_slots: IntGauge,
    /// lease renewals that failed (the database unreachable or refusing).
    pub renewal_failures: IntCounter,
    /// other instances whose lease expired and whose calls this one closed.
    pub instances_lost: IntCounter,
    /// Media sockets that arrived at another instance than the one that admitted their call.
    pub misdirected_sockets: IntCounter,
}

impl FleetMetrics {
    fn new(r: &Registry) -> prometheus::Result<FleetMetrics> {
        Ok(FleetMetrics {
            held_slots: gauge(
                r,
                "fleet_held_slots",
                "Slots of the fleet's cap this instance holds (live calls plus spare)",
            )?,
            renewal_failures: counter(
                r,
                "fleet_renewal_failures_total",
                "Fleet lease renewals that failed (database unreachable)",
            )?,
            instances_lost: counter(
                r,
                "fleet_instances_lost_total",
                "Instances whose lease expired and whose calls this instance closed",
            )?,
            misdirected_sockets: counter(
                r,
                "misdirected_sockets_total",
                "Media sockets that reached another instance than the one that admitted the call",
            )?,
        })
    }
}

/// Every metric the gateway exports, registered in `registry`.
pub struct Metrics {
    pub registry: Registry,
    /// What each carrier brings: admissions, refusals, ends, frames and bytes.
    pub traffic: Traffic,
    /// The ElevenLabs side: dials, redials, resumes, the breakers, pings, refused overrides, MCP approvals.
    pub upstream: Upstream,
    /// What either side sent that was not understood or not acceptable.
    pub unread: Unread,
    /// In a fleet: the share held, the lease, lost instances, misdirected sockets.
    pub fleet: FleetMetrics,
    /// The console's event streams and the listeners of live calls.
    pub watching: Watching,
    /// The calls' recordings.
    pub recording: RecordingMetrics,
    /// Time to answer the refurl's admission request, inside the gateway.
    pub refurl_seconds: Histogram,
    pub calls_started: IntCounter,
    pub calls_active: IntGauge,
    pub calls_cap: IntGauge,
    pub draining: IntGauge,
    pub call_duration: Histogram,
    /// Carrier frame read → written to ElevenLabs; agent audio read (or, when paced, its slot) → written to
    /// the carrier. Any join or queue wait is inside.
    pub hop_latency: HistogramVec,
    pub hop_carrier_to_agent: Histogram,
    pub hop_agent_to_carrier: Histogram,
    /// How late each worker thread's loop-lag probe woke (`call::lag`): the process is behind.
    pub loop_lag: Histogram,
    /// How long callers wait for the agent's answers (docs/metrics.md, Turn latency).
    pub turns: TurnMetrics,
    pub interruptions: IntCounter,
    pub stale_audio_dropped: IntCounter,
    pub outbound_queue_bytes: IntGauge,
    pub outbound_dropped_bytes: IntCounter,
    pub pacing_resyncs: IntCounter,
    /// Panics caught and recovered from, by part (`crate::supervise`); brought up to date when gathered.
    pub internal_errors: IntCounterVec,
}

/// Turn latency (docs/metrics.md, Turn latency): the whole wait, and its split.
pub struct TurnMetrics {
    /// The caller's speech fell silent → the agent's answer's first frame handed to the carrier.
    pub latency: Histogram,
    /// That wait split: `elevenlabs` (caller audio written → first agent audio read) and `gateway`.
    pub part: HistogramVec,
    pub elevenlabs: Histogram,
    pub gateway: Histogram,
}

impl TurnMetrics {
    fn new(r: &Registry) -> prometheus::Result<TurnMetrics> {
        let part = histogram_vec(
            r,
            "turn_latency_part_seconds",
            "Turn latency split: elevenlabs (caller audio written to first agent audio read) and gateway (both hops)",
            "part",
            vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
            ],
        )?;
        Ok(TurnMetrics {
            latency: histogram(
                r,
                "turn_latency_seconds",
                "Caller's speech fell silent to the agent answer's first frame handed to the carrier",
                vec![
                    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0,
                ],
            )?,
            elevenlabs: part.with_label_values(&["elevenlabs"]),
            gateway: part.with_label_values(&["gateway"]),
            part,
        })
    }
}

impl Metrics {
    /// Every agent the routes name is exported (`wsapi_agent_unavailable` 0 until it is refused), so a rule
    /// or a dashboard sees it before anything goes wrong; an agent already unavailable keeps its 1.
    pub fn agents_known<'a>(&self, agents: impl Iterator<Item = &'a str>) {
        for agent in agents {
            self.upstream.agent_unavailable.with_label_values(&[agent]).add(0);
        }
    }

    /// Creates and registers every metric. The names are constants, so this fails only if one is wrong,
    /// which start-up reports instead of serving without metrics.
    pub fn new() -> prometheus::Result<Metrics> {
        let r = Registry::new_custom(Some("wsapi".into()), None)?;
        #[cfg(target_os = "linux")]
        {
            let _ = r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
        }
        if let Some(c) = ACCEPT_ERRORS.as_ref() {
            let _ = registered(&r, c.clone());
        }
        let hop = histogram_vec(
            &r,
            "hop_latency_seconds",
            "Inside the gateway, queue and join waits included: carrier frame read to ElevenLabs write; agent audio read (or its pacing slot) to carrier write",
            "direction",
            vec![
                0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
            ],
        )?;
        Ok(Metrics {
            hop_carrier_to_agent: hop.with_label_values(&[CARRIER_TO_AGENT]),
            hop_agent_to_carrier: hop.with_label_values(&[AGENT_TO_CARRIER]),
            hop_latency: hop,
            loop_lag: histogram(
                &r,
                "loop_lag_seconds",
                "How late a worker thread's event loop ran a 10 ms probe: while it is behind, caller frames are joined",
                vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5],
            )?,
            turns: TurnMetrics::new(&r)?,
            traffic: Traffic::new(&r)?,
            upstream: Upstream::new(&r)?,
            unread: Unread::new(&r)?,
            fleet: FleetMetrics::new(&r)?,
            watching: Watching::new(&r)?,
            recording: RecordingMetrics::new(&r)?,
            refurl_seconds: histogram(
                &r,
                "refurl_seconds",
                "Refurl admission answer time inside the gateway",
                vec![0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
            )?,
            internal_errors: counter_vec(
                &r,
                "internal_errors_total",
                "Panics caught and recovered from, by part",
                "part",
            )?,
            calls_started: counter(&r, "calls_started_total", "Call actors started (carrier socket open)")?,
            calls_active: gauge(&r, "calls_active", "Calls holding a slot (reserved or live)")?,
            calls_cap: gauge(&r, "calls_max_concurrent", "The cap on concurrent calls")?,
            draining: gauge(&r, "draining", "1 while the gateway is draining")?,
            call_duration: histogram(
                &r,
                "call_duration_seconds",
                "Call length",
                vec![1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0],
            )?,
            interruptions: counter(&r, "interruptions_total", "Barge-ins (agent interruption events)")?,
            stale_audio_dropped: counter(
                &r,
                "stale_audio_dropped_total",
                "Agent audio dropped as older than a barge-in",
            )?,
            outbound_queue_bytes: gauge(&r, "outbound_queue_bytes", "Agent audio queued for carriers, all calls")?,
            outbound_dropped_bytes: counter(
                &r,
                "outbound_dropped_bytes_total",
                "Agent audio dropped: a call's queue was full",
            )?,
            pacing_resyncs: counter(
                &r,
                "pacing_resyncs_total",
                "Pacing wake-ups more than 5 frames late (the carrier heard a gap)",
            )?,
            registry: r,
        })
    }

    /// Prometheus text exposition of everything registered.
    pub fn render(&self) -> String {
        for (part, n) in crate::supervise::counts() {
            let c = self.internal_errors.with_label_values(&[part.as_str()]);
            c.inc_by(n.saturating_sub(c.get()));
        }
        let mut out = String::new();
        if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            log::warn!("metrics: cannot encode: {e}");
        }
        out
    }
}

/// Labels of the `direction` metrics.
pub const CARRIER_TO_AGENT: &str = "carrier_to_agent";
pub const AGENT_TO_CARRIER: &str = "agent_to_carrier";
