//! The `CallRegistry` actor: the registry's clock (reservation expiry, reconciling against live calls) and
//! its messages (list, totals, find, cap, drain, end all); it records calls admitted that never connected.

use super::slots::*;
use crate::call::EndReason;
use crate::db::batcher::{DbBatcher, Save};
use crate::db::models::{now_ms, DbWrite};
use crate::values::CallId;
use actix::prelude::*;
use std::time::Duration;

/// How often due reservations are freed: a reservation lives at most this much past its deadline.
const RESERVATION_TICK: Duration = Duration::from_millis(100);

pub struct CallRegistry {
    slots: Slots,
    reconcile_every: Duration,
    /// Where calls admitted but never connected are recorded, with the agent they were meant for.
    records: Option<(Addr<DbBatcher>, Option<String>)>,
}

impl CallRegistry {
    pub fn new(max_calls: usize, admission_deadline: Duration, reconcile_every: Duration) -> Self {
        CallRegistry {
            slots: Slots::new(max_calls, admission_deadline),
            reconcile_every,
            records: None,
        }
    }

    /// Records calls admitted but never connected through `db`.
    pub fn with_records(mut self, db: Addr<DbBatcher>, agent_id: Option<String>) -> Self {
        self.records = Some((db, agent_id));
        self
    }

    /// The table the HTTP handlers admit and claim through.
    pub fn slots(&self) -> Slots {
        self.slots.clone()
    }

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
                let mut rec = c.info.record("expired", admitted_ms);
                rec.agent_id = agent_id.clone();
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

impl Actor for CallRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.reconcile_every, |act, _| {
            let expired = act.slots.reconcile();
            act.record_unconnected(expired, EndReason::CarrierNeverConnected);
        });
        ctx.run_interval(RESERVATION_TICK, |act, _| {
            let expired = act.slots.expire_reservations();
            act.record_unconnected(expired, EndReason::CarrierNeverConnected);
        });
    }
}

/// Lists every slot (reserved and live) with the registry's totals.
pub struct ListCalls;

impl Message for ListCalls {
    type Result = (RegistrySummary, Vec<SlotView>);
}

impl Handler<ListCalls> for CallRegistry {
    type Result = MessageResult<ListCalls>;

    fn handle(&mut self, _: ListCalls, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.slots.list())
    }
}

/// Totals only.
pub struct Summarize;

impl Message for Summarize {
    type Result = RegistrySummary;
}

impl Handler<Summarize> for CallRegistry {
    type Result = MessageResult<Summarize>;

    fn handle(&mut self, _: Summarize, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.slots.summary())
    }
}

/// One call's slot, if it holds one.
pub struct FindCall {
    pub call_id: CallId,
}

impl Message for FindCall {
    type Result = Option<SlotView>;
}

impl Handler<FindCall> for CallRegistry {
    type Result = Option<SlotView>;

    fn handle(&mut self, msg: FindCall, _: &mut Context<Self>) -> Option<SlotView> {
        self.slots.find(&msg.call_id)
    }
}

/// Changes the cap at run time. Live calls are untouched: a cap below `active` only stops admissions.
pub struct SetLimit {
    pub max_concurrent_calls: usize,
}

impl Message for SetLimit {
    type Result = RegistrySummary;
}

impl Handler<SetLimit> for CallRegistry {
    type Result = MessageResult<SetLimit>;

    fn handle(&mut self, msg: SetLimit, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.slots.set_limit(msg.max_concurrent_calls))
    }
}

/// Stops admitting calls (refurl and upgrade answer 503 `draining`); live calls go on.
pub struct StartDrain;

impl Message for StartDrain {
    type Result = ();
}

impl Handler<StartDrain> for CallRegistry {
    type Result = ();

    fn handle(&mut self, _: StartDrain, _: &mut Context<Self>) {
        self.slots.start_drain();
    }
}

/// Ends every live call with `reason` (drain deadline, shutdown) and drops reservations; returns how many
/// calls were told to end.
pub struct EndAll {
    pub reason: crate::call::EndReason,
}

impl Message for EndAll {
    type Result = usize;
}

impl Handler<EndAll> for CallRegistry {
    type Result = usize;

    fn handle(&mut self, msg: EndAll, _: &mut Context<Self>) -> usize {
        let (told, dropped) = self.slots.end_all(msg.reason);
        self.record_unconnected(dropped, msg.reason);
        told
    }
}
