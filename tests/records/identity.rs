//! A record is its call's: two carriers' calls of one id are two records with their own events, even with
//! the same attempt number (two instances of a fleet may number attempts alike in the same millisecond),
//! on SQLite and on PostgreSQL; events spooled before calls were keyed by carrier replay as Mcube's.

use crate::common::db::{Backend, TestDb};
use crate::common::scratch_dir;
use websocket_api::db::models::{now_ms, CallEvent, CallRecord, DbWrite, RecordState};

fn record(carrier: &str, end_reason: &str) -> CallRecord {
    let mut rec = CallRecord::stub("SAME-ID", 42, RecordState::Ended, now_ms());
    rec.carrier = carrier.into();
    rec.end_reason = Some(end_reason.into());
    rec.revision = 2;
    rec
}

fn event(carrier: &str, detail: &str) -> CallEvent {
    CallEvent {
        call_id: "SAME-ID".into(),
        carrier: carrier.into(),
        attempt: 42,
        seq: 1,
        at_ms: now_ms(),
        kind: "user_transcript".into(),
        detail: detail.into(),
    }
}

fn two_carriers_one_id_and_attempt_are_two_records(backend: Backend) {
    let dir = scratch_dir("identity");
    let db = TestDb::new(backend, &dir);
    let pool = db.pool();
    let mut conn = pool.get().expect("db");
    websocket_api::db::migrate(&mut conn).expect("migrated");
    for (carrier, reason, said) in [("mcube", "admin", "hello"), ("plivo", "carrier_hangup", "namaste")] {
        websocket_api::db::save_call(&mut conn, &record(carrier, reason)).expect("saved");
        websocket_api::db::save_events(&mut conn, &[event(carrier, said)]).expect("events");
    }
    for (carrier, reason, said) in [("mcube", "admin", "hello"), ("plivo", "carrier_hangup", "namaste")] {
        let stored = websocket_api::db::get_call(&mut conn, "SAME-ID", Some(carrier), None)
            .expect("query")
            .unwrap_or_else(|| panic!("{backend:?}: {carrier}'s record"));
        assert_eq!(stored.row.carrier, carrier);
        assert_eq!(stored.row.end_reason.as_deref(), Some(reason), "{backend:?}");
        let details: Vec<&str> = stored.events.iter().map(|e| e.detail.as_str()).collect();
        assert_eq!(details, [said], "{backend:?}: {carrier}'s events only");
    }
    let all = websocket_api::db::get_call(&mut conn, "SAME-ID", None, None)
        .expect("query")
        .expect("a record");
    assert_eq!(all.attempts.len(), 2, "{backend:?}: both listed");
}

#[test]
fn sqlite_two_carriers_one_id_and_attempt_are_two_records() {
    two_carriers_one_id_and_attempt_are_two_records(Backend::Sqlite);
}

#[test]
fn postgres_two_carriers_one_id_and_attempt_are_two_records() {
    two_carriers_one_id_and_attempt_are_two_records(Backend::Postgres);
}

#[test]
fn an_event_spooled_before_carriers_keyed_calls_reads_as_mcubes() {
    let old = r#"{"kind":"events","data":[{"call_id":"C","attempt":1,"seq":1,"at_ms":5,"kind":"dtmf","detail":"5"}]}"#;
    match serde_json::from_str::<DbWrite>(old) {
        Ok(DbWrite::Events(events)) => assert_eq!(events[0].carrier, "mcube"),
        other => panic!("{other:?}"),
    }
}
