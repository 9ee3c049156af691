//! The slot table: admissions, claims, releases, expiry and reconciling, as plain data.

use crate::call::messages::CallHandle;
use crate::call::{CallInfo, EndReason};
use crate::carriers::{CallKey, Carrier};

use super::share::FleetShare;
use crate::db::models::new_attempt;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

/// In a fleet, fewer spare slots than this wakes the steward to ask the fleet for more at once.
const FLEET_LOW_SPARE: usize = 4;

/// Why a call was not taken; the `error` string of the 503 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Every slot is taken.
    Capacity,
    /// The gateway is shutting down.
    Draining,
    /// ElevenLabs is known to be down (account-level failures opened the breaker).
    UpstreamUnavailable,
    /// The call's agent is refused by ElevenLabs (agent gone, a prompt variable missing…): its routes'
    /// calls are refused for a cool-down while every other route's go on.
    AgentUnavailable,
    /// A WebSocket for a call that holds no reservation (expired, or never admitted).
    NotAdmitted,
    /// A second WebSocket for a call that already has one.
    AlreadyConnected,
    /// An admission for a call (carrier and id) that is connected right now.
    Duplicate,
    /// No route takes the number the call reached (docs/routes.md).
    Unrouted,
    /// The call's carrier holds its share of the cap (`carriers.<name>.max_calls`).
    CarrierCapacity,
    /// The call's route holds its share of the cap (`max_calls` of its `[[routes]]`).
    RouteCapacity,
    /// The registry panicked while admitting this call (`crate::supervise`): refused, never let in.
    InternalError,
}

impl Refusal {
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::Capacity => "capacity",
            Refusal::Draining => "draining",
            Refusal::UpstreamUnavailable => "upstream_unavailable",
            Refusal::AgentUnavailable => "agent_unavailable",
            Refusal::NotAdmitted => "not_admitted",
            Refusal::AlreadyConnected => "already_connected",
            Refusal::Duplicate => "duplicate",
            Refusal::Unrouted => "unrouted",
            Refusal::CarrierCapacity => "carrier_capacity",
            Refusal::RouteCapacity => "route_capacity",
            Refusal::InternalError => "internal_error",
        }
    }
}

enum SlotState {
    /// Admitted by the refurl; waiting for the carrier's WebSocket until the deadline.
    Reserved { deadline: Instant },
    /// The WebSocket arrived; the call actor is being attached.
    Claimed,
    /// A call actor owns the slot.
    Live { call: CallHandle },
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

/// The slot table: plain data. In the gateway only `Registry` (the door) and its clock hold it; tests of the
/// table's rules drive it directly.
pub struct SlotTable {
    max_calls: usize,
    admission_deadline: Duration,
    draining: bool,
    slots: HashMap<CallKey, Slot>,
    /// Reservations in the order they were made; their deadlines are in the same order.
    expiries: VecDeque<(Instant, CallKey)>,
    counters: RegistryCounters,
    /// In a fleet: the part of the fleet's cap this instance holds.
    fleet: Option<FleetShare>,
    /// Each carrier's share of the cap, where it has one.
    carrier_caps: HashMap<Carrier, usize>,
}

impl SlotTable {
    pub fn new(max_calls: usize, admission_deadline: Duration) -> Self {
        SlotTable {
            max_calls,
            admission_deadline,
            draining: false,
            slots: HashMap::new(),
            expiries: VecDeque::new(),
            counters: RegistryCounters::default(),
            fleet: None,
            carrier_caps: HashMap::new(),
        }
    }

    /// Each carrier's share of the cap from now on (admitted calls are untouched).
    pub fn set_carrier_caps(&mut self, caps: HashMap<Carrier, usize>) {
        self.carrier_caps = caps;
    }

    /// From now on admissions also stop at this instance's share of a fleet's cap (none until the fleet
    /// grants some, or `fallback` while the database cannot be reached).
    pub fn join_fleet(&mut self, fallback: usize) {
        self.fleet = Some(FleetShare::new(fallback));
    }

