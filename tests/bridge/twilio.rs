//! Twilio Media Streams over real sockets: the voice webhook signed or refused, answered in TwiML
//! (`<Connect><Stream>` with the call's token as a `<Parameter>`, or a busy `<Reject>` at the cap), then a
//! call bridged through `/ws/twilio` — claimed when its `start` names it — in μ-law both ways, with only
//! `media`, `mark` and `clear` sent, barge-in, DTMF, hang-up both ways, recorded as Twilio's.

use crate::common::*;
use std::time::Duration;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{CallRequest, CarrierConn, Heard};
use websocket_api::tools::sim::dialects::{
    post_twilio_voice, twilio_connected_event, twilio_dtmf_event, twilio_media_event, twilio_start_event,
    twilio_stop_event, TwilioRequest, XmlAnswer,
};

const TOKEN: &str = "twilio-auth-token";
const STREAM: &str = "MZ-sim-1";

async fn voice(h: &Harness, id: &str, auth_token: Option<&str>, forged: Option<&str>) -> XmlAnswer {
    post_twilio_voice(TwilioRequest {
        call: &CallRequest::inbound(id),
        voice_url: format!("{}/twilio/voice", h.gw.http_url),
        auth_token,
        forged_signature: forged,
    })
    .await
    .expect("the voice webhook answers")
}

async fn twilio_gateway(script: AgentScript, max_calls: usize) -> Harness {
    start(script, |c| {
        c.carriers.twilio.auth_token = Some(TOKEN.into());
        c.calls.max_concurrent_calls = max_calls;
    })
    .await
}

/// Opens the stream a TwiML answer names and sends Twilio's `connected` and `start` with `parameters`.
async fn open_stream(url: &str, call_sid: &str, parameters: &[(String, String)]) -> CarrierConn {
    let conn = CarrierConn::connect(url, true).await.expect("the stream opens");
    conn.send_text(twilio_connected_event());
    conn.send_text(twilio_start_event(call_sid, STREAM, parameters));
    conn
}

/// Answers call `id` with a good signature and opens its stream with the TwiML's parameters.
async fn twilio_call(h: &Harness, id: &str) -> CarrierConn {
    let answered = voice(h, id, Some(TOKEN), None).await;
    let (url, parameters) = answered.twiml_stream().expect("a <Stream> answer");
    open_stream(&url, id, &parameters).await
}

#[actix_rt::test]
async fn the_voice_webhook_is_signed_and_answered_with_a_stream_whose_url_has_no_query() {
    let h = twilio_gateway(quiet_script(), 10).await;
    let good = voice(&h, "CA-TW-1", Some(TOKEN), None).await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert!(good.body.contains("<Connect>"), "{}", good.body);
    let (url, parameters) = good.twiml_stream().expect("stream");
    assert_eq!(url, format!("{}/ws/twilio", h.gw.public_url), "Twilio forbids a query");
    let names: Vec<&str> = parameters.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["call_id", "token"]);
    assert_eq!(parameters[0].1, "CA-TW-1");
    for (label, forged) in [("missing", None), ("forged", Some("c2lnbmF0dXJl"))] {
        let refused = match forged {
            None => voice(&h, "CA-TW-2", None, None).await,
            Some(f) => voice(&h, "CA-TW-2", Some(TOKEN), Some(f)).await,
        };
        assert_eq!(refused.status, 403, "{label} signature: {}", refused.body);
        assert!(refused.twiml_stream().is_none());
    }
    let (status, _) = get_json(&h, "/calls/CA-TW-2").await;
    assert_eq!(status, 404, "an unsigned request leaves no record");
}

#[actix_rt::test]
async fn a_stream_without_the_calls_token_is_closed_with_1008_and_the_call_stays_unclaimed() {
    let h = twilio_gateway(quiet_script(), 10).await;
    let (url, parameters) = voice(&h, "CA-TW-3", Some(TOKEN), None)
        .await
        .twiml_stream()
        .expect("stream");
    let forged = vec![
        ("call_id".to_string(), "CA-TW-3".to_string()),
        ("token".to_string(), "forged".to_string()),
    ];
    for params in [forged, vec![], parameters[..1].to_vec()] {
        let mut conn = open_stream(&url, "CA-TW-3", &params).await;
        let heard = listen(&mut conn, Duration::from_secs(2)).await;
        assert_eq!(heard.last(), Some(&Heard::Closed(Some(1008))), "{params:?}: {heard:?}");
    }
    assert_eq!(h.sim.log.connections().len(), 0, "no agent was dialled");
    let mut conn = open_stream(&url, "CA-TW-3", &parameters).await;
    conn.send_text(twilio_media_event(STREAM, &[0xff; 160], 1));
    assert!(
        eventually(Duration::from_secs(2), || !h.sim.log.connections().is_empty()).await,
        "the call's own token still claims it"
    );
    assert!(conn
        .next(Duration::from_millis(300))
        .await
        .is_none_or(|(_, h)| !matches!(h, Heard::Closed(_))));
}

