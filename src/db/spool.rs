//! Files of records the database did not take, as fsync'd JSON lines readable only by the gateway's user:
//! the spool (writes that could not be made while the database was unavailable, replayed in bounded
//! chunks from a saved position when it is back — also after a restart) and the dead-letter file (rows
//! the database refused and always will, set aside with its error so they never hold back the rows after
//! them). Both are size-capped: past the cap a write is refused with a clear error and counted, instead of
//! filling the disk. A line torn by a crash costs that line only: the next append starts on a new line.

use super::models::DbWrite;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a line could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("db: {path} is full ({size} of {max} bytes); records are being lost")]
    Full { path: String, size: u64, max: u64 },
    #[error("db: cannot encode a record for {path}: {reason}")]
    Encode { path: String, reason: String },
    #[error("db: {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// An append-only file of JSON lines, fsync'd, mode 0600 in a directory of mode 0700 (they hold phone
/// numbers and transcripts).
struct JsonLines {
    path: PathBuf,
    max_bytes: u64,
    size: u64,
    /// The file does not end with a newline: a crash tore its last line.
    torn_tail: bool,
}

impl JsonLines {
    fn open(path: &Path, max_bytes: u64) -> JsonLines {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        JsonLines {
            path: path.to_path_buf(),
            max_bytes,
            size,
            torn_tail: size > 0 && last_byte(path) != Some(b'\n'),
        }
    }

    fn err(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn encode(&self, items: impl IntoIterator<Item = impl Serialize>) -> Result<Vec<u8>, SpoolError> {
        let mut buf = Vec::new();
        for item in items {
            serde_json::to_writer(&mut buf, &item).map_err(|e| SpoolError::Encode {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })?;
            buf.push(b'\n');
        }
        Ok(buf)
    }

    fn append(&mut self, lines: &[u8]) -> Result<(), SpoolError> {
        let seal: &[u8] = if self.torn_tail { b"\n" } else { b"" };
        let grows = (seal.len() + lines.len()) as u64;
        if self.size + grows > self.max_bytes {
            return Err(SpoolError::Full {
                path: self.path.display().to_string(),
                size: self.size,
                max: self.max_bytes,
            });
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| self.err(e))?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| self.err(e))?;
        let written = f
            .write_all(seal)
            .and_then(|_| f.write_all(lines))
            .and_then(|_| f.sync_data());
        // Whatever happened, measure what is there: a failed write may have left part of a line.
        self.size = f.metadata().map_or(self.size + grows, |m| m.len());
        self.torn_tail = written.is_err();
        written.map_err(|e| self.err(e))
    }
}

fn last_byte(path: &Path) -> Option<u8> {
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::End(-1)).ok()?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b).ok()?;
    Some(b[0])
}

/// One line of the spool as read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Spooled {
    Write(DbWrite),
    /// A line that does not parse: torn by a crash mid-append.
    Torn,
}

/// A spool line and where it ends in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolLine {
    pub entry: Spooled,
    pub end: u64,
}

/// Writes the database could not take yet, oldest first, replayed from `position`.
pub struct Spool {
    lines: JsonLines,
    /// Where replay resumes: everything before it is stored. Saved beside the spool (`<path>.pos`), so a
    /// restart does not replay a long spool from its start (replaying again would be harmless, only slow).
    position: u64,
}

impl Spool {
    /// The spool at `path`; a file left by a previous run is kept for replay, from where that run stopped.
    /// Nothing is created until the first append.
    pub fn open(path: impl AsRef<Path>, max_bytes: u64) -> Spool {
        let lines = JsonLines::open(path.as_ref(), max_bytes);
        let position = std::fs::read_to_string(position_path(&lines.path))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|p| *p <= lines.size)
            .unwrap_or(0);
        Spool { lines, position }
    }

    pub fn path(&self) -> &Path {
        &self.lines.path
    }

    /// Bytes not replayed yet.
    pub fn pending(&self) -> u64 {
        self.lines.size.saturating_sub(self.position)
    }

    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// Appends the writes as JSON lines and fsyncs before returning.
    pub fn append(&mut self, writes: &[DbWrite]) -> Result<(), SpoolError> {
        let buf = self.lines.encode(writes)?;
        self.lines.append(&buf)
    }

    /// Up to `max_lines` lines (and about `max_bytes`) from the replay position, oldest first.
    pub fn read_chunk(&self, max_lines: usize, max_bytes: u64) -> Result<Vec<SpoolLine>, SpoolError> {
        let mut f = match File::open(&self.lines.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.lines.err(e)),
        };
        f.seek(SeekFrom::Start(self.position)).map_err(|e| self.lines.err(e))?;
        let mut reader = BufReader::new(f);
        let (mut out, mut at, mut line) = (Vec::new(), self.position, Vec::new());
        while out.len() < max_lines && at - self.position < max_bytes {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(|e| self.lines.err(e))?;
            if n == 0 {
                break;
            }
            at += n as u64;
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            if body.is_empty() {
                continue;
            }
            let entry = serde_json::from_slice(body).map_or(Spooled::Torn, Spooled::Write);
            out.push(SpoolLine { entry, end: at });
        }
        Ok(out)
    }

    /// Everything not replayed yet, and how many torn lines it holds (tests, tools).
    pub fn read_all(&self) -> Result<(Vec<DbWrite>, usize), SpoolError> {
        let lines = self.read_chunk(usize::MAX, u64::MAX)?;
        let torn = lines.iter().filter(|l| l.entry == Spooled::Torn).count();
        let writes = lines
            .into_iter()
            .filter_map(|l| match l.entry {
                Spooled::Write(w) => Some(w),
                Spooled::Torn => None,
            })
            .collect();
        Ok((writes, torn))
    }

    /// Everything before `end` is stored: replay resumes there. At the end of the file, the spool is emptied.
    pub fn advance(&mut self, end: u64) -> Result<(), SpoolError> {
        self.position = end.min(self.lines.size);
        if self.position >= self.lines.size {
            return self.clear();
        }
        std::fs::write(position_path(&self.lines.path), self.position.to_string()).map_err(|e| self.lines.err(e))
    }

    /// Empties the spool.
    pub fn clear(&mut self) -> Result<(), SpoolError> {
        for path in [self.lines.path.clone(), position_path(&self.lines.path)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.lines.err(e)),
            }
        }
        self.lines.size = 0;
        self.lines.torn_tail = false;
        self.position = 0;
        Ok(())
    }
}

