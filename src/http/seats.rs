//! What an admin may keep open on the admin listener, and how much of it: event streams and listeners each
//! have a fixed number of seats, counted in a gauge and given back when what took one ends; and the tickets
//! that open them from a browser.

use super::tickets::Tickets;
use crate::metrics::Metrics;
use prometheus::IntGauge;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The most event streams (`GET /calls/events`) open at once.
pub const MAX_EVENT_STREAMS: usize = 32;
/// The most listeners (`GET /calls/{id}/listen`) at once, all calls together.
pub const MAX_LISTENERS: usize = 16;

/// The admin listener's long-lived connections.
pub struct Watchers {
    /// Tickets for a browser, which cannot send the admin token on these connections.
    pub tickets: Tickets,
    pub streams: Seats,
    pub listeners: Seats,
}

impl Watchers {
    pub fn new(metrics: &Metrics) -> Watchers {
        Watchers {
            tickets: Tickets::default(),
            streams: Seats::new(MAX_EVENT_STREAMS, metrics.watching.event_streams.clone()),
            listeners: Seats::new(MAX_LISTENERS, metrics.watching.listeners.clone()),
        }
    }
}

/// A fixed number of seats.
pub struct Seats {
    taken: Arc<AtomicUsize>,
    max: usize,
    gauge: IntGauge,
}

impl Seats {
    pub fn new(max: usize, gauge: IntGauge) -> Seats {
        Seats {
            taken: Arc::default(),
            max,
            gauge,
        }
    }

    /// A seat, unless all are taken.
    pub fn take(&self) -> Option<Seat> {
        let taken = self
            .taken
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < self.max).then_some(n + 1));
        taken.ok()?;
        self.gauge.inc();
        Some(Seat {
            taken: self.taken.clone(),
            gauge: self.gauge.clone(),
        })
    }

    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::SeqCst)
    }
}

/// One seat, given back when dropped.
pub struct Seat {
    taken: Arc<AtomicUsize>,
    gauge: IntGauge,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.taken.fetch_sub(1, Ordering::SeqCst);
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_run_out_and_come_back() {
        let gauge = IntGauge::new("seats_test", "test").expect("gauge");
        let seats = Seats::new(2, gauge.clone());
        let (a, b) = (seats.take(), seats.take());
        assert!(a.is_some() && b.is_some());
        assert!(seats.take().is_none(), "no third seat");
        assert_eq!(gauge.get(), 2);
        drop(a);
        assert_eq!((seats.taken(), gauge.get()), (1, 1));
        assert!(seats.take().is_some(), "a seat given back is taken again");
    }
}
