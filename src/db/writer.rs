//! The `Writer`: the one place records reach the database, written so that no single row can block the
//! others. It tells two failures apart:
//! - **the database is unavailable** (no connection, a broken one, a lock, a serialization failure): the
//!   writes go to the spool, oldest first, and are replayed later in bounded chunks;
//! - **this row is refused** (the connection answers, the row does not fit — a NUL on PostgreSQL, a value
//!   past a column's bound): the row goes to the dead-letter file with the database's error and is counted,
//!   and the rows after it are stored.
//!
//! A batch is one transaction; when it fails and the database still answers, it is retried row by row to
//! find the refused ones. Plain code over a pool, so tests drive it directly; `DbActor` runs it on its own
//! thread.

use super::models::{now_ms, DbWrite};
use super::spool::{DeadLetters, Spool, SpoolLine, Spooled};
use super::{
    close_abandoned, migrate, revise_event, save_call, save_events, save_status, DbConnection, DbError, DbPool,
};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use prometheus::{Histogram, IntCounter, IntGauge, Registry};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spool lines replayed per transaction.
const REPLAY_CHUNK_LINES: usize = 500;
/// ... and at most about this many bytes of them held in memory at once.
const REPLAY_CHUNK_BYTES: u64 = 4 << 20;
/// How long one replay may run before the writes queued behind it get their turn.
pub const REPLAY_SLICE: Duration = Duration::from_millis(250);
/// How long writes skip the database after it failed, instead of each waiting for a connection; the
/// periodic replay probes it meanwhile.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// What the database side has done, exported in `/metrics`, summed up on `/healthz`, read by tests.
pub struct DbStats {
    /// Writes stored in the database (calls, event batches, status reports).
    pub written: IntCounter,
    /// Writes that went to the spool.
    pub spooled: IntCounter,
    /// Spooled writes later stored.
    pub replayed: IntCounter,
    /// Writes the database refused (a row it cannot store): kept in the dead-letter file.
    pub dead_letter: IntCounter,
    /// Spool lines torn by a crash mid-append, skipped.
    pub spool_torn: IntCounter,
    /// Writes lost because the spool or the dead-letter file was full or unwritable (each is also logged).
    pub lost: IntCounter,
    /// Failed attempts to reach or write the database.
    pub failures: IntCounter,
    /// Bytes in the spool not replayed yet.
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
        Ok(DbStats {
            written: counter(r, "db_writes_total", "Record writes stored in the database")?,
            spooled: counter(r, "db_spooled_total", "Record writes that went to the spool")?,
            replayed: counter(r, "db_replayed_total", "Spooled record writes later stored")?,
            dead_letter: counter(
                r,
                "db_dead_letter_total",
                "Record writes the database refused (a row it cannot store), kept in the dead-letter file",
            )?,
            spool_torn: counter(r, "db_spool_torn_total", "Spool lines torn by a crash, skipped")?,
            lost: counter(
                r,
                "db_lost_total",
                "Record writes lost: the spool or the dead-letter file was full or unwritable",
            )?,
            failures: counter(r, "db_failures_total", "Failed attempts to reach or write the database")?,
            spool_bytes: gauge(r, "db_spool_bytes", "Bytes waiting in the spool")?,
            up: gauge(r, "db_up", "1 while the database answers")?,
            write_seconds: histogram(
                r,
                "db_write_seconds",
                "Time to store one batch of records",
                vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
            )?,
        })
    }

    /// The summary `/healthz` shows.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "up": self.up.get() == 1,
            "spool_bytes": self.spool_bytes.get(),
            "dead_letter_total": self.dead_letter.get(),
            "lost_total": self.lost.get(),
            "spool_torn_total": self.spool_torn.get(),
        })
    }
}

/// Where a replay got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Nothing is left in the spool.
    Empty,
    /// The time budget ran out with lines left.
    More,
    /// The database is unavailable; the spool waits.
    Unavailable,
}

/// The database is unavailable from the write at `from` on (the ones before it are stored or set aside).
struct Unavailable {
    from: usize,
    why: DbError,
}

pub struct Writer {
    pool: DbPool,
    spool: Spool,
    dead: DeadLetters,
    stats: Arc<DbStats>,
    migrated: bool,
    abandoned_closed: bool,
    /// Rows of calls started before this moment and still open were left by a previous process.
    process_started_ms: i64,
    /// ... of this instance (or of no instance: rows from before instances were recorded); other
    /// instances' rows are theirs, or the fleet's to close when their lease expires.
    instance_id: String,
    retry_after: Option<Instant>,
}

impl Writer {
    pub fn new(pool: DbPool, spool: Spool, dead: DeadLetters, stats: Arc<DbStats>, process_started_ms: i64) -> Self {
        stats.spool_bytes.set(spool.pending() as i64);
        // Assume reachable until shown otherwise, so the first failure is the one logged.
        stats.up.set(1);
        Writer {
            pool,
            spool,
            dead,
            stats,
            migrated: false,
            abandoned_closed: false,
            process_started_ms,
            instance_id: String::new(),
            retry_after: None,
        }
    }

