//! Agent on ElevenLabs' default `pcm_16000`: the gateway transcodes μ-law 8 kHz ↔ PCM16 16 kHz both ways,
//! and a known tone survives the round trip at the right pitch and length; so does an A-law carrier's.

use crate::common::*;
use base64::Engine as _;
use std::time::Duration;
use websocket_api::audio::codec::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};
use websocket_api::audio::format::AudioFormat;
use websocket_api::audio::signal::{dominant_frequency, tone};
use websocket_api::protocol::elevenlabs::agent_side::{parse_client_message, ClientMessage};
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::pcm_samples;

#[actix_rt::test]
async fn a_tone_survives_the_round_trip_at_pitch_and_length() {
    round_trip("pcm_16000", "pcm_16000").await;
}

#[actix_rt::test]
async fn other_rates_and_mixed_formats_round_trip_too() {
    round_trip("pcm_16000", "pcm_24000").await;
    round_trip("pcm_8000", "pcm_44100").await;
    round_trip("pcm_48000", "ulaw_8000").await;
}

/// One second of 1 kHz at 8 kHz in 50 frames of 20 ms, encoded by `encode`.
fn one_second_of_tone(encode: fn(&[i16], &mut Vec<u8>)) -> Vec<Vec<u8>> {
    (0..50u64)
        .map(|i| {
            let (mut pcm, mut frame) = (Vec::new(), Vec::new());
            tone(1000.0, 8000, i * 160, 160, 12000, &mut pcm);
            encode(&pcm, &mut frame);
            frame
        })
        .collect()
}

/// The caller audio the agent's first connection received, decoded.
fn heard_by_the_agent(h: &Harness) -> Vec<u8> {
    h.sim.log.connections()[0]
        .received
        .iter()
        .filter_map(|t| match parse_client_message(t) {
            Ok(ClientMessage::UserAudio { audio_b64 }) => base64::engine::general_purpose::STANDARD
                .decode(audio_b64.as_bytes())
                .ok(),
            _ => None,
        })
        .flatten()
        .collect()
}

async fn round_trip(input: &str, output: &str) {
    let script = AgentScript {
        input_format: input.into(),
        output_format: output.into(),
        echo: true,
        ..quiet_script()
    };
    let in_rate = AudioFormat::from_elevenlabs(input).expect("known format").rate.hz() as usize;
    let h = start(script, |_| {}).await;
    let mut conn = start_call(&h, "PCM-1", "s", AudioFormat::ULAW_8K).await;
    let frames = one_second_of_tone(encode_ulaw);
    stream_frames(&conn, &frames).await;
    let heard = listen(&mut conn, Duration::from_millis(1500)).await;

    // What ElevenLabs received: PCM16 at 16 kHz, 1 kHz, one second long.
    let upstream = heard_by_the_agent(&h);
    let wide = pcm_samples(&upstream);
    let n = wide.len() as i64;
    assert!((n - in_rate as i64).abs() <= 16, "{input}: samples at ElevenLabs: {n}");
    let f_up = dominant_frequency(&wide[in_rate / 10..in_rate * 9 / 10], in_rate as u32);
    assert!((f_up - 1000.0).abs() < 15.0, "{input}: pitch at ElevenLabs: {f_up}");

    // What the carrier heard back: μ-law 8 kHz, 1 kHz, one second long, in 160-byte frames.
    let down = audio_of(&heard);
    assert!(
        (down.len() as i64 - 8000).abs() <= 16,
        "{output}: 8 kHz samples back: {}",
        down.len()
    );
    let mut pcm = Vec::new();
    decode_ulaw(&down, &mut pcm);
    let f_down = dominant_frequency(&pcm[800..7200], 8000);
    assert!(
        (f_down - 1000.0).abs() < 15.0,
        "{output}: pitch at the carrier: {f_down}"
    );
    assert_gateway_messages_valid(&h);
}

#[actix_rt::test]
async fn an_alaw_carrier_is_transcoded_to_and_from_the_agent() {
    // ElevenLabs offers no A-law: a PCMA carrier (common in India and Europe) is bridged to a μ-law agent.
    let script = AgentScript {
        echo: true,
        ..quiet_script()
    };
    let h = start(script, |_| {}).await;
    let mut conn = start_call(&h, "ALAW-1", "s", AudioFormat::ALAW_8K).await;
    let frames = one_second_of_tone(encode_alaw);
    stream_frames(&conn, &frames).await;
    let heard = listen(&mut conn, Duration::from_millis(1500)).await;
    let upstream = heard_by_the_agent(&h);
    assert_eq!(upstream.len(), 8000, "one second of μ-law reached the agent");
    let mut pcm = Vec::new();
    decode_ulaw(&upstream, &mut pcm);
    let f_up = dominant_frequency(&pcm[800..7200], 8000);
    assert!((f_up - 1000.0).abs() < 15.0, "pitch at ElevenLabs: {f_up}");
    let down = audio_of(&heard);
    assert_eq!(down.len(), 8000, "one second of A-law back at the carrier");
    let mut back = Vec::new();
    decode_alaw(&down, &mut back);
    let f_down = dominant_frequency(&back[800..7200], 8000);
    assert!((f_down - 1000.0).abs() < 15.0, "pitch at the carrier: {f_down}");
    let (_, view) = get_json(&h, "/calls/ALAW-1").await;
    assert_eq!(view["carrier_format"], "alaw_8000", "{view}");
}

