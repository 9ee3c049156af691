//! `[recording]`: the gateway's own stereo recording of each call (docs/recording.md). Off by default.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// Record every call: one stereo WAV per attempt, caller left and agent right.
    pub enabled: bool,
    /// Where the files go (made with mode 0700; each file 0600).
    pub dir: String,
    /// Files older than this many days are deleted; 0 keeps them.
    pub keep_days: u64,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: false,
            dir: "data/recordings".into(),
            keep_days: 30,
        }
    }
}
