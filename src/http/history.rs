//! `GET /calls/history` and `GET /calls/history.csv`: finished and refused calls, newest first, narrowed by
//! the same filters (time range, carrier, route, agent, end reason, state, a call id or a number), as JSON
//! or as CSV a spreadsheet opens. Every filter is read here into a typed, bounded value; a bad one is a 400
//! that names it.

use super::admin::refuse_admin;
use super::reply::read_db;
use super::state::AppState;
use crate::call::view::{CallView, Outcome};
use crate::carriers::Carrier;
use crate::db::history::{history, HistoryFilter, Search};
use crate::db::models::RecordState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;
use std::time::UNIX_EPOCH;

/// Most calls one JSON page returns, and one CSV export.
const HISTORY_MAX: i64 = 500;
const CSV_MAX: i64 = 10_000;
/// The longest text filter taken (a route's name is at most 64, an agent id or call id far less).
const MAX_FILTER: usize = 128;

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    limit: Option<i64>,
    /// Unix milliseconds or RFC 3339: only calls that started before it (the next page).
    before: Option<String>,
    /// Unix milliseconds or RFC 3339: only calls that started at or after it.
    since: Option<String>,
    carrier: Option<String>,
    route: Option<String>,
    agent: Option<String>,
    end_reason: Option<String>,
    state: Option<String>,
    /// A call id, or a number (any part of it, by its digits).
    q: Option<String>,
}

/// A filter an admin got wrong: 400 naming it and what it takes.
struct BadFilter(&'static str, &'static str);

impl HistoryQuery {
    /// The filter, every value checked once here.
    fn filter(&self) -> Result<HistoryFilter, BadFilter> {
        let time = |name, v: &Option<String>| match v.as_deref().map(parse_time) {
            Some(None) => Err(BadFilter(name, "unix milliseconds or RFC 3339")),
            Some(Some(ms)) => Ok(Some(ms)),
            None => Ok(None),
        };
        let carrier = self.carrier.as_deref().map(|name| {
            let carrier = Carrier::from_path(name).ok_or(BadFilter("carrier", "a carrier's name"))?;
            Ok(carrier.as_str())
        });
        let state = self.state.as_deref().map(|name| {
            RecordState::parse(name)
                .filter(|s| !RecordState::LIVE.contains(s))
                .ok_or(BadFilter("state", "ended, rejected, expired, aborted or reported"))
        });
        Ok(HistoryFilter {
            before: time("before", &self.before)?,
            since: time("since", &self.since)?,
            carrier: carrier.transpose()?,
            route: text(("route", "a route's name, no control character"), &self.route, |c| {
                !c.is_control()
            })?,
            agent: text(
                ("agent", "an agent id: letters, digits and marks, no space"),
                &self.agent,
                |c| c.is_ascii_graphic(),
            )?,
            end_reason: text(
                ("end_reason", "an end reason: lowercase letters and _"),
                &self.end_reason,
                |c| c.is_ascii_lowercase() || c == '_',
            )?,
            state: state.transpose()?,
            search: search(&self.q)?,
        })
    }
}

/// A text filter: at most `MAX_FILTER` characters, each passing `ok`; refused, `(name, takes)` says why.
fn text(
    (name, takes): (&'static str, &'static str),
    v: &Option<String>,
    ok: impl Fn(char) -> bool,
) -> Result<Option<String>, BadFilter> {
    match v.as_deref() {
        None => Ok(None),
        Some(s) if !s.is_empty() && s.chars().count() <= MAX_FILTER && s.chars().all(ok) => Ok(Some(s.into())),
        Some(_) => Err(BadFilter(name, takes)),
    }
}

/// `q`: a call id exactly, or, with three digits or more, a number containing them.
fn search(q: &Option<String>) -> Result<Option<Search>, BadFilter> {
    let Some(q) = q.as_deref().map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    if q.chars().count() > MAX_FILTER || q.chars().any(char::is_control) {
        return Err(BadFilter("q", "a call id or a number, at most 128 characters"));
    }
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    Ok(Some(Search {
        call_id: q.to_string(),
        digits: (digits.len() >= 3).then_some(digits),
    }))
}

fn parse_time(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().or_else(|| {
        humantime::parse_rfc3339_weak(s)
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as i64)
    })
}

/// The calls `query` asks for (at most `max`), or the answer that refuses it.
async fn calls(
    req: &HttpRequest,
    query: &HistoryQuery,
    state: &AppState,
    default: i64,
    max: i64,
) -> Result<Vec<CallView>, HttpResponse> {
    if let Some(refusal) = refuse_admin(req, state) {
        return Err(refusal);
    }
    let filter = query.filter().map_err(|BadFilter(name, takes)| {
        HttpResponse::BadRequest().json(serde_json::json!({"error": "invalid_filter", "field": name, "takes": takes}))
    })?;
    let limit = query.limit.unwrap_or(default).clamp(1, max);
    let read = move |c: &mut crate::db::DbConnection| {
        let rows = history(c, limit, &filter)?;
        let records: Vec<_> = rows.iter().map(|r| r.call.clone()).collect();
        let outcomes = crate::db::after_call::outcomes(c, &records)?;
        Ok((rows, outcomes))
    };
    let (rows, outcomes) = read_db(&state.pool, read).await?;
    let shown = rows
        .into_iter()
        .zip(outcomes)
        .map(|(row, (verdict, recording))| CallView {
            outcome: Outcome::of(verdict.as_ref(), recording.as_ref()),
            ..CallView::of_row(row)
        });
    Ok(shown.collect())
}

