//! `FleetShare`: this instance's part of a fleet's cap, as the slot table sees it — how many slots the
//! fleet granted it (`held`: its live calls plus spare ones), until when that grant stands, and what it may
//! use once the grant may have been given away (`fallback`). Plain data; the fleet's steward moves it.

use std::time::{Duration, Instant};

pub struct FleetShare {
    /// Slots the database says are ours: admissions stop at this many live calls.
    held: usize,
    /// What we may carry once our lease may have lapsed (the database unreachable).
    fallback: usize,
    /// Past this, the fleet may have given our slots away (our lease looks expired to the others).
    lease_until: Instant,
    /// Whether the database ever granted us slots in this process: before that, `held` means nothing.
    granted_once: bool,
    /// Admissions and refusals for capacity since the steward last asked: how many slots we want.
    demand: u64,
    /// This instance's fair part of the fleet's free slots at the last renewal: an idle instance keeps
    /// no more spare than this, so no instance starves while others sit on spare slots.
    fair_spare: usize,
}

impl FleetShare {
    pub fn new(fallback: usize) -> FleetShare {
        FleetShare {
            held: 0,
            fallback,
            lease_until: Instant::now(),
            granted_once: false,
            demand: 0,
            fair_spare: usize::MAX,
        }
    }

    /// Live calls may reach this many now. With the lease lapsed only the fallback share is ours: the
    /// fleet keeps that much of every instance's block reserved (see `fleet::lease`), so it never adds up
    /// to more than the fleet's cap.
    pub fn limit(&self, now: Instant) -> usize {
        if now < self.lease_until {
            self.held
        } else if self.granted_once {
            self.held.min(self.fallback)
        } else {
            self.fallback
        }
    }

    pub fn held(&self) -> usize {
        self.held
    }

    pub fn fallback(&self) -> usize {
        self.fallback
    }

    pub fn fair_spare(&self) -> usize {
        self.fair_spare
    }

    pub fn lease_valid(&self, now: Instant) -> bool {
        now < self.lease_until
    }

    pub fn note_demand(&mut self) {
        self.demand += 1;
    }

    /// The demand since the last call, reset.
    pub fn take_demand(&mut self) -> u64 {
        std::mem::take(&mut self.demand)
    }

    /// Gives slots back before the database hears of it, so we never admit into slots it may hand to
    /// another instance.
    pub fn shrink(&mut self, to: usize) {
        self.held = self.held.min(to);
    }

    /// The database granted `held` slots in a lease that began at `lease_start` and stands for `valid`,
    /// and this instance's fair part of the fleet's free slots is `fair_spare`.
    pub fn granted(&mut self, held: usize, fair_spare: usize, lease_start: Instant, valid: Duration) {
        self.held = held;
        self.fair_spare = fair_spare;
        self.lease_until = lease_start + valid;
        self.granted_once = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lapsed_lease_leaves_only_the_fallback_share() {
        let mut s = FleetShare::new(3);
        let start = Instant::now();
        assert_eq!(s.limit(start), 3, "never granted: the operator's share");
        s.granted(10, 1, start, Duration::from_secs(5));
        assert_eq!(s.limit(start + Duration::from_secs(1)), 10);
        assert_eq!(s.limit(start + Duration::from_secs(5)), 3);
        s.granted(2, 1, start, Duration::from_secs(5));
        assert_eq!(
            s.limit(start + Duration::from_secs(6)),
            2,
            "never more than was granted"
        );
        s.shrink(1);
        assert_eq!(s.held(), 1);
        s.note_demand();
        s.note_demand();
        assert_eq!((s.take_demand(), s.take_demand()), (2, 0));
    }
}
