//! Supervision: a panic injected (feature `fault-injection`) into one part of one call ends that call
//! cleanly — the carrier hung up, the agent closed, the record `internal_error` with the panic's message,
//! the slot free within a second — while 19 other calls keep flowing with no frame lost. A panic in a
//! shared part fails no other call, fails nothing open, and the part is back for the next call.
#![cfg(feature = "fault-injection")]

use crate::common::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use websocket_api::audio::format::AudioFormat;
use websocket_api::supervise::{fault, Part};
use websocket_api::tools::sim::carrier::{CarrierConn, Heard};

const CALLS: usize = 20;
/// Frames each call streams after the fault is armed (2 s of 20 ms μ-law).
const FRAMES: usize = 100;

/// `CALLS` echoed calls, all bridged.
async fn live_calls(h: &Harness, tag: &str) -> (Vec<String>, Vec<CarrierConn>) {
    let ids: Vec<String> = (0..CALLS).map(|i| format!("SUP-{tag}-{i}")).collect();
    let mut conns = Vec::new();
    for id in &ids {
        conns.push(start_call(h, id, "s", AudioFormat::ULAW_8K).await);
    }
    let bridged = eventually(Duration::from_secs(10), || h.sim.log.connection_count() == CALLS).await;
    assert!(bridged, "every call reached the agent");
    for id in &ids {
        assert!(becomes_active(h, id).await, "{id} bridged");
    }
    (ids, conns)
}

