//! The capacity report: the system's live limits times the measured cost of one call give the calls each
//! resource can carry, the bottleneck, caps with headroom, and the change that lifts each limit — the
//! report the old service's authors wrote by hand, made from facts (`procfs`).
pub mod procfs;

use procfs::SystemLimits;
use serde::{Deserialize, Serialize};

/// What one call costs, measured (a loadtest profile, or the running gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerCallCost {
    pub rss_bytes: f64,
    /// Fraction of one CPU core.
    pub cpu_cores: f64,
    pub fds: f64,
    /// Outbound sockets per call (to ElevenLabs): each takes an ephemeral port.
    pub outbound_ports: f64,
    /// Where the figures come from.
    pub source: String,
    /// Calls that were live when it was measured.
    pub measured_calls: u64,
}

/// One resource's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceLine {
    pub resource: &'static str,
    /// The limit, as read.
    pub limit: String,
    /// The cost of one call against it.
    pub per_call: String,
    /// Calls it can carry (`None`: not a per-call limit).
    pub calls: Option<u64>,
    /// How to lift it.
    pub lift: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityReport {
    pub limits: SystemLimits,
    pub cost: PerCallCost,
    pub resources: Vec<ResourceLine>,
    pub bottleneck: &'static str,
    /// The most calls every per-call resource can carry.
    pub maximum: u64,
    /// 70 % of the maximum: room for bursts and the load generator's own noise.
    pub recommended: u64,
    /// 50 % of the maximum.
    pub conservative: u64,
    /// The cap in force, for comparison.
    pub current_cap: u64,
}

impl PerCallCost {
    /// Used when nothing was measured: this project's benchmark on a 2-core machine (docs/capacity.md), rounded up.
    pub fn builtin() -> PerCallCost {
        PerCallCost {
            rss_bytes: 64.0 * 1024.0,
            cpu_cores: 0.001,
            fds: 2.0,
            outbound_ports: 1.0,
            source: "built-in profile (benchmark figures, rounded up)".into(),
            measured_calls: 0,
        }
    }

    /// The per-call cost saved by `loadtest --json` (its `gateway.per_call`).
    pub fn from_loadtest_json(text: &str) -> Result<PerCallCost, ProfileError> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(ProfileError::NotJson)?;
        serde_json::from_value(v["gateway"]["per_call"].clone()).map_err(ProfileError::NoPerCall)
    }
}

/// Why a saved profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read the profile: {0}")]
    Unreadable(#[from] std::io::Error),
    #[error("profile is not JSON: {0}")]
    NotJson(serde_json::Error),
    #[error("profile has no gateway.per_call (run loadtest against a gateway it can see): {0}")]
    NoPerCall(serde_json::Error),
}

/// The profile named by `capacity.profile`, or the built-in one (a bad file is logged, not fatal).
pub fn configured_profile(config: &crate::config::Config) -> PerCallCost {
    let path = &config.capacity.profile;
    if path.is_empty() {
        return PerCallCost::builtin();
    }
    match std::fs::read_to_string(path)
        .map_err(ProfileError::from)
        .and_then(|t| PerCallCost::from_loadtest_json(&t))
    {
        Ok(c) => c,
        Err(e) => {
            log::warn!("capacity.profile {path}: {e}; using the built-in profile");
            PerCallCost::builtin()
        }
    }
}

/// Live measurement of the running gateway: its idle baseline and periodic samples with the calls then live.
#[derive(Debug, Default)]
pub struct CostMeter {
    baseline: Option<procfs::ProcessSample>,
    last: Option<(std::time::Instant, procfs::ProcessSample, u64)>,
    cost: Option<PerCallCost>,
}

/// Fewer live calls than this make per-call figures noise.
pub const MIN_CALLS_FOR_MEASUREMENT: u64 = 10;

impl CostMeter {
    /// Records a sample taken with `calls` live; derives the per-call cost when enough calls are up.
    pub fn observe(&mut self, sample: procfs::ProcessSample, calls: u64) {
        let now = std::time::Instant::now();
        if calls == 0 && self.baseline.is_none_or(|b| sample.rss_bytes < b.rss_bytes) {
            self.baseline = Some(sample);
        }
        if let (Some(base), Some((then, prev, prev_calls))) = (self.baseline, self.last) {
            let live = calls.min(prev_calls);
            let dt = now.duration_since(then).as_secs_f64();
            if live >= MIN_CALLS_FOR_MEASUREMENT && dt > 0.0 {
                self.cost = Some(PerCallCost {
                    rss_bytes: sample.rss_bytes.saturating_sub(base.rss_bytes) as f64 / calls as f64,
                    cpu_cores: (sample.cpu_seconds - prev.cpu_seconds).max(0.0) / dt / live as f64,
                    fds: sample.open_fds.saturating_sub(base.open_fds) as f64 / calls as f64,
                    outbound_ports: 1.0,
                    source: "measured on this gateway".into(),
                    measured_calls: calls,
                });
            }
        }
        self.last = Some((now, sample, calls));
    }

