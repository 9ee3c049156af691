//! `DbActor`: the one writer, on a `SyncArbiter` thread so r2d2's blocking `get()` never runs on an actix
//! worker. It writes batches in one transaction each; what the database cannot take right now goes to the
//! spool, which it replays (idempotently, oldest first) before new writes once the database is back. It
//! also runs migrations and closes calls a crash left open.

use super::models::{now_ms, DbWrite};
use super::spool::Spool;
use super::{close_abandoned, migrate, save_call, save_events, save_status, DbConnection, DbPool};
use actix::prelude::*;
use diesel::Connection;
use prometheus::{Histogram, IntCounter, IntGauge, Registry};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Writes per transaction when replaying a long spool.
const REPLAY_CHUNK: usize = 500;

/// What the database side has done, exported in `/metrics` and read by tests.
pub struct DbStats {
    /// Writes stored in the database (calls, event batches, status reports).
    pub written: IntCounter,
    /// Writes that went to the spool.
    pub spooled: IntCounter,
    /// Spooled writes later stored.
    pub replayed: IntCounter,
    /// Writes lost because the spool was full or unwritable (each is also logged as an error).
    pub lost: IntCounter,
    /// Failed attempts to reach or write the database.
    pub failures: IntCounter,
    /// Bytes in the spool now.
    pub spool_bytes: IntGauge,
    /// 1 while the last attempt reached the database.
    pub up: IntGauge,
    /// Time to store one batch.
    pub write_seconds: Histogram,
}

impl DbStats {
    /// Creates the database metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<DbStats> {
        use crate::metrics::{counter, gauge, histogram};
        let r = registry;
        let write_seconds = histogram(
            r,
            "db_write_seconds",
            "Time to store one batch of records",
            vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
        )?;
        Ok(DbStats {
            written: counter(r, "db_writes_total", "Record writes stored in the database")?,
            spooled: counter(r, "db_spooled_total", "Record writes that went to the spool")?,
            replayed: counter(r, "db_replayed_total", "Spooled record writes later stored")?,
            lost: counter(
                r,
                "db_lost_total",
                "Record writes lost: the spool was full or unwritable",
            )?,
            failures: counter(r, "db_failures_total", "Failed attempts to reach or write the database")?,
            spool_bytes: gauge(r, "db_spool_bytes", "Bytes waiting in the spool")?,
            up: gauge(r, "db_up", "1 while the database answers")?,
            write_seconds,
        })
    }
}

pub struct DbActor {
    pool: DbPool,
    spool: Spool,
    stats: Arc<DbStats>,
    migrated: bool,
    abandoned_closed: bool,
    /// Rows of calls started before this moment and still open were left by a previous process.
    process_started_ms: i64,
    /// After a failure, writes go straight to the spool until then instead of each waiting for a connection;
    /// the periodic `ReplaySpool` probes the database meanwhile.
    retry_after: Option<Instant>,
}

/// How long writes skip the database after it failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

impl DbActor {
    pub fn new(pool: DbPool, spool: Spool, stats: Arc<DbStats>, process_started_ms: i64) -> Self {
        stats.spool_bytes.set(spool.size() as i64);
        // Assume reachable until shown otherwise, so the first failure is the one logged.
        stats.up.set(1);
        DbActor {
            pool,
            spool,
            stats,
            migrated: false,
            abandoned_closed: false,
            process_started_ms,
            retry_after: None,
        }
    }

    /// A connection that is migrated and has had crash leftovers closed, or why there is none.
    fn connection(&mut self) -> Result<r2d2::PooledConnection<super::DbManager>, String> {
        let mut conn = self.pool.get().map_err(|e| format!("db: no connection: {e}"))?;
        if !self.migrated {
            let ran = migrate(&mut conn).map_err(|e| e.to_string())?;
            if ran > 0 {
                log::info!("db: applied {ran} migration(s)");
            }
            self.migrated = true;
        }
        Ok(conn)
    }

    fn set_health(&mut self, ok: bool, detail: &str) {
        let was = self.stats.up.get() == 1;
        self.stats.up.set(i64::from(ok));
        self.retry_after = (!ok).then(|| Instant::now() + RETRY_PAUSE);
        if !ok {
            self.stats.failures.inc();
            if was {
                log::error!("{detail}; spooling call records to {}", self.spool.path().display());
            }
        } else if !was {
            log::info!("db: reachable again");
        }
    }

