//! ElevenLabs' post-call webhook (`POST /elevenlabs/post-call`, docs/post-call.md) on SQLite and on
//! PostgreSQL: a signed delivery joins its verdict onto the call; a wrong signature, a stale timestamp and a
//! body altered after signing are 401 and write nothing; the same delivery twice leaves one verdict; a
//! verdict for a conversation whose call is not stored yet waits and joins it when it is; without the secret
//! the endpoint is not served.

use crate::common::db::{Backend, TestDb};
use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use websocket_api::db::batcher::{FlushAll, Save};
use websocket_api::db::models::{CallRecord, DbWrite};
use websocket_api::http::post_call::sign;

const SECRET: &str = "whsec_test";

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn delivery(conversation: &str, summary: &str) -> String {
    json!({
        "type": "post_call_transcription",
        "event_timestamp": now_s(),
        "data": {
            "agent_id": "agent_test", "conversation_id": conversation, "status": "done",
            "transcript": [{"role": "agent", "message": "Hello", "conversation_turn_metrics": {"llm_ttfb": 0.4}}],
            "metadata": {"call_duration_secs": 12, "cost": 180, "termination_reason": "end_call", "main_language": "en"},
            "analysis": {"call_successful": "success", "transcript_summary": summary,
                         "call_summary_title": "Order status", "data_collection_results": {"order_id": {"value": "A-42"}}}
        }
    })
    .to_string()
}

/// Posts `body` signed at `t` with `secret`: the status.
async fn post(h: &Harness, body: &str, secret: &str, t: i64) -> u16 {
    awc::Client::default()
        .post(format!("{}/elevenlabs/post-call", h.gw.http_url))
        .insert_header((
            "ElevenLabs-Signature",
            format!("t={t},v0={}", sign(secret, t, body.as_bytes())),
        ))
        .send_body(body.to_string())
        .await
        .expect("answers")
        .status()
        .as_u16()
}

fn stored_call(id: &str, conversation: &str) -> CallRecord {
    CallRecord {
        call_id: id.into(),
        attempt: 1,
        carrier: "mcube".into(),
        state: "ended".into(),
        end_reason: Some("carrier_hangup".into()),
        from_number: "+914155551234".into(),
        to_number: "+918001234567".into(),
        direction: "inbound".into(),
        conversation_id: Some(conversation.into()),
        conversation_ids: conversation.into(),
        started_at: 1_800_000_000_000,
        revision: 1,
        ..Default::default()
    }
}

async fn analyses(h: &Harness, id: &str) -> Vec<Value> {
    let _ = h.gw.db.send(FlushAll).await;
    let (_, call) = get_json(h, &format!("/calls/{id}")).await;
    call["analyses"].as_array().cloned().unwrap_or_default()
}