    pub fn fleet_mut(&mut self) -> Option<&mut FleetShare> {
        self.fleet.as_mut()
    }

    /// Calls holding a slot (reserved, claimed or live).
    pub fn occupied(&self) -> usize {
        self.slots.len()
    }

    /// Calls whose carrier WebSocket arrived (claimed or live): what a drain waits for. A reservation
    /// cannot be claimed while draining, so it is not.
    pub fn connected(&self) -> usize {
        self.slots
            .values()
            .filter(|s| !matches!(s.state, SlotState::Reserved { .. }))
            .count()
    }

    pub fn is_draining(&self) -> bool {
        self.draining
    }

    pub fn local_cap(&self) -> usize {
        self.max_calls
    }

    /// How many calls may hold a slot now: the local cap, and in a fleet this instance's share.
    fn limit(&self) -> usize {
        let share = self.fleet.as_ref().map_or(usize::MAX, |f| f.limit(Instant::now()));
        self.max_calls.min(share)
    }

    /// In a fleet, whether this instance is short of spare slots and should ask for more now.
    pub fn fleet_short(&self) -> bool {
        self.fleet.is_some() && self.limit().saturating_sub(self.slots.len()) < FLEET_LOW_SPARE
    }

    /// Webhook admission: reserve a slot for the call (its carrier and id) or refuse; returns the call as
    /// admitted. Idempotent while the call waits for its WebSocket, since a carrier may repeat its request
    /// (the first attempt stands), except during a drain: that call's socket would be refused, so its
    /// carrier is told now and can place it elsewhere. A call that is connected right now is a duplicate.
    /// Another carrier's call with the same id is another call. `gate` is asked last, once the call fits
    /// under the cap: what it lets through (a breaker's one trial call) is spent only on a call admitted.
    pub fn admit(
        &mut self,
        info: CallInfo,
        gate: impl FnOnce(&CallInfo) -> Result<(), Refusal>,
    ) -> Result<CallInfo, Refusal> {
        let t = self;
        let key = info.key();
        match t
            .slots
            .get(&key)
            .map(|slot| (matches!(slot.state, SlotState::Reserved { .. }), slot.info.clone()))
        {
            Some((true, reserved)) => return t.refuse_if_draining().map(|()| reserved),
            Some((false, _)) => return Err(Refusal::Duplicate),
            None => {}
        }
        t.refuse_if_full()?;
        t.refuse_over_share(&info)?;
        gate(&info)?;
        let deadline = Instant::now() + t.admission_deadline;
        t.expiries.push_back((deadline, key));
        t.insert(info.clone(), SlotState::Reserved { deadline });
        Ok(info)
    }

    /// The carrier's WebSocket arrived for `call`: turn its reservation into a claimed slot. With
    /// `admit_unreserved` (carrier tokens not required) a call with no reservation is admitted on the spot.
    pub fn claim(&mut self, call: &CallKey, admit_unreserved: bool) -> Result<CallInfo, Refusal> {
        let t = self;
        let draining = t.draining;
        let info = match t.slots.get_mut(call) {
            Some(slot) => match slot.state {
                SlotState::Reserved { .. } if !draining => {
                    slot.state = SlotState::Claimed;
                    slot.info.clone()
                }
                SlotState::Reserved { .. } => return Err(Refusal::Draining),
                _ => return Err(Refusal::AlreadyConnected),
            },
            None if !admit_unreserved => return Err(Refusal::NotAdmitted),
            None => {
                t.refuse_if_full()?;
                let info = CallInfo::bare(call.clone(), new_attempt());
                t.insert(info.clone(), SlotState::Claimed);
                info
            }
        };
        Ok(info)
    }

