//! Every length of time in the configuration as a `Duration`, converted here once: the file keeps its
//! `_ms` and `_seconds` keys (operators read and write numbers), and no other module converts them.

use super::sections::*;
use std::time::Duration;

/// `$name()` for each `$field`, in the unit its key names.
macro_rules! durations {
    ($section:ty { $($name:ident: $field:ident in $unit:ident),+ $(,)? }) => {
        impl $section {
            $(
                #[doc = concat!("`", stringify!($field), "` as a `Duration`.")]
                pub fn $name(&self) -> Duration {
                    Duration::$unit(self.$field)
                }
            )+
        }
    };
}

durations!(ServerConfig {
    drain_timeout: drain_timeout_ms in from_millis,
    interrupt_drain_timeout: interrupt_drain_timeout_ms in from_millis,
    request_timeout: request_timeout_ms in from_millis,
    send_timeout: send_timeout_ms in from_millis,
});

durations!(CallsConfig {
    admission_deadline: admission_deadline_ms in from_millis,
    start_timeout: start_timeout_ms in from_millis,
    frame: frame_ms in from_millis,
    heartbeat_interval: heartbeat_interval_ms in from_millis,
    peer_timeout: peer_timeout_ms in from_millis,
    playout_timeout: playout_timeout_ms in from_millis,
    max_call: max_call_seconds in from_secs,
    reconcile_interval: reconcile_interval_ms in from_millis,
});

durations!(ElevenLabsConfig {
    connect_timeout: connect_timeout_ms in from_millis,
    metadata_timeout: metadata_timeout_ms in from_millis,
    redial_min_spacing: redial_min_spacing_ms in from_millis,
    send_timeout: send_timeout_ms in from_millis,
    user_audio_chunk: user_audio_chunk_ms in from_millis,
    breaker_window: breaker_window_ms in from_millis,
    breaker_cooldown: breaker_cooldown_ms in from_millis,
    agent_breaker_window: agent_breaker_window_ms in from_millis,
    agent_breaker_cooldown: agent_breaker_cooldown_ms in from_millis,
});

durations!(DatabaseConfig {
    connect_timeout: connect_timeout_ms in from_millis,
    batch_delay: batch_delay_ms in from_millis,
    replay_interval: replay_interval_ms in from_millis,
});

durations!(CarrierConfig {
    token_ttl: token_ttl_seconds in from_secs,
});
