//! `Registry`: the one door to the cap. Every admission, claim, list, cap change and drain goes through
//! it, and it is the only holder of the slot table besides the registry's clock. Admissions are decided
//! here, synchronously under a short lock: a round trip through an actor's mailbox made each refurl answer
//! wait for another thread to be scheduled (p99 25–100 ms inside the gateway in a 5,000-POST burst on 2
//! cores, against 0.1–0.25 ms under the lock).

use super::actor::{lock, Ping, RecordUnconnected, RegistryClock};
use super::share::FleetShare;
use super::slots::{Refusal, RegistrySummary, SlotTable, SlotView};
use crate::call::messages::CallHandle;
use crate::call::{CallInfo, EndReason};
use crate::carriers::CallKey;
use crate::db::batcher::DbBatcher;
use crate::supervise::{self, Part};
use crate::values::CallId;
use actix::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub struct Registry {
    table: Arc<Mutex<SlotTable>>,
    clock: Addr<RegistryClock>,
    /// In a fleet: wakes the steward when this instance runs short of slots or starts draining.
    fleet_wake: Arc<tokio::sync::Notify>,
}

/// What the fleet's steward sees of this instance under the table's lock.
pub struct FleetView<'a> {
    pub share: &'a mut FleetShare,
    /// Calls holding a slot.
    pub occupied: usize,
    pub local_cap: usize,
    pub draining: bool,
}

/// How the registry is set up.
pub struct RegistrySetup {
    pub max_calls: usize,
    /// How long an admitted call may take to open its WebSocket.
    pub admission_deadline: Duration,
    pub reconcile_every: Duration,
    /// Where calls admitted but never connected are recorded, with the agent they were meant for.
    pub records: Option<(Addr<DbBatcher>, Option<String>)>,
}

impl Registry {
    /// Starts the registry's clock on the current arbiter.
    pub fn start(setup: RegistrySetup) -> Registry {
        let table = Arc::new(Mutex::new(SlotTable::new(setup.max_calls, setup.admission_deadline)));
        let clock = RegistryClock {
            table: table.clone(),
            reconcile_every: setup.reconcile_every,
            records: setup.records,
        };
        let clock = Supervisor::start(move |_| clock);
        Registry {
            table,
            clock,
            fleet_wake: Arc::default(),
        }
    }

    /// Webhook admission: reserve a slot for the call or refuse; returns the call as admitted. `gate` is
    /// asked last, under the table's lock, once the call fits under the cap (see `SlotTable::admit`).
    pub fn admit(
        &self,
        info: CallInfo,
        gate: impl FnOnce(&CallInfo) -> Result<(), Refusal>,
    ) -> Result<CallInfo, Refusal> {
        let call_id = info.call_id.clone();
        let admitted = supervise::guard(Part::Registry, || {
            let mut t = lock(&self.table);
            supervise::fault::point(Part::Registry, call_id.as_str());
            (t.admit(info, gate), t.fleet_short())
        });
        let (admitted, short) = admitted.unwrap_or_else(|panic| {
            log::error!("call_id={call_id} {panic}; the call is refused");
            (Err(Refusal::InternalError), false)
        });
        if short {
            self.fleet_wake.notify_one();
        }
        admitted
    }

    /// From now on this instance admits within its share of a fleet's cap (see `FleetShare`).
    pub fn join_fleet(&self, fallback: usize) {
        lock(&self.table).join_fleet(fallback);
    }

    /// Notified when the fleet's steward should act before its next tick.
    pub fn fleet_wake(&self) -> Arc<tokio::sync::Notify> {
        self.fleet_wake.clone()
    }

    /// Runs `f` on this instance's fleet share under the table's lock; `None` outside a fleet.
    pub fn with_fleet<R>(&self, f: impl FnOnce(FleetView<'_>) -> R) -> Option<R> {
        let mut t = lock(&self.table);
        let (occupied, local_cap, draining) = (t.occupied(), t.local_cap(), t.is_draining());
        let share = t.fleet_mut()?;
        Some(f(FleetView {
            share,
            occupied,
            local_cap,
            draining,
        }))
    }

    /// The carrier's WebSocket arrived: claim the call's slot, held by the returned guard.
    pub fn claim(&self, call: &CallKey, admit_unreserved: bool) -> Result<(CallInfo, SlotGuard), Refusal> {
        let info = lock(&self.table).claim(call, admit_unreserved)?;
        let guard = SlotGuard {
            table: self.table.clone(),
            call: info.key(),
            attempt: info.attempt,
        };
        Ok((info, guard))
    }

    /// The call actor of this attempt now owns its slot; only weak handles to it are kept.
    pub fn attach(&self, key: &CallKey, attempt: i64, call: CallHandle) {
        lock(&self.table).attach(key, attempt, call);
    }

    pub fn find(&self, call: &CallKey) -> Option<SlotView> {
        lock(&self.table).find(call)
    }

    /// Every call holding a slot under this id, whatever its carrier.
    pub fn find_id(&self, id: &CallId) -> Vec<SlotView> {
        lock(&self.table).find_id(id)
    }

    /// Every slot (reserved and live) with the totals.
    pub fn list(&self) -> (RegistrySummary, Vec<SlotView>) {
        lock(&self.table).list()
    }

    pub fn summary(&self) -> RegistrySummary {
        lock(&self.table).summary()
    }

    /// Calls whose carrier WebSocket arrived (claimed or live), reservations aside.
    pub fn connected(&self) -> usize {
        lock(&self.table).connected()
    }

    /// Each carrier's share of the cap from now on (admitted calls are untouched).
    pub fn set_carrier_caps(&self, caps: std::collections::HashMap<crate::carriers::Carrier, usize>) {
        lock(&self.table).set_carrier_caps(caps);
    }

    /// Changes the cap. Live calls are untouched: a cap below `active` only stops admissions.
    pub fn set_limit(&self, max_calls: usize) -> RegistrySummary {
        lock(&self.table).set_limit(max_calls)
    }

    /// Stops admitting calls (refurl and upgrade answer 503 `draining`); live calls go on.
    pub fn start_drain(&self) {
        lock(&self.table).start_drain();
        // A draining instance gives its spare fleet slots back at once.
        self.fleet_wake.notify_one();
    }

    /// Ends every live call with `reason` (drain deadline, shutdown) and drops reservations, which are
    /// recorded; returns how many calls were told to end.
    pub fn end_all(&self, reason: EndReason) -> usize {
        let (told, dropped) = lock(&self.table).end_all(reason);
        if !dropped.is_empty() {
            self.clock.do_send(RecordUnconnected { calls: dropped, reason });
        }
        told
    }

    /// Whether the registry's clock answers (its ticks free slots; a wedged one must restart the service).
    /// Its mailbox is in order, so once it answers it has also handled everything sent to it before: the
    /// records of dropped reservations (`end_all`) are with the batcher.
    pub async fn clock_answers(&self) -> bool {
        self.clock.send(Ping).await.is_ok()
    }
}

/// A claimed slot, held by its call: dropping it (when the call actor stops, or when the call never
/// started) gives the slot back, so no path out of a call can leak one.
pub struct SlotGuard {
    table: Arc<Mutex<SlotTable>>,
    call: CallKey,
    attempt: i64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        lock(&self.table).release(&self.call, self.attempt);
    }
}
