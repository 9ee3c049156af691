//! The process around the gateway: file-descriptor limits checked before serving, systemd notifications
//! (READY, STOPPING, WATCHDOG), and signals — SIGTERM drains (no new calls, live calls finish up to the
//! deadline, the rest are ended cleanly, records flushed), SIGINT does the same with a short deadline, SIGHUP
//! reloads the configuration file.

use crate::call::EndReason;
use crate::config::reload::Reload;
use crate::config::Config;
use crate::db::batcher::FlushAll;
use crate::gateway::{self, Gateway};
use sd_notify::NotifyState;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};

/// FDs a process needs besides calls: listener, database, logs, spool, the runtime's own.
pub const FD_MARGIN: u64 = 64;
/// FDs per call: the carrier's socket and the ElevenLabs socket.
pub const FDS_PER_CALL: u64 = 2;

/// After the drain deadline, how long calls told to end have to finish.
const END_GRACE: Duration = Duration::from_secs(5);
/// The longest wait for every record to be stored (or spooled).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a stop can take with `config`: the whole drain, the grace for the calls told to end, the
/// final flush of the records and the listeners' shutdown. A service manager's stop timeout must be above it.
pub fn worst_case_stop(config: &Config) -> Duration {
    Duration::from_millis(
        config
            .server
            .drain_timeout_ms
            .max(config.server.interrupt_drain_timeout_ms),
    ) + END_GRACE
        + FLUSH_TIMEOUT
        + gateway::SHUTDOWN_TIMEOUT
}

/// What the start-up check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimits {
    pub soft: u64,
    pub hard: u64,
    pub needed: u64,
}

/// FDs the cap needs.
pub fn fds_needed(cap: usize) -> u64 {
    FDS_PER_CALL * cap as u64 + FD_MARGIN
}

/// Why the cap cannot be served with this process's descriptors; the message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum FdError {
    #[error(
        "calls.max_concurrent_calls needs {} file descriptors (2 per call + {FD_MARGIN}) but the limit is {} \
         (hard {}). Raise LimitNOFILE in the systemd unit (or `ulimit -n`), or lower the cap.",
        .0.needed, .0.soft, .0.hard
    )]
    TooFew(FdLimits),
    #[error("cannot read RLIMIT_NOFILE: {0}")]
    Unreadable(std::io::Error),
}

/// Whether `limits` fit `cap`.
pub fn check_fds(limits: FdLimits) -> Result<FdLimits, FdError> {
    if limits.soft >= limits.needed {
        Ok(limits)
    } else {
        Err(FdError::TooFew(limits))
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (systemd's default soft limit is 1024) and checks that
/// the cap fits.
pub fn raise_fd_limit(cap: usize) -> Result<FdLimits, FdError> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().map_err(FdError::Unreadable)?;
    let soft = if soft < hard {
        match rlimit::Resource::NOFILE.set(hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                log::warn!("cannot raise RLIMIT_NOFILE from {soft} to {hard}: {e}");
                soft
            }
        }
    } else {
        soft
    };
    check_fds(FdLimits {
        soft,
        hard,
        needed: fds_needed(cap),
    })
}

fn notify(state: &[NotifyState]) {
    // Outside systemd there is no NOTIFY_SOCKET and this does nothing.
    if let Err(e) = sd_notify::notify(state) {
        log::debug!("systemd notify failed: {e}");
    }
}

/// Serves until a signal ends it; returns when the drain is done.
pub async fn run(config: Config, config_path: PathBuf, explicit_path: bool) -> std::io::Result<()> {
    // Before anything announces the gateway (the log line, READY): a SIGHUP that arrived before its handler
    // would take the default action and kill the process (a reload right after start, or a renewal hook).
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // The service's threads are watched: one that dies outside a stop ends the process for a restart.
    crate::supervise::install_hook();
    crate::supervise::watch_threads();
    let (gw, server) = gateway::start(config.clone(), false).await?;
    log::info!(
        "websocket_api listening on {} (carrier wss base {}); admin on {}",
        gw.addr,
        gw.public_url,
        gw.admin_addr
    );
    let server_task = actix_rt::spawn(server);
    notify(&[NotifyState::Ready]);
    gw.replay_spool();
    start_watchdog(&gw);
    let mut current = config;
    tokio::pin!(server_task);
    loop {
        tokio::select! {
            _ = term.recv() => {
                log::info!("SIGTERM: draining for up to {} ms", current.server.drain_timeout_ms);
                drain(&gw, current.server.drain_timeout()).await;
                break;
            }
            _ = int.recv() => {
                log::info!("SIGINT: draining for up to {} ms", current.server.interrupt_drain_timeout_ms);
                drain(&gw, current.server.interrupt_drain_timeout()).await;
                break;
            }
            _ = hup.recv() => reload(&gw, &config_path, explicit_path, &mut current).await,
            _ = &mut server_task => {
                log::warn!("the HTTP server stopped by itself");
                break;
            }
        }
    }
    Ok(())
}

fn start_watchdog(gw: &Gateway) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = timeout / 2;
    let registry = gw.registry.clone();
    gw.services.spawn("systemd watchdog", async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            // Tied to the registry answering: a wedged registry stops the pings and systemd restarts us.
            if registry.clock_answers().await {
                notify(&[NotifyState::Watchdog]);
            }
        }
    });
}