async fn the_webhook_joins_only_what_is_signed(backend: Backend) {
    let dir = scratch_dir("post-call");
    let db = TestDb::new(backend, &dir);
    let url = db.url.clone();
    let h = start(quiet_script(), |c| {
        c.database.url = url;
        c.elevenlabs.webhook_secret = Some(SECRET.into());
    })
    .await;
    let store = |rec: CallRecord| Save {
        writes: vec![DbWrite::Call(Box::new(rec))],
    };
    h.gw.db
        .send(store(stored_call("PC-1", "conv_pc_1")))
        .await
        .expect("sent");

    let body = delivery("conv_pc_1", "The caller asked about order A-42.");
    assert_eq!(post(&h, &body, SECRET, now_s()).await, 200);
    assert_eq!(post(&h, &body, SECRET, now_s()).await, 200, "a retry is answered");
    let changed = delivery("conv_pc_1", "A different summary in a later delivery.");
    assert_eq!(post(&h, &changed, SECRET, now_s()).await, 200);
    let joined = analyses(&h, "PC-1").await;
    assert_eq!(joined.len(), 1, "one verdict: {joined:?}");
    let a = &joined[0];
    assert_eq!(a["call_successful"], "success");
    assert_eq!(
        a["summary"], "The caller asked about order A-42.",
        "the first delivery is kept"
    );
    assert_eq!((a["cost"].as_i64(), a["duration_secs"].as_i64()), (Some(180), Some(12)));
    assert_eq!(a["data_collection"]["order_id"]["value"], "A-42");
    assert_eq!(a["transcript"][0]["conversation_turn_metrics"]["llm_ttfb"], 0.4);
    assert_eq!(a["source"], "webhook");
    // The history and its CSV carry the verdict too.
    let (_, history) = get_json(&h, "/calls/history?q=PC-1").await;
    let outcome = &history["calls"][0]["outcome"];
    assert_eq!(outcome["call_successful"], "success", "{history}");
    assert_eq!(outcome["cost"], 180, "{history}");
    let mut csv = awc::Client::default()
        .get(format!("{}/calls/history.csv?q=PC-1", h.gw.admin_url))
        .send()
        .await
        .expect("answers");
    let csv = String::from_utf8_lossy(&csv.body().await.expect("body")).into_owned();
    let (header, row) = csv.split_once("\r\n").expect("a header and a row");
    let column = header
        .split(',')
        .position(|c| c == "outcome.call_successful")
        .expect("a column");
    assert_eq!(row.split(',').nth(column), Some("success"), "{csv}");

    // Refused: another key, a stale timestamp, a body changed after it was signed.
    h.gw.db
        .send(store(stored_call("PC-2", "conv_pc_2")))
        .await
        .expect("sent");
    let body = delivery("conv_pc_2", "Should never be stored.");
    assert_eq!(post(&h, &body, "whsec_other", now_s()).await, 401, "another key");
    assert_eq!(
        post(&h, &body, SECRET, now_s() - 31 * 60).await,
        401,
        "older than 30 minutes"
    );
    let t = now_s();
    let tampered = awc::Client::default()
        .post(format!("{}/elevenlabs/post-call", h.gw.http_url))
        .insert_header((
            "ElevenLabs-Signature",
            format!("t={t},v0={}", sign(SECRET, t, body.as_bytes())),
        ))
        .send_body(body.replace("Should never", "Was"))
        .await
        .expect("answers");
    assert_eq!(tampered.status().as_u16(), 401, "altered after signing");
    let unsigned = awc::Client::default()
        .post(format!("{}/elevenlabs/post-call", h.gw.http_url))
        .send_body(body.clone())
        .await
        .expect("answers");
    assert_eq!(unsigned.status().as_u16(), 401, "no signature");
    assert!(analyses(&h, "PC-2").await.is_empty(), "nothing written");

    // A verdict before its call: kept, and joined once the call is stored.
    let early = delivery("conv_pc_3", "Came before the call's record.");
    assert_eq!(post(&h, &early, SECRET, now_s()).await, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.gw.db
        .send(store(stored_call("PC-3", "conv_pc_3")))
        .await
        .expect("sent");
    let joined = analyses(&h, "PC-3").await;
    assert_eq!(
        joined.first().map(|a| a["summary"].clone()),
        Some(json!("Came before the call's record."))
    );
    drop(h);
    drop(db);
}

#[actix_rt::test]
async fn sqlite_the_webhook_joins_only_what_is_signed() {
    the_webhook_joins_only_what_is_signed(Backend::Sqlite).await;
}

#[actix_rt::test]
async fn postgres_the_webhook_joins_only_what_is_signed() {
    the_webhook_joins_only_what_is_signed(Backend::Postgres).await;
}

#[actix_rt::test]
async fn without_its_secret_the_webhook_is_not_served() {
    let h = start(quiet_script(), |_| {}).await;
    let body = delivery("conv_x", "x");
    assert_eq!(post(&h, &body, SECRET, now_s()).await, 404);
}

/// Places a short call through the simulator and hangs it up: its verdicts once one has come (within
/// `wait`), or none.
async fn verdicts_after_a_call(h: &Harness, id: &str, wait: Duration) -> Vec<Value> {
    let format = websocket_api::audio::format::AudioFormat::ULAW_8K;
    let mut conn = start_call(h, id, &format!("stream-{id}"), format).await;
    let frames: Vec<Vec<u8>> = (0..25).map(|_| vec![0xFFu8; 160]).collect();
    stream_frames(&conn, &frames).await;
    conn.close(1000);
    let _ = listen(&mut conn, Duration::from_millis(300)).await;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let joined = analyses(h, id).await;
        if !joined.is_empty() || tokio::time::Instant::now() > deadline {
            return joined;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn a_call_whose_webhook_never_comes_is_completed_by_the_reconciler() {
    let sim = start_agent(quiet_script());
    let api = sim.api_url.clone();
    let h = start_with_agent(sim, |c| {
        c.elevenlabs.webhook_secret = Some(SECRET.into());
        c.elevenlabs.api_url = api;
        c.elevenlabs.reconcile_after_s = 1;
    })
    .await;
    let joined = verdicts_after_a_call(&h, "PC-R", Duration::from_secs(12)).await;
    let a = joined
        .first()
        .unwrap_or_else(|| panic!("the reconciler joined a verdict"));
    assert_eq!(a["source"], "reconciler");
    assert_eq!(a["call_successful"], "success");
    assert_eq!(a["data_collection"]["order_id"]["value"], "SIM-1");
    let joined_count = h.gw.metrics.upstream.reconciled.with_label_values(&["joined"]).get();
    assert_eq!(joined_count, 1, "counted once; the call is not fetched again");
}

#[actix_rt::test]
async fn the_simulators_signed_webhook_joins_its_verdict() {
    let h = start(quiet_script(), |c| c.elevenlabs.webhook_secret = Some(SECRET.into())).await;
    h.sim
        .log
        .deliver_to(&format!("{}/elevenlabs/post-call", h.gw.http_url), SECRET);
    let joined = verdicts_after_a_call(&h, "PC-W", Duration::from_secs(3)).await;
    assert_eq!(
        joined.first().map(|a| a["source"].clone()),
        Some(json!("webhook")),
        "{joined:?}"
    );
    let accepted = h.gw.metrics.upstream.post_call.with_label_values(&["accepted"]).get();
    assert_eq!(accepted, 1);
}
