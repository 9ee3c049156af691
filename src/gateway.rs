//! Assembles the gateway: the database side (pool, writer, batcher), the registry, and the two HTTP
//! listeners (carrier and admin) over one shared state.

use crate::carrier_token::CallTokens;
use crate::config::Config;
use crate::db::actor::{DbActor, Prepare, ReplaySpool};
use crate::db::batcher::DbBatcher;
use crate::db::models::now_ms;
use crate::db::spool::{DeadLetters, Spool};
use crate::db::writer::{DbStats, Writer};
use crate::db::{self, DbPool, DbTarget};
use crate::fleet::store::Member;
use crate::fleet::Fleet;
use crate::http::access::{CarrierAccess, SharedAccess};
use crate::http::{admin_routes, carrier_routes, AppState};
use crate::metrics::Metrics;
use crate::registry::{Registry, RegistrySetup};
use crate::supervise::Services;
use crate::values::InstanceId;
use actix::{Addr, Supervisor, SyncArbiter};
use actix_web::{dev::Server, web, App, HttpServer};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// How long a stopping listener lets in-flight requests finish.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A started gateway: where it listens and the handles tests and the demo use.
pub struct Gateway {
    /// The carrier-facing listener.
    pub addr: SocketAddr,
    /// `http://addr` for the refurl (and, with an admin token, the admin endpoints).
    pub http_url: String,
    /// The admin listener.
    pub admin_addr: SocketAddr,
    /// `http://admin_addr` for `/calls`, `/metrics`, `/capacity`.
    pub admin_url: String,
    /// Base of the carrier's `wss_url`.
    pub public_url: String,
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    pub db: Addr<DbBatcher>,
    /// The writer itself, to start replaying the spool once the gateway is ready.
    pub db_writer: Addr<DbActor>,
    pub db_stats: Arc<DbStats>,
    pub pool: DbPool,
    /// The carrier access rules, swapped on SIGHUP.
    pub access: SharedAccess,
    /// The routes, swapped on SIGHUP.
    pub routes: crate::routing::SharedRoutes,
    /// The carrier listener's certificate when it serves TLS itself, read again on SIGHUP.
    pub tls: Option<Arc<crate::tls::ReloadableCert>>,
    /// This instance's name (records, `wss_url`, the fleet).
    pub instance: InstanceId,
    /// Its membership of a fleet, when `fleet.max_concurrent_calls` is set.
    pub fleet: Option<Fleet>,
    pub server: actix_web::dev::ServerHandle,
    pub admin_server: actix_web::dev::ServerHandle,
    /// Its background work, stopped and joined by `stop`.
    pub services: Services,
}

impl Gateway {
    /// The gateway is ready: replay what the spool holds, in slices, behind new writes (not before the
    /// gateway answers: a long spool would outlast a service manager's start timeout).
    pub fn replay_spool(&self) {
        self.db_writer.do_send(ReplaySpool);
    }

    /// Stops both listeners (gracefully: in-flight requests finish, within `SHUTDOWN_TIMEOUT`), then its
    /// background services, each joined.
    pub async fn stop(&self) {
        crate::supervise::stopping();
        futures_util::future::join(self.admin_server.stop(true), self.server.stop(true)).await;
        log::info!("stopping services: {}", self.services.names().join(", "));
        self.services.stop().await;
    }
}

/// The database side: the pool, the one writer and the batcher in front of it.
pub struct Database {
    pub pool: DbPool,
    pub writer: Addr<DbActor>,
    pub batcher: Addr<DbBatcher>,
    pub stats: Arc<DbStats>,
}

