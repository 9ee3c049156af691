//! Turn latency, measured where the caller hears it: from the caller's speech falling silent to the first
//! frame of the agent's answer handed to the carrier, split into ElevenLabs' share and the gateway's. The
//! simulator answers a known delay after the silence and sends its transcript at a quarter of it, so a
//! clock started anywhere else (the transcript, the speech's start, the silence's end) misses by far more
//! than the tolerance.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;
use websocket_api::audio::codec::encode_ulaw;
use websocket_api::audio::format::AudioFormat;
use websocket_api::audio::signal::tone;
use websocket_api::tools::sim::agent::AgentScript;

const DELAY_MS: i64 = 600;
/// How far the measured turn may be from the simulator's delay plus the gateway's own hops.
const TOLERANCE_MS: i64 = 30;

/// `speech` 20 ms frames of a -20 dBFS tone, then `silence` frames of μ-law silence.
fn utterance(speech: usize, silence: usize) -> Vec<Vec<u8>> {
    let mut pcm = Vec::new();
    tone(300.0, 8000, 0, speech * 160, 3000, &mut pcm);
    let mut frames: Vec<Vec<u8>> = pcm
        .chunks(160)
        .map(|c| {
            let mut f = Vec::new();
            encode_ulaw(c, &mut f);
            f
        })
        .collect();
    frames.extend(std::iter::repeat_n(vec![0xFF; 160], silence));
    frames
}

fn ms(v: &Value) -> i64 {
    v.as_i64().unwrap_or(-1_000_000)
}

/// A histogram's sum in ms and its count in `/metrics` (`labels`: `{part="gateway"}`, or empty).
fn histogram(metrics: &str, name: &str, labels: &str) -> (i64, u64) {
    let value = |suffix: &str| {
        let prefix = format!("{name}{suffix}{labels} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    ((value("_sum") * 1000.0).round() as i64, value("_count") as u64)
}

#[actix_rt::test]
async fn a_turn_is_the_agents_delay_plus_the_gateways_hops_counted_from_the_callers_silence() {
    let script = AgentScript {
        answer_after_silence_ms: DELAY_MS as u64,
        reply_ms: 300,
        transcripts: true,
        ..quiet_script()
    };
    let h = start(script, |_| {}).await;
    let mut conn = start_call(&h, "TURN-1", "s", AudioFormat::ULAW_8K).await;
    stream_frames(&conn, &utterance(30, 60)).await;
    let heard = listen(&mut conn, Duration::from_millis(600)).await;
    assert_eq!(audio_of(&heard).len(), 8 * 300, "the answer is played in full");

    let view = call_view(&h, "TURN-1").await.expect("the call is live");
    assert_eq!(view["turns"], 1, "one answer: {view}");
    let metrics = reqwest_metrics(&h).await;
    let (gateway_ms, n) = histogram(&metrics, "wsapi_turn_latency_part_seconds", "{part=\"gateway\"}");
    assert_eq!(n, 1, "the gateway's share is measured once");
    let turn = ms(&view["turn_p50_ms"]);
    assert!(
        (turn - (DELAY_MS + gateway_ms)).abs() <= TOLERANCE_MS,
        "turn {turn} ms against the agent's {DELAY_MS} ms plus the gateway's {gateway_ms} ms"
    );
    let elevenlabs = ms(&view["turn_elevenlabs_p50_ms"]);
    assert!(
        (elevenlabs - DELAY_MS).abs() <= TOLERANCE_MS,
        "ElevenLabs' share {elevenlabs} ms against its {DELAY_MS} ms"
    );
    let (total_ms, count) = histogram(&metrics, "wsapi_turn_latency_seconds", "");
    assert_eq!(count, 1, "the histogram holds the call's one turn");
    assert!((total_ms - turn).abs() <= 1, "histogram {total_ms} ms, call {turn} ms");

    conn.close(1000);
    assert_eq!(end_reason(&h, "TURN-1").await, "carrier_hangup");
    let (_, record) = get_json(&h, "/calls/TURN-1").await;
    assert_eq!(record["turns"], 1, "the record keeps the turns: {record}");
    assert_eq!(ms(&record["turn_p50_ms"]), turn);
    assert_eq!(ms(&record["turn_p95_ms"]), turn);
}

async fn reqwest_metrics(h: &Harness) -> String {
    let mut resp = awc::Client::default()
        .get(format!("{}/metrics", h.gw.admin_url))
        .send()
        .await
        .expect("metrics");
    String::from_utf8_lossy(&resp.body().limit(16 << 20).await.expect("body")).into_owned()
}
