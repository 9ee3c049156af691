//! Caller hang-up (close, `stop`, or a dropped socket): the ElevenLabs leg is closed with 1000, the call
//! actor stops and the slot is free again.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;

async fn hang_up_and_check(how: &str) {
    let h = start(quiet_script(), |_| {}).await;
    let id = format!("HANG-{how}");
    let conn = start_call(&h, &id, "s", AudioFormat::ULAW_8K).await;
    let log = h.sim.log.clone();
    assert!(eventually(Duration::from_secs(3), || log.connection_count() == 1).await);
    assert!(call_view(&h, &id).await.is_some());
    match how {
        "close" => conn.close(1000),
        "stop" => conn.send_text(r#"{"event":"stop","streamId":"s"}"#.into()),
        _ => drop(conn),
    }
    let closed = eventually(Duration::from_secs(3), || {
        log.connections()[0].client_close == Some(1000)
    })
    .await;
    assert!(
        closed,
        "{how}: ElevenLabs leg closed with 1000, got {:?}",
        log.connections()[0].client_close
    );
    assert!(
        active_becomes(&h, 0, Duration::from_secs(3)).await,
        "{how}: slot released"
    );
}

#[actix_rt::test]
async fn caller_close_ends_the_agent_leg() {
    hang_up_and_check("close").await;
}

#[actix_rt::test]
async fn caller_stop_event_ends_the_agent_leg() {
    hang_up_and_check("stop").await;
}

#[actix_rt::test]
async fn caller_socket_drop_ends_the_agent_leg() {
    hang_up_and_check("drop").await;
}

#[actix_rt::test]
async fn audio_sent_just_before_the_hang_up_still_reaches_the_agent() {
    let h = start(quiet_script(), |_| {}).await;
    let conn = start_call(&h, "HANG-LAST", "s", AudioFormat::ULAW_8K).await;
    let log = h.sim.log.clone();
    // Bridged first: audio from a caller who hangs up before the agent is ready has nowhere to go.
    let mut bridged = false;
    for _ in 0..60 {
        if call_view(&h, "HANG-LAST").await.is_some_and(|v| v["state"] == "active") {
            bridged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(bridged);
    for i in 0..10u8 {
        conn.send_media(&[i; 160]);
    }
    // Close and shut the socket at once, as a carrier hanging up does.
    conn.close(1000);
    // Counted in audio, not messages: the agent leg joins frames into chunks.
    let all = eventually(Duration::from_secs(3), || log.connections()[0].audio_bytes == 10 * 160).await;
    assert!(all, "bytes received: {}", log.connections()[0].audio_bytes);
    assert!(
        eventually(Duration::from_secs(3), || log.connections()[0].client_close
            == Some(1000))
        .await
    );
}

#[actix_rt::test]
async fn a_call_longer_than_the_limit_is_ended_with_max_duration() {
    let h = start(quiet_script(), |c| c.calls.max_call_seconds = 1).await;
    let mut conn = start_call(&h, "HANG-LONG", "s", AudioFormat::ULAW_8K).await;
    let heard = listen(&mut conn, Duration::from_secs(5)).await;
    assert!(
        heard.contains(&websocket_api::tools::sim::carrier::Heard::Terminate),
        "the carrier is told to hang up: {heard:?}"
    );
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await, "slot released");
    let mut record = serde_json::Value::Null;
    for _ in 0..30 {
        record = get_json(&h, "/calls/HANG-LONG").await.1;
        if record["state"] == "ended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(record["end_reason"], "max_duration", "record: {record}");
}
