//! Configuration: the TOML file, `WSAPI__SECTION__KEY` environment overrides, secrets from the environment
//! only, and validation that lists every problem at once (interface.md §2).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default location of the configuration file when neither `--config` nor `WSAPI_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "config/websocket_api.toml";

/// Prefix of environment variables that override configuration keys.
const ENV_PREFIX: &str = "WSAPI__";

/// Secrets: read from these environment variables only, never from the file.
pub const ENV_ELEVENLABS_API_KEY: &str = "ELEVENLABS_API_KEY";
pub const ENV_ADMIN_TOKEN: &str = "WSAPI__ADMIN__TOKEN";
pub const ENV_CARRIER_SECRET: &str = "WSAPI__CARRIER__SECRET";
pub const ENV_CARRIER_STATIC_TOKEN: &str = "WSAPI__CARRIER__STATIC_TOKEN";

/// The whole effective configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub calls: CallsConfig,
    pub elevenlabs: ElevenLabsConfig,
    pub database: DatabaseConfig,
    pub admin: AdminConfig,
    pub carrier: CarrierConfig,
    pub log: LogConfig,
    pub capacity: CapacityConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapacityConfig {
    /// A `loadtest --json` report whose measured per-call cost the capacity report uses while too few calls
    /// are live to measure this gateway itself; empty means the built-in profile.
    pub profile: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the gateway listens on.
    pub listen: String,
    /// Base of the `wss_url` handed to Mcube; empty means "derived from the bound address".
    pub public_url: String,
    /// actix-web worker threads; 0 means one per CPU.
    pub workers: usize,
    /// Largest WebSocket frame accepted from a carrier, in bytes.
    pub max_frame_bytes: usize,
    /// SIGTERM: how long live calls may go on before they are ended.
    pub drain_timeout_ms: u64,
    /// SIGINT: the same, short.
    pub interrupt_drain_timeout_ms: u64,
    /// A client must finish sending its request head within this (slowloris), or the connection is closed.
    pub request_timeout_ms: u64,
    /// Data we sent that a peer has not acknowledged for this long (it stopped reading, or vanished) aborts
    /// its connection (TCP_USER_TIMEOUT on every accepted socket).
    pub send_timeout_ms: u64,
    /// Kernel send buffer of each accepted socket (SO_SNDBUF); 0 leaves the kernel's autotuning. A bound
    /// caps how much audio can pile up for a carrier that stopped reading before its queue says so.
    pub send_buffer_bytes: usize,
    /// Proxies (IPs or CIDR blocks) whose `X-Forwarded-For` is believed: behind one, the carrier
    /// allow-list sees the carrier, not the proxy.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:7900".into(),
            public_url: "ws://127.0.0.1:7900".into(),
            workers: 0,
            max_frame_bytes: 64 * 1024,
            drain_timeout_ms: 60_000,
            interrupt_drain_timeout_ms: 5_000,
            request_timeout_ms: 5_000,
            send_timeout_ms: 30_000,
            send_buffer_bytes: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// The cap on concurrent calls (reserved + live).
    pub max_concurrent_calls: usize,
    /// How long an admitted call holds its slot waiting for the carrier's WebSocket.
    pub admission_deadline_ms: u64,
    /// How long after the upgrade the carrier has to send `start`.
    pub start_timeout_ms: u64,
    /// Size of the frames paced out to the carrier.
    pub frame_ms: u64,
    /// Most agent audio queued for the carrier; more is dropped (and counted).
    pub outbound_queue_ms: u64,
    /// Most carrier audio held while the agent is not (yet) connected.
    pub inbound_buffer_ms: u64,
    /// Interval of WebSocket pings on both legs.
    pub heartbeat_interval_ms: u64,
    /// A peer silent for this long is declared gone (noticed at the next heartbeat, so within
    /// `peer_timeout_ms + heartbeat_interval_ms`).
    pub peer_timeout_ms: u64,
    /// After the agent ends the call: longest wait for queued audio to be acknowledged as played.
    pub playout_timeout_ms: u64,
    /// Hard limit on one call's length.
    pub max_call_seconds: u64,
    /// How often the registry reconciles its slots against live call actors.
    pub reconcile_interval_ms: u64,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            max_concurrent_calls: 200,
            admission_deadline_ms: 10_000,
            start_timeout_ms: 10_000,
            frame_ms: 20,
            outbound_queue_ms: 30_000,
            inbound_buffer_ms: 2_000,
            heartbeat_interval_ms: 5_000,
            peer_timeout_ms: 20_000,
            playout_timeout_ms: 5_000,
            max_call_seconds: 3_600,
            reconcile_interval_ms: 5_000,
        }
    }
}