    /// The latest measured cost, if enough calls were ever live.
    pub fn cost(&self) -> Option<PerCallCost> {
        self.cost.clone()
    }
}

/// Share of the CPU the gateway may plan on (the rest: kernel networking, other processes, bursts).
pub const CPU_BUDGET: f64 = 0.8;
/// FDs kept back from the per-call budget (listener, database, logs, runtime).
pub const FD_RESERVE: u64 = 64;

fn per(total: f64, each: f64) -> Option<u64> {
    // The epsilon keeps 19.2 / 0.05 from flooring to 383 on a rounding error.
    (each > 0.0).then(|| (total / each + 1e-9).max(0.0).floor() as u64)
}

fn mib(b: f64) -> String {
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// The report for `limits` and `cost`.
pub fn report(limits: &SystemLimits, cost: &PerCallCost, current_cap: u64) -> CapacityReport {
    let mut lines = Vec::new();
    let memory = match (limits.mem_available_bytes, limits.mem_limit_bytes) {
        (Some(a), Some(l)) => Some(a.min(l)),
        (a, l) => a.or(l),
    };
    lines.push(ResourceLine {
        resource: "memory",
        limit: memory.map_or("unknown".into(), |m| format!("{} available", mib(m as f64))),
        per_call: mib(cost.rss_bytes),
        calls: memory.and_then(|m| per(m as f64, cost.rss_bytes)),
        lift: "more RAM (or a larger cgroup MemoryMax=)".into(),
    });
    lines.push(ResourceLine {
        resource: "cpu",
        limit: format!("{:.1} core(s), planned at {:.0} %", limits.cpus, CPU_BUDGET * 100.0),
        per_call: format!("{:.3} % of a core", cost.cpu_cores * 100.0),
        calls: per(limits.cpus * CPU_BUDGET, cost.cpu_cores),
        lift: "more cores (or a larger CPUQuota=)".into(),
    });
    let fd_room = limits.nofile_soft.saturating_sub(FD_RESERVE) as f64;
    lines.push(ResourceLine {
        resource: "file descriptors",
        limit: format!("soft {} / hard {}", limits.nofile_soft, limits.nofile_hard),
        per_call: format!("{:.1}", cost.fds),
        calls: per(fd_room, cost.fds),
        lift: "LimitNOFILE=1048576 in the unit (the gateway raises soft to hard at start)".into(),
    });
    if let Some(file_max) = limits.file_max {
        lines.push(ResourceLine {
            resource: "system file table",
            limit: format!("fs.file-max {file_max}"),
            per_call: format!("{:.1}", cost.fds),
            calls: per(file_max as f64, cost.fds),
            lift: "sysctl fs.file-max=2097152 (systemd/60-websocket_api.conf)".into(),
        });
    }
    if let Some((lo, hi)) = limits.port_range {
        let ports = f64::from(hi.saturating_sub(lo) + 1);
        lines.push(ResourceLine {
            resource: "ephemeral ports (per ElevenLabs address)",
            limit: format!("{lo}-{hi}"),
            per_call: format!("{:.0}", cost.outbound_ports),
            calls: per(ports, cost.outbound_ports),
            lift: "sysctl net.ipv4.ip_local_port_range=\"1024 65535\" (systemd/60-websocket_api.conf)".into(),
        });
    }
    lines.push(ResourceLine {
        resource: "tasks",
        limit: limits.tasks_max.map_or("unlimited".into(), |t| format!("pids.max {t}")),
        per_call: "0 (fixed worker threads)".into(),
        calls: None,
        lift: "TasksMax= in the unit".into(),
    });
    lines.push(ResourceLine {
        resource: "accept backlog",
        limit: limits.somaxconn.map_or("unknown".into(), |s| format!("somaxconn {s}")),
        per_call: "bursts only".into(),
        calls: None,
        lift: "sysctl net.core.somaxconn=4096 (systemd/60-websocket_api.conf)".into(),
    });
    let (bottleneck, maximum) = lines
        .iter()
        .filter_map(|l| l.calls.map(|c| (l.resource, c)))
        .min_by_key(|(_, c)| *c)
        .unwrap_or(("none measured", 0));
    CapacityReport {
        limits: limits.clone(),
        cost: cost.clone(),
        resources: lines,
        bottleneck,
        maximum,
        recommended: maximum * 7 / 10,
        conservative: maximum / 2,
        current_cap,
    }
}

impl CapacityReport {
    /// The report as a table, like the hand-written one it replaces.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "Per-call cost ({}; {} call(s) measured): {} RSS, {:.3} % of a core, {:.1} FDs\n\n",
            self.cost.source,
            self.cost.measured_calls,
            mib(self.cost.rss_bytes),
            self.cost.cpu_cores * 100.0,
            self.cost.fds
        ));
        out.push_str(&format!(
            "{:<42} {:<34} {:<22} {:>12}\n",
            "resource", "limit", "per call", "calls"
        ));
        for l in &self.resources {
            let calls = l.calls.map_or("-".to_string(), |c| c.to_string());
            out.push_str(&format!(
                "{:<42} {:<34} {:<22} {:>12}\n",
                l.resource, l.limit, l.per_call, calls
            ));
        }
        out.push_str(&format!("\nBottleneck: {} ({} calls)\n", self.bottleneck, self.maximum));
        out.push_str(&format!(
            "Caps: conservative {}  recommended {}  maximum {}  (in force: {})\n",
            self.conservative, self.recommended, self.maximum, self.current_cap
        ));
        out.push_str("\nTo lift a limit:\n");
        for l in self.resources.iter().filter(|l| l.calls.is_some()) {
            out.push_str(&format!("  {}: {}\n", l.resource, l.lift));
        }
        out.push_str("Change the cap at run time: PUT /calls/limit {\"max_concurrent_calls\": N}, or calls.max_concurrent_calls + SIGHUP.\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SystemLimits {
        SystemLimits {
            nofile_soft: 1_048_576,
            nofile_hard: 1_048_576,
            file_max: Some(1_000_000),
            somaxconn: Some(4096),
            port_range: Some((32768, 60999)),
            tasks_max: Some(77149),
            cpus: 24.0,
            mem_available_bytes: Some(53 * 1024 * 1024 * 1024),
            mem_limit_bytes: None,
        }
    }

    fn cost(rss_kib: f64, cpu: f64) -> PerCallCost {
        PerCallCost {
            rss_bytes: rss_kib * 1024.0,
            cpu_cores: cpu,
            fds: 2.0,
            outbound_ports: 1.0,
            source: "test".into(),
            measured_calls: 1000,
        }
    }

    #[test]
    fn the_old_services_figures_make_cpu_the_bottleneck() {
        // The hand-written analysis: 25 MB and 5 % of a core per call on 24 cores, 53 GB free.
        let r = report(&limits(), &cost(25.0 * 1024.0, 0.05), 200);
        assert_eq!(r.bottleneck, "cpu");
        assert_eq!(r.maximum, 384, "24 cores × 0.8 / 0.05");
        assert_eq!(r.recommended, 268);
        assert_eq!(r.conservative, 192);
        let mem = r
            .resources
            .iter()
            .find(|l| l.resource == "memory")
            .and_then(|l| l.calls);
        assert_eq!(mem, Some(2170), "53 GiB / 25 MiB");
    }

    #[test]
    fn a_cheap_call_makes_ports_the_bottleneck() {
        let r = report(&limits(), &cost(40.0, 0.0005), 200);
        assert_eq!(r.bottleneck, "ephemeral ports (per ElevenLabs address)");
        assert_eq!(r.maximum, 28232);
        assert!(r.to_text().contains("ip_local_port_range"));
    }

    #[test]
    fn a_low_fd_limit_is_named_with_its_fix() {
        let mut l = limits();
        l.nofile_soft = 1024;
        let r = report(&l, &cost(40.0, 0.0005), 200);
        assert_eq!(r.bottleneck, "file descriptors");
        assert_eq!(r.maximum, (1024 - FD_RESERVE) / 2);
        assert!(r.to_text().contains("LimitNOFILE"));
    }

    #[test]
    fn a_cgroup_memory_limit_counts() {
        let mut l = limits();
        l.mem_limit_bytes = Some(64 * 1024 * 1024);
        let r = report(&l, &cost(64.0, 0.0001), 200);
        assert_eq!(r.bottleneck, "memory");
        assert_eq!(r.maximum, 1024);
    }
}
