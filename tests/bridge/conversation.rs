//! What the call records and relays besides audio: the conversation id and transcripts on `/calls`, DTMF as
//! a contextual update, client tool calls answered; and tolerant carrier parsing — unknown events are
//! ignored, an unreadable frame closes that one connection with 1007.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::Heard;

#[actix_rt::test]
async fn transcripts_dtmf_and_tool_calls() {
    let script = AgentScript {
        reply_after_user_ms: 200,
        reply_ms: 200,
        transcripts: true,
        tool_call_after_ms: 100,
        ..quiet_script()
    };
    let h = start(script, |_| {}).await;
    let mut conn = dial(&h, "CONV-1").await;
    // Snake_case start with the sample rate as a string, as some carriers send it.
    conn.send_text(
        r#"{"event":"start","sequence_number":"1","start":{"call_id":"CONV-1","stream_id":"s1","media_format":{"encoding":"audio/x-mulaw","sample_rate":"8000"}}}"#.into(),
    );
    conn.send_text(r#"{"event":"someFutureEvent","x":{"y":1}}"#.into());
    conn.send_text(r#"{"event":"dtmf","dtmf":{"digit":5}}"#.into());
    for _ in 0..20 {
        conn.send_media(&[0xFF; 160]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let heard = listen(&mut conn, Duration::from_millis(800)).await;
    assert!(!audio_of(&heard).is_empty(), "the agent's reply was played");

    let log = h.sim.log.clone();
    let c = &log.connections()[0];
    assert_eq!(c.contextual_updates, vec!["The caller pressed DTMF key 5".to_string()]);
    assert_eq!(c.tool_results.len(), 1, "the tool call was answered");
    let view = call_view(&h, "CONV-1").await.expect("live");
    assert_eq!(view["stream_id"], "s1");
    assert!(view["conversation_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("conv_sim_")));
    assert_eq!(view["last_user_transcript"], "hello, I am calling about my order");
    assert_eq!(view["last_agent_response"], "Sure, let me check that order for you.");
    assert_eq!(view["state"], "active");
    assert!(view["frames_in"].as_u64().is_some_and(|n| n >= 20));
    assert!(view["frames_out"].as_u64().is_some_and(|n| n > 0));
    assert_gateway_messages_valid(&h);
}

#[actix_rt::test]
async fn an_unreadable_frame_closes_only_that_call_with_1007() {
    let h = start(quiet_script(), |_| {}).await;
    let mut bad = dial(&h, "BAD-1").await;
    let _good = start_call(&h, "GOOD-1", "g", AudioFormat::ULAW_8K).await;
    bad.send_start("BAD-1", "b", AudioFormat::ULAW_8K);
    bad.send_text("{not json".into());
    let heard = listen(&mut bad, Duration::from_secs(3)).await;
    assert_eq!(heard.last(), Some(&Heard::Closed(Some(1007))));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(call_view(&h, "BAD-1").await.is_none(), "the bad call ended");
    assert!(call_view(&h, "GOOD-1").await.is_some(), "the other call is untouched");
}
