//! The cap: with the cap at N, call N+1 is refused with 503 (and Retry-After) at the refurl — before any
//! WebSocket upgrade or upstream dial — and is admitted once a call hangs up.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::carrier::{post_refurl, Admission, CarrierConn};

#[actix_rt::test]
async fn call_over_the_cap_is_refused_until_a_slot_frees() {
    let h = start(quiet_script(), |c| c.calls.max_concurrent_calls = 2).await;
    let a = start_call(&h, "CAP-A", "a", AudioFormat::ULAW_8K).await;
    let b = start_call(&h, "CAP-B", "b", AudioFormat::ULAW_8K).await;
    let log = h.sim.log.clone();
    assert!(eventually(Duration::from_secs(3), || log.connection_count() == 2).await);

    let refused = post_refurl(&h.gw.http_url, &call("CAP-C"))
        .await
        .expect("refurl answers");
    match refused {
        Admission::Refused {
            status,
            retry_after,
            error,
        } => {
            assert_eq!(status, 503);
            assert_eq!(error, "capacity");
            assert!(retry_after.is_some(), "Retry-After header on a 503");
        }
        other => panic!("call 3 admitted over a cap of 2: {other:?}"),
    }
    // No upgrade for a refused call: its socket is refused before any 101.
    let ws = format!("{}/ws/mcube/CAP-C", h.gw.public_url);
    let err = CarrierConn::connect(&ws, true).await.err().expect("upgrade refused");
    assert_eq!(err.status, Some(401));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(log.connection_count(), 2, "no upstream dial for the refused call");
    let (_, calls) = get_json(&h, "/calls").await;
    assert_eq!(calls["active"], 2);
    assert_eq!(calls["available"], 0);

    a.close(1000);
    let gw_url = h.gw.http_url.clone();
    let mut third = None;
    for _ in 0..40 {
        if let Ok(Admission::Admitted { wss_url }) = post_refurl(&gw_url, &call("CAP-C")).await {
            let c = CarrierConn::connect(&wss_url, true)
                .await
                .expect("admitted call connects");
            c.send_start("CAP-C", "c", AudioFormat::ULAW_8K);
            third = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(third.is_some(), "call 3 admitted after call 1 hung up");
    assert!(eventually(Duration::from_secs(3), || log.connection_count() == 3).await);
    drop(b);
}

#[actix_rt::test]
async fn an_admitted_call_that_never_connects_gives_its_slot_back() {
    let h = start(quiet_script(), |c| {
        c.calls.max_concurrent_calls = 1;
        c.calls.admission_deadline_ms = 300;
    })
    .await;
    let _unused = admit(&h, "GHOST").await;
    assert!(matches!(
        post_refurl(&h.gw.http_url, &call("NEXT")).await,
        Ok(Admission::Refused { status: 503, .. })
    ));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(matches!(
        post_refurl(&h.gw.http_url, &call("NEXT")).await,
        Ok(Admission::Admitted { .. })
    ));
}

#[actix_rt::test]
async fn media_socket_needs_the_token_of_its_call() {
    let h = start(quiet_script(), |_| {}).await;
    let url = admit(&h, "TOK-1").await;
    let bad = url.replace("TOK-1?", "TOK-2?");
    let err = CarrierConn::connect(&bad, true)
        .await
        .err()
        .expect("token of another call refused");
    assert_eq!(err.status, Some(401));
    let tampered = format!("{}0", url);
    assert_eq!(
        CarrierConn::connect(&tampered, true).await.err().map(|e| e.status),
        Some(Some(401))
    );
    assert!(
        CarrierConn::connect(&url, true).await.is_ok(),
        "the right token opens the socket"
    );
}

#[actix_rt::test]
async fn without_tokens_the_upgrade_itself_is_refused_over_the_cap() {
    let h = start(quiet_script(), |c| {
        c.calls.max_concurrent_calls = 1;
        c.carrier.require_token = false;
    })
    .await;
    let first = CarrierConn::connect(&format!("{}/ws/mcube/DIRECT-1", h.gw.public_url), true)
        .await
        .expect("admitted");
    first.send_start("DIRECT-1", "d", AudioFormat::ULAW_8K);
    let log = h.sim.log.clone();
    assert!(eventually(Duration::from_secs(3), || log.connection_count() == 1).await);
    let err = CarrierConn::connect(&format!("{}/ws/mcube/DIRECT-2", h.gw.public_url), true)
        .await
        .err()
        .expect("second call refused at the upgrade");
    assert_eq!(err.status, Some(503), "{}", err.detail);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.connection_count(), 1, "no upstream dial for the refused call");
}
