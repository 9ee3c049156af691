//! SIGHUP on the real binary: a change of `[[routes]]` applies to the next call only; a live call keeps
//! the route (and the agent) it was admitted on.

use crate::common::process::{serve_in, Served};
use crate::common::*;
use serde_json::Value;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::carrier::{post_refurl, Admission, CarrierConn};

/// Writes `routes` as the config file, sends SIGHUP and waits for the gateway to say it applied them.
async fn reload_routes(gw: &Served, dir: &std::path::Path, routes: &str) {
    std::fs::write(dir.join("empty.toml"), routes).expect("write config");
    let (applied, seen) = gw.signal_and_await_log("HUP", "SIGHUP: routes applied").await;
    assert!(applied, "the routes were reloaded: {seen:#?}");
}

/// A call admitted, its socket open and its `start` sent.
async fn place(gw: &Served, id: &str) -> CarrierConn {
    let Ok(Admission::Admitted { wss_url }) = post_refurl(&gw.http, &call(id)).await else {
        panic!("{id} not admitted")
    };
    let conn = CarrierConn::connect(&wss_url, true).await.expect("socket");
    conn.send_start(id, "s", AudioFormat::ULAW_8K);
    conn
}

async fn live_call(gw: &Served, id: &str) -> Value {
    let mut resp = awc::Client::default()
        .get(format!("{}/calls", gw.admin))
        .send()
        .await
        .expect("/calls answers");
    let calls: Value = resp.json().await.expect("json");
    calls["calls"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["call_id"] == id).cloned())
        .unwrap_or(Value::Null)
}

fn catch_all(name: &str, agent: &str) -> String {
    format!("[[routes]]\nname = \"{name}\"\nagent_id = \"{agent}\"\n")
}

#[actix_rt::test]
async fn a_route_change_on_sighup_applies_to_the_next_call_only() {
    let dir = scratch_dir("routes-reload");
    let sim = start_agent(quiet_script());
    let gw = serve_in(&dir, &sim.url);
    reload_routes(&gw, &dir, &catch_all("first", "agent_one")).await;
    let _a = place(&gw, "RELOAD-ROUTE-A").await;
    assert!(eventually(Duration::from_secs(3), || sim.log.connections().len() == 1).await);
    reload_routes(&gw, &dir, &catch_all("second", "agent_two")).await;
    let _b = place(&gw, "RELOAD-ROUTE-B").await;
    assert!(eventually(Duration::from_secs(3), || sim.log.connections().len() == 2).await);
    let conns = sim.log.connections();
    assert!(conns[0].query.contains("agent_id=agent_one"), "{}", conns[0].query);
    assert!(conns[1].query.contains("agent_id=agent_two"), "{}", conns[1].query);
    for (id, route, agent) in [
        ("RELOAD-ROUTE-A", "first", "agent_one"),
        ("RELOAD-ROUTE-B", "second", "agent_two"),
    ] {
        let view = live_call(&gw, id).await;
        assert_eq!(
            (view["route"].as_str(), view["agent_id"].as_str()),
            (Some(route), Some(agent)),
            "{id}: {view}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sim.log.connections().len(),
        2,
        "the live call was not moved to the new agent"
    );
}
