//! Agent speech that arrives faster than real time (ElevenLabs sends a whole utterance in a few large
//! messages) reaches the carrier cut into 20 ms frames, all of it, and the end of the utterance is marked
//! with a checkpoint once the stream has gone quiet. The pace itself (no faster than real time beyond a
//! small lead) is asserted with synthetic time in `call::playout`'s tests: a reader held up by a busy
//! machine sees frames closer together than they were sent, so a timed assertion here could not be trusted.

use crate::common::*;
use std::time::{Duration, Instant};
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::Heard;

#[actix_rt::test]
async fn a_burst_reaches_the_carrier_in_20ms_frames_then_marked() {
    let script = AgentScript {
        greeting_ms: 1000,
        chunk_ms: 500,
        ..quiet_script()
    };
    let h = start(script, |_| {}).await;
    let mut conn = start_call(&h, "PACE-1", "s", AudioFormat::ULAW_8K).await;
    let t0 = Instant::now();
    let mut heard: Vec<(Instant, Heard)> = Vec::new();
    while let Some(left) = Duration::from_secs(4).checked_sub(t0.elapsed()) {
        match conn.next(left).await {
            Some(item) => heard.push(item),
            None => break,
        }
    }
    conn.close(1000);

    let frames: Vec<(Instant, usize)> = heard
        .iter()
        .filter_map(|(at, h)| match h {
            Heard::Audio(a) => Some((*at, a.len())),
            _ => None,
        })
        .collect();
    assert_eq!(frames.len(), 50, "1 s of speech in 20 ms frames");
    assert!(frames.iter().all(|(_, n)| *n == 160), "every frame is 20 ms of μ-law");
    // Two 500 ms messages arrive at once; paced, the last frame leaves about 1 s minus the lead after the
    // first. A figure to read, not to assert (see the module's comment).
    let span = frames[49].0.duration_since(frames[0].0);
    println!("1 s of speech written over {span:?}");
    let last_audio = heard
        .iter()
        .rposition(|(_, h)| matches!(h, Heard::Audio(_)))
        .expect("audio");
    assert!(
        heard[last_audio..]
            .iter()
            .any(|(_, h)| matches!(h, Heard::Checkpoint(_))),
        "the end of the utterance is marked with a checkpoint"
    );
}
