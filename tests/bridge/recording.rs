//! The gateway's own recording (docs/recording.md), read back as a WAV: the caller's 440 Hz tone on the left
//! only, the agent's 1 kHz on the right only, both on the call's clock (the file as long as the call), the
//! agent's greeting cut where the caller barged in, and a span an admin paused silent on both sides; and a
//! recording the disk refuses, which its record says is incomplete while the call loses nothing; and a file
//! a crash cut short, which the next start makes playable.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::codec::encode_ulaw;
use websocket_api::audio::format::AudioFormat;
use websocket_api::audio::signal::{dominant_frequency, rms, tone};
use websocket_api::db::batcher::FlushAll;
use websocket_api::recording::wav;
use websocket_api::tools::sim::agent::AgentScript;

const RATE: usize = 8000;

/// Power of `hz` in `samples` (Goertzel), as a share of the whole signal's.
fn share_at(samples: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / RATE as f64;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    let total: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    power / (total * samples.len() as f64 / 2.0).max(1.0)
}

fn span(channel: &[i16], from_s: f64, to_s: f64) -> &[i16] {
    let (a, b) = ((from_s * RATE as f64) as usize, (to_s * RATE as f64) as usize);
    &channel[a.min(channel.len())..b.min(channel.len())]
}

/// The stored call, once it has ended and its recording's row is in (within 5 s).
async fn recorded(h: &Harness, call_id: &str) -> serde_json::Value {
    let mut stored = serde_json::Value::Null;
    for _ in 0..50 {
        let _ = h.gw.db.send(FlushAll).await;
        stored = get_json(h, &format!("/calls/{call_id}")).await.1;
        if !stored["recording"].is_null() && stored["state"] == "ended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stored
}

#[actix_rt::test]
async fn a_call_is_recorded_in_stereo_on_its_own_clock_with_the_barge_in_cut_and_the_pause_silent() {
    let dir = scratch_dir("recordings");
    let script = AgentScript {
        tone_hz: 1000.0,
        greeting_ms: 3000,
        interrupt_after_ms: 1500,
        reply_ms: 300,
        ..quiet_script()
    };
    let recordings = dir.clone();
    let h = start(script, move |c| {
        c.recording.enabled = true;
        c.recording.dir = recordings.display().to_string();
    })
    .await;
    let mut conn = start_call(&h, "REC-1", "stream-REC-1", AudioFormat::ULAW_8K).await;
    let client = awc::Client::default();
    let pause = |paused: bool| {
        client
            .post(format!("{}/calls/REC-1/recording", h.gw.admin_url))
            .send_body(format!("{{\"paused\": {paused}}}"))
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..200u64 {
        tick.tick().await;
        let mut samples = Vec::new();
        tone(440.0, 8000, i * 160, 160, 8000, &mut samples);
        let mut frame = Vec::new();
        encode_ulaw(&samples, &mut frame);
        conn.send_media(&frame);
        if i == 120 || i == 145 {
            let resp = pause(i == 120).await.expect("answers");
            assert_eq!(resp.status().as_u16(), 202);
        }
    }
    conn.close(1000);
    let _ = listen(&mut conn, Duration::from_millis(300)).await;
    let stored = recorded(&h, "REC-1").await;
    let recording = &stored["recording"];
    assert_eq!(recording["complete"], true, "{stored}");
    assert!(
        recording["paused_ms"]
            .as_i64()
            .is_some_and(|p| (400..=600).contains(&p)),
        "{recording}"
    );
    let events: Vec<&str> = stored["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["detail"].as_str()).collect())
        .unwrap_or_default();
    assert!(events.contains(&"recording paused by an admin"), "{events:?}");
    assert!(events.contains(&"recording resumed by an admin"), "{events:?}");

    let path = recording["path"].as_str().expect("a path");
    let bytes = std::fs::read(path).expect("the file");
    let mode = std::fs::metadata(path).expect("meta").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600,
        "only ours to read"
    );
    assert_eq!(wav::read_header(&bytes[..44]), Some((8000, (bytes.len() - 44) as u32)));
    assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 2, "stereo");
    let samples: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|p| i16::from_le_bytes([p[0], p[1]]))
        .collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let length_ms = (left.len() * 1000 / RATE) as i64;
    let call_ms = stored["duration_ms"].as_i64().expect("duration");
    assert!(
        (length_ms - call_ms).abs() <= 100,
        "the file is {length_ms} ms, the call {call_ms} ms"
    );
    assert_eq!(recording["duration_ms"].as_i64(), Some(length_ms));

    // Before the barge-in: the caller's tone on the left only, the agent's on the right only.
    let (l, r) = (span(&left, 0.3, 1.3), span(&right, 0.3, 1.3));
    assert!((dominant_frequency(l, 8000) - 440.0).abs() < 20.0, "left is the caller");
    assert!(
        (dominant_frequency(r, 8000) - 1000.0).abs() < 30.0,
        "right is the agent"
    );
    assert!(
        share_at(l, 1000.0) < 0.01,
        "no agent on the left: {}",
        share_at(l, 1000.0)
    );
    assert!(
        share_at(r, 440.0) < 0.01,
        "no caller on the right: {}",
        share_at(r, 440.0)
    );
    // The barge-in at 1.5 s cut the 3 s greeting: after the short answer, the right is silent where the
    // greeting would have gone on, while the caller still speaks.
    assert!(rms(span(&right, 2.1, 2.35)) < 50.0, "the greeting was cut");
    assert!(rms(span(&right, 3.05, 3.6)) < 50.0, "and stays cut");
    assert!((dominant_frequency(span(&left, 3.05, 3.6), 8000) - 440.0).abs() < 20.0);
    // Paused from frame 120 to 145 (2.4 s to 2.9 s): silent on both sides, the caller's tone around it.
    assert!(rms(span(&left, 2.5, 2.8)) < 50.0, "the pause is silent on the left");
    assert!(rms(span(&right, 2.5, 2.8)) < 50.0, "and on the right");
    assert!(rms(span(&left, 2.2, 2.35)) > 1000.0 && rms(span(&left, 3.0, 3.2)) > 1000.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_rt::test]
async fn a_recording_the_disk_refuses_is_marked_incomplete_and_the_call_loses_nothing() {
    let dir = scratch_dir("recordings-refused");
    // Where today's recordings would go is a file: the recording cannot be created.
    let year = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()[..4].to_string();
    std::fs::write(dir.join(&year), b"in the way").expect("a file in the way");
    let recordings = dir.clone();
    let h = start_echo(move |c| {
        c.recording.enabled = true;
        c.recording.dir = recordings.display().to_string();
    })
    .await;
    let mut conn = start_call(&h, "REC-2", "stream-REC-2", AudioFormat::ULAW_8K).await;
    let frames: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i.max(1); 160]).collect();
    stream_frames(&conn, &frames).await;
    let echoed = audio_of(&listen(&mut conn, Duration::from_millis(500)).await);
    assert_eq!(echoed.len(), 50 * 160, "every frame came back");
    conn.close(1000);
    let _ = listen(&mut conn, Duration::from_millis(300)).await;
    let stored = recorded(&h, "REC-2").await;
    let recording = &stored["recording"];
    assert_eq!(recording["complete"], false, "{stored}");
    assert!(
        recording["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("cannot create it")),
        "{recording}"
    );
    assert!(recording["lost_ms"].as_i64().is_some_and(|l| l >= 900), "{recording}");
    assert_eq!(stored["frames_in"], 50, "the call itself lost nothing");
    assert_eq!(h.gw.metrics.recording.incomplete.get(), 1);
    assert_eq!(h.gw.metrics.recording.failures.get(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_rt::test]
async fn a_recording_a_crash_cut_short_plays_after_the_next_start() {
    let dir = scratch_dir("recordings-crashed");
    let day = dir.join("2026/12/01/mcube");
    std::fs::create_dir_all(&day).expect("dirs");
    let cut = day.join("CRASHED-1-1.wav");
    let mut bytes = wav::header(8000, u32::MAX).to_vec();
    bytes.extend_from_slice(&[7u8; 4 * 800 + 2]);
    std::fs::write(&cut, &bytes).expect("a file as a crash leaves it");
    let recordings = dir.clone();
    let _h = start(quiet_script(), move |c| {
        c.recording.enabled = true;
        c.recording.dir = recordings.display().to_string();
    })
    .await;
    let repaired = eventually(Duration::from_secs(3), || {
        std::fs::read(&cut).is_ok_and(|b| wav::read_header(&b) == Some((8000, 3200)) && b.len() == 44 + 3200)
    })
    .await;
    assert!(
        repaired,
        "its header says the whole samples it holds, and the torn one is cut off"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
