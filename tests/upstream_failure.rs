//! ElevenLabs unreachable, refusing, or dropping mid-call: the call reconnects within its budget (keeping the
//! carrier leg), and past the budget the carrier gets `terminate` and the call ends.
mod common;

use common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::sim::agent::AgentScript;
use websocket_api::sim::carrier::Heard;

#[actix_rt::test]
async fn a_drop_within_budget_reconnects_and_the_call_goes_on() {
    let script = AgentScript {
        drop_first: 1,
        drop_after_ms: 300,
        greeting_ms: 400,
        ..quiet_script()
    };
    let h = start(script, |_| {}).await;
    let mut conn = dial(&h, "RECON-1").await;
    conn.send_start("RECON-1", "s", AudioFormat::ULAW_8K);
    let heard = listen(&mut conn, Duration::from_millis(2500)).await;
    assert_eq!(h.sim.log.connection_count(), 2, "one reconnect");
    assert!(
        !heard.iter().any(|h| matches!(h, Heard::Terminate | Heard::Closed(_))),
        "the carrier leg stayed up"
    );
    // Both greetings (before and after the drop) played.
    assert_eq!(audio_of(&heard).len(), 2 * 8 * 400);
    let view = call_view(&h, "RECON-1").await.expect("still live");
    assert_eq!(view["upstream_reconnects"], 1);
    assert_eq!(view["state"], "active");
    let conns = h.sim.log.connections();
    assert!(
        conns[1].initiation.is_some(),
        "the new connection starts with the initiation"
    );
    assert_gateway_messages_valid(&h);
}

async fn expect_terminate(h: &Harness, id: &str) -> Vec<Heard> {
    let mut conn = dial(h, id).await;
    conn.send_start(id, "s", AudioFormat::ULAW_8K);
    let heard = listen(&mut conn, Duration::from_secs(8)).await;
    let t = heard
        .iter()
        .position(|h| *h == Heard::Terminate)
        .expect("terminate sent to the carrier");
    assert!(
        matches!(heard.get(t + 1), Some(Heard::Closed(_))),
        "then the carrier socket closed: {heard:?}"
    );
    heard
}

#[actix_rt::test]
async fn drops_past_the_budget_terminate_the_call() {
    let script = AgentScript {
        drop_first: 100,
        drop_after_ms: 100,
        ..quiet_script()
    };
    let h = start(script, |c| {
        c.elevenlabs.reconnect_attempts = 2;
        c.elevenlabs.reconnect_window_ms = 5_000;
    })
    .await;
    expect_terminate(&h, "RECON-2").await;
    assert_eq!(
        h.sim.log.connection_count(),
        3,
        "first connection + 2 reconnects, then give up"
    );
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await, "slot released");
}

#[actix_rt::test]
async fn refused_upgrades_past_the_budget_terminate_the_call() {
    let script = AgentScript {
        refuse_first: 100,
        ..quiet_script()
    };
    let h = start(script, |c| c.elevenlabs.reconnect_attempts = 2).await;
    expect_terminate(&h, "REFUSED-1").await;
    assert_eq!(h.sim.log.upgrades_refused(), 3);
    assert_eq!(h.sim.log.connection_count(), 0);
}

#[actix_rt::test]
async fn unreachable_elevenlabs_terminates_the_call() {
    let h = start(quiet_script(), |c| {
        // A port nothing listens on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        c.elevenlabs.url = format!("ws://{}/v1/convai/conversation", l.local_addr().expect("addr"));
        drop(l);
    })
    .await;
    expect_terminate(&h, "DEAD-1").await;
}

#[actix_rt::test]
async fn an_error_close_is_retried_then_the_call_ends() {
    let script = AgentScript {
        drop_first: 100,
        drop_after_ms: 100,
        fail_with_code: Some(1011),
        ..quiet_script()
    };
    let h = start(script, |c| c.elevenlabs.reconnect_attempts = 1).await;
    expect_terminate(&h, "ERR-1011").await;
    assert_eq!(
        h.sim.log.connection_count(),
        2,
        "one retry after an internal error (1011)"
    );
}

#[actix_rt::test]
async fn a_policy_close_is_not_retried() {
    let script = AgentScript {
        drop_first: 100,
        drop_after_ms: 100,
        fail_with_code: Some(1008),
        ..quiet_script()
    };
    let h = start(script, |c| c.elevenlabs.reconnect_attempts = 2).await;
    expect_terminate(&h, "ERR-1008").await;
    assert_eq!(
        h.sim.log.connection_count(),
        1,
        "a refused conversation (1008) is not redialled"
    );
}

#[actix_rt::test]
async fn an_agent_format_we_cannot_serve_ends_the_call() {
    let script = AgentScript {
        output_format: "mp3_44100_128".into(),
        ..quiet_script()
    };
    let h = start(script, |c| c.elevenlabs.reconnect_attempts = 2).await;
    expect_terminate(&h, "FMT-1").await;
    assert_eq!(h.sim.log.connection_count(), 1, "a format mismatch is not retried");
    assert_eq!(end_reason(&h, "FMT-1").await, "elevenlabs_bad_format");
}

#[actix_rt::test]
async fn an_upgrade_that_never_comes_times_out_then_the_call_ends() {
    // Accepts TCP connections and never answers the upgrade.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let h = start(quiet_script(), |c| {
        c.elevenlabs.url = format!("ws://{addr}/v1/convai/conversation");
        c.elevenlabs.connect_timeout_ms = 300;
        c.elevenlabs.reconnect_attempts = 1;
    })
    .await;
    let t0 = std::time::Instant::now();
    expect_terminate(&h, "NO101-1").await;
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "detected within the connect timeouts"
    );
    assert_eq!(end_reason(&h, "NO101-1").await, "elevenlabs_unavailable");
}

#[actix_rt::test]
async fn an_agent_frame_over_the_limit_is_refused_and_redialled() {
    // The greeting arrives as one 2 s message (~21 KB of JSON), over the 8 KiB limit set below.
    let script = AgentScript {
        greeting_ms: 2000,
        chunk_ms: 2000,
        ..quiet_script()
    };
    let h = start(script, |c| {
        c.elevenlabs.max_frame_bytes = 8192;
        c.elevenlabs.reconnect_attempts = 1;
    })
    .await;
    let heard = expect_terminate(&h, "BIG-1").await;
    assert!(
        audio_of(&heard).is_empty(),
        "nothing of the oversized message was played"
    );
    assert_eq!(h.sim.log.connection_count(), 2, "one redial, then the call ends");
    assert_eq!(end_reason(&h, "BIG-1").await, "elevenlabs_unavailable");
}