/// The amplitude of `freq` in `samples`, in dB of full scale: a Hann-windowed DFT at exactly that frequency.
fn level_db(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let n = samples.len().max(2) as f64;
    let (mut re, mut im, mut window_sum) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &s) in samples.iter().enumerate() {
        let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / (n - 1.0)).cos();
        let phase = std::f64::consts::TAU * freq * i as f64 / f64::from(rate);
        re += w * f64::from(s) * phase.cos();
        im -= w * f64::from(s) * phase.sin();
        window_sum += w;
    }
    let amplitude = 2.0 * (re * re + im * im).sqrt() / window_sum;
    20.0 * (amplitude / 32768.0).max(1e-12).log10()
}

/// The middle 80 % of `samples`: the resampler's start and the stream's end left out.
fn middle(samples: &[i16]) -> &[i16] {
    &samples[samples.len() / 10..samples.len() * 9 / 10]
}

#[actix_rt::test]
async fn caller_tones_reach_a_16_khz_agent_flat_and_without_images() {
    for f in [300.0, 1000.0, 3400.0] {
        let h = start(quiet_script_at("pcm_16000", 0.0), |_| {}).await;
        let mut conn = start_call(&h, "TONE-UP", "s", AudioFormat::ULAW_8K).await;
        let frames: Vec<Vec<u8>> = (0..50u64)
            .map(|i| {
                let (mut pcm, mut frame) = (Vec::new(), Vec::new());
                tone(f as f32, 8000, i * 160, 160, 12000, &mut pcm);
                encode_ulaw(&pcm, &mut frame);
                frame
            })
            .collect();
        stream_frames(&conn, &frames).await;
        listen(&mut conn, Duration::from_millis(300)).await;
        let mut sent = Vec::new();
        decode_ulaw(&frames.concat(), &mut sent);
        let sent_db = level_db(middle(&sent), 8000, f);
        let wide = pcm_samples(&heard_by_the_agent(&h));
        let got_db = level_db(middle(&wide), 16000, f);
        assert!(
            (got_db - sent_db).abs() <= 1.0,
            "{f} Hz: {sent_db:.2} dB sent, {got_db:.2} dB at the agent"
        );
        let image_db = level_db(middle(&wide), 16000, 8000.0 - f) - sent_db;
        assert!(
            image_db <= -60.0,
            "{f} Hz: its image at {} Hz is only {image_db:.1} dB down",
            8000.0 - f
        );
    }
}

#[actix_rt::test]
async fn agent_tones_reach_an_8_khz_carrier_flat_and_without_aliases() {
    // The simulator speaks a 1 s tone at amplitude 8000 (-12.3 dBFS) at 16 kHz; the carrier hears μ-law.
    let spoken_db = 20.0 * (8000.0f64 / 32768.0).log10();
    for f in [1000.0, 3400.0, 5000.0, 6000.0] {
        let h = start(quiet_script_at("pcm_16000", f as f32), |_| {}).await;
        let mut conn = start_call(&h, "TONE-DOWN", "s", AudioFormat::ULAW_8K).await;
        let mut pcm = Vec::new();
        decode_ulaw(
            &audio_of(&listen(&mut conn, Duration::from_millis(1500)).await),
            &mut pcm,
        );
        assert!(pcm.len() >= 7000, "{f} Hz: {} samples heard", pcm.len());
        if f < 4000.0 {
            let got_db = level_db(middle(&pcm), 8000, f);
            assert!(
                (got_db - spoken_db).abs() <= 1.0,
                "{f} Hz: {got_db:.2} dB at the carrier"
            );
        } else {
            let alias_db = level_db(middle(&pcm), 8000, 8000.0 - f) - spoken_db;
            assert!(
                alias_db <= -60.0,
                "{f} Hz folds to {} Hz only {alias_db:.1} dB down",
                8000.0 - f
            );
        }
    }
}

/// A quiet agent on `format` both ways that greets with 1 s of a `tone_hz` tone (0: no greeting).
fn quiet_script_at(format: &str, tone_hz: f32) -> AgentScript {
    AgentScript {
        input_format: format.into(),
        output_format: format.into(),
        greeting_ms: if tone_hz > 0.0 { 1000 } else { 0 },
        tone_hz,
        ..quiet_script()
    }
}