    /// The call actor now owns the claimed slot; only weak handles to it are kept.
    pub fn attach(&mut self, key: &CallKey, attempt: i64, call: CallHandle) {
        if let Some(slot) = self.slots.get_mut(key).filter(|s| s.info.attempt == attempt) {
            slot.state = SlotState::Live { call };
        }
    }

    /// The slot of this attempt of `call` is free (a later attempt of the same call keeps its own).
    pub fn release(&mut self, call: &CallKey, attempt: i64) {
        let t = self;
        if t.slots.get(call).is_some_and(|s| s.info.attempt == attempt) {
            t.slots.remove(call);
            t.counters.released += 1;
        }
    }

    /// Every slot (reserved and live) with the totals.
    pub fn list(&self) -> (RegistrySummary, Vec<SlotView>) {
        (self.summary(), self.slots.values().map(slot_view).collect())
    }

    pub fn find(&self, call: &CallKey) -> Option<SlotView> {
        self.slots.get(call).map(slot_view)
    }

    /// Every call holding a slot under this id, whatever its carrier (an admin names a call by its id).
    pub fn find_id(&self, id: &crate::values::CallId) -> Vec<SlotView> {
        Carrier::ALL
            .iter()
            .filter_map(|carrier| self.slots.get(&CallKey::new(*carrier, id.clone())))
            .map(slot_view)
            .collect()
    }

    /// Changes the cap. Live calls are untouched: a cap below `active` only stops admissions.
    pub fn set_limit(&mut self, max_calls: usize) -> RegistrySummary {
        let t = self;
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

    pub fn start_drain(&mut self) {
        let t = self;
        if !t.draining {
            log::info!("draining: no new calls; {} call(s) live", t.slots.len());
        }
        t.draining = true;
    }

    /// Frees reservations whose carrier WebSocket did not come before the deadline, and returns them. Costs
    /// only the reservations that are due: one timer for all of them, not one per call (actix polls every
    /// timer of an actor on each message, so per-call timers made the registry quadratic in a ramp of calls).
    pub fn expire_reservations(&mut self) -> Vec<Unconnected> {
        let t = self;
        let now = Instant::now();
        let mut expired = Vec::new();
        while t.expiries.front().is_some_and(|(due, _)| *due <= now) {
            let Some((due, key)) = t.expiries.pop_front() else {
                break;
            };
            let due_now = matches!(t.slots.get(&key), Some(Slot { state: SlotState::Reserved { deadline }, .. }) if *deadline == due);
            if let Some(slot) = due_now.then(|| t.slots.remove(&key)).flatten() {
                t.counters.reservations_expired += 1;
                log::info!("call={key} reservation expired: no carrier WebSocket before the deadline");
                expired.push(Unconnected::from(slot));
            }
        }
        expired
    }

    /// Ends every live call with `reason` and drops reservations; returns how many calls were told, and
    /// the reservations dropped.
    pub fn end_all(&mut self, reason: EndReason) -> (usize, Vec<Unconnected>) {
        let mut told = 0;
        let mut dropped = Vec::new();
        self.slots.retain(|_, slot| match &slot.state {
            SlotState::Live { call } => {
                if call.end(reason) {
                    told += 1;
                }
                true
            }
            SlotState::Reserved { .. } => {
                dropped.push(Unconnected::from(&*slot));
                false
            }
            // A claim without its actor yet: nothing to tell; its call actor records the call.
            SlotState::Claimed => false,
        });
        (told, dropped)
    }
}

/// A call admitted at the refurl whose WebSocket never came: what its record needs.
pub struct Unconnected {
    pub info: CallInfo,
    pub admitted_at: SystemTime,
}

impl From<Slot> for Unconnected {
    fn from(slot: Slot) -> Self {
        Unconnected {
            info: slot.info,
            admitted_at: slot.admitted_at,
        }
    }
}

impl From<&Slot> for Unconnected {
    fn from(slot: &Slot) -> Self {
        Unconnected {
            info: slot.info.clone(),
            admitted_at: slot.admitted_at,
        }
    }
}

impl SlotTable {
    fn refuse_if_draining(&mut self) -> Result<(), Refusal> {
        if self.draining {
            self.counters.refused_draining += 1;
            return Err(Refusal::Draining);
        }
        Ok(())
    }

