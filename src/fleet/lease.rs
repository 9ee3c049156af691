//! How many of the fleet's slots an instance asks for and keeps: plain arithmetic, tested on its own.
//!
//! An instance holds a block: its live calls plus spare slots it may admit into without asking anyone.
//! It asks for `live + demand` (at least a few spare: `MIN_SPARE`, or its fair part of the fleet's free
//! slots if that is less) and gives back what it holds beyond that, so an idle instance keeps a few spare
//! slots, a busy one a second's worth of admissions, and none sits on slots another is refusing calls for. It always keeps its
//! fallback share: that reserve is what it may still use when the database is gone, so the shares of all
//! instances never add up to more than the cap (`FleetShare::limit`). A draining instance keeps only its
//! live calls.

use crate::registry::FleetView;

/// How often the lease is renewed without being asked.
pub const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Spare slots an idle instance keeps, so a call arriving finds one without a round trip to the database.
pub const MIN_SPARE: usize = 8;

/// What one renewal asks of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// Calls holding a slot here now: the database must count at least these.
    pub occupied: usize,
    /// What this instance still holds, after giving back what it no longer wants (before asking).
    pub kept: usize,
    /// What it would like to hold.
    pub target: usize,
    pub draining: bool,
    /// What this box may carry (`calls.max_concurrent_calls`, changeable at run time).
    pub local_cap: usize,
}

/// Under the registry's lock: what to ask for, and the slots given back now, before the database hears of
/// it, so this instance never admits into slots the fleet may hand to another.
pub fn plan(v: FleetView<'_>) -> Ask {
    let demand = usize::try_from(v.share.take_demand()).unwrap_or(usize::MAX);
    let target = if v.draining {
        v.occupied
    } else {
        let reserve = v.share.fallback().min(v.local_cap);
        // With fewer free slots than instances the fair part is 0: a call then waits for one renewal.
        let idle_spare = MIN_SPARE.min(v.share.fair_spare());
        v.occupied
            .saturating_add(idle_spare.max(demand))
            .min(v.local_cap)
            .max(reserve)
            .max(v.occupied)
    };
    let kept = v.share.held().min(v.occupied.max(target));
    v.share.shrink(kept);
    Ask {
        occupied: v.occupied,
        kept,
        target,
        draining: v.draining,
        local_cap: v.local_cap,
    }
}

/// This instance's fair part of the fleet's free slots: what the cap leaves beyond every live call, shared
/// by the live instances.
pub fn fair_spare(cap: usize, live_everywhere: usize, instances: usize) -> usize {
    cap.saturating_sub(live_everywhere) / instances.max(1)
}

/// The block granted out of `room` (the cap less what every other live instance holds). Never below the
/// calls live here: they are real, and the database must count them, even when an outage let the fleet go
/// over its cap (the others then get nothing until it is back under).
pub fn grant(ask: Ask, room: usize) -> usize {
    let block = if room >= ask.kept {
        ask.kept.max(ask.target.min(room))
    } else {
        room
    };
    block.max(ask.occupied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::FleetShare;
    use std::time::{Duration, Instant};

    fn view(share: &mut FleetShare, occupied: usize, draining: bool) -> Ask {
        plan(FleetView {
            share,
            occupied,
            local_cap: 100,
            draining,
        })
    }

    fn held(share: &mut FleetShare, n: usize) {
        share.granted(n, MIN_SPARE, Instant::now(), Duration::from_secs(5));
    }

    #[test]
    fn an_idle_instance_keeps_a_few_spare_slots_and_gives_back_the_rest() {
        let mut s = FleetShare::new(0);
        held(&mut s, 50);
        let ask = view(&mut s, 10, false);
        assert_eq!(ask.target, 10 + MIN_SPARE);
        assert_eq!(ask.kept, 10 + MIN_SPARE, "given back before asking");
        assert_eq!(s.held(), 10 + MIN_SPARE);
        assert_eq!(grant(ask, 1000), 10 + MIN_SPARE);
    }

    #[test]
    fn demand_asks_for_a_bigger_block_within_the_room_and_the_local_cap() {
        let mut s = FleetShare::new(0);
        held(&mut s, 8);
        for _ in 0..60 {
            s.note_demand();
        }
        let ask = view(&mut s, 8, false);
        assert_eq!(ask.target, 68);
        assert_eq!(grant(ask, 30), 30, "only the room");
        assert_eq!(grant(ask, 500), 68);
        for _ in 0..500 {
            s.note_demand();
        }
        assert_eq!(view(&mut s, 8, false).target, 100, "local cap");
    }

    #[test]
    fn the_fallback_share_is_kept_while_idle_and_given_back_when_draining() {
        let mut s = FleetShare::new(20);
        held(&mut s, 20);
        let ask = view(&mut s, 0, false);
        assert_eq!((ask.kept, ask.target), (20, 20));
        let ask = view(&mut s, 3, true);
        assert_eq!((ask.kept, ask.target), (3, 3), "draining keeps only its live calls");
        assert_eq!(grant(ask, 1000), 3);
    }

    #[test]
    fn an_idle_instance_keeps_no_more_than_its_fair_part_of_the_free_slots() {
        let mut s = FleetShare::new(0);
        s.granted(8, fair_spare(12, 1, 3), Instant::now(), Duration::from_secs(5));
        let ask = view(&mut s, 0, false);
        assert_eq!((ask.kept, ask.target), (3, 3));
        s.granted(3, fair_spare(12, 12, 3), Instant::now(), Duration::from_secs(5));
        assert_eq!(
            view(&mut s, 0, false).target,
            0,
            "a full fleet: no spare, asked for on demand"
        );
        s.note_demand();
        assert_eq!(view(&mut s, 0, false).target, 1);
    }

    #[test]
    fn live_calls_are_always_counted_even_past_the_room() {
        let mut s = FleetShare::new(5);
        let ask = view(&mut s, 12, false);
        assert_eq!(
            grant(ask, 4),
            12,
            "calls admitted on the fallback share while the database was away"
        );
        let ask = Ask {
            occupied: 2,
            kept: 10,
            target: 10,
            draining: false,
            local_cap: 100,
        };
        assert_eq!(grant(ask, 6), 6, "over the room: back down to it");
    }
}
