//! Failures have a scope, on the real binary: a route whose agent ElevenLabs refuses (a prompt variable the
//! route does not send: 1008 after the initiation; an agent deleted: 404) is refused `agent_unavailable`
//! after a few failures, in each carrier's own way, while every other route's calls are admitted and
//! bridge and `/readyz` stays 200; and a breaker's half-open trial is spent only on a call that was
//! admitted.

use crate::common::process::{serve_in_with_file, Served};
use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use websocket_api::carriers::Carrier;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{post_refurl, Admission, CallRequest};
use websocket_api::tools::sim::stream::{run_call, CallReport};

const SALES: &str = "+918047000001";
const LEGACY: &str = "+918047000002";

/// The agent threshold (the default, `elevenlabs.agent_breaker_failures`).
const THRESHOLD: usize = 3;

fn to(id: &str, number: &str) -> CallRequest {
    CallRequest {
        to: number.into(),
        ..CallRequest::inbound(id)
    }
}

/// A whole call through `carrier`'s webhook and stream, talking for a moment.
async fn place(gw: &Served, carrier: Carrier, call: CallRequest) -> CallReport {
    run_call(&gw.http, carrier, call, 0.3, 20, 7).await
}

async fn admin_json(gw: &Served, path: &str) -> (u16, Value) {
    let mut resp = awc::Client::default()
        .get(format!("{}{path}", gw.admin))
        .send()
        .await
        .expect("admin answers");
    let status = resp.status().as_u16();
    (status, resp.json::<Value>().limit(1 << 20).await.unwrap_or(Value::Null))
}

async fn metrics(gw: &Served) -> String {
    let mut resp = awc::Client::default()
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .expect("metrics");
    String::from_utf8_lossy(&resp.body().limit(16 << 20).await.expect("body")).into_owned()
}

/// A broken route's ten calls in a row: how many were admitted (and failed) before the first refusal,
/// and that every later one was refused `agent_unavailable`.
struct Broken {
    failed_before_refusal: usize,
    refused: usize,
}

fn note_broken(b: &mut Broken, report: &CallReport) {
    match &report.refused {
        Some(why) => {
            assert_eq!(why, "503 agent_unavailable", "{report:?}");
            b.refused += 1;
        }
        None => {
            assert_eq!(b.refused, 0, "admitted after its route was refused: {report:?}");
            assert!(report.admitted && report.frames_heard == 0, "a broken call: {report:?}");
            b.failed_before_refusal += 1;
        }
    }
}

