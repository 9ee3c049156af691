//! ElevenLabs unreachable, refusing, or dropping mid-call: the call redials within its budget (keeping the
//! carrier leg; resume.rs has what the caller hears), and past the budget the carrier gets `terminate` and
//! the call ends.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::Heard;

async fn expect_terminate(h: &Harness, id: &str) -> Vec<Heard> {
    let mut conn = start_call(h, id, "s", AudioFormat::ULAW_8K).await;
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
async fn refused_upgrades_past_the_budget_terminate_the_call() {
    let script = AgentScript {
        refuse_first: 100,
        ..quiet_script()
    };
    let h = start(script, |c| c.elevenlabs.max_redials_per_call = 2).await;
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

/// The agent sends an `error` event and closes with `code`, on every connection.
async fn failing_agent_ends_the_call(code: u16) {
    let script = AgentScript {
        drop_first: 100,
        drop_after_ms: 100,
        fail_with_code: Some(code),
        ..quiet_script()
    };
    let h = start(script, |c| c.elevenlabs.max_redials_per_call = 1).await;
    let id = format!("ERR-{code}");
    expect_terminate(&h, &id).await;
    assert_eq!(h.sim.log.connection_count(), 2, "one retry after close {code}");
    assert_eq!(end_reason(&h, &id).await, "elevenlabs_unavailable");
}

#[actix_rt::test]
async fn an_error_close_is_retried_then_the_call_ends() {
    failing_agent_ends_the_call(1011).await;
}

#[actix_rt::test]
async fn a_protocol_error_close_is_retried_then_the_call_ends() {
    failing_agent_ends_the_call(1002).await;
}

#[actix_rt::test]
async fn a_policy_close_is_not_retried() {
    let script = AgentScript {
        drop_first: 100,
        drop_after_ms: 100,
        fail_with_code: Some(1008),
        ..quiet_script()
    };
    let h = start(script, |c| c.elevenlabs.max_redials_per_call = 2).await;
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
    let h = start(script, |c| c.elevenlabs.max_redials_per_call = 2).await;
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
        c.elevenlabs.max_redials_per_call = 1;
    })
    .await;
    // Detected by the short connect timeout: with the 5 s default, two attempts would not end the call
    // within `expect_terminate`'s listening window.
    expect_terminate(&h, "NO101-1").await;
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
        c.elevenlabs.max_redials_per_call = 1;
    })
    .await;
    let heard = expect_terminate(&h, "BIG-1").await;
    assert!(
        audio_of(&heard).iter().all(|b| *b == 0xFF),
        "nothing of the oversized message was played (only hold silence while redialling)"
    );
    assert_eq!(h.sim.log.connection_count(), 2, "one redial, then the call ends");
    assert_eq!(end_reason(&h, "BIG-1").await, "elevenlabs_unavailable");
}

