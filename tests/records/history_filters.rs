//! The history an operator searches, on SQLite and on PostgreSQL: `/calls/history` and
//! `/calls/history.csv` narrowed by time, carrier, route, agent, end reason, state and a call id or number;
//! a bad filter is a 400 naming it; the CSV opens in a spreadsheet (quoted cells, formulas defused) and
//! holds the same calls as the JSON.

use crate::common::db::{Backend, TestDb};
use crate::common::*;
use serde_json::Value;
use websocket_api::db::batcher::{FlushAll, Save};
use websocket_api::db::models::{CallRecord, DbWrite};

/// A finished call as the writer stores it.
fn record(id: &str, carrier: &str, route: &str, state: &str, reason: &str, from: &str, started_at: i64) -> CallRecord {
    CallRecord {
        call_id: id.into(),
        attempt: 1,
        carrier: carrier.into(),
        route: route.into(),
        agent_id: Some(format!("agent_{route}")),
        state: state.into(),
        end_reason: Some(reason.into()),
        from_number: from.into(),
        to_number: "+918001234567".into(),
        direction: "inbound".into(),
        started_at,
        ended_at: Some(started_at + 500),
        duration_ms: 500,
        instance_id: "gw-test".into(),
        revision: 1,
        updated_at: started_at + 500,
        ..Default::default()
    }
}

/// The call ids a history answer lists, in order.
fn ids(v: &Value) -> Vec<String> {
    v["calls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["call_id"].as_str().map(str::to_string))
        .collect()
}

/// One CSV document as rows of cells (RFC 4180: quoted cells may hold commas, quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell, mut quoted) = (Vec::new(), Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

async fn history_is_searched_by_every_filter(backend: Backend) {
    let dir = scratch_dir("history-filters");
    let db = TestDb::new(backend, &dir);
    let url = db.url.clone();
    let h = start(quiet_script(), |c| c.database.url = url).await;
    let t0 = 1_800_000_000_000;
    let mut hostile = record(
        "HF-A",
        "plivo",
        "sales",
        "ended",
        "carrier_hangup",
        "+914155551234",
        t0 + 1_000,
    );
    hostile.error_detail = Some("=HYPERLINK(\"http://x\"),\n\"quoted\"".into());
    let writes = vec![
        hostile,
        record(
            "HF-B",
            "twilio",
            "support",
            "rejected",
            "capacity",
            "+14155550100",
            t0 + 2_000,
        ),
        record(
            "HF-C",
            "mcube",
            "sales",
            "expired",
            "carrier_never_connected",
            "+919900011122",
            t0 + 3_000,
        ),
        // Live somewhere: never in the history.
        record("HF-D", "mcube", "sales", "active", "", "+919900011122", t0 + 4_000),
    ];
    let writes = writes.into_iter().map(|r| DbWrite::Call(Box::new(r))).collect();
    h.gw.db.send(Save { writes }).await.expect("saved");
    let _ = h.gw.db.send(FlushAll).await;

    let listed = |query: &'static str| {
        let h = &h;
        async move {
            let (status, v) = get_json(h, &format!("/calls/history?{query}")).await;
            assert_eq!(status, 200, "{query}: {v}");
            ids(&v)
        }
    };
    assert_eq!(
        listed("limit=10").await,
        ["HF-C", "HF-B", "HF-A"],
        "newest first, no live call"
    );
    assert_eq!(listed("carrier=plivo").await, ["HF-A"]);
    assert_eq!(listed("route=sales").await, ["HF-C", "HF-A"]);
    assert_eq!(listed("agent=agent_support").await, ["HF-B"]);
    assert_eq!(listed("state=rejected").await, ["HF-B"]);
    assert_eq!(listed("end_reason=carrier_never_connected").await, ["HF-C"]);
    assert_eq!(listed("q=HF-C").await, ["HF-C"], "a call id");
    assert_eq!(
        listed("q=%2B91%204155%20551234").await,
        ["HF-A"],
        "a number, by its digits"
    );
    assert_eq!(listed("q=9900011").await, ["HF-C"], "part of a number");
    let range = format!("since={}&before={}", t0 + 1_500, t0 + 3_000);
    let (_, v) = get_json(&h, &format!("/calls/history?{range}")).await;
    assert_eq!(ids(&v), ["HF-B"], "a time range");
    assert_eq!(
        listed("route=sales&state=ended&carrier=plivo").await,
        ["HF-A"],
        "filters combine"
    );
    assert!(listed("carrier=twilio&route=sales").await.is_empty());

    let (status, v) = get_json(&h, "/calls/history?carrier=skype").await;
    assert_eq!((status, v["field"].as_str()), (400, Some("carrier")), "{v}");
    let (status, v) = get_json(&h, "/calls/history?state=active").await;
    assert_eq!((status, v["field"].as_str()), (400, Some("state")), "{v}");

    let mut resp = awc::Client::default()
        .get(format!("{}/calls/history.csv?route=sales", h.gw.admin_url))
        .send()
        .await
        .expect("CSV answers");
    assert_eq!(resp.status().as_u16(), 200);
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(kind.starts_with("text/csv"), "{kind}");
    let body = resp.body().await.expect("body");
    let rows = parse_csv(&String::from_utf8_lossy(&body));
    assert_eq!(rows.len(), 3, "a header and the two calls: {rows:?}");
    let col = |name: &str| {
        rows[0]
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("{name} column"))
    };
    assert_eq!(&rows[0][..3], ["call_id", "attempt", "carrier"]);
    assert_eq!((rows[1][0].as_str(), rows[2][0].as_str()), ("HF-C", "HF-A"));
    assert!(
        rows.iter().all(|r| r.len() == rows[0].len()),
        "every row has every column"
    );
    assert_eq!(
        rows[2][col("from")],
        "'+914155551234",
        "a leading + is not read as a formula"
    );
    assert_eq!(
        rows[2][col("error_detail")],
        "'=HYPERLINK(\"http://x\"),\n\"quoted\"",
        "quotes, commas and line breaks survive, and the formula does not run"
    );
    assert_eq!(rows[1][col("end_reason")], "carrier_never_connected");
    drop(h);
    drop(db);
}

#[actix_rt::test]
async fn sqlite_history_is_searched_by_every_filter() {
    history_is_searched_by_every_filter(Backend::Sqlite).await;
}

#[actix_rt::test]
async fn postgres_history_is_searched_by_every_filter() {
    history_is_searched_by_every_filter(Backend::Postgres).await;
}
