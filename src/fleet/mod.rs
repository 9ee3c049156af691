//! Several gateways on one PostgreSQL database (docs/fleet.md): each instance's identity and
//! lease, its block of the fleet-wide cap, the closing of a lost instance's calls, and the reads behind
//! `/fleet`. PostgreSQL is the only coordinator: every grant is one transaction serialised on one row, and
//! every time is the database's. The arithmetic of blocks is in `lease`, the SQL in `store`, the actor that
//! runs it in `steward`; `LeaseKeeper` here is the loop that asks it, every second or when the registry
//! runs short or starts draining.
pub mod lease;
pub mod steward;
pub mod store;

use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::supervise::{self, Part};
use crate::values::InstanceId;
use actix::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward::{FleetSteward, Leave, Renew, SettleCap};
pub use store::FleetError;
use store::{CapCheck, Member};

/// Least time between two renewals asked for by the registry (a burst of admissions).
const GROW_GAP: Duration = Duration::from_millis(5);
/// The same once the fleet had no more slots to give: refusals must not turn into a storm of transactions.
const FULL_GAP: Duration = Duration::from_millis(100);

/// This instance's name: `server.instance_id`, else derived from the host name and the port of
/// `server.listen` as configured (the same after a restart, even with port 0).
pub fn instance_of(config: &crate::config::Config) -> InstanceId {
    let port = config
        .server
        .listen
        .parse::<std::net::SocketAddr>()
        .map_or(0, |a| a.port());
    instance_id(&config.server.instance_id, port)
}

/// `configured` when it is a valid name, else one derived from the host name and `port`.
pub fn instance_id(configured: &str, port: u16) -> InstanceId {
    InstanceId::parse("server.instance_id", configured).unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        InstanceId::derived(host.trim(), port)
    })
}

/// `check-config`'s look at the fleet: whether this instance's fallback share and those of the live
/// instances on the database add up to more than the fleet's cap (then, with the database down, the fleet
/// could carry more calls than the cap). `Err` when the database cannot be asked.
pub fn shares_problem(config: &crate::config::Config) -> Result<Option<String>, FleetError> {
    use diesel::Connection;
    let Some(cap) = config.fleet.max_concurrent_calls else {
        return Ok(None);
    };
    let me = instance_of(config);
    let mut conn = diesel::PgConnection::establish(&config.database.url).map_err(FleetError::Connect)?;
    let others = store::other_fallbacks(&mut conn, me.as_str(), config.fleet.lease_ttl_ms)?;
    let total = others.saturating_add(i64::try_from(config.fleet.fallback_calls).unwrap_or(i64::MAX));
    Ok((total > i64::try_from(cap).unwrap_or(i64::MAX)).then(|| {
        format!(
            "fleet.fallback_calls: this instance's share ({}) and the live instances' ({others}) add up to \
             {total}, over fleet.max_concurrent_calls ({cap}): with the database down the fleet could carry \
             more calls than the cap; lower the shares",
            config.fleet.fallback_calls
        )
    }))
}

/// A started fleet membership.
#[derive(Clone)]
pub struct Fleet {
    steward: Addr<FleetSteward>,
    pub member: Member,
    /// Set when this instance has left: the renewal loop stops, so it does not register again.
    left: Arc<AtomicBool>,
}

impl Fleet {
    /// Joins the fleet: the registry admits within this instance's share from now on; the first renewal
    /// is made before this returns (bounded by the database's connect timeout), so a gateway that answers
    /// already holds slots. Refused (`Err`, the reason) when the live fleet runs with another cap than this
    /// instance's: the fleet's cap is the database's, and two caps would leave the lower one unenforced.
    pub async fn join(
        registry: &Registry,
        member: Member,
        url: &str,
        metrics: Arc<Metrics>,
        services: &crate::supervise::Services,
    ) -> Result<Fleet, FleetError> {
        let (m, u, mx) = (member.clone(), url.to_string(), metrics.clone());
        let steward = SyncArbiter::start(1, move || FleetSteward::new(m.clone(), &u, mx.clone()));
        settle_cap(&steward, &member).await?;
        registry.join_fleet(member.fallback);
        let valid = Duration::from_millis(member.lease_ttl_ms / 2);
        let left = Arc::new(AtomicBool::new(false));
        let mut keeper = LeaseKeeper {
            registry: registry.clone(),
            steward: steward.clone(),
            valid,
            metrics,
            down: false,
            full: false,
            left: left.clone(),
        };
        keeper.renew().await;
        services.spawn("fleet lease keeper", keeper.run());
        log::info!(
            "fleet: {} joined (fleet cap {}, fallback share {}, lease {} ms)",
            member.instance_id,
            member.fleet_cap,
            member.fallback,
            member.lease_ttl_ms
        );
        Ok(Fleet { steward, member, left })
    }

