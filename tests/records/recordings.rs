//! Recordings' rows (`call_recordings`) on SQLite and on PostgreSQL: a call recorded under a deep
//! directory (a path near what `recording.dir` allows) is stored and shown on `/calls/{id}`; a row with the
//! longest error the writer keeps, quotes, newlines and non-ASCII text reads back unchanged; and writing a
//! row again replaces it (a replayed spool changes nothing).

use crate::common::db::{Backend, TestDb};
use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::db::batcher::{FlushAll, Save};
use websocket_api::db::models::{DbWrite, RecordingRow};

async fn recording_rows_hold(backend: Backend) {
    let dir = scratch_dir("recording-rows");
    let db = TestDb::new(backend, &dir);
    // Five levels of 190 characters: a directory of about 1,000, as long as recording.dir may be.
    let deep = (0..5).fold(dir.clone(), |d, i| d.join(format!("{i}{}", "r".repeat(189))));
    let (url, recordings) = (db.url.clone(), deep.display().to_string());
    let h = start_echo(move |c| {
        c.database.url = url;
        c.recording.enabled = true;
        c.recording.dir = recordings;
    })
    .await;
    let mut conn = start_call(&h, "ROW-1", "stream-ROW-1", AudioFormat::ULAW_8K).await;
    let frames: Vec<Vec<u8>> = (0..25).map(|_| vec![0x7Fu8; 160]).collect();
    stream_frames(&conn, &frames).await;
    conn.close(1000);
    let _ = listen(&mut conn, Duration::from_millis(300)).await;
    let mut shown = serde_json::Value::Null;
    for _ in 0..50 {
        let _ = h.gw.db.send(FlushAll).await;
        shown = get_json(&h, "/calls/ROW-1").await.1;
        if !shown["recording"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let path = shown["recording"]["path"].as_str().unwrap_or_default().to_string();
    assert!(
        path.starts_with(&deep.display().to_string()) && path.len() > 1000,
        "{shown}"
    );
    assert!(std::path::Path::new(&path).exists(), "the file is where the row says");
    assert_eq!(shown["recording"]["complete"], true, "{shown}");

    let mut row = RecordingRow {
        call_id: "ROW-2".into(),
        carrier: "plivo".into(),
        attempt: 7,
        path: format!("/var/lib/websocket_api/{}", "p".repeat(4000)),
        bytes: 44,
        duration_ms: 0,
        complete: false,
        lost_ms: 1200,
        paused_ms: 0,
        error: Some(format!(
            "cannot write it: «No space left» 'quoted' \"double\"\n{}",
            "é".repeat(950)
        )),
        url: None,
        updated_at: 1,
    };
    let save = |row: &RecordingRow| Save {
        writes: vec![DbWrite::Recording(Box::new(row.clone()))],
    };
    h.gw.db.send(save(&row)).await.expect("sent");
    let _ = h.gw.db.send(FlushAll).await;
    row.url = Some("s3://bucket/2026/12/08/plivo/ROW-2-7.wav".into());
    row.updated_at = 2;
    h.gw.db.send(save(&row)).await.expect("sent");
    h.gw.db.send(save(&row)).await.expect("sent again, as a replay would");
    let _ = h.gw.db.send(FlushAll).await;
    let mut c = db.pool().get().expect("a connection");
    let stored = websocket_api::db::after_call::recording_of(&mut c, "ROW-2", "plivo", 7).expect("read");
    assert_eq!(
        stored.as_ref(),
        Some(&row),
        "read back unchanged, the second write replacing the first"
    );
    assert_eq!(h.gw.db_stats.dead_letter.get(), 0, "nothing refused");
    drop(h);
    drop(db);
}

#[actix_rt::test]
async fn sqlite_recording_rows_hold() {
    recording_rows_hold(Backend::Sqlite).await;
}

#[actix_rt::test]
async fn postgres_recording_rows_hold() {
    recording_rows_hold(Backend::Postgres).await;
}
