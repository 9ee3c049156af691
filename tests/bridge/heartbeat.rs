//! A peer that goes silent is detected by the heartbeat and the call ends with a reason: a silent carrier
//! ends the call (agent leg closed 1000); a hung agent is redialled within budget, then the call ends.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::Heard;

fn fast_heartbeat(c: &mut websocket_api::config::Config) {
    c.calls.heartbeat_interval_ms = 200;
    c.calls.peer_timeout_ms = 1_000;
}

#[actix_rt::test]
async fn a_silent_carrier_is_detected_and_the_call_ends() {
    let h = start(quiet_script(), fast_heartbeat).await;
    let mut conn = start_call(&h, "SILENT-CARRIER", "s", AudioFormat::ULAW_8K).await;
    // The carrier neither sends audio nor answers pings from here on.
    conn.stop_answering_pings();
    let heard = listen(&mut conn, Duration::from_secs(5)).await;
    assert_eq!(
        heard.last(),
        Some(&Heard::Closed(Some(1001))),
        "carrier closed as gone: {heard:?}"
    );
    let log = h.sim.log.clone();
    assert!(
        eventually(Duration::from_secs(2), || log.connections()[0].client_close
            == Some(1000))
        .await
    );
    let (_, calls) = get_json(&h, "/calls").await;
    assert_eq!(calls["active"], 0);
}

#[actix_rt::test]
async fn a_hung_agent_is_redialled_then_the_call_ends() {
    let h = start(
        AgentScript {
            stall_first: 100,
            ..quiet_script()
        },
        |c| {
            fast_heartbeat(c);
            c.elevenlabs.max_redials_per_call = 1;
        },
    )
    .await;
    let mut conn = start_call(&h, "HUNG-AGENT", "s", AudioFormat::ULAW_8K).await;
    // Keep the carrier alive meanwhile: it is the agent that must be found silent.
    let mut heard = Vec::new();
    for _ in 0..200 {
        conn.send_media(&[0xFF; 160]);
        if let Some((_, h)) = conn.next(Duration::from_millis(20)).await {
            let closed = matches!(h, Heard::Closed(_));
            heard.push(h);
            if closed {
                break;
            }
        }
    }
    assert!(
        heard.contains(&Heard::Terminate),
        "terminate after the agent went silent twice: {heard:?}"
    );
    assert_eq!(h.sim.log.connection_count(), 2, "one redial within the budget");
}
