//! ElevenLabs `ping` events are answered with a `pong` carrying the same `event_id`.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::AgentScript;

#[actix_rt::test]
async fn every_ping_gets_a_pong_with_its_event_id() {
    let h = start(
        AgentScript {
            ping_interval_ms: 150,
            ..quiet_script()
        },
        |_| {},
    )
    .await;
    let _conn = start_call(&h, "PING-1", "s", AudioFormat::ULAW_8K).await;
    let log = h.sim.log.clone();
    let answered = eventually(Duration::from_secs(5), || {
        log.connections().first().is_some_and(|c| c.pongs.len() >= 4)
    })
    .await;
    assert!(
        answered,
        "pongs: {:?}",
        log.connections().first().map(|c| c.pongs.clone())
    );
    let c = &log.connections()[0];
    // Pongs echo the pings' ids, in order (the newest ping may still be in flight).
    assert_eq!(c.pongs[..], c.pings_sent[..c.pongs.len()]);
    assert_gateway_messages_valid(&h);
}
