//! `SeenNonces`: the nonces of signed carrier requests seen within a window, so a captured request sent
//! again is refused. Plivo's signatures carry a nonce but no time, so the window is ours to choose: past it
//! (or past `max` nonces, when the oldest are forgotten first) a replay is no longer recognised.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most nonces remembered: past it the oldest are forgotten first (about 100 bytes each).
pub const MAX_NONCES: usize = 200_000;

/// `SeenNonces` shared by every worker.
pub struct SharedNonces(Mutex<SeenNonces>);

impl SharedNonces {
    pub fn new(window: Duration) -> SharedNonces {
        SharedNonces(Mutex::new(SeenNonces::new(window, MAX_NONCES)))
    }

    /// See `SeenNonces::first_use`. A poisoned lock is used as is: each change leaves the set whole.
    pub fn first_use(&self, nonce: &str, now: Instant) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        seen.first_use(nonce, now)
    }
}

pub struct SeenNonces {
    window: Duration,
    max: usize,
    seen: HashSet<String>,
    /// When each nonce was first seen, oldest first.
    order: VecDeque<(Instant, String)>,
}

impl SeenNonces {
    pub fn new(window: Duration, max: usize) -> SeenNonces {
        SeenNonces {
            window,
            max: max.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// True the first time `nonce` is seen within the window (it is remembered from `now`); false for a
    /// replay.
    pub fn first_use(&mut self, nonce: &str, now: Instant) -> bool {
        while self
            .order
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= self.window)
        {
            self.forget_oldest();
        }
        if self.seen.contains(nonce) {
            return false;
        }
        if self.order.len() >= self.max {
            self.forget_oldest();
        }
        self.seen.insert(nonce.to_string());
        self.order.push_back((now, nonce.to_string()));
        true
    }

    fn forget_oldest(&mut self) {
        if let Some((_, old)) = self.order.pop_front() {
            self.seen.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_counts_once_within_the_window() {
        let mut n = SeenNonces::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        assert!(n.first_use("a", t0));
        assert!(!n.first_use("a", t0 + Duration::from_secs(59)), "a replay");
        assert!(n.first_use("b", t0 + Duration::from_secs(1)));
        assert!(
            n.first_use("a", t0 + Duration::from_secs(60)),
            "past the window it is forgotten"
        );
    }

    #[test]
    fn past_its_size_the_oldest_are_forgotten_first() {
        let mut n = SeenNonces::new(Duration::from_secs(60), 2);
        let t0 = Instant::now();
        assert!(n.first_use("a", t0));
        assert!(n.first_use("b", t0));
        assert!(n.first_use("c", t0));
        assert!(!n.first_use("c", t0) && !n.first_use("b", t0));
        assert!(n.first_use("a", t0), "forgotten to make room");
    }
}
