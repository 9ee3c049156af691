//! Call records in SQLite (embedded default) or PostgreSQL (production) through one diesel connection type
//! and an r2d2 pool: connecting, migrations, and the queries. The `Writer` (no row can block the others),
//! the `DbActor` that runs it, and the `DbBatcher` (which keeps the media path from ever waiting on it) live
//! beside this; so do the spool and the dead-letter file.
pub mod actor;
pub mod after_call;
pub mod batcher;
pub mod history;
pub mod models;
pub mod schema;
pub mod spool;
pub mod writer;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use models::{CallEvent, CallRecord, CallRow, RecordState, StatusReport};
use schema::{call_events, calls};
use std::time::Duration;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// What failed on the database side, with its cause.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("db: database.url must be sqlite://PATH or postgres://…, not '{0}'")]
    BadUrl(String),
    #[error("db: cannot create {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("db: cannot connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: r2d2::Error,
    },
    #[error("db: migrations failed: {0}")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The pool gave no connection: the database is down or unreachable.
    #[error("db: no connection: {0}")]
    NoConnection(#[source] r2d2::Error),
    /// A write failed while the database did not answer (the writes spool).
    #[error("db: write failed: {0}")]
    Write(#[source] diesel::result::Error),
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
}

/// One connection type for both backends (SQLite last: it would accept any string as a file name).
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Where the records live, from `database.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    Sqlite(String),
    Postgres(String),
}

impl DbTarget {
    pub fn parse(url: &str) -> Result<DbTarget, DbError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(DbTarget::Sqlite(path.to_string()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DbTarget::Postgres(url.to_string()))
        } else {
            Err(DbError::BadUrl(url.to_string()))
        }
    }

    /// The URL without credentials, for logs.
    pub fn redacted(&self) -> String {
        match self {
            DbTarget::Sqlite(p) => format!("sqlite://{p}"),
            DbTarget::Postgres(u) => crate::config::redact_url(u),
        }
    }
}

/// Opens connections for the pool: the backend is chosen by the URL, never by trial.
#[derive(Debug, Clone)]
pub struct DbManager {
    target: DbTarget,
}

/// SQLite fails at once on a lock unless `busy_timeout` is set first, in its own statement; WAL lets readers
/// work beside the one writer.
const SQLITE_SETUP: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

impl r2d2::ManageConnection for DbManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        let conn = match &self.target {
            DbTarget::Sqlite(path) => {
                let mut c = diesel::SqliteConnection::establish(path).map_err(diesel::r2d2::Error::ConnectionError)?;
                for pragma in SQLITE_SETUP.split_inclusive(';') {
                    c.batch_execute(pragma).map_err(diesel::r2d2::Error::QueryError)?;
                }
                DbConnection::Sqlite(c)
            }
            DbTarget::Postgres(url) => {
                DbConnection::Pg(diesel::PgConnection::establish(url).map_err(diesel::r2d2::Error::ConnectionError)?)
            }
        };
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1").map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, _: &mut DbConnection) -> bool {
        false
    }
}

pub type DbPool = r2d2::Pool<DbManager>;

/// A connection from the pool, or why there is none.
pub fn connect(pool: &DbPool, target: &DbTarget) -> Result<r2d2::PooledConnection<DbManager>, DbError> {
    pool.get().map_err(|source| DbError::Connect {
        target: target.redacted(),
        source,
    })
}

/// A pool that does not block start-up when the database is down: connections are made on demand, and a
/// caller waits at most `timeout` for one.
pub fn pool(target: &DbTarget, size: u32, timeout: Duration) -> Result<DbPool, DbError> {
    if let DbTarget::Sqlite(path) = target {
        if let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            // The records hold phone numbers and transcripts: a directory of our own user's.
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| DbError::File {
                    path: dir.display().to_string(),
                    source,
                })?;
        }
        // Created here, mode 0600, before SQLite creates it from the umask: its -wal and -shm files take the
        // database file's mode.
        use std::os::unix::fs::OpenOptionsExt;
        if !std::path::Path::new(path).exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| DbError::File {
                    path: path.clone(),
                    source,
                })?;
        }
    }
    Ok(r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(timeout)
        .test_on_check_out(true)
        .build_unchecked(DbManager { target: target.clone() }))
}

/// Key of the PostgreSQL advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x7773_6170_6900;

/// Applies pending migrations of the connection's backend; returns how many ran. On PostgreSQL the
/// instances of a fleet starting together take turns (an advisory lock): otherwise two would run the
/// same migration at once and one would fail half-way.
pub fn migrate(conn: &mut DbConnection) -> Result<usize, DbError> {
    let ran = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConnection::Pg(c) => {
            let lock = |c: &mut diesel::PgConnection, sql: &str| {
                c.batch_execute(&format!("SELECT {sql}({MIGRATION_LOCK})"))
                    .map_err(|e| DbError::Migrate(Box::new(e)))
            };
            lock(c, "pg_advisory_lock")?;
            let ran = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len());
            lock(c, "pg_advisory_unlock")?;
            ran
        }
    };
    ran.map_err(DbError::Migrate)
}

/// Upserts a call snapshot: newer revisions replace older ones of the same attempt, older ones never replace
/// newer ones, and a revision-0 record (a refusal) only fills a missing row. Another attempt of the same call
/// id is another row.
pub fn save_call(conn: &mut DbConnection, rec: &CallRecord) -> QueryResult<()> {
    let updated = diesel::update(
        calls::table
            .filter(calls::call_id.eq(&rec.call_id))
            .filter(calls::carrier.eq(&rec.carrier))
            .filter(calls::attempt.eq(rec.attempt))
            .filter(calls::revision.lt(rec.revision)),
    )
    .set(rec)
    .execute(conn)?;
    if updated == 0 && !attempt_exists(conn, rec)? {
        diesel::insert_into(calls::table).values(rec).execute(conn)?;
    }
    Ok(())
}

fn attempt_exists(conn: &mut DbConnection, rec: &CallRecord) -> QueryResult<bool> {
    let n: i64 = calls::table
        .filter(calls::call_id.eq(&rec.call_id))
        .filter(calls::carrier.eq(&rec.carrier))
        .filter(calls::attempt.eq(rec.attempt))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The latest attempt recorded for a call of `carrier`.
fn latest_attempt(conn: &mut DbConnection, call_id: &str, carrier: &str) -> QueryResult<Option<i64>> {
    calls::table
        .filter(calls::call_id.eq(call_id))
        .filter(calls::carrier.eq(carrier))
        .select(diesel::dsl::max(calls::attempt))
        .first(conn)
}

/// Inserts the events not already stored (keyed on call id, carrier, attempt and seq), so replays are
/// harmless.
pub fn save_events(conn: &mut DbConnection, events: &[CallEvent]) -> QueryResult<usize> {
    let Some(first) = events.first() else { return Ok(0) };
    let min_seq = events.iter().map(|e| e.seq).min().unwrap_or(first.seq);
    let existing: Vec<(String, String, i64, i64)> = call_events::table
        .filter(call_events::call_id.eq_any(events.iter().map(|e| e.call_id.as_str())))
        .filter(call_events::seq.ge(min_seq))
        .select((
            call_events::call_id,
            call_events::carrier,
            call_events::attempt,
            call_events::seq,
        ))
        .load(conn)?;
    let fresh: Vec<&CallEvent> = events
        .iter()
        .filter(|e| {
            !existing
                .iter()
                .any(|(c, k, a, s)| *c == e.call_id && *k == e.carrier && *a == e.attempt && *s == e.seq)
        })
        .collect();
    for e in &fresh {
        diesel::insert_into(call_events::table).values(*e).execute(conn)?;
    }
    Ok(fresh.len())
}

/// Rewrites a saved event's text (a corrected agent response), inserting it if it is missing.
pub fn revise_event(conn: &mut DbConnection, event: &CallEvent) -> QueryResult<()> {
    use call_events::dsl as e;
    let key = e::call_id
        .eq(&event.call_id)
        .and(e::carrier.eq(&event.carrier))
        .and(e::attempt.eq(event.attempt))
        .and(e::seq.eq(event.seq));
    let changed = diesel::update(call_events::table.filter(key))
        .set(e::detail.eq(&event.detail))
        .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(call_events::table).values(event).execute(conn)?;
    }
    Ok(())
}

/// Records the carrier's hang-up/status report on its attempt — the one named, else the latest of that
/// call id from Mcube (the one carrier that reports this way: another carrier's call of the same id is
/// another call) — creating a minimal row if the call is unknown.
pub fn save_status(conn: &mut DbConnection, report: &StatusReport) -> QueryResult<()> {
    let stub = CallRecord::stub(&report.call_id, 0, RecordState::Reported, report.at_ms);
    let carrier = stub.carrier.clone();
    let attempt = match report.attempt {
        Some(a) => a,
        None => latest_attempt(conn, &report.call_id, &carrier)?.unwrap_or(report.at_ms.saturating_mul(1000)),
    };
    let set_status = |conn: &mut DbConnection| {
        diesel::update(
            calls::table
                .filter(calls::call_id.eq(&report.call_id))
                .filter(calls::carrier.eq(&carrier))
                .filter(calls::attempt.eq(attempt)),
        )
        .set((
            calls::dial_status.eq(&report.dial_status),
            calls::recording_url.eq(&report.recording_url),
        ))
        .execute(conn)
    };
    if set_status(conn)? == 0 {
        let stub = CallRecord { attempt, ..stub };
        diesel::insert_into(calls::table).values(&stub).execute(conn)?;
        set_status(conn)?;
    }
    Ok(())
}

/// Calls a crash of this instance left open (started before this process) are closed as `aborted` with end
/// reason `restart`; so are rows that name no instance (written before instances were recorded). Other
/// instances' calls are not touched.
pub fn close_abandoned(
    conn: &mut DbConnection,
    now_ms: i64,
    started_before: i64,
    instance_id: &str,
) -> QueryResult<usize> {
    let open = calls::state.eq_any(RecordState::LIVE.map(RecordState::as_str));
    let ours = calls::instance_id.eq_any([instance_id, ""]);
    diesel::update(
        calls::table
            .filter(open)
            .filter(ours)
            .filter(calls::started_at.lt(started_before)),
    )
    .set((
        calls::state.eq(RecordState::Aborted.as_str()),
        calls::end_reason.eq("restart"),
        calls::ended_at.eq(now_ms),
        calls::updated_at.eq(now_ms),
    ))
    .execute(conn)
}

/// Most attempts of one call id listed with it.
pub const MAX_ATTEMPTS_LISTED: i64 = 100;

/// One stored call: the attempt asked for (else the latest), its events in order, and every attempt of the
/// call id, newest first.
pub struct CallWithEvents {
    pub row: CallRow,
    pub events: Vec<CallEvent>,
    pub attempts: Vec<AttemptSummary>,
}

/// One attempt of a call id, as listed beside the one shown.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Queryable)]
pub struct AttemptSummary {
    /// The carrier whose call it was (another carrier's call of the same id is another call).
    pub carrier: String,
    pub attempt: i64,
    pub state: String,
    pub started_at: i64,
    pub end_reason: Option<String>,
}

/// `carrier`: only that carrier's calls of this id (an admin's `?carrier=`); `None`: any carrier's.
pub fn get_call(
    conn: &mut DbConnection,
    call_id: &str,
    carrier: Option<&str>,
    attempt: Option<i64>,
) -> QueryResult<Option<CallWithEvents>> {
    let mut listed = calls::table
        .filter(calls::call_id.eq(call_id))
        .order(calls::attempt.desc())
        .select((
            calls::carrier,
            calls::attempt,
            calls::state,
            calls::started_at,
            calls::end_reason,
        ))
        .limit(MAX_ATTEMPTS_LISTED)
        .into_boxed();
    if let Some(carrier) = carrier {
        listed = listed.filter(calls::carrier.eq(carrier));
    }
    let attempts: Vec<AttemptSummary> = listed.load(conn)?;
    let shown = match attempt {
        Some(a) => {
            let mut named = calls::table
                .filter(calls::call_id.eq(call_id))
                .filter(calls::attempt.eq(a))
                .select(calls::carrier)
                .into_boxed();
            if let Some(carrier) = carrier {
                named = named.filter(calls::carrier.eq(carrier));
            }
            named.first::<String>(conn).optional()?.map(|c| (c, a))
        }
        None => attempts.first().map(|s| (s.carrier.clone(), s.attempt)),
    };
    let Some((carrier, attempt)) = shown else {
        return Ok(None);
    };
    let row = calls::table
        .filter(calls::call_id.eq(call_id))
        .filter(calls::carrier.eq(&carrier))
        .filter(calls::attempt.eq(attempt))
        .select(CallRow::as_select())
        .first(conn)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let events = call_events::table
        .filter(call_events::call_id.eq(call_id))
        .filter(call_events::carrier.eq(&carrier))
        .filter(call_events::attempt.eq(attempt))
        .order(call_events::seq.asc())
        .select(CallEvent::as_select())
        .load(conn)?;
    Ok(Some(CallWithEvents { row, events, attempts }))
}
