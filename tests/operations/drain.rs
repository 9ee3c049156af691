//! Graceful drain on the real binary: SIGTERM stops admission (503 `draining`, `/readyz` 503), lets live
//! calls finish, ends the ones still up at the deadline cleanly (`terminate`), writes every record and
//! exits 0. SIGHUP reloads the cap from the file.

use crate::common::db::{Backend, TestDb};
use crate::common::process::{bridged_call, serve, serve_in, Served};
use crate::common::*;
use std::time::{Duration, Instant};
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{post_refurl, Admission, Heard};

async fn status_of(url: &str) -> u16 {
    awc::Client::default()
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The real binary on `db`, talking to `sim`, with `extra` settings.
fn serve_on(dir: &std::path::Path, sim_url: &str, db: &TestDb, extra: &[(&str, &str)]) -> Served {
    let spool = dir.join("spool").display().to_string();
    let mut overrides = vec![
        ("WSAPI__ELEVENLABS__URL", sim_url),
        ("WSAPI__DATABASE__URL", db.url.as_str()),
        ("WSAPI__DATABASE__SPOOL_PATH", spool.as_str()),
    ];
    overrides.extend_from_slice(extra);
    serve(dir, &overrides)
}

#[actix_rt::test]
async fn sigterm_drains_then_ends_what_is_left_and_exits_0() {
    let dir = scratch_dir("drain");
    let db = TestDb::new(Backend::Sqlite, &dir);
    let sim = start_agent(AgentScript {
        greeting_ms: 200,
        ..quiet_script()
    });
    let mut gw = serve_on(&dir, &sim.url, &db, &[("WSAPI__SERVER__DRAIN_TIMEOUT_MS", "6000")]);
    let finishing = bridged_call(&gw.http, "DRAIN-FINISHES").await;
    let mut lingering = bridged_call(&gw.http, "DRAIN-LINGERS").await;
    // Admitted, but its WebSocket never comes: Mcube will repeat the POST during the drain.
    let Ok(Admission::Admitted { .. }) = post_refurl(&gw.http, &call("DRAIN-EARLY")).await else {
        panic!("admitted before the drain")
    };

    let signalled = Instant::now();
    gw.signal("TERM");
    let mut refused = None;
    let mut before = Vec::new();
    // Polled for up to 5 s: on a busy machine the signal can take a moment to be handled. A first POST
    // that beats it is admitted; its repeats are refused once the drain starts.
    for _ in 0..100 {
        match post_refurl(&gw.http, &call("DRAIN-NEW")).await {
            Ok(Admission::Refused { status, error, .. }) => {
                refused = Some((status, error));
                break;
            }
            other => before.push(format!("{other:?}")),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    before.dedup();
    assert_eq!(
        refused,
        Some((503, "draining".to_string())),
        "new calls refused while draining; answers before: {before:?}; gateway log: {:?}",
        gw.drain_log()
    );
    assert_eq!(status_of(&format!("{}/readyz", gw.http)).await, 503);
    // A repeat of a POST admitted before: its socket would be refused while draining, so it is refused
    // now (it used to stay admitted), and the carrier can place the call elsewhere.
    assert_eq!(
        post_refurl(&gw.http, &call("DRAIN-EARLY"))
            .await
            .map_err(|e| e.to_string()),
        Ok(Admission::Refused {
            status: 503,
            retry_after: Some("1".into()),
            error: "draining".into()
        })
    );

    // One call finishes by itself during the drain; the other is still up at the deadline.
    finishing.close(1000);
    let heard = listen(&mut lingering, Duration::from_secs(10)).await;
    let t = heard
        .iter()
        .position(|h| *h == Heard::Terminate)
        .expect("the lingering call is terminated");
    assert!(matches!(heard.get(t + 1), Some(Heard::Closed(_))));
    let ended_after = signalled.elapsed();
    assert!(
        ended_after >= Duration::from_millis(5500),
        "live calls were given the drain time ({ended_after:?})"
    );

    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("the process exits after the drain");
    assert!(status.success(), "exit status {status:?}: {:?}", gw.drain_log());

    let (done, _) = db.get_call("DRAIN-FINISHES").expect("record written");
    assert_eq!(
        (done.state.as_str(), done.end_reason.as_deref()),
        ("ended", Some("carrier_hangup"))
    );
    let (cut, events) = db.get_call("DRAIN-LINGERS").expect("record written");
    assert_eq!(
        (cut.state.as_str(), cut.end_reason.as_deref()),
        ("ended", Some("shutdown"))
    );
    assert_eq!(events.last().map(|e| e.detail.as_str()), Some("ended: shutdown"));
    let (new, _) = db.get_call("DRAIN-NEW").expect("refusal recorded");
    assert_eq!(
        (new.state.as_str(), new.end_reason.as_deref()),
        ("rejected", Some("draining"))
    );
    let early = db.stored("DRAIN-EARLY", None).expect("recorded");
    let mut outcomes: Vec<(&str, Option<&str>)> = early
        .attempts
        .iter()
        .map(|a| (a.state.as_str(), a.end_reason.as_deref()))
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [("expired", Some("shutdown")), ("rejected", Some("draining"))],
        "the reservation expired at shutdown, its repeat was refused"
    );
}

#[actix_rt::test]
async fn sigterm_does_not_wait_for_calls_that_never_connected() {
    let dir = scratch_dir("drain-reserved");
    let db = TestDb::new(Backend::Sqlite, &dir);
    let sim = start_agent(quiet_script());
    // Both waits are ten minutes: waiting out either would far outlast the generous exit limit below.
    let mut gw = serve_on(
        &dir,
        &sim.url,
        &db,
        &[
            ("WSAPI__SERVER__DRAIN_TIMEOUT_MS", "600000"),
            ("WSAPI__CALLS__ADMISSION_DEADLINE_MS", "600000"),
        ],
    );
    let Ok(Admission::Admitted { .. }) = post_refurl(&gw.http, &call("DRAIN-RESERVED")).await else {
        panic!("admitted")
    };
    gw.signal("TERM");
    let status = gw
        .wait_exit(Duration::from_secs(60))
        .expect("exits without waiting out the reservation's deadline or the drain's");
    assert!(status.success(), "{:?}", gw.drain_log());
    let (row, _) = db.get_call("DRAIN-RESERVED").expect("the reservation is recorded");
    assert_eq!(
        (row.state.as_str(), row.end_reason.as_deref()),
        ("expired", Some("shutdown"))
    );
}

#[actix_rt::test]
async fn sighup_reloads_the_cap_from_the_file() {
    let dir = scratch_dir("reload");
    let sim = start_agent(quiet_script());
    let gw = serve_in(&dir, &sim.url);
    let limit = || async { get_cap(&gw.admin).await };
    assert_eq!(limit().await, 200, "default cap");
    std::fs::write(dir.join("empty.toml"), "[calls]\nmax_concurrent_calls = 7\n").expect("write config");
    gw.signal("HUP");
    let mut cap = 0;
    for _ in 0..40 {
        cap = limit().await;
        if cap == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cap, 7, "cap reloaded on SIGHUP");
    // The carrier allow-list follows the file too.
    std::fs::write(
        dir.join("empty.toml"),
        "[calls]\nmax_concurrent_calls = 7\n[carrier]\nallowed_ips = [\"203.0.113.0/24\"]\n",
    )
    .expect("write config");
    gw.signal("HUP");
    let mut status = 0;
    for _ in 0..40 {
        status = match post_refurl(&gw.http, &call("RELOAD-IP")).await {
            Ok(Admission::Refused { status, .. }) => status,
            _ => 200,
        };
        if status == 403 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 403, "loopback no longer allowed after the reload");
    // A broken file is refused and the running configuration kept.
    std::fs::write(dir.join("empty.toml"), "[calls]\nmax_concurrent_calls = 0\n").expect("write config");
    gw.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(limit().await, 7);
}

async fn get_cap(http: &str) -> u64 {
    let Ok(mut resp) = awc::Client::default().get(format!("{http}/calls")).send().await else {
        return 0;
    };
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    v["max_concurrent_calls"].as_u64().unwrap_or(0)
}
