//! The systemd unit: `systemd-analyze verify` accepts it, and the settings an operator relies on are there.
use std::process::Command;

const UNIT: &str = include_str!("../../systemd/websocket_api.service");
const SYSCTL: &str = include_str!("../../systemd/60-websocket_api.conf");

fn setting(key: &str) -> Option<&'static str> {
    UNIT.lines()
        .find_map(|l| l.trim().strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

#[test]
fn the_unit_verifies() {
    // Verify a copy whose ExecStart points at the binary just built (verify checks that it exists).
    let dir = std::env::temp_dir().join(format!("wsapi-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let unit = dir.join("websocket_api.service");
    std::fs::write(
        &unit,
        UNIT.replace("/usr/bin/websocket_api", env!("CARGO_BIN_EXE_websocket_api")),
    )
    .expect("write");
    // verify also looks up the unit's `man:` documentation: give it the page the package installs.
    let man1 = dir.join("man/man1");
    std::fs::create_dir_all(&man1).expect("man dir");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/debian/websocket_api.1"),
        man1.join("websocket_api.1"),
    )
    .expect("man page");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .env("MANPATH", dir.join("man"))
        .output()
        .expect("systemd-analyze is installed (scripts/test installs systemd when it is missing)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed: {stderr}");
}

#[test]
fn the_unit_has_what_an_operator_relies_on() {
    assert_eq!(setting("Type"), Some("notify"));
    assert_eq!(setting("LimitNOFILE"), Some("1048576"));
    assert_eq!(setting("Restart"), Some("on-failure"));
    assert_eq!(setting("KillSignal"), Some("SIGTERM"));
    assert_eq!(setting("NoNewPrivileges"), Some("yes"));
    assert_eq!(setting("ProtectSystem"), Some("strict"));
    assert_eq!(setting("User"), Some("websocket_api"));
    assert_eq!(setting("EnvironmentFile"), Some("/etc/websocket_api/env"));
    assert!(setting("TasksMax").is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n >= 1024)));
    assert!(setting("WatchdogSec").is_some());
    assert!(setting("ReadWritePaths").is_some_and(|p| p.contains("/var/lib/websocket_api")));
    // The stop timeout must outlast the default drain deadline (60 s), or systemd kills a draining gateway.
    let stop = setting("TimeoutStopSec")
        .and_then(|v| v.trim_end_matches('s').parse::<u64>().ok())
        .expect("TimeoutStopSec");
    let drain = websocket_api::config::Config::default().server.drain_timeout_ms / 1000;
    assert!(stop > drain, "TimeoutStopSec {stop}s <= drain {drain}s");
    for key in [
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.ipv4.ip_local_port_range",
    ] {
        assert!(
            SYSCTL.lines().any(|l| l.starts_with(key)),
            "{key} missing from 60-websocket_api.conf"
        );
    }
}

#[test]
fn the_unit_keeps_records_private_and_outlasts_the_worst_stop() {
    assert_eq!(
        setting("UMask"),
        Some("0077"),
        "records hold phone numbers and transcripts"
    );
    assert_eq!(setting("StateDirectoryMode"), Some("0700"));
    assert!(
        setting("RestartPreventExitStatus").is_some_and(|v| v.split_whitespace().any(|c| c == "64")),
        "a bad configuration (exit 64) must not crash-loop"
    );
    // The worst stop with the defaults: the whole drain, the grace for the calls told to end, the final
    // flush, and the listeners' own shutdown.
    let worst = websocket_api::lifecycle::worst_case_stop(&websocket_api::config::Config::default());
    assert!(
        worst.as_secs() >= 100,
        "the drain, the grace, the flush and the shutdown: {worst:?}"
    );
    let stop = setting("TimeoutStopSec")
        .and_then(|v| v.trim_end_matches('s').parse::<u64>().ok())
        .expect("TimeoutStopSec");
    assert!(
        std::time::Duration::from_secs(stop) > worst,
        "TimeoutStopSec {stop}s <= worst-case stop {worst:?}: systemd would kill a gateway still flushing records"
    );
}

#[test]
fn the_unit_is_hardened_to_an_ok_exposure() {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/websocket_api.service"))
        .output()
        .expect("systemd-analyze is installed (scripts/test installs systemd when it is missing)");
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for websocket_api.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in: {text}{}", String::from_utf8_lossy(&out.stderr)));
    println!("systemd-analyze security: exposure {score}");
    assert!(score <= 3.0, "exposure {score} is above OK (3.0)");
}
