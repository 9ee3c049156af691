//! What watching the calls costs and who does it: the console's event streams and the listeners of live
//! calls (docs/console.md).

use super::register::{counter, gauge};
use prometheus::{IntCounter, IntGauge, Registry};

pub struct Watching {
    /// Event streams (`GET /calls/events`) open now.
    pub event_streams: IntGauge,
    /// Event streams cut off for falling behind the calls' events.
    pub event_streams_cut: IntCounter,
    /// Listeners (`GET /calls/{id}/listen`) on live calls now.
    pub listeners: IntGauge,
    /// Listening sessions opened.
    pub listens: IntCounter,
    /// Audio frames a listener lost because it fell behind (the call lost none).
    pub listen_frames_dropped: IntCounter,
}

impl Watching {
    pub(super) fn new(r: &Registry) -> prometheus::Result<Watching> {
        Ok(Watching {
            event_streams: gauge(r, "event_streams", "Admin event streams (GET /calls/events) open now")?,
            event_streams_cut: counter(
                r,
                "event_streams_cut_total",
                "Admin event streams cut off for falling behind",
            )?,
            listeners: gauge(r, "listeners", "Admins listening in on live calls now")?,
            listens: counter(r, "listens_total", "Listening sessions opened on live calls")?,
            listen_frames_dropped: counter(
                r,
                "listen_frames_dropped_total",
                "Audio (100 ms of a side each) a listener lost by falling behind (the call loses none)",
            )?,
        })
    }
}