    /// Replays the spool if there is one; true when it is empty afterwards.
    fn replay(&mut self) -> bool {
        if self.spool.is_empty() {
            return true;
        }
        let (writes, skipped) = match self.spool.read_all() {
            Ok(r) => r,
            Err(e) => {
                log::error!("{e}");
                return false;
            }
        };
        if skipped > 0 {
            log::warn!("db: {skipped} unreadable line(s) in the spool skipped (a torn write from a crash)");
        }
        let mut conn = match self.connection() {
            Ok(c) => c,
            Err(e) => {
                self.set_health(false, &e);
                return false;
            }
        };
        for chunk in writes.chunks(REPLAY_CHUNK) {
            if let Err(e) = apply(&mut conn, chunk) {
                self.set_health(false, &format!("db: replay failed: {e}"));
                return false;
            }
        }
        self.set_health(true, "");
        self.stats.replayed.inc_by(writes.len() as u64);
        log::info!("db: replayed {} spooled write(s)", writes.len());
        if let Err(e) = self.spool.clear() {
            log::error!("{e}");
        }
        self.stats.spool_bytes.set(self.spool.size() as i64);
        true
    }

    fn close_leftovers(&mut self) {
        if self.abandoned_closed || !self.spool.is_empty() {
            return;
        }
        let Ok(mut conn) = self.connection() else { return };
        match close_abandoned(&mut conn, now_ms(), self.process_started_ms) {
            Ok(n) => {
                if n > 0 {
                    log::warn!("db: closed {n} call(s) left open by a previous process as aborted (restart)");
                }
                self.abandoned_closed = true;
            }
            Err(e) => log::warn!("db: cannot close leftover calls yet: {e}"),
        }
    }

    fn spool_writes(&mut self, writes: &[DbWrite]) {
        match self.spool.append(writes) {
            Ok(()) => self.stats.spooled.inc_by(writes.len() as u64),
            Err(e) => {
                self.stats.lost.inc_by(writes.len() as u64);
                log::error!("{e}");
            }
        }
        self.stats.spool_bytes.set(self.spool.size() as i64);
    }

    fn write(&mut self, writes: Vec<DbWrite>) {
        if self.retry_after.is_some_and(|t| Instant::now() < t) {
            self.spool_writes(&writes);
            return;
        }
        // Order matters (a newer snapshot must not be overtaken by an older spooled one): the spool goes first.
        if !self.replay() {
            self.spool_writes(&writes);
            return;
        }
        let timer = self.stats.write_seconds.start_timer();
        let result = self
            .connection()
            .and_then(|mut c| apply(&mut c, &writes).map_err(|e| format!("db: write failed: {e}")));
        timer.observe_duration();
        match result {
            Ok(()) => {
                self.set_health(true, "");
                self.stats.written.inc_by(writes.len() as u64);
                self.close_leftovers();
            }
            Err(e) => {
                self.set_health(false, &e);
                self.spool_writes(&writes);
            }
        }
    }
}

/// Applies writes in one transaction.
fn apply(conn: &mut DbConnection, writes: &[DbWrite]) -> diesel::QueryResult<()> {
    conn.transaction(|c| {
        for w in writes {
            match w {
                DbWrite::Call(rec) => save_call(c, rec)?,
                DbWrite::Events(events) => {
                    save_events(c, events)?;
                }
                DbWrite::Status(report) => save_status(c, report)?,
            }
        }
        Ok(())
    })
}

impl Actor for DbActor {
    type Context = SyncContext<Self>;
}

/// Store these writes (or spool them).
pub struct WriteBatch {
    pub writes: Vec<DbWrite>,
}

impl Message for WriteBatch {
    type Result = ();
}

impl Handler<WriteBatch> for DbActor {
    type Result = ();

    fn handle(&mut self, msg: WriteBatch, _: &mut SyncContext<Self>) {
        self.write(msg.writes);
    }
}

/// Try the spool again (sent periodically), and finish start-up work once the database is reachable.
pub struct ReplaySpool;

impl Message for ReplaySpool {
    type Result = bool;
}

impl Handler<ReplaySpool> for DbActor {
    type Result = bool;

    fn handle(&mut self, _: ReplaySpool, _: &mut SyncContext<Self>) -> bool {
        if !self.migrated {
            if let Err(e) = self.connection() {
                self.set_health(false, &e);
                return false;
            }
        }
        let empty = self.replay();
        if empty {
            self.close_leftovers();
        }
        empty
    }
}
