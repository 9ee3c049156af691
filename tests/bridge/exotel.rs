//! Exotel's Voicebot applet over real sockets: the dynamic URL behind Basic auth, then a call bridged over
//! the stream in Exotel's own messages — raw PCM16 both ways in whole 320-byte blocks of at least 3.2 KB,
//! `mark` round trips, `clear` on barge-in, DTMF, hang-up both ways (no terminate: the socket closes) — and
//! a refusal at the cap, recorded as Exotel's.

use crate::common::*;
use base64::Engine as _;
use std::time::Duration;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{CallRequest, CarrierConn, Heard};
use websocket_api::tools::sim::dialects::{
    exotel_dtmf_event, exotel_media_event, exotel_start_event, exotel_stop_event, get_exotel_voicebot,
};

const USER: &str = "exotel-user";
const PASSWORD: &str = "exotel-password";

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// An agent speaking raw PCM16 at 8 kHz both ways, as Exotel's own bridge sets it.
fn pcm_agent(script: AgentScript) -> AgentScript {
    AgentScript {
        input_format: "pcm_8000".into(),
        output_format: "pcm_8000".into(),
        ..script
    }
}

async fn exotel_gateway(script: AgentScript, max_calls: usize) -> Harness {
    start(pcm_agent(script), |c| {
        c.carriers.exotel.username = USER.into();
        c.carriers.exotel.password = Some(PASSWORD.into());
        c.calls.max_concurrent_calls = max_calls;
    })
    .await
}

/// Asks for call `id`'s stream, opens it with the applet's credentials and sends Exotel's `start`.
async fn exotel_call(h: &Harness, id: &str) -> CarrierConn {
    exotel_call_at(h, id, None).await
}

