//! `DbBatcher`: where calls drop their records (`do_send`, never awaited), so the media path never waits on
//! the database. It gathers writes for a few milliseconds and hands them to the `DbActor` as one batch —
//! a thousand calls ending in the same second become a handful of transactions — and nudges the actor to
//! replay its spool periodically.

use super::actor::{DbActor, ReplaySpool, WriteBatch};
use super::models::DbWrite;
use super::writer::Replay;
use crate::supervise::{self, Part};
use actix::prelude::*;
use std::time::Duration;

pub struct DbBatcher {
    db: Addr<DbActor>,
    pending: Vec<DbWrite>,
    flush_timer: Option<SpawnHandle>,
    max_batch: usize,
    delay: Duration,
    replay_every: Duration,
    /// Stamped on every call record that names no instance (`server.instance_id`).
    instance_id: String,
}

impl DbBatcher {
    pub fn new(db: Addr<DbActor>, max_batch: usize, delay: Duration, replay_every: Duration) -> Self {
        DbBatcher {
            db,
            pending: Vec::new(),
            flush_timer: None,
            max_batch: max_batch.max(1),
            delay,
            replay_every,
            instance_id: String::new(),
        }
    }

    /// Call records are stamped with this instance's name before they are stored or spooled.
    pub fn for_instance(mut self, instance_id: &str) -> Self {
        self.instance_id = instance_id.to_string();
        self
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.flush_timer.take() {
            ctx.cancel_future(h);
        }
        if !self.pending.is_empty() {
            self.db.do_send(WriteBatch {
                writes: std::mem::take(&mut self.pending),
            });
        }
    }
}

/// Restarted by its supervisor after a panic (`crate::supervise`): the same batcher, its pending writes
/// kept, its mailbox (every call's `Addr`) the same; `started` runs again.
impl Supervised for DbBatcher {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.flush_timer = None;
    }
}

impl Actor for DbBatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.replay_every, |act, _| act.db.do_send(ReplaySpool));
        // After a restart, what was gathered before the panic goes on its way.
        self.flush(ctx);
    }
}

/// Records to store: a call snapshot, its new events, a status report.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Save {
    /// Applied in order.
    pub writes: Vec<DbWrite>,
}

impl Handler<Save> for DbBatcher {
    type Result = ();

    fn handle(&mut self, msg: Save, ctx: &mut Context<Self>) {
        // A panic here must not take the batcher's mailbox with it (every later record would be dropped):
        // it stops, and its supervisor restarts it with what it holds.
        if let Err(panic) = supervise::guard(Part::Records, || self.gather(msg, ctx)) {
            log::error!("db: {panic}; restarting the batcher");
            ctx.stop();
        }
    }
}

impl DbBatcher {
    fn gather(&mut self, mut msg: Save, ctx: &mut Context<Self>) {
        for write in &mut msg.writes {
            if let DbWrite::Call(rec) = write {
                if rec.instance_id.is_empty() {
                    rec.instance_id.clone_from(&self.instance_id);
                }
            }
        }
        #[cfg(feature = "fault-injection")]
        let named: Vec<String> = msg
            .writes
            .iter()
            .filter_map(DbWrite::call_id)
            .map(|id| format!("{id}:batcher"))
            .collect();
        // Held first: whatever panics after this, the writes are kept for the restarted batcher.
        self.pending.extend(msg.writes);
        #[cfg(feature = "fault-injection")]
        for subject in &named {
            supervise::fault::point(Part::Records, subject);
        }
        if self.pending.len() >= self.max_batch {
            self.flush(ctx);
        } else if self.flush_timer.is_none() {
            self.flush_timer = Some(ctx.run_later(self.delay, |act, ctx| {
                act.flush_timer = None;
                if let Err(panic) = supervise::guard(Part::Records, || act.flush(ctx)) {
                    log::error!("db: {panic}; restarting the batcher");
                    ctx.stop();
                }
            }));
        }
    }
}

/// Hands over everything pending and waits until the database actor has dealt with it (stored or
/// spooled): for shutdown and tests.
pub struct FlushAll;

impl Message for FlushAll {
    type Result = Result<bool, MailboxError>;
}

impl Handler<FlushAll> for DbBatcher {
    type Result = ResponseFuture<Result<bool, MailboxError>>;

    fn handle(&mut self, _: FlushAll, ctx: &mut Context<Self>) -> Self::Result {
        self.flush(ctx);
        let db = self.db.clone();
        // The actor handles messages in order, so this answers after every batch sent before it; a long
        // spool takes several slices.
        Box::pin(async move {
            loop {
                match db.send(ReplaySpool).await? {
                    Replay::More => continue,
                    replay => return Ok(replay == Replay::Empty),
                }
            }
        })
    }
}
