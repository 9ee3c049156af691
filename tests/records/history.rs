//! Every call leaves a record an operator can query, on SQLite and on PostgreSQL: a bridged call's row with
//! its numbers, conversation id, counts and duration and its events in order; a refused call's `rejected`
//! row; the carrier's hang-up report; `/calls/{id}` and `/calls/history` reading them back.

use crate::common::db::{Backend, TestDb};
use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::db::batcher::FlushAll;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{post_refurl, Admission};

async fn flush(h: &Harness) {
    let _ = h.gw.db.send(FlushAll).await;
}

async fn bridged_call_is_recorded(backend: Backend) {
    let dir = scratch_dir("records");
    let db = TestDb::new(backend, &dir);
    let url = db.url.clone();
    let script = AgentScript {
        greeting_ms: 600,
        interrupt_after_ms: 200,
        reply_ms: 200,
        reply_after_user_ms: 200,
        transcripts: true,
        ..quiet_script()
    };
    let h = start(script, |c| {
        c.database.url = url;
        c.calls.max_concurrent_calls = 1;
    })
    .await;
    let mut conn = start_call(&h, "REC-1", "stream-REC-1", AudioFormat::ULAW_8K).await;
    for _ in 0..25 {
        conn.send_media(&[0xFF; 160]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = listen(&mut conn, Duration::from_millis(800)).await;
    // A second call over the cap of 1 is refused and recorded as such.
    assert!(matches!(
        post_refurl(&h.gw.http_url, &call("REC-2")).await,
        Ok(Admission::Refused { status: 503, .. })
    ));
    conn.close(1000);
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await);
    // Mcube's hang-up report arrives after the call.
    let report = serde_json::json!({"callId": "REC-1", "dialStatus": "ANSWER", "endTime": "2026-11-26T12:05:00",
        "answeredTime": "3", "filename": "https://rec.example/REC-1.mp3"});
    let resp = awc::Client::default()
        .post(format!("{}/mcube/call", h.gw.http_url))
        .send_json(&report)
        .await
        .expect("status POST");
    assert_eq!(resp.status().as_u16(), 200);
    flush(&h).await;

    let (row, events) = db.get_call("REC-1").expect("REC-1 recorded");
    assert_eq!(row.instance_id, h.gw.instance.as_str(), "the record names the instance");
    assert_eq!(
        db.get_call("REC-2").map(|(r, _)| r.instance_id.clone()).as_deref(),
        Some(h.gw.instance.as_str()),
        "a refusal too"
    );
    assert_eq!(row.state, "ended");
    assert_eq!(row.end_reason.as_deref(), Some("carrier_hangup"));
    assert_eq!(row.from_number, "+914155551234");
    assert_eq!(row.to_number, "+918001234567");
    assert_eq!(row.direction, "inbound");
    assert_eq!(row.stream_id.as_deref(), Some("stream-REC-1"));
    assert_eq!(row.agent_id.as_deref(), Some("agent_test"));
    assert!(
        row.conversation_id
            .as_deref()
            .is_some_and(|c| c.starts_with("conv_sim_")),
        "{:?}",
        row.conversation_id
    );
    assert_eq!(row.frames_in, 25);
    assert!(row.frames_out > 0);
    assert_eq!(row.bytes_in, 25 * 160);
    assert_eq!(row.interruptions, 1);
    assert!(row.duration_ms > 400, "{}", row.duration_ms);
    assert!(row.ended_at.is_some() && row.answered_at.is_some());
    assert_eq!(row.dial_status.as_deref(), Some("ANSWER"));
    assert_eq!(row.recording_url.as_deref(), Some("https://rec.example/REC-1.mp3"));
    assert_eq!(row.carrier_format.as_deref(), Some("ulaw_8000"));
    // Events: numbered 1..n without gaps, in the order they happened.
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("no {k} event in {kinds:?}"))
    };
    assert!(pos("state") < pos("interruption"), "{kinds:?}");
    assert!(pos("user_transcript") < pos("agent_response"), "{kinds:?}");
    assert_eq!(events.last().map(|e| e.detail.as_str()), Some("ended: carrier_hangup"));

    let (rejected, _) = db.get_call("REC-2").expect("refused call recorded");
    assert_eq!(rejected.state, "rejected");
    assert_eq!(rejected.end_reason.as_deref(), Some("capacity"));
    assert_eq!(rejected.from_number, "+914155551234");

    // Read back through the admin endpoints.
    let (status, one) = get_json(&h, "/calls/REC-1").await;
    assert_eq!(status, 200);
    assert_eq!(one["state"], "ended");
    assert_eq!(one["dial_status"], "ANSWER");
    assert!(one["events"].as_array().is_some_and(|e| e.len() == events.len()));
    let (status, hist) = get_json(&h, "/calls/history?limit=10").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = hist["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter_map(|c| c["call_id"].as_str())
        .collect();
    assert!(ids.contains(&"REC-1") && ids.contains(&"REC-2"), "{ids:?}");
    let (status, _) = get_json(&h, "/calls/NOPE").await;
    assert_eq!(status, 404);
    drop(h);
    drop(db);
}