fn position_path(spool: &Path) -> PathBuf {
    let mut name = spool.as_os_str().to_owned();
    name.push(".pos");
    PathBuf::from(name)
}

/// A write the database refused, with why, as the dead-letter file keeps it.
#[derive(Debug, Serialize)]
struct DeadLetter<'a> {
    at_ms: i64,
    error: &'a str,
    write: &'a DbWrite,
}

/// Rows the database refused and always will (a value it cannot store), kept for an operator.
pub struct DeadLetters {
    lines: JsonLines,
}

impl DeadLetters {
    pub fn open(path: impl AsRef<Path>, max_bytes: u64) -> DeadLetters {
        DeadLetters {
            lines: JsonLines::open(path.as_ref(), max_bytes),
        }
    }

    pub fn path(&self) -> &Path {
        &self.lines.path
    }

    pub fn append(&mut self, write: &DbWrite, error: &str) -> Result<(), SpoolError> {
        let letter = DeadLetter {
            at_ms: super::models::now_ms(),
            error,
            write,
        };
        let buf = self.lines.encode([letter])?;
        self.lines.append(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::{CallEvent, CallRecord, RecordState, StatusReport};

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wsapi-spool-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("spool.jsonl")
    }

    fn status(id: &str) -> DbWrite {
        DbWrite::Status(StatusReport {
            call_id: id.into(),
            attempt: None,
            dial_status: "ANSWER".into(),
            recording_url: None,
            at_ms: 1,
        })
    }

    #[test]
    fn every_kind_of_write_round_trips() {
        let path = scratch("kinds");
        let event = CallEvent {
            call_id: "c".into(),
            carrier: "plivo".into(),
            attempt: 3,
            seq: 1,
            at_ms: 2,
            kind: "state".into(),
            detail: "active\u{0}".into(),
        };
        let writes = vec![
            DbWrite::Call(Box::new(CallRecord::stub("c", 3, RecordState::Active, 1))),
            DbWrite::Events(vec![event]),
            status("c"),
        ];
        let mut s = Spool::open(&path, 1 << 20);
        s.append(&writes).expect("append");
        assert_eq!(s.read_all().expect("read"), (writes, 0));
    }

    #[test]
    fn replay_resumes_from_the_saved_position_and_empties_at_the_end() {
        use std::os::unix::fs::PermissionsExt;
        let path = scratch("position");
        let mut s = Spool::open(&path, 1 << 20);
        s.append(&[status("a"), status("b"), status("c")]).expect("append");
        let mode = std::fs::metadata(&path).expect("spool").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the gateway's user reads the spool");
        let first = s.read_chunk(2, u64::MAX).expect("chunk");
        assert_eq!(first.len(), 2);
        s.advance(first[1].end).expect("advance");
        // A restart resumes after what was stored.
        let mut s = Spool::open(&path, 1 << 20);
        let rest = s.read_chunk(10, u64::MAX).expect("chunk");
        assert_eq!(
            rest.iter().map(|l| l.entry.clone()).collect::<Vec<_>>(),
            vec![Spooled::Write(status("c"))]
        );
        s.advance(rest[0].end).expect("advance");
        assert!(s.is_empty() && !path.exists(), "emptied at the end");
    }

    #[test]
    fn a_torn_tail_is_sealed_before_the_next_append() {
        let path = scratch("torn");
        let mut s = Spool::open(&path, 1 << 20);
        s.append(&[status("a")]).expect("append");
        OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"kind\":\"sta"))
            .expect("tear");
        let mut s = Spool::open(&path, 1 << 20);
        s.append(&[status("b")]).expect("append");
        assert_eq!(s.read_all().expect("read"), (vec![status("a"), status("b")], 1));
    }

    #[test]
    fn refuses_past_its_cap() {
        let path = scratch("cap");
        let mut s = Spool::open(&path, 150);
        s.append(&[status("a")]).expect("first fits");
        assert!(matches!(
            s.append(&[status("b"), status("c")]),
            Err(SpoolError::Full { .. })
        ));
    }
}
