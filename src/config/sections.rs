//! The configuration's sections, their keys and their defaults.

use serde::{Deserialize, Serialize};

/// Default location of the configuration file when neither `--config` nor `WSAPI_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "config/websocket_api.toml";
/// Where the package installs it: read when no path is given and there is no `DEFAULT_CONFIG_PATH` here.
pub const INSTALLED_CONFIG_PATH: &str = "/etc/websocket_api/websocket_api.toml";

/// Prefix of environment variables that override configuration keys.
pub(super) const ENV_PREFIX: &str = "WSAPI__";

/// Secrets: read from these environment variables only, never from the file.
pub const ENV_ELEVENLABS_API_KEY: &str = "ELEVENLABS_API_KEY";
pub const ENV_ADMIN_TOKEN: &str = "WSAPI__ADMIN__TOKEN";
pub const ENV_CARRIER_SECRET: &str = "WSAPI__CARRIER__SECRET";
pub const ENV_CARRIER_STATIC_TOKEN: &str = "WSAPI__CARRIER__STATIC_TOKEN";
pub const ENV_ELEVENLABS_WEBHOOK_SECRET: &str = "WSAPI__ELEVENLABS__WEBHOOK_SECRET";
// Each carrier's secret is `WSAPI__CARRIERS__<NAME>__<KEY>` (`CarriersConfig::secrets`).

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
    pub fleet: FleetConfig,
    pub recording: super::recording::RecordingConfig,
    pub carriers: super::carriers::CarriersConfig,
    /// Which agent takes a call (docs/routes.md); none means every call goes to `elevenlabs.agent_id`.
    pub routes: Vec<super::routes::RouteConfig>,
}

/// Several gateways on one PostgreSQL database (docs/fleet.md). Off unless
/// `max_concurrent_calls` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// The cap across every instance on the database (e.g. the ElevenLabs plan's concurrency); unset means
    /// this instance is alone.
    pub max_concurrent_calls: Option<usize>,
    /// An instance whose lease was not renewed for this long is lost: its calls are closed
    /// (`instance_lost`) and its slots return to the fleet.
    pub lease_ttl_ms: u64,
    /// What this instance may carry while it cannot reach the database (it always keeps this many of the
    /// fleet's slots, so the shares of all instances must fit in the fleet cap).
    pub fallback_calls: usize,
    /// Where the other instances reach this one's admin API (forwarded hang-ups, the fleet's call list);
    /// empty means `http://` + the bound `admin.listen`.
    pub admin_url: String,
    /// The other instances' admin URLs (their `admin_url`) this one may send the admin token to: a row of
    /// the fleet's table naming any other URL is not asked (reported, per instance). Empty: none.
    pub peers: Vec<String>,
    /// Allow `http://` peers, on private or loopback addresses only (a network the operator trusts);
    /// otherwise every peer must be `https://`.
    pub plain_http_peers: bool,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            max_concurrent_calls: None,
            lease_ttl_ms: 10_000,
            fallback_calls: 0,
            admin_url: String::new(),
            peers: Vec::new(),
            plain_http_peers: false,
        }
    }
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
    /// Base of the media URL handed to carriers; empty means "derived from the bound address", which only
    /// a loopback listener may use (a public one must name what carriers reach: `verdict`).
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
    /// This instance's name in a fleet, on every call record and in the `wss_url` it hands out; empty means
    /// derived from the host name and the port (`host-7900`), stable across restarts.
    pub instance_id: String,
    /// With `tls_key`: the carrier listener serves `wss://` and `https://` itself with this PEM chain
    /// (leaf first), read again on SIGHUP (renewals) without dropping live calls. Unset: plain, behind a proxy.
    pub tls_cert: Option<String>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:7900".into(),
            public_url: String::new(),
            workers: 0,
            max_frame_bytes: 64 * 1024,
            drain_timeout_ms: 60_000,
            interrupt_drain_timeout_ms: 5_000,
            request_timeout_ms: 5_000,
            send_timeout_ms: 30_000,
            send_buffer_bytes: 0,
            trusted_proxies: Vec::new(),
            instance_id: String::new(),
            tls_cert: None,
            tls_key: None,
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

/// The hold clip as read from its WAV file: 16-bit mono PCM, little-endian, at a rate we bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldClip {
    pub sample_rate: u32,
    pub pcm: Vec<u8>,
}

/// The rates a hold clip may have: the ones the audio path bridges (`audio::format::SampleRate`, which
/// this layer cannot name; a test there keeps the two equal).
pub const HOLD_CLIP_RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

/// The longest hold clip accepted: it is held in memory once and looped.
pub const MAX_HOLD_CLIP_SECONDS: u32 = 60;

