//! `CallRegistry`: the single place that admits, counts and lists calls. Admission happens before any
//! WebSocket upgrade or upstream dial; a slot is released when the call actor stops, when a reservation's
//! deadline passes without a WebSocket, and by a periodic reconcile against live call actors.

use crate::call::actor::CallActor;
use crate::call::messages::DescribeCall;
use crate::call::CallInfo;
use actix::prelude::*;
use actix::WeakAddr;
use serde::Serialize;
use std::collections::HashMap;
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

pub struct CallRegistry {
    max_calls: usize,
    admission_deadline: Duration,
    reconcile_every: Duration,
    draining: bool,
    slots: HashMap<String, Slot>,
    counters: RegistryCounters,
}

impl CallRegistry {
    pub fn new(max_calls: usize, admission_deadline: Duration, reconcile_every: Duration) -> Self {
        CallRegistry {
            max_calls,
            admission_deadline,
            reconcile_every,
            draining: false,
            slots: HashMap::new(),
            counters: RegistryCounters::default(),
        }
    }

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

    /// Drops reservations past their deadline and slots whose call actor is gone.
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

impl Actor for CallRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.reconcile_every, |act, _| act.reconcile());
    }
}

/// Refurl admission: reserve a slot for `info.call_id` or refuse. Idempotent for a call already admitted,
/// since Mcube may repeat its POST.
pub struct AdmitCall {
    /// Who is calling whom, from the refurl body.
    pub info: CallInfo,
}

impl Message for AdmitCall {
    type Result = Result<(), Refusal>;
}

impl Handler<AdmitCall> for CallRegistry {
    type Result = Result<(), Refusal>;

    fn handle(&mut self, msg: AdmitCall, ctx: &mut Context<Self>) -> Self::Result {
        if self.slots.contains_key(&msg.info.call_id) {
            return Ok(());
        }
        self.refuse_if_full()?;
        let deadline = Instant::now() + self.admission_deadline;
        let call_id = msg.info.call_id.clone();
        self.slots.insert(
            call_id.clone(),
            Slot {
                info: msg.info,
                admitted_at: SystemTime::now(),
                state: SlotState::Reserved { deadline },
            },
        );
        self.counters.admitted += 1;
        // Expire this reservation promptly rather than waiting for the next reconcile.
        ctx.run_later(self.admission_deadline, move |act, _| {
            if matches!(act.slots.get(&call_id), Some(Slot { state: SlotState::Reserved { deadline: d }, .. }) if *d <= Instant::now())
            {
                act.reconcile();
            }
        });
        Ok(())
    }
}

/// The carrier's WebSocket arrived for `call_id`: turn its reservation into a claimed slot. With
/// `admit_unreserved` (carrier tokens not required) a call with no reservation is admitted on the spot.
pub struct ClaimCall {
    pub call_id: String,
    pub admit_unreserved: bool,
}

impl Message for ClaimCall {
    type Result = Result<CallInfo, Refusal>;
}

impl Handler<ClaimCall> for CallRegistry {
    type Result = Result<CallInfo, Refusal>;

    fn handle(&mut self, msg: ClaimCall, _: &mut Context<Self>) -> Self::Result {
        if let Some(slot) = self.slots.get_mut(&msg.call_id) {
            return match slot.state {
                SlotState::Reserved { .. } if !self.draining => {
                    slot.state = SlotState::Claimed;
                    Ok(slot.info.clone())
                }
                SlotState::Reserved { .. } => Err(Refusal::Draining),
                _ => Err(Refusal::AlreadyConnected),
            };
        }
        if !msg.admit_unreserved {
            return Err(Refusal::NotAdmitted);
        }
        self.refuse_if_full()?;
        let info = CallInfo {
            call_id: msg.call_id.clone(),
            ..CallInfo::default()
        };
        self.slots.insert(
            msg.call_id,
            Slot {
                info: info.clone(),
                admitted_at: SystemTime::now(),
                state: SlotState::Claimed,
            },
        );
        self.counters.admitted += 1;
        Ok(info)
    }
}

/// The call actor now owns the claimed slot; the registry keeps only a weak address to it.
pub struct AttachCall {
    pub call_id: String,
    pub call: WeakAddr<CallActor>,
}

impl Message for AttachCall {
    type Result = ();
}

impl Handler<AttachCall> for CallRegistry {
    type Result = ();

    fn handle(&mut self, msg: AttachCall, _: &mut Context<Self>) {
        if let Some(slot) = self.slots.get_mut(&msg.call_id) {
            slot.state = SlotState::Live { call: msg.call };
        }
    }
}

/// A call ended (sent from the call actor's `stopped`, so every kind of end passes here).
pub struct ReleaseSlot {
    pub call_id: String,
}

impl Message for ReleaseSlot {
    type Result = ();
}

impl Handler<ReleaseSlot> for CallRegistry {
    type Result = ();

    fn handle(&mut self, msg: ReleaseSlot, _: &mut Context<Self>) {
        if self.slots.remove(&msg.call_id).is_some() {
            self.counters.released += 1;
        }
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
        let views = self.slots.values().map(slot_view).collect();
        MessageResult((self.summary(), views))
    }
}

impl CallRegistry {
    fn summary(&self) -> RegistrySummary {
        RegistrySummary {
            max_concurrent_calls: self.max_calls,
            active: self.slots.len(),
            available: self.max_calls.saturating_sub(self.slots.len()),
            draining: self.draining,
            counters: self.counters.clone(),
        }
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
        MessageResult(self.summary())
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
        self.slots.get(&msg.call_id).map(slot_view)
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
        if msg.max_concurrent_calls != self.max_calls {
            log::info!(
                "cap changed from {} to {} ({} call(s) live)",
                self.max_calls,
                msg.max_concurrent_calls,
                self.slots.len()
            );
        }
        self.max_calls = msg.max_concurrent_calls;
        MessageResult(self.summary())
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
        if !self.draining {
            log::info!("draining: no new calls; {} call(s) live", self.slots.len());
        }
        self.draining = true;
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
        let mut told = 0;
        self.slots.retain(|_, slot| match &slot.state {
            SlotState::Live { call } => {
                if let Some(call) = call.upgrade() {
                    call.do_send(crate::call::messages::EndCall { reason: msg.reason });
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
