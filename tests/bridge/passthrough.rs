//! Same formats on both sides (μ-law 8 kHz ↔ `ulaw_8000`): the carrier's base64 reaches ElevenLabs
//! untouched, the agent's audio reaches the carrier byte for byte, and the first message to ElevenLabs is
//! the initiation with the caller's numbers.

use crate::common::*;
use base64::Engine as _;
use std::time::Duration;
use websocket_api::audio::codec::encode_ulaw;
use websocket_api::audio::format::AudioFormat;
use websocket_api::audio::signal::SpeechLike;
use websocket_api::protocol::elevenlabs::agent_side::{parse_client_message, ClientMessage};

fn speech_frames(n: usize) -> Vec<Vec<u8>> {
    let mut speech = SpeechLike::new(8000, 7);
    (0..n)
        .map(|_| {
            let (mut pcm, mut ulaw) = (Vec::new(), Vec::new());
            speech.next_frame(160, &mut pcm);
            encode_ulaw(&pcm, &mut ulaw);
            ulaw
        })
        .collect()
}

#[actix_rt::test]
async fn payload_bytes_identical_both_ways_and_initiation_first() {
    // By default each carrier frame leaves as it comes: the base64 strings themselves go through.
    let h = start_echo(|_| {}).await;
    let mut conn = start_call(&h, "PASS-1", "stream-PASS-1", AudioFormat::ULAW_8K).await;
    let frames = speech_frames(50);
    stream_frames(&conn, &frames).await;
    let heard = listen(&mut conn, Duration::from_millis(1500)).await;
    conn.close(1000);

    // Carrier → ElevenLabs: the exact base64 strings, in order, after the initiation.
    let conns = h.sim.log.connections();
    assert_eq!(conns.len(), 1, "one upstream connection");
    let received = &conns[0].received;
    let first = parse_client_message(&received[0]).expect("first message parses");
    let ClientMessage::Initiation(init) = first else {
        panic!("first message is not the initiation: {}", received[0])
    };
    assert_eq!(init.kind, "conversation_initiation_client_data");
    assert_eq!(init.dynamic_variables["caller_number"], "+914155551234");
    assert_eq!(init.dynamic_variables["called_number"], "+918001234567");
    assert_eq!(init.dynamic_variables["call_id"], "PASS-1");
    assert_eq!(init.dynamic_variables["direction"], "inbound");
    let sent_b64: Vec<String> = frames
        .iter()
        .map(|f| base64::engine::general_purpose::STANDARD.encode(f))
        .collect();
    let upstream = upstream_b64(&h);
    let decoded: Vec<Vec<u8>> = upstream
        .iter()
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b).expect("base64"))
        .collect();
    assert_eq!(decoded.concat(), frames.concat(), "every byte, in order");
    // Frames that queued together while the agent leg was busy (a loaded machine) may share a message;
    // a frame that came alone goes as it came, not decoded and not re-encoded.
    let alone: Vec<&String> = upstream.iter().filter(|b| b.len() == sent_b64[0].len()).collect();
    assert!(
        alone.len() >= frames.len() / 2,
        "paced frames mostly go one by one: {} of {}",
        alone.len(),
        upstream.len()
    );
    assert!(
        alone.iter().all(|b| sent_b64.contains(b)),
        "a lone frame's base64 reaches ElevenLabs untouched"
    );

    // ElevenLabs → carrier: the echoed audio, byte for byte, in 20 ms frames.
    let down = audio_of(&heard);
    assert_eq!(down, frames.concat(), "agent audio reaches the carrier byte for byte");
    assert!(heard
        .iter()
        .all(|h| !matches!(h, websocket_api::tools::sim::carrier::Heard::Audio(a) if a.len() != 160)));

    assert!(assert_gateway_messages_valid(&h) > 1 + frames.len() / 2);
}

#[actix_rt::test]
async fn binary_carrier_frames_are_bridged_too() {
    let h = start_echo(|_| {}).await;
    let mut conn = start_call(&h, "PASS-BIN", "s", AudioFormat::ULAW_8K).await;
    let frames = speech_frames(10);
    for f in &frames {
        conn.send_binary(f);
    }
    let heard = listen(&mut conn, Duration::from_millis(1200)).await;
    assert_eq!(audio_of(&heard), frames.concat());
    assert_gateway_messages_valid(&h);
}

/// The caller's audio as the agent got it: the `user_audio_chunk`s' base64, in order.
fn upstream_b64(h: &Harness) -> Vec<String> {
    h.sim.log.connections()[0]
        .received
        .iter()
        .filter_map(|t| match parse_client_message(t) {
            Ok(ClientMessage::UserAudio { audio_b64 }) => Some(audio_b64.into_owned()),
            _ => None,
        })
        .collect()
}

/// The same, decoded.
fn upstream_chunks(h: &Harness) -> Vec<Vec<u8>> {
    upstream_b64(h)
        .iter()
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b).expect("base64"))
        .collect()
}

#[actix_rt::test]
async fn caller_audio_reaches_the_agent_in_chunks_of_the_configured_length() {
    // 200 ms chunks: ten 20 ms frames each. The frames are written at once, so they all arrive well within
    // a chunk's deadline however busy the machine is.
    let h = start_echo(|c| c.elevenlabs.user_audio_chunk_ms = 200).await;
    let mut conn = start_call(&h, "PASS-CHUNK", "s", AudioFormat::ULAW_8K).await;
    let frames = speech_frames(53);
    for f in &frames {
        conn.send_media(f);
    }
    let heard = listen(&mut conn, Duration::from_millis(2500)).await;
    conn.close(1000);

    let chunks = upstream_chunks(&h);
    assert_eq!(chunks.concat(), frames.concat(), "every byte, in order");
    let lengths: Vec<usize> = chunks.iter().map(Vec::len).collect();
    // 53 frames: five whole chunks (complete chunks that queued together at the agent leg share a
    // message), then the last three frames once their chunk was due.
    let (last, whole) = lengths.split_last().expect("chunks");
    assert!(
        whole.iter().all(|n| n % 1600 == 0) && *last == 480,
        "200 ms of μ-law a chunk: {lengths:?}"
    );
    assert_eq!(audio_of(&heard), frames.concat(), "the echo comes back whole");
    assert_gateway_messages_valid(&h);
}

#[actix_rt::test]
async fn held_caller_audio_goes_before_a_later_note_to_the_agent() {
    let h = start_echo(|c| c.elevenlabs.user_audio_chunk_ms = 200).await;
    let mut conn = start_call(&h, "PASS-ORDER", "s", AudioFormat::ULAW_8K).await;
    let frames = speech_frames(2);
    for f in &frames {
        conn.send_media(f);
    }
    // A key press becomes a `contextual_update`; the two frames said before it, still waiting for the rest
    // of their chunk, go first.
    conn.send_text(r#"{"event":"dtmf","dtmf":{"digit":"5"}}"#.into());
    listen(&mut conn, Duration::from_millis(600)).await;
    conn.close(1000);

    let received = h.sim.log.connections()[0].received.clone();
    let order: Vec<String> = received
        .iter()
        .filter_map(|t| match parse_client_message(t) {
            Ok(ClientMessage::UserAudio { audio_b64 }) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(audio_b64.as_bytes())
                    .expect("base64");
                Some(format!("audio {}", raw.len()))
            }
            Ok(ClientMessage::ContextualUpdate { .. }) => Some("note".into()),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["audio 320", "note"], "in the order the caller made them");
}
