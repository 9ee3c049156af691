//! The configuration's checks: every problem listed at once, and the exposure a `serve` must not start with.

use super::sections::*;

impl Config {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        self.validate_listeners(problems);
        self.validate_calls(problems);
        self.validate_elevenlabs(problems);
        self.validate_database(problems);
        self.validate_fleet(problems);
        self.validate_carriers(problems);
        self.recording.validate(problems);
    }

    /// The listeners, what they say of themselves, whom they trust, and the log.
    fn validate_listeners(&self, problems: &mut Vec<String>) {
        let mut bad = |cond: bool, msg: String| {
            if cond {
                problems.push(msg)
            }
        };
        for (name, addr) in [
            ("server.listen", &self.server.listen),
            ("admin.listen", &self.admin.listen),
        ] {
            bad(
                addr.parse::<std::net::SocketAddr>().is_err(),
                format!("{name}: '{addr}' is not an address like 127.0.0.1:7900"),
            );
        }
        bad(
            self.admin.listen == self.server.listen && !self.server.listen.ends_with(":0"),
            "admin.listen: must differ from server.listen (the admin API has a listener of its own)".into(),
        );
        let log_problem = log_filter_problem(&self.log.level);
        bad(
            log_problem.is_some(),
            format!("log.level: {}", log_problem.unwrap_or_default()),
        );
        let pu = &self.server.public_url;
        bad(
            !(pu.is_empty() || pu.starts_with("ws://") || pu.starts_with("wss://")),
            format!("server.public_url: '{pu}' must start with ws:// or wss:// (or be empty to derive it)"),
        );
        bad(
            self.server.max_frame_bytes < 1024,
            "server.max_frame_bytes: must be at least 1024".into(),
        );
        for (name, nets) in [
            ("carrier.allowed_ips", &self.carrier.allowed_ips),
            ("server.trusted_proxies", &self.server.trusted_proxies),
        ] {
            for ip in nets {
                bad(
                    crate::values::parse_net(ip).is_none(),
                    format!("{name}: '{ip}' is not an IP address or CIDR block"),
                );
            }
        }
    }

    /// The calls' sizes and times (and every timeout that must not be 0).
    fn validate_calls(&self, problems: &mut Vec<String>) {
        let mut bad = |cond: bool, msg: String| {
            if cond {
                problems.push(msg)
            }
        };
        bad(
            self.calls.max_concurrent_calls == 0,
            "calls.max_concurrent_calls: must be at least 1".into(),
        );
        bad(
            !(5..=1000).contains(&self.calls.frame_ms),
            format!("calls.frame_ms: {} is outside 5..=1000", self.calls.frame_ms),
        );
        bad(
            self.elevenlabs.user_audio_chunk_ms > 250,
            format!(
                "elevenlabs.user_audio_chunk_ms: {} is over 250 (what ElevenLabs' own SDK sends; longer delays the caller)",
                self.elevenlabs.user_audio_chunk_ms
            ),
        );
        bad(
            self.calls.outbound_queue_ms < self.calls.frame_ms,
            "calls.outbound_queue_ms: must hold at least one frame".into(),
        );
        bad(
            self.calls.heartbeat_interval_ms == 0 || self.calls.peer_timeout_ms <= self.calls.heartbeat_interval_ms,
            "calls.peer_timeout_ms must be greater than calls.heartbeat_interval_ms (> 0)".into(),
        );
        for (name, v) in [
            ("calls.admission_deadline_ms", self.calls.admission_deadline_ms),
            ("calls.start_timeout_ms", self.calls.start_timeout_ms),
            ("calls.max_call_seconds", self.calls.max_call_seconds),
            ("calls.reconcile_interval_ms", self.calls.reconcile_interval_ms),
            ("elevenlabs.connect_timeout_ms", self.elevenlabs.connect_timeout_ms),
            ("elevenlabs.metadata_timeout_ms", self.elevenlabs.metadata_timeout_ms),
            ("carrier.token_ttl_seconds", self.carrier.token_ttl_seconds),
            ("database.connect_timeout_ms", self.database.connect_timeout_ms),
            ("database.replay_interval_ms", self.database.replay_interval_ms),
        ] {
            bad(v == 0, format!("{name}: must be greater than 0"));
        }
    }

    /// The agent leg: redials, resume, the breakers, the URL and the agent.
    fn validate_elevenlabs(&self, problems: &mut Vec<String>) {
        let mut bad = |cond: bool, msg: String| {
            if cond {
                problems.push(msg)
            }
        };
        let el = &self.elevenlabs;
        bad(
            el.max_redials_per_call > 20,
            format!(
                "elevenlabs.max_redials_per_call: {} is over 20 (each redial is a billed conversation)",
                el.max_redials_per_call
            ),
        );
        bad(
            !(200..=20_000).contains(&el.resume_context_bytes),
            format!(
                "elevenlabs.resume_context_bytes: {} is outside 200..=20000",
                el.resume_context_bytes
            ),
        );
        bad(
            el.resume_first_message.as_deref().is_some_and(|m| m.len() > 2000),
            "elevenlabs.resume_first_message: longer than 2000 bytes".into(),
        );
        for (name, v) in [
            ("elevenlabs.breaker_failures", el.breaker_failures as u64),
            ("elevenlabs.breaker_window_ms", el.breaker_window_ms),
            ("elevenlabs.breaker_cooldown_ms", el.breaker_cooldown_ms),
            ("elevenlabs.agent_breaker_failures", el.agent_breaker_failures as u64),
            ("elevenlabs.agent_breaker_window_ms", el.agent_breaker_window_ms),
            ("elevenlabs.agent_breaker_cooldown_ms", el.agent_breaker_cooldown_ms),
        ] {
            bad(v == 0, format!("{name}: must be greater than 0"));
        }
        let url = &self.elevenlabs.url;
        bad(
            !(url.starts_with("ws://") || url.starts_with("wss://")),
            format!("elevenlabs.url: '{url}' must start with ws:// or wss://"),
        );
        bad(
            self.elevenlabs.agent_id.as_deref().is_some_and(|a| a.trim().is_empty()),
            "elevenlabs.agent_id: must not be empty when set".into(),
        );
    }

    /// The records: pool, batches, the spool and dead-letter files, the URL.
    fn validate_database(&self, problems: &mut Vec<String>) {
        let mut bad = |cond: bool, msg: String| {
            if cond {
                problems.push(msg)
            }
        };
        bad(
            self.database.pool_size < 2,
            "database.pool_size: must be at least 2 (a writer and a reader)".into(),
        );
        bad(
            self.database.batch_max == 0,
            "database.batch_max: must be at least 1".into(),
        );
        for (name, path) in [
            ("database.spool_path", &self.database.spool_path),
            ("database.dead_letter_path", &self.database.dead_letter_path),
        ] {
            bad(path.is_empty(), format!("{name}: must name a file"));
        }
        let db = &self.database.url;
        bad(
            !(db.starts_with("sqlite://") || db.starts_with("postgres://") || db.starts_with("postgresql://")),
            format!("database.url: '{db}' must be sqlite://PATH or postgres://…"),
        );
    }

    /// Each carrier's keys, and the routes.
    fn validate_carriers(&self, problems: &mut Vec<String>) {
        self.carriers.validate(problems);
        super::routes::check_routes(&self.routes, problems);
    }

    /// The fleet's keys: a fleet needs PostgreSQL (SQLite is one instance's database), a fallback share
    /// that fits in the fleet's cap, and peers the admin token may go to.
    fn validate_fleet(&self, problems: &mut Vec<String>) {
        let f = &self.fleet;
        let id = &self.server.instance_id;
        if !id.is_empty() {
            if let Err(e) = crate::values::InstanceId::parse("server.instance_id", id) {
                problems.push(e.to_string());
            }
        }
        let defaults = FleetConfig::default();
        let fleet_keys_set = f.max_concurrent_calls.is_some()
            || f.fallback_calls != defaults.fallback_calls
            || f.lease_ttl_ms != defaults.lease_ttl_ms
            || !f.admin_url.is_empty()
            || !f.peers.is_empty();
        if fleet_keys_set && self.database.url.starts_with("sqlite://") {
            problems.push(
                "fleet.*: a fleet shares one PostgreSQL database (its lease and cap live there); with \
                 database.url = sqlite://… this gateway runs alone: set database.url = postgres://… or remove \
                 the [fleet] settings"
                    .into(),
            );
        }
        if f.max_concurrent_calls.is_some() && id.is_empty() && self.server.listen.ends_with(":0") {
            problems.push(
                "server.instance_id: must be set in a fleet when server.listen has port 0 (the name is derived \
                 from the host name and the port)"
                    .into(),
            );
        }
        if f.max_concurrent_calls == Some(0) {
            problems.push("fleet.max_concurrent_calls: must be at least 1 (or unset: no fleet)".into());
        }
        if f.max_concurrent_calls.is_none() && f.fallback_calls > 0 {
            problems.push(
                "fleet.fallback_calls: set without fleet.max_concurrent_calls (no fleet to fall back from)".into(),
            );
        }
        if let Some(cap) = f.max_concurrent_calls.filter(|cap| f.fallback_calls > *cap) {
            problems.push(format!(
                "fleet.fallback_calls: {} is over fleet.max_concurrent_calls ({cap}); the shares of all \
                 instances must fit in the fleet's cap",
                f.fallback_calls
            ));
        }
        if f.lease_ttl_ms < 3_000 {
            problems.push(format!(
                "fleet.lease_ttl_ms: {} is under 3000 (a lease is renewed every second; a shorter one loses \
                 live instances to a slow database)",
                f.lease_ttl_ms
            ));
        }
        let au = &f.admin_url;
        if !(au.is_empty() || au.starts_with("http://") || au.starts_with("https://")) {
            problems.push(format!(
                "fleet.admin_url: '{au}' must start with http:// or https:// (or be empty)"
            ));
        }
        for peer in &f.peers {
            if let Some(why) = f.peer_url_problem(peer) {
                problems.push(format!("fleet.peers: '{peer}' {why}"));
            }
        }
    }

    /// What may be wrong without being invalid (`check-config` prints it, `serve` logs it).
    pub fn warnings(&self) -> Vec<String> {
        let f = &self.fleet;
        let mut w = Vec::new();
        if f.max_concurrent_calls.is_none() {
            return w;
        }
        let admin = match f.admin_url.as_str() {
            "" => format!("http://{}", self.admin.listen),
            url => url.to_string(),
        };
        if names_loopback(&admin) {
            w.push(format!(
                "fleet.admin_url: this instance tells the fleet its admin API is at {admin}, a loopback address: \
                 on several hosts every other instance would ask itself; set fleet.admin_url to an address the \
                 other instances reach"
            ));
        }
        if f.peers.is_empty() {
            w.push(
                "fleet.peers: empty, so /calls?scope=fleet and forwarded hang-ups reach no other instance; list \
                 the other instances' admin URLs"
                    .into(),
            );
        }
        w
    }

    /// Everything that stops `serve` (exit 64) once the file and the environment have been read: what
    /// `check-config` answers too, from this one list, so the two never disagree.
    pub fn verdict(&self) -> Vec<String> {
        let mut p = self.serve_problems();
        p.extend(self.exposure_problems());
        p.extend(self.public_url_problem());
        p
    }

    /// A listener that takes carriers from other hosts must tell them where to connect: a media URL derived
    /// from it (`ws://0.0.0.0:7900`) or one naming this host's loopback reaches no carrier, and Plivo's and
    /// Twilio's signature checks build their URLs from it.
    fn public_url_problem(&self) -> Option<String> {
        let listen = &self.server.listen;
        if !listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| !a.ip().is_loopback())
        {
            return None;
        }
        let pu = &self.server.public_url;
        let fix = "set server.public_url (WSAPI__SERVER__PUBLIC_URL) to the address carriers reach, e.g. \
                   wss://gw.example.com behind a TLS proxy";
        if pu.is_empty() {
            Some(format!(
                "server.public_url: unset, while server.listen = {listen} takes carriers from other hosts: they \
                 would be told to connect to ws://{listen}; {fix}"
            ))
        } else if names_loopback(pu) {
            Some(format!(
                "server.public_url: {pu} names this host's loopback, while server.listen = {listen} takes \
                 carriers from other hosts; {fix}"
            ))
        } else {
            None
        }
    }

    /// Problems that stop `serve` (and so `check-config`) but not `demo`.
    pub fn serve_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.elevenlabs.agent_id.is_none() && self.routes.is_empty() {
            p.push(
                "elevenlabs.agent_id: serve needs an agent to talk to (WSAPI__ELEVENLABS__AGENT_ID, or [[routes]])"
                    .into(),
            );
        }
        if self.elevenlabs.auth != ElevenLabsAuth::None && self.elevenlabs.api_key.is_none() {
            let auth = if self.elevenlabs.auth == ElevenLabsAuth::Header {
                "header"
            } else {
                "signed_url"
            };
            p.push(format!(
                "elevenlabs.auth = \"{auth}\" needs {ENV_ELEVENLABS_API_KEY} in the environment (or auth = \"none\")"
            ));
        }
        p
    }

    /// What would leave the gateway open to anyone who reaches it; `serve` and `check-config` refuse to go on
    /// (exit 64) while there is any. A loopback address (the demo, a proxy on the same host) is not open.
    pub fn exposure_problems(&self) -> Vec<String> {
        let public = |addr: &str| {
            addr.parse::<std::net::SocketAddr>()
                .is_ok_and(|a| !a.ip().is_loopback())
        };
        let c = &self.carrier;
        let unauthenticated = c.static_token.is_none() && c.allowed_ips.is_empty();
        let mut p = Vec::new();
        if public(&self.server.listen) && unauthenticated && !c.allow_unauthenticated {
            p.push(format!(
                "server.listen: {} takes carriers from other hosts, but nothing authenticates them: anyone who \
                 reaches it can place calls (and run up the ElevenLabs bill). Set {ENV_CARRIER_STATIC_TOKEN} or \
                 carrier.allowed_ips, listen on 127.0.0.1 behind a proxy, or set carrier.allow_unauthenticated = \
                 true to accept that on purpose",
                self.server.listen
            ));
        }
        if public(&self.admin.listen) && self.admin.token.is_none() {
            p.push(format!(
                "admin.listen: {} serves the admin API (live calls, hang-ups, the cap) to other hosts without \
                 {ENV_ADMIN_TOKEN}; set one, or listen on 127.0.0.1",
                self.admin.listen
            ));
        }
        p
    }
}

/// Whether a URL's host is this machine's loopback (`localhost`, 127.0.0.0/8, ::1).
fn names_loopback(url: &str) -> bool {
    let authority = url
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default();
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_matches(['[', ']']);
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `log.level` is a level, or `target=level` directives separated by commas (env_logger's filter). A word
/// that is neither would silence the log: env_logger reads `verbose` as a target named so.
fn log_filter_problem(filter: &str) -> Option<String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |l: &str| LEVELS.contains(&l.to_ascii_lowercase().as_str());
    let bad = filter.split(',').map(str::trim).find(|d| match d.split_once('=') {
        Some((target, level)) => target.is_empty() || !is_level(level),
        None => !is_level(d),
    })?;
    Some(format!(
        "'{filter}': '{bad}' is not a level ({}) or a target=level directive",
        LEVELS.join(", ")
    ))
}
