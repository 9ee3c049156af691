//! Instances and the database failing under a fleet: a killed instance's calls are closed once, after its
//! lease, and its slots come back; a restarted one closes only its own leftovers; with the database cut,
//! admission goes on within the fallback shares, never past the fleet's cap, and the leases are rebuilt
//! from the calls live when it is back.

use super::*;

/// Two bridged calls on each instance (admitted there, media through the balancer).
async fn two_calls_each(f: &Fleet, tag: &str) -> Vec<(usize, String, CarrierConn)> {
    let mut calls = Vec::new();
    for n in 0..3 {
        for k in 0..2 {
            let id = format!("{tag}-{n}-{k}");
            let url = admit_eventually(&f.gw(n).http, &id, Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("{id} admitted at gw{}", n + 1));
            calls.push((n, id.clone(), bridge(&id, &url).await));
        }
    }
    calls
}

/// `check-config` for a would-be fourth instance with fallback share `share`, on the fleet's database.
fn check_config_as_gw4(f: &Fleet, share: usize) -> (Option<i32>, String) {
    let empty = f.dir.join("gw4.toml");
    std::fs::write(&empty, "").expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_websocket_api"))
        .arg("check-config")
        .env_clear()
        .env("WSAPI_CONFIG", &empty)
        .env("WSAPI__SERVER__LISTEN", "127.0.0.1:0")
        .env("WSAPI__SERVER__INSTANCE_ID", "gw4")
        .env("WSAPI__ELEVENLABS__AGENT_ID", "agent_x")
        .env("WSAPI__ELEVENLABS__AUTH", "none")
        .env("WSAPI__DATABASE__URL", &f.db.url)
        .env("WSAPI__FLEET__MAX_CONCURRENT_CALLS", "10")
        .env("WSAPI__FLEET__FALLBACK_CALLS", share.to_string())
        .output()
        .expect("check-config runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn lost_lines(lines: &[String], who: &str) -> usize {
    lines
        .iter()
        .filter(|l| l.contains(&format!("instance {who} lost")))
        .count()
}

#[actix_rt::test]
async fn a_killed_instance_is_closed_once_after_its_lease_and_its_slots_come_back() {
    let mut f = Fleet::start(Setup::cap(6)).await;
    let mut calls = two_calls_each(&f, "KILL").await;
    let all_active = eventually(Duration::from_secs(5), || {
        calls.iter().all(|(_, id, _)| is_state(&f, id, "active"))
    })
    .await;
    assert!(all_active, "every call recorded active");
    assert!(admit_at(&f.lb.url, "KILL-OVER").await.is_none(), "the fleet is full");

    let _gone = f.kill(2);
    let killed = std::time::Instant::now();
    for (n, id, c) in calls.iter_mut().filter(|(n, ..)| *n != 2) {
        assert!(still_talks(c).await, "{id} on gw{} goes on", *n + 1);
    }
    let closed = eventually(Duration::from_secs(15), || {
        calls
            .iter()
            .filter(|(n, ..)| *n == 2)
            .all(|(_, id, _)| stored(&f, id) == Some(("aborted".into(), Some("instance_lost".into()))))
    })
    .await;
    assert!(closed, "gw3's calls closed instance_lost");
    assert!(
        killed.elapsed() >= Duration::from_millis(LEASE_TTL_MS - 1_000),
        "not before its lease expired ({:?})",
        killed.elapsed()
    );
    for (_, id, _) in calls.iter().filter(|(n, ..)| *n != 2) {
        assert!(is_state(&f, id, "active"), "{id} untouched: {:?}", stored(&f, id));
    }
    let lost = counter(&f, 0, "wsapi_fleet_instances_lost_total").await
        + counter(&f, 1, "wsapi_fleet_instances_lost_total").await;
    assert_eq!(lost, 1.0, "one survivor closed gw3, once");
    let lines = [f.log(0), f.log(1)].concat();
    assert_eq!(lost_lines(&lines, "gw3"), 1, "{lines:#?}");
    // gw3's two slots are the fleet's again.
    for k in 0..2 {
        let id = format!("KILL-AFTER-{k}");
        assert!(
            admit_eventually(&f.lb.url, &id, Duration::from_secs(5)).await.is_some(),
            "{id} admitted in a slot gw3 held"
        );
    }
    assert!(admit_at(&f.lb.url, "KILL-OVER-2").await.is_none(), "and no more");
}

#[actix_rt::test]
async fn a_restarted_instance_closes_only_its_own_leftovers() {
    let mut f = Fleet::start(Setup::cap(10)).await;
    let kept_url = admit_eventually(&f.gw(0).http, "RESTART-KEPT", Duration::from_secs(5))
        .await
        .expect("admitted at gw1");
    let mut kept = bridge("RESTART-KEPT", &kept_url).await;
    let left_url = admit_eventually(&f.gw(1).http, "RESTART-LEFT", Duration::from_secs(5))
        .await
        .expect("admitted at gw2");
    let left = bridge("RESTART-LEFT", &left_url).await;
    assert!(
        eventually(Duration::from_secs(5), || is_state(&f, "RESTART-KEPT", "active")
            && is_state(&f, "RESTART-LEFT", "active"))
        .await
    );
    let old = f.kill(1);
    drop(left);
    f.restart(1, &old);
    let closed = eventually(Duration::from_secs(10), || {
        stored(&f, "RESTART-LEFT") == Some(("aborted".into(), Some("restart".into())))
    })
    .await;
    assert!(closed, "gw2's leftover: {:?}", stored(&f, "RESTART-LEFT"));
    assert!(is_state(&f, "RESTART-KEPT", "active"), "gw1's call untouched");
    assert!(still_talks(&mut kept).await, "gw1's call goes on");
    assert_eq!(counter(&f, 0, "wsapi_fleet_instances_lost_total").await, 0.0);
    assert_eq!(counter(&f, 2, "wsapi_fleet_instances_lost_total").await, 0.0);
}

#[actix_rt::test]
async fn with_the_database_cut_admission_stays_within_the_fallback_shares() {
    let f = Fleet::start(Setup {
        fallback: 2,
        via_proxy: true,
        ..Setup::cap(10)
    })
    .await;
    for k in 0..5 {
        let id = format!("OUT-BEFORE-{k}");
        assert!(
            admit_eventually(&f.gw(0).http, &id, Duration::from_secs(5))
                .await
                .is_some(),
            "{id} admitted at gw1 while the database is up"
        );
    }
    // A fourth instance whose share would take the shares past the cap is told so by check-config.
    let (code, out) = check_config_as_gw4(&f, 5);
    assert_eq!(code, Some(64), "{out}");
    assert!(
        out.contains("add up to 11, over fleet.max_concurrent_calls (10)"),
        "{out}"
    );
    assert_eq!(check_config_as_gw4(&f, 4).0, Some(0), "6 + 4 fits in 10");

    // Every instance comes to hold its reserve within a renewal or two of the others' (one that joins a
    // fleet whose slots are all held waits for them to give spare ones back).
    let mut settled = false;
    for _ in 0..60 {
        let view = f.admin_get(1, "/fleet").await;
        let rows = view["instances"].as_array().cloned().unwrap_or_default();
        if rows.len() == 3 && rows.iter().all(|r| r["held_slots"].as_i64() >= Some(2)) {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        settled,
        "every instance holds its fallback share: {}",
        f.admin_get(1, "/fleet").await
    );

    let proxy = f.proxy.as_ref().expect("proxy");
    proxy.cut();
    // Past half a lease, no instance counts on the block the database granted it.
    tokio::time::sleep(Duration::from_millis(LEASE_TTL_MS / 2 + 500)).await;
    let mut admitted = Vec::new();
    for n in 0..3 {
        let mut taken = 0;
        for k in 0..4 {
            if admit_at(&f.gw(n).http, &format!("OUT-{n}-{k}")).await.is_some() {
                taken += 1;
            }
        }
        admitted.push(taken);
    }
    assert_eq!(
        admitted,
        vec![0, 2, 2],
        "gw1 already carries more than its share of 2; the others take theirs"
    );
    let live = active_per_instance(&f).await;
    assert_eq!(live, vec![5, 2, 2], "9 live, under the fleet's cap of 10");

    proxy.restore();
    let rebuilt = async {
        for _ in 0..100 {
            let (view, rows) = fleet_rows(&f, 1).await;
            let by_id = |id: &str| row_of(&rows, id);
            let fresh = rows.len() == 3 && rows.iter().all(|i| i["expired"] == false);
            let live_ok = [("gw1", 5), ("gw2", 2), ("gw3", 2)]
                .iter()
                .all(|(id, n)| by_id(id)["live_calls"] == *n && by_id(id)["held_slots"].as_i64() >= Some(*n));
            if fresh && live_ok && view["held_slots"].as_i64() <= Some(10) {
                return Some(view);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    };
    let view = rebuilt.await;
    assert!(
        view.is_some(),
        "leases rebuilt from the live calls: {:?}",
        f.admin_get(1, "/fleet").await
    );
    tokio::time::sleep(Duration::from_millis(LEASE_TTL_MS)).await;
    for n in 0..3 {
        assert_eq!(
            counter(&f, n, "wsapi_fleet_instances_lost_total").await,
            0.0,
            "an outage of the database loses no instance"
        );
    }
}
