//! A writer no single row can block, on SQLite and on PostgreSQL (which refuses things SQLite accepts). A
//! row the database refuses — a NUL, a 1 MB value past a column's bound, a value that is valid JSON in the
//! spool but not valid for the column — goes to the dead-letter file with the database's error and is
//! counted, and the rows around it are stored. A database that is unavailable is told apart: everything is
//! spooled, nothing set aside, and replayed when it is back. And the property behind the edge: any string
//! in any carrier field, or in any field of ElevenLabs' post-call webhook, is either refused with a reason
//! or stored and read back, and never blocks a later record.

use crate::common::db::{Backend, Proxy, TestDb};
use crate::common::scratch_dir;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use websocket_api::call::CallInfo;
use websocket_api::carriers::mcube::refurl::{parse_refurl, Refurl};
use websocket_api::carriers::stream::{parse_event, CarrierEvent};
use websocket_api::db::models::{now_ms, CallEvent, CallRecord, DbWrite, RecordState, StatusReport};
use websocket_api::db::spool::{DeadLetters, Spool};
use websocket_api::db::writer::{DbStats, Replay, Writer};

struct Bench {
    db: TestDb,
    dir: PathBuf,
    writer: Writer,
    stats: Arc<DbStats>,
}

fn writer_for(url: &str, dir: &Path) -> (Writer, Arc<DbStats>) {
    let target = websocket_api::db::DbTarget::parse(url).expect("url");
    let pool = websocket_api::db::pool(&target, 2, Duration::from_millis(500)).expect("pool");
    let stats = Arc::new(DbStats::new(&prometheus::Registry::new()).expect("metrics"));
    let spool = Spool::open(dir.join("spool.jsonl"), 64 << 20);
    let dead = DeadLetters::open(dir.join("dead-letter.jsonl"), 64 << 20);
    (Writer::new(pool, spool, dead, stats.clone(), now_ms()), stats)
}

fn bench(backend: Backend, tag: &str) -> Bench {
    let dir = scratch_dir(tag);
    let db = TestDb::new(backend, &dir);
    let (writer, stats) = writer_for(&db.url, &dir);
    Bench { db, dir, writer, stats }
}

fn call(id: &str) -> CallRecord {
    let mut rec = CallRecord::stub(id, 1, RecordState::Ended, now_ms());
    rec.revision = 1;
    rec
}

fn event(id: &str, detail: &str) -> CallEvent {
    CallEvent {
        call_id: id.into(),
        carrier: "mcube".into(),
        attempt: 1,
        seq: 1,
        at_ms: now_ms(),
        kind: "user_transcript".into(),
        detail: detail.into(),
    }
}

fn status(id: &str, dial_status: &str) -> DbWrite {
    DbWrite::Status(StatusReport {
        call_id: id.into(),
        attempt: Some(1),
        dial_status: dial_status.into(),
        recording_url: None,
        at_ms: now_ms(),
    })
}

fn boxed(rec: CallRecord) -> DbWrite {
    DbWrite::Call(Box::new(rec))
}

fn dead_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("dead-letter.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a dead letter is a JSON line"))
        .collect()
}

const MEGABYTE: usize = 1 << 20;

