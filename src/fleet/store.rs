//! The fleet's tables in PostgreSQL (`fleet_instances`, `fleet_cap`): registering and renewing an
//! instance's lease with its block of slots, closing the calls of instances whose lease expired, and the
//! reads of `/fleet`. Every time is the database's (`now()`), so the instances' clocks never matter.

use super::lease::{self, Ask};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel::PgConnection;
use serde::Serialize;

/// What failed on the fleet's side: its database, its steward, or the cap it found there.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("db: fleet: cannot connect: {0}")]
    Connect(#[source] diesel::ConnectionError),
    #[error("db: fleet: {0}")]
    Statement(#[from] diesel::result::Error),
    #[error("db: fleet: no connection")]
    NoConnection,
    #[error("fleet: steward unavailable: {0}")]
    Steward(#[source] actix::MailboxError),
    /// The steward panicked while renewing (`crate::supervise`); it is rebuilt.
    #[error("fleet: {0}")]
    Panicked(String),
    #[error(
        "fleet.max_concurrent_calls: this instance's {mine} differs from the fleet's {stored} (set by {set_by}; \
         {live} other instance(s) live): every instance of a fleet must use the same cap, or the lower one is \
         not enforced. Set fleet.max_concurrent_calls = {stored}, or to change the fleet's cap, stop every \
         instance and start them with the new one"
    )]
    CapDiffers {
        mine: usize,
        stored: i32,
        set_by: String,
        live: i64,
    },
}

/// This instance as the fleet sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub instance_id: String,
    pub public_url: String,
    pub admin_url: String,
    /// When this process started (Unix ms).
    pub started_ms: i64,
    pub fallback: usize,
    pub fleet_cap: usize,
    pub lease_ttl_ms: u64,
}

