//! The `websocket_api` binary: parses the command line, loads the configuration (exit 64 listing every
//! problem), and runs the chosen subcommand.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use websocket_api::capacity::PerCallCost;
use websocket_api::carriers::Carrier;
use websocket_api::config::origins::Origins;
use websocket_api::config::Config;
use websocket_api::db::{self, DbTarget};
use websocket_api::lifecycle;
use websocket_api::tools::loadtest::LoadOptions;
use websocket_api::tools::sim::agent::{self, AgentScript};

/// mimalloc instead of glibc's malloc: the media path allocates a few small buffers per frame on every
/// worker thread, which glibc served with more CPU and more retained memory per call (see docs/capacity.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_USAGE: u8 = 64;

/// `--config` given to a subcommand that reads no configuration: a usage error, not silently ignored.
fn stray_config(command: &Command, config: Option<&PathBuf>) -> Option<ExitCode> {
    let name = match command {
        Command::Loadtest { .. } => "loadtest",
        Command::SimulateAgent { .. } => "simulate-agent",
        _ => return None,
    };
    eprintln!(
        "websocket_api: {name} reads no configuration file (--config {}): it takes its settings as options",
        config?.display()
    );
    Some(ExitCode::from(EXIT_USAGE))
}

#[derive(Parser)]
#[command(
    name = "websocket_api",
    version,
    about = "Phone-call media gateway: carriers (Mcube, Plivo, Exotel, Twilio) ↔ ElevenLabs agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file, for serve, check-config, migrate, capacity and demo (default: $WSAPI_CONFIG, else
    /// config/websocket_api.toml here, else /etc/websocket_api/websocket_api.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// The whole system on this machine with nothing configured: gateway, agent simulator, simulated calls.
    Demo {
        #[arg(long, default_value_t = 3, value_parser = websocket_api::tools::sim::stream::parse_count)]
        calls: usize,
        #[arg(long, default_value_t = 6.0, value_parser = websocket_api::tools::sim::stream::parse_seconds)]
        seconds: f64,
        /// The carrier the simulated calls come from, in its own dialect: mcube, plivo, exotel or twilio.
        #[arg(long, default_value = "mcube", value_parser = websocket_api::tools::sim::stream::parse_carrier)]
        carrier: Carrier,
    },
    /// A standalone ElevenLabs Agents WebSocket server speaking the real protocol.
    SimulateAgent {
        #[arg(long, default_value = "127.0.0.1:7910")]
        listen: std::net::SocketAddr,
        /// Both formats at once (e.g. ulaw_8000, pcm_16000); overridden by the two below.
        #[arg(long)]
        format: Option<String>,
        #[arg(long)]
        input_format: Option<String>,
        #[arg(long)]
        output_format: Option<String>,
        /// Send the caller's audio back instead of tone replies.
        #[arg(long)]
        echo: bool,
        /// End each conversation (close 1000) after this many milliseconds.
        #[arg(long, default_value_t = 0)]
        end_after_ms: u64,
        /// Interrupt (barge-in) after this many milliseconds.
        #[arg(long, default_value_t = 0)]
        interrupt_after_ms: u64,
        /// Serve wss:// and https:// with this certificate chain (PEM); needs --tls-key.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<String>,
        /// The certificate's private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<String>,
        /// The host name the TLS URLs use (the certificate's name).
        #[arg(long, default_value = "localhost")]
        tls_host: String,
    },
    /// Validate the configuration and print the effective values (secrets redacted).
    CheckConfig,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Simulated carriers against a running gateway (with `simulate-agent --echo` behind it).
    Loadtest {
        /// The carrier the calls come from, in its own dialect: mcube, plivo, exotel or twilio.
        #[arg(long, default_value = "mcube", value_parser = websocket_api::tools::sim::stream::parse_carrier)]
        carrier: Carrier,
        /// The gateway's carrier-facing listener, e.g. http://127.0.0.1:7900
        #[arg(long)]
        target: String,
        /// The gateway's admin listener, for its /metrics.
        #[arg(long, default_value = "http://127.0.0.1:7901")]
        admin: String,
        #[arg(long, default_value_t = 100)]
        calls: usize,
        /// New calls per second.
        #[arg(long, default_value_t = 300.0)]
        ramp: f64,
        /// How long each call talks.
        #[arg(long, default_value_t = 30.0)]
        seconds: f64,
        #[arg(long, default_value_t = 20)]
        frame_ms: u64,
        /// The gateway's pid (found from the target's port when omitted).
        #[arg(long)]
        gateway_pid: Option<u32>,
        /// Only POST this many refurl requests at once and report their answer times.
        #[arg(long)]
        burst: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// The capacity report: live system limits × measured per-call cost.
    Capacity {
        /// A `loadtest --json` report to take the per-call cost from.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Ask a running gateway instead (GET /capacity on its admin listener, e.g. http://127.0.0.1:7901;
        /// with an admin token, WSAPI__ADMIN__TOKEN is sent as the bearer).
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn init_logging(level: &str) {
    let logger = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(CountingLogger(logger))).is_ok() {
        log::set_max_level(max);
    }
}

/// env_logger, and on the way the count of errors that only a log line reports (see
/// `metrics::count_accept_error`).
struct CountingLogger(env_logger::Logger);

impl log::Log for CountingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        websocket_api::metrics::count_accept_error(record);
        self.0.log(record);
    }

    fn flush(&self) {
        self.0.flush();
    }
}

