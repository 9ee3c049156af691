//! The real `websocket_api` binary as a child process, configured through the environment, with its log
//! read for the address it bound.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Served {
    pub child: Child,
    /// The carrier-facing listener.
    pub http: String,
    /// The admin listener.
    pub admin: String,
    /// Log lines up to and including the address line.
    pub early_log: Vec<String>,
    /// Log lines after the address line.
    pub log: mpsc::Receiver<String>,
}

/// The binary under test: this build's, or another build's named by `WSAPI_TEST_BINARY` (to run the
/// process tests against an installed package, or against an older build to see which of them it fails).
pub fn binary() -> String {
    std::env::var("WSAPI_TEST_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_websocket_api").to_string())
}

/// Starts `websocket_api serve` with `WSAPI__…` overrides (an empty config file otherwise) and waits for its
/// "listening on" line.
pub fn serve(config_dir: &std::path::Path, overrides: &[(&str, &str)]) -> Served {
    serve_limited(config_dir, overrides, None)
}

/// `serve_in_with`, its configuration file holding `toml` (e.g. `[[routes]]`).
pub fn serve_in_with_file(dir: &std::path::Path, agent_url: &str, toml: &str, extra: &[(&str, &str)]) -> Served {
    let file = dir.join("gateway.toml");
    std::fs::write(&file, toml).expect("config file");
    let file = file.display().to_string();
    let mut overrides = vec![("WSAPI_CONFIG", file.as_str())];
    overrides.extend_from_slice(extra);
    serve_in_with(dir, agent_url, &overrides)
}

/// The real gateway in `dir` in front of `agent_url`, recording to a SQLite file there.
pub fn serve_in(dir: &std::path::Path, agent_url: &str) -> Served {
    serve_in_with(dir, agent_url, &[])
}

/// `serve_in` with `extra` overrides.
pub fn serve_in_with(dir: &std::path::Path, agent_url: &str, extra: &[(&str, &str)]) -> Served {
    let db = format!("sqlite://{}", dir.join("calls.db").display());
    let spool = dir.join("spool").display().to_string();
    let mut overrides = vec![
        ("WSAPI__ELEVENLABS__URL", agent_url),
        ("WSAPI__DATABASE__URL", db.as_str()),
        ("WSAPI__DATABASE__SPOOL_PATH", spool.as_str()),
    ];
    overrides.extend_from_slice(extra);
    serve(dir, &overrides)
}

/// `serve` with its address space capped at `max_address_space` bytes (RLIMIT_AS), so a runaway allocation
/// aborts the process as it would on a box with that much memory.
pub fn serve_limited(
    config_dir: &std::path::Path,
    overrides: &[(&str, &str)],
    max_address_space: Option<u64>,
) -> Served {
    let empty = config_dir.join("empty.toml");
    std::fs::write(&empty, "").expect("empty config file");
    let mut cmd = Command::new(binary());
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("WSAPI_CONFIG", &empty)
        .env("WSAPI__SERVER__LISTEN", "127.0.0.1:0")
        .env("WSAPI__ADMIN__LISTEN", "127.0.0.1:0")
        .env("WSAPI__SERVER__PUBLIC_URL", "")
        .env("WSAPI__SERVER__WORKERS", "1")
        .env("WSAPI__ELEVENLABS__AGENT_ID", "agent_test")
        .env("WSAPI__ELEVENLABS__AUTH", "none")
        .stderr(Stdio::piped());
    for (k, v) in overrides {
        cmd.env(k, v);
    }
    if let Some(bytes) = max_address_space {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else of the parent's.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let mut child = cmd.spawn().expect("binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest.split_whitespace().next().expect("address");
                let admin = rest.split("admin on ").nth(1).expect("admin address").trim();
                return Served {
                    child,
                    http: format!("http://{addr}"),
                    admin: format!("http://{admin}"),
                    early_log: seen,
                    log: rx,
                };
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the gateway did not report its address:\n{}", seen.join("\n"));
}

impl Served {
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{sig}");
    }

    /// Sends `sig`, then waits up to 5 s for a log line holding `needle`: whether it came, and every line
    /// seen meanwhile (for the failure message).
    pub async fn signal_and_await_log(&self, sig: &str, needle: &str) -> (bool, Vec<String>) {
        self.signal(sig);
        let mut seen = Vec::new();
        let came = super::eventually(Duration::from_secs(5), || {
            seen.extend(self.drain_log());
            seen.iter().any(|l| l.contains(needle))
        })
        .await;
        (came, seen)
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Every log line so far.
    pub fn drain_log(&self) -> Vec<String> {
        self.log.try_iter().collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Places a call on a gateway at `http` (refurl + media socket + `start`) and waits until agent audio is
/// heard: the call is bridged. The agent must greet (say something first).
pub async fn bridged_call(http: &str, id: &str) -> websocket_api::tools::sim::carrier::CarrierConn {
    use websocket_api::tools::sim::carrier::{post_refurl, Admission, CarrierConn};
    let Ok(Admission::Admitted { wss_url }) = post_refurl(http, &super::call(id)).await else {
        panic!("{id} not admitted")
    };
    let mut c = CarrierConn::connect(&wss_url, true).await.expect("media socket");
    c.send_start(id, "s", websocket_api::audio::format::AudioFormat::ULAW_8K);
    let heard = super::listen(&mut c, Duration::from_millis(600)).await;
    assert!(!super::audio_of(&heard).is_empty(), "{id} bridged");
    c
}
