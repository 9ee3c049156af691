//! The one door every call comes in by, whatever its carrier: a webhook's call is admitted (its route, its
//! agent's and the account's breakers, the cap and the carrier's and route's shares of it, its token); a
//! media socket's call is claimed (its token, then its slot) and launched (its call actor, its carrier leg
//! attached). The edges (`http`, each carrier's endpoint) read the request and answer in the carrier's
//! words; what is decided, logged, counted and recorded here is the same for every carrier.

use crate::call::actor::{CallActor, CallDeps};
use crate::call::breaker::{Refused, UpstreamBreaker};
use crate::call::failure::FailureScope;
use crate::call::feed::{CallFeed, FeedEvent};
use crate::call::messages::{AttachCarrier, CallHandle, ToCarrier};
use crate::call::{CallInfo, HeldSlot};
use crate::carrier_token::CallTokens;
use crate::carriers::CallKey;
use crate::config::Config;
use crate::db::batcher::{DbBatcher, Save};
use crate::db::models::{now_ms, CallRecord, DbWrite, RecordState};
use crate::metrics::Metrics;
use crate::registry::{Refusal, Registry};
use crate::routing::RouteTable;
use actix::{Addr, Recipient};
use std::sync::Arc;
use std::time::Duration;

/// How long a refused carrier is asked to wait before trying again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What admission decides with: the gateway's parts, borrowed for one request.
pub struct Gate<'a> {
    pub config: &'a Arc<Config>,
    pub registry: &'a Registry,
    pub metrics: &'a Arc<Metrics>,
    pub tokens: &'a CallTokens,
    pub db: &'a Addr<DbBatcher>,
    pub breaker: &'a Arc<UpstreamBreaker>,
    /// Told each admission and refusal, for whoever watches.
    pub feed: &'a CallFeed,
    /// The routes as they stood when the request came.
    pub routes: Arc<RouteTable>,
    /// Records each call, when `recording.enabled`.
    pub recorder: Option<&'a crate::recording::Recorder>,
}

/// An admitted call: the key it holds a slot under, and the token its media socket must present.
pub struct Admitted {
    pub key: CallKey,
    pub token: String,
}

/// Why a call was not admitted, for its carrier to answer in its own way.
pub struct AdmissionRefused {
    pub refusal: Refusal,
    /// For `Retry-After`.
    pub retry_after: Duration,
}

/// Why a media socket's call was not claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefused {
    /// Tokens are required, and it presented none or a wrong one.
    Unauthorized,
    /// The registry holds no slot it may take (`Refusal`'s reasons).
    Slot(Refusal),
}

impl ClaimRefused {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimRefused::Unauthorized => "unauthorized",
            ClaimRefused::Slot(refusal) => refusal.as_str(),
        }
    }
}

