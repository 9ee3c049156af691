//! Routes over real sockets: the number a call reached picks its agent and variables, a number no route
//! takes is refused at the webhook and recorded, and each route's and carrier's share of the cap holds.
//! Records and `/calls` carry the carrier and the route.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::config::routes::RouteConfig;
use websocket_api::config::Config;
use websocket_api::tools::sim::carrier::{post_refurl, Admission, CallRequest, CarrierConn};
use websocket_api::tools::sim::dialects::{post_plivo_answer, PlivoRequest};

const SALES: &str = "+918047000001";
const SUPPORT: &str = "+918047100200";

fn route(name: &str, agent: &str, f: impl FnOnce(&mut RouteConfig)) -> RouteConfig {
    let mut r = RouteConfig {
        name: name.into(),
        agent_id: agent.into(),
        ..Default::default()
    };
    f(&mut r);
    r
}

/// Sales on one number, support on a prefix (one call at a time), no catch-all.
fn two_routes(c: &mut Config) {
    c.routes = vec![
        route("sales", "agent_sales", |r| {
            r.number = Some(SALES.into());
            r.dynamic_variables.insert("team".into(), "sales".into());
        }),
        route("support", "agent_support", |r| {
            r.prefix = Some("+9180471".into());
            r.max_calls = Some(1);
            r.dynamic_variables.insert("team".into(), "support".into());
            r.dynamic_variables.insert("tier".into(), 2.into());
        }),
    ];
}

fn call_to(id: &str, to: &str) -> CallRequest {
    CallRequest {
        to: to.into(),
        ..CallRequest::inbound(id)
    }
}

async fn refurl(h: &Harness, id: &str, to: &str) -> Admission {
    post_refurl(&h.gw.http_url, &call_to(id, to))
        .await
        .expect("refurl answers")
}

async fn open(h: &Harness, id: &str, to: &str) -> CarrierConn {
    let Admission::Admitted { wss_url } = refurl(h, id, to).await else {
        panic!("{id} to {to} not admitted")
    };
    let conn = CarrierConn::connect(&wss_url, true).await.expect("socket");
    conn.send_start(id, "s", AudioFormat::ULAW_8K);
    conn
}

#[actix_rt::test]
async fn two_numbers_reach_two_agents_with_their_variables_and_the_route_is_on_the_record() {
    let h = start(quiet_script(), two_routes).await;
    let _sales = open(&h, "ROUTE-SALES", SALES).await;
    let _support = open(&h, "ROUTE-SUPPORT", "+91 80471 00200").await;
    let initiated = || {
        h.sim
            .log
            .connections()
            .iter()
            .filter(|c| c.initiation.is_some())
            .count()
    };
    assert!(
        eventually(Duration::from_secs(3), || initiated() == 2).await,
        "both agents were dialled"
    );
    for (agent, team, tier) in [("agent_sales", "sales", None), ("agent_support", "support", Some(2))] {
        let conns = h.sim.log.connections();
        let conn = conns
            .iter()
            .find(|c| c.query.contains(&format!("agent_id={agent}")))
            .unwrap_or_else(|| panic!("no connection to {agent}: {conns:?}"));
        let vars = &conn.initiation.as_ref().expect("initiation").dynamic_variables;
        assert_eq!(vars["team"], team, "{vars:?}");
        assert_eq!(vars.get("tier").and_then(|t| t.as_i64()), tier);
        assert!(
            vars["caller_number"].is_string(),
            "the call's own variables stay: {vars:?}"
        );
    }
    let view = call_view(&h, "ROUTE-SUPPORT").await.expect("live");
    assert_eq!(
        (view["route"].as_str(), view["carrier"].as_str()),
        (Some("support"), Some("mcube"))
    );
    let (_, record) = get_json(&h, "/calls/ROUTE-SALES").await;
    assert_eq!(
        (record["route"].as_str(), record["agent_id"].as_str()),
        (Some("sales"), Some("agent_sales"))
    );
}

#[actix_rt::test]
async fn a_number_no_route_takes_is_refused_at_the_webhook_and_recorded() {
    let h = start(quiet_script(), two_routes).await;
    match refurl(&h, "ROUTE-NONE", "+14155550100").await {
        Admission::Refused { status, error, .. } => assert_eq!((status, error.as_str()), (404, "unrouted")),
        other => panic!("admitted: {other:?}"),
    }
    assert_eq!(end_reason(&h, "ROUTE-NONE").await, "unrouted");
    let (_, record) = get_json(&h, "/calls/ROUTE-NONE").await;
    assert_eq!(
        (
            record["state"].as_str(),
            record["carrier"].as_str(),
            record["route"].as_str()
        ),
        (Some("rejected"), Some("mcube"), Some(""))
    );
    assert!(h.sim.log.connections().is_empty(), "no agent was dialled");
}

#[actix_rt::test]
async fn a_route_and_a_carrier_hold_only_their_share_of_the_cap() {
    let h = start(quiet_script(), |c| {
        two_routes(c);
        c.carriers.plivo.max_calls = Some(1);
        c.routes
            .push(route("plivo-any", "agent_plivo", |r| r.carrier = Some("plivo".into())));
    })
    .await;
    let _first = open(&h, "SHARE-1", SUPPORT).await;
    match refurl(&h, "SHARE-2", "+918047199999").await {
        Admission::Refused { status, error, .. } => assert_eq!((status, error.as_str()), (503, "route_capacity")),
        other => panic!("admitted past the route's share: {other:?}"),
    }
    assert!(
        matches!(refurl(&h, "SHARE-3", SALES).await, Admission::Admitted { .. }),
        "other routes still admit"
    );
    let answer_url = format!("{}/plivo/answer", h.gw.http_url);
    let plivo = |id: &'static str| {
        let answer_url = answer_url.clone();
        async move {
            let call = CallRequest::inbound(id);
            let req = PlivoRequest::new(&call, answer_url);
            post_plivo_answer(req).await.expect("answers")
        }
    };
    assert!(plivo("SHARE-P1").await.stream_url().is_some(), "Plivo's first call");
    assert!(
        plivo("SHARE-P2").await.body.contains("Hangup"),
        "Plivo's share is one call"
    );
    assert_eq!(end_reason(&h, "SHARE-P2").await, "carrier_capacity");
    assert_eq!(end_reason(&h, "SHARE-2").await, "route_capacity");
}
