//! The recordings' writer: one thread of its own ("wsapi-recorder") owns every open recording file, so no
//! call's thread ever waits on the disk. A call hands it samples through its `Recording`, which counts what
//! is in flight: past `IN_FLIGHT_BYTES` for that call (a slow or full disk) new samples are dropped,
//! counted and the recording marked incomplete, never queued. A write that fails marks it incomplete too,
//! and the rest of that call's samples are dropped. When the call ends the file gets its lengths and its
//! row (`call_recordings`) goes to the records.

use super::wav;
use crate::db::batcher::{DbBatcher, Save};
use crate::db::models::{now_ms, DbWrite, RecordingRow};
use crate::metrics::Metrics;
use actix::Addr;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// What one call may have waiting for the disk: about a second of 8 kHz stereo.
pub const IN_FLIGHT_BYTES: usize = 32 * 1024;

/// Which call attempt a recording is of, and where its file goes.
#[derive(Debug, Clone)]
pub struct RecordingOf {
    pub carrier: &'static str,
    pub call_id: String,
    pub attempt: i64,
}

impl RecordingOf {
    /// `YYYY/MM/DD/<carrier>/<call_id>-<attempt>.wav`, dated by the attempt (Unix microseconds): the local
    /// path under `recording.dir`, and the object's name under the upload prefix.
    pub fn relative_path(&self) -> PathBuf {
        let at = UNIX_EPOCH + Duration::from_micros(u64::try_from(self.attempt).unwrap_or(0));
        let day = humantime::format_rfc3339_seconds(at).to_string();
        let (y, m, d) = (&day[0..4], &day[5..7], &day[8..10]);
        Path::new(y)
            .join(m)
            .join(d)
            .join(self.carrier)
            .join(format!("{}-{}.wav", self.call_id, self.attempt))
    }
}

/// How a recording is doing, shared by the call and the writer.
#[derive(Default)]
struct Health {
    in_flight: AtomicUsize,
    lost_bytes: AtomicU64,
    failed: AtomicBool,
}

enum Job {
    Open { id: u64, path: PathBuf, rate: u32 },
    Write { id: u64, bytes: Vec<u8> },
    Close { id: u64, end: RecordingEnd },
}

/// What the call knows of its recording when it ends.
pub struct RecordingEnd {
    pub of: RecordingOf,
    pub rate: u32,
    /// Samples (per side) the call's clock dropped (a side running ahead) and wrote as silence (paused).
    pub dropped_samples: u64,
    pub paused_samples: u64,
}

