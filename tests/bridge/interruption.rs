//! Barge-in: an `interruption` drops what is queued for the carrier, sends `clearAudio`, and any later
//! agent audio with an event id up to the interruption's is never played.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::{AgentScript, STALE_MARKER};
use websocket_api::tools::sim::carrier::Heard;

#[actix_rt::test]
async fn interruption_clears_the_carrier_and_drops_stale_audio() {
    // 3 s of greeting arrives at once; the agent is interrupted 500 ms in, then sends a stale chunk and
    // 400 ms of fresh speech.
    let script = AgentScript {
        greeting_ms: 3000,
        interrupt_after_ms: 500,
        reply_ms: 400,
        ..quiet_script()
    };
    let h = start(script, |_| {}).await;
    let mut conn = start_call(&h, "BARGE-1", "s", AudioFormat::ULAW_8K).await;
    let heard = listen(&mut conn, Duration::from_millis(2500)).await;

    let clear_at = heard
        .iter()
        .position(|h| *h == Heard::Clear)
        .expect("clearAudio sent to the carrier");
    let before = audio_of(&heard[..clear_at]).len();
    let after = &heard[clear_at..];
    // 3000 ms were queued; only what played before the barge-in (~500 ms) may reach the carrier.
    assert!(
        before < 8 * 1500,
        "{before} bytes played before the clear: the queue was not dropped"
    );
    assert!(before > 0, "some greeting played before the interruption");
    for h in after {
        if let Heard::Audio(a) = h {
            assert!(
                !a.iter().all(|b| *b == STALE_MARKER),
                "stale audio played after the interruption"
            );
        }
    }
    let fresh = audio_of(after).len();
    assert_eq!(fresh, 8 * 400, "the fresh speech after the interruption plays in full");
    let view = call_view(&h, "BARGE-1").await.expect("call is live");
    assert_eq!(view["interruptions"], 1);
    assert_gateway_messages_valid(&h);
}