    /// Leftovers closed at start are this instance's only.
    pub fn for_instance(mut self, instance_id: &str) -> Self {
        self.instance_id = instance_id.to_string();
        self
    }

    /// A connection that is migrated, or why there is none.
    fn connection(&mut self) -> Result<r2d2::PooledConnection<super::DbManager>, DbError> {
        let mut conn = self.pool.get().map_err(DbError::NoConnection)?;
        if !self.migrated {
            let ran = migrate(&mut conn)?;
            if ran > 0 {
                log::info!("db: applied {ran} migration(s)");
            }
            self.migrated = true;
        }
        Ok(conn)
    }

    /// Start-up: reach the database and migrate it, within the pool's connect timeout; the spool is not
    /// touched (it is replayed after the gateway is ready). True when the database answered.
    pub fn prepare(&mut self) -> bool {
        match self.connection() {
            Ok(_) => {
                self.set_health(None);
                true
            }
            Err(e) => {
                self.set_health(Some(&e));
                false
            }
        }
    }

    /// `None`: the database answered; else what failed.
    fn set_health(&mut self, trouble: Option<&DbError>) {
        let ok = trouble.is_none();
        let was = self.stats.up.get() == 1;
        self.stats.up.set(i64::from(ok));
        self.retry_after = (!ok).then(|| Instant::now() + RETRY_PAUSE);
        if !ok {
            self.stats.failures.inc();
            if was {
                let detail = trouble.map(ToString::to_string).unwrap_or_default();
                log::error!("{detail}; spooling call records to {}", self.spool.path().display());
            }
        } else if !was {
            log::info!("db: reachable again");
        }
    }

    /// Stores `writes`, or spools them while the database is unavailable or older writes wait in the spool
    /// (a newer snapshot must not be overtaken by an older spooled one).
    pub fn write(&mut self, writes: Vec<DbWrite>) {
        self.write_all(&writes);
    }

    /// `write`, borrowing the batch (the records actor keeps it, to retry row by row after a panic).
    pub fn write_all(&mut self, writes: &[DbWrite]) {
        #[cfg(feature = "fault-injection")]
        for id in writes.iter().filter_map(DbWrite::call_id) {
            crate::supervise::fault::point(crate::supervise::Part::Records, id);
        }
        if self.retry_after.is_some_and(|t| Instant::now() < t) {
            self.spool_writes(writes);
            return;
        }
        if !self.spool.is_empty() && self.replay(REPLAY_SLICE) != Replay::Empty {
            self.spool_writes(writes);
            return;
        }
        let timer = self.stats.write_seconds.start_timer();
        let result = self.store(writes);
        timer.observe_duration();
        match result {
            Ok(stored) => {
                self.set_health(None);
                self.stats.written.inc_by(stored);
                self.close_leftovers();
            }
            Err(u) => {
                self.set_health(Some(&u.why));
                self.spool_writes(&writes[u.from..]);
            }
        }
    }

    /// Replays the spool in chunks until it is empty, the database fails, or `budget` is spent.
    pub fn replay(&mut self, budget: Duration) -> Replay {
        let started = Instant::now();
        let mut replayed = 0u64;
        let outcome = loop {
            if self.spool.is_empty() {
                break Replay::Empty;
            }
            if started.elapsed() >= budget {
                break Replay::More;
            }
            match self.replay_chunk() {
                Ok(n) => replayed += n,
                Err(e) => {
                    self.set_health(Some(&e));
                    break Replay::Unavailable;
                }
            }
        };
        self.stats.spool_bytes.set(self.spool.pending() as i64);
        if replayed > 0 {
            self.stats.replayed.inc_by(replayed);
            log::info!(
                "db: replayed {replayed} spooled write(s); {} byte(s) left",
                self.spool.pending()
            );
        }
        if outcome == Replay::Empty {
            self.close_leftovers();
        }
        outcome
    }

    /// One chunk: stored up to where the database became unavailable, the spool advanced that far.
    fn replay_chunk(&mut self) -> Result<u64, DbError> {
        let lines = self.spool.read_chunk(REPLAY_CHUNK_LINES, REPLAY_CHUNK_BYTES)?;
        let Some(last) = lines.last().map(|l| l.end) else {
            // Nothing readable past the position (the file changed under us): start afresh.
            self.spool.clear()?;
            return Ok(0);
        };
        let writes: Vec<DbWrite> = lines
            .iter()
            .filter_map(|l| match &l.entry {
                Spooled::Write(w) => Some(w.clone()),
                Spooled::Torn => None,
            })
            .collect();
        let (stored_to, failure) = match self.store(&writes) {
            Ok(_) => (Some(last), None),
            // Advance past the lines stored or set aside: the write at `from` is the first one still owed.
            Err(u) => (resume_point(&lines, u.from), Some(u.why)),
        };
        let done: Vec<&SpoolLine> = lines
            .iter()
            .filter(|l| stored_to.is_some_and(|to| l.end <= to))
            .collect();
        let torn = done.iter().filter(|l| l.entry == Spooled::Torn).count();
        if torn > 0 {
            self.stats.spool_torn.inc_by(torn as u64);
            log::warn!("db: {torn} torn line(s) in the spool skipped (a crash mid-append)");
        }
        let replayed = (done.len() - torn) as u64;
        if let Some(to) = stored_to {
            self.spool.advance(to)?;
        }
        match failure {
            None => {
                self.set_health(None);
                Ok(replayed)
            }
            Some(why) => {
                self.stats.replayed.inc_by(replayed);
                Err(why)
            }
        }
    }

