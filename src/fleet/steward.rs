//! `FleetSteward`: the one actor that talks to the fleet's tables for this instance, on a connection of its
//! own (a busy records writer must not delay a lease). Each `Renew` renews the lease and settles the block
//! of slots in one transaction, then closes the calls of instances whose lease expired. It runs on a
//! thread of its own (a `SyncArbiter`), since diesel blocks.

use super::lease::{self, Ask};
use super::store::{self, CapCheck, FleetError, Grant, Member};
use crate::db::models::now_ms;
use crate::metrics::Metrics;
use crate::supervise::{self, Part};
use actix::prelude::*;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct FleetSteward {
    me: Member,
    url: String,
    conn: Option<PgConnection>,
    /// Since when every renewal has succeeded: a survivor closes others' calls only after holding its own
    /// lease for a whole TTL, so that after an outage of the database (when every lease looks expired) the
    /// live instances have had the time to renew theirs.
    connected_since: Option<Instant>,
    /// Lost instances are looked for once per `RENEW_EVERY`, not on every renewal a burst asks for.
    last_reap: Option<Instant>,
    metrics: Arc<Metrics>,
}

impl FleetSteward {
    pub fn new(me: Member, url: &str, metrics: Arc<Metrics>) -> FleetSteward {
        FleetSteward {
            url: with_connect_timeout(url),
            me,
            conn: None,
            connected_since: None,
            last_reap: None,
            metrics,
        }
    }

    fn connection(&mut self) -> Result<&mut PgConnection, FleetError> {
        if self.conn.is_none() {
            // The tables are the records writer's to create (at start, or at its next replay tick once the
            // database answers); until then a renewal fails and is tried again.
            let mut c = PgConnection::establish(&self.url).map_err(FleetError::Connect)?;
            // A statement that hangs must not outlive the lease it is renewing.
            let limit = self.me.lease_ttl_ms / 2;
            c.batch_execute(&format!("SET statement_timeout = {limit}"))?;
            self.conn = Some(c);
        }
        self.conn.as_mut().ok_or(FleetError::NoConnection)
    }

    /// A failed statement may have left the connection broken: the next renewal makes a new one.
    fn failed(&mut self, why: FleetError) -> FleetError {
        self.conn = None;
        self.connected_since = None;
        self.metrics.fleet.renewal_failures.inc();
        why
    }

    fn renew(&mut self, ask: Ask) -> Result<Grant, FleetError> {
        let me = self.me.clone();
        let grant = match self.connection().and_then(|c| Ok(store::renew(c, &me, ask)?)) {
            Ok(g) => g,
            Err(e) => return Err(self.failed(e)),
        };
        let since = *self.connected_since.get_or_insert_with(Instant::now);
        let reaped_lately = self.last_reap.is_some_and(|t| t.elapsed() < lease::RENEW_EVERY);
        if since.elapsed() >= Duration::from_millis(me.lease_ttl_ms) && !reaped_lately {
            self.last_reap = Some(Instant::now());
            self.reap();
        }
        Ok(grant)
    }

    fn reap(&mut self) {
        let me = self.me.clone();
        let Ok(conn) = self.connection() else { return };
        match store::reap(conn, &me, now_ms()) {
            Ok(lost) => {
                for (instance, calls) in lost {
                    self.metrics.fleet.instances_lost.inc();
                    log::warn!(
                        "fleet: instance {instance} lost (no lease renewal for {} ms): its {calls} open call(s) \
                         closed as aborted (instance_lost), its slots returned",
                        me.lease_ttl_ms
                    );
                }
            }
            Err(e) => log::warn!("db: fleet: cannot close lost instances' calls yet: {e}"),
        }
    }
}

/// libpq waits for a TCP connection as long as the kernel does unless told otherwise.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&connect_timeout=2")
    } else {
        format!("{url}?connect_timeout=2")
    }
}

impl Actor for FleetSteward {
    type Context = SyncContext<Self>;
}

/// Renew the lease and settle the block of slots.
pub struct Renew {
    /// What to ask for (the slots given back already are given back).
    pub ask: Ask,
}

impl Message for Renew {
    /// What the database granted, or why nothing was.
    type Result = Result<Grant, FleetError>;
}

impl Handler<Renew> for FleetSteward {
    type Result = Result<Grant, FleetError>;

    /// A panic while renewing (`crate::supervise`) fails this renewal, which the keeper retries; the steward
    /// stops and its arbiter builds a new one (a new connection; the lease itself is in the database).
    fn handle(&mut self, msg: Renew, ctx: &mut SyncContext<Self>) -> Self::Result {
        let renewed = supervise::guard(Part::Steward, || {
            supervise::fault::point(Part::Steward, &self.me.instance_id);
            self.renew(msg.ask)
        });
        renewed.unwrap_or_else(|panic| {
            log::error!("fleet: {panic}; rebuilding the steward");
            ctx.stop();
            Err(FleetError::Panicked(panic.to_string()))
        })
    }
}

/// At start: compare this instance's configured cap with the fleet's in the database (see
/// `store::settle_cap`).
pub struct SettleCap;

impl Message for SettleCap {
    /// What the database says, or why it could not be asked.
    type Result = Result<CapCheck, FleetError>;
}

impl Handler<SettleCap> for FleetSteward {
    type Result = Result<CapCheck, FleetError>;

    fn handle(&mut self, _: SettleCap, _: &mut SyncContext<Self>) -> Self::Result {
        let me = self.me.clone();
        let settled = self.connection().and_then(|c| Ok(store::settle_cap(c, &me)?));
        settled.map_err(|e| self.failed(e))
    }
}

/// Leave the fleet (a clean stop, every call ended): the slots return at once.
pub struct Leave;

impl Message for Leave {
    type Result = ();
}

impl Handler<Leave> for FleetSteward {
    type Result = ();

    fn handle(&mut self, _: Leave, _: &mut SyncContext<Self>) {
        let id = self.me.instance_id.clone();
        if let Ok(conn) = self.connection() {
            match store::leave(conn, &id) {
                Ok(_) => log::info!("fleet: {id} left the fleet; its slots are free"),
                Err(e) => log::warn!("db: fleet: cannot leave the fleet ({e}); the lease expires instead"),
            }
        }
    }
}