/// The writer's handle: opens recordings.
#[derive(Clone)]
pub struct Recorder {
    jobs: Sender<(Job, Arc<Health>)>,
    dir: PathBuf,
    next: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

impl Recorder {
    /// Starts the writer thread over `dir` (made with mode 0700 if missing), after giving every file a
    /// crash cut short its lengths.
    pub fn start(dir: &Path, db: Addr<DbBatcher>, metrics: Arc<Metrics>) -> std::io::Result<Recorder> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let repaired = repair_all(dir);
        if repaired > 0 {
            log::warn!("recording: {repaired} recordings cut short by a crash were given their lengths");
        }
        let (jobs, rx) = channel();
        let writer = Writer {
            dir: dir.to_path_buf(),
            open: HashMap::new(),
            db,
            metrics: metrics.clone(),
        };
        std::thread::Builder::new()
            .name("wsapi-recorder".into())
            .spawn(move || writer.run(rx))?;
        Ok(Recorder {
            jobs,
            dir: dir.to_path_buf(),
            next: Arc::default(),
            metrics,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A recording of `of` at `rate`, its file opened by the writer.
    pub fn open(&self, of: &RecordingOf, rate: u32) -> Recording {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let health = Arc::new(Health::default());
        let path = of.relative_path();
        let recording = Recording {
            id,
            jobs: self.jobs.clone(),
            health: health.clone(),
            metrics: self.metrics.clone(),
        };
        recording.send(Job::Open { id, path, rate });
        recording
    }
}

/// One call's recording, as the call holds it.
pub struct Recording {
    id: u64,
    jobs: Sender<(Job, Arc<Health>)>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

impl Recording {
    /// Hands interleaved samples to the writer, unless the call already has `IN_FLIGHT_BYTES` waiting or
    /// its file failed: then they are dropped and counted. Never waits.
    pub fn write(&self, bytes: Vec<u8>) {
        let len = bytes.len();
        let waiting = self.health.in_flight.load(Ordering::Relaxed);
        if self.health.failed.load(Ordering::Relaxed) || waiting + len > IN_FLIGHT_BYTES {
            self.health.lost_bytes.fetch_add(len as u64, Ordering::Relaxed);
            self.metrics.recording.lost_bytes.inc_by(len as u64);
            return;
        }
        self.health.in_flight.fetch_add(len, Ordering::Relaxed);
        self.send(Job::Write { id: self.id, bytes });
    }

    /// The call is over: the writer gives the file its lengths and the records its row.
    pub fn close(self, end: RecordingEnd) {
        self.send(Job::Close { id: self.id, end });
    }

    fn send(&self, job: Job) {
        // The writer thread only ends with the process.
        let _ = self.jobs.send((job, self.health.clone()));
    }
}

/// The thread's side: the open files.
struct Writer {
    dir: PathBuf,
    open: HashMap<u64, Open>,
    db: Addr<DbBatcher>,
    metrics: Arc<Metrics>,
}

struct Open {
    file: Option<File>,
    path: PathBuf,
    data: u64,
    error: Option<String>,
}

impl Writer {
    fn run(mut self, jobs: Receiver<(Job, Arc<Health>)>) {
        let repaired = repair_all(&self.dir);
        if repaired > 0 {
            log::warn!("recording: {repaired} recordings cut short by a crash were given their lengths");
        }
        while let Ok((job, health)) = jobs.recv() {
            match job {
                Job::Open { id, path, rate } => {
                    let open = self.create(&path, rate, &health);
                    self.open.insert(id, open);
                }
                Job::Write { id, bytes } => {
                    if let Some(open) = self.open.get_mut(&id) {
                        write(open, &bytes, &health, &self.metrics);
                    }
                    health.in_flight.fetch_sub(bytes.len(), Ordering::Relaxed);
                }
                Job::Close { id, end } => {
                    if let Some(open) = self.open.remove(&id) {
                        self.finish(open, end, &health);
                    }
                }
            }
        }
    }

    fn create(&self, relative: &Path, rate: u32, health: &Health) -> Open {
        let path = self.dir.join(relative);
        let created = path
            .parent()
            .map_or(Ok(()), |p| {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(p)
            })
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
            })
            .and_then(|mut f| f.write_all(&wav::header(rate, u32::MAX)).map(|()| f));
        let mut open = Open {
            file: None,
            path,
            data: 0,
            error: None,
        };
        match created {
            Ok(file) => open.file = Some(file),
            Err(e) => fail(&mut open, health, &self.metrics, format!("cannot create it: {e}")),
        }
        open
    }

    /// Gives the file its lengths and sends its row.
    fn finish(&self, mut open: Open, end: RecordingEnd, health: &Health) {
        if let Some(file) = open.file.as_mut() {
            if let Err(e) = wav::set_lengths(file, open.data) {
                fail(&mut open, health, &self.metrics, format!("cannot finish it: {e}"));
            }
        }
        let per_second = u64::from(end.rate) * wav::BLOCK;
        let lost_ms = health.lost_bytes.load(Ordering::Relaxed) * 1000 / per_second.max(1)
            + end.dropped_samples * 1000 / u64::from(end.rate.max(1));
        let complete = open.error.is_none() && lost_ms == 0;
        if complete {
            self.metrics.recording.complete.inc();
        } else {
            self.metrics.recording.incomplete.inc();
        }
        let row = RecordingRow {
            call_id: end.of.call_id.clone(),
            carrier: end.of.carrier.to_string(),
            attempt: end.of.attempt,
            path: open.path.display().to_string(),
            bytes: (wav::HEADER_BYTES + open.data) as i64,
            duration_ms: (open.data * 1000 / per_second.max(1)) as i64,
            complete,
            lost_ms: lost_ms as i64,
            paused_ms: (end.paused_samples * 1000 / u64::from(end.rate.max(1))) as i64,
            error: open.error.clone(),
            url: None,
            updated_at: now_ms(),
        };
        self.db.do_send(Save {
            writes: vec![DbWrite::Recording(Box::new(row))],
        });
    }
}

fn write(open: &mut Open, bytes: &[u8], health: &Health, metrics: &Metrics) {
    let Some(file) = open.file.as_mut() else {
        health.lost_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        return;
    };
    match file.write_all(bytes) {
        Ok(()) => open.data += bytes.len() as u64,
        Err(e) => {
            health.lost_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            fail(open, health, metrics, format!("cannot write it: {e}"));
        }
    }
}

/// The recording is incomplete from here: said once, in the log and in its row.
fn fail(open: &mut Open, health: &Health, metrics: &Metrics, mut why: String) {
    if open.error.is_none() {
        // What a disk says is short; the bound is the record's (details of at most 16,384 characters).
        if let Some((cut, _)) = why.char_indices().nth(1000) {
            why.truncate(cut);
        }
        log::warn!(
            "recording: {}: {why}; the rest of this call is not recorded",
            open.path.display()
        );
        metrics.recording.failures.inc();
        open.error = Some(why);
    }
    health.failed.store(true, Ordering::Relaxed);
}

/// Repairs every recording under `dir`; how many needed it.
fn repair_all(dir: &Path) -> usize {
    let mut repaired = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "wav") {
                match wav::repair(&path) {
                    Ok(true) => repaired += 1,
                    Ok(false) => {}
                    Err(e) => log::warn!("recording: {}: not repaired: {e}", path.display()),
                }
            }
        }
    }
    repaired
}