/// Whether `/calls` shows `id` bridged within 5 s.
async fn becomes_active(h: &Harness, id: &str) -> bool {
    for _ in 0..100 {
        if call_view(h, id).await.is_some_and(|v| v["state"] == "active") {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Sends `FRAMES` frames to every call at real time, interleaved.
async fn stream_all(conns: &[CarrierConn]) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0..FRAMES {
        tick.tick().await;
        for c in conns {
            c.send_media(&[(i % 200) as u8 + 1; 160]);
        }
    }
}

fn audio_bytes(heard: &[(Instant, Heard)]) -> usize {
    heard
        .iter()
        .map(|(_, h)| if let Heard::Audio(a) = h { a.len() } else { 0 })
        .sum()
}

fn hung_up_in(heard: &[(Instant, Heard)]) -> bool {
    heard
        .iter()
        .any(|(_, h)| matches!(h, Heard::Terminate | Heard::Closed(_)))
}

/// The call's stored record, once it has ended.
async fn ended_record(h: &Harness, id: &str) -> Value {
    for _ in 0..40 {
        let (_, record) = get_json(h, &format!("/calls/{id}")).await;
        if record["state"] == "ended" {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Value::Null
}

/// Twenty calls; `part` of the first one panics once audio flows. That call ends as `internal_error` with
/// the panic's message, hung up and with its slot free within a second; the others lose nothing.
async fn one_call_faults(part: Part, tag: &str) {
    let h = start_echo(|c| c.calls.max_concurrent_calls = CALLS + 5).await;
    let (ids, mut conns) = live_calls(&h, tag).await;
    fault::arm(part, &ids[0]);
    let (_, released) = futures_util::future::join(stream_all(&conns), released_after(&h, &ids[0])).await;
    assert!(
        released < Duration::from_secs(1),
        "{part}: slot free within 1 s of the fault ({released:?})"
    );

    // The faulted call: its slot is free and its record final.
    let (_, calls) = get_json(&h, "/calls").await;
    assert_eq!(calls["active"], CALLS as u64 - 1, "{part}: slot released: {calls}");
    assert!(calls["calls"]
        .as_array()
        .is_some_and(|c| c.iter().all(|c| c["call_id"] != ids[0])));
    let record = ended_record(&h, &ids[0]).await;
    assert_eq!(record["end_reason"], "internal_error", "{part}: {record}");
    let error = record["error_detail"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!(
            "internal error in {part}: injected fault in {part} for {}",
            ids[0]
        )),
        "{part}: the record says what panicked: {error}"
    );
    let heard = conns[0].drain(Duration::from_millis(300)).await;
    assert!(hung_up_in(&heard), "{part}: the carrier was hung up");

    // The agent connection of the faulted call, and only it, was closed.
    let closed: Vec<Option<u16>> = h.sim.log.connections().iter().map(|c| c.client_close).collect();
    assert_eq!(closed.iter().filter(|c| c.is_some()).count(), 1, "{part}: {closed:?}");

    // The other nineteen heard every frame they sent echoed back.
    for (id, conn) in ids.iter().zip(conns.iter_mut()).skip(1) {
        let heard = conn.drain(Duration::from_millis(500)).await;
        assert_eq!(audio_bytes(&heard), FRAMES * 160, "{part}: {id} lost audio");
        assert!(!hung_up_in(&heard), "{part}: {id} kept going");
    }
    let (_, metrics) = get_text(&h, "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(&format!("wsapi_internal_errors_total{{part=\"{part}\"}}")) && !l.ends_with(" 0")),
        "{part}: counted"
    );
}

/// How long after the first faulty frame `id` leaves `/calls` (its slot released); gives up after 3 s.
async fn released_after(h: &Harness, id: &str) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if call_view(h, id).await.is_none() {
            return t0.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t0.elapsed()
}

/// GET a text endpoint of the admin listener.
async fn get_text(h: &Harness, path: &str) -> (u16, String) {
    let mut resp = awc::Client::default()
        .get(format!("{}{path}", h.gw.admin_url))
        .send()
        .await
        .expect("GET answers");
    let body = resp.body().limit(1 << 22).await.unwrap_or_default();
    (resp.status().as_u16(), String::from_utf8_lossy(&body).into_owned())
}

#[actix_rt::test]
async fn a_panic_in_one_calls_actor_ends_that_call_only() {
    one_call_faults(Part::Call, "CALL").await;
}

#[actix_rt::test]
async fn a_panic_in_one_calls_carrier_leg_ends_that_call_only() {
    one_call_faults(Part::CarrierLeg, "CARRIER").await;
}

#[actix_rt::test]
async fn a_panic_in_one_calls_agent_leg_ends_that_call_only() {
    one_call_faults(Part::AgentLeg, "AGENT").await;
}

/// A panic where no guard stands (the call's describe handler, on purpose) still ends the call through the
/// same steps: actix runs `stopped` as the task unwinds, and the call notices the panic.
#[actix_rt::test]
async fn a_panic_no_guard_catches_still_ends_the_call_cleanly() {
    let h = start_echo(|c| c.calls.max_concurrent_calls = 5).await;
    let mut conn = start_call(&h, "SUP-BARE-1", "s", AudioFormat::ULAW_8K).await;
    let other = start_call(&h, "SUP-BARE-2", "s", AudioFormat::ULAW_8K).await;
    assert!(eventually(Duration::from_secs(5), || h.sim.log.connection_count() == 2).await);
    fault::arm(Part::Call, "SUP-BARE-1:describe");
    let _ = get_json(&h, "/calls/SUP-BARE-1").await;
    assert!(released_after(&h, "SUP-BARE-1").await < Duration::from_secs(1));
    let record = ended_record(&h, "SUP-BARE-1").await;
    assert_eq!(record["end_reason"], "internal_error", "{record}");
    let error = record["error_detail"].as_str().unwrap_or_default();
    assert!(
        error.contains("injected fault in call for SUP-BARE-1:describe"),
        "{error}"
    );
    assert!(hung_up_in(&conn.drain(Duration::from_millis(500)).await));
    let closes: Vec<Option<u16>> = h.sim.log.connections().iter().map(|c| c.client_close).collect();
    assert_eq!(closes.iter().filter(|c| **c == Some(1000)).count(), 1, "{closes:?}");
    assert!(
        call_view(&h, "SUP-BARE-2").await.is_some(),
        "the other call is untouched"
    );
    drop(other);
}

/// Streams to every live call while `during` runs (a shared part panics meanwhile), then checks that no
/// call lost a frame or was hung up.
async fn flowing_while(conns: &mut [CarrierConn], during: impl std::future::Future<Output = ()>) {
    futures_util::future::join(stream_all(conns), during).await;
    for (i, conn) in conns.iter_mut().enumerate() {
        let heard = conn.drain(Duration::from_millis(500)).await;
        assert_eq!(audio_bytes(&heard), FRAMES * 160, "call {i} lost audio");
        assert!(!hung_up_in(&heard), "call {i} kept going");
    }
}

/// `/healthz` lists `part` as recovered.
async fn healthz_recovered(h: &Harness, part: Part) -> bool {
    let (status, health) = get_json(h, "/healthz").await;
    status == 200
        && health["recovered"][part.as_str()]["recovered"]
            .as_u64()
            .is_some_and(|n| n >= 1)
}

/// A call admitted and bridged after the fault: the part is back.
async fn next_call_bridges(h: &Harness, id: &str) -> CarrierConn {
    let conn = start_call(h, id, "s", AudioFormat::ULAW_8K).await;
    assert!(becomes_active(h, id).await, "{id} admitted and bridged after the fault");
    conn
}

/// The refurl of `call_id`, posted to `path` (the fault points of the carrier listener know a request by
/// its path and query).
async fn refurl_at(h: &Harness, path: &str, call_id: &str) -> (u16, Value) {
    let body = serde_json::json!({"callId": call_id, "callDirection": "inbound", "fromNumber": "+914155551234",
        "toNumber": "+918001234567", "dialStatus": "CONNECTING", "callProvider": "MCUBE"});
    let mut resp = awc::Client::default()
        .post(format!("{}{path}", h.gw.http_url))
        .send_json(&body)
        .await
        .expect("refurl answers");
    (
        resp.status().as_u16(),
        resp.json::<Value>().await.unwrap_or(Value::Null),
    )
}

#[actix_rt::test]
async fn a_panic_in_the_registry_refuses_that_admission_only() {
    let h = start_echo(|c| c.calls.max_concurrent_calls = CALLS + 5).await;
    let (_, mut conns) = live_calls(&h, "REG").await;
    fault::arm(Part::Registry, "SUP-REG-FAULT");
    let during = async {
        let (status, answer) = refurl_at(&h, "/mcube/call", "SUP-REG-FAULT").await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (503, Some("internal_error")),
            "refused, not let in"
        );
        assert!(call_view(&h, "SUP-REG-FAULT").await.is_none());
        drop(next_call_bridges(&h, "SUP-REG-NEXT").await);
    };
    flowing_while(&mut conns, during).await;
    let (_, calls) = get_json(&h, "/calls").await;
    assert_eq!(calls["active"], CALLS as u64, "no slot leaked: {calls}");
    assert!(healthz_recovered(&h, Part::Registry).await);
}

#[actix_rt::test]
async fn a_panic_in_the_access_check_refuses_that_request_only() {
    let h = start_echo(|c| c.calls.max_concurrent_calls = CALLS + 5).await;
    let (_, mut conns) = live_calls(&h, "ACC").await;
    let path = "/mcube/call?fault=SUP-ACC";
    fault::arm(Part::Access, path);
    let during = async {
        let (status, answer) = refurl_at(&h, path, "SUP-ACC-FAULT").await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (503, Some("internal_error")),
            "refused, never allowed"
        );
        let (status, _) = refurl_at(&h, path, "SUP-ACC-AGAIN").await;
        assert_eq!(status, 200, "the check is back for the next request");
        drop(next_call_bridges(&h, "SUP-ACC-NEXT").await);
    };
    flowing_while(&mut conns, during).await;
    assert!(healthz_recovered(&h, Part::Access).await);
}

