//! A fleet of real gateway processes on one real PostgreSQL database, behind a real HAProxy (Debian's
//! package, started here with `deploy/haproxy.cfg` as shipped): admission through the balancer, a killed,
//! restarted and draining instance, a database outage, the fleet's admin views and whom they trust, every
//! carrier through the balancer (Twilio by its path), and every feature meeting in one run (`matrix`).

#[path = "../operations/browser.rs"]
mod browser;
#[path = "../common/mod.rs"]
mod common;

mod admission;
mod balancer;
mod failover;
mod matrix;
mod peers;
mod supervision;
mod views;

pub use common::db::{Backend, Proxy, TestDb};
use common::process::{self, Served};
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::{AgentScript, AgentSimulator};
use websocket_api::tools::sim::carrier::{post_refurl, Admission, CarrierConn, Heard};

/// The fleet tests run one at a time: each is three gateways, a balancer and a simulator on 2 cores.
static ONE_FLEET_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Leases expire fast here, so that a lost instance is noticed within seconds.
pub const LEASE_TTL_MS: u64 = 3_000;

/// How a fleet is set up.
pub struct Setup {
    pub fleet_cap: usize,
    pub fallback: usize,
    /// Every gateway reaches the database through a proxy the test can cut.
    pub via_proxy: bool,
    /// Extra `WSAPI__…` settings for every gateway.
    pub extra: Vec<(&'static str, String)>,
    /// How many gateways (up to 3: the shipped balancer names gw1 to gw3).
    pub instances: usize,
    /// What the agent simulator does (default: a short greeting, then an echo of the caller).
    pub script: AgentScript,
    /// Every gateway's configuration file (e.g. `[[routes]]`); empty: none.
    pub config: String,
    /// Admin URLs every gateway allows as peers beside the fleet's own.
    pub extra_peers: Vec<String>,
}

impl Setup {
    pub fn cap(fleet_cap: usize) -> Setup {
        Setup {
            fleet_cap,
            fallback: 0,
            via_proxy: false,
            extra: Vec::new(),
            instances: 3,
            script: AgentScript {
                greeting_ms: 100,
                echo: true,
                ..quiet_script()
            },
            config: String::new(),
            extra_peers: Vec::new(),
        }
    }
}

/// HAProxy as a child process; killed with the fleet.
pub struct Balancer {
    child: Child,
    pub url: String,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Fleet {
    pub dir: PathBuf,
    pub db: TestDb,
    pub proxy: Option<Proxy>,
    pub sim: AgentSimulator,
    /// gw1, gw2, gw3 (a stopped one is `None`).
    pub gws: Vec<Option<Served>>,
    pub lb: Balancer,
    env: Vec<(String, String)>,
    /// Each instance's admin address, fixed before they start: the others allow exactly these as peers.
    pub admin_addrs: Vec<String>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

pub fn instance(n: usize) -> String {
    format!("gw{}", n + 1)
}

/// A free loopback port (bound, then let go for the child that will take it), from below Linux's
/// ephemeral range (32768 and up): a port from that range can be taken, before the child binds it, by any
/// outbound connection (an instance started just before, dialling PostgreSQL), which once failed a start
/// with "Address already in use".
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 600) as u16 * 20;
    for _ in 0..12_000 {
        let port = 20_000 + (start - 20_000 + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000")
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

impl Fleet {
    pub async fn start(setup: Setup) -> Fleet {
        let turn = ONE_FLEET_AT_A_TIME.lock().await;
        let dir = scratch_dir("fleet");
        let db = TestDb::new(Backend::Postgres, &dir);
        let proxy = if setup.via_proxy {
            Some(Proxy::start("127.0.0.1:5432").await)
        } else {
            None
        };
        let db_url = proxy.as_ref().map_or_else(|| db.url.clone(), |p| db.via(p));
        let sim = start_agent(setup.script);
        let lb_port = free_port();
        let mut env: Vec<(String, String)> = vec![
            ("WSAPI__ELEVENLABS__URL".into(), sim.url.clone()),
            ("WSAPI__DATABASE__URL".into(), db_url),
            ("WSAPI__DATABASE__CONNECT_TIMEOUT_MS".into(), "300".into()),
            ("WSAPI__DATABASE__REPLAY_INTERVAL_MS".into(), "200".into()),
            ("WSAPI__SERVER__PUBLIC_URL".into(), format!("ws://127.0.0.1:{lb_port}")),
            ("WSAPI__FLEET__MAX_CONCURRENT_CALLS".into(), setup.fleet_cap.to_string()),
            ("WSAPI__FLEET__LEASE_TTL_MS".into(), LEASE_TTL_MS.to_string()),
            ("WSAPI__FLEET__FALLBACK_CALLS".into(), setup.fallback.to_string()),
            ("WSAPI__CALLS__ADMISSION_DEADLINE_MS".into(), "120000".into()),
            ("WSAPI__CALLS__MAX_CONCURRENT_CALLS".into(), "1000".into()),
            ("WSAPI__CARRIER__TOKEN_TTL_SECONDS".into(), "600".into()),
        ];
        let admin_addrs: Vec<String> = (0..setup.instances)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let mut peers: Vec<String> = admin_addrs.iter().map(|a| format!("\"http://{a}\"")).collect();
        peers.extend(setup.extra_peers.iter().map(|p| format!("\"{p}\"")));
        env.push(("WSAPI__FLEET__PEERS".into(), format!("[{}]", peers.join(", "))));
        env.push(("WSAPI__FLEET__PLAIN_HTTP_PEERS".into(), "true".into()));
        if !setup.config.is_empty() {
            let file = dir.join("gateway.toml");
            std::fs::write(&file, &setup.config).expect("config file");
            env.push(("WSAPI_CONFIG".into(), file.display().to_string()));
        }
        env.extend(setup.extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        let mut fleet_gws = Vec::new();
        for (n, admin) in admin_addrs.iter().enumerate() {
            fleet_gws.push(Some(serve(&dir, &env, n, None, admin)));
        }
        let lb = start_balancer(lb_port, &fleet_gws, &dir);
        if fleet_gws.len() < 3 {
            // The balancer counts a server up until its health checks fail twice (1 s apart): until then it
            // would send webhooks to the address nothing listens on.
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
        Fleet {
            dir,
            db,
            proxy,
            sim,
            gws: fleet_gws,
            lb,
            env,
            admin_addrs,
            _turn: turn,
        }
    }

    pub fn gw(&self, n: usize) -> &Served {
        self.gws[n].as_ref().expect("instance running")
    }

    /// SIGKILL: the instance vanishes with its calls, as in a crash or a lost box.
    pub fn kill(&mut self, n: usize) -> Served {
        let mut gone = self.gws[n].take().expect("instance running");
        gone.child.kill().expect("SIGKILL");
        let _ = gone.child.wait();
        gone
    }

    /// Starts instance `n` again on the address it had (the balancer knows it by that address).
    pub fn restart(&mut self, n: usize, old: &Served) {
        let listen = host_port(&old.http);
        self.gws[n] = Some(serve(&self.dir, &self.env, n, Some(&listen), &self.admin_addrs[n]));
    }

    /// `GET` on instance `n`'s admin API.
    pub async fn admin_get(&self, n: usize, path: &str) -> Value {
        get(&format!("{}{path}", self.gw(n).admin)).await
    }

    /// Every gateway's settings (`WSAPI__…`), as the fleet's instances were started with them.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Every log line instance `n` wrote since the last call.
    pub fn log(&self, n: usize) -> Vec<String> {
        self.gw(n).drain_log()
    }
}

/// Instance `n` of the fleet, its admin API on `admin` (which it tells the fleet as its `admin_url`).
fn serve(dir: &std::path::Path, env: &[(String, String)], n: usize, listen: Option<&str>, admin: &str) -> Served {
    let id = instance(n);
    let own = dir.join(&id);
    std::fs::create_dir_all(&own).expect("instance dir");
    let spool = own.join("spool").display().to_string();
    let dead = own.join("dead-letter").display().to_string();
    let admin_url = format!("http://{admin}");
    let mut overrides: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    overrides.extend([
        ("WSAPI__SERVER__INSTANCE_ID", id.as_str()),
        ("WSAPI__DATABASE__SPOOL_PATH", spool.as_str()),
        ("WSAPI__DATABASE__DEAD_LETTER_PATH", dead.as_str()),
        ("WSAPI__ADMIN__LISTEN", admin),
        ("WSAPI__FLEET__ADMIN_URL", admin_url.as_str()),
    ]);
    if let Some(addr) = listen {
        overrides.push(("WSAPI__SERVER__LISTEN", addr));
    }
    process::serve(&own, &overrides)
}

/// HAProxy with the shipped configuration, the gateways' addresses given through its environment.
fn start_balancer(port: u16, gws: &[Option<Served>], dir: &std::path::Path) -> Balancer {
    let log = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy log");
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy.cfg");
    let mut cmd = Command::new("haproxy");
    cmd.arg("-f")
        .arg(cfg)
        .arg("-db")
        .env("WSAPI_LB_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log);
    for n in 0..3 {
        // A fleet of fewer than three leaves the other servers on an address nothing listens on: down.
        let addr = gws
            .get(n)
            .and_then(Option::as_ref)
            .map_or("127.0.0.1:1".into(), |gw| host_port(&gw.http));
        cmd.env(format!("WSAPI_GW{}", n + 1), addr);
    }
    let child = cmd
        .spawn()
        .expect("haproxy runs (scripts/test installs Debian's package)");
    let url = format!("http://127.0.0.1:{port}");
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < until, "haproxy did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Balancer { child, url }
}

pub async fn get(url: &str) -> Value {
    let mut resp = awc::Client::new().get(url).send().await.expect("GET answers");
    resp.json::<Value>().limit(64 << 20).await.expect("JSON answer")
}

/// A refurl POST for `call_id` at `base` (an instance, or the balancer); the `wss_url` when admitted.
pub async fn admit_at(base: &str, call_id: &str) -> Option<String> {
    match post_refurl(base, &call(call_id)).await {
        Ok(Admission::Admitted { wss_url }) => Some(wss_url),
        Ok(Admission::Refused { .. }) => None,
        Err(e) => panic!("{call_id}: refurl at {base} failed: {e}"),
    }
}

/// The `active` count each instance reports.
pub async fn active_per_instance(f: &Fleet) -> Vec<u64> {
    let mut out = Vec::new();
    for n in 0..3 {
        if f.gws[n].is_some() {
            out.push(f.admin_get(n, "/calls").await["active"].as_u64().unwrap_or(0));
        }
    }
    out
}

/// The value of a counter in instance `n`'s `/metrics`.
pub async fn counter(f: &Fleet, n: usize, name: &str) -> f64 {
    let url = format!("{}/metrics", f.gw(n).admin);
    let mut resp = awc::Client::new().get(&url).send().await.expect("metrics");
    let body = resp.body().limit(16 << 20).await.expect("metrics body");
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Opens the media socket at `wss_url` (through the balancer), sends `start` and waits for the agent's
/// audio: the call is bridged on the instance that admitted it.
pub async fn bridge(id: &str, wss_url: &str) -> CarrierConn {
    let mut c = CarrierConn::connect(wss_url, true)
        .await
        .unwrap_or_else(|e| panic!("{id}: media socket at {wss_url} refused: {e:?}"));
    c.send_start(id, "s", AudioFormat::ULAW_8K);
    assert!(
        hears_audio(&mut c, Duration::from_secs(5)).await,
        "{id}: no agent audio"
    );
    c
}

/// Whether agent audio arrives within `limit`.
pub async fn hears_audio(c: &mut CarrierConn, limit: Duration) -> bool {
    let until = tokio::time::Instant::now() + limit;
    while let Some((_, heard)) = c
        .next(until.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        match heard {
            Heard::Audio(_) => return true,
            Heard::Closed(_) | Heard::Terminate => return false,
            _ => {}
        }
    }
    false
}

/// Whether the call still bridges: what the caller says comes back from the echoing agent.
pub async fn still_talks(c: &mut CarrierConn) -> bool {
    c.drain(Duration::from_millis(100)).await;
    for _ in 0..10 {
        c.send_media(&[0x55; 160]);
    }
    hears_audio(c, Duration::from_secs(3)).await
}

/// Retries a refurl at `base` every 50 ms until it is admitted or `limit` passes (a fleet moves spare slots
/// between instances at its renewals).
pub async fn admit_eventually(base: &str, id: &str, limit: Duration) -> Option<String> {
    let until = std::time::Instant::now() + limit;
    loop {
        if let Some(url) = admit_at(base, id).await {
            return Some(url);
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Instance `n`'s `/fleet`, and its rows.
pub async fn fleet_rows(f: &Fleet, n: usize) -> (Value, Vec<Value>) {
    let view = f.admin_get(n, "/fleet").await;
    let rows = view["instances"].as_array().cloned().unwrap_or_default();
    (view, rows)
}

/// The row of instance `id` (`Null` when it is not in the fleet).
pub fn row_of(rows: &[Value], id: &str) -> Value {
    rows.iter()
        .find(|r| r["instance_id"] == id)
        .cloned()
        .unwrap_or_default()
}

/// A call's stored state and end reason (latest attempt).
pub fn stored(f: &Fleet, id: &str) -> Option<(String, Option<String>)> {
    f.db.get_call(id).map(|(r, _)| (r.state.clone(), r.end_reason.clone()))
}

pub fn is_state(f: &Fleet, id: &str, state: &str) -> bool {
    stored(f, id).is_some_and(|(s, _)| s == state)
}
