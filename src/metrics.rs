//! Process-wide counters shared by every call (atomics: bumped on rare events, read on demand).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Serialize for Counter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

/// What the gateway did not understand or had to drop, by side.
#[derive(Debug, Default, Serialize)]
pub struct Counters {
    /// Carrier events with a name we do not know (ignored).
    pub carrier_unknown_events: Counter,
    /// Carrier frames we could not read at all (the leg was closed).
    pub carrier_bad_frames: Counter,
    /// ElevenLabs message types we do not use (ignored, as the schema asks).
    pub agent_ignored_events: Counter,
    /// ElevenLabs messages we could not read.
    pub agent_bad_messages: Counter,
    /// Calls whose actor started / stopped.
    pub calls_started: Counter,
    pub calls_ended: Counter,
    /// ElevenLabs connection attempts that failed, and reconnects made.
    pub upstream_connect_failures: Counter,
    pub upstream_reconnects: Counter,
}