/// Stops admission, lets live calls finish until `deadline`, ends the rest cleanly, flushes every record
/// and stops the HTTP server.
pub async fn drain(gw: &Gateway, deadline: Duration) {
    notify(&[NotifyState::Stopping]);
    gw.registry.start_drain();
    let until = Instant::now() + deadline;
    // Calls admitted whose WebSocket has not come are not waited for: draining refuses their socket.
    while Instant::now() < until && gw.registry.connected() > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if active(gw).await > 0 {
        let told = gw.registry.end_all(EndReason::Shutdown);
        if told > 0 {
            log::info!("drain deadline reached: ending {told} live call(s)");
        }
        let grace = Instant::now() + END_GRACE;
        while Instant::now() < grace && active(gw).await > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Every record is with the batcher before the flush, by waiting on what sends them rather than for a
    // while: an ended call sends its final record before it gives its slot back (none is active now), and
    // the registry's clock, once it answers, has sent the records of the reservations `end_all` dropped.
    gw.registry.clock_answers().await;
    match tokio::time::timeout(FLUSH_TIMEOUT, gw.db.send(FlushAll)).await {
        Ok(Ok(Ok(true))) => log::info!("drain: every call record stored"),
        _ => log::warn!("drain: some call records are in the spool; they are replayed at the next start"),
    }
    if let Some(fleet) = &gw.fleet {
        fleet.leave().await;
    }
    gw.stop().await;
}

async fn active(gw: &Gateway) -> usize {
    gw.registry.summary().active
}

/// SIGHUP: re-reads the file; applies the cap and the log level at once, names what needs a restart.
async fn reload(gw: &Gateway, path: &std::path::Path, explicit: bool, current: &mut Config) {
    // First, and whatever the file says: a renewal rewrites the certificate files, not the configuration.
    if let Some(cert) = &gw.tls {
        match cert.reload() {
            Ok(()) => log::info!("SIGHUP: server.tls_cert reloaded for new connections (live calls keep theirs)"),
            Err(e) => log::error!("SIGHUP: server.tls_cert not reloaded, the certificate in use stays: {e}"),
        }
    }
    let new = match Config::load(path, explicit) {
        Ok(c) => c,
        Err(problems) => {
            log::error!("SIGHUP: {} not reloaded: {problems}", path.display());
            return;
        }
    };
    let changed = changed_keys(current, &new);
    if changed.is_empty() {
        log::info!("SIGHUP: {} reloaded, nothing changed", path.display());
    }
    let mut actions: std::collections::BTreeMap<Reload, Vec<String>> = Default::default();
    for key in changed {
        actions.entry(Reload::of(&key)).or_default().push(key);
    }
    for (action, keys) in actions {
        let done = apply(gw, &new, action);
        for key in keys {
            match action {
                Reload::AtRestart => log::warn!("SIGHUP: {key}{done}"),
                _ => log::info!("SIGHUP: {key}{done}"),
            }
        }
    }
    *current = new;
}

/// Applies one kind of change from the new configuration, once however many of its keys changed; what
/// was done, as the end of the log line after each key.
fn apply(gw: &Gateway, new: &Config, action: Reload) -> String {
    match action {
        Reload::Cap => {
            gw.registry.set_limit(new.calls.max_concurrent_calls);
            format!(" = {} applied", new.calls.max_concurrent_calls)
        }
        Reload::Access => {
            let rules = crate::http::access::CarrierAccess::from_config(new);
            crate::http::access::replace(&gw.access, rules);
            " applied".into()
        }
        Reload::Routes => {
            crate::routing::reload_routes(&gw.routes, new);
            let table = crate::routing::current_routes(&gw.routes);
            gw.metrics.agents_known(table.agents());
            " applied to calls admitted from now on (live calls keep their route)".into()
        }
        Reload::CarrierCaps => {
            gw.registry.set_carrier_caps(crate::routing::carrier_caps(new));
            ": max_calls applied; its other keys take effect at the next restart".into()
        }
        Reload::LogLevel => {
            log::set_max_level(new.log.level.parse().unwrap_or(log::LevelFilter::Info));
            format!(" = {} applied", new.log.level)
        }
        Reload::AtRestart => " changed; it takes effect at the next restart".into(),
    }
}

/// `section.key` of every value that differs (secrets are not in the serialized form).
pub fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let flat = |c: &Config| -> Vec<(String, String)> {
        let v = toml::Value::try_from(c).unwrap_or(toml::Value::Table(Default::default()));
        let mut out = Vec::new();
        for (section, table) in v.as_table().into_iter().flatten() {
            match table.as_table() {
                Some(keys) => {
                    for (key, value) in keys {
                        out.push((format!("{section}.{key}"), value.to_string()));
                    }
                }
                // `[[routes]]`: one key for the whole list.
                None => out.push((section.clone(), table.to_string())),
            }
        }
        out
    };
    let (a, b) = (flat(old), flat(new));
    b.iter().filter(|kv| !a.contains(kv)).map(|(k, _)| k.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_check_explains_what_to_change() {
        assert!(check_fds(FdLimits {
            soft: 1024,
            hard: 1024,
            needed: fds_needed(400)
        })
        .is_ok());
        let err = check_fds(FdLimits {
            soft: 1024,
            hard: 4096,
            needed: fds_needed(500),
        })
        .expect_err("too few")
        .to_string();
        assert!(err.contains("1064") && err.contains("LimitNOFILE"), "{err}");
    }

    #[test]
    fn changed_keys_names_what_differs() {
        let a = Config::default();
        let mut b = a.clone();
        b.calls.max_concurrent_calls = 7;
        b.log.level = "debug".into();
        let mut keys = changed_keys(&a, &b);
        keys.sort();
        assert_eq!(
            keys,
            vec!["calls.max_concurrent_calls".to_string(), "log.level".to_string()]
        );
        assert!(changed_keys(&a, &a).is_empty());
    }
}
