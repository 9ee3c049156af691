//! The agent leg as the caller hears it when it drops: the redialled conversation resumes the call (the
//! conversation so far as context, no second greeting unless one is configured), the caller hears hold
//! audio meanwhile and talks to the new conversation after; a refused override is a configuration problem,
//! and the redial budget holds over the whole call.

use crate::common::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::{AgentScript, CORRECTED_REPLY, REPLY_TEXT};
use websocket_api::tools::sim::carrier::{CarrierConn, Heard};

/// 20 ms of caller speech (not silence, so it is never mistaken for hold audio).
const CALLER_FRAME: [u8; 160] = [0x55; 160];

/// Talks for `span` at real time while collecting what the caller hears, with when; then listens on
/// (quiet) until nothing more is heard, so an answer still playing is heard whole.
async fn talk(conn: &mut CarrierConn, span: Duration) -> Vec<(Instant, Heard)> {
    let t0 = Instant::now();
    let mut heard = Vec::new();
    while t0.elapsed() < span {
        conn.send_media(&CALLER_FRAME);
        let tick = Instant::now() + Duration::from_millis(20);
        while let Some(left) = tick.checked_duration_since(Instant::now()) {
            match conn.next(left).await {
                Some(h) => heard.push(h),
                None => break,
            }
        }
    }
    let quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(3) {
        let Some(h) = conn.next(Duration::from_millis(600)).await else {
            break;
        };
        let closed = matches!(h.1, Heard::Closed(_));
        heard.push(h);
        if closed {
            break;
        }
    }
    heard
}

/// A played frame of silence: hold audio, not speech.
fn is_hold(frame: &[u8]) -> bool {
    frame.iter().all(|b| *b == 0xFF)
}

/// Speech bytes heard before the first hold frame, the hold bytes, and the speech bytes after it.
fn split_at_hold(heard: &[(Instant, Heard)]) -> (usize, usize, usize) {
    let (mut before, mut hold, mut after) = (0, 0, 0);
    for (_, h) in heard {
        let Heard::Audio(frame) = h else { continue };
        match (is_hold(frame), hold > 0) {
            (true, _) => hold += frame.len(),
            (false, false) => before += frame.len(),
            (false, true) => after += frame.len(),
        }
    }
    (before, hold, after)
}

/// An agent that greets (400 ms), answers every 800 ms of caller audio (300 ms of speech with its
/// transcripts), and whose first connection drops 1.2 s into the conversation.
fn dropping_agent() -> AgentScript {
    AgentScript {
        greeting_ms: 400,
        chunk_ms: 100,
        reply_after_user_ms: 800,
        reply_ms: 300,
        transcripts: true,
        drop_first: 1,
        drop_after_ms: 1200,
        ..quiet_script()
    }
}

const GREETING_BYTES: usize = 8 * 400;
const REPLY_BYTES: usize = 8 * 300;

#[actix_rt::test]
async fn a_drop_mid_call_resumes_the_conversation_without_a_second_greeting() {
    let h = start(dropping_agent(), |_| {}).await;
    let mut conn = start_call(&h, "RESUME-1", "s", AudioFormat::ULAW_8K).await;
    let heard = talk(&mut conn, Duration::from_millis(3200)).await;
    let conns = h.sim.log.connections();
    assert_eq!(conns.len(), 2, "one redial");
    let resumed = &conns[1];
    let init = resumed
        .initiation
        .as_ref()
        .expect("the new conversation starts with the initiation");
    assert!(
        init.conversation_config_override.is_none(),
        "no override unless one is configured"
    );
    assert_eq!(init.dynamic_variables["call_id"], "RESUME-1", "the same variables");
    assert_eq!(
        resumed.contextual_updates.len(),
        1,
        "the context, once: {:?}",
        resumed.contextual_updates
    );
    let context = &resumed.contextual_updates[0];
    assert!(
        context.contains("Caller: hello, I am calling about my order")
            && context.contains(&format!("Agent: {REPLY_TEXT}")),
        "the conversation so far: {context}"
    );
    assert!(context.contains("Do not greet"), "{context}");
    assert!(
        resumed.audio_chunks > 0,
        "the caller's audio reaches the new conversation"
    );

    let (before, hold, after) = split_at_hold(&heard);
    assert!(
        before >= GREETING_BYTES + REPLY_BYTES,
        "greeting and answer before the drop: {before}"
    );
    assert!(
        hold > 0,
        "the caller heard hold audio while the agent was redialled, not dead air"
    );
    assert!(after > 0, "the new conversation's answer is heard");
    assert_eq!(
        after % REPLY_BYTES,
        0,
        "only answers after the drop ({after} bytes): the second greeting ({GREETING_BYTES}) is not played"
    );

    let view = call_view(&h, "RESUME-1").await.expect("still live");
    assert_eq!(view["state"], "active");
    assert_eq!(view["upstream_reconnects"], 1);
    let ids: Vec<String> = conns.iter().map(|c| c.index.to_string()).collect();
    assert_eq!(ids.len(), 2);
    let recorded = view["conversation_ids"].as_array().expect("a list").clone();
    assert_eq!(recorded.len(), 2, "both conversations, in order: {recorded:?}");
    assert_eq!(view["conversation_id"], recorded[1], "the current one is the last");
    assert!(
        recorded[0].as_str().is_some_and(|c| c.ends_with("_0"))
            && recorded[1].as_str().is_some_and(|c| c.ends_with("_1"))
    );
    assert_eq!(h.gw.metrics.upstream.resumed.get(), 1);
}