#[actix_rt::test]
async fn a_broken_route_is_refused_alone_and_every_other_route_goes_on() {
    let sim = start_agent(AgentScript {
        greeting_ms: 200,
        echo: true,
        unknown_agents: vec!["agent_deleted".into()],
        required_variables: BTreeMap::from([("agent_sales".into(), vec!["customer_tier".into()])]),
        ..quiet_script()
    });
    let routes = routes_toml(&[
        ("sales", Some(SALES), "agent_sales"),
        ("legacy", Some(LEGACY), "agent_deleted"),
        ("support", None, "agent_support"),
    ]);
    let gw = serve_in_with_file(&scratch_dir("broken-route"), &sim.url, &routes, &[]);
    let mut sales = Broken {
        failed_before_refusal: 0,
        refused: 0,
    };
    let mut legacy = Broken {
        failed_before_refusal: 0,
        refused: 0,
    };
    for i in 0..10 {
        note_broken(
            &mut sales,
            &place(&gw, Carrier::Mcube, to(&format!("SALES-{i}"), SALES)).await,
        );
        note_broken(
            &mut legacy,
            &place(&gw, Carrier::Mcube, to(&format!("LEGACY-{i}"), LEGACY)).await,
        );
        let support = place(&gw, Carrier::Mcube, CallRequest::inbound(&format!("SUPPORT-{i}"))).await;
        assert!(
            support.admitted && support.frames_heard > 0,
            "another route's call {i} is admitted and bridged: {support:?}"
        );
    }
    for (route, b) in [("sales", &sales), ("legacy", &legacy)] {
        assert!(
            b.failed_before_refusal >= THRESHOLD && b.failed_before_refusal <= THRESHOLD + 2,
            "{route}: refused within 2 failures after its threshold ({} failed first)",
            b.failed_before_refusal
        );
        assert_eq!(b.failed_before_refusal + b.refused, 10);
    }

    // Every carrier is refused on that route in its own way.
    for carrier in [Carrier::Plivo, Carrier::Twilio, Carrier::Exotel] {
        let report = place(&gw, carrier, to(&format!("SALES-{}", carrier.as_str()), SALES)).await;
        let expected = match carrier {
            Carrier::Exotel => "503 agent_unavailable",
            _ => "200 busy",
        };
        assert_eq!(report.refused.as_deref(), Some(expected), "{report:?}");
    }

    let (status, ready) = admin_json(&gw, "/readyz").await;
    assert_eq!(status, 200, "other routes take calls: {ready}");
    let mut agents: Vec<&str> = ready["agents_unavailable"]["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    agents.sort();
    assert_eq!(agents, ["agent_deleted", "agent_sales"], "{ready}");
    let text = metrics(&gw).await;
    assert!(
        text.contains("wsapi_agent_unavailable{agent_id=\"agent_sales\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("wsapi_upstream_breaker_state 0"),
        "the account's breaker stays closed"
    );
    assert!(text
        .lines()
        .any(|l| l.starts_with("wsapi_calls_refused_total{") && l.contains("reason=\"agent_unavailable\"")));
    let log = gw.drain_log().join("\n");
    assert!(
        log.contains("agent agent_sales unavailable") && log.contains("route 'sales'"),
        "the log names the route and agent"
    );

    let (_, failed) = admin_json(&gw, "/calls/SALES-0").await;
    assert_eq!(failed["end_reason"], "elevenlabs_rejected", "{failed}");
    let (_, refused) = admin_json(&gw, "/calls/SALES-9").await;
    assert_eq!(
        (refused["state"].as_str(), refused["end_reason"].as_str()),
        (Some("rejected"), Some("agent_unavailable")),
        "{refused}"
    );
}

async fn refurl(gw: &Served, id: &str) -> Admission {
    post_refurl(&gw.http, &call(id)).await.expect("refurl answers")
}

async fn set_cap(gw: &Served, cap: usize) {
    let resp = awc::Client::default()
        .put(format!("{}/calls/limit", gw.admin))
        .send_json(&serde_json::json!({ "max_concurrent_calls": cap }))
        .await
        .expect("PUT /calls/limit");
    assert_eq!(resp.status().as_u16(), 200);
}

#[actix_rt::test]
async fn a_half_open_trial_is_taken_only_by_an_admitted_call() {
    let sim = start_agent(AgentScript {
        refuse_first: 2,
        refuse_status: 503,
        greeting_ms: 200,
        ..quiet_script()
    });
    let overrides = [
        ("WSAPI__CALLS__MAX_CONCURRENT_CALLS", "2"),
        ("WSAPI__CALLS__ADMISSION_DEADLINE_MS", "60000"),
        ("WSAPI__ELEVENLABS__MAX_REDIALS_PER_CALL", "0"),
        ("WSAPI__ELEVENLABS__BREAKER_FAILURES", "2"),
        ("WSAPI__ELEVENLABS__BREAKER_COOLDOWN_MS", "1000"),
    ];
    let gw = serve_in_with_file(&scratch_dir("half-open"), &sim.url, "", &overrides);
    // One slot is held by a reservation whose socket never comes (within this test).
    assert!(matches!(refurl(&gw, "HOLDS-A-SLOT").await, Admission::Admitted { .. }));
    for id in ["DOWN-1", "DOWN-2"] {
        let report = place(&gw, Carrier::Mcube, CallRequest::inbound(id)).await;
        assert!(report.admitted && report.frames_heard == 0, "{report:?}");
    }
    assert!(
        matches!(refurl(&gw, "WHILE-OPEN").await, Admission::Refused { error, .. } if error == "upstream_unavailable")
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // The cool-down has passed, but the gateway is full: this call is refused for capacity, and must not
    // spend the trial.
    set_cap(&gw, 1).await;
    match refurl(&gw, "REFUSED-FOR-CAPACITY").await {
        Admission::Refused { error, .. } => assert_eq!(error, "capacity"),
        other => panic!("admitted over the cap: {other:?}"),
    }
    set_cap(&gw, 2).await;
    let probe = place(&gw, Carrier::Mcube, CallRequest::inbound("THE-TRIAL")).await;
    assert!(
        probe.admitted && probe.frames_heard > 0,
        "the next call is the trial, and ElevenLabs is back: {probe:?}"
    );
    assert!(
        matches!(refurl(&gw, "AFTER").await, Admission::Admitted { .. }),
        "the trial's conversation closed the breaker"
    );
}
