//! `DbActor`: runs the `Writer` on a `SyncArbiter` thread, so r2d2's blocking `get()` and the database's own
//! latency never reach an actix worker. One message per operation: write a batch, replay some of the
//! spool, prepare at start-up.

use super::models::DbWrite;
use super::writer::{Replay, Writer, REPLAY_SLICE};
use crate::supervise::{self, Part};
use actix::prelude::*;

pub struct DbActor {
    writer: Writer,
}

impl DbActor {
    pub fn new(writer: Writer) -> Self {
        DbActor { writer }
    }
}

impl Actor for DbActor {
    type Context = SyncContext<Self>;

    fn started(&mut self, _: &mut SyncContext<Self>) {
        supervise::watch_thread("records writer");
    }
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

    /// A panic while writing (`crate::supervise`): the batch is written again row by row, each guarded, so
    /// a row that panics again goes to the dead-letter file and the others are stored (or spooled); then
    /// the actor stops, and the arbiter rebuilds its writer from the spool and the pool.
    fn handle(&mut self, msg: WriteBatch, ctx: &mut SyncContext<Self>) {
        let writes = msg.writes;
        let Err(panic) = supervise::guard(Part::Records, || self.writer.write_all(&writes)) else {
            return;
        };
        log::error!("db: {panic}; writing its batch row by row, then rebuilding the records writer");
        for w in &writes {
            let row = std::slice::from_ref(w);
            if let Err(panic) = supervise::guard(Part::Records, || self.writer.write_all(row)) {
                self.writer.set_aside(w, &panic.to_string());
            }
        }
        ctx.stop();
    }
}

/// Start-up: reach and migrate the database (the spool waits until the gateway is ready); true when it
/// answered.
pub struct Prepare;

impl Message for Prepare {
    type Result = bool;
}

impl Handler<Prepare> for DbActor {
    type Result = bool;

    fn handle(&mut self, _: Prepare, _: &mut SyncContext<Self>) -> bool {
        self.writer.prepare()
    }
}

/// Replay the spool for a slice of time (sent periodically, and after the gateway is ready). A long spool
/// is replayed slice after slice, each queued behind the writes that arrived meanwhile, so it streams in
/// bounded chunks without holding new records back.
pub struct ReplaySpool;

impl Message for ReplaySpool {
    type Result = Replay;
}

impl Handler<ReplaySpool> for DbActor {
    type Result = MessageResult<ReplaySpool>;

    fn handle(&mut self, _: ReplaySpool, ctx: &mut SyncContext<Self>) -> Self::Result {
        let replay = supervise::guard(Part::Records, || self.writer.replay(REPLAY_SLICE));
        let replay = replay.unwrap_or_else(|panic| {
            // The spool stays as it was on disk: the rebuilt writer replays it from there.
            log::error!("db: {panic} while replaying the spool; rebuilding the records writer");
            ctx.stop();
            Replay::Unavailable
        });
        if replay == Replay::More {
            ctx.address().do_send(ReplaySpool);
        }
        MessageResult(replay)
    }
}
