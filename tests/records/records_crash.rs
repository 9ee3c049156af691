//! The real binary killed with SIGKILL: a call it had live is closed as `aborted` (restart) by the next
//! start, and records it could only spool (the database was away) are replayed by the next start.

use crate::common::db::{Backend, Proxy, TestDb};
use crate::common::process::{self, bridged_call, Served};
use crate::common::*;
use std::time::Duration;
use websocket_api::tools::sim::agent::AgentScript;

fn serve(dir: &std::path::Path, agent_url: &str, db_url: &str, spool: &str) -> Served {
    process::serve(
        dir,
        &[
            ("WSAPI__ELEVENLABS__URL", agent_url),
            ("WSAPI__DATABASE__URL", db_url),
            ("WSAPI__DATABASE__SPOOL_PATH", spool),
            ("WSAPI__DATABASE__CONNECT_TIMEOUT_MS", "300"),
            ("WSAPI__DATABASE__REPLAY_INTERVAL_MS", "200"),
        ],
    )
}

#[actix_rt::test]
async fn a_killed_gateway_leaves_nothing_open_and_nothing_lost() {
    let dir = scratch_dir("crash");
    let db = TestDb::new(Backend::Postgres, &dir);
    let sim = start_agent(AgentScript {
        greeting_ms: 200,
        ..quiet_script()
    });
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let spool = dir.join("gw.spool").display().to_string();

    let mut first = serve(&dir, &sim.url, &db.via(&proxy), &spool);
    let live = bridged_call(&first.http, "CRASH-LIVE").await;
    // Its 'active' row is written while the database is up.
    assert!(
        eventually(Duration::from_secs(5), || db
            .get_call("CRASH-LIVE")
            .is_some_and(|(r, _)| r.state == "active"))
        .await
    );

    proxy.cut();
    let gone = bridged_call(&first.http, "CRASH-SPOOLED").await;
    gone.close(1000);
    let spooled = eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&spool)
            .is_ok_and(|s| s.contains("CRASH-SPOOLED") && s.contains("ended: carrier_hangup"))
    })
    .await;
    assert!(spooled, "the ended call's records are in the spool");
    first.child.kill().expect("SIGKILL");
    let _ = first.child.wait();
    drop(live);

    proxy.restore();
    let mut second = serve(&dir, &sim.url, &db.url, &spool);
    let healed = eventually(Duration::from_secs(10), || {
        let spooled_ok = db
            .get_call("CRASH-SPOOLED")
            .is_some_and(|(r, e)| r.state == "ended" && e.len() == 2);
        let live_closed = db.get_call("CRASH-LIVE").is_some_and(|(r, _)| r.state == "aborted");
        spooled_ok && live_closed
    })
    .await;
    let _ = second.child.kill();
    let _ = second.child.wait();
    assert!(
        healed,
        "spooled call: {:?}\nlive call: {:?}",
        db.get_call("CRASH-SPOOLED"),
        db.get_call("CRASH-LIVE")
    );
    let (row, _) = db.get_call("CRASH-LIVE").expect("row");
    assert_eq!(row.end_reason.as_deref(), Some("restart"));
    assert!(std::fs::metadata(&spool).is_err(), "spool emptied after the replay");
}