fn refused_rows_never_hold_back_the_others(backend: Backend) {
    let mut b = bench(backend, "poison");
    let nul = call("P-NUL");
    let mut nul = nul;
    nul.from_number = "+91\u{0}4155551234".into();
    let mut huge = call("P-HUGE");
    huge.error_detail = Some("x".repeat(MEGABYTE));
    let batch = vec![
        boxed(call("P-OK-1")),
        boxed(nul),
        boxed(call("P-OK-2")),
        boxed(huge),
        DbWrite::Events(vec![event("P-OK-2", &"y".repeat(MEGABYTE))]),
        status("P-OK-1", "ANS\u{0}WER"),
        boxed(call("P-OK-3")),
    ];
    b.writer.write(batch);
    b.writer.write(vec![boxed(call("P-AFTER"))]);
    for id in ["P-OK-1", "P-OK-2", "P-OK-3", "P-AFTER"] {
        assert!(b.db.get_call(id).is_some(), "{backend:?}: {id} stored");
    }
    // Past the bounds both backends keep: refused by both.
    assert!(b.db.get_call("P-HUGE").is_none());
    // A NUL: PostgreSQL refuses it, SQLite stores it and gives it back.
    let expect_nul_refused = backend == Backend::Postgres;
    match b.db.get_call("P-NUL") {
        Some((row, _)) => {
            assert!(!expect_nul_refused, "PostgreSQL stored a NUL?");
            assert_eq!(row.from_number, "+91\u{0}4155551234", "read back as written");
        }
        None => assert!(expect_nul_refused, "{backend:?}: P-NUL neither stored nor refused"),
    }
    let refused = if expect_nul_refused { 4 } else { 2 };
    assert_eq!(b.stats.dead_letter.get(), refused, "{backend:?}: dead letters counted");
    assert_eq!(
        b.stats.spooled.get(),
        0,
        "{backend:?}: a refused row is not 'unavailable'"
    );
    let letters = dead_lines(&b.dir);
    assert_eq!(letters.len() as u64, refused);
    assert!(
        letters
            .iter()
            .all(|l| l["error"].as_str().is_some_and(|e| e.starts_with("db: row refused")) && l["write"].is_object()),
        "each dead letter keeps the write and the database's error: {:?}",
        letters.iter().map(|l| l["error"].clone()).collect::<Vec<_>>()
    );
    assert!(
        b.stats.summary()["dead_letter_total"] == refused,
        "{}",
        b.stats.summary()
    );
}

/// A corrected agent response rewrites its stored event (by key), is inserted when the original never
/// arrived, and a revision the database refuses is set aside like any refused row.
fn corrections_replace_stored_events(backend: Backend) {
    let mut b = bench(backend, "revise");
    let revised = |seq: i64, detail: &str| CallEvent {
        seq,
        kind: "agent_response".into(),
        ..event("R-1", detail)
    };
    b.writer.write(vec![
        boxed(call("R-1")),
        DbWrite::Events(vec![revised(1, "Your order ships on Monday and")]),
    ]);
    b.writer.write(vec![
        DbWrite::Revise(revised(1, "Your order ships on Monday")),
        DbWrite::Revise(revised(2, "never saved before")),
        DbWrite::Revise(revised(1, "with a NUL\u{0}")),
    ]);
    let stored = b.db.stored("R-1", Some(1)).expect("stored");
    let details: Vec<(i64, &str)> = stored.events.iter().map(|e| (e.seq, e.detail.as_str())).collect();
    match backend {
        // PostgreSQL refuses the NUL: that revision is a dead letter and the one before stands.
        Backend::Postgres => {
            assert_eq!(details, [(1, "Your order ships on Monday"), (2, "never saved before")]);
            assert_eq!(b.stats.dead_letter.get(), 1);
        }
        Backend::Sqlite => assert_eq!(details, [(1, "with a NUL\u{0}"), (2, "never saved before")]),
    }
}

#[test]
fn sqlite_corrections_replace_stored_events() {
    corrections_replace_stored_events(Backend::Sqlite);
}

#[test]
fn postgres_corrections_replace_stored_events() {
    corrections_replace_stored_events(Backend::Postgres);
}

#[test]
fn sqlite_refused_rows_never_hold_back_the_others() {
    refused_rows_never_hold_back_the_others(Backend::Sqlite);
}

#[test]
fn postgres_refused_rows_never_hold_back_the_others() {
    refused_rows_never_hold_back_the_others(Backend::Postgres);
}