#[actix_rt::test]
async fn a_panic_in_an_admin_handler_answers_500_and_the_next_request_is_served() {
    let h = start_echo(|c| c.calls.max_concurrent_calls = CALLS + 5).await;
    let (ids, mut conns) = live_calls(&h, "ADM").await;
    let path = format!("/calls/{}", ids[3]);
    fault::arm(Part::Admin, &path);
    let during = async {
        let (status, answer) = get_json(&h, &path).await;
        assert_eq!(status, 500, "{answer}");
        assert_eq!(answer["error"], "internal_error");
        let reason = answer["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("injected fault in admin"),
            "the answer says why: {reason}"
        );
        let (status, answer) = get_json(&h, &path).await;
        assert_eq!((status, answer["state"].as_str()), (200, Some("active")), "{answer}");
    };
    flowing_while(&mut conns, during).await;
    assert!(healthz_recovered(&h, Part::Admin).await);
}

#[actix_rt::test]
async fn a_panic_in_the_records_writer_loses_no_record_and_the_writer_comes_back() {
    let h = start_echo(|c| c.calls.max_concurrent_calls = CALLS + 5).await;
    let (ids, mut conns) = live_calls(&h, "REC").await;
    // The first record of the next call makes the writer panic mid-batch; the one after, the batcher.
    fault::arm(Part::Records, "SUP-REC-NEXT");
    fault::arm(Part::Records, "SUP-REC-LAST:batcher");
    let during = async {
        drop(next_call_bridges(&h, "SUP-REC-NEXT").await);
        drop(next_call_bridges(&h, "SUP-REC-LAST").await);
        let fired = eventually(Duration::from_secs(3), || {
            websocket_api::supervise::counts()[Part::Records as usize].1 >= 2
        })
        .await;
        assert!(fired, "both faults fired");
    };
    flowing_while(&mut conns, during).await;
    assert!(healthz_recovered(&h, Part::Records).await);
    // Every call ends; every record is stored and final, the faulted call's and the next call's too.
    for conn in &conns {
        conn.close(1000);
    }
    let next = ["SUP-REC-NEXT".to_string(), "SUP-REC-LAST".to_string()];
    for id in ids.iter().chain(next.iter()) {
        let record = ended_record(&h, id).await;
        assert_eq!(record["end_reason"], "carrier_hangup", "{id}: {record}");
    }
    let (_, health) = get_json(&h, "/healthz").await;
    assert_eq!(
        health["db"]["dead_letter_total"], 0,
        "nothing set aside: the retry stored the batch: {health}"
    );
}