    /// A clean stop: the row goes, and with it the slots (after the calls have ended).
    pub async fn leave(&self) {
        self.left.store(true, Ordering::SeqCst);
        let _ = self.steward.send(Leave).await;
    }
}

/// This instance's cap against the fleet's in the database, before it admits anything: a differing one
/// refuses the start. A database that cannot be asked does not: the fallback share applies meanwhile.
async fn settle_cap(steward: &Addr<FleetSteward>, me: &Member) -> Result<(), FleetError> {
    match steward.send(SettleCap).await {
        Ok(Ok(CapCheck::Agreed)) => Ok(()),
        Ok(Ok(CapCheck::Set { was })) => {
            log::warn!(
                "fleet: no other instance is live; the fleet's cap is now this instance's {} (it was {was})",
                me.fleet_cap
            );
            Ok(())
        }
        Ok(Ok(CapCheck::Differs { stored, set_by, live })) => Err(FleetError::CapDiffers {
            mine: me.fleet_cap,
            stored,
            set_by,
            live,
        }),
        Ok(Err(why)) => {
            log::warn!("{why}; the fleet's cap is checked at the next start");
            Ok(())
        }
        Err(e) => {
            log::warn!("fleet: steward unavailable: {e}");
            Ok(())
        }
    }
}

/// The loop that renews the lease: every `RENEW_EVERY`, and when the registry runs short or drains.
struct LeaseKeeper {
    registry: Registry,
    steward: Addr<FleetSteward>,
    /// How long a renewal's grant may be used: half the TTL, from before the transaction began, so this
    /// instance stops using it before any other instance can see the lease expired.
    valid: Duration,
    metrics: Arc<Metrics>,
    down: bool,
    /// The last renewal got less than it asked for: the fleet is full.
    full: bool,
    left: Arc<AtomicBool>,
}

impl LeaseKeeper {
    async fn run(mut self) {
        let wake = self.registry.fleet_wake();
        let mut tick = tokio::time::interval(lease::RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.left.load(Ordering::SeqCst) {
            tokio::select! {
                _ = tick.tick() => {}
                _ = wake.notified() => {
                    tokio::time::sleep(if self.full { FULL_GAP } else { GROW_GAP }).await;
                }
            }
            if !self.left.load(Ordering::SeqCst) {
                // A panic fails this renewal only: the loop, and with it the lease, goes on.
                if let Err(panic) = supervise::guard_future(Part::Steward, self.renew()).await {
                    self.lost(&FleetError::Panicked(panic.to_string()));
                }
            }
        }
    }

    async fn renew(&mut self) {
        let Some(ask) = self.registry.with_fleet(lease::plan) else {
            return;
        };
        let start = Instant::now();
        match self.steward.send(Renew { ask }).await {
            Ok(Ok(grant)) => {
                let (valid, block) = (self.valid, grant.block);
                self.registry
                    .with_fleet(|v| v.share.granted(block, grant.fair_spare, start, valid));
                self.metrics
                    .fleet
                    .held_slots
                    .set(i64::try_from(block).unwrap_or(i64::MAX));
                self.full = block < ask.target;
                if std::mem::take(&mut self.down) {
                    log::info!(
                        "fleet: lease renewed again; holding {block} slot(s) for {} live",
                        ask.occupied
                    );
                }
            }
            Ok(Err(why)) => self.lost(&why),
            Err(e) => self.lost(&FleetError::Steward(e)),
        }
    }

    fn lost(&mut self, why: &FleetError) {
        log::debug!("fleet: renewal failed: {why}");
        if !std::mem::replace(&mut self.down, true) {
            log::error!(
                "{why}; admitting within the held block until the lease lapses, then within \
                 fleet.fallback_calls"
            );
        }
    }
}