/// A spool written while the database was away, holding lines that are valid JSON but not valid for the
/// column (a NUL, an id past the key's bound), and a line torn by a crash: replay stores the rest.
fn a_poisoned_spool_replays_around_its_bad_lines(backend: Backend) {
    let dir = scratch_dir("poison-spool");
    let db = TestDb::new(backend, &dir);
    let long_id = "L".repeat(300);
    let line = |id: &str, from: &str| {
        format!(
            r#"{{"kind":"call","data":{{"call_id":"{id}","attempt":1,"stream_id":null,"carrier":"mcube","direction":"inbound","from_number":"{from}","to_number":"","agent_id":null,"conversation_id":null,"state":"ended","end_reason":null,"started_at":1,"answered_at":null,"ended_at":null,"duration_ms":0,"frames_in":0,"frames_out":0,"bytes_in":0,"bytes_out":0,"interruptions":0,"upstream_reconnects":0,"carrier_format":null,"agent_input_format":null,"agent_output_format":null,"error_detail":null,"revision":1,"updated_at":1}}}}"#
        ) + "\n"
    };
    let text = [
        line("S-1", "+914155551234"),
        line("S-NUL", "+91\\u00004155551234"),
        line(&long_id, ""),
        // Torn by a crash; the next append sealed it with a newline.
        "{\"kind\":\"call\",\"da\n".to_string(),
        line("S-2", ""),
    ]
    .concat();
    std::fs::write(dir.join("spool.jsonl"), text).expect("spool");
    let (mut writer, stats) = writer_for(&db.url, &dir);
    assert_eq!(writer.replay(Duration::from_secs(10)), Replay::Empty);
    for id in ["S-1", "S-2"] {
        assert!(db.get_call(id).is_some(), "{backend:?}: {id} replayed");
    }
    assert!(db.get_call(&long_id).is_none());
    let refused = if backend == Backend::Postgres { 2 } else { 1 };
    assert_eq!(stats.dead_letter.get(), refused, "{backend:?}");
    assert_eq!(
        stats.spool_torn.get(),
        1,
        "the torn line is counted, and costs only itself"
    );
    assert_eq!(stats.replayed.get(), 4, "{backend:?}: every readable line dealt with");
    assert!(!dir.join("spool.jsonl").exists(), "the spool is emptied");
}

#[test]
fn sqlite_a_poisoned_spool_replays_around_its_bad_lines() {
    a_poisoned_spool_replays_around_its_bad_lines(Backend::Sqlite);
}

#[test]
fn postgres_a_poisoned_spool_replays_around_its_bad_lines() {
    a_poisoned_spool_replays_around_its_bad_lines(Backend::Postgres);
}

/// The database going away is not a refused row: everything spools, nothing is set aside; once it is back,
/// the replay stores the good rows and only then sets the bad one aside.
#[actix_rt::test]
async fn an_unavailable_database_spools_instead_of_refusing() {
    let dir = scratch_dir("poison-outage");
    let db = TestDb::new(Backend::Postgres, &dir);
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let (writer, stats) = writer_for(&db.via(&proxy), &dir);
    proxy.cut();
    let mut nul = call("O-NUL");
    nul.to_number = "\u{0}".into();
    let batch = vec![boxed(call("O-1")), boxed(nul), boxed(call("O-2"))];
    // The writer blocks on the database; the proxy runs on this thread's runtime, so the writer does not.
    let writer = tokio::task::spawn_blocking(move || {
        let mut w = writer;
        w.write(batch);
        w
    })
    .await
    .expect("writer thread");
    assert_eq!(stats.spooled.get(), 3, "all spooled");
    assert_eq!(
        stats.dead_letter.get(),
        0,
        "nothing refused while the database was away"
    );
    proxy.restore();
    let replay = tokio::task::spawn_blocking(move || {
        let mut w = writer;
        w.replay(Duration::from_secs(10))
    })
    .await
    .expect("writer thread");
    assert_eq!(replay, Replay::Empty);
    assert!(db.get_call("O-1").is_some() && db.get_call("O-2").is_some());
    assert_eq!(
        stats.dead_letter.get(),
        1,
        "the NUL row is refused once the database answers"
    );
}

// ----- the property behind the edge -----------------------------------------------------------------

/// Where a carrier's string can go.
#[derive(Debug, Clone, Copy)]
enum Field {
    CallId,
    From,
    To,
    Direction,
    DialStatus,
    Recording,
    StreamId,
    Digit,
}

