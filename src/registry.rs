//! The call registry: the single place that admits, counts and lists calls. `Slots` is the table, decided
//! synchronously under a short lock; the `CallRegistry` actor does the timed work around it. Admission
//! happens before any WebSocket upgrade or upstream dial; a slot is released when the call actor stops, when
//! a reservation's deadline passes without a WebSocket, and by a periodic reconcile against live call actors.

use crate::call::actor::CallActor;
use crate::call::messages::DescribeCall;
use crate::call::CallInfo;
use actix::prelude::*;
use actix::WeakAddr;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Why a call was not taken; the `error` string of the 503 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Every slot is taken.
    Capacity,
    /// The gateway is shutting down.
    Draining,
    /// ElevenLabs is known to be down.
    UpstreamUnavailable,
    /// A WebSocket for a call that holds no reservation (expired, or never admitted).
    NotAdmitted,
    /// A second WebSocket for a call that already has one.
    AlreadyConnected,
}

impl Refusal {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::Capacity => "capacity",
            Refusal::Draining => "draining",
            Refusal::UpstreamUnavailable => "upstream_unavailable",
            Refusal::NotAdmitted => "not_admitted",
            Refusal::AlreadyConnected => "already_connected",
        }
    }
}

enum SlotState {
    /// Admitted by the refurl; waiting for the carrier's WebSocket until the deadline.
    Reserved { deadline: Instant },
    /// The WebSocket arrived; the call actor is being attached.
    Claimed,
    /// A call actor owns the slot.
    Live { call: WeakAddr<CallActor> },
}

struct Slot {
    info: CallInfo,
    admitted_at: SystemTime,
    state: SlotState,
}

/// Registry-wide counters, for logs now and metrics later.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegistryCounters {
    pub admitted: u64,
    pub refused_capacity: u64,
    pub refused_draining: u64,
    pub released: u64,
    pub reservations_expired: u64,
    pub reconciled: u64,
}

/// The slot table. Admissions and claims are decided here, synchronously, by the HTTP handlers: under a
/// burst of refurl POSTs a round trip through an actor's mailbox made each answer wait behind every other
/// request on its worker (p99 over 100 ms at 5,000 POSTs); a lock held for a map lookup does not. The
/// `CallRegistry` actor owns what takes time: reservation expiry, reconciling, asking calls to describe or
/// end themselves.
#[derive(Clone)]
pub struct Slots(Arc<Mutex<Table>>);

struct Table {
    max_calls: usize,
    admission_deadline: Duration,
    draining: bool,
    slots: HashMap<String, Slot>,
    /// Reservations in the order they were made; their deadlines are in the same order.
    expiries: VecDeque<(Instant, String)>,
    counters: RegistryCounters,
}

impl Slots {
    pub fn new(max_calls: usize, admission_deadline: Duration) -> Self {
        Slots(Arc::new(Mutex::new(Table {
            max_calls,
            admission_deadline,
            draining: false,
            slots: HashMap::new(),
            expiries: VecDeque::new(),
            counters: RegistryCounters::default(),
        })))
    }

    /// The table; a panic elsewhere while it was held leaves it consistent (each change is one map
    /// operation), so a poisoned lock is used as is rather than taking the gateway down.
    fn table(&self) -> MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Refurl admission: reserve a slot for `info.call_id` or refuse. Idempotent for a call already
    /// admitted, since Mcube may repeat its POST.
    pub fn admit(&self, info: CallInfo) -> Result<(), Refusal> {
        let mut t = self.table();
        if t.slots.contains_key(&info.call_id) {
            return Ok(());
        }
        t.refuse_if_full()?;
        let deadline = Instant::now() + t.admission_deadline;
        t.expiries.push_back((deadline, info.call_id.clone()));
        t.insert(info, SlotState::Reserved { deadline });
        Ok(())
    }

