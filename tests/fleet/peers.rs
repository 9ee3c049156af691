//! A fleet that does not trust its database blindly: the admin token goes only to the peers the operator
//! listed (`fleet.peers`), a peer answering junk is reported as that peer's error (never a panic), and an
//! instance whose cap differs from the live fleet's is refused at start (exit 64) instead of leaving the
//! lower cap unenforced.

use super::*;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use diesel::prelude::*;
use std::sync::{Arc, Mutex};

const ADMIN_TOKEN: &str = "fleet-admin-token";

/// What a fake peer was sent: each request's method, path and `Authorization` header.
type Seen = Arc<Mutex<Vec<String>>>;

/// A server that poses as an instance's admin API, answers `/calls` with `answer`, and notes every
/// request. Its base URL.
fn fake_peer(answer: serde_json::Value, seen: Seen) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = HttpServer::new(move || {
        let (answer, seen) = (answer.clone(), seen.clone());
        App::new().default_service(web::to(move |req: HttpRequest| {
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if let Ok(mut s) = seen.lock() {
                s.push(format!("{} {} {auth}", req.method(), req.path()));
            }
            let answer = answer.clone();
            async move { HttpResponse::Ok().json(answer) }
        }))
    })
    .listen(listener)
    .expect("listen")
    .workers(1)
    .disable_signals()
    .run();
    actix_rt::spawn(server);
    format!("http://{addr}")
}

/// A row in the fleet's table for an instance that is not one of ours, freshly renewed.
fn register(f: &Fleet, instance: &str, admin_url: &str) {
    let mut c = PgConnection::establish(&f.db.url).expect("db");
    diesel::sql_query(
        "INSERT INTO fleet_instances (instance_id, public_url, admin_url, local_cap) VALUES ($1, '', $2, 10) \
         ON CONFLICT (instance_id) DO UPDATE SET admin_url = EXCLUDED.admin_url, last_seen = now()",
    )
    .bind::<diesel::sql_types::Text, _>(instance)
    .bind::<diesel::sql_types::Text, _>(admin_url)
    .execute(&mut c)
    .expect("register a fake instance");
}

async fn as_admin(method: &str, url: &str) -> (u16, Value) {
    let client = awc::Client::default();
    let req = match method {
        "DELETE" => client.delete(url),
        _ => client.get(url),
    };
    let mut resp = req.bearer_auth(ADMIN_TOKEN).send().await.expect("admin answers");
    let status = resp.status().as_u16();
    (
        status,
        resp.json::<Value>().limit(16 << 20).await.unwrap_or(Value::Null),
    )
}

#[actix_rt::test]
async fn the_admin_token_goes_only_to_listed_peers_and_junk_is_that_peers_error() {
    let allowed_seen = Seen::default();
    let junk = serde_json::json!({"active": 1, "max_concurrent_calls": 5, "calls": [1, "x", null]});
    let allowed = fake_peer(junk, allowed_seen.clone());
    let stranger_seen = Seen::default();
    let stranger = fake_peer(serde_json::json!({"active": 0, "calls": []}), stranger_seen.clone());
    let f = Fleet::start(Setup {
        extra: vec![("WSAPI__ADMIN__TOKEN", ADMIN_TOKEN.to_string())],
        extra_peers: vec![allowed.clone()],
        ..Setup::cap(20)
    })
    .await;
    register(&f, "listed", &allowed);
    register(&f, "stranger", &stranger);

    let (status, listed) = as_admin("GET", &format!("{}/calls?scope=fleet", f.gw(0).admin)).await;
    assert_eq!(status, 200, "{listed}");
    let line = |id: &str| {
        listed["instances"]
            .as_array()
            .and_then(|all| all.iter().find(|i| i["instance_id"] == id).cloned())
            .unwrap_or_default()
    };
    let refused = line("stranger")["error"].as_str().unwrap_or_default().to_string();
    assert!(refused.contains("fleet.peers"), "{listed}");
    assert!(
        stranger_seen.lock().map(|s| s.is_empty()).unwrap_or(false),
        "an instance the operator did not list was sent the admin token: {:?}",
        stranger_seen.lock().map(|s| s.clone())
    );
    let junk = line("listed")["error"].as_str().unwrap_or_default().to_string();
    assert!(junk.contains("junk"), "{listed}");
    for ours in ["gw2", "gw3"] {
        assert_eq!(line(ours)["active"], 0, "the fleet's own instances answer: {listed}");
    }

    // A hang-up for a call the database says the stranger carries is not sent there.
    let mut c = PgConnection::establish(&f.db.url).expect("db");
    diesel::sql_query(
        "INSERT INTO calls (call_id, attempt, carrier, direction, from_number, to_number, state, started_at, \
         updated_at, instance_id) VALUES ('ON-STRANGER', 1, 'mcube', 'inbound', '', '', 'active', 0, 0, 'stranger')",
    )
    .execute(&mut c)
    .expect("a call row");
    register(&f, "stranger", &stranger);
    let (status, body) = as_admin("DELETE", &format!("{}/calls/ON-STRANGER", f.gw(0).admin)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("peer_not_allowed")),
        "{body}"
    );
    assert!(stranger_seen.lock().map(|s| s.is_empty()).unwrap_or(false));
}

/// Runs one more instance with the fleet's settings and `overrides`; its exit code (`None`: still
/// running after 20 s, then killed) and what it wrote.
fn run_instance(f: &Fleet, overrides: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = f.dir.join("gw4");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("none.toml"), "").expect("config file");
    let mut cmd = std::process::Command::new(process::binary());
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WSAPI_CONFIG", dir.join("none.toml"))
        .env("WSAPI__ELEVENLABS__AGENT_ID", "agent_test")
        .env("WSAPI__ELEVENLABS__AUTH", "none")
        .env("WSAPI__SERVER__LISTEN", "127.0.0.1:0")
        .env("WSAPI__ADMIN__LISTEN", "127.0.0.1:0")
        .env("WSAPI__SERVER__INSTANCE_ID", "gw4")
        .env("WSAPI__DATABASE__SPOOL_PATH", dir.join("spool"))
        .env("WSAPI__DATABASE__DEAD_LETTER_PATH", dir.join("dead"))
        .stderr(std::process::Stdio::piped());
    for (k, v) in f.env() {
        cmd.env(k, v);
    }
    for (k, v) in overrides {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("binary starts");
    let until = std::time::Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.code();
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut err);
    }
    (code, err)
}

#[actix_rt::test]
async fn an_instance_whose_cap_differs_from_the_live_fleets_is_refused_at_start() {
    let f = Fleet::start(Setup::cap(20)).await;
    let (code, err) = run_instance(&f, &[("WSAPI__FLEET__MAX_CONCURRENT_CALLS", "10")]);
    assert_eq!(
        code,
        Some(64),
        "a second cap would leave the lower one unenforced: {err}"
    );
    assert!(
        err.contains("fleet.max_concurrent_calls") && err.contains("differs from the fleet's 20"),
        "{err}"
    );
    let (view, _) = fleet_rows(&f, 0).await;
    assert_eq!(view["cap_in_database"], 20, "{view}");
    assert!(
        admit_eventually(&f.gw(1).http, "CAP-KEPT", Duration::from_secs(5))
            .await
            .is_some(),
        "the fleet goes on"
    );
}
