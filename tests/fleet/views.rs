//! What an admin and a misrouted carrier see of a fleet: `/fleet`, the fleet's call list, a hang-up sent to
//! any instance, a media socket at the wrong instance; and a fleet refused on SQLite.

use super::*;

#[actix_rt::test]
async fn any_instance_shows_the_fleet_lists_its_calls_and_hangs_them_up() {
    let f = Fleet::start(Setup::cap(20)).await;
    let url = admit_eventually(&f.gw(2).http, "VIEW-ON-GW3", Duration::from_secs(5))
        .await
        .expect("admitted at gw3");
    let mut call = bridge("VIEW-ON-GW3", &url).await;
    assert!(eventually(Duration::from_secs(5), || is_state(&f, "VIEW-ON-GW3", "active")).await);

    // The table is renewed every second: wait for the renewal that counts the call.
    let mut view = Value::Null;
    for _ in 0..40 {
        let (seen, rows) = fleet_rows(&f, 0).await;
        view = seen;
        if row_of(&rows, "gw3")["live_calls"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(view["max_concurrent_calls"], 20, "{view}");
    let rows = view["instances"].as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = rows.iter().filter_map(|i| i["instance_id"].as_str()).collect();
    assert_eq!(ids.len(), 3, "{view}");
    for id in ["gw1", "gw2", "gw3"] {
        assert!(ids.contains(&id), "{id} in {view}");
    }
    for row in &rows {
        let age = row["lease_age_ms"].as_i64().unwrap_or(i64::MAX);
        assert!(age < LEASE_TTL_MS as i64, "lease fresh: {row}");
        assert!(row["held_slots"].as_i64() >= row["live_calls"].as_i64(), "{row}");
        assert_eq!(row["draining"], false);
    }
    let gw3 = row_of(&rows, "gw3");
    assert_eq!(gw3["live_calls"], 1, "{gw3}");
    assert!(view["held_slots"].as_i64() <= Some(20), "{view}");

    let listed = f.admin_get(0, "/calls?scope=fleet").await;
    let calls = listed["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 1, "{listed}");
    assert_eq!(calls[0]["call_id"], "VIEW-ON-GW3");
    assert_eq!(calls[0]["instance_id"], "gw3");
    assert_eq!(listed["instances"].as_array().map(Vec::len), Some(3), "{listed}");
    let local = f.admin_get(0, "/calls").await;
    assert_eq!(
        local["calls"].as_array().map(Vec::len),
        Some(0),
        "gw1's own list: {local}"
    );
    console_shows_the_fleet(&f).await;

    // A hang-up sent to gw1 ends the call on gw3.
    let mut resp = awc::Client::new()
        .delete(format!("{}/calls/VIEW-ON-GW3", f.gw(0).admin))
        .send()
        .await
        .expect("DELETE answers");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(resp.status().as_u16(), 202, "{body}");
    assert_eq!(body["instance_id"], "gw3", "{body}");
    assert_eq!(body["forwarded"], true, "{body}");
    assert!(hung_up(&mut call).await, "the carrier was hung up");
    assert!(
        eventually(Duration::from_secs(5), || stored(&f, "VIEW-ON-GW3")
            == Some(("ended".into(), Some("admin".into()))))
        .await,
        "{:?}",
        stored(&f, "VIEW-ON-GW3")
    );
}

#[actix_rt::test]
async fn a_media_socket_at_the_wrong_instance_is_told_so() {
    let f = Fleet::start(Setup::cap(20)).await;
    let url = admit_eventually(&f.gw(0).http, "WRONG-1", Duration::from_secs(5))
        .await
        .expect("admitted at gw1");
    // Straight to gw2, as a balancer that ignores the instance would send it.
    let path = url.split_once("/ws/").map(|(_, p)| p).expect("path");
    let direct = format!("{}/ws/{path}", f.gw(1).http.replace("http://", "ws://"));
    let mut resp = awc::Client::new()
        .get(direct.replace("ws://", "http://"))
        .insert_header(("upgrade", "websocket"))
        .insert_header(("connection", "upgrade"))
        .insert_header(("sec-websocket-version", "13"))
        .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .send()
        .await
        .expect("answer");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(resp.status().as_u16(), 421, "{body}");
    assert_eq!(body["error"], "wrong_instance");
    assert_eq!(body["instance"], "gw1");
    assert_eq!(body["this_instance"], "gw2");
    assert_eq!(counter(&f, 1, "wsapi_misdirected_sockets_total").await, 1.0);
    // Through the balancer it reaches gw1.
    bridge("WRONG-1", &url).await;
}

#[test]
fn fleet_settings_on_sqlite_are_refused_with_the_reason() {
    let dir = scratch_dir("fleet-sqlite");
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").expect("config");
    for command in ["serve", "check-config"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_websocket_api"))
            .arg(command)
            .env_clear()
            .env("WSAPI_CONFIG", &empty)
            .env("WSAPI__SERVER__LISTEN", "127.0.0.1:0")
            .env("WSAPI__ELEVENLABS__AGENT_ID", "a")
            .env("WSAPI__ELEVENLABS__AUTH", "none")
            .env("WSAPI__DATABASE__URL", format!("sqlite://{}/x.db", dir.display()))
            .env("WSAPI__FLEET__MAX_CONCURRENT_CALLS", "10")
            .env("WSAPI__FLEET__FALLBACK_CALLS", "11")
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{command}: {err}");
        assert!(
            err.contains("fleet.*") && err.contains("PostgreSQL"),
            "{command}: {err}"
        );
        assert!(
            err.contains("fleet.fallback_calls: 11 is over"),
            "{command}: every problem listed: {err}"
        );
        assert!(
            err.contains("server.instance_id"),
            "{command}: port 0 needs a name: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn instances_starting_together_on_an_empty_database_migrate_it_once() {
    let dir = scratch_dir("fleet-migrate");
    let db = TestDb::new(Backend::Postgres, &dir);
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").expect("config");
    let children: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_websocket_api"))
                .arg("migrate")
                .env_clear()
                .env("WSAPI_CONFIG", &empty)
                .env("WSAPI__DATABASE__URL", &db.url)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("migrate runs")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("migrate ends");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(db.stored("nothing", None).is_none(), "the schema is whole");
    let _ = std::fs::remove_dir_all(&dir);
}

/// gw1's console, in a browser: its Fleet view lists the three instances and the call gw3 holds.
async fn console_shows_the_fleet(f: &Fleet) {
    let mut browser = crate::browser::Browser::start().await;
    browser.open(&format!("{}/console", f.gw(0).admin)).await;
    let fleet_tab = "!document.querySelector('#fleet-tab').hidden";
    assert!(browser.until(Duration::from_secs(5), fleet_tab).await, "a Fleet tab");
    browser.eval("document.querySelector('#fleet-tab').click()").await;
    let instances = "document.querySelectorAll('#fleet-table tbody tr').length === 3";
    assert!(browser.until(Duration::from_secs(5), instances).await, "every instance");
    let call = "document.querySelector('#fleet-calls tr[data-call-id=\"VIEW-ON-GW3\"]')?.dataset.instance === 'gw3'";
    assert!(
        browser.until(Duration::from_secs(5), call).await,
        "the call of gw3, on gw1's page"
    );
    browser.screenshot("fleet").await;
}