fn load_config(cli_path: Option<&PathBuf>) -> Result<(Config, Origins), ExitCode> {
    let path = Config::resolve_path(cli_path.map(PathBuf::as_path));
    let explicit = cli_path.is_some() || std::env::var_os("WSAPI_CONFIG").is_some();
    // Which file, said before anything else: a relative default read from the wrong directory is the
    // classic first-hour mistake.
    if path.exists() {
        let shown = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        eprintln!("websocket_api: configuration from {}", shown.display());
    } else if !explicit {
        eprintln!(
            "websocket_api: no configuration file ({} or {}): built-in defaults and WSAPI__ variables apply",
            websocket_api::config::DEFAULT_CONFIG_PATH,
            websocket_api::config::INSTALLED_CONFIG_PATH
        );
    }
    Config::load_placed(&path, explicit).map_err(|problems| {
        eprint!("{problems}");
        ExitCode::from(EXIT_USAGE)
    })
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Some(code) = cli.command.as_ref().and_then(|c| stray_config(c, cli.config.as_ref())) {
        return code;
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config.as_ref()),
        Command::CheckConfig => check_config(cli.config.as_ref()),
        Command::Migrate => migrate(cli.config.as_ref()),
        Command::Loadtest {
            carrier,
            target,
            admin,
            calls,
            ramp,
            seconds,
            frame_ms,
            gateway_pid,
            burst,
            json,
        } => {
            let opts = LoadOptions {
                carrier,
                target,
                admin,
                calls,
                ramp_per_s: ramp,
                seconds,
                frame_ms,
                gateway_pid,
                burst,
            };
            loadtest(opts, json)
        }
        Command::Capacity { profile, target, json } => capacity(cli.config.as_ref(), profile, target, json),
        Command::Demo {
            calls,
            seconds,
            carrier,
        } => demo(cli.config.as_ref(), calls, seconds, carrier),
        Command::SimulateAgent {
            listen,
            format,
            input_format,
            output_format,
            echo,
            end_after_ms,
            interrupt_after_ms,
            tls_cert,
            tls_key,
            tls_host,
        } => {
            let both = format.unwrap_or_else(|| "ulaw_8000".into());
            let script = AgentScript {
                input_format: input_format.unwrap_or_else(|| both.clone()),
                output_format: output_format.unwrap_or(both),
                echo,
                end_after_ms,
                interrupt_after_ms,
                // An echoing agent says nothing of its own, so what the caller hears back is only the echo.
                greeting_ms: if echo { 0 } else { AgentScript::default().greeting_ms },
                transcripts: !echo,
                ..AgentScript::default()
            };
            let tls = tls_cert.zip(tls_key).map(|(cert, key)| agent::TlsFiles {
                cert,
                key,
                host: tls_host,
            });
            simulate_agent(&listen.to_string(), script, tls)
        }
    }
}