/// `exotel_call`, the applet's URL asking for `rate` (Exotel's `start` then says it).
async fn exotel_call_at(h: &Harness, id: &str, rate: Option<u32>) -> CarrierConn {
    let auth = basic(USER, PASSWORD);
    let (status, answer) = get_exotel_voicebot(&h.gw.http_url, &CallRequest::inbound(id), Some(&auth), rate)
        .await
        .expect("the dynamic URL answers");
    assert_eq!(status, 200, "{answer}");
    let url = answer["url"].as_str().expect("a wss url").to_string();
    let conn = CarrierConn::connect_as(&url, true, Some(&auth))
        .await
        .expect("the stream opens");
    conn.send_text(r#"{"event":"connected"}"#.into());
    if let Some(hz) = rate {
        assert!(url.ends_with(&format!("&sample-rate={hz}")), "{url}");
    }
    conn.send_text(exotel_start_event(id, "MZ-sim-1", rate.unwrap_or(8000)));
    conn
}

#[actix_rt::test]
async fn the_dynamic_url_needs_the_applets_credentials_and_names_the_calls_stream() {
    let h = exotel_gateway(quiet_script(), 10).await;
    let good = basic(USER, PASSWORD);
    let (status, answer) = get_exotel_voicebot(&h.gw.http_url, &CallRequest::inbound("EXO-SID-1"), Some(&good), None)
        .await
        .expect("answers");
    assert_eq!(status, 200);
    let url = answer["url"].as_str().expect("url");
    assert!(
        url.starts_with(&format!("{}/ws/exotel/EXO-SID-1?token=", h.gw.public_url)),
        "{url}"
    );
    let forged = basic(USER, "guess");
    for (label, auth) in [("missing", None), ("forged", Some(forged.as_str()))] {
        let (status, _) = get_exotel_voicebot(&h.gw.http_url, &CallRequest::inbound("EXO-SID-2"), auth, None)
            .await
            .expect("answers");
        assert_eq!(status, 401, "{label} credentials");
    }
    let (status, _) = get_exotel_voicebot(&h.gw.http_url, &CallRequest::inbound("EXO-SID-1"), None, None)
        .await
        .expect("answers");
    assert_eq!(status, 401);
    let refused = CarrierConn::connect_as(url, true, None).await.err().expect("refused");
    assert_eq!(refused.status, Some(401), "the stream needs the credentials too");
    let around = url.replacen("/ws/exotel/", "/ws/mcube/", 1);
    let refused = CarrierConn::connect_as(&around, true, None)
        .await
        .err()
        .expect("refused");
    assert_eq!(
        refused.status,
        Some(401),
        "an Exotel call's token opens Exotel's socket only"
    );
    let (status, _) = get_json(&h, "/calls/EXO-SID-2").await;
    assert_eq!(status, 404, "an unauthenticated request leaves no record");
}

#[actix_rt::test]
async fn an_exotel_call_bridges_pcm16_in_exotels_framing_with_marks_barge_in_and_dtmf() {
    let script = AgentScript {
        echo: true,
        interrupt_after_ms: 900,
        reply_ms: 300,
        ..quiet_script()
    };
    let h = exotel_gateway(script, 10).await;
    let mut conn = exotel_call(&h, "EXO-CALL-1").await;
    // 100 ms of PCM16 at 8 kHz, as Exotel sends it, every 100 ms.
    let speech: Vec<u8> = (0..800i16).flat_map(|i| (i * 7).to_le_bytes()).collect();
    for _ in 0..3 {
        conn.send_text(exotel_media_event("MZ-sim-1", &speech));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.send_text(exotel_dtmf_event("MZ-sim-1", "7"));
    let heard = listen(&mut conn, Duration::from_millis(1800)).await;
    let media: Vec<&Vec<u8>> = heard
        .iter()
        .filter_map(|h| if let Heard::Audio(a) = h { Some(a) } else { None })
        .collect();
    assert!(!media.is_empty(), "the agent's audio reached Exotel");
    for m in &media {
        assert!(
            m.len() >= 3200 && m.len().is_multiple_of(320),
            "every media message is whole 320-byte blocks of at least 3.2 KB: {}",
            m.len()
        );
    }
    let echoed: Vec<u8> = media.iter().flat_map(|m| m.iter().copied()).collect();
    assert!(
        echoed.windows(speech.len().min(64)).any(|w| w == &speech[..64]),
        "the caller's PCM16 came back unchanged through a pcm_8000 agent"
    );
    assert!(heard.contains(&Heard::Clear), "barge-in reached Exotel as clear");
    assert!(
        heard.iter().any(|h| matches!(h, Heard::Checkpoint(_))),
        "marks are sent and answered"
    );
    assert!(dtmf_reaches_the_agent(&h, '7').await, "the key reached the agent");
    let view = call_view(&h, "EXO-CALL-1").await.expect("live");
    assert_eq!(
        (view["carrier"].as_str(), view["carrier_format"].as_str()),
        (Some("exotel"), Some("pcm_8000"))
    );
    conn.send_text(exotel_stop_event("MZ-sim-1"));
    assert_eq!(end_reason(&h, "EXO-CALL-1").await, "carrier_stop");
    let (_, record) = get_json(&h, "/calls/EXO-CALL-1").await;
    assert_eq!(
        (record["carrier"].as_str(), record["route"].as_str()),
        (Some("exotel"), Some("default"))
    );
}

#[actix_rt::test]
async fn when_the_agent_ends_exotel_hears_the_goodbye_and_the_socket_closes_without_terminate() {
    let script = AgentScript {
        end_after_ms: 300,
        goodbye_ms: 400,
        ..quiet_script()
    };
    let h = exotel_gateway(script, 10).await;
    let mut conn = exotel_call(&h, "EXO-END-1").await;
    let heard = listen(&mut conn, Duration::from_secs(5)).await;
    assert!(
        audio_of(&heard).len() >= 16 * 400,
        "the goodbye (400 ms of PCM16) played out"
    );
    assert!(!heard.contains(&Heard::Terminate));
    assert!(matches!(heard.last(), Some(Heard::Closed(_))), "{heard:?}");
    assert_eq!(end_reason(&h, "EXO-END-1").await, "agent_ended");
}

#[actix_rt::test]
async fn at_the_cap_exotel_is_refused_with_503_and_the_refusal_recorded() {
    let h = exotel_gateway(quiet_script(), 1).await;
    let _first = exotel_call(&h, "EXO-CAP-1").await;
    let auth = basic(USER, PASSWORD);
    let (status, answer) = get_exotel_voicebot(&h.gw.http_url, &CallRequest::inbound("EXO-CAP-2"), Some(&auth), None)
        .await
        .expect("answers");
    assert_eq!((status, answer["error"].as_str()), (503, Some("capacity")));
    assert_eq!(end_reason(&h, "EXO-CAP-2").await, "capacity");
    let (_, record) = get_json(&h, "/calls/EXO-CAP-2").await;
    assert_eq!(
        (record["carrier"].as_str(), record["route"].as_str()),
        (Some("exotel"), Some("default"))
    );
}

#[actix_rt::test]
async fn an_exotel_url_asking_for_16_khz_streams_and_bridges_at_16_khz() {
    let script = AgentScript {
        echo: true,
        input_format: "pcm_16000".into(),
        output_format: "pcm_16000".into(),
        ..quiet_script()
    };
    let h = start(script, |c| {
        c.carriers.exotel.username = USER.into();
        c.carriers.exotel.password = Some(PASSWORD.into());
    })
    .await;
    let mut conn = exotel_call_at(&h, "EXO-16K", Some(16000)).await;
    let speech: Vec<u8> = (0..1600i16).flat_map(|i| (i * 5).to_le_bytes()).collect();
    for _ in 0..3 {
        conn.send_text(exotel_media_event("MZ-sim-1", &speech));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let heard = listen(&mut conn, Duration::from_millis(1200)).await;
    let media: Vec<&Vec<u8>> = heard
        .iter()
        .filter_map(|h| if let Heard::Audio(a) = h { Some(a) } else { None })
        .collect();
    assert!(!media.is_empty(), "the agent's audio reached Exotel");
    assert!(
        media.iter().all(|m| m.len() >= 3200 && m.len().is_multiple_of(320)),
        "at least 100 ms (3.2 KB at 16 kHz), whole 320-byte blocks"
    );
    let view = call_view(&h, "EXO-16K").await.expect("live");
    assert_eq!(view["carrier_format"], "pcm_16000");
    let auth = basic(USER, PASSWORD);
    let (status, answer) = get_exotel_voicebot(
        &h.gw.http_url,
        &CallRequest::inbound("EXO-11K"),
        Some(&auth),
        Some(11025),
    )
    .await
    .expect("answers");
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("sample-rate")),
        "{answer}"
    );
}