/// A hand-made agent that completes the upgrade, announces μ-law, sends `script`, then keeps talking
/// (pings) and never reads again. Its receive buffer is small, so what the gateway sends backs up quickly.
async fn raw_agent(script: Vec<String>) -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small receive buffer");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let listener = socket.listen(16).expect("listen");
    let addr = listener.local_addr().expect("addr");
    actix_rt::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let script = script.clone();
            actix_rt::spawn(async move {
                if !accept_ws_upgrade(&mut s).await {
                    return;
                }
                let metadata = r#"{"type":"conversation_initiation_metadata","conversation_initiation_metadata_event":{"conversation_id":"deaf","agent_output_audio_format":"ulaw_8000","user_input_audio_format":"ulaw_8000"}}"#;
                if s.write_all(&server_text(metadata)).await.is_err() {
                    return;
                }
                for text in &script {
                    if s.write_all(&server_text(text)).await.is_err() {
                        return;
                    }
                }
                for id in 1.. {
                    let ping = format!(r#"{{"type":"ping","ping_event":{{"event_id":{id}}}}}"#);
                    if s.write_all(&server_text(&ping)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
    });
    addr
}

#[actix_rt::test]
async fn an_agent_that_stops_reading_is_dropped_and_the_call_ends() {
    let addr = raw_agent(Vec::new()).await;
    let h = start(quiet_script(), |c| {
        c.elevenlabs.url = format!("ws://{addr}/v1/convai/conversation");
        c.elevenlabs.send_timeout_ms = 2000;
        c.elevenlabs.max_redials_per_call = 0;
    })
    .await;
    let mut conn = start_call(&h, "DEAF-AGENT", "s", AudioFormat::ULAW_8K).await;
    // The caller talks; the agent reads none of it (nor the pongs to its pings).
    let t0 = std::time::Instant::now();
    let mut terminated = false;
    while t0.elapsed() < Duration::from_secs(25) && !terminated {
        conn.send_media(&[0xD5u8; 160]);
        while let Some((_, heard)) = conn.next(Duration::from_millis(20)).await {
            terminated |= heard == Heard::Terminate;
        }
    }
    assert!(terminated, "the call was not ended");
    assert_eq!(end_reason(&h, "DEAF-AGENT").await, "elevenlabs_unavailable");
}

#[actix_rt::test]
async fn malformed_and_unknown_agent_messages_are_skipped_and_counted() {
    use base64::Engine as _;
    let good = base64::engine::general_purpose::STANDARD.encode([0x55u8; 160]);
    let script = vec![
        "not json at all".to_string(),
        r#"{"type":"a_future_event","a_future_event":{}}"#.to_string(),
        // Schema messages deliberately unused: not counted as unknown.
        r#"{"type":"vad_score","vad_score_event":{"vad_score":0.5}}"#.to_string(),
        r#"{"type":"tentative_user_transcript","tentative_user_transcription_event":{"user_transcript":"he","event_id":1}}"#.to_string(),
        r#"{"type":"internal_tentative_agent_response","tentative_agent_response_internal_event":{"tentative_agent_response":"x"}}"#.to_string(),
        r#"{"type":"audio","audio_event":{"audio_base_64":"!!not base64!!","event_id":1}}"#.to_string(),
        format!(r#"{{"type":"audio","audio_event":{{"audio_base_64":"{good}","event_id":2}}}}"#),
    ];
    let addr = raw_agent(script).await;
    let h = start(quiet_script(), |c| {
        c.elevenlabs.url = format!("ws://{addr}/v1/convai/conversation")
    })
    .await;
    let mut conn = start_call(&h, "JUNK-1", "s", AudioFormat::ULAW_8K).await;
    let heard = listen(&mut conn, Duration::from_millis(800)).await;
    assert_eq!(
        audio_of(&heard),
        vec![0x55u8; 160],
        "the good audio is played, the rest skipped"
    );
    assert!(call_view(&h, "JUNK-1").await.is_some(), "the call goes on");
    assert_eq!(
        h.gw.metrics.unread.agent_bad_messages.get(),
        2,
        "unreadable JSON and bad base64"
    );
    assert_eq!(
        h.gw.metrics.unread.agent_ignored_events.get(),
        1,
        "the unknown event is counted; the schema's unused ones are not"
    );
}

#[actix_rt::test]
async fn an_upgrade_without_metadata_times_out_then_the_call_ends() {
    // The agent accepts the WebSocket but announces nothing for 10 s.
    let script = AgentScript {
        metadata_delay_ms: 10_000,
        ..quiet_script()
    };
    let h = start(script, |c| {
        c.elevenlabs.connect_timeout_ms = 1000;
        c.elevenlabs.metadata_timeout_ms = 300;
        c.elevenlabs.max_redials_per_call = 1;
    })
    .await;
    // Detected by the short metadata timeout: with the 5 s default, two attempts would not end the call
    // within `expect_terminate`'s listening window.
    expect_terminate(&h, "NOMETA-1").await;
    assert_eq!(h.sim.log.connection_count(), 2, "one redial, then the call ends");
    assert_eq!(end_reason(&h, "NOMETA-1").await, "elevenlabs_unavailable");
}

#[actix_rt::test]
async fn a_call_that_ends_while_its_agent_is_dialled_still_closes_it_with_1000() {
    // The agent answers the upgrade 600 ms after it arrives; the caller hangs up in between. The answer that
    // comes after the call ended is closed with 1000 like every connection we end, not dropped.
    let script = AgentScript {
        upgrade_delay_ms: 600,
        ..quiet_script()
    };
    let h = start(script, |_| {}).await;
    let conn = start_call(&h, "DIALLING-1", "s", AudioFormat::ULAW_8K).await;
    let log = h.sim.log.clone();
    assert!(eventually(Duration::from_secs(3), || log.connection_count() == 1).await);
    conn.close(1000);
    assert!(
        eventually(Duration::from_secs(5), || log.connections()[0].client_close
            == Some(1000))
        .await,
        "the late answer is closed with 1000: {:?}",
        log.connections()[0].client_close
    );
    assert!(active_becomes(&h, 0, Duration::from_secs(5)).await, "slot released");
    assert_eq!(end_reason(&h, "DIALLING-1").await, "carrier_hangup");
}