/// Files the gateway creates (the SQLite database, the spool, the dead letters) hold phone numbers and
/// transcripts: readable by its own user only, whatever the umask it was started with.
fn private_files() {
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

fn serve(cli_path: Option<&PathBuf>) -> ExitCode {
    let (config, origins) = match load_config(cli_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let problems: Vec<String> = config.verdict().into_iter().map(|p| origins.place(p)).collect();
    if !problems.is_empty() {
        eprint!("{}", websocket_api::config::ConfigProblems(problems));
        return ExitCode::from(EXIT_USAGE);
    }
    private_files();
    init_logging(&config.log.level);
    for w in config.warnings() {
        log::warn!("{w}");
    }
    match lifecycle::raise_fd_limit(config.calls.max_concurrent_calls) {
        Ok(l) => log::info!(
            "file descriptors: limit {} (hard {}), the cap needs {}",
            l.soft,
            l.hard,
            l.needed
        ),
        Err(e) => {
            eprintln!("websocket_api: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let path = Config::resolve_path(cli_path.map(PathBuf::as_path));
    let explicit = cli_path.is_some() || std::env::var_os("WSAPI_CONFIG").is_some();
    let result = actix_rt::System::new().block_on(lifecycle::run(config, path, explicit));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A configuration the running system refuses (a fleet whose cap differs): exit 64 like any other.
        Err(e)
            if e.get_ref()
                .is_some_and(|inner| inner.is::<websocket_api::config::ConfigProblems>()) =>
        {
            eprint!("{e}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("websocket_api: {e}");
            ExitCode::from(1)
        }
    }
}

fn migrate(cli_path: Option<&PathBuf>) -> ExitCode {
    let config = match load_config(cli_path) {
        Ok((c, _)) => c,
        Err(code) => return code,
    };
    init_logging(&config.log.level);
    private_files();
    let d = &config.database;
    let result = DbTarget::parse(&d.url).and_then(|target| {
        let pool = db::pool(&target, 1, d.connect_timeout())?;
        let mut conn = db::connect(&pool, &target)?;
        db::migrate(&mut conn).map(|n| (n, target))
    });
    match result {
        Ok((n, target)) => {
            println!("{}: {n} migration(s) applied", target.redacted());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("websocket_api migrate: {e}");
            ExitCode::from(1)
        }
    }
}

fn loadtest(opts: LoadOptions, json: bool) -> ExitCode {
    init_logging("warn");
    let report = actix_rt::System::new().block_on(websocket_api::tools::loadtest::run(opts));
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", report.to_text());
    }
    if report.admitted == 0 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn capacity(cli_path: Option<&PathBuf>, profile: Option<PathBuf>, target: Option<String>, json: bool) -> ExitCode {
    let config = match load_config(cli_path) {
        Ok((c, _)) => c,
        Err(code) => return code,
    };
    let report = match target {
        Some(t) => {
            let token = config.admin.token.clone();
            let fetched = actix_rt::System::new().block_on(async move {
                let mut req = awc::Client::default().get(format!("{t}/capacity"));
                if let Some(token) = token {
                    req = req.bearer_auth(token);
                }
                let mut resp = req.send().await.map_err(|e| e.to_string())?;
                resp.json::<serde_json::Value>()
                    .limit(1 << 20)
                    .await
                    .map_err(|e| e.to_string())
            });
            match fetched {
                Ok(v) => {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    return ExitCode::SUCCESS;
                }
                Err(e) => {
                    eprintln!("capacity: cannot ask the gateway: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        None => {
            let cost = match profile {
                Some(p) => match std::fs::read_to_string(&p)
                    .map_err(websocket_api::capacity::ProfileError::from)
                    .and_then(|t| PerCallCost::from_loadtest_json(&t))
                {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("capacity: {}: {e}", p.display());
                        return ExitCode::from(EXIT_USAGE);
                    }
                },
                None => websocket_api::capacity::configured_profile(&config),
            };
            let limits = websocket_api::capacity::procfs::SystemLimits::read();
            websocket_api::capacity::report(&limits, &cost, config.calls.max_concurrent_calls as u64)
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", report.to_text());
    }
    ExitCode::SUCCESS
}

fn check_config(cli_path: Option<&PathBuf>) -> ExitCode {
    let (config, origins) = match load_config(cli_path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    print!("{}", config.redacted_toml());
    println!("\n# what to enter at each carrier");
    for line in websocket_api::carriers::setup::setup_lines(&config) {
        println!("# {line}");
    }
    for w in config.warnings() {
        println!("# warning: {w}");
    }
    // serve's own verdict, and then what only the database can tell.
    let mut exposed: Vec<String> = config.verdict().into_iter().map(|p| origins.place(p)).collect();
    match websocket_api::fleet::shares_problem(&config) {
        Ok(problem) => exposed.extend(problem),
        Err(e) => println!("# note: fleet shares not checked against the other instances ({e})"),
    }
    if exposed.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprint!("{}", websocket_api::config::ConfigProblems(exposed));
    ExitCode::from(EXIT_USAGE)
}

/// The demo on the defaults; with `--config`, on that file, checked first like any other (the demo then
/// sets its own listeners, agent, database and carrier access: see `demo::run`). `WSAPI_CONFIG` is not
/// read: a shell set up for the production service must not turn the demo into it.
fn demo(cli_path: Option<&PathBuf>, calls: usize, seconds: f64, carrier: Carrier) -> ExitCode {
    let base = if cli_path.is_some() {
        match load_config(cli_path) {
            Ok((config, _)) => config,
            Err(code) => return code,
        }
    } else {
        Config::default()
    };
    init_logging("warn");
    private_files();
    let outcome = actix_rt::System::new().block_on(websocket_api::tools::demo::run(base, calls, seconds, carrier));
    match outcome {
        Ok(o) if o.ok => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(1)
        }
    }
}

fn simulate_agent(listen: &str, script: AgentScript, tls: Option<agent::TlsFiles>) -> ExitCode {
    init_logging("info");
    let result = actix_rt::System::new().block_on(async move {
        let (sim, server) = match &tls {
            Some(t) => agent::start_tls(listen, script, t)?,
            None => agent::start(listen, script)?,
        };
        println!(
            "agent simulator: {} (signed URLs: {})",
            sim.url, sim.signed_url_endpoint
        );
        server.await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simulate-agent: {e}");
            ExitCode::from(1)
        }
    }
}
