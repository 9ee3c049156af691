//! Supervision: a panic injected (feature `fault-injection`) into one part of one call ends that call
//! cleanly — the carrier hung up, the agent closed, the record `internal_error` with the panic's message,
//! the slot free within a second — while 19 other calls keep flowing with no frame lost. A panic in a
//! shared part fails no other call, fails nothing open, and the part is back for the next call.
#![cfg(feature = "fault-injection")]

use crate::common::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use websocket_api::audio::format::AudioFormat;
use websocket_api::sim::carrier::{CarrierConn, Heard};
use websocket_api::supervise::{fault, Part};

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
        let active = async {
            for _ in 0..100 {
                if call_view(h, id).await.is_some_and(|v| v["state"] == "active") {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        };
        assert!(active.await, "{id} bridged");
    }
    (ids, conns)
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
