//! What a call leaves after it ends, beside its record: the gateway's recording of each attempt
//! (`call_recordings`) and ElevenLabs' verdict on each conversation (`call_analyses`).

use super::models::{AnalysisRow, CallRecord, RecordingRow};
use super::schema::{call_analyses, call_recordings};
use super::DbConnection;
use diesel::prelude::*;

/// Writes a recording's row, replacing the one of its attempt (a replay writes it again, unchanged).
pub fn save_recording(conn: &mut DbConnection, row: &RecordingRow) -> QueryResult<()> {
    let updated = diesel::update(
        call_recordings::table
            .filter(call_recordings::call_id.eq(&row.call_id))
            .filter(call_recordings::carrier.eq(&row.carrier))
            .filter(call_recordings::attempt.eq(row.attempt)),
    )
    .set(row)
    .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(call_recordings::table).values(row).execute(conn)?;
    }
    Ok(())
}

/// Keeps a conversation's verdict unless it has one: ElevenLabs retries a delivery, and a retry (or the
/// reconciler's fetch after the webhook came) changes nothing.
pub fn save_analysis(conn: &mut DbConnection, row: &AnalysisRow) -> QueryResult<()> {
    let known: i64 = call_analyses::table
        .filter(call_analyses::conversation_id.eq(&row.conversation_id))
        .count()
        .get_result(conn)?;
    if known == 0 {
        diesel::insert_into(call_analyses::table).values(row).execute(conn)?;
    }
    Ok(())
}

/// The verdicts on `conversations` (a call's, one per dial), in their order.
pub fn analyses_of(conn: &mut DbConnection, conversations: &[String]) -> QueryResult<Vec<AnalysisRow>> {
    let mut found: Vec<AnalysisRow> = call_analyses::table
        .filter(call_analyses::conversation_id.eq_any(conversations))
        .select(AnalysisRow::as_select())
        .load(conn)?;
    found.sort_by_key(|a| conversations.iter().position(|c| *c == a.conversation_id));
    Ok(found)
}

/// The recording of a call attempt, if it has one.
pub fn recording_of(
    conn: &mut DbConnection,
    call_id: &str,
    carrier: &str,
    attempt: i64,
) -> QueryResult<Option<RecordingRow>> {
    call_recordings::table
        .filter(call_recordings::call_id.eq(call_id))
        .filter(call_recordings::carrier.eq(carrier))
        .filter(call_recordings::attempt.eq(attempt))
        .select(RecordingRow::as_select())
        .first(conn)
        .optional()
}

/// What a stored call left after it ended: its attempt's recording and its conversations' verdicts.
pub fn of_call(conn: &mut DbConnection, rec: &CallRecord) -> QueryResult<(Option<RecordingRow>, Vec<AnalysisRow>)> {
    let recording = recording_of(conn, &rec.call_id, &rec.carrier, rec.attempt)?;
    let analyses = analyses_of(conn, &conversations_of(rec))?;
    Ok((recording, analyses))
}

/// A record's conversations, one per dial of the agent (`conversation_ids` holds them comma-separated;
/// records from before it hold only `conversation_id`).
pub fn conversations_of(rec: &CallRecord) -> Vec<String> {
    let mut ids = Vec::new();
    add_conversations(&mut ids, &rec.conversation_ids, rec.conversation_id.as_ref());
    ids
}

/// Adds the conversations a record names (`all` comma-separated, and the `last`) to `ids`, once each.
fn add_conversations(ids: &mut Vec<String>, all: &str, last: Option<&String>) {
    for id in all.split(',').filter(|s| !s.is_empty()).chain(last.map(String::as_str)) {
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_string());
        }
    }
}

/// The conversations of `instance`'s calls that ended between `from_ms` and `until_ms` and have no verdict
/// yet (at most `limit` calls looked at, the oldest first): what the reconciler may fetch.
pub fn unjudged(
    conn: &mut DbConnection,
    instance: &str,
    from_ms: i64,
    until_ms: i64,
    limit: i64,
) -> QueryResult<Vec<String>> {
    use super::schema::calls;
    let ended: Vec<(Option<String>, String)> = calls::table
        .filter(calls::instance_id.eq(instance))
        .filter(calls::ended_at.ge(from_ms))
        .filter(calls::ended_at.lt(until_ms))
        .order(calls::ended_at.asc())
        .select((calls::conversation_id, calls::conversation_ids))
        .limit(limit)
        .load(conn)?;
    let mut ids: Vec<String> = Vec::new();
    for (last, all) in ended {
        add_conversations(&mut ids, &all, last.as_ref());
    }
    let judged: Vec<String> = call_analyses::table
        .filter(call_analyses::conversation_id.eq_any(&ids))
        .select(call_analyses::conversation_id)
        .load(conn)?;
    ids.retain(|id| !judged.contains(id));
    Ok(ids)
}

/// For each of `rows` (a page of the history): its verdict (its last judged conversation's) and its
/// recording, read in two queries for the whole page.
pub fn outcomes(
    conn: &mut DbConnection,
    rows: &[CallRecord],
) -> QueryResult<Vec<(Option<AnalysisRow>, Option<RecordingRow>)>> {
    let conversations: Vec<Vec<String>> = rows.iter().map(conversations_of).collect();
    let all: Vec<&String> = conversations.iter().flatten().collect();
    let verdicts: Vec<AnalysisRow> = call_analyses::table
        .filter(call_analyses::conversation_id.eq_any(all))
        .select(AnalysisRow::as_select())
        .load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.call_id.as_str()).collect();
    let recordings: Vec<RecordingRow> = call_recordings::table
        .filter(call_recordings::call_id.eq_any(ids))
        .select(RecordingRow::as_select())
        .load(conn)?;
    Ok(rows
        .iter()
        .zip(&conversations)
        .map(|(rec, convs)| {
            let verdict = convs
                .iter()
                .rev()
                .find_map(|c| verdicts.iter().find(|v| &v.conversation_id == c));
            let recording = recordings
                .iter()
                .find(|r| r.call_id == rec.call_id && r.carrier == rec.carrier && r.attempt == rec.attempt);
            (verdict.cloned(), recording.cloned())
        })
        .collect())
}
