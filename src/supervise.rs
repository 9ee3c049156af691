//! Supervision: a panic in one part of the gateway is caught at that part's boundary (`guard`), named,
//! counted (`wsapi_internal_errors_total{part}`, `/healthz`) and handed to the part's own recovery: a call
//! ends as `internal_error`, a shared actor is rebuilt, a request is answered 500. Nothing is left to
//! unwind a task (which would drop a call without its record) or a thread. A worker thread that dies
//! anyway ends the process (`watch_thread`): a half-dead gateway is worse than systemd's restart.
//!
//! The fault points (`fault`) that a test build (feature `fault-injection`) can make panic live here too;
//! in any other build they are empty and compiled away.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

/// The parts a panic is caught in, each with its own recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A call's carrier WebSocket: the call ends, the carrier is hung up.
    CarrierLeg,
    /// A call's actor: the call ends through its own `end_call`.
    Call,
    /// A call's ElevenLabs WebSocket: the call ends (a fault is not a network drop to redial).
    AgentLeg,
    /// The slot table and its clock: the request is refused, the clock restarted.
    Registry,
    /// The records writer and batcher: the batch is stored row by row, a row that panics is set aside in
    /// the dead-letter file, and the writer is rebuilt.
    Records,
    /// The fleet's lease steward: rebuilt, its lease renewed on the next tick.
    Steward,
    /// An admin request: answered 500.
    Admin,
    /// A carrier webhook or upgrade request: answered 500.
    Webhook,
    /// The carrier access check: the request is refused.
    Access,
}

const PARTS: usize = 9;

impl Part {
    pub const ALL: [Part; PARTS] = [
        Part::CarrierLeg,
        Part::Call,
        Part::AgentLeg,
        Part::Registry,
        Part::Records,
        Part::Steward,
        Part::Admin,
        Part::Webhook,
        Part::Access,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Part::CarrierLeg => "carrier_leg",
            Part::Call => "call",
            Part::AgentLeg => "agent_leg",
            Part::Registry => "registry",
            Part::Records => "records",
            Part::Steward => "steward",
            Part::Admin => "admin",
            Part::Webhook => "webhook",
            Part::Access => "access",
        }
    }

    pub fn parse(name: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A caught panic: which part, what it said and where.
#[derive(Debug, Clone)]
pub struct Panic {
    pub part: Part,
    pub message: String,
}

impl std::fmt::Display for Panic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "internal error in {}: {}", self.part, self.message)
    }
}