impl Gate<'_> {
    /// Admits a call from any carrier's webhook: its route, its agent's and the account's breakers, then
    /// the cap (and the carrier's and route's shares of it); a breaker's trial call is taken only by a call
    /// that gets a slot. Refused, it is logged, counted and recorded here.
    pub fn admit(&self, mut info: CallInfo) -> Result<Admitted, AdmissionRefused> {
        info.route = self.routes.pick(info.carrier, info.our_line());
        if info.route.is_none() {
            let number = mask_number(
                &CallInfo::number(&info.our_line().cloned()),
                self.config.log.show_numbers,
            );
            let why = format!("no route takes {} calls to '{number}'", info.carrier.as_str());
            return Err(self.refuse(&info, Refusal::Unrouted, &why, RETRY_AFTER));
        }
        let agent = info.agent_id(self.config).unwrap_or_default().to_string();
        if let Err(refused) = self.breaker.check(&agent) {
            return Err(self.refuse_broken(&info, &agent, &refused));
        }
        let gate = |_: &CallInfo| self.breaker.admit(&agent).map_err(|r| breaker_refusal(&r));
        match self.registry.admit(info.clone(), gate) {
            Ok(admitted) => {
                self.metrics
                    .traffic
                    .admitted
                    .with_label_values(&[info.carrier.as_str()])
                    .inc();
                let key = admitted.key();
                let show = self.config.log.show_numbers;
                log::info!(
                    "call_id={} admitted carrier={} route={} agent={agent} from={} to={}",
                    key.id,
                    key.carrier.as_str(),
                    admitted.route_name(),
                    mask_number(&CallInfo::number(&admitted.from), show),
                    mask_number(&CallInfo::number(&admitted.to), show)
                );
                self.feed.publish(&FeedEvent::of(&admitted, "admitted", None, None));
                let token = self.tokens.issue(&key);
                Ok(Admitted { key, token })
            }
            Err(refusal) => Err(self.refuse(&info, refusal, refusal.as_str(), RETRY_AFTER)),
        }
    }

    /// A media socket's token for `key`, when tokens are required: none or a wrong one is logged and
    /// counted.
    pub fn check_token(&self, key: &CallKey, token: Option<&str>) -> Result<(), ClaimRefused> {
        let token_ok = token.is_some_and(|t| self.tokens.verify(key, t));
        if !self.config.carrier.require_token || token_ok {
            return Ok(());
        }
        log::warn!(
            "call_id={} carrier: {} media socket refused, missing or bad token",
            key.id,
            key.carrier.as_str()
        );
        self.metrics.traffic.refused("unauthorized", key.carrier.as_str());
        Err(ClaimRefused::Unauthorized)
    }

    /// The slot `key` was admitted to (or, with tokens not required, a new one): refused, it is logged and
    /// counted.
    pub fn claim(&self, key: &CallKey) -> Result<(CallInfo, HeldSlot), ClaimRefused> {
        match self.registry.claim(key, !self.config.carrier.require_token) {
            Ok((info, slot)) => Ok((info, HeldSlot::new(slot))),
            Err(refusal) => {
                log::info!("call_id={} carrier: media socket refused: {}", key.id, refusal.as_str());
                self.metrics.traffic.refused(refusal.as_str(), key.carrier.as_str());
                Err(ClaimRefused::Slot(refusal))
            }
        }
    }

    /// Starts the call actor of a claimed slot.
    pub fn launch(&self, info: CallInfo, slot: HeldSlot) -> Addr<CallActor> {
        let deps = CallDeps {
            breaker: self.breaker.clone(),
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            db: self.db.clone(),
            feed: self.feed.clone(),
            recorder: self.recorder.cloned(),
        };
        CallActor::launch(info, slot, deps)
    }

    /// Ties a started leg to its call: the registry can describe and end the call, and the call writes to
    /// the leg (its only strong handle).
    pub fn attach(&self, call: &Addr<CallActor>, key: &CallKey, attempt: i64, leg: Recipient<ToCarrier>) {
        let handle = CallHandle {
            describe: call.downgrade().recipient(),
            end: call.downgrade().recipient(),
            listen: call.downgrade().recipient(),
            pause: call.downgrade().recipient(),
        };
        self.registry.attach(key, attempt, handle);
        call.do_send(AttachCarrier { leg });
    }

    /// Sends a record (never waits on the database).
    pub fn save(&self, write: DbWrite) {
        self.db.do_send(Save { writes: vec![write] });
    }

    /// A call refused at its webhook: a `rejected` record of its own attempt, with the reason.
    pub fn rejected_record(&self, info: &CallInfo, reason: &str) -> CallRecord {
        let mut rec = info.record(RecordState::Rejected, now_ms());
        rec.agent_id = info.agent_id(self.config).map(str::to_string);
        rec.end_reason = Some(reason.to_string());
        rec
    }

    /// A call refused because its agent's or the account's breaker is open: the log names the route and
    /// agent, and the carrier is asked to come back once the cool-down has passed.
    fn refuse_broken(&self, info: &CallInfo, agent: &str, refused: &Refused) -> AdmissionRefused {
        let whose = match refused.scope {
            FailureScope::Account => "elevenlabs breaker open".to_string(),
            FailureScope::Agent => format!("agent {agent} of route '{}' unavailable", info.route_name()),
        };
        let why = format!("{whose}: {}", refused.open.reason);
        self.refuse(info, breaker_refusal(refused), &why, refused.open.retry_after)
    }

    /// A refused admission: logged (`why`), counted, recorded as `rejected`.
    fn refuse(&self, info: &CallInfo, refusal: Refusal, why: &str, retry_after: Duration) -> AdmissionRefused {
        log::info!(
            "call_id={} refused carrier={}: {} ({why})",
            info.call_id,
            info.carrier.as_str(),
            refusal.as_str()
        );
        self.metrics.traffic.refused(refusal.as_str(), info.carrier.as_str());
        self.feed
            .publish(&FeedEvent::of(info, "refused", None, Some(refusal.as_str())));
        let record = self.rejected_record(info, refusal.as_str());
        self.save(DbWrite::Call(Box::new(record)));
        AdmissionRefused { refusal, retry_after }
    }
}

/// The refusal a breaker's answer makes: the account's is `upstream_unavailable`, an agent's
/// `agent_unavailable`.
fn breaker_refusal(refused: &Refused) -> Refusal {
    match refused.scope {
        FailureScope::Account => Refusal::UpstreamUnavailable,
        FailureScope::Agent => Refusal::AgentUnavailable,
    }
}

/// Phone numbers in logs: all but the last 4 digits masked unless `log.show_numbers`.
pub fn mask_number(number: &str, show: bool) -> String {
    if show {
        return number.to_string();
    }
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let mut seen = 0;
    number
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if seen + 4 > digits {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::mask_number;

    #[test]
    fn numbers_are_masked_but_the_last_four_digits() {
        assert_eq!(mask_number("+914155551234", false), "+********1234");
        assert_eq!(mask_number("+914155551234", true), "+914155551234");
        assert_eq!(mask_number("123", false), "123");
        assert_eq!(mask_number("", false), "");
    }
}
