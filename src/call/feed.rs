//! `CallFeed`: what happens to calls as it happens — admitted, refused, each change of state, ended — for
//! whoever watches (`GET /calls/events`, the console). Nothing is made while nobody watches; a watcher
//! that falls more than `FEED_DEPTH` events behind is cut off (`tokio::sync::broadcast`), so no watcher
//! can slow a call or make the gateway buffer for it.

use super::CallInfo;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

/// How many events a watcher may fall behind before it is cut off.
pub const FEED_DEPTH: usize = 1024;

/// One thing that happened to a call, as watchers get it (JSON).
#[derive(Debug, Serialize)]
pub struct FeedEvent<'a> {
    /// `admitted`, `refused`, `state` or `ended`.
    pub event: &'static str,
    pub call_id: &'a str,
    pub carrier: &'a str,
    pub attempt: i64,
    /// The route that took it, once one did.
    pub route: Option<&'a str>,
    /// The call's state (`connecting`, `active`, `ending`, `ended`), for `state` and `ended`.
    pub state: Option<&'static str>,
    /// Why it was refused or ended.
    pub reason: Option<&'a str>,
    /// Unix milliseconds.
    pub at: i64,
}

impl<'a> FeedEvent<'a> {
    /// `event` about `info`'s call, now.
    pub fn of(info: &'a CallInfo, event: &'static str, state: Option<&'static str>, reason: Option<&'a str>) -> Self {
        FeedEvent {
            event,
            call_id: info.call_id.as_str(),
            carrier: info.carrier.as_str(),
            attempt: info.attempt,
            route: info.route.as_ref().map(|r| r.name.as_str()),
            state,
            reason,
            at: crate::db::models::now_ms(),
        }
    }
}

/// The feed's sending end, shared by admission and every call.
#[derive(Clone)]
pub struct CallFeed(broadcast::Sender<Arc<str>>);

impl Default for CallFeed {
    fn default() -> Self {
        CallFeed(broadcast::channel(FEED_DEPTH).0)
    }
}

impl CallFeed {
    /// Sends `event` to every watcher; nothing is serialized while there is none.
    pub fn publish(&self, event: &FeedEvent) {
        if self.0.receiver_count() == 0 {
            return;
        }
        if let Ok(json) = serde_json::to_string(event) {
            let _ = self.0.send(json.into());
        }
    }

    /// A new watcher, from the next event on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.0.subscribe()
    }
}
