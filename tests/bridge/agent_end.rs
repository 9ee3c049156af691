//! The agent ends the call (close 1000): what is queued for the carrier plays out — acknowledged by
//! `playedStream` for the last checkpoint — and only then the carrier gets `terminate` and the socket closes.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::Heard;

#[actix_rt::test]
async fn queued_audio_plays_out_before_terminate() {
    let script = AgentScript {
        end_after_ms: 300,
        goodbye_ms: 1000,
        ..quiet_script()
    };
    let h = start(script, |_| {}).await;
    let mut conn = start_call(&h, "END-1", "s", AudioFormat::ULAW_8K).await;
    let heard = listen(&mut conn, Duration::from_secs(6)).await;
    let t = heard
        .iter()
        .position(|h| *h == Heard::Terminate)
        .expect("terminate sent");
    assert_eq!(
        audio_of(&heard[..t]).len(),
        8000,
        "the whole 1 s goodbye played before terminate"
    );
    assert!(audio_of(&heard[t..]).is_empty(), "nothing after terminate");
    let cp = heard[..t]
        .iter()
        .rposition(|h| matches!(h, Heard::Checkpoint(_)))
        .expect("a checkpoint marks the end");
    assert!(
        audio_of(&heard[cp..t]).is_empty(),
        "the checkpoint follows the last audio"
    );
    assert!(
        matches!(heard.last(), Some(Heard::Closed(Some(1000)))),
        "carrier socket closed 1000: {:?}",
        heard.last()
    );
    assert!(h.sim.log.connections()[0].ended);
    assert_eq!(
        h.sim.log.connection_count(),
        1,
        "an agent that ends the call is not redialled"
    );
}
