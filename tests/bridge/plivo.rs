//! Plivo Audio Streams over real sockets: the answer URL signed or refused, answered in Plivo XML (a
//! bidirectional `<Stream>`, or a busy `<Hangup>` at the cap), then a call bridged through the stream it
//! opens — audio both ways, barge-in, DTMF, checkpoints, hang-up both ways — recorded as Plivo's.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{CallRequest, CarrierConn, Heard};
use websocket_api::tools::sim::dialects::{post_plivo_answer, PlivoRequest, XmlAnswer};

const TOKEN: &str = "plivo-auth-token";

async fn answer(h: &Harness, id: &str, auth_token: Option<&str>, forged: Option<&str>) -> XmlAnswer {
    post_plivo_answer(PlivoRequest {
        auth_token,
        forged_signature: forged,
        ..PlivoRequest::new(&CallRequest::inbound(id), format!("{}/plivo/answer", h.gw.http_url))
    })
    .await
    .expect("the answer URL answers")
}

/// A gateway expecting Plivo's signature, in front of `script`.
async fn plivo_gateway(script: AgentScript, max_calls: usize) -> Harness {
    start(script, |c| {
        c.carriers.plivo.auth_token = Some(TOKEN.into());
        c.calls.max_concurrent_calls = max_calls;
    })
    .await
}

/// Answers call `id` with a good signature and opens the stream Plivo's XML names, sending its `start`.
async fn plivo_call(h: &Harness, id: &str) -> CarrierConn {
    let answered = answer(h, id, Some(TOKEN), None).await;
    let url = answered.stream_url().expect("a <Stream> answer");
    let conn = CarrierConn::connect(&url, true).await.expect("the stream opens");
    conn.send_start(id, "plivo-stream-1", AudioFormat::ULAW_8K);
    conn
}

#[actix_rt::test]
async fn the_answer_url_is_signed_and_answered_with_a_bidirectional_stream() {
    let h = plivo_gateway(quiet_script(), 10).await;
    let good = answer(&h, "PLIVO-UUID-1", Some(TOKEN), None).await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert!(
        good.body
            .contains(r#"<Stream bidirectional="true" keepCallAlive="true" contentType="audio/x-mulaw;rate=8000">"#),
        "{}",
        good.body
    );
    let url = good.stream_url().expect("stream URL");
    assert!(
        url.starts_with(&format!("{}/ws/plivo/PLIVO-UUID-1?token=", h.gw.public_url)),
        "{url}"
    );

    for (label, forged) in [("missing", None), ("forged", Some("c2lnbmF0dXJl"))] {
        let refused = match forged {
            None => answer(&h, "PLIVO-UUID-2", None, None).await,
            Some(f) => answer(&h, "PLIVO-UUID-2", Some(TOKEN), Some(f)).await,
        };
        assert_eq!(refused.status, 403, "{label} signature: {}", refused.body);
        assert!(refused.stream_url().is_none());
    }
    let (status, _) = get_json(&h, "/calls/PLIVO-UUID-2").await;
    assert_eq!(status, 404, "an unsigned request leaves no record");
    let bad = answer(&h, "BAD\u{0}UUID", Some(TOKEN), None).await;
    assert_eq!(
        bad.status, 400,
        "a call id out of bounds is refused at the edge: {}",
        bad.body
    );
    assert!(bad.body.contains("CallUUID"), "{}", bad.body);
}

#[actix_rt::test]
async fn a_plivo_call_bridges_both_ways_with_barge_in_dtmf_and_its_record() {
    let script = AgentScript {
        echo: true,
        interrupt_after_ms: 600,
        reply_ms: 200,
        ..quiet_script()
    };
    let h = plivo_gateway(script, 10).await;
    let mut conn = plivo_call(&h, "PLIVO-CALL-1").await;
    conn.send_media(&[0x55; 160]);
    conn.send_text(r#"{"event":"dtmf","streamId":"plivo-stream-1","dtmf":{"digit":"5"}}"#.into());
    let heard = listen(&mut conn, Duration::from_millis(1200)).await;
    assert!(
        audio_of(&heard).contains(&0x55),
        "the caller's audio came back through the agent"
    );
    assert!(heard.contains(&Heard::Clear), "barge-in reached Plivo as clearAudio");
    assert!(
        heard.iter().any(|h| matches!(h, Heard::Checkpoint(_))),
        "checkpoints are sent"
    );
    assert!(dtmf_reaches_the_agent(&h, '5').await, "the key reached the agent");
    let view = call_view(&h, "PLIVO-CALL-1").await.expect("live");
    assert_eq!(view["stream_id"], "plivo-stream-1");
    conn.close(1000);
    assert_eq!(end_reason(&h, "PLIVO-CALL-1").await, "carrier_hangup");
    let (_, record) = get_json(&h, "/calls/PLIVO-CALL-1").await;
    assert_eq!(
        (record["carrier"].as_str(), record["route"].as_str()),
        (Some("plivo"), Some("default")),
        "{record}"
    );
}

#[actix_rt::test]
async fn when_the_agent_ends_plivo_hears_the_goodbye_and_the_stream_closes_without_terminate() {
    let script = AgentScript {
        end_after_ms: 300,
        goodbye_ms: 200,
        ..quiet_script()
    };
    let h = plivo_gateway(script, 10).await;
    let mut conn = plivo_call(&h, "PLIVO-END-1").await;
    let heard = listen(&mut conn, Duration::from_secs(4)).await;
    assert_eq!(audio_of(&heard).len(), 8 * 200, "the goodbye played out");
    assert!(
        heard.iter().any(|h| matches!(h, Heard::Checkpoint(_))),
        "its end was marked and acknowledged"
    );
    assert!(
        !heard.contains(&Heard::Terminate),
        "Plivo has no terminate: closing the stream hangs up"
    );
    assert!(matches!(heard.last(), Some(Heard::Closed(_))), "{heard:?}");
    assert_eq!(end_reason(&h, "PLIVO-END-1").await, "agent_ended");
}

#[actix_rt::test]
async fn at_the_cap_plivo_is_answered_with_a_busy_hangup_and_the_refusal_recorded() {
    let h = plivo_gateway(quiet_script(), 1).await;
    let _first = plivo_call(&h, "PLIVO-CAP-1").await;
    let busy = answer(&h, "PLIVO-CAP-2", Some(TOKEN), None).await;
    assert_eq!(busy.status, 200, "Plivo acts on XML, not on an HTTP error");
    assert!(busy.body.contains(r#"<Hangup reason="busy"/>"#), "{}", busy.body);
    assert!(busy.stream_url().is_none());
    assert_eq!(end_reason(&h, "PLIVO-CAP-2").await, "capacity");
    let (_, record) = get_json(&h, "/calls/PLIVO-CAP-2").await;
    assert_eq!(
        (record["state"].as_str(), record["carrier"].as_str()),
        (Some("rejected"), Some("plivo"))
    );
}
