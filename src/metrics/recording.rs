//! The recordings (docs/recording.md): how many were complete, what was lost and why.

use super::register::counter;
use prometheus::{IntCounter, Registry};

pub struct RecordingMetrics {
    /// Recordings closed with every sample of both sides in them.
    pub complete: IntCounter,
    /// Recordings closed with something missing (the record says what).
    pub incomplete: IntCounter,
    /// Recording files the disk refused (could not be created, written or finished).
    pub failures: IntCounter,
    /// Recorded audio dropped because the disk was slow, full or failing (the call lost nothing).
    pub lost_bytes: IntCounter,
}

impl RecordingMetrics {
    pub(super) fn new(r: &Registry) -> prometheus::Result<RecordingMetrics> {
        Ok(RecordingMetrics {
            complete: counter(
                r,
                "recordings_complete_total",
                "Recordings closed with both sides whole",
            )?,
            incomplete: counter(
                r,
                "recordings_incomplete_total",
                "Recordings closed with audio missing (slow or full disk, a failed file)",
            )?,
            failures: counter(r, "recording_failures_total", "Recording files the disk refused")?,
            lost_bytes: counter(
                r,
                "recording_lost_bytes_total",
                "Recorded audio dropped for a slow, full or failing disk (the call lost nothing)",
            )?,
        })
    }
}
