//! `demo --carrier` and `loadtest --carrier` on the real binaries: each carrier's simulated calls go
//! through its own webhook and stream, in its own codec and framing, and are bridged both ways.

use crate::common::process::serve_in;
use crate::common::scratch_dir;
use crate::loadtest_smoke::EchoSimulator;
use std::process::Command;

const OTHER_CARRIERS: [&str; 3] = ["plivo", "exotel", "twilio"];

#[test]
fn the_demo_places_its_calls_in_every_carriers_dialect() {
    for carrier in OTHER_CARRIERS {
        let dir = scratch_dir(&format!("demo-{carrier}"));
        let out = Command::new(env!("CARGO_BIN_EXE_websocket_api"))
            .args(["demo", "--carrier", carrier, "--calls", "1", "--seconds", "2"])
            .current_dir(&dir)
            .env("WSAPI_CONFIG", dir.join("none.toml"))
            .output()
            .expect("demo runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{carrier}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(&format!("simulated {carrier} call")), "{stdout}");
        let method = if carrier == "exotel" { "GET" } else { "POST" };
        assert!(
            stdout.contains(&format!("{carrier} webhook {method} http://127.0.0.1:")),
            "the demo names {carrier}'s own webhook: {stdout}"
        );
        assert!(stdout.contains("demo OK"), "{carrier}: {stdout}");
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_websocket_api"))
        .args(["demo", "--carrier", "skype"])
        .output()
        .expect("demo runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not mcube, plivo, exotel or twilio"));
}

#[test]
fn the_load_tool_speaks_every_carriers_dialect_without_loss() {
    let dir = scratch_dir("loadtest-dialects");
    let sim = EchoSimulator::start();
    let gw = serve_in(&dir, &sim.url);
    for carrier in OTHER_CARRIERS {
        let out = Command::new(env!("CARGO_BIN_EXE_websocket_api"))
            .args([
                "loadtest",
                "--carrier",
                carrier,
                "--target",
                &gw.http,
                "--admin",
                &gw.admin,
            ])
            .args(["--calls", "10", "--ramp", "50", "--seconds", "3", "--json"])
            .args(["--gateway-pid", &gw.child.id().to_string()])
            .output()
            .expect("loadtest runs");
        assert!(
            out.status.success(),
            "{carrier}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
        assert_eq!(
            (report["admitted"].as_u64(), report["failed"].as_u64()),
            (Some(10), Some(0)),
            "{carrier}: {report}"
        );
        assert!(
            report["frames_sent"].as_u64().is_some_and(|n| n >= 10 * 25),
            "{carrier}: {report}"
        );
        assert_eq!(report["frames_lost"], 0, "{carrier}: every frame echoed back: {report}");
    }
}