fn int(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn ttl(m: &Member) -> i64 {
    i64::try_from(m.lease_ttl_ms).unwrap_or(i64::MAX)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The other live instances, added up.
#[derive(QueryableByName)]
struct Others {
    /// Slots they hold, counting each one's fallback reserve even before it got it.
    #[diesel(sql_type = BigInt)]
    held: i64,
    #[diesel(sql_type = BigInt)]
    live: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// What one renewal settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The block the database now counts as ours.
    pub block: usize,
    /// Our fair part of the fleet's free slots (`lease::fair_spare`).
    pub fair_spare: usize,
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

/// Renews this instance's lease and settles its block in one transaction, serialised with every other
/// grant by the lock on the one `fleet_cap` row.
pub fn renew(conn: &mut PgConnection, me: &Member, ask: Ask) -> QueryResult<Grant> {
    conn.transaction(|c| {
        let fleet_cap = locked_cap(c, me)?.map_or(me.fleet_cap, |row| count(i64::from(row.cap)));
        let others: Others = diesel::sql_query(
            "SELECT COALESCE(SUM(GREATEST(held_slots, LEAST(fallback_calls, local_cap))), 0)::BIGINT AS held, \
             COALESCE(SUM(live_calls), 0)::BIGINT AS live, COUNT(*)::BIGINT AS n FROM fleet_instances \
             WHERE instance_id <> $1 AND last_seen > now() - $2 * INTERVAL '1 millisecond'",
        )
        .bind::<Text, _>(&me.instance_id)
        .bind::<BigInt, _>(ttl(me))
        .get_result(c)?;
        let room = fleet_cap.saturating_sub(count(others.held));
        let block = lease::grant(ask, room);
        let fair_spare = lease::fair_spare(
            fleet_cap,
            count(others.live).saturating_add(ask.occupied),
            count(others.n) + 1,
        );
        // A draining instance needs no reserve: it admits nothing, with or without the database.
        let reserve = if ask.draining { 0 } else { me.fallback };
        diesel::sql_query(
            "INSERT INTO fleet_instances (instance_id, public_url, admin_url, started_at, last_seen, draining, \
             live_calls, local_cap, held_slots, fallback_calls) \
             VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), now(), $5, $6, $7, $8, $9) \
             ON CONFLICT (instance_id) DO UPDATE SET public_url = EXCLUDED.public_url, \
             admin_url = EXCLUDED.admin_url, started_at = EXCLUDED.started_at, last_seen = now(), \
             draining = EXCLUDED.draining, live_calls = EXCLUDED.live_calls, local_cap = EXCLUDED.local_cap, \
             held_slots = EXCLUDED.held_slots, fallback_calls = EXCLUDED.fallback_calls",
        )
        .bind::<Text, _>(&me.instance_id)
        .bind::<Text, _>(&me.public_url)
        .bind::<Text, _>(&me.admin_url)
        .bind::<BigInt, _>(me.started_ms)
        .bind::<Bool, _>(ask.draining)
        .bind::<Integer, _>(int(ask.occupied))
        .bind::<Integer, _>(int(ask.local_cap))
        .bind::<Integer, _>(int(block))
        .bind::<Integer, _>(int(reserve))
        .execute(c)?;
        Ok(Grant { block, fair_spare })
    })
}

/// The fleet's cap, as the database holds it.
#[derive(QueryableByName)]
struct StoredCap {
    #[diesel(sql_type = Integer)]
    cap: i32,
    /// The instance that set it.
    #[diesel(sql_type = Text)]
    updated_by: String,
}

/// The fleet's cap row, locked until the transaction ends: every grant is serialised on it. A fleet
/// without one (a new database) gets this instance's configured cap.
fn locked_cap(c: &mut PgConnection, me: &Member) -> QueryResult<Option<StoredCap>> {
    diesel::sql_query(
        "INSERT INTO fleet_cap (id, max_concurrent_calls, updated_by) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind::<Integer, _>(int(me.fleet_cap))
    .bind::<Text, _>(&me.instance_id)
    .execute(c)?;
    diesel::sql_query("SELECT max_concurrent_calls AS cap, updated_by FROM fleet_cap WHERE id = 1 FOR UPDATE")
        .get_result(c)
        .optional()
}

/// What the fleet's cap in the database says of this instance's configured one, at its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapCheck {
    /// The same cap.
    Agreed,
    /// No other instance is live: this one's cap is now the fleet's (it was `was`).
    Set { was: i32 },
    /// The live fleet runs with another cap: this instance must not join with its own.
    Differs { stored: i32, set_by: String, live: i64 },
}

/// At start: the fleet's cap lives in the database, and an instance joins only with the same one. With
/// no other instance live, the configured cap becomes the fleet's (a fleet restarted with a new cap).
pub fn settle_cap(conn: &mut PgConnection, me: &Member) -> QueryResult<CapCheck> {
    conn.transaction(|c| {
        let Some(stored) = locked_cap(c, me)? else {
            return Ok(CapCheck::Agreed);
        };
        if count(i64::from(stored.cap)) == me.fleet_cap {
            return Ok(CapCheck::Agreed);
        }
        let live: Count = diesel::sql_query(
            "SELECT COUNT(*)::BIGINT AS n FROM fleet_instances \
             WHERE instance_id <> $1 AND last_seen > now() - $2 * INTERVAL '1 millisecond'",
        )
        .bind::<Text, _>(&me.instance_id)
        .bind::<BigInt, _>(ttl(me))
        .get_result(c)?;
        if live.n > 0 {
            return Ok(CapCheck::Differs {
                stored: stored.cap,
                set_by: stored.updated_by,
                live: live.n,
            });
        }
        diesel::sql_query("UPDATE fleet_cap SET max_concurrent_calls = $1, updated_by = $2 WHERE id = 1")
            .bind::<Integer, _>(int(me.fleet_cap))
            .bind::<Text, _>(&me.instance_id)
            .execute(c)?;
        Ok(CapCheck::Set { was: stored.cap })
    })
}

#[derive(QueryableByName)]
struct Lost {
    #[diesel(sql_type = Text)]
    instance_id: String,
}

/// Instances whose lease expired leave the fleet: their rows go and their open calls are closed
/// `aborted` / `instance_lost`, in one transaction. The row's delete is the claim: a second survivor
/// doing the same waits for the first and then finds nothing, so each lost instance is closed once.
/// Returns each lost instance with the calls closed.
pub fn reap(conn: &mut PgConnection, me: &Member, now_ms: i64) -> QueryResult<Vec<(String, usize)>> {
    conn.transaction(|c| {
        let lost: Vec<Lost> = diesel::sql_query(
            "DELETE FROM fleet_instances WHERE instance_id <> $1 \
             AND last_seen < now() - $2 * INTERVAL '1 millisecond' RETURNING instance_id",
        )
        .bind::<Text, _>(&me.instance_id)
        .bind::<BigInt, _>(ttl(me))
        .load(c)?;
        let mut closed = Vec::with_capacity(lost.len());
        for l in lost {
            let n = diesel::sql_query(
                "UPDATE calls SET state = 'aborted', end_reason = 'instance_lost', ended_at = $2, \
                 updated_at = $2, duration_ms = GREATEST(duration_ms, $2 - started_at) \
                 WHERE instance_id = $1 AND state IN ('connecting', 'active', 'ending')",
            )
            .bind::<Text, _>(&l.instance_id)
            .bind::<BigInt, _>(now_ms)
            .execute(c)?;
            closed.push((l.instance_id, n));
        }
        Ok(closed)
    })
}

/// This instance leaves the fleet on a clean stop: its slots return at once, not after its lease expires.
pub fn leave(conn: &mut PgConnection, instance_id: &str) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM fleet_instances WHERE instance_id = $1")
        .bind::<Text, _>(instance_id)
        .execute(conn)
}

/// One instance as `/fleet` shows it.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct InstanceRow {
    #[diesel(sql_type = Text)]
    pub instance_id: String,
    #[diesel(sql_type = Text)]
    pub public_url: String,
    #[diesel(sql_type = Text)]
    pub admin_url: String,
    /// Unix ms.
    #[diesel(sql_type = BigInt)]
    pub started_ms: i64,
    /// How long ago its lease was last renewed, on the database's clock.
    #[diesel(sql_type = BigInt)]
    pub lease_age_ms: i64,
    /// Its lease expired: the next survivor's renewal closes its calls.
    #[diesel(sql_type = Bool)]
    pub expired: bool,
    #[diesel(sql_type = Bool)]
    pub draining: bool,
    #[diesel(sql_type = Integer)]
    pub live_calls: i32,
    #[diesel(sql_type = Integer)]
    pub local_cap: i32,
    #[diesel(sql_type = Integer)]
    pub held_slots: i32,
    #[diesel(sql_type = Integer)]
    pub fallback_calls: i32,
}

/// Every instance on the database, oldest first.
pub fn instances(conn: &mut PgConnection, lease_ttl_ms: u64) -> QueryResult<Vec<InstanceRow>> {
    diesel::sql_query(
        "SELECT instance_id, public_url, admin_url, \
         (EXTRACT(EPOCH FROM started_at) * 1000)::BIGINT AS started_ms, \
         GREATEST(0, (EXTRACT(EPOCH FROM now() - last_seen) * 1000))::BIGINT AS lease_age_ms, \
         last_seen <= now() - $1 * INTERVAL '1 millisecond' AS expired, \
         draining, live_calls, local_cap, held_slots, fallback_calls \
         FROM fleet_instances ORDER BY started_at, instance_id",
    )
    .bind::<BigInt, _>(i64::try_from(lease_ttl_ms).unwrap_or(i64::MAX))
    .load(conn)
}

/// The fallback shares of the other live instances, added up.
pub fn other_fallbacks(conn: &mut PgConnection, instance_id: &str, lease_ttl_ms: u64) -> QueryResult<i64> {
    let sum: Count = diesel::sql_query(
        "SELECT COALESCE(SUM(fallback_calls), 0)::BIGINT AS n FROM fleet_instances \
         WHERE instance_id <> $1 AND last_seen > now() - $2 * INTERVAL '1 millisecond'",
    )
    .bind::<Text, _>(instance_id)
    .bind::<BigInt, _>(i64::try_from(lease_ttl_ms).unwrap_or(i64::MAX))
    .get_result(conn)?;
    Ok(sum.n)
}

#[derive(QueryableByName)]
struct CapRow {
    #[diesel(sql_type = Nullable<Integer>)]
    cap: Option<i32>,
}

/// The fleet's cap as the database holds it (set by the first instance of a fleet to start).
pub fn fleet_cap(conn: &mut PgConnection) -> QueryResult<Option<i32>> {
    let row: Option<CapRow> = diesel::sql_query("SELECT max_concurrent_calls AS cap FROM fleet_cap WHERE id = 1")
        .get_result(conn)
        .optional()?;
    Ok(row.and_then(|r| r.cap))
}

/// An instance carrying an open call, with the URL of its admin API.
#[derive(Debug, QueryableByName)]
pub struct Owner {
    #[diesel(sql_type = Text)]
    pub instance_id: String,
    #[diesel(sql_type = Text)]
    pub admin_url: String,
    /// Whose call it is (two carriers may each have a call of the id).
    #[diesel(sql_type = Text)]
    pub carrier: String,
}

/// The live instances carrying an open call of this id (of `carrier` when named), one per carrier, the
/// latest attempt first.
pub fn owners_of(conn: &mut PgConnection, call_id: &str, carrier: Option<&str>) -> QueryResult<Vec<Owner>> {
    diesel::sql_query(
        "SELECT DISTINCT ON (c.carrier) c.instance_id, i.admin_url, c.carrier FROM calls c \
         JOIN fleet_instances i ON i.instance_id = c.instance_id \
         WHERE c.call_id = $1 AND ($2::TEXT IS NULL OR c.carrier = $2) \
         AND c.state IN ('connecting', 'active', 'ending') ORDER BY c.carrier, c.attempt DESC",
    )
    .bind::<Text, _>(call_id)
    .bind::<Nullable<Text>, _>(carrier)
    .load(conn)
}