static COUNTS: [AtomicU64; PARTS] = [const { AtomicU64::new(0) }; PARTS];
static LAST: [Mutex<Option<String>>; PARTS] = [const { Mutex::new(None) }; PARTS];
static WATCHING: AtomicBool = AtomicBool::new(false);
static STOPPING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// How many `guard`s this thread is inside: a panic there is caught, so the hook keeps quiet.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The message and place of the panic being caught (the payload alone has no location).
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`; a panic inside it comes back as `Err`, counted against `part`. The caller recovers (ends its
/// call, rebuilds its state, answers 500) and logs once with what it knows (the call id).
pub fn guard<R>(part: Part, f: impl FnOnce() -> R) -> Result<R, Panic> {
    install_hook();
    DEPTH.with(|d| d.set(d.get() + 1));
    let out = catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    out.map_err(|payload| {
        let message = CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| payload_text(payload.as_ref()).to_string());
        count(part, &message);
        Panic { part, message }
    })
}

/// `guard` for a future: each poll runs guarded, and a panic ends it with `Err` (it is not polled again).
pub async fn guard_future<F: std::future::Future>(part: Part, fut: F) -> Result<F::Output, Panic> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| match guard(part, || fut.as_mut().poll(cx)) {
        Ok(std::task::Poll::Ready(out)) => std::task::Poll::Ready(Ok(out)),
        Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
        Err(panic) => std::task::Poll::Ready(Err(panic)),
    })
    .await
}

/// The message of the panic this thread is unwinding from, for a part that learns of it in a destructor.
pub fn unwinding() -> Option<String> {
    if std::thread::panicking() {
        CAUGHT.with(|c| c.borrow_mut().take())
    } else {
        None
    }
}

/// Counts a fault of `part` found some other way than `guard` (a poisoned lock, a part found dead).
pub fn count(part: Part, message: &str) {
    let i = part as usize;
    COUNTS[i].fetch_add(1, Ordering::Relaxed);
    if let Ok(mut last) = LAST[i].lock() {
        *last = Some(message.chars().take(500).collect());
    }
}

/// Every part's count of internal errors since the process started.
pub fn counts() -> [(Part, u64); PARTS] {
    Part::ALL.map(|p| (p, COUNTS[p as usize].load(Ordering::Relaxed)))
}

/// For `/healthz`: each part that has recovered from an internal error, how often, and the last one.
pub fn report() -> serde_json::Map<String, serde_json::Value> {
    Part::ALL
        .into_iter()
        .filter_map(|p| {
            let n = COUNTS[p as usize].load(Ordering::Relaxed);
            let last = LAST[p as usize].lock().ok().and_then(|l| l.clone());
            (n > 0).then(|| {
                (
                    p.as_str().to_string(),
                    serde_json::json!({"recovered": n, "last": last}),
                )
            })
        })
        .collect()
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

/// The process's panic hook: a panic inside a `guard` is only noted (its part logs it once, with the call
/// id); any other is logged as an internal error and printed as Rust prints panics.
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let place = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let text = format!("{}{place}", payload_text(info.payload()));
            let guarded = DEPTH.with(|d| d.get()) > 0;
            if !guarded {
                log::error!("internal error: a panic outside any supervised part: {text}");
                default(info);
            }
            CAUGHT.with(|c| *c.borrow_mut() = Some(text));
        }));
    });
}

/// From now on the threads that call `watch_thread` are watched: for the service, not for tests and the
/// demo, which start and drop gateways inside one process.
pub fn watch_threads() {
    WATCHING.store(true, Ordering::SeqCst);
}

/// The gateway is stopping: its threads may end.
pub fn stopping() {
    STOPPING.store(true, Ordering::SeqCst);
}

/// Held while a gateway starts: a start that fails part-way (a refused fleet cap, a bad certificate) drops
/// what it had started, the records writer's thread among them, and that is a refusal, not a crash, so
/// the threads may end. Dropped before what it guards, it must be made after them (`Starting::done` once
/// the start succeeded).
pub struct Starting {
    done: bool,
}

impl Starting {
    pub fn new() -> Self {
        Self { done: false }
    }

    /// The start succeeded: the threads are watched again from here on.
    pub fn done(mut self) {
        self.done = true;
    }
}

impl Default for Starting {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if !self.done {
            stopping();
        }
    }
}

/// Names the calling thread as `top -H`, `ps -L` and /proc show it (at most 15 bytes): which listener a
/// worker serves, so what each costs can be told apart (scripts/bench-watchers reads the admin worker's).
pub fn name_thread(name: &str) {
    let Ok(name) = std::ffi::CString::new(name) else { return };
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (truncated to 16 bytes) and names this thread only.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
}

/// Watches the calling thread (an HTTP worker, the records writer): if it ends while the gateway is not
/// stopping, a panic got past every guard and took the thread's calls with it. The process then exits at
/// once with 70 (EX_SOFTWARE), for systemd to restart it; the spool and start-up recovery keep the records.
pub fn watch_thread(name: &'static str) {
    struct Sentinel(&'static str);
    impl Drop for Sentinel {
        fn drop(&mut self) {
            if !STOPPING.load(Ordering::SeqCst) {
                log::error!("internal error: the {} thread ended; exiting for a restart", self.0);
                std::process::exit(70);
            }
        }
    }
    thread_local! { static SENTINEL: RefCell<Option<Sentinel>> = const { RefCell::new(None) }; }
    if WATCHING.load(Ordering::SeqCst) {
        SENTINEL.with(|s| {
            s.borrow_mut().get_or_insert(Sentinel(name));
        });
    }
}

/// The gateway's background work (the cost sampler, the systemd watchdog, a fleet's lease keeper), each a
/// named task: started with the gateway and, at the end of its drain, stopped and joined by name, so none
/// outlives the gateway it served or ends unnoticed.
#[derive(Clone, Default)]
pub struct Services(Arc<Mutex<Vec<Service>>>);

/// A running service: its name and its task.
type Service = (&'static str, actix_rt::task::JoinHandle<()>);

impl Services {
    /// Starts `work` on the current arbiter as the service `name`.
    pub fn spawn(&self, name: &'static str, work: impl std::future::Future<Output = ()> + 'static) {
        let handle = actix_rt::spawn(work);
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push((name, handle));
    }

    /// The services running, by name.
    pub fn names(&self) -> Vec<&'static str> {
        let tasks = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tasks
            .iter()
            .filter(|(_, h)| !h.is_finished())
            .map(|(name, _)| *name)
            .collect()
    }

    /// Stops every service and waits until each has ended: one that had ended by a panic is named.
    pub async fn stop(&self) {
        let tasks = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for (name, handle) in tasks {
            handle.abort();
            match handle.await {
                Err(e) if e.is_panic() => log::error!("service {name} had ended by a panic"),
                _ => log::debug!("service {name} stopped"),
            }
        }
    }
}

/// A place a test build can make panic (`fault::arm`); nothing at all in other builds.
pub mod fault {
    use super::Part;

    /// Panics if a fault is armed for `part` and `subject` (a call id, a request path, an instance id),
    /// once per arming.
    #[cfg(feature = "fault-injection")]
    pub fn point(part: Part, subject: &str) {
        if armed::take(part, subject) {
            panic!("injected fault in {part} for {subject}");
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    #[inline(always)]
    pub fn point(_: Part, _: &str) {}

    /// Arms one fault: the next time `part` reaches a fault point for `subject`, it panics.
    #[cfg(feature = "fault-injection")]
    pub fn arm(part: Part, subject: &str) {
        armed::add(part, subject);
    }

    #[cfg(feature = "fault-injection")]
    mod armed {
        use super::Part;
        use std::sync::{Mutex, OnceLock};

        fn faults() -> &'static Mutex<Vec<(Part, String)>> {
            static FAULTS: OnceLock<Mutex<Vec<(Part, String)>>> = OnceLock::new();
            FAULTS.get_or_init(|| Mutex::new(from_env()))
        }

        /// `WSAPI_FAULTS="call:SUP-1,records:SUP-2"`: for a test that runs the binary.
        fn from_env() -> Vec<(Part, String)> {
            let spec = std::env::var("WSAPI_FAULTS").unwrap_or_default();
            spec.split(',')
                .filter_map(|f| f.split_once(':'))
                .filter_map(|(p, s)| Some((Part::parse(p.trim())?, s.trim().to_string())))
                .collect()
        }

        pub fn add(part: Part, subject: &str) {
            let mut f = faults().lock().unwrap_or_else(|p| p.into_inner());
            f.push((part, subject.to_string()));
        }

        pub fn take(part: Part, subject: &str) -> bool {
            let mut f = faults().lock().unwrap_or_else(|p| p.into_inner());
            match f.iter().position(|(p, s)| *p == part && s == subject) {
                Some(i) => {
                    f.remove(i);
                    true
                }
                None => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_panic_comes_back_with_its_message_and_place_and_is_counted() {
        let before = counts()[Part::Steward as usize].1;
        let caught = guard(Part::Steward, || -> u32 { panic!("boom {}", 7) });
        let p = caught.expect_err("caught");
        assert_eq!(p.part, Part::Steward);
        assert!(p.message.starts_with("boom 7 at src/supervise.rs:"), "{}", p.message);
        assert_eq!(counts()[Part::Steward as usize].1, before + 1);
        assert!(report()["steward"]["last"]
            .as_str()
            .is_some_and(|l| l.starts_with("boom 7")));
        assert_eq!(guard(Part::Steward, || 5).ok(), Some(5));
        assert_eq!(DEPTH.with(|d| d.get()), 0, "the guard is left behind");
    }

    #[test]
    fn parts_are_named_once_each() {
        for p in Part::ALL {
            assert_eq!(Part::parse(p.as_str()), Some(p));
        }
    }

    #[actix_rt::test]
    async fn services_are_stopped_and_joined_by_name() {
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let services = Services::default();
        let dropped = Arc::new(AtomicBool::new(false));
        let held = SetOnDrop(dropped.clone());
        services.spawn("forever", async move {
            let _held = held;
            std::future::pending::<()>().await;
        });
        tokio::task::yield_now().await;
        assert_eq!(services.names(), vec!["forever"]);
        services.stop().await;
        assert!(
            dropped.load(Ordering::SeqCst),
            "stop returns once the task's state is dropped"
        );
        assert!(services.names().is_empty());
    }
}
