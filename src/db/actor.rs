//! `DbActor`: runs the `Writer` on a `SyncArbiter` thread, so r2d2's blocking `get()` and the database's own
//! latency never reach an actix worker. One message per operation: write a batch, replay some of the
//! spool, prepare at start-up.

use super::models::DbWrite;
use super::writer::{Replay, Writer, REPLAY_SLICE};
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
        self.writer.write(msg.writes);
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
        let replay = self.writer.replay(REPLAY_SLICE);
        if replay == Replay::More {
            ctx.address().do_send(ReplaySpool);
        }
        MessageResult(replay)
    }
}