    /// The carrier's WebSocket arrived for `call_id`: turn its reservation into a claimed slot. With
    /// `admit_unreserved` (carrier tokens not required) a call with no reservation is admitted on the spot.
    pub fn claim(&self, call_id: &str, admit_unreserved: bool) -> Result<CallInfo, Refusal> {
        let mut t = self.table();
        let draining = t.draining;
        if let Some(slot) = t.slots.get_mut(call_id) {
            return match slot.state {
                SlotState::Reserved { .. } if !draining => {
                    slot.state = SlotState::Claimed;
                    Ok(slot.info.clone())
                }
                SlotState::Reserved { .. } => Err(Refusal::Draining),
                _ => Err(Refusal::AlreadyConnected),
            };
        }
        if !admit_unreserved {
            return Err(Refusal::NotAdmitted);
        }
        t.refuse_if_full()?;
        let info = CallInfo {
            call_id: call_id.to_string(),
            ..CallInfo::default()
        };
        t.insert(info.clone(), SlotState::Claimed);
        Ok(info)
    }

    /// The call actor now owns the claimed slot; only a weak address to it is kept.
    pub fn attach(&self, call_id: &str, call: WeakAddr<CallActor>) {
        if let Some(slot) = self.table().slots.get_mut(call_id) {
            slot.state = SlotState::Live { call };
        }
    }

    /// A call ended (called from the call actor's `stopped`, so every kind of end passes here): its slot
    /// is free.
    pub fn release(&self, call_id: &str) {
        let mut t = self.table();
        if t.slots.remove(call_id).is_some() {
            t.counters.released += 1;
        }
    }

    pub fn summary(&self) -> RegistrySummary {
        self.table().summary()
    }

    /// Every slot (reserved and live) with the totals.
    pub fn list(&self) -> (RegistrySummary, Vec<SlotView>) {
        let t = self.table();
        (t.summary(), t.slots.values().map(slot_view).collect())
    }

    pub fn find(&self, call_id: &str) -> Option<SlotView> {
        self.table().slots.get(call_id).map(slot_view)
    }

    /// Changes the cap. Live calls are untouched: a cap below `active` only stops admissions.
    pub fn set_limit(&self, max_calls: usize) -> RegistrySummary {
        let mut t = self.table();
        if max_calls != t.max_calls {
            log::info!(
                "cap changed from {} to {max_calls} ({} call(s) live)",
                t.max_calls,
                t.slots.len()
            );
        }
        t.max_calls = max_calls;
        t.summary()
    }

    pub fn start_drain(&self) {
        let mut t = self.table();
        if !t.draining {
            log::info!("draining: no new calls; {} call(s) live", t.slots.len());
        }
        t.draining = true;
    }

    /// Drops reservations past their deadline and slots whose call actor is gone.
    pub fn reconcile(&self) {
        self.table().reconcile();
    }

    /// Frees reservations whose carrier WebSocket did not come before the deadline. Costs only the
    /// reservations that are due: one timer for all of them, not one per call (actix polls every timer of
    /// an actor on each message, so per-call timers made the registry quadratic in a ramp of calls).
    pub fn expire_reservations(&self) {
        let mut t = self.table();
        let now = Instant::now();
        while t.expiries.front().is_some_and(|(due, _)| *due <= now) {
            let Some((due, call_id)) = t.expiries.pop_front() else {
                break;
            };
            let expired = matches!(t.slots.get(&call_id), Some(Slot { state: SlotState::Reserved { deadline }, .. }) if *deadline == due);
            if expired {
                t.slots.remove(&call_id);
                t.counters.reservations_expired += 1;
                log::info!("call_id={call_id} reservation expired: no carrier WebSocket before the deadline");
            }
        }
    }

    /// Ends every live call with `reason` and drops reservations; returns how many calls were told.
    fn end_all(&self, reason: crate::call::EndReason) -> usize {
        let mut told = 0;
        self.table().slots.retain(|_, slot| match &slot.state {
            SlotState::Live { call } => {
                if let Some(call) = call.upgrade() {
                    call.do_send(crate::call::messages::EndCall { reason });
                    told += 1;
                }
                true
            }
            // A reservation or a claim without its actor yet: nothing to tell, just let the slot go.
            _ => false,
        });
        told
    }
}