/// The answer to an MCP tool call that waits for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McpApproval {
    Deny,
    Allow,
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
    /// ElevenLabs' REST API: the reconciler fetches `GET <api_url>/v1/convai/conversations/{id}`.
    pub api_url: String,
    /// A conversation whose post-call webhook has not come this long after its call ended is fetched by the
    /// reconciler (with the webhook secret set); 0 never fetches.
    pub reconcile_after_s: u64,
    /// Dial + upgrade timeout.
    pub connect_timeout_ms: u64,
    /// How long to wait for `conversation_initiation_metadata` after the upgrade.
    pub metadata_timeout_ms: u64,
    /// Redials of the agent leg over the whole call (not per window: a flapping upstream must not cost an
    /// unbounded number of billed conversations on a long call). Past it the call plays out and ends.
    pub max_redials_per_call: u32,
    /// Least time between two dials of one call.
    pub redial_min_spacing_ms: u64,
    /// A redialled conversation gets the conversation so far as a `contextual_update`: its last turns that
    /// fit in this many bytes.
    pub resume_context_bytes: usize,
    /// When set, a redialled conversation is told to open with this `first_message` (empty: wait for the
    /// caller) instead of the agent's greeting. The agent's security settings must allow that override, or
    /// ElevenLabs refuses the conversation; unset sends no override.
    pub resume_first_message: Option<String>,
    /// What the caller hears while the agent is redialled: a WAV file (PCM16 mono), looped; unset plays
    /// silence frames, so the line never sounds dropped.
    pub hold_clip: Option<String>,
    /// The answer to an MCP tool call awaiting approval (nobody on a phone line can approve one).
    pub mcp_approval: McpApproval,
    /// Extra trust anchors (PEM) for the signed-URL request and the `wss://` connection, beside the public
    /// roots: private deployments, TLS-inspecting egress proxies.
    pub ca_file: Option<String>,
    /// The upstream breaker opens after this many account-level failures (refusals that will not pass on
    /// retry: 401/403/429, 5xx, connect and TLS failures) ...
    pub breaker_failures: u32,
    /// ... within this window; while open, new calls are refused `upstream_unavailable` ...
    pub breaker_window_ms: u64,
    /// ... until this cool-down has passed, when one probe call is let through.
    pub breaker_cooldown_ms: u64,
    /// An agent whose conversations fail for reasons of its own (agent gone, a prompt variable its route
    /// does not send, an override it refuses: 404 or 1008) this many times ...
    pub agent_breaker_failures: u32,
    /// ... within this window is unavailable: calls to its routes are refused `agent_unavailable` (other
    /// routes go on, `/readyz` stays green) ...
    pub agent_breaker_window_ms: u64,
    /// ... until this cool-down has passed, when one probe call to it is let through.
    pub agent_breaker_cooldown_ms: u64,
    /// Largest frame accepted from ElevenLabs, in bytes.
    pub max_frame_bytes: usize,
    /// Caller audio ElevenLabs has not acknowledged for this long (it stopped reading) aborts the connection
    /// (TCP_USER_TIMEOUT), and the call redials within its budget.
    pub send_timeout_ms: u64,
    /// 0 (the default): caller audio leaves for the agent as it arrives; frames that queued together while
    /// the agent leg was busy share one message, so nothing waits for a timer. Above 0, an opt-in fixed join:
    /// chunks of this length, which delay what the caller says by up to the chunk's length less one frame.
    pub user_audio_chunk_ms: u64,
    /// Secret, from `ELEVENLABS_API_KEY` only.
    #[serde(skip)]
    pub api_key: Option<String>,
    /// Secret, from `WSAPI__ELEVENLABS__WEBHOOK_SECRET` only: the HMAC key of ElevenLabs' post-call webhook.
    /// Without it the webhook is not served.
    #[serde(skip)]
    pub webhook_secret: Option<String>,
    /// `ca_file`'s certificates, read once at load.
    #[serde(skip)]
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// `hold_clip`'s audio, read once at load.
    #[serde(skip)]
    pub hold_audio: Option<std::sync::Arc<HoldClip>>,
}

impl Default for ElevenLabsConfig {
    fn default() -> Self {
        ElevenLabsConfig {
            url: "wss://api.elevenlabs.io/v1/convai/conversation".into(),
            agent_id: None,
            auth: ElevenLabsAuth::Header,
            signed_url_endpoint: "https://api.elevenlabs.io/v1/convai/conversation/get-signed-url".into(),
            api_url: "https://api.elevenlabs.io".into(),
            reconcile_after_s: 300,
            connect_timeout_ms: 5_000,
            metadata_timeout_ms: 5_000,
            max_redials_per_call: 2,
            redial_min_spacing_ms: 1_000,
            resume_context_bytes: 2_000,
            resume_first_message: None,
            hold_clip: None,
            mcp_approval: McpApproval::Deny,
            ca_file: None,
            breaker_failures: 5,
            breaker_window_ms: 30_000,
            breaker_cooldown_ms: 15_000,
            agent_breaker_failures: 3,
            agent_breaker_window_ms: 60_000,
            agent_breaker_cooldown_ms: 30_000,
            max_frame_bytes: 1024 * 1024,
            send_timeout_ms: 30_000,
            user_audio_chunk_ms: 0,
            api_key: None,
            webhook_secret: None,
            extra_roots: Vec::new(),
            hold_audio: None,
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
    /// Whether an admin may listen in on live calls (`GET /calls/{id}/listen`).
    pub allow_listen: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:7901".into(),
            token: None,
            allow_listen: true,
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