/// How the gateway authenticates to ElevenLabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElevenLabsAuth {
    /// `xi-api-key` header on the WebSocket upgrade.
    Header,
    /// Fetch a signed URL first (`get-signed-url`), then connect to it.
    SignedUrl,
    /// Public agent: no credentials.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElevenLabsConfig {
    /// The Agents WebSocket endpoint.
    pub url: String,
    /// Agent to talk to; `serve` refuses to start without one.
    pub agent_id: Option<String>,
    pub auth: ElevenLabsAuth,
    /// Endpoint that hands out signed URLs (`auth = "signed_url"`).
    pub signed_url_endpoint: String,
    /// Dial + upgrade timeout.
    pub connect_timeout_ms: u64,
    /// How long to wait for `conversation_initiation_metadata` after the upgrade.
    pub metadata_timeout_ms: u64,
    /// Reconnect budget: this many attempts ...
    pub reconnect_attempts: u32,
    /// ... within this window from the first failure.
    pub reconnect_window_ms: u64,
    /// Largest frame accepted from ElevenLabs, in bytes.
    pub max_frame_bytes: usize,
    /// Caller audio ElevenLabs has not acknowledged for this long (it stopped reading) aborts the connection
    /// (TCP_USER_TIMEOUT), and the call redials within its budget.
    pub send_timeout_ms: u64,
    /// Secret, from `ELEVENLABS_API_KEY` only.
    #[serde(skip)]
    pub api_key: Option<String>,
}

