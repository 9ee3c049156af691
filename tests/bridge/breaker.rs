//! The upstream breaker over real sockets: ElevenLabs refusing every conversation (429, a quota or
//! concurrency limit) opens it after the threshold — new calls refused at the refurl with 503
//! `upstream_unavailable` and `Retry-After`, `/readyz` 503 with the reason — and after the cool-down one
//! probe call goes through, whose conversation starting closes it.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{post_refurl, Admission};

async fn refurl(h: &Harness, id: &str) -> Admission {
    post_refurl(&h.gw.http_url, &call(id)).await.expect("refurl answers")
}

/// A call that is admitted, whose agent leg fails, and that ends.
async fn failing_call(h: &Harness, id: &str) {
    let _conn = start_call(h, id, "s", AudioFormat::ULAW_8K).await;
    assert_eq!(end_reason(h, id).await, "elevenlabs_unavailable", "{id}");
}

#[actix_rt::test]
async fn the_breaker_opens_refuses_new_calls_lets_one_probe_through_and_closes_on_its_success() {
    let script = AgentScript {
        refuse_first: 3,
        refuse_status: 429,
        greeting_ms: 200,
        ..quiet_script()
    };
    let h = start(script, |c| {
        c.elevenlabs.max_redials_per_call = 0;
        c.elevenlabs.breaker_failures = 3;
        c.elevenlabs.breaker_window_ms = 30_000;
        c.elevenlabs.breaker_cooldown_ms = 3_000;
    })
    .await;
    failing_call(&h, "BRK-1").await;
    failing_call(&h, "BRK-2").await;
    let (status, _) = get_json(&h, "/readyz").await;
    assert_eq!(
        status, 200,
        "two failures are under the threshold: a single bad call goes unnoticed"
    );
    failing_call(&h, "BRK-3").await;
    assert_eq!(h.gw.metrics.upstream.breaker_opened.get(), 1);

    match refurl(&h, "BRK-4").await {
        Admission::Refused {
            status,
            retry_after,
            error,
        } => {
            assert_eq!((status, error.as_str()), (503, "upstream_unavailable"));
            let wait: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
            assert!((1..=3).contains(&wait), "the cool-down left: {wait}");
        }
        other => panic!("admitted with the breaker open: {other:?}"),
    }
    let (status, ready) = get_json(&h, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(ready["upstream"]["breaker"], "open");
    assert!(
        ready["upstream"]["reason"].as_str().is_some_and(|r| r.contains("429")),
        "the reason: {ready}"
    );
    assert_eq!(
        end_reason(&h, "BRK-4").await,
        "upstream_unavailable",
        "the refusal is recorded"
    );

    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let probe = refurl(&h, "BRK-5").await;
    let Admission::Admitted { wss_url } = probe else {
        panic!("no probe after the cool-down: {probe:?}")
    };
    assert!(
        matches!(refurl(&h, "BRK-6").await, Admission::Refused { status: 503, .. }),
        "one probe at a time"
    );
    let conn = websocket_api::tools::sim::carrier::CarrierConn::connect(&wss_url, true)
        .await
        .expect("probe's socket");
    conn.send_start("BRK-5", "s", AudioFormat::ULAW_8K);
    assert!(
        eventually(Duration::from_secs(5), || h.gw.metrics.upstream.breaker_state.get()
            == 0)
        .await,
        "the probe's conversation started: closed"
    );
    let (status, _) = get_json(&h, "/readyz").await;
    assert_eq!(status, 200);
    assert!(matches!(refurl(&h, "BRK-7").await, Admission::Admitted { .. }));
    assert!(
        call_view(&h, "BRK-5").await.is_some_and(|v| v["state"] == "active"),
        "the probe call goes on"
    );
}
