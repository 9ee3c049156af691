//! Descriptor exhaustion on the real binary: with its open-file limit lowered under it, `accept` fails
//! with EMFILE. The gateway logs and counts it, does not spin or crash, keeps the live call bridged, and
//! takes new calls again once descriptors are free.

use crate::common::process::{bridged_call, serve};
use crate::common::*;
use std::time::Duration;
use websocket_api::capacity::procfs::sample_process;
use websocket_api::tools::sim::agent::AgentScript;

/// Sets a running process's soft `RLIMIT_NOFILE` (the hard limit stays); returns the soft limit it had.
fn set_soft_nofile(pid: u32, soft: u64) -> u64 {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit with a null new limit only writes the current one into `old`.
    let rc = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    let new = libc::rlimit {
        rlim_cur: soft.min(old.rlim_max),
        rlim_max: old.rlim_max,
    };
    // SAFETY: prlimit reads `new` and writes nothing (null old-limit pointer).
    let rc = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    old.rlim_cur
}

#[actix_rt::test]
async fn emfile_on_accept_spares_the_live_call_and_recovers() {
    let dir = scratch_dir("emfile");
    let sim = start_agent(AgentScript {
        greeting_ms: 200,
        echo: true,
        ..quiet_script()
    });
    let db = format!("sqlite://{}", dir.join("calls.db").display());
    let spool = dir.join("spool").display().to_string();
    let gw = serve(
        &dir,
        &[
            ("WSAPI__ELEVENLABS__URL", &sim.url),
            ("WSAPI__DATABASE__URL", &db),
            ("WSAPI__DATABASE__SPOOL_PATH", &spool),
        ],
    );
    let pid = gw.child.id();
    let addr = gw.http.trim_start_matches("http://").to_string();
    let mut live = bridged_call(&gw.http, "FD-LIVE").await;

    let open = sample_process(&pid.to_string()).expect("proc").open_fds;
    let soft = set_soft_nofile(pid, open + 2);
    let mut extra = Vec::new();
    for _ in 0..30 {
        if let Ok(s) = tokio::net::TcpStream::connect(&addr).await {
            extra.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(700)).await;

    // The live call is untouched by the failing accepts.
    live.send_media(&[3u8; 160]);
    let heard = listen(&mut live, Duration::from_millis(800)).await;
    assert_eq!(audio_of(&heard), vec![3u8; 160], "the live call still bridges audio");
    let log = gw.drain_log();
    assert!(
        log.iter().any(|l| l.contains("Too many open files")),
        "EMFILE is logged: {log:?}"
    );
    let cpu = |p: u32| sample_process(&p.to_string()).map(|s| s.cpu_seconds).unwrap_or(0.0);
    let before = cpu(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(cpu(pid) - before < 0.5, "the accept loop does not spin on EMFILE");

    // Descriptors free again: new calls are taken.
    drop(extra);
    set_soft_nofile(pid, soft);
    let mut admitted = false;
    for _ in 0..30 {
        if let Ok(websocket_api::tools::sim::carrier::Admission::Admitted { .. }) =
            websocket_api::tools::sim::carrier::post_refurl(&gw.http, &call("FD-PROBE")).await
        {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(admitted, "the gateway accepts again once descriptors are free");
    let metrics = awc::Client::default()
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .expect("/metrics answers")
        .body()
        .await
        .expect("body");
    let counted = String::from_utf8_lossy(&metrics)
        .lines()
        .find_map(|l| l.strip_prefix("wsapi_accept_errors_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(counted.is_some_and(|n| n >= 1.0), "EMFILE is counted: {counted:?}");
    let _after = bridged_call(&gw.http, "FD-AFTER").await;
}
