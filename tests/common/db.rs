//! Real databases for the tests: a temp SQLite file, or a PostgreSQL database of its own created on the
//! server at `WSAPI_TEST_POSTGRES_URL` (scripts/test sets it; default: the local server) and dropped after.
//! Plus a TCP proxy in front of PostgreSQL that can be cut, to take the database away mid-run.
#![allow(dead_code)]

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use websocket_api::db::models::{CallEvent, CallRow};
use websocket_api::db::{self, DbPool, DbTarget};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn pg_base_url() -> String {
    std::env::var("WSAPI_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database for one test; a PostgreSQL one is dropped with it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pg_name: Option<String>,
}

impl TestDb {
    pub fn new(backend: Backend, dir: &std::path::Path) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                url: format!("sqlite://{}", dir.join("records.db").display()),
                pg_name: None,
            },
            Backend::Postgres => {
                let base = pg_base_url();
                let name = dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("wsapi_test")
                    .replace('-', "_");
                let mut admin = PgConnection::establish(&base)
                    .unwrap_or_else(|e| panic!("PostgreSQL at {base} is required for these tests: {e}"));
                // Two statements: CREATE DATABASE may not share a (implicit) transaction.
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create test database");
                let host_end = base.find("://").map_or(0, |i| i + 3);
                let url = match base[host_end..].find('/') {
                    Some(i) => format!("{}/{name}", &base[..host_end + i]),
                    None => format!("{base}/{name}"),
                };
                TestDb {
                    backend,
                    url,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// The same database reached through `proxy` (PostgreSQL only).
    pub fn via(&self, proxy: &Proxy) -> String {
        let after_at = self.url.rfind('@').map_or(0, |i| i + 1);
        let slash = self.url[after_at..].find('/').map_or(self.url.len(), |i| after_at + i);
        format!("{}{}{}", &self.url[..after_at], proxy.addr, &self.url[slash..])
    }

    pub fn pool(&self) -> DbPool {
        let target = DbTarget::parse(&self.url).expect("test db url");
        db::pool(&target, 2, Duration::from_secs(5)).expect("pool")
    }

    /// The latest attempt of a call, with its events.
    pub fn get_call(&self, call_id: &str) -> Option<(CallRow, Vec<CallEvent>)> {
        self.stored(call_id, None).map(|s| (s.row, s.events))
    }

    /// The latest attempt of `carrier`'s call `call_id` (another carrier's call of the id is another call).
    pub fn get_call_of(&self, call_id: &str, carrier: &str) -> Option<CallRow> {
        let pool = self.pool();
        let mut c = pool.get().expect("test db reachable");
        db::migrate(&mut c).expect("migrated");
        db::get_call(&mut c, call_id, Some(carrier), None)
            .expect("query")
            .map(|s| s.row)
    }

    /// A call as stored: one attempt (the latest when `attempt` is `None`), its events, every attempt.
    pub fn stored(&self, call_id: &str, attempt: Option<i64>) -> Option<db::CallWithEvents> {
        let pool = self.pool();
        let mut c = pool.get().expect("test db reachable");
        db::migrate(&mut c).expect("migrated");
        db::get_call(&mut c, call_id, None, attempt).expect("query")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut admin) = PgConnection::establish(&pg_base_url()) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// A TCP proxy to `target` that can be cut (every connection dropped, new ones refused) and restored.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    /// Runs on a thread of its own, so it keeps moving while the test's thread blocks (waiting for a
    /// child process's log, say).
    pub async fn start(target: &str) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("proxy addr");
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (target, up2, links2) = (target.to_string(), up.clone(), links.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("proxy listener");
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up2.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection closed
                    }
                    let target = target.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    if let Ok(mut l) = links2.lock() {
                        l.push(link);
                    }
                }
            });
        });
        Proxy { addr, up, links }
    }

    /// The database goes away: live connections are cut, new ones refused.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Ok(mut l) = self.links.lock() {
            for link in l.drain(..) {
                link.abort();
            }
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