/// Starts the database side and makes a first attempt at reaching and migrating the database (bounded by
/// its connect timeout). A database that is down does not stop the gateway: records spool until it is
/// back. The spool itself is replayed once the gateway is ready (`Gateway::replay_spool`), and then
/// periodically.
pub async fn start_database(
    config: &Config,
    metrics: &prometheus::Registry,
    instance: &InstanceId,
) -> std::io::Result<Database> {
    let d = &config.database;
    let target = DbTarget::parse(&d.url).map_err(std::io::Error::other)?;
    let pool = db::pool(&target, d.pool_size, d.connect_timeout()).map_err(std::io::Error::other)?;
    let stats = Arc::new(DbStats::new(metrics).map_err(std::io::Error::other)?);
    let (spool_path, dead_path, max, started) = (
        d.spool_path.clone(),
        d.dead_letter_path.clone(),
        d.spool_max_bytes,
        now_ms(),
    );
    let (p, st, id) = (pool.clone(), stats.clone(), instance.to_string());
    let writer = SyncArbiter::start(1, move || {
        let spool = Spool::open(&spool_path, max);
        let dead = DeadLetters::open(&dead_path, max);
        DbActor::new(Writer::new(p.clone(), spool, dead, st.clone(), started).for_instance(&id))
    });
    let batcher = DbBatcher::new(writer.clone(), d.batch_max, d.batch_delay(), d.replay_interval())
        .for_instance(instance.as_str());
    let batcher = Supervisor::start(move |_| batcher);
    match writer.send(Prepare).await {
        Ok(true) => log::info!("db: {} ready", target.redacted()),
        _ => log::error!(
            "db: {} not ready; call records will spool until it is",
            target.redacted()
        ),
    }
    Ok(Database {
        pool,
        writer,
        batcher,
        stats,
    })
}

/// The HTTP servers of a started gateway; both must be polled (spawned or awaited).
pub struct Servers {
    pub carrier: Server,
    pub admin: Server,
}

impl std::future::Future for Servers {
    type Output = std::io::Result<()>;

    /// Runs until either server stops.
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        if let std::task::Poll::Ready(r) = std::pin::Pin::new(&mut this.carrier).poll(cx) {
            return std::task::Poll::Ready(r);
        }
        std::pin::Pin::new(&mut this.admin).poll(cx)
    }
}

/// Starts the gateway inside the current actix system: binds its listeners (`bind`), starts what they
/// serve (`load`), then serves (`run`). The returned `Servers` must be polled (spawned or awaited).
/// `handle_signals`: let actix-web stop on SIGINT/SIGTERM by itself (`serve` handles signals with a drain
/// instead, see `crate::lifecycle`).
pub async fn start(config: Config, handle_signals: bool) -> std::io::Result<(Gateway, Servers)> {
    let listeners = bind(&config)?;
    let parts = load(&config, &listeners).await?;
    run(&config, listeners, parts, handle_signals)
}

/// The gateway's listeners, bound before anything starts (a port in use fails the start at once), with
/// the carrier listener's certificate and the media URL base they make.
struct Listeners {
    carrier: TcpListener,
    addr: SocketAddr,
    admin: TcpListener,
    admin_addr: SocketAddr,
    tls: Option<Arc<crate::tls::ReloadableCert>>,
    public_url: String,
}

fn bind(config: &Config) -> std::io::Result<Listeners> {
    let carrier = TcpListener::bind(&config.server.listen)?;
    let addr = carrier.local_addr()?;
    let admin = TcpListener::bind(&config.admin.listen)?;
    let admin_addr = admin.local_addr()?;
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::ReloadableCert::load(cert, key).map_err(std::io::Error::other)?),
        _ => None,
    };
    let public_url = public_url(config, addr, tls.is_some());
    Ok(Listeners {
        carrier,
        addr,
        admin,
        admin_addr,
        tls,
        public_url,
    })
}

/// What the listeners serve, started: the database side, the registry, the routes, the fleet, the
/// background services, and the state every handler reaches.
struct Parts {
    database: Database,
    registry: Registry,
    routes: crate::routing::SharedRoutes,
    fleet: Option<Fleet>,
    services: Services,
    state: web::Data<AppState>,
    /// Set until the start is done: a start that fails part-way is a stop (`supervise::Starting`).
    starting: crate::supervise::Starting,
}