#[actix_rt::test]
async fn sqlite_bridged_and_refused_calls_are_recorded() {
    bridged_call_is_recorded(Backend::Sqlite).await;
}

#[actix_rt::test]
async fn postgres_bridged_and_refused_calls_are_recorded() {
    bridged_call_is_recorded(Backend::Postgres).await;
}

/// Records written before calls had attempts survive the migration that keys them on `(call_id, attempt)`:
/// read back as attempt 0 with their events, and a new attempt of the same id is a row of its own.
fn records_from_before_attempts_survive_the_upgrade(backend: Backend) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
    const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
    const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
    let dir = scratch_dir("upgrade");
    let db = TestDb::new(backend, &dir);
    let old_rows = "INSERT INTO calls (call_id, carrier, direction, from_number, to_number, state, started_at, \
                    updated_at, frames_in, revision) VALUES ('OLD-1', 'mcube', 'inbound', '+914155551234', '', \
                    'ended', 1, 1, 50, 3); \
                    INSERT INTO call_events (call_id, seq, at_ms, kind, detail) VALUES \
                    ('OLD-1', 1, 1, 'state', 'active'), ('OLD-1', 2, 2, 'state', 'ended: carrier_hangup');";
    // The first migration only, as the previous release left the database, with its rows.
    match backend {
        Backend::Sqlite => {
            let path = db.url.trim_start_matches("sqlite://");
            let mut c = diesel::SqliteConnection::establish(path).expect("sqlite");
            c.run_next_migration(SQLITE).expect("first migration");
            c.batch_execute(old_rows).expect("old rows");
        }
        Backend::Postgres => {
            let mut c = diesel::PgConnection::establish(&db.url).expect("postgres");
            c.run_next_migration(POSTGRES).expect("first migration");
            c.batch_execute(old_rows).expect("old rows");
        }
    }
    let pool = db.pool();
    let mut c = pool.get().expect("connection");
    assert!(websocket_api::db::migrate(&mut c).expect("upgrade") >= 1);
    let old = db.stored("OLD-1", None).expect("the old call is still there");
    assert_eq!((old.row.attempt, old.row.frames_in), (0, 50), "{backend:?}");
    assert_eq!(
        old.row.instance_id, "",
        "{backend:?}: rows from before name no instance"
    );
    assert_eq!(old.events.len(), 2, "{backend:?}: its events too");
    let mut again =
        websocket_api::db::models::CallRecord::stub("OLD-1", 7, websocket_api::db::models::RecordState::Ended, 2);
    again.revision = 1;
    websocket_api::db::save_call(&mut c, &again).expect("a new attempt");
    let latest = db.stored("OLD-1", None).expect("stored");
    assert_eq!(latest.row.attempt, 7);
    assert_eq!(
        latest.attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        vec![7, 0]
    );
    assert_eq!(
        db.stored("OLD-1", Some(0)).map(|s| s.row.frames_in),
        Some(50),
        "{backend:?}: old attempt intact"
    );
    let mut long = websocket_api::db::models::CallRecord::stub(
        "LONG-INSTANCE",
        1,
        websocket_api::db::models::RecordState::Ended,
        2,
    );
    long.instance_id = "i".repeat(65);
    assert!(
        websocket_api::db::save_call(&mut c, &long).is_err(),
        "{backend:?}: an instance name is bounded on both backends"
    );
}

#[test]
fn sqlite_records_from_before_attempts_survive_the_upgrade() {
    records_from_before_attempts_survive_the_upgrade(Backend::Sqlite);
}

#[test]
fn postgres_records_from_before_attempts_survive_the_upgrade() {
    records_from_before_attempts_survive_the_upgrade(Backend::Postgres);
}