/// `GET /calls/history`: finished and refused calls, newest first, as JSON (`limit` up to 500; `before`
/// for the next page).
pub async fn call_history(
    req: HttpRequest,
    query: web::Query<HistoryQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    match calls(&req, &query, &state, 50, HISTORY_MAX).await {
        Ok(calls) => HttpResponse::Ok().json(serde_json::json!({ "calls": calls })),
        Err(resp) => resp,
    }
}

/// `GET /calls/history.csv`: the same calls as CSV (`limit` up to 10,000), one row per call, a column per
/// field of the call's view.
pub async fn call_history_csv(
    req: HttpRequest,
    query: web::Query<HistoryQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    match calls(&req, &query, &state, 1_000, CSV_MAX).await {
        Ok(calls) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header(("content-disposition", "attachment; filename=\"calls-history.csv\""))
            .body(csv(&calls)),
        Err(resp) => resp,
    }
}

/// The columns an operator reads first; every other field of the view follows, by name.
const FIRST_COLUMNS: [&str; 12] = [
    "call_id",
    "attempt",
    "carrier",
    "state",
    "end_reason",
    "started_at",
    "ended_at",
    "duration_ms",
    "route",
    "agent_id",
    "from",
    "to",
];

/// Calls as CSV (RFC 4180, CRLF): the columns are the view's fields (an object's as `name.field`, a list's
/// items joined by `;`), so a field added to the view is a column without more code.
pub fn csv(calls: &[CallView]) -> String {
    let template = flat(&CallView::of(Default::default()));
    let mut columns: Vec<String> = FIRST_COLUMNS.iter().map(|c| c.to_string()).collect();
    let rest = template
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !FIRST_COLUMNS.contains(&k.as_str()));
    columns.extend(rest.cloned());
    let mut out = line(columns.iter().map(String::as_str));
    for call in calls {
        let fields = flat(call);
        let cell = |c: &String| fields.iter().find(|(k, _)| k == c).map_or("", |(_, v)| v.as_str());
        out.push_str(&line(columns.iter().map(cell)));
    }
    out
}

/// A view as `(column, text)` pairs, sorted by column.
fn flat(call: &CallView) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(Value::Object(fields)) = serde_json::to_value(call) {
        for (name, value) in fields {
            match value {
                Value::Object(inner) => {
                    out.extend(inner.into_iter().map(|(k, v)| (format!("{name}.{k}"), scalar(&v))));
                }
                other => out.push((name, scalar(&other))),
            }
        }
    }
    out.sort();
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

/// One CSV line. A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, a tab or CR first) is
/// led by `'`, so a caller's or carrier's text never runs as one; a cell with a comma, quote or line break
/// is quoted.
fn line<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    let cells: Vec<String> = cells
        .map(|cell| {
            let cell = match cell.chars().next() {
                Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
                _ => cell.to_string(),
            };
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell
            }
        })
        .collect();
    format!("{}\r\n", cells.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::CallRecord;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(
            line(["a", "b,c", "say \"hi\"", "x\ny"].into_iter()),
            "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\r\n"
        );
        assert_eq!(line(["=1+1", "+91", "@x", "-2"].into_iter()), "'=1+1,'+91,'@x,'-2\r\n");
    }

    #[test]
    fn every_field_of_the_view_is_a_column_and_the_first_are_fixed() {
        let record = CallRecord {
            call_id: "C-1".into(),
            carrier: "plivo".into(),
            conversation_ids: "conv_a,conv_b".into(),
            ..Default::default()
        };
        let out = csv(&[CallView::of(record)]);
        let mut rows = out.split("\r\n");
        let header: Vec<&str> = rows.next().expect("header").split(',').collect();
        assert_eq!(&header[..3], ["call_id", "attempt", "carrier"]);
        assert!(
            header.contains(&"turn_p95_ms") && header.contains(&"recording_url"),
            "{header:?}"
        );
        let row: Vec<&str> = rows.next().expect("row").split(',').collect();
        assert_eq!(row.len(), header.len());
        assert_eq!((row[0], row[2]), ("C-1", "plivo"));
        let conversations = header.iter().position(|c| *c == "conversation_ids").expect("column");
        assert_eq!(row[conversations], "conv_a;conv_b", "a list's items joined");
    }

    #[test]
    fn a_bad_filter_is_named_and_a_number_is_searched_by_its_digits() {
        let q = |s: &str| -> HistoryQuery { serde_urlencoded::from_str(s).expect("query") };
        assert!(matches!(q("carrier=skype").filter(), Err(BadFilter("carrier", _))));
        assert!(
            matches!(q("state=active").filter(), Err(BadFilter("state", _))),
            "live states are not history"
        );
        assert!(matches!(q("since=yesterday").filter(), Err(BadFilter("since", _))));
        assert!(matches!(
            q("end_reason=DROP%20TABLE").filter(),
            Err(BadFilter("end_reason", _))
        ));
        let f = q("q=%2B91%2080-1234&carrier=twilio&state=rejected")
            .filter()
            .ok()
            .expect("valid");
        assert_eq!(f.search.and_then(|s| s.digits).as_deref(), Some("91801234"));
        assert_eq!((f.carrier, f.state), (Some("twilio"), Some(RecordState::Rejected)));
    }
}
