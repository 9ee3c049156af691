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

/// The longest `recording.dir`: each file's path is kept in its record (at most 4,096 characters there).
const MAX_DIR_CHARS: usize = 1024;

impl RecordingConfig {
    pub(super) fn validate(&self, problems: &mut Vec<String>) {
        if self.enabled && self.dir.trim().is_empty() {
            problems.push("recording.dir: must name a directory when recording.enabled".into());
        }
        if self.dir.chars().count() > MAX_DIR_CHARS {
            problems.push(format!(
                "recording.dir: at most {MAX_DIR_CHARS} characters (each file's path is kept in its record)"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_needs_a_directory_of_a_storable_length() {
        let mut problems = Vec::new();
        let on = |dir: String| RecordingConfig {
            enabled: true,
            dir,
            keep_days: 0,
        };
        on(" ".into()).validate(&mut problems);
        on("d".repeat(1025)).validate(&mut problems);
        on("data/recordings".into()).validate(&mut problems);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
