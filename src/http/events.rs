//! `GET /calls/events`: the calls as they change, for the console and for scripts. A `text/event-stream`
//! of `call` events (the `CallFeed`: `admitted`, `refused`, `state`, `ended`) and, once a second, of
//! `counters` (the registry's totals, as `/calls` gives them, and the breakers' state), which also keep the
//! stream alive through proxies. A watcher that falls `FEED_DEPTH` events behind gets a last `cut` event and
//! is closed; at most `MAX_EVENT_STREAMS` watch at once. With an admin token set, the stream takes it as `Authorization: Bearer`,
//! or a ticket (`?ticket=`) from `POST /calls/events/ticket` for a browser's `EventSource`.

use super::admin::refuse_admin;
use super::reply::error_json;
use super::seats::Seat;
use super::state::AppState;
use super::tickets::{Purpose, TICKET_TTL};
use crate::call::breaker::UpstreamBreaker;
use crate::registry::Registry;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use prometheus::IntCounter;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    ticket: Option<String>,
}

/// `POST /calls/events/ticket`: a ticket that opens the event stream for `TICKET_TTL`.
pub async fn ticket(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(refusal) = refuse_admin(&req, &state) {
        return refusal;
    }
    HttpResponse::Ok().json(serde_json::json!({
        "ticket": state.watchers.tickets.issue(&Purpose::Events),
        "expires_in_s": TICKET_TTL.as_secs(),
    }))
}

/// `GET /calls/events[?ticket=]`: the stream.
pub async fn events(req: HttpRequest, query: web::Query<EventsQuery>, state: web::Data<AppState>) -> HttpResponse {
    let tickets = &state.watchers.tickets;
    let by_ticket = query
        .ticket
        .as_deref()
        .is_some_and(|t| tickets.verify(&Purpose::Events, t));
    if let Some(refusal) = refuse_admin(&req, &state).filter(|_| !by_ticket) {
        return refusal;
    }
    let Some(seat) = state.watchers.streams.take() else {
        return error_json(StatusCode::SERVICE_UNAVAILABLE, "too_many_watchers");
    };
    let watch = Watch {
        feed: state.feed.subscribe(),
        tick: tokio::time::interval(Duration::from_secs(1)),
        registry: state.registry.clone(),
        breaker: state.breaker.clone(),
        cuts: state.metrics.watching.event_streams_cut.clone(),
        _seat: seat,
    };
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(futures_util::stream::unfold(Some(watch), Watch::next))
}

/// An open stream: the feed, the counters' clock and its seat.
struct Watch {
    feed: tokio::sync::broadcast::Receiver<Arc<str>>,
    tick: tokio::time::Interval,
    registry: Registry,
    breaker: Arc<UpstreamBreaker>,
    /// Counts the streams cut off for falling behind.
    cuts: IntCounter,
    _seat: Seat,
}

impl Watch {
    /// The registry's totals and the breakers: the account's (`closed`, or `open` with its reason) and the
    /// agents a breaker has made unavailable.
    fn counters(&self) -> String {
        let mut body = serde_json::to_value(self.registry.summary()).unwrap_or_default();
        let account = match self.breaker.refusal() {
            Some(open) => serde_json::json!({"state": "open", "reason": open.reason}),
            None => serde_json::json!({"state": "closed"}),
        };
        if let Some(map) = body.as_object_mut() {
            let agents = self.breaker.unavailable_agents();
            map.insert(
                "breaker".into(),
                serde_json::json!({"account": account, "agents_unavailable": agents}),
            );
        }
        body.to_string()
    }

    /// The stream's next events; `None` (after a `cut`) ends it. Nothing is made until the connection
    /// takes the last, so a slow reader holds at most the feed's depth; call events that wait together
    /// (a burst of admissions) go out in one write.
    async fn next(watch: Option<Watch>) -> Option<(Result<Bytes, actix_web::Error>, Option<Watch>)> {
        let mut watch = watch?;
        let frames = tokio::select! {
            got = watch.feed.recv() => match got {
                Ok(json) => watch.with_waiting_events(call_event(&json)),
                Err(RecvError::Lagged(missed)) => Err(missed),
                Err(RecvError::Closed) => return None,
            },
            _ = watch.tick.tick() => Ok(format!("event: counters\ndata: {}\n\n", watch.counters())),
        };
        match frames {
            Ok(frames) => Some((Ok(Bytes::from(frames)), Some(watch))),
            Err(missed) => {
                log::warn!("admin: an event stream fell {missed} events behind and was cut off");
                watch.cuts.inc();
                let cut = format!("event: cut\ndata: {{\"reason\":\"too_slow\",\"missed\":{missed}}}\n\n");
                Some((Ok(Bytes::from(cut)), None))
            }
        }
    }

    /// `first` and the call events already waiting behind it (up to `BURST_BYTES`); `Err` with how many
    /// were missed when the watcher fell behind the feed.
    fn with_waiting_events(&mut self, mut first: String) -> Result<String, u64> {
        while first.len() < BURST_BYTES {
            match self.feed.try_recv() {
                Ok(json) => first.push_str(&call_event(&json)),
                Err(TryRecvError::Lagged(missed)) => return Err(missed),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        Ok(first)
    }
}

/// The most call events put in one write (a little over).
const BURST_BYTES: usize = 16 * 1024;

fn call_event(json: &str) -> String {
    format!("event: call\ndata: {json}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::feed::{CallFeed, FeedEvent, FEED_DEPTH};
    use crate::call::CallInfo;
    use crate::carriers::{CallKey, Carrier};
    use crate::registry::RegistrySetup;
    use crate::values::CallId;

    #[actix_rt::test]
    async fn a_watcher_that_falls_behind_gets_a_cut_and_gives_its_seat_back() {
        let feed = CallFeed::default();
        let registry = Registry::start(RegistrySetup {
            max_calls: 1,
            admission_deadline: Duration::from_secs(1),
            reconcile_every: Duration::from_secs(60),
            records: None,
        });
        let metrics = Arc::new(crate::metrics::Metrics::new().expect("metrics"));
        let watchers = crate::http::seats::Watchers::new(&metrics);
        let seat = watchers.streams.take().expect("a seat");
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        tick.tick().await;
        let policy = crate::call::breaker::BreakerPolicy {
            failures: 1,
            window: Duration::from_secs(1),
            cooldown: Duration::from_secs(1),
        };
        let watch = Watch {
            feed: feed.subscribe(),
            tick,
            registry,
            breaker: Arc::new(UpstreamBreaker::new(policy, policy, metrics.clone())),
            cuts: metrics.watching.event_streams_cut.clone(),
            _seat: seat,
        };
        let id = CallId::parse("call_id", "SLOW-1").expect("id");
        let info = CallInfo::bare(CallKey::new(Carrier::Mcube, id), 1);
        for _ in 0..FEED_DEPTH + 10 {
            feed.publish(&FeedEvent::of(&info, "admitted", None, None));
        }
        let (frame, rest) = Watch::next(Some(watch)).await.expect("a last frame");
        let frame = frame.expect("bytes");
        assert!(String::from_utf8_lossy(&frame).starts_with("event: cut"), "{frame:?}");
        assert!(rest.is_none(), "the stream ends after the cut");
        assert_eq!(watchers.streams.taken(), 0, "its seat is given back");
        assert_eq!(metrics.watching.event_streams_cut.get(), 1, "the cut is counted");
    }
}