#[actix_rt::test]
async fn a_twilio_call_bridges_mulaw_with_marks_barge_in_dtmf_and_only_twilios_messages() {
    let script = AgentScript {
        echo: true,
        interrupt_after_ms: 600,
        reply_ms: 200,
        ..quiet_script()
    };
    let h = twilio_gateway(script, 10).await;
    let mut conn = twilio_call(&h, "CA-TW-CALL").await;
    for chunk in 1..=5 {
        conn.send_text(twilio_media_event(STREAM, &[0x55; 160], chunk));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    conn.send_text(twilio_dtmf_event(STREAM, "5"));
    let heard = listen(&mut conn, Duration::from_millis(1200)).await;
    assert!(
        audio_of(&heard).contains(&0x55),
        "the caller's μ-law came back through the agent"
    );
    assert!(heard.contains(&Heard::Clear), "barge-in reached Twilio as clear");
    assert!(
        heard.iter().any(|h| matches!(h, Heard::Checkpoint(_))),
        "marks are sent and answered"
    );
    let others: Vec<&Heard> = heard
        .iter()
        .filter(|h| matches!(h, Heard::Other(_) | Heard::Terminate))
        .collect();
    assert!(
        others.is_empty(),
        "anything but media, mark and clear is Twilio's error 31924: {others:?}"
    );
    assert!(dtmf_reaches_the_agent(&h, '5').await, "the key reached the agent");
    let view = call_view(&h, "CA-TW-CALL").await.expect("live");
    assert_eq!(
        (
            view["carrier"].as_str(),
            view["stream_id"].as_str(),
            view["carrier_format"].as_str()
        ),
        (Some("twilio"), Some(STREAM), Some("ulaw_8000"))
    );
    conn.send_text(twilio_stop_event(STREAM, "CA-TW-CALL"));
    assert_eq!(end_reason(&h, "CA-TW-CALL").await, "carrier_stop");
    let (_, record) = get_json(&h, "/calls/CA-TW-CALL").await;
    assert_eq!(
        (record["carrier"].as_str(), record["route"].as_str()),
        (Some("twilio"), Some("default")),
        "{record}"
    );
}

#[actix_rt::test]
async fn when_the_agent_ends_twilio_hears_the_goodbye_and_the_stream_closes() {
    let script = AgentScript {
        end_after_ms: 300,
        goodbye_ms: 200,
        ..quiet_script()
    };
    let h = twilio_gateway(script, 10).await;
    let mut conn = twilio_call(&h, "CA-TW-END").await;
    let heard = listen(&mut conn, Duration::from_secs(4)).await;
    assert_eq!(audio_of(&heard).len(), 8 * 200, "the goodbye played out");
    assert!(!heard.contains(&Heard::Terminate));
    assert!(matches!(heard.last(), Some(Heard::Closed(_))), "{heard:?}");
    assert_eq!(end_reason(&h, "CA-TW-END").await, "agent_ended");
}

#[actix_rt::test]
async fn at_the_cap_twilio_is_answered_with_a_busy_reject_and_the_refusal_recorded() {
    let h = twilio_gateway(quiet_script(), 1).await;
    let _first = twilio_call(&h, "CA-TW-CAP-1").await;
    assert!(eventually(Duration::from_secs(2), || !h.sim.log.connections().is_empty()).await);
    let busy = voice(&h, "CA-TW-CAP-2", Some(TOKEN), None).await;
    assert_eq!(busy.status, 200, "Twilio acts on TwiML, not on an HTTP error");
    assert!(busy.body.contains(r#"<Reject reason="busy"/>"#), "{}", busy.body);
    assert_eq!(end_reason(&h, "CA-TW-CAP-2").await, "capacity");
    let (_, record) = get_json(&h, "/calls/CA-TW-CAP-2").await;
    assert_eq!(
        (record["state"].as_str(), record["carrier"].as_str()),
        (Some("rejected"), Some("twilio"))
    );
}

#[actix_rt::test]
async fn a_stream_that_never_names_its_call_is_closed_with_1008_after_the_start_timeout() {
    let h = start(quiet_script(), |c| c.calls.start_timeout_ms = 300).await;
    let mut conn = CarrierConn::connect(&format!("{}/ws/twilio", h.gw.public_url), true)
        .await
        .expect("the upgrade passes the access rules only");
    conn.send_text(twilio_connected_event());
    let heard = listen(&mut conn, Duration::from_secs(3)).await;
    assert_eq!(heard.last(), Some(&Heard::Closed(Some(1008))), "{heard:?}");
    assert!(h.sim.log.connections().is_empty(), "no agent was dialled");
}
