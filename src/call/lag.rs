//! How far behind this thread's event loop runs. A probe on each worker thread wakes every `PROBE` and
//! records how late it woke; the carrier legs on that thread read it and join caller frames only while the
//! loop is behind: a frame then waits for the loop anyway, and one message for several frames is less work
//! for a machine that has none to spare. A loop on time joins nothing.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How often the probe wakes.
pub const PROBE: Duration = Duration::from_millis(10);
/// The longest caller audio is joined for however far behind the loop runs (what the old fixed join
/// held it for).
pub const MAX_JOIN: Duration = Duration::from_millis(100);

thread_local! {
    static LAG_US: Cell<u64> = const { Cell::new(0) };
    static PROBING: Cell<bool> = const { Cell::new(false) };
}

/// How far behind this thread's loop runs now (0 where no probe runs).
pub fn current() -> Duration {
    Duration::from_micros(LAG_US.with(Cell::get))
}

/// The lag after a probe woke `late`: a spike counts at once, and fades over a few probes once the loop
/// is back on time.
pub fn smoothed(previous: Duration, late: Duration) -> Duration {
    late.max(previous * 3 / 4)
}

/// How long to join caller frames of `frame` length for at `lag`: nothing below a frame's worth of lag,
/// else the lag, at most `MAX_JOIN`.
pub fn join_for(lag: Duration, frame: Duration) -> Duration {
    if lag < frame.max(Duration::from_millis(1)) {
        Duration::ZERO
    } else {
        lag.min(MAX_JOIN)
    }
}

/// Starts this thread's probe, once (call it on each worker thread); each wake-up's lateness goes to
/// `observed` (`wsapi_loop_lag_seconds`).
pub fn start_probe(observed: prometheus::Histogram) {
    if PROBING.with(|p| p.replace(true)) {
        return;
    }
    actix_rt::spawn(async move {
        let mut due = Instant::now() + PROBE;
        loop {
            actix_rt::time::sleep_until(due.into()).await;
            let now = Instant::now();
            let late = now.saturating_duration_since(due);
            observed.observe(late.as_secs_f64());
            LAG_US.with(|l| {
                let lag = smoothed(Duration::from_micros(l.get()), late);
                l.set(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX));
            });
            due = now + PROBE;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_at_once_and_fades_and_joins_only_past_a_frame() {
        let ms = Duration::from_millis;
        assert_eq!(smoothed(ms(0), ms(40)), ms(40));
        assert_eq!(smoothed(ms(40), ms(0)), ms(30));
        assert_eq!(smoothed(ms(30), ms(35)), ms(35));
        assert_eq!(
            join_for(ms(15), ms(20)),
            Duration::ZERO,
            "a loop under a frame behind joins nothing"
        );
        assert_eq!(join_for(ms(45), ms(20)), ms(45));
        assert_eq!(join_for(ms(400), ms(20)), MAX_JOIN);
        assert_eq!(current(), Duration::ZERO, "no probe on this thread");
    }
}