#[actix_rt::test]
async fn a_configured_first_message_is_sent_to_the_resumed_conversation_and_heard() {
    let h = start(dropping_agent(), |c| {
        c.elevenlabs.resume_first_message = Some("Sorry, the line dropped. Where were we?".into())
    })
    .await;
    let mut conn = start_call(&h, "RESUME-2", "s", AudioFormat::ULAW_8K).await;
    let heard = talk(&mut conn, Duration::from_millis(3000)).await;
    let conns = h.sim.log.connections();
    assert_eq!(conns.len(), 2);
    assert!(
        conns[0]
            .initiation
            .as_ref()
            .is_some_and(|i| i.conversation_config_override.is_none()),
        "the first conversation gets no override"
    );
    let over = conns[1]
        .initiation
        .as_ref()
        .and_then(|i| i.conversation_config_override.clone())
        .expect("the resumed conversation gets the override");
    assert_eq!(
        over["agent"]["first_message"],
        "Sorry, the line dropped. Where were we?"
    );
    assert_eq!(conns[1].contextual_updates.len(), 1, "and the context");
    let (_, _, after) = split_at_hold(&heard);
    assert!(
        after >= GREETING_BYTES,
        "the configured first message is played: {after} bytes"
    );
}

#[actix_rt::test]
async fn the_configured_hold_clip_is_heard_while_the_agent_is_redialled() {
    // A clip of one steady PCM level: as μ-law, every byte of it is the same.
    let dir = scratch_dir("hold-clip");
    let path = dir.join("hold.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(&path, spec).expect("wav");
    for _ in 0..800 {
        wav.write_sample(3000i16).expect("sample");
    }
    wav.finalize().expect("wav written");
    let clip_byte = websocket_api::audio::codec::linear_to_ulaw(3000);
    let h = start(dropping_agent(), |c| {
        c.elevenlabs.hold_clip = Some(path.display().to_string());
        c.elevenlabs.redial_min_spacing_ms = 1500;
        let mut problems = Vec::new();
        c.read_files(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    })
    .await;
    let mut conn = start_call(&h, "HOLD-1", "s", AudioFormat::ULAW_8K).await;
    let heard = talk(&mut conn, Duration::from_millis(3000)).await;
    let clip_frames = heard
        .iter()
        .filter(|(_, h)| matches!(h, Heard::Audio(f) if f.iter().all(|b| *b == clip_byte)))
        .count();
    assert!(
        clip_frames >= 5,
        "the clip was heard while redialling: {clip_frames} frames"
    );
    assert_eq!(h.sim.log.connection_count(), 2);
    assert!(
        heard.iter().any(|(_, h)| *h == Heard::Clear),
        "the carrier is told to drop the rest of the clip once the agent is back"
    );
}

#[actix_rt::test]
async fn a_refused_override_is_recorded_as_a_configuration_problem_and_not_retried() {
    let script = AgentScript {
        refuse_overrides: true,
        ..dropping_agent()
    };
    let h = start(script, |c| {
        c.elevenlabs.resume_first_message = Some(String::new());
        c.elevenlabs.max_redials_per_call = 3;
    })
    .await;
    let mut conn = start_call(&h, "OVERRIDE-1", "s", AudioFormat::ULAW_8K).await;
    let heard = talk(&mut conn, Duration::from_millis(2500)).await;
    assert!(
        heard.iter().any(|(_, h)| *h == Heard::Terminate),
        "the call ended: {heard:?}"
    );
    assert_eq!(
        h.sim.log.connection_count(),
        2,
        "the refused conversation is not redialled"
    );
    assert_eq!(end_reason(&h, "OVERRIDE-1").await, "elevenlabs_config_refused");
    let (_, record) = get_json(&h, "/calls/OVERRIDE-1").await;
    let error = record["error_detail"].as_str().unwrap_or_default();
    assert!(
        error.contains("elevenlabs.resume_first_message"),
        "the record names the setting: {error}"
    );
    assert_eq!(h.gw.metrics.upstream.config_refused.get(), 1);
    assert_eq!(
        h.gw.metrics.upstream.breaker_state.get(),
        0,
        "a configuration problem is not an outage"
    );
}

#[actix_rt::test]
async fn a_flapping_agent_spends_the_calls_redials_once_then_the_call_ends() {
    let script = AgentScript {
        drop_first: 100,
        drop_after_ms: 150,
        ..quiet_script()
    };
    let h = start(script, |c| {
        c.elevenlabs.max_redials_per_call = 3;
        c.elevenlabs.redial_min_spacing_ms = 400;
    })
    .await;
    let t0 = Instant::now();
    let mut conn = start_call(&h, "FLAP-1", "s", AudioFormat::ULAW_8K).await;
    let heard = talk(&mut conn, Duration::from_secs(4)).await;
    assert!(heard.iter().any(|(_, h)| *h == Heard::Terminate), "the call ended");
    assert_eq!(
        h.sim.log.connection_count(),
        4,
        "the first conversation and 3 redials, no more"
    );
    assert!(t0.elapsed() >= Duration::from_millis(3 * 400), "redials are spaced");
    assert_eq!(end_reason(&h, "FLAP-1").await, "elevenlabs_unavailable");
    let (_, record) = get_json(&h, "/calls/FLAP-1").await;
    let error = record["error_detail"].as_str().unwrap_or_default();
    assert!(
        error.contains("all 3 redials of the call spent"),
        "a clear reason: {error}"
    );
    assert_eq!(record["conversation_ids"].as_array().map(Vec::len), Some(4), "{record}");
    assert_eq!(record["upstream_reconnects"], 3);
}

#[actix_rt::test]
async fn a_correction_replaces_the_stored_agent_response() {
    let script = AgentScript {
        reply_after_user_ms: 200,
        reply_ms: 100,
        transcripts: true,
        correct_after_ms: 800,
        ..quiet_script()
    };
    let h = start(script, |_| {}).await;
    let mut conn = start_call(&h, "CORRECT-1", "s", AudioFormat::ULAW_8K).await;
    // One answer (after 200 ms of caller audio), then the caller goes quiet until the correction.
    talk(&mut conn, Duration::from_millis(300)).await;
    let mut view = Value::Null;
    let corrected = async {
        for _ in 0..40 {
            view = call_view(&h, "CORRECT-1").await.expect("live");
            if view["last_agent_response"] == CORRECTED_REPLY {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(corrected.await, "the live view reads the correction: {view}");
    // Read once the correction has been handled (it comes 800 ms into the call), not before it was sent:
    // nothing the agent sent up to then went unread.
    assert_eq!(
        h.gw.metrics.unread.agent_ignored_events.get(),
        0,
        "a correction is not an unknown event"
    );
    conn.close(1000);
    assert_eq!(end_reason(&h, "CORRECT-1").await, "carrier_hangup");
    let (_, record) = get_json(&h, "/calls/CORRECT-1").await;
    let agent_lines: Vec<&str> = record["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "agent_response")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert!(!agent_lines.is_empty(), "{record}");
    assert!(
        agent_lines.iter().all(|l| *l == CORRECTED_REPLY),
        "the stored response was replaced, not added to: {agent_lines:?}"
    );
}
