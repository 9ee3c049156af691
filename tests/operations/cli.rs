//! The binary's contract (interface.md §1–2): `check-config` prints effective values with secrets redacted
//! and what to enter at each carrier, and exits 0, or lists every problem `serve` would refuse and exits 64.
use crate::common::db;
use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_websocket_api"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn shipped() -> String {
    format!("{}/config/websocket_api.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_config_prints_effective_values_without_secrets() {
    let (code, out, err) = run(
        &["check-config", "--config", &shipped()],
        &[
            ("ELEVENLABS_API_KEY", "sk_very_secret"),
            ("WSAPI__CALLS__MAX_CONCURRENT_CALLS", "500"),
            ("WSAPI__CARRIER__STATIC_TOKEN", "carrier-secret-token"),
            // What serve needs as well: check-config gives serve's verdict.
            ("WSAPI__ELEVENLABS__AGENT_ID", "agent_x"),
            ("WSAPI__SERVER__PUBLIC_URL", "wss://gw.example.com"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("configuration from ") && err.contains("config/websocket_api.toml"),
        "{err}"
    );
    // What to enter at each carrier, tokens included.
    assert!(
        out.contains("# Mcube refurl: https://gw.example.com/mcube/call?carrier_token="),
        "{out}"
    );
    assert!(
        out.contains("# Plivo answer URL: https://gw.example.com/plivo/answer?carrier_token="),
        "{out}"
    );
    assert!(
        out.contains("# media WebSocket base handed to carriers: wss://gw.example.com"),
        "{out}"
    );
    assert!(!out.contains("carrier-secret-token"), "secret printed: {out}");
    assert!(out.contains("max_concurrent_calls = 500"), "{out}");
    assert!(!out.contains("sk_very_secret"), "secret printed: {out}");
    assert!(out.contains("ELEVENLABS_API_KEY: set (redacted)"));
}

#[test]
fn bad_configuration_lists_every_problem_and_exits_64() {
    let dir = std::env::temp_dir().join(format!("wsapi-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[calls]\nmax_concurrent_calls = 0\nframe_ms = 2\n[server]\nlisten = \"nope\"\n",
    )
    .expect("write");
    let (code, _, err) = run(&["check-config", "--config", path.to_str().expect("utf8 path")], &[]);
    assert_eq!(code, 64);
    for needle in ["max_concurrent_calls", "frame_ms", "server.listen"] {
        assert!(err.contains(needle), "missing {needle}: {err}");
    }
    let (code, _, _) = run(&["check-config", "--config", "/nonexistent/websocket_api.toml"], &[]);
    assert_eq!(code, 64, "an explicitly named file that is missing is a problem");
}

#[test]
fn serve_needs_an_agent_and_bad_usage_is_64() {
    let (code, _, err) = run(&["serve", "--config", &shipped()], &[("ELEVENLABS_API_KEY", "k")]);
    assert_eq!(code, 64);
    assert!(err.contains("agent_id"), "{err}");
    let (code, _, _) = run(&["no-such-command"], &[]);
    assert_eq!(code, 64);
}

fn migrate_empty(url: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
    let all = std::fs::read_dir(dir).expect("migrations").count();
    let (code, out, err) = run(&["migrate"], &[("WSAPI__DATABASE__URL", url)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{all} migration(s) applied")), "{out}");
    let (code, out, _) = run(&["migrate"], &[("WSAPI__DATABASE__URL", url)]);
    assert_eq!(code, 0);
    assert!(
        out.contains("0 migration(s) applied"),
        "second run applies nothing: {out}"
    );
}

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wsapi-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

#[test]
fn migrate_works_on_an_empty_sqlite_file() {
    let dir = scratch("sqlite");
    migrate_empty(&format!("sqlite://{}", dir.join("new/calls.db").display()));
}

#[test]
fn migrate_works_on_an_empty_postgres_database() {
    let dir = scratch("pg");
    let database = db::TestDb::new(db::Backend::Postgres, &dir);
    migrate_empty(&database.url);
}

#[test]
fn migrate_reports_an_unreachable_database() {
    let (code, _, err) = run(
        &["migrate"],
        &[("WSAPI__DATABASE__URL", "postgres://nobody@127.0.0.1:1/none")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("db:"), "{err}");
}

#[test]
fn serve_refuses_a_cap_the_file_descriptor_limit_cannot_hold() {
    let (code, _, err) = run(
        &["serve", "--config", &shipped()],
        &[
            ("WSAPI__ELEVENLABS__AGENT_ID", "agent_x"),
            ("WSAPI__ELEVENLABS__AUTH", "none"),
            ("WSAPI__CALLS__MAX_CONCURRENT_CALLS", "900000000"),
            ("WSAPI__SERVER__LISTEN", "127.0.0.1:7900"),
        ],
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("file descriptors") && err.contains("LimitNOFILE"), "{err}");
}

#[test]
fn check_config_warns_of_a_fleet_that_would_ask_itself_and_refuses_peers_it_cannot_trust() {
    let dir = scratch("fleet-peers");
    let database = db::TestDb::new(db::Backend::Postgres, &dir);
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").expect("write");
    let check = |extra: &[(&str, &str)]| {
        let mut env = vec![
            ("WSAPI__DATABASE__URL", database.url.as_str()),
            ("WSAPI__SERVER__LISTEN", "127.0.0.1:7900"),
            ("WSAPI__FLEET__MAX_CONCURRENT_CALLS", "10"),
            ("WSAPI__ELEVENLABS__AGENT_ID", "agent_x"),
            ("WSAPI__ELEVENLABS__AUTH", "none"),
        ];
        env.extend_from_slice(extra);
        run(&["check-config", "--config", empty.to_str().expect("utf8 path")], &env)
    };
    let (code, out, err) = check(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("# warning: fleet.admin_url") && out.contains("loopback"),
        "the default admin_url names this host's loopback address: {out}"
    );
    let (code, out, err) = check(&[
        ("WSAPI__FLEET__ADMIN_URL", "https://10.0.0.11:7901"),
        ("WSAPI__FLEET__PEERS", r#"["https://10.0.0.12:7901"]"#),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("# warning: fleet"), "{out}");
    for (plain, why) in [
        ("false", "plain http:// sends the admin token in clear"),
        ("true", "not a private"),
    ] {
        let (code, _, err) = check(&[
            ("WSAPI__FLEET__PEERS", r#"["http://203.0.113.9:7901"]"#),
            ("WSAPI__FLEET__PLAIN_HTTP_PEERS", plain),
        ]);
        assert_eq!(code, 64, "{err}");
        assert!(err.contains("fleet.peers") && err.contains(why), "{err}");
    }
}

#[test]
fn every_subcommand_honours_config_or_refuses_it_and_usage_errors_exit_64() {
    let dir = scratch("usage");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[calls]\nframe_ms = 2\n").expect("write");
    let bad = bad.to_str().expect("utf8 path");
    // The demo reads the file it is given, and refuses a broken one as serve would.
    let (code, out, err) = run(&["demo", "--config", bad, "--calls", "1", "--seconds", "1"], &[]);
    assert_eq!(code, 64, "{out}{err}");
    assert!(err.contains("calls.frame_ms") && err.contains("bad.toml:2"), "{err}");
    assert!(!out.contains("demo OK"), "{out}");
    for args in [
        &["demo", "--calls", "0"][..],
        &["demo", "--seconds", "-1"],
        &["simulate-agent", "--listen", "127.0.0.1:99999"],
        &["simulate-agent", "--config", bad],
        &["loadtest", "--config", bad, "--target", "http://127.0.0.1:1"],
    ] {
        let (code, _, err) = run(args, &[]);
        assert_eq!(code, 64, "{args:?}: {err}");
    }
    let (_, help, _) = run(&["--help"], &[]);
    for carrier in ["Mcube", "Plivo", "Exotel", "Twilio"] {
        assert!(help.contains(carrier), "--help names {carrier}: {help}");
    }
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/websocket_api.service")).expect("unit");
    assert!(
        unit.contains("Description=") && unit.contains("Plivo"),
        "the unit names every carrier"
    );
}

#[test]
fn check_config_says_which_file_it_read() {
    let dir = scratch("which-file");
    let env = [
        ("WSAPI__ELEVENLABS__AGENT_ID", "a"),
        ("WSAPI__ELEVENLABS__AUTH", "none"),
        ("WSAPI__SERVER__LISTEN", "127.0.0.1:7900"),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_websocket_api"));
    cmd.arg("check-config")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    // This directory has no config/websocket_api.toml: the installed file, or none, and it says which.
    let installed = std::path::Path::new("/etc/websocket_api/websocket_api.toml").exists();
    if installed {
        assert!(
            err.contains("configuration from /etc/websocket_api/websocket_api.toml"),
            "{err}"
        );
    } else {
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(
            err.contains("no configuration file") && err.contains("defaults"),
            "{err}"
        );
    }
    let (code, _, err) = run(&["check-config", "--config", &shipped()], &env);
    assert!(
        err.starts_with("websocket_api: configuration from ") && err.contains("config/websocket_api.toml"),
        "{code} {err}"
    );
}

/// `serve` on `127.0.0.1:port` with nothing set but what it needs: no `server.public_url` anywhere.
fn serve_plain(port: u16, extra: &[(&str, &str)]) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let dir = scratch("plain");
    let file = dir.join("gw.toml");
    std::fs::write(&file, "").expect("write");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_websocket_api"));
    cmd.args(["serve", "--config", file.to_str().expect("utf8 path")])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("WSAPI__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("WSAPI__ADMIN__LISTEN", "127.0.0.1:0")
        .env("WSAPI__ELEVENLABS__AGENT_ID", "agent_x")
        .env("WSAPI__ELEVENLABS__AUTH", "none")
        .env("WSAPI__DATABASE__URL", format!("sqlite://{}/calls.db", dir.display()))
        .stderr(std::process::Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "serve listens on {port}");
    (child, rx)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn the_media_url_is_right_by_itself_and_a_401_names_the_carrier() {
    let port = free_port();
    let (mut child, log) = serve_plain(port, &[("WSAPI__CARRIER__STATIC_TOKEN", "s3cret")]);
    let base = format!("http://127.0.0.1:{port}");
    let (refurl, plivo) = actix_rt::System::new().block_on(async {
        let body = serde_json::json!({"callId": "URL-1", "callDirection": "inbound", "fromNumber": "+914155551234",
            "toNumber": "+918001234567", "dialStatus": "CONNECTING"});
        let client = awc::Client::default();
        let refurl = match client
            .post(format!("{base}/mcube/call?carrier_token=s3cret"))
            .send_json(&body)
            .await
        {
            Ok(mut r) => r.json::<serde_json::Value>().await.ok(),
            Err(_) => None,
        };
        let plivo = client
            .post(format!("{base}/plivo/answer"))
            .send_form(&[("CallUUID", "u-1"), ("From", "+1"), ("To", "+2")])
            .await
            .map(|r| r.status().as_u16());
        (refurl, plivo)
    });
    let _ = child.kill();
    let _ = child.wait();
    let wss_url = refurl
        .and_then(|v| v["wss_url"].as_str().map(str::to_string))
        .unwrap_or_default();
    assert!(
        wss_url.starts_with(&format!("ws://127.0.0.1:{port}/ws/mcube/URL-1?token=")),
        "the media URL names the port serve listens on: {wss_url:?}"
    );
    assert_eq!(plivo.ok(), Some(401));
    let lines: Vec<String> = log.try_iter().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/plivo/answer (plivo) refused (401)") && l.contains("?carrier_token=")),
        "the 401 names the path and the carrier, and the fix: {lines:?}"
    );
}