impl Table {
    fn refuse_if_full(&mut self) -> Result<(), Refusal> {
        if self.draining {
            self.counters.refused_draining += 1;
            return Err(Refusal::Draining);
        }
        if self.slots.len() >= self.max_calls {
            self.counters.refused_capacity += 1;
            return Err(Refusal::Capacity);
        }
        Ok(())
    }

    fn insert(&mut self, info: CallInfo, state: SlotState) {
        let slot = Slot {
            info,
            admitted_at: SystemTime::now(),
            state,
        };
        self.slots.insert(slot.info.call_id.clone(), slot);
        self.counters.admitted += 1;
    }

    fn summary(&self) -> RegistrySummary {
        RegistrySummary {
            max_concurrent_calls: self.max_calls,
            active: self.slots.len(),
            available: self.max_calls.saturating_sub(self.slots.len()),
            draining: self.draining,
            counters: self.counters.clone(),
        }
    }

    fn reconcile(&mut self) {
        let now = Instant::now();
        let before = self.slots.len();
        let mut expired = 0usize;
        self.slots.retain(|call_id, slot| match &slot.state {
            SlotState::Reserved { deadline } if *deadline <= now => {
                log::info!("call_id={call_id} reservation expired: no carrier WebSocket before the deadline");
                expired += 1;
                false
            }
            SlotState::Live { call } => call.upgrade().is_some_and(|a| a.connected()),
            _ => true,
        });
        let removed = before - self.slots.len();
        self.counters.reservations_expired += expired as u64;
        if removed > expired {
            log::warn!(
                "registry reconcile freed {} slot(s) whose call actor was gone",
                removed - expired
            );
            self.counters.reconciled += (removed - expired) as u64;
        }
    }
}

/// How often due reservations are freed: a reservation lives at most this much past its deadline.
const RESERVATION_TICK: Duration = Duration::from_millis(100);

pub struct CallRegistry {
    slots: Slots,
    reconcile_every: Duration,
}

impl CallRegistry {
    pub fn new(max_calls: usize, admission_deadline: Duration, reconcile_every: Duration) -> Self {
        CallRegistry {
            slots: Slots::new(max_calls, admission_deadline),
            reconcile_every,
        }
    }

    /// The table the HTTP handlers admit and claim through.
    pub fn slots(&self) -> Slots {
        self.slots.clone()
    }
}

impl Actor for CallRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.reconcile_every, |act, _| act.slots.reconcile());
        ctx.run_interval(RESERVATION_TICK, |act, _| act.slots.expire_reservations());
    }
}

/// One slot as `/calls` shows it before asking the call itself.
pub struct SlotView {
    pub info: CallInfo,
    pub admitted_at: SystemTime,
    /// The live call actor, if the WebSocket has arrived. Weak: a strong address held while the call ends
    /// would make its supervisor restart it.
    pub call: Option<WeakAddr<CallActor>>,
}

/// Totals for `/calls` and `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrySummary {
    pub max_concurrent_calls: usize,
    pub active: usize,
    pub available: usize,
    pub draining: bool,
    pub counters: RegistryCounters,
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

/// Asks one live call for its view, with a bound so a stuck call cannot stall `/calls`.
pub async fn describe(call: &WeakAddr<CallActor>) -> Option<crate::call::CallView> {
    let request = call.upgrade()?.send(DescribeCall);
    request.timeout(Duration::from_secs(1)).await.ok()
}

/// One call's slot, if it holds one.
pub struct FindCall {
    pub call_id: String,
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

fn slot_view(s: &Slot) -> SlotView {
    SlotView {
        info: s.info.clone(),
        admitted_at: s.admitted_at,
        call: match &s.state {
            SlotState::Live { call } => Some(call.clone()),
            _ => None,
        },
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
        self.slots.end_all(msg.reason)
    }
}
