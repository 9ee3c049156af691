//! A call is its carrier's and its id's, on the real binary: another carrier naming the same id gets a
//! call of its own (never a URL or a token for the first carrier's), no call id forges another carrier's
//! token, and an admin names a call by id and carrier when two carriers use the id.

use crate::common::process::{serve_in, Served};
use crate::common::*;
use serde_json::Value;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{open_media_socket, post_refurl, Admission, CallRequest, CarrierConn};
use websocket_api::tools::sim::dialects::{post_plivo_answer, PlivoRequest};

fn gateway(tag: &str) -> (Served, websocket_api::tools::sim::agent::AgentSimulator) {
    let sim = start_agent(AgentScript {
        greeting_ms: 200,
        echo: true,
        ..quiet_script()
    });
    let gw = serve_in(&scratch_dir(tag), &sim.url);
    (gw, sim)
}

/// Plivo's answer URL takes `id`: the stream URL its XML names.
async fn plivo_admits(gw: &Served, id: &str) -> String {
    let call = CallRequest::inbound(id);
    let answer = post_plivo_answer(PlivoRequest::new(&call, format!("{}/plivo/answer", gw.http)))
        .await
        .expect("the answer URL answers");
    answer
        .stream_url()
        .unwrap_or_else(|| panic!("plivo {id} not admitted: {}", answer.body))
}

/// Mcube's refurl takes `id`: its `wss_url`.
async fn mcube_admits(gw: &Served, id: &str) -> String {
    match post_refurl(&gw.http, &call(id)).await {
        Ok(Admission::Admitted { wss_url }) => wss_url,
        other => panic!("mcube {id} not admitted: {other:?}"),
    }
}

fn token_of(url: &str) -> &str {
    url.split("token=")
        .nth(1)
        .and_then(|t| t.split('&').next())
        .unwrap_or_default()
}

/// Opens the stream at `url`, sends `start` and waits for the agent's audio.
async fn bridged(url: &str, id: &str) -> CarrierConn {
    let mut conn = CarrierConn::connect(url, true)
        .await
        .unwrap_or_else(|e| panic!("{id}: stream refused: {e:?}"));
    conn.send_start(id, "s", AudioFormat::ULAW_8K);
    let heard = listen(&mut conn, Duration::from_millis(800)).await;
    assert!(!audio_of(&heard).is_empty(), "{id} ({url}) bridged");
    conn
}

async fn admin(gw: &Served, method: &str, path: &str) -> (u16, Value) {
    let client = awc::Client::default();
    let url = format!("{}{path}", gw.admin);
    let req = match method {
        "DELETE" => client.delete(url),
        _ => client.get(url),
    };
    let mut resp = req.send().await.expect("admin answers");
    let status = resp.status().as_u16();
    (status, resp.json::<Value>().limit(1 << 20).await.unwrap_or(Value::Null))
}

#[actix_rt::test]
async fn another_carrier_naming_a_calls_id_gets_a_call_of_its_own() {
    let (gw, _sim) = gateway("identity");
    let plivo_url = plivo_admits(&gw, "SHARED-1").await;
    assert!(plivo_url.contains("/ws/plivo/SHARED-1?"), "{plivo_url}");

    // Mcube names the id Plivo's call waits under: it is Mcube's own call, not Plivo's reservation.
    let mcube_url = mcube_admits(&gw, "SHARED-1").await;
    assert!(
        mcube_url.contains("/ws/mcube/SHARED-1?"),
        "Mcube's refurl must never hand out Plivo's socket: {mcube_url}"
    );
    let stolen = plivo_url.replace(token_of(&plivo_url), token_of(&mcube_url));
    let refused = open_media_socket(&stolen).await.err().and_then(|e| e.status);
    assert_eq!(refused, Some(401), "Mcube's token does not open Plivo's call");

    // Both calls are live at once and bridge, each on its own socket.
    let mut plivo = bridged(&plivo_url, "SHARED-1").await;
    let mut mcube = bridged(&mcube_url, "SHARED-1").await;
    let (_, listed) = admin(&gw, "GET", "/calls").await;
    let mut carriers: Vec<&str> = listed["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| c["call_id"] == "SHARED-1")
        .filter_map(|c| c["carrier"].as_str())
        .collect();
    carriers.sort();
    assert_eq!(carriers, ["mcube", "plivo"], "{listed}");

    // An admin names one of them: by id alone it is ambiguous.
    let (status, body) = admin(&gw, "GET", "/calls/SHARED-1").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "ambiguous");
    let (status, body) = admin(&gw, "GET", "/calls/SHARED-1?carrier=plivo").await;
    assert_eq!((status, body["carrier"].as_str()), (200, Some("plivo")), "{body}");
    let (status, body) = admin(&gw, "DELETE", "/calls/SHARED-1?carrier=mcube").await;
    assert_eq!(status, 202, "{body}");
    assert!(hung_up(&mut mcube).await, "Mcube's call was hung up");
    plivo.send_media(&[0x55; 160]);
    let heard = listen(&mut plivo, Duration::from_millis(800)).await;
    assert!(!audio_of(&heard).is_empty(), "Plivo's call goes on");
    plivo.close(1000);

    // Each is recorded as its carrier's, with its own end.
    let mut ends = Vec::new();
    for carrier in ["mcube", "plivo"] {
        let path = format!("/calls/SHARED-1?carrier={carrier}");
        let mut record = Value::Null;
        for _ in 0..50 {
            record = admin(&gw, "GET", &path).await.1;
            if record["state"] == "ended" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(record["carrier"], carrier, "{record}");
        ends.push(record["end_reason"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(ends, ["admin", "carrier_hangup"]);
}

#[actix_rt::test]
async fn no_call_id_forges_another_carriers_token() {
    let (gw, _sim) = gateway("forged-subject");
    let plivo_url = plivo_admits(&gw, "X1").await;
    // Mcube's call `plivo:X1`: under the old subjects its token was Plivo's for call X1.
    let forged = mcube_admits(&gw, "plivo:X1").await;
    let target = plivo_url.replace(token_of(&plivo_url), token_of(&forged));
    let refused = open_media_socket(&target).await.err().and_then(|e| e.status);
    assert_eq!(
        refused,
        Some(401),
        "a token made for Mcube's call opens nothing of Plivo's"
    );
    let plivo = bridged(&plivo_url, "X1").await;
    plivo.close(1000);
}
