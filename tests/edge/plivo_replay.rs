//! Plivo's answer URL on the real binary, signed as Plivo signs today: `X-Plivo-Signature-V3` covers the
//! call, and a nonce seen before is a replay (403). V2, which covers neither the call nor anything but the
//! URL and nonce, is taken only where configured, and its nonce is remembered too.

use crate::common::process::{serve_in_with, Served};
use crate::common::*;
use websocket_api::tools::sim::carrier::CallRequest;
use websocket_api::tools::sim::dialects::{post_plivo_answer, PlivoRequest, PlivoSigning, XmlAnswer};

const TOKEN: &str = "plivo-auth-token";

async fn answer(gw: &Served, id: &str, signing: PlivoSigning, nonce: &str, forged: Option<&str>) -> XmlAnswer {
    let call = CallRequest::inbound(id);
    post_plivo_answer(PlivoRequest {
        auth_token: Some(TOKEN),
        forged_signature: forged,
        signing,
        nonce: Some(nonce.to_string()),
        ..PlivoRequest::new(&call, format!("{}/plivo/answer", gw.http))
    })
    .await
    .expect("the answer URL answers")
}

fn gateway(tag: &str, accept_v2: bool) -> Served {
    let sim = start_agent(quiet_script());
    let accept = if accept_v2 { "true" } else { "false" };
    serve_in_with(
        &scratch_dir(tag),
        &sim.url,
        &[
            ("WSAPI__CARRIERS__PLIVO__AUTH_TOKEN", TOKEN),
            ("WSAPI__CARRIERS__PLIVO__ACCEPT_V2", accept),
        ],
    )
}

#[actix_rt::test]
async fn a_v3_request_counts_once_and_covers_its_call() {
    let gw = gateway("plivo-v3", false);
    let first = answer(&gw, "REPLAY-1", PlivoSigning::V3, "40000000000000000001", None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.stream_url().is_some(), "{}", first.body);

    let again = answer(&gw, "REPLAY-1", PlivoSigning::V3, "40000000000000000001", None).await;
    assert_eq!(
        again.status, 403,
        "the same signed request again is a replay: {}",
        again.body
    );

    // The signature captured from REPLAY-2's request, sent with another call's parameters and a fresh
    // nonce's header: V3 signs the parameters, so it does not verify.
    let captured = websocket_api::carriers::plivo::webhook::signature_v3(
        TOKEN,
        &format!("{}/plivo/answer", gw.http),
        "CallUUID=REPLAY-2",
        "40000000000000000002",
    );
    let other = answer(
        &gw,
        "REPLAY-3",
        PlivoSigning::V3,
        "40000000000000000002",
        Some(&captured),
    )
    .await;
    assert_eq!(other.status, 403, "{}", other.body);

    let v2 = answer(&gw, "REPLAY-4", PlivoSigning::V2, "40000000000000000003", None).await;
    assert_eq!(v2.status, 403, "V2 is taken only where configured: {}", v2.body);
}

#[actix_rt::test]
async fn a_v2_signature_where_configured_is_not_replayed_with_another_call() {
    let gw = gateway("plivo-v2", true);
    let first = answer(&gw, "V2-CALL-1", PlivoSigning::V2, "50000000000000000001", None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    // V2 signs the URL and the nonce only: the same headers carry any call. The nonce is remembered.
    let replayed = answer(&gw, "V2-CALL-2", PlivoSigning::V2, "50000000000000000001", None).await;
    assert_eq!(
        replayed.status, 403,
        "a replay with another CallUUID: {}",
        replayed.body
    );
    let fresh = answer(&gw, "V2-CALL-3", PlivoSigning::V2, "50000000000000000002", None).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
}