impl Default for ElevenLabsConfig {
    fn default() -> Self {
        ElevenLabsConfig {
            url: "wss://api.elevenlabs.io/v1/convai/conversation".into(),
            agent_id: None,
            auth: ElevenLabsAuth::Header,
            signed_url_endpoint: "https://api.elevenlabs.io/v1/convai/conversation/get-signed-url".into(),
            connect_timeout_ms: 5_000,
            metadata_timeout_ms: 5_000,
            reconnect_attempts: 2,
            reconnect_window_ms: 5_000,
            max_frame_bytes: 1024 * 1024,
            send_timeout_ms: 30_000,
            api_key: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// Where records go while the database cannot take them (append-only, replayed later).
    pub spool_path: String,
    /// The spool's cap (and the dead-letter file's); past it records are lost (logged and counted).
    pub spool_max_bytes: u64,
    /// Where rows the database refuses (and always will) are kept, with its error.
    pub dead_letter_path: String,
    /// Pooled connections (one writer plus readers for the admin endpoints).
    pub pool_size: u32,
    /// Longest wait for a connection before a write is spooled or a read answers 503.
    pub connect_timeout_ms: u64,
    /// Writes gathered into one transaction, at most ...
    pub batch_max: usize,
    /// ... waiting at most this long.
    pub batch_delay_ms: u64,
    /// How often the spool is retried while it holds records.
    pub replay_interval_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/websocket_api.db".into(),
            spool_path: "data/websocket_api.spool".into(),
            spool_max_bytes: 256 * 1024 * 1024,
            dead_letter_path: "data/websocket_api.dead-letter".into(),
            pool_size: 4,
            connect_timeout_ms: 2_000,
            batch_max: 256,
            batch_delay_ms: 20,
            replay_interval_ms: 2_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The admin listener (admin endpoints, metrics, health), apart from the carrier-facing one.
    pub listen: String,
    /// Secret, from `WSAPI__ADMIN__TOKEN` only. With it, the admin endpoints need it as a bearer token on
    /// both listeners; without it they are served on `listen` only.
    #[serde(skip)]
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:7901".into(),
            token: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CarrierConfig {
    /// Reject WebSocket upgrades that lack a valid per-call token.
    pub require_token: bool,
    /// Serve carriers on a non-loopback address with no static token and no `allowed_ips`: anyone who
    /// reaches the port can then place calls. Off, such a configuration is refused (exit 64).
    pub allow_unauthenticated: bool,
    /// Lifetime of the per-call token handed out in `wss_url`.
    pub token_ttl_seconds: u64,
    /// Carrier addresses (IPs or CIDR blocks) allowed on the refurl and the media socket; empty means any.
    pub allowed_ips: Vec<String>,
    /// Browser `Origin`s allowed on the media socket; carriers send none, so any other Origin is refused.
    pub allowed_origins: Vec<String>,
    /// Secret, from `WSAPI__CARRIER__SECRET` only (random per process when unset).
    #[serde(skip)]
    pub secret: Option<String>,
    /// A shared token the carrier must present on the refurl (and on the media socket when
    /// `require_token` is off), from `WSAPI__CARRIER__STATIC_TOKEN` only; unset means none is asked for.
    #[serde(skip)]
    pub static_token: Option<String>,
}

impl Default for CarrierConfig {
    fn default() -> Self {
        CarrierConfig {
            require_token: true,
            allow_unauthenticated: false,
            token_ttl_seconds: 30,
            allowed_ips: Vec::new(),
            allowed_origins: Vec::new(),
            secret: None,
            static_token: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// env_logger filter, e.g. `info` or `websocket_api=debug`; `RUST_LOG` wins when set.
    pub level: String,
    /// Log phone numbers in full (otherwise all but the last 4 digits are masked).
    pub show_numbers: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            show_numbers: false,
        }
    }
}

/// Every problem found while loading or validating, so an operator fixes them in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblems(pub Vec<String>);

impl std::fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigProblems {}

impl CallsConfig {
    pub fn frame(&self) -> Duration {
        Duration::from_millis(self.frame_ms)
    }
}

impl Config {
    /// The path to load: `--config`, else `WSAPI_CONFIG`, else the default.
    pub fn resolve_path(cli: Option<&Path>) -> PathBuf {
        cli.map(Path::to_path_buf)
            .or_else(|| std::env::var_os("WSAPI_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    /// Loads the file (a missing default file is fine), applies the process environment, validates.
    pub fn load(path: &Path, explicit: bool) -> Result<Config, ConfigProblems> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => String::new(),
            Err(e) => return Err(ConfigProblems(vec![format!("cannot read {}: {e}", path.display())])),
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::from_parts(&text, &env)
    }

    /// Builds the configuration from file text and environment pairs; pure, so it is tested directly.
    pub fn from_parts(toml_text: &str, env: &[(String, String)]) -> Result<Config, ConfigProblems> {
        let mut problems = Vec::new();
        let mut table = match toml_text.parse::<toml::Table>() {
            Ok(t) => t,
            Err(e) => return Err(ConfigProblems(vec![format!("file is not valid TOML: {e}")])),
        };
        check_no_secrets_in_file(&table, &mut problems);
        apply_env_overrides(&mut table, env, &mut problems);
        let mut config = deserialize_sections(table, &mut problems);
        config.read_secrets(env);
        config.validate(&mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigProblems(problems))
        }
    }

    fn read_secrets(&mut self, env: &[(String, String)]) {
        let get = |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        self.elevenlabs.api_key = get(ENV_ELEVENLABS_API_KEY);
        self.admin.token = get(ENV_ADMIN_TOKEN);
        self.carrier.secret = get(ENV_CARRIER_SECRET);
        self.carrier.static_token = get(ENV_CARRIER_STATIC_TOKEN);
    }

    fn validate(&self, problems: &mut Vec<String>) {
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
        let pu = &self.server.public_url;
        bad(
            !(pu.is_empty() || pu.starts_with("ws://") || pu.starts_with("wss://")),
            format!("server.public_url: '{pu}' must start with ws:// or wss:// (or be empty to derive it)"),
        );
        bad(
            self.server.max_frame_bytes < 1024,
            "server.max_frame_bytes: must be at least 1024".into(),
        );
        bad(
            self.calls.max_concurrent_calls == 0,
            "calls.max_concurrent_calls: must be at least 1".into(),
        );
        bad(
            !(5..=1000).contains(&self.calls.frame_ms),
            format!("calls.frame_ms: {} is outside 5..=1000", self.calls.frame_ms),
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
        let url = &self.elevenlabs.url;
        bad(
            !(url.starts_with("ws://") || url.starts_with("wss://")),
            format!("elevenlabs.url: '{url}' must start with ws:// or wss://"),
        );
        bad(
            self.elevenlabs.agent_id.as_deref().is_some_and(|a| a.trim().is_empty()),
            "elevenlabs.agent_id: must not be empty when set".into(),
        );
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
        let db = &self.database.url;
        bad(
            !(db.starts_with("sqlite://") || db.starts_with("postgres://") || db.starts_with("postgresql://")),
            format!("database.url: '{db}' must be sqlite://PATH or postgres://…"),
        );
    }

    /// Problems that stop `serve` but not `check-config` or `demo`.
    pub fn serve_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.elevenlabs.agent_id.is_none() {
            p.push("elevenlabs.agent_id: serve needs an agent to talk to (WSAPI__ELEVENLABS__AGENT_ID)".into());
        }
        if self.elevenlabs.auth != ElevenLabsAuth::None && self.elevenlabs.api_key.is_none() {
            p.push(format!(
                "elevenlabs.auth = {:?} needs {ENV_ELEVENLABS_API_KEY} in the environment (or auth = \"none\")",
                self.elevenlabs.auth
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

    /// The effective configuration as TOML with secrets shown only as set/unset, and credentials inside URLs
    /// (a database password, a token in a query) masked.
    pub fn redacted_toml(&self) -> String {
        let mut value = toml::Value::try_from(self).unwrap_or(toml::Value::Table(Default::default()));
        redact_urls(&mut value);
        let body = toml::to_string_pretty(&value).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
        let secret = |s: &Option<String>| {
            if s.is_some() {
                "set (redacted)"
            } else {
                "unset"
            }
        };
        format!(
            "{body}\n# secrets (environment only)\n# {ENV_ELEVENLABS_API_KEY}: {}\n# {ENV_ADMIN_TOKEN}: {}\n# {ENV_CARRIER_SECRET}: {}\n# {ENV_CARRIER_STATIC_TOKEN}: {}\n",
            secret(&self.elevenlabs.api_key),
            secret(&self.admin.token),
            secret(&self.carrier.secret),
            secret(&self.carrier.static_token),
        )
    }
}

/// Query parameters whose values are credentials.
const SECRET_PARAMS: [&str; 8] = [
    "token",
    "key",
    "api_key",
    "secret",
    "password",
    "signature",
    "sig",
    "conversation_signature",
];

/// `scheme://user:password@host/path?token=…` with the password and secret-looking query values masked.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| matches!(c, '/' | '?' | '#'))
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn redact_urls(v: &mut toml::Value) {
    match v {
        toml::Value::String(s) if s.contains("://") => *s = redact_url(s),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| redact_urls(v)),
        toml::Value::Array(a) => a.iter_mut().for_each(redact_urls),
        _ => {}
    }
}

fn check_no_secrets_in_file(table: &toml::Table, problems: &mut Vec<String>) {
    let secrets = [
        ("elevenlabs", "api_key"),
        ("admin", "token"),
        ("carrier", "secret"),
        ("carrier", "static_token"),
    ];
    for (section, key) in secrets {
        if table.get(section).and_then(|s| s.get(key)).is_some() {
            problems.push(format!(
                "{section}.{key}: secrets are read from the environment only, remove it from the file"
            ));
        }
    }
}

fn secret_env_names() -> BTreeSet<&'static str> {
    [ENV_ADMIN_TOKEN, ENV_CARRIER_SECRET, ENV_CARRIER_STATIC_TOKEN]
        .into_iter()
        .collect()
}

/// `WSAPI__CALLS__MAX_CONCURRENT_CALLS=500` becomes `calls.max_concurrent_calls = 500`; values that parse as a
/// TOML scalar (number, bool) keep that type, everything else is a string.
fn apply_env_overrides(table: &mut toml::Table, env: &[(String, String)], problems: &mut Vec<String>) {
    let secrets = secret_env_names();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if secrets.contains(name.as_str()) {
            continue;
        }
        let parts: Vec<&str> = rest.split("__").collect();
        let [section, key] = parts.as_slice() else {
            problems.push(format!("{name}: expected WSAPI__<SECTION>__<KEY>"));
            continue;
        };
        let value = parse_env_value(raw);
        let entry = table
            .entry(section.to_ascii_lowercase())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry.as_table_mut() {
            Some(t) => {
                t.insert(key.to_ascii_lowercase(), value);
            }
            None => problems.push(format!(
                "{name}: section '{}' is not a table",
                section.to_ascii_lowercase()
            )),
        }
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_))) => v,
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Deserializes section by section so that one bad section does not hide the problems of the others.
fn deserialize_sections(table: toml::Table, problems: &mut Vec<String>) -> Config {
    let mut config = Config::default();
    for (section, value) in table {
        let result = match section.as_str() {
            "server" => value.try_into().map(|v| config.server = v),
            "calls" => value.try_into().map(|v| config.calls = v),
            "elevenlabs" => value.try_into().map(|v| config.elevenlabs = v),
            "database" => value.try_into().map(|v| config.database = v),
            "admin" => value.try_into().map(|v| config.admin = v),
            "carrier" => value.try_into().map(|v| config.carrier = v),
            "log" => value.try_into().map(|v| config.log = v),
            "capacity" => value.try_into().map(|v| config.capacity = v),
            other => {
                problems.push(format!("[{other}]: unknown section"));
                continue;
            }
        };
        if let Err(e) = result {
            problems.push(format!("[{section}]: {}", e.to_string().trim()));
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn empty_file_gives_interface_defaults() {
        let c = Config::from_parts("", &env(&[("ELEVENLABS_API_KEY", "k")])).expect("valid");
        assert_eq!(c.server.listen, "0.0.0.0:7900");
        assert_eq!(c.server.public_url, "ws://127.0.0.1:7900");
        assert_eq!(c.calls.max_concurrent_calls, 200);
        assert_eq!(c.elevenlabs.url, "wss://api.elevenlabs.io/v1/convai/conversation");
        assert_eq!(c.elevenlabs.auth, ElevenLabsAuth::Header);
        assert_eq!(c.database.url, "sqlite://data/websocket_api.db");
        assert!(c.carrier.require_token);
        assert!(c.admin.token.is_none());
    }

    #[test]
    fn env_overrides_file_and_keeps_types() {
        let c = Config::from_parts(
            "[calls]\nmax_concurrent_calls = 10\n[elevenlabs]\nauth = \"none\"\n",
            &env(&[
                ("WSAPI__CALLS__MAX_CONCURRENT_CALLS", "500"),
                ("WSAPI__CARRIER__REQUIRE_TOKEN", "false"),
                ("WSAPI__ELEVENLABS__AGENT_ID", "agent_1"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.calls.max_concurrent_calls, 500);
        assert!(!c.carrier.require_token);
        assert_eq!(c.elevenlabs.agent_id.as_deref(), Some("agent_1"));
    }

    #[test]
    fn every_problem_is_listed() {
        let err = Config::from_parts(
            "[server]\nlisten = \"nowhere\"\n[calls]\nmax_concurrent_calls = 0\nframe_ms = 1\n[admin]\ntoken = \"x\"\n[bogus]\na = 1\n",
            &env(&[]),
        )
        .expect_err("invalid");
        let all = err.0.join("\n");
        for needle in [
            "server.listen",
            "max_concurrent_calls",
            "frame_ms",
            "admin.token",
            "[bogus]",
        ] {
            assert!(all.contains(needle), "missing {needle} in {all}");
        }
        assert!(err.0.len() >= 5, "{all}");
        let keyless = Config::from_parts("", &env(&[])).expect("valid without a key");
        assert!(keyless
            .serve_problems()
            .iter()
            .any(|p| p.contains("ELEVENLABS_API_KEY")));
    }

    #[test]
    fn unknown_key_and_bad_type_are_reported_per_section() {
        let err = Config::from_parts(
            "[calls]\nmax_concurent_calls = 5\n[server]\nworkers = \"two\"\n",
            &env(&[("ELEVENLABS_API_KEY", "k")]),
        )
        .expect_err("invalid");
        let all = err.0.join("\n");
        assert!(all.contains("[calls]") && all.contains("max_concurent_calls"), "{all}");
        assert!(all.contains("[server]"), "{all}");
    }

    const SHIPPED: &str = include_str!("../config/websocket_api.toml");

    #[test]
    fn shipped_file_is_valid_and_holds_the_defaults() {
        let shipped = Config::from_parts(SHIPPED, &env(&[("ELEVENLABS_API_KEY", "k")])).expect("shipped file valid");
        let defaults = Config::from_parts("", &env(&[("ELEVENLABS_API_KEY", "k")])).expect("defaults valid");
        assert_eq!(toml::to_string(&shipped).ok(), toml::to_string(&defaults).ok());
    }

    #[test]
    fn shipped_file_documents_every_key() {
        let defaults = toml::Value::try_from(Config::default()).expect("serializes");
        let mut documented = BTreeSet::new();
        let mut section = String::new();
        for line in SHIPPED.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
            } else if let Some((key, _)) = line.trim_start_matches("# ").split_once(" = ") {
                documented.insert(format!("{section}.{}", key.trim()));
            }
        }
        let mut keys: Vec<String> = Vec::new();
        for (section, table) in defaults.as_table().into_iter().flatten() {
            for key in table.as_table().into_iter().flat_map(|t| t.keys()) {
                keys.push(format!("{section}.{key}"));
            }
        }
        keys.push("elevenlabs.agent_id".into());
        for k in keys {
            assert!(
                documented.contains(&k),
                "config/websocket_api.toml does not document {k}"
            );
        }
    }

    #[test]
    fn url_credentials_are_masked() {
        assert_eq!(
            redact_url("postgres://gw:hunter2@db:5432/calls?sslmode=require"),
            "postgres://gw:***@db:5432/calls?sslmode=require"
        );
        assert_eq!(
            redact_url("wss://el.example/v1?agent_id=a&token=t0p&Signature=s"),
            "wss://el.example/v1?agent_id=a&token=***&Signature=***"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(redact_url("postgres://gw@db/calls"), "postgres://gw@db/calls");
    }

    #[test]
    fn an_open_carrier_port_is_an_exposure_unless_meant() {
        let with = |pairs: &[(&str, &str)]| Config::from_parts("", &env(pairs)).expect("valid").exposure_problems();
        let open = with(&[]);
        assert_eq!(open.len(), 1, "{open:?}");
        assert!(open[0].contains("allow_unauthenticated"));
        assert!(with(&[("WSAPI__SERVER__LISTEN", "127.0.0.1:7900")]).is_empty());
        assert!(with(&[("WSAPI__SERVER__LISTEN", "[::1]:7900")]).is_empty());
        assert!(with(&[("WSAPI__CARRIER__STATIC_TOKEN", "t")]).is_empty());
        assert!(with(&[("WSAPI__CARRIER__ALLOW_UNAUTHENTICATED", "true")]).is_empty());
        let listed = Config::from_parts("[carrier]\nallowed_ips = [\"203.0.113.0/24\"]\n", &env(&[])).expect("valid");
        assert!(listed.exposure_problems().is_empty());
        let admin = with(&[
            ("WSAPI__SERVER__LISTEN", "127.0.0.1:7900"),
            ("WSAPI__ADMIN__LISTEN", "0.0.0.0:7901"),
        ]);
        assert!(admin.len() == 1 && admin[0].contains("admin.listen"), "{admin:?}");
        assert!(with(&[
            ("WSAPI__SERVER__LISTEN", "127.0.0.1:7900"),
            ("WSAPI__ADMIN__LISTEN", "0.0.0.0:7901"),
            ("WSAPI__ADMIN__TOKEN", "t")
        ])
        .is_empty());
    }

    #[test]
    fn secrets_come_from_env_and_are_redacted() {
        let c = Config::from_parts(
            "",
            &env(&[
                ("ELEVENLABS_API_KEY", "sk_live_secret"),
                ("WSAPI__ADMIN__TOKEN", "admintok"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.admin.token.as_deref(), Some("admintok"));
        let shown = c.redacted_toml();
        assert!(
            !shown.contains("sk_live_secret") && !shown.contains("admintok"),
            "{shown}"
        );
        assert!(shown.contains("set (redacted)"));
    }
}