fn any_field() -> impl Strategy<Value = Field> {
    prop::sample::select(vec![
        Field::CallId,
        Field::From,
        Field::To,
        Field::Direction,
        Field::DialStatus,
        Field::Recording,
        Field::StreamId,
        Field::Digit,
    ])
}

/// Any string, weighted towards what breaks databases: control characters, NULs, long runs, wide
/// characters, and things that look right.
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f +0-9a-zA-Z\u{e9}\u{1F600}]{0,40}",
        ("[0-9+]{1,12}", "[\\x00\\x07\\n]", "[0-9]{0,12}").prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        (1usize..5000).prop_map(|n| "9".repeat(n)),
        prop::sample::select(vec![
            "+914155551234",
            "anonymous",
            "ANSWER",
            "Executive Busy",
            "inbound",
            "https://rec.example/a.mp3",
            "#",
            "5",
            "stream-1",
            ""
        ])
        .prop_map(str::to_string),
    ]
}

/// The writes a string in `field` leads to, built by the gateway's own path from the validated values; or
/// `None` with the reason it was refused at the edge.
fn through_the_edge(field: Field, value: &str, id: &str) -> Result<Vec<DbWrite>, String> {
    let v = serde_json::Value::String(value.to_string());
    let mut body = serde_json::json!({"callId": id, "fromNumber": "+914155551234"});
    let key = match field {
        Field::CallId => "callId",
        Field::From => "fromNumber",
        Field::To => "toNumber",
        Field::Direction => "callDirection",
        Field::DialStatus => "dialStatus",
        Field::Recording => {
            body["dialStatus"] = "ANSWER".into();
            "filename"
        }
        Field::StreamId | Field::Digit => "unused",
    };
    body[key] = v.clone();
    let refused = |e: &dyn std::fmt::Display| e.to_string();
    let info = match parse_refurl(body.to_string().as_bytes()).map_err(|e| refused(&e.invalid))? {
        Refurl::Admit(a) => CallInfo {
            call_id: a.call_id,
            attempt: websocket_api::db::models::new_attempt(),
            from: a.from,
            to: a.to,
            direction: a.direction,
            carrier: websocket_api::carriers::Carrier::Mcube,
            route: None,
        },
        Refurl::Status {
            call_id,
            dial_status,
            recording,
        } => {
            return Ok(vec![DbWrite::Status(StatusReport {
                call_id: call_id.to_string(),
                attempt: None,
                dial_status: dial_status.as_str().into(),
                recording_url: recording.map(|r| r.to_string()),
                at_ms: now_ms(),
            })])
        }
    };
    let mut rec = info.record(RecordState::Ended, now_ms());
    rec.revision = 1;
    let mut writes = Vec::new();
    match field {
        Field::StreamId => {
            let frame = serde_json::json!({"event": "start", "start": {"streamId": v}}).to_string();
            match parse_event(&frame).map_err(|e| refused(&e))? {
                CarrierEvent::Start(s) => rec.stream_id = s.stream_id.map(|s| s.to_string()),
                other => return Err(format!("not a start: {other:?}")),
            }
        }
        Field::Digit => {
            let frame = serde_json::json!({"event": "dtmf", "dtmf": {"digit": v}}).to_string();
            match parse_event(&frame).map_err(|e| refused(&e))? {
                CarrierEvent::Dtmf { digit } => writes.push(DbWrite::Events(vec![CallEvent {
                    call_id: rec.call_id.clone(),
                    carrier: rec.carrier.clone(),
                    attempt: rec.attempt,
                    seq: 1,
                    at_ms: now_ms(),
                    kind: "dtmf".into(),
                    detail: digit.to_string(),
                }])),
                other => return Err(format!("not a dtmf: {other:?}")),
            }
        }
        _ => {}
    }
    writes.insert(0, DbWrite::Call(Box::new(rec)));
    Ok(writes)
}

