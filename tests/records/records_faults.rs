//! No call record is ever lost: with the database gone mid-run calls still bridge and records spool; when
//! it is back every record is in it exactly once. A spool left by a process that died is replayed by the
//! next one, and calls a crash left open are closed as `aborted` (restart).

use crate::common::db::{Backend, Proxy, TestDb};
use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::db::batcher::FlushAll;
use websocket_api::db::models::{now_ms, CallRecord, RecordState};
use websocket_api::tools::sim::agent::AgentScript;

/// Places a short call that is bridged both ways, then hangs up.
async fn short_call(h: &Harness, id: &str) {
    let mut conn = start_call(h, id, "s", AudioFormat::ULAW_8K).await;
    for _ in 0..10 {
        conn.send_media(&[0xFF; 160]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let heard = listen(&mut conn, Duration::from_millis(400)).await;
    assert!(!audio_of(&heard).is_empty(), "{id}: bridged while the database is away");
    conn.close(1000);
}

fn greeting() -> AgentScript {
    AgentScript {
        greeting_ms: 200,
        ..quiet_script()
    }
}

fn assert_recorded_once(db: &TestDb, ids: &[String]) {
    for id in ids {
        let (row, events) = db
            .get_call(id)
            .unwrap_or_else(|| panic!("{id} missing after the database came back"));
        assert_eq!(row.state, "ended", "{id}");
        assert_eq!(row.frames_in, 10, "{id}");
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=events.len() as i64).collect::<Vec<_>>(),
            "{id}: each event once, none missing"
        );
        assert_eq!(
            events.iter().filter(|e| e.kind == "state").count(),
            2,
            "{id}: active + ended, once each"
        );
    }
}

#[actix_rt::test]
async fn postgres_outage_spools_then_replays_every_record_once() {
    let dir = scratch_dir("pg-outage");
    let db = TestDb::new(Backend::Postgres, &dir);
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let url = db.via(&proxy);
    let h = start(greeting(), |c| {
        c.database.url = url;
        c.database.connect_timeout_ms = 300;
    })
    .await;
    short_call(&h, "PG-BEFORE").await;
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await);
    let _ = h.gw.db.send(FlushAll).await;

    proxy.cut();
    let ids: Vec<String> = (0..3).map(|i| format!("PG-OUT-{i}")).collect();
    for id in &ids {
        short_call(&h, id).await;
    }
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await);
    let _ = h.gw.db.send(FlushAll).await;
    let stats = h.gw.db_stats.clone();
    assert!(stats.spooled.get() > 0, "records went to the spool");
    assert!(stats.spool_bytes.get() > 0);
    assert!(
        db.get_call("PG-OUT-0").is_none(),
        "nothing reached the database while it was away"
    );

    proxy.restore();
    let replayed = eventually(Duration::from_secs(10), || stats.spool_bytes.get() == 0).await;
    assert!(replayed, "spool replayed after the database came back");
    assert!(stats.replayed.get() > 0);
    assert_eq!(stats.lost.get(), 0);
    assert_recorded_once(&db, &ids);
    assert!(db.get_call("PG-BEFORE").is_some());
}

#[actix_rt::test]
async fn sqlite_locked_by_another_writer_spools_then_replays() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let dir = scratch_dir("sqlite-locked");
    let db = TestDb::new(Backend::Sqlite, &dir);
    let url = db.url.clone();
    let h = start(greeting(), |c| c.database.url = url).await;
    short_call(&h, "SQ-BEFORE").await;
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await);
    let _ = h.gw.db.send(FlushAll).await;

    // Another process holds the write lock: the gateway's writes fail after its busy timeout.
    let path = db.url.trim_start_matches("sqlite://").to_string();
    let mut locker = diesel::SqliteConnection::establish(&path).expect("open");
    locker.batch_execute("BEGIN EXCLUSIVE").expect("lock");
    let ids: Vec<String> = (0..2).map(|i| format!("SQ-LOCKED-{i}")).collect();
    for id in &ids {
        short_call(&h, id).await;
    }
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await);
    let stats = h.gw.db_stats.clone();
    assert!(
        eventually(Duration::from_secs(10), || stats.spooled.get() > 0).await,
        "records spooled"
    );
    locker.batch_execute("COMMIT").expect("unlock");
    drop(locker);
    let replayed = eventually(Duration::from_secs(15), || {
        stats.spool_bytes.get() == 0 && stats.replayed.get() > 0
    })
    .await;
    assert!(replayed, "spool replayed once the lock was gone");
    let _ = h.gw.db.send(FlushAll).await;
    assert_recorded_once(&db, &ids);
}

#[actix_rt::test]
async fn a_spool_left_by_a_dead_process_is_replayed_at_the_next_start() {
    let dir = scratch_dir("pg-restart");
    let db = TestDb::new(Backend::Postgres, &dir);
    let spool = dir.join("left.spool").display().to_string();
    let proxy = Proxy::start("127.0.0.1:5432").await;
    proxy.cut();
    let (url, spool1) = (db.via(&proxy), spool.clone());
    let first = start(greeting(), |c| {
        c.database.url = url;
        c.database.spool_path = spool1;
        c.database.connect_timeout_ms = 300;
    })
    .await;
    short_call(&first, "DEAD-1").await;
    assert!(active_becomes(&first, 0, Duration::from_secs(3)).await);
    let _ = first.gw.db.send(FlushAll).await;
    assert!(first.gw.db_stats.spooled.get() > 0);
    // The process goes away with its records only in the spool.
    first.gw.stop().await;
    drop(first);
    assert!(
        std::fs::metadata(&spool).map(|m| m.len() > 0).unwrap_or(false),
        "spool file left behind"
    );

    let (url, spool2) = (db.url.clone(), spool.clone());
    let second = start(quiet_script(), |c| {
        c.database.url = url;
        c.database.spool_path = spool2;
    })
    .await;
    let stats = second.gw.db_stats.clone();
    assert!(
        eventually(Duration::from_secs(5), || stats.replayed.get() > 0).await,
        "replayed once the gateway is up"
    );
    assert_recorded_once(&db, &["DEAD-1".to_string()]);
    assert!(std::fs::metadata(&spool).is_err(), "spool emptied");
}

async fn crash_left_rows_are_closed(backend: Backend) {
    let dir = scratch_dir("abandoned");
    let db = TestDb::new(backend, &dir);
    {
        let pool = db.pool();
        let mut c = pool.get().expect("db");
        websocket_api::db::migrate(&mut c).expect("migrate");
        let mut rec = CallRecord::stub("CRASHED-1", 1, RecordState::Active, now_ms() - 60_000);
        rec.revision = 3;
        websocket_api::db::save_call(&mut c, &rec).expect("insert");
    }
    let url = db.url.clone();
    let h = start(quiet_script(), |c| c.database.url = url).await;
    let _ = h.gw.db.send(FlushAll).await;
    let (row, _) = db.get_call("CRASHED-1").expect("row");
    assert_eq!(row.state, "aborted");
    assert_eq!(row.end_reason.as_deref(), Some("restart"));
    assert!(row.ended_at.is_some());
}

#[actix_rt::test]
async fn sqlite_crash_left_active_rows_are_aborted() {
    crash_left_rows_are_closed(Backend::Sqlite).await;
}

#[actix_rt::test]
async fn postgres_crash_left_active_rows_are_aborted() {
    crash_left_rows_are_closed(Backend::Postgres).await;
}
