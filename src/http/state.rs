//! `AppState`: what every HTTP handler of both listeners can reach.

use crate::carrier_token::CallTokens;
use crate::config::Config;
use crate::db::batcher::DbBatcher;
use crate::db::writer::DbStats;
use crate::db::DbPool;
use crate::metrics::Metrics;
use crate::registry::Registry;
use actix::Addr;
use std::sync::Arc;

/// What every handler can reach.
pub struct AppState {
    pub config: Arc<Config>,
    /// The one door to the cap: admissions, claims, lists, the cap and the drain.
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    pub tokens: CallTokens,
    /// Base of the `wss_url` handed to the carrier (no trailing slash).
    pub public_url: String,
    /// Where records are sent (never awaited).
    pub db: Addr<DbBatcher>,
    /// For the admin endpoints' reads.
    pub pool: DbPool,
    pub db_stats: Arc<DbStats>,
    /// Who may reach the carrier endpoints (reloaded on SIGHUP).
    pub access: super::access::SharedAccess,
    /// This instance's name: on records, in the `wss_url` (a balancer routes on it).
    pub instance: crate::values::InstanceId,
    /// Its membership of a fleet, when there is one.
    pub fleet: Option<crate::fleet::Fleet>,
    /// Whether ElevenLabs takes conversations at all: new calls are refused while it is open.
    pub breaker: Arc<crate::call::breaker::UpstreamBreaker>,
    /// This gateway's measured per-call cost.
    pub meter: Arc<std::sync::Mutex<crate::capacity::CostMeter>>,
    /// Which agent takes a call (reloaded on SIGHUP).
    pub routes: crate::routing::SharedRoutes,
    /// What happens to calls, for `GET /calls/events`.
    pub feed: crate::call::feed::CallFeed,
    /// Records each call, when `recording.enabled`.
    pub recorder: Option<crate::recording::Recorder>,
    /// Event streams and listeners: their seats and the tickets that open them from a browser.
    pub watchers: super::seats::Watchers,
    /// Nonces of carriers' signed requests (Plivo's) seen lately: a request sent again is a replay.
    pub signed_nonces: super::nonces::SharedNonces,
}

impl AppState {
    /// Admission's view of the gateway, for one request.
    pub fn gate(&self) -> crate::admission::Gate<'_> {
        crate::admission::Gate {
            config: &self.config,
            registry: &self.registry,
            metrics: &self.metrics,
            tokens: &self.tokens,
            db: &self.db,
            breaker: &self.breaker,
            feed: &self.feed,
            routes: self.routes(),
            recorder: self.recorder.as_ref(),
        }
    }

    /// The routes as they stand now.
    pub fn routes(&self) -> Arc<crate::routing::RouteTable> {
        crate::routing::current_routes(&self.routes)
    }
}
