//! `recording.keep_days`: recordings older than that are deleted from `recording.dir`, at start and then
//! once an hour, so a gateway that records keeps a bounded disk. 0 keeps them all.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const EVERY: Duration = Duration::from_secs(3600);

/// Deletes the recordings under `dir` last written more than `keep` ago; how many it deleted.
pub fn sweep(dir: &Path, keep: Duration, now: SystemTime) -> usize {
    let mut deleted = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
                continue;
            }
            let old = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > keep);
            if old && path.extension().is_some_and(|e| e == "wav") {
                match std::fs::remove_file(&path) {
                    Ok(()) => deleted += 1,
                    Err(e) => log::warn!("recording: {} not deleted: {e}", path.display()),
                }
            }
        }
    }
    deleted
}

/// Sweeps `dir` now and every hour (a service of the gateway's).
pub async fn keep_for(dir: PathBuf, days: u64) {
    let keep = Duration::from_secs(days.saturating_mul(86_400));
    loop {
        let swept = dir.clone();
        let deleted = actix_web::rt::task::spawn_blocking(move || sweep(&swept, keep, SystemTime::now()))
            .await
            .unwrap_or(0);
        if deleted > 0 {
            log::info!("recording: {deleted} recordings older than {days} days deleted");
        }
        actix_rt::time::sleep(EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recordings_older_than_kept_are_deleted() {
        let dir = std::env::temp_dir().join(format!("wsapi-keep-{}", std::process::id()));
        let day = dir.join("2026/12/01/mcube");
        std::fs::create_dir_all(&day).expect("dirs");
        for name in ["a-1.wav", "notes.txt"] {
            std::fs::write(day.join(name), b"x").expect("write");
        }
        let later = SystemTime::now() + Duration::from_secs(3 * 86_400);
        assert_eq!(
            sweep(&dir, Duration::from_secs(5 * 86_400), later),
            0,
            "younger than kept"
        );
        assert_eq!(
            sweep(&dir, Duration::from_secs(2 * 86_400), later),
            1,
            "older: the WAV only"
        );
        assert!(!day.join("a-1.wav").exists() && day.join("notes.txt").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