    /// Stores `writes` in one transaction, or row by row when that fails while the database answers;
    /// returns how many were stored.
    fn store(&mut self, writes: &[DbWrite]) -> Result<u64, Unavailable> {
        let unavailable = |from, why| Unavailable { from, why };
        let mut conn = self.connection().map_err(|e| unavailable(0, e))?;
        let failed = match apply(&mut conn, writes) {
            Ok(()) => return Ok(writes.len() as u64),
            Err(e) => e,
        };
        if is_unavailable(&failed) || !answers(&mut conn) {
            return Err(unavailable(0, DbError::Write(failed)));
        }
        let mut stored = 0;
        for (i, w) in writes.iter().enumerate() {
            match apply(&mut conn, std::slice::from_ref(w)) {
                Ok(()) => stored += 1,
                Err(e) if is_unavailable(&e) || !answers(&mut conn) => return Err(unavailable(i, DbError::Write(e))),
                Err(e) => self.set_aside(w, &e.to_string()),
            }
        }
        Ok(stored)
    }

    /// A row the database refused (or that made the writer panic): into the dead-letter file, counted,
    /// logged; the rows after it go on.
    pub fn set_aside(&mut self, write: &DbWrite, error: &str) {
        let error = format!("db: row refused: {error}");
        match self.dead.append(write, &error) {
            Ok(()) => {
                self.stats.dead_letter.inc();
                log::error!("{error}; kept in {}", self.dead.path().display());
            }
            Err(e) => {
                self.stats.lost.inc();
                log::error!("{error}; and it could not be kept: {e}");
            }
        }
    }

    fn spool_writes(&mut self, writes: &[DbWrite]) {
        if writes.is_empty() {
            return;
        }
        match self.spool.append(writes) {
            Ok(()) => self.stats.spooled.inc_by(writes.len() as u64),
            Err(e) => {
                self.stats.lost.inc_by(writes.len() as u64);
                log::error!("{e}");
            }
        }
        self.stats.spool_bytes.set(self.spool.pending() as i64);
    }

    /// Calls a crash left open are closed, once, when the database answers and nothing older waits.
    fn close_leftovers(&mut self) {
        if self.abandoned_closed || !self.spool.is_empty() {
            return;
        }
        let Ok(mut conn) = self.connection() else { return };
        match close_abandoned(&mut conn, now_ms(), self.process_started_ms, &self.instance_id) {
            Ok(n) => {
                if n > 0 {
                    log::warn!("db: closed {n} call(s) left open by a previous process as aborted (restart)");
                }
                self.abandoned_closed = true;
            }
            Err(e) => log::warn!("db: cannot close leftover calls yet: {e}"),
        }
    }
}

/// Where replay resumes when the `n`-th write of a chunk is the first one still owed: the end of the line
/// before it (`None`: the chunk's start, nothing to advance).
fn resume_point(lines: &[SpoolLine], n: usize) -> Option<u64> {
    let line = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l.entry, Spooled::Write(_)))
        .nth(n)
        .map(|(i, _)| i)?;
    line.checked_sub(1).map(|i| lines[i].end)
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
                DbWrite::Revise(event) => revise_event(c, event)?,
                DbWrite::Recording(row) => crate::db::after_call::save_recording(c, row)?,
                DbWrite::Analysis(row) => crate::db::after_call::save_analysis(c, row)?,
            }
        }
        Ok(())
    })
}

/// Whether the connection still answers: after an error, one that does means the row was the problem.
fn answers(conn: &mut DbConnection) -> bool {
    conn.batch_execute("SELECT 1").is_ok()
}

/// Errors that say nothing about the row: the database or the connection could not do it now.
fn is_unavailable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    match e {
        Error::DatabaseError(
            Kind::UnableToSendCommand | Kind::ClosedConnection | Kind::SerializationFailure | Kind::ReadOnlyTransaction,
            _,
        ) => true,
        Error::DatabaseError(_, info) => {
            let m = info.message().to_ascii_lowercase();
            [
                "database is locked",
                "busy",
                "connection",
                "shutting down",
                "terminating",
                "disk i/o",
            ]
            .iter()
            .any(|s| m.contains(s))
        }
        Error::BrokenTransactionManager | Error::RollbackErrorOnCommit { .. } | Error::AlreadyInTransaction => true,
        _ => false,
    }
}
