//! The spool: an append-only, fsync'd file of database writes that could not be made, replayed (the writes
//! are idempotent) when the database takes them again — also after a restart. Size-capped: past the cap a
//! write is refused with a clear error and counted, instead of filling the disk.

use super::models::DbWrite;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Why a write could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("db: spool {path} is full ({size} of {max} bytes); records are being lost")]
    Full { path: String, size: u64, max: u64 },
    #[error("db: cannot encode a record for the spool: {0}")]
    Encode(String),
    #[error("db: spool {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

pub struct Spool {
    path: PathBuf,
    max_bytes: u64,
    size: u64,
}

impl Spool {
    /// The spool at `path`; a file left by a previous run is kept for replay. Nothing is created until the
    /// first append.
    pub fn open(path: impl AsRef<Path>, max_bytes: u64) -> Spool {
        let path = path.as_ref().to_path_buf();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Spool { path, max_bytes, size }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes waiting for replay.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Appends the writes as JSON lines and fsyncs before returning.
    pub fn append(&mut self, writes: &[DbWrite]) -> Result<(), SpoolError> {
        let mut buf = Vec::new();
        for w in writes {
            let line = serde_json::to_vec(w).map_err(|e| SpoolError::Encode(e.to_string()))?;
            buf.extend_from_slice(&line);
            buf.push(b'\n');
        }
        if self.size + buf.len() as u64 > self.max_bytes {
            return Err(SpoolError::Full {
                path: self.path.display().to_string(),
                size: self.size,
                max: self.max_bytes,
            });
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err(&self.path, e))?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io_err(&self.path, e))?;
        f.write_all(&buf)
            .and_then(|_| f.sync_data())
            .map_err(|e| io_err(&self.path, e))?;
        self.size += buf.len() as u64;
        Ok(())
    }

    /// Everything spooled, oldest first. A torn last line (a crash mid-append) is skipped, and so is any line
    /// that does not parse; both are counted in the second value.
    pub fn read_all(&self) -> Result<(Vec<DbWrite>, usize), SpoolError> {
        let f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(io_err(&self.path, e)),
        };
        let (mut writes, mut skipped) = (Vec::new(), 0);
        for line in BufReader::new(f).split(b'\n') {
            let line = line.map_err(|e| io_err(&self.path, e))?;
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice(&line) {
                Ok(w) => writes.push(w),
                Err(_) => skipped += 1,
            }
        }
        Ok((writes, skipped))
    }

    /// Empties the spool after a successful replay.
    pub fn clear(&mut self) -> Result<(), SpoolError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&self.path, e)),
        }
        self.size = 0;
        Ok(())
    }
}

fn io_err(path: &Path, source: std::io::Error) -> SpoolError {
    SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::StatusReport;

    #[test]
    fn every_kind_of_write_round_trips() {
        use crate::db::models::{CallEvent, CallRecord};
        let dir = std::env::temp_dir().join(format!("wsapi-spool-kinds-{}", std::process::id()));
        let path = dir.join("spool.jsonl");
        let _ = std::fs::remove_file(&path);
        let event = CallEvent {
            call_id: "c".into(),
            seq: 1,
            at_ms: 2,
            kind: "state".into(),
            detail: "active".into(),
        };
        let writes = vec![
            DbWrite::Call(Box::new(CallRecord::new("c", "active", 1))),
            DbWrite::Events(vec![event]),
            status("c"),
        ];
        let mut s = Spool::open(&path, 1 << 20);
        s.append(&writes).expect("append");
        assert_eq!(s.read_all().expect("read"), (writes, 0));
    }

    fn status(id: &str) -> DbWrite {
        DbWrite::Status(StatusReport {
            call_id: id.into(),
            dial_status: "ANSWER".into(),
            recording_url: None,
            at_ms: 1,
        })
    }

    #[test]
    fn appends_reads_back_survives_reopen_and_clears() {
        let dir = std::env::temp_dir().join(format!("wsapi-spool-{}", std::process::id()));
        let path = dir.join("spool.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut s = Spool::open(&path, 1 << 20);
        s.append(&[status("a"), status("b")]).expect("append");
        // A torn line, as a crash mid-write leaves.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"kind\":\"sta"))
            .expect("tear");
        let reopened = Spool::open(&path, 1 << 20);
        assert!(!reopened.is_empty());
        let (writes, skipped) = reopened.read_all().expect("read");
        assert_eq!(writes, vec![status("a"), status("b")]);
        assert_eq!(skipped, 1);
        let mut reopened = reopened;
        reopened.clear().expect("clear");
        assert!(reopened.is_empty() && reopened.read_all().expect("read").0.is_empty());
    }

    #[test]
    fn refuses_past_its_cap() {
        let dir = std::env::temp_dir().join(format!("wsapi-spool-cap-{}", std::process::id()));
        let path = dir.join("spool.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut s = Spool::open(&path, 100);
        s.append(&[status("a")]).expect("first fits");
        assert!(matches!(
            s.append(&[status("b"), status("c")]),
            Err(SpoolError::Full { .. })
        ));
    }
}