    fn refuse_if_full(&mut self) -> Result<(), Refusal> {
        self.refuse_if_draining()?;
        // A call asked for, taken or not, is demand for a fleet slot.
        if let Some(f) = self.fleet.as_mut() {
            f.note_demand();
        }
        if self.slots.len() >= self.limit() {
            self.counters.refused_capacity += 1;
            return Err(Refusal::Capacity);
        }
        Ok(())
    }

    /// A call whose carrier or route already holds its share of the cap is refused. Counted by a pass over
    /// the slots: a few thousand comparisons at most, and nothing to keep in step as slots come and go.
    fn refuse_over_share(&mut self, info: &CallInfo) -> Result<(), Refusal> {
        let held = |same: &dyn Fn(&CallInfo) -> bool| self.slots.values().filter(|s| same(&s.info)).count();
        if let Some(&cap) = self.carrier_caps.get(&info.carrier) {
            if held(&|i| i.carrier == info.carrier) >= cap {
                self.counters.refused_capacity += 1;
                return Err(Refusal::CarrierCapacity);
            }
        }
        if let Some(cap) = info.route.as_ref().and_then(|r| r.max_calls) {
            if held(&|i| i.route_name() == info.route_name()) >= cap {
                self.counters.refused_capacity += 1;
                return Err(Refusal::RouteCapacity);
            }
        }
        Ok(())
    }

    fn insert(&mut self, info: CallInfo, state: SlotState) {
        let slot = Slot {
            info,
            admitted_at: SystemTime::now(),
            state,
        };
        self.slots.insert(slot.info.key(), slot);
        self.counters.admitted += 1;
    }

    pub fn summary(&self) -> RegistrySummary {
        RegistrySummary {
            max_concurrent_calls: self.max_calls,
            active: self.slots.len(),
            available: self.limit().saturating_sub(self.slots.len()),
            draining: self.draining,
            fleet_held: self.fleet.as_ref().map(FleetShare::held),
            counters: self.counters.clone(),
        }
    }

    /// Drops reservations past their deadline and slots whose call actor is gone; returns the reservations
    /// dropped (calls admitted that never connected).
    pub fn reconcile(&mut self) -> Vec<Unconnected> {
        let now = Instant::now();
        let before = self.slots.len();
        let mut expired = Vec::new();
        self.slots.retain(|key, slot| match &slot.state {
            SlotState::Reserved { deadline } if *deadline <= now => {
                log::info!("call={key} reservation expired: no carrier WebSocket before the deadline");
                expired.push(Unconnected::from(&*slot));
                false
            }
            SlotState::Live { call } => call.is_alive(),
            _ => true,
        });
        let removed = before - self.slots.len();
        self.counters.reservations_expired += expired.len() as u64;
        if removed > expired.len() {
            log::warn!(
                "registry reconcile freed {} slot(s) whose call actor was gone",
                removed - expired.len()
            );
            self.counters.reconciled += (removed - expired.len()) as u64;
        }
        expired
    }
}

/// One slot as `/calls` shows it before asking the call itself.
pub struct SlotView {
    pub info: CallInfo,
    pub admitted_at: SystemTime,
    /// The live call, if the WebSocket has arrived.
    pub call: Option<CallHandle>,
}

/// Totals for `/calls` and `/readyz`.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrySummary {
    pub max_concurrent_calls: usize,
    pub active: usize,
    /// Calls this instance may still admit: under the local cap and, in a fleet, its share.
    pub available: usize,
    pub draining: bool,
    /// In a fleet: the slots of the fleet's cap this instance holds (live calls plus spare ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet_held: Option<usize>,
    pub counters: RegistryCounters,
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