fn read_back(db: &TestDb, writes: &[DbWrite]) -> Result<(), String> {
    for w in writes {
        match w {
            DbWrite::Call(rec) => {
                let stored = db
                    .stored(&rec.call_id, Some(rec.attempt))
                    .ok_or("the call was not stored")?;
                let r = stored.row;
                let same = r.from_number == rec.from_number
                    && r.to_number == rec.to_number
                    && r.direction == rec.direction
                    && r.stream_id == rec.stream_id;
                if !same {
                    return Err(format!("read back differs: {r:?} vs {rec:?}"));
                }
            }
            DbWrite::Events(events) => {
                let stored = db
                    .stored(&events[0].call_id, Some(events[0].attempt))
                    .ok_or("no call")?;
                if stored
                    .events
                    .iter()
                    .map(|e| &e.detail)
                    .ne(events.iter().map(|e| &e.detail))
                {
                    return Err(format!("events differ: {:?}", stored.events));
                }
            }
            DbWrite::Recording(row) => {
                let mut conn = db.pool().get().map_err(|e| e.to_string())?;
                let stored =
                    websocket_api::db::after_call::recording_of(&mut conn, &row.call_id, &row.carrier, row.attempt)
                        .map_err(|e| e.to_string())?;
                if stored.as_ref() != Some(&**row) {
                    return Err(format!("recording read back differs: {stored:?}"));
                }
            }
            DbWrite::Analysis(row) => {
                let mut conn = db.pool().get().map_err(|e| e.to_string())?;
                let stored =
                    websocket_api::db::after_call::analyses_of(&mut conn, std::slice::from_ref(&row.conversation_id))
                        .map_err(|e| e.to_string())?;
                if stored.first() != Some(&**row) {
                    return Err(format!("analysis read back differs: {stored:?}"));
                }
            }
            DbWrite::Revise(event) => {
                let stored = db.stored(&event.call_id, Some(event.attempt)).ok_or("no call")?;
                if !stored
                    .events
                    .iter()
                    .any(|e| e.seq == event.seq && e.detail == event.detail)
                {
                    return Err(format!("revision not stored: {:?}", stored.events));
                }
            }
            DbWrite::Status(report) => {
                let (r, _) = db.get_call(&report.call_id).ok_or("the status was not stored")?;
                if r.dial_status.as_deref() != Some(report.dial_status.as_str())
                    || r.recording_url != report.recording_url
                {
                    return Err(format!("status differs: {r:?}"));
                }
            }
        }
    }
    Ok(())
}

