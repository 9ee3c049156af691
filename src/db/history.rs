//! The history's query: finished calls, newest first, narrowed by what an admin filters on (a time range,
//! carrier, route, agent, end reason, state, a call id or a number). The filter is made of typed, bounded
//! values at the edge (`http::history`); here it only becomes SQL that both backends run alike.

use super::models::{CallRow, RecordState};
use super::schema::calls;
use super::DbConnection;
use diesel::prelude::*;

/// What the history is narrowed to; `Default` is everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// Only calls that started before this (unix ms): the next page.
    pub before: Option<i64>,
    /// Only calls that started at or after this (unix ms).
    pub since: Option<i64>,
    /// A carrier's name (`carriers::Carrier::as_str`).
    pub carrier: Option<&'static str>,
    pub route: Option<String>,
    pub agent: Option<String>,
    /// An end reason or refusal, as records store it.
    pub end_reason: Option<String>,
    /// A state calls end in (live states are never in the history).
    pub state: Option<RecordState>,
    /// A call id, or the digits of a number either side dialled.
    pub search: Option<Search>,
}

/// What an admin looks a call up by: its id exactly, or a number by its digits.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub call_id: String,
    /// The digits of the text, when it has enough to be (part of) a number.
    pub digits: Option<String>,
}

/// Finished (or refused, or never connected) calls matching `filter`, newest first, at most `limit`; each
/// attempt of a call id is its own entry.
pub fn history(conn: &mut DbConnection, limit: i64, filter: &HistoryFilter) -> QueryResult<Vec<CallRow>> {
    let mut q = calls::table
        .filter(calls::state.ne_all(RecordState::LIVE.map(RecordState::as_str)))
        .select(CallRow::as_select())
        .order((calls::started_at.desc(), calls::call_id.desc(), calls::attempt.desc()))
        .limit(limit)
        .into_boxed();
    if let Some(before) = filter.before {
        q = q.filter(calls::started_at.lt(before));
    }
    if let Some(since) = filter.since {
        q = q.filter(calls::started_at.ge(since));
    }
    if let Some(carrier) = filter.carrier {
        q = q.filter(calls::carrier.eq(carrier));
    }
    if let Some(route) = &filter.route {
        q = q.filter(calls::route.eq(route.clone()));
    }
    if let Some(agent) = &filter.agent {
        q = q.filter(calls::agent_id.eq(agent.clone()));
    }
    if let Some(reason) = &filter.end_reason {
        q = q.filter(calls::end_reason.eq(reason.clone()));
    }
    if let Some(state) = filter.state {
        q = q.filter(calls::state.eq(state.as_str()));
    }
    if let Some(search) = &filter.search {
        q = match &search.digits {
            // Digits only: no LIKE wildcard can be in the pattern.
            Some(digits) => {
                let pattern = format!("%{digits}%");
                q.filter(
                    calls::call_id
                        .eq(search.call_id.clone())
                        .or(calls::from_number.like(pattern.clone()))
                        .or(calls::to_number.like(pattern)),
                )
            }
            None => q.filter(calls::call_id.eq(search.call_id.clone())),
        };
    }
    q.load(conn)
}
