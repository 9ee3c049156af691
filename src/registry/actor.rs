//! `RegistryClock`: the registry's actor. It keeps time for the slot table — frees reservations whose
//! WebSocket never came, reconciles slots against live calls — and records the calls admitted that never
//! connected. Admissions do not pass through it (see `door`).

use super::slots::{SlotTable, Unconnected};
use crate::call::EndReason;
use crate::db::batcher::{DbBatcher, Save};
use crate::db::models::{now_ms, DbWrite};
use crate::supervise::{self, Part};
use actix::prelude::*;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How often due reservations are freed: a reservation lives at most this much past its deadline.
const RESERVATION_TICK: Duration = Duration::from_millis(100);

/// The table, shared by the door and the clock. A panic while it was held (caught where it happened, the
/// call refused) leaves it whole: each change is one map operation. The lock is then cleared and the
/// table used on; the clock's next reconcile checks its slots against the live calls.
pub(super) fn lock(table: &Mutex<SlotTable>) -> MutexGuard<'_, SlotTable> {
    table.lock().unwrap_or_else(|poisoned| {
        table.clear_poison();
        log::warn!("registry: a panic held the slot table; it is used on and reconciled");
        poisoned.into_inner()
    })
}

pub struct RegistryClock {
    pub(super) table: Arc<Mutex<SlotTable>>,
    pub(super) reconcile_every: Duration,
    /// Where calls admitted but never connected are recorded, with the agent they were meant for.
    pub(super) records: Option<(Addr<DbBatcher>, Option<String>)>,
}

impl RegistryClock {
    /// Each call admitted that never connected leaves a record: state `expired`, end reason
    /// `carrier_never_connected` (or the shutdown that dropped it), so an operator sees carriers that were
    /// admitted and never came.
    fn record_unconnected(&self, calls: Vec<Unconnected>, reason: EndReason) {
        let Some((db, agent_id)) = &self.records else { return };
        if calls.is_empty() {
            return;
        }
        let now = now_ms();
        let writes = calls
            .into_iter()
            .map(|c| {
                let admitted_ms = c
                    .admitted_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(now, |d| d.as_millis() as i64);
                let mut rec = c.info.record(crate::db::models::RecordState::Expired, admitted_ms);
                rec.agent_id = rec.agent_id.or_else(|| agent_id.clone());
                rec.end_reason = Some(reason.as_str().into());
                rec.ended_at = Some(now);
                rec.duration_ms = now.saturating_sub(admitted_ms);
                rec.revision = 1;
                rec.updated_at = now;
                DbWrite::Call(Box::new(rec))
            })
            .collect();
        db.do_send(Save { writes });
    }
}

impl Actor for RegistryClock {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.reconcile_every, |act, ctx| {
            act.supervised(ctx, |act| {
                let expired = lock(&act.table).reconcile();
                act.record_unconnected(expired, EndReason::CarrierNeverConnected);
            })
        });
        ctx.run_interval(RESERVATION_TICK, |act, ctx| {
            act.supervised(ctx, |act| {
                let expired = lock(&act.table).expire_reservations();
                act.record_unconnected(expired, EndReason::CarrierNeverConnected);
            })
        });
    }
}

/// A clock that panicked stops, and its supervisor starts it again (`started` re-arms its timers); the
/// table it keeps time for is shared, so nothing is lost with it.
impl Supervised for RegistryClock {
    fn restarting(&mut self, _: &mut Context<Self>) {
        log::warn!("registry: the clock restarts after a panic");
    }
}

impl RegistryClock {
    fn supervised(&mut self, ctx: &mut Context<Self>, work: impl FnOnce(&mut Self)) {
        if let Err(panic) = supervise::guard(Part::Registry, || work(self)) {
            log::error!("registry: {panic}; restarting the clock");
            ctx.stop();
        }
    }
}

/// Record these calls, admitted but never connected, as ended for `reason`.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct RecordUnconnected {
    pub calls: Vec<Unconnected>,
    pub reason: EndReason,
}

impl Handler<RecordUnconnected> for RegistryClock {
    type Result = ();

    fn handle(&mut self, msg: RecordUnconnected, _: &mut Context<Self>) {
        self.record_unconnected(msg.calls, msg.reason);
    }
}

/// Answers when the clock runs: the watchdog's proof that the registry is not wedged.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Ping;

impl Handler<Ping> for RegistryClock {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}