async fn load(config: &Config, listeners: &Listeners) -> std::io::Result<Parts> {
    let metrics = Arc::new(Metrics::new().map_err(std::io::Error::other)?);
    let instance = crate::fleet::instance_of(config);
    let database = start_database(config, &metrics.registry, &instance).await?;
    // After `database`, so that a failed start lets the writer's thread end before dropping it.
    let starting = crate::supervise::Starting::new();
    let calls = &config.calls;
    let registry = Registry::start(RegistrySetup {
        max_calls: calls.max_concurrent_calls,
        admission_deadline: calls.admission_deadline(),
        reconcile_every: calls.reconcile_interval(),
        records: Some((database.batcher.clone(), config.elevenlabs.agent_id.clone())),
    });
    registry.set_carrier_caps(crate::routing::carrier_caps(config));
    let routes = crate::routing::shared_routes(config);
    metrics.agents_known(crate::routing::current_routes(&routes).agents());
    let services = Services::default();
    let (public_url, admin_addr) = (&listeners.public_url, listeners.admin_addr);
    let fleet = join_fleet(
        config, &registry, &instance, public_url, admin_addr, &metrics, &services,
    )
    .await?;
    let meter = Arc::new(std::sync::Mutex::new(crate::capacity::CostMeter::default()));
    services.spawn("cost sampler", sample_cost(meter.clone(), registry.clone()));
    let watchers = crate::http::seats::Watchers::new(&metrics);
    let recorder = start_recorder(config, &database.batcher, &metrics)?;
    start_reconciler(config, &database, &metrics, &instance, &services);
    if recorder.is_some() && config.recording.keep_days > 0 {
        let dir = std::path::PathBuf::from(&config.recording.dir);
        services.spawn(
            "recording sweeper",
            crate::recording::keep::keep_for(dir, config.recording.keep_days),
        );
    }
    let state = web::Data::new(AppState {
        breaker: Arc::new(crate::call::breaker::UpstreamBreaker::from_config(
            &config.elevenlabs,
            metrics.clone(),
        )),
        tokens: CallTokens::new(config.carrier.secret.as_deref(), config.carrier.token_ttl())
            .map_err(std::io::Error::other)?,
        config: Arc::new(config.clone()),
        registry: registry.clone(),
        metrics,
        db_stats: database.stats.clone(),
        public_url: public_url.clone(),
        db: database.batcher.clone(),
        pool: database.pool.clone(),
        meter,
        access: Arc::new(std::sync::RwLock::new(CarrierAccess::from_config(config))),
        routes: routes.clone(),
        instance,
        fleet: fleet.clone(),
        signed_nonces: crate::http::nonces::SharedNonces::new(config.carriers.replay_window()),
        feed: Default::default(),
        recorder,
        watchers,
    });
    Ok(Parts {
        database,
        registry,
        routes,
        fleet,
        services,
        state,
        starting,
    })
}

/// Serves `parts` on `listeners`: the gateway, started.
fn run(config: &Config, l: Listeners, parts: Parts, handle_signals: bool) -> std::io::Result<(Gateway, Servers)> {
    let state = parts.state;
    let server = run_carrier_listener(l.carrier, l.tls.as_ref(), state.clone(), config, handle_signals)?;
    let admin = run_admin_listener(l.admin, state.clone(), config)?;
    let gateway = Gateway {
        addr: l.addr,
        http_url: format!("http://{}", l.addr),
        admin_addr: l.admin_addr,
        admin_url: format!("http://{}", l.admin_addr),
        public_url: l.public_url,
        registry: parts.registry,
        metrics: state.metrics.clone(),
        db: parts.database.batcher,
        db_writer: parts.database.writer,
        db_stats: parts.database.stats,
        pool: parts.database.pool,
        access: state.access.clone(),
        routes: parts.routes,
        tls: l.tls,
        instance: state.instance.clone(),
        fleet: parts.fleet,
        server: server.handle(),
        admin_server: admin.handle(),
        services: parts.services,
    };
    parts.starting.done();
    Ok((gateway, Servers { carrier: server, admin }))
}

/// The media URL base handed to carriers: `server.public_url`, else derived from the bound listener
/// (which `Config::verdict` allows only on loopback).
fn public_url(config: &Config, addr: SocketAddr, tls: bool) -> String {
    match config.server.public_url.trim_end_matches('/') {
        "" => format!("{}://{addr}", if tls { "wss" } else { "ws" }),
        url => url.to_string(),
    }
}

/// The carrier-facing listener: every worker with its loop-lag probe and its thread watched, each socket
/// with its send bounds, TLS when the gateway serves it.
fn run_carrier_listener(
    listener: TcpListener,
    tls: Option<&Arc<crate::tls::ReloadableCert>>,
    state: web::Data<AppState>,
    config: &Config,
    handle_signals: bool,
) -> std::io::Result<Server> {
    let (send_timeout_ms, send_buffer) = (config.server.send_timeout_ms, config.server.send_buffer_bytes);
    let admin_too = config.admin.token.is_some();
    let mut server = HttpServer::new(move || {
        // The factory runs on each worker thread: each gets its loop-lag probe (`call::lag`).
        crate::call::lag::start_probe(state.metrics.loop_lag.clone());
        crate::supervise::watch_thread("carrier worker");
        crate::supervise::name_thread("wsapi-carrier");
        App::new()
            .app_data(state.clone())
            .configure(|cfg| carrier_routes(cfg, admin_too))
    })
    .on_connect(move |conn, _| crate::net::bound_unacknowledged_data(conn, send_timeout_ms, send_buffer));
    server = match tls {
        Some(cert) => server.listen_rustls_0_23(listener, cert.server_config())?,
        None => server.listen(listener)?,
    };
    server = server
        .backlog(4096)
        .max_connections(100_000)
        .client_request_timeout(config.server.request_timeout())
        .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs());
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    if !handle_signals {
        server = server.disable_signals();
    }
    Ok(server.run())
}