fn any_carrier_string_is_refused_or_kept(backend: Backend) {
    // The runner takes an `Fn`: the writer and the case number live in cells.
    let b = std::cell::RefCell::new(bench(backend, "edge-property"));
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 96,
        failure_persistence: None,
        ..Default::default()
    });
    let n = std::cell::Cell::new(0u32);
    let result = runner.run(&(any_field(), any_string()), |(field, value)| {
        n.set(n.get() + 1);
        let id = format!("PROP-{}", n.get());
        let b = &mut *b.borrow_mut();
        match through_the_edge(field, &value, &id) {
            Err(reason) => prop_assert!(
                !reason.is_empty() && !reason.contains('\0'),
                "refused without a usable reason"
            ),
            Ok(writes) => {
                b.writer.write(writes.clone());
                prop_assert_eq!(
                    b.stats.dead_letter.get(),
                    0,
                    "{:?} {:?}: a validated value was refused by the database",
                    field,
                    value
                );
                if let Err(e) = read_back(&b.db, &writes) {
                    prop_assert!(false, "{:?} {:?}: {}", field, value, e);
                }
            }
        }
        // Whatever came before, the next ordinary record is stored.
        let sentinel = format!("SENTINEL-{}", n.get());
        b.writer.write(vec![boxed(call(&sentinel))]);
        prop_assert!(
            b.db.get_call(&sentinel).is_some(),
            "{:?} {:?} blocked a later record",
            field,
            value
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{backend:?}: {e}");
    }
    assert_eq!(b.borrow().stats.spooled.get(), 0);
}

#[test]
fn sqlite_any_carrier_string_is_refused_or_kept() {
    any_carrier_string_is_refused_or_kept(Backend::Sqlite);
}

#[test]
fn postgres_any_carrier_string_is_refused_or_kept() {
    any_carrier_string_is_refused_or_kept(Backend::Postgres);
}

/// Any string in any field of ElevenLabs' post-call webhook is read at the edge (cut to its bound, NULs
/// taken out) and then stored and read back as read, or the body is refused with a reason; and never blocks
/// a later record.
fn any_webhook_string_is_stored_as_read(backend: Backend) {
    use websocket_api::db::models::AnalysisRow;
    use websocket_api::protocol::post_call::{parse, Delivery};
    let b = std::cell::RefCell::new(bench(backend, "webhook-property"));
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 64,
        failure_persistence: None,
        ..Default::default()
    });
    let n = std::cell::Cell::new(0u32);
    let result = runner.run(&any_string(), |value| {
        n.set(n.get() + 1);
        let body = serde_json::json!({
            "type": "post_call_transcription", "event_timestamp": value,
            "data": {
                "conversation_id": format!("conv-prop-{}", n.get()), "agent_id": value, "status": value,
                "analysis": {"call_successful": value, "transcript_summary": value, "call_summary_title": value,
                             "data_collection_results": {value.clone(): value}},
                "metadata": {"termination_reason": value, "main_language": value, "cost": value},
                "transcript": [{"role": "user", "message": value}]
            }
        });
        let b = &mut *b.borrow_mut();
        match parse(body.to_string().as_bytes()) {
            Err(reason) => prop_assert!(!reason.0.is_empty(), "refused without a reason"),
            Ok(Delivery::Other(kind)) => prop_assert!(false, "read as another type: {}", kind),
            Ok(Delivery::Outcome(outcome)) => {
                let writes = vec![DbWrite::Analysis(Box::new(AnalysisRow::of(*outcome, "webhook")))];
                b.writer.write(writes.clone());
                prop_assert_eq!(b.stats.dead_letter.get(), 0, "{:?}: refused by the database", value);
                if let Err(e) = read_back(&b.db, &writes) {
                    prop_assert!(false, "{:?}: {}", value, e);
                }
            }
        }
        let sentinel = format!("SENTINEL-W-{}", n.get());
        b.writer.write(vec![boxed(call(&sentinel))]);
        prop_assert!(b.db.get_call(&sentinel).is_some(), "{:?} blocked a later record", value);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{backend:?}: {e}");
    }
}

#[test]
fn sqlite_any_webhook_string_is_stored_as_read() {
    any_webhook_string_is_stored_as_read(Backend::Sqlite);
}

#[test]
fn postgres_any_webhook_string_is_stored_as_read() {
    any_webhook_string_is_stored_as_read(Backend::Postgres);
}

/// The route a call was admitted on is stored at its bound (64 characters: what config allows) on both
/// backends, and a longer one (config never lets one through) is refused by the table's CHECK, set aside
/// as a dead letter, never stored cut.
fn route_names_are_stored_at_their_bound(backend: Backend) {
    let mut b = bench(backend, "route-bound");
    let longest = "r".repeat(64);
    let mut routed = call("ROUTED-1");
    routed.route = longest.clone();
    let mut over = call("ROUTED-2");
    over.route = "r".repeat(65);
    b.writer.write(vec![boxed(routed), boxed(over)]);
    let stored = b.db.stored("ROUTED-1", Some(1)).expect("stored");
    assert_eq!(stored.row.call.route, longest);
    assert!(
        b.db.stored("ROUTED-2", Some(1)).is_none(),
        "an over-long route is not stored"
    );
    assert_eq!(b.stats.dead_letter.get(), 1);
}

#[test]
fn sqlite_route_names_are_stored_at_their_bound() {
    route_names_are_stored_at_their_bound(Backend::Sqlite);
}

#[test]
fn postgres_route_names_are_stored_at_their_bound() {
    route_names_are_stored_at_their_bound(Backend::Postgres);
}