/// With `recording.enabled`, the recordings' writer: its directory made, the files a crash cut short given
/// their lengths. A directory it cannot make stops the start, naming it.
fn start_recorder(
    config: &Config,
    db: &actix::Addr<crate::db::batcher::DbBatcher>,
    metrics: &Arc<Metrics>,
) -> std::io::Result<Option<crate::recording::Recorder>> {
    if !config.recording.enabled {
        return Ok(None);
    }
    let dir = std::path::Path::new(&config.recording.dir);
    crate::recording::Recorder::start(dir, db.clone(), metrics.clone())
        .map(Some)
        .map_err(|e| std::io::Error::new(e.kind(), format!("recording.dir {}: {e}", dir.display())))
}

/// With the post-call webhook's secret set and `elevenlabs.reconcile_after_s` above 0, the reconciler that
/// fetches the verdicts no webhook brought (docs/post-call.md).
fn start_reconciler(
    config: &Config,
    database: &Database,
    metrics: &Arc<Metrics>,
    instance: &crate::values::InstanceId,
    services: &Services,
) {
    let el = &config.elevenlabs;
    if el.webhook_secret.is_none() || el.reconcile_after_s == 0 {
        return;
    }
    let reconciler = crate::reconcile::Reconciler {
        pool: database.pool.clone(),
        db: database.batcher.clone(),
        metrics: metrics.clone(),
        instance: instance.to_string(),
        api_url: el.api_url.clone(),
        api_key: el.api_key.clone(),
        after: std::time::Duration::from_secs(el.reconcile_after_s),
        tls: crate::call::agent_dial::tls_config(&el.extra_roots),
    };
    services.spawn("reconciler", reconciler.run());
}

/// The admin listener: a handful of requests, one worker.
fn run_admin_listener(listener: TcpListener, state: web::Data<AppState>, config: &Config) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || {
        crate::supervise::watch_thread("admin worker");
        crate::supervise::name_thread("wsapi-admin");
        App::new().app_data(state.clone()).configure(admin_routes)
    })
    .on_connect(crate::net::note_admin_socket)
    .listen(listener)?
    .workers(1)
    .client_request_timeout(config.server.request_timeout())
    .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
    .disable_signals()
    .run())
}

/// With `fleet.max_concurrent_calls` set (PostgreSQL, checked with the configuration), joins the fleet on
/// the database: the registry admits within this instance's share from now on. `Err` (`ConfigProblems`,
/// so `serve` exits 64) when the live fleet runs with another cap.
async fn join_fleet(
    config: &Config,
    registry: &Registry,
    instance: &InstanceId,
    public_url: &str,
    admin_addr: SocketAddr,
    metrics: &Arc<Metrics>,
    services: &Services,
) -> std::io::Result<Option<Fleet>> {
    let Some(fleet_cap) = config.fleet.max_concurrent_calls else {
        return Ok(None);
    };
    let admin_url = match config.fleet.admin_url.as_str() {
        "" => format!("http://{admin_addr}"),
        url => url.trim_end_matches('/').to_string(),
    };
    let member = Member {
        instance_id: instance.to_string(),
        public_url: public_url.to_string(),
        admin_url,
        started_ms: now_ms(),
        fallback: config.fleet.fallback_calls,
        fleet_cap,
        lease_ttl_ms: config.fleet.lease_ttl_ms,
    };
    let joined = Fleet::join(registry, member, &config.database.url, metrics.clone(), services).await;
    joined.map(Some).map_err(|why| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            crate::config::ConfigProblems(vec![why.to_string()]),
        )
    })
}

/// Every few seconds: this process's RSS, CPU and FDs with the calls then live, for `/capacity`.
async fn sample_cost(meter: Arc<std::sync::Mutex<crate::capacity::CostMeter>>, registry: Registry) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let summary = registry.summary();
        if let Ok(sample) = crate::capacity::procfs::sample_process("self") {
            if let Ok(mut m) = meter.lock() {
                m.observe(sample, summary.active as u64);
            }
        }
    }
}
