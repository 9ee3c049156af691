//! One validator, one verdict: for each broken configuration (a key, a value, a section, an environment
//! variable, an unsafe combination) `check-config` and `serve` both exit 64 with the same problems, and each
//! problem names where it came from — the file's line or the variable.
use std::collections::BTreeSet;
use std::process::Command;

/// What every case starts from: a configuration `serve` would take (on loopback, agent set, no key needed).
const BASE: [(&str, &str); 4] = [
    ("WSAPI__ELEVENLABS__AGENT_ID", "agent_x"),
    ("WSAPI__ELEVENLABS__AUTH", "none"),
    ("WSAPI__SERVER__LISTEN", "127.0.0.1:17991"),
    ("WSAPI__ADMIN__LISTEN", "127.0.0.1:17992"),
];

/// One broken configuration: the file, the environment over `BASE` (an empty value removes a variable),
/// and what a problem must say, with its place.
struct Case {
    file: &'static str,
    env: &'static [(&'static str, &'static str)],
    says: &'static str,
    at: &'static str,
}

const fn case(
    file: &'static str,
    env: &'static [(&'static str, &'static str)],
    says: &'static str,
    at: &'static str,
) -> Case {
    Case { file, env, says, at }
}

const CASES: &[Case] = &[
    case(
        "[calls]\nmax_concurrent_calls = 0\n",
        &[],
        "calls.max_concurrent_calls: must be at least 1",
        ":2)",
    ),
    case("[calls]\nframe_ms = 2\n", &[], "calls.frame_ms: 2 is outside", ":2)"),
    case(
        "[calls]\nmax_concurrent_calls = \"lots\"\n",
        &[],
        "calls.max_concurrent_calls: invalid type",
        ":2)",
    ),
    // A type error hides neither the section's other problems nor its other values.
    case(
        "[calls]\nmax_concurrent_calls = \"lots\"\nframe_ms = 2\n",
        &[],
        "calls.frame_ms: 2 is outside",
        ":3)",
    ),
    case(
        "[calls]\nmax_concurrent_calls = -1\n",
        &[],
        "calls.max_concurrent_calls: invalid value",
        ":2)",
    ),
    case("[calls]\nheartbeat_interval_ms = 0\n", &[], "calls.peer_timeout_ms", ""),
    case(
        "[cals]\nx = 1\n",
        &[],
        "[cals]: unknown section; did you mean [calls]?",
        ":1)",
    ),
    case(
        "[carrier.plivo]\nauth = 1\n",
        &[],
        "did you mean [carriers.plivo]?",
        ":1)",
    ),
    case(
        "[server]\npublic_ur = \"wss://x\"\n",
        &[],
        "did you mean server.public_url?",
        ":2)",
    ),
    case(
        "[carriers.plivo]\nanswer_ur = \"x\"\n",
        &[],
        "did you mean carriers.plivo.answer_url?",
        ":2)",
    ),
    case(
        "[carriers.plivo]\nreplay_window_s = \"long\"\n",
        &[],
        "carriers.plivo.replay_window_s: invalid type",
        ":2)",
    ),
    case(
        "[elevenlabs]\nauth = \"headr\"\n",
        &[("WSAPI__ELEVENLABS__AUTH", "")],
        "did you mean \"header\"?",
        ":2)",
    ),
    case(
        "",
        &[("WSAPI__ELEVENLABS__AUTH", "headr")],
        "did you mean \"header\"?",
        "(WSAPI__ELEVENLABS__AUTH)",
    ),
    case(
        "[server]\nlisten = \"nope\"\n",
        &[("WSAPI__SERVER__LISTEN", "")],
        "server.listen: 'nope'",
        ":2)",
    ),
    case(
        "",
        &[("WSAPI__SERVER__LISTEN", "nope")],
        "server.listen: 'nope'",
        "(WSAPI__SERVER__LISTEN)",
    ),
    case(
        "",
        &[("WSAPI__CALS__X", "1")],
        "[cals]: unknown section",
        "(WSAPI__CALS__X)",
    ),
    case("", &[("WSAPI__CALLS", "5")], "expected WSAPI__<SECTION>__<KEY>", ""),
    case("[log]\nlevel = \"loud\"\n", &[], "log.level: 'loud'", ":2)"),
    case(
        "",
        &[("WSAPI__LOG__LEVEL", "verbose")],
        "log.level: 'verbose'",
        "(WSAPI__LOG__LEVEL)",
    ),
    case("[log]\nlevel = \"websocket_api=chatty\"\n", &[], "log.level", ":2)"),
    case(
        "[server]\npublic_url = \"http://x\"\n",
        &[],
        "server.public_url: 'http://x' must start with ws://",
        ":2)",
    ),
    case(
        "[server]\nmax_frame_bytes = 10\n",
        &[],
        "server.max_frame_bytes: must be at least 1024",
        ":2)",
    ),
    case(
        "[elevenlabs]\nuser_audio_chunk_ms = 500\n",
        &[],
        "elevenlabs.user_audio_chunk_ms: 500 is over 250",
        ":2)",
    ),
    case(
        "[elevenlabs]\nurl = \"http://x\"\n",
        &[],
        "elevenlabs.url: 'http://x' must start with ws://",
        ":2)",
    ),
    case(
        "[database]\nurl = \"mysql://x\"\n",
        &[],
        "database.url: 'mysql://x'",
        ":2)",
    ),
    case(
        "[carrier]\nallowed_ips = [\"not-an-ip\"]\n",
        &[],
        "carrier.allowed_ips",
        ":2)",
    ),
    case(
        "[admin]\nlisten = \"127.0.0.1:17991\"\n",
        &[("WSAPI__ADMIN__LISTEN", "")],
        "admin.listen: must differ",
        ":2)",
    ),
    case("this is = = not toml\n", &[], "not valid TOML", "line 1"),
    // What serve alone used to refuse: check-config now says the same.
    case(
        "",
        &[("WSAPI__ELEVENLABS__AGENT_ID", "")],
        "elevenlabs.agent_id: serve needs an agent",
        "",
    ),
    case(
        "",
        &[("WSAPI__ELEVENLABS__AUTH", "")],
        "elevenlabs.auth = \"header\" needs ELEVENLABS_API_KEY",
        "",
    ),
    // Unsafe combinations.
    case(
        "",
        &[
            ("WSAPI__SERVER__LISTEN", "0.0.0.0:17991"),
            ("WSAPI__SERVER__PUBLIC_URL", "wss://gw.example.com"),
        ],
        "nothing authenticates them",
        "(WSAPI__SERVER__LISTEN)",
    ),
    case(
        "",
        &[
            ("WSAPI__SERVER__LISTEN", "0.0.0.0:17991"),
            ("WSAPI__CARRIER__STATIC_TOKEN", "t"),
        ],
        "server.public_url: unset, while server.listen = 0.0.0.0:17991",
        "",
    ),
    case(
        "[server]\npublic_url = \"ws://127.0.0.1:7900\"\n",
        &[
            ("WSAPI__SERVER__LISTEN", "0.0.0.0:17991"),
            ("WSAPI__CARRIER__STATIC_TOKEN", "t"),
        ],
        "names this host's loopback",
        ":2)",
    ),
    case(
        "",
        &[("WSAPI__ADMIN__LISTEN", "0.0.0.0:17992")],
        "admin.listen: 0.0.0.0:17992 serves the admin API",
        "(WSAPI__ADMIN__LISTEN)",
    ),
    case(
        "[[routes]]\nname = \"a\"\nnumber = \"+1\"\n",
        &[],
        "routes[0] \"a\"",
        "",
    ),
];

/// Runs `command` on `file` with `BASE` and `env`: its exit code and the problems it listed.
fn verdict(command: &str, file: &std::path::Path, env: &[(&str, &str)]) -> (i32, BTreeSet<String>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_websocket_api"));
    cmd.args([command, "--config", file.to_str().expect("utf8 path")])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in BASE.iter().chain(env) {
        cmd.env(k, v);
    }
    for (k, _) in env.iter().filter(|(_, v)| v.is_empty()) {
        cmd.env_remove(k);
    }
    let out = cmd.output().expect("binary runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let problems = err
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .map(str::to_string)
        .collect();
    (out.status.code().unwrap_or(-1), problems, err)
}

#[test]
fn check_config_and_serve_give_one_verdict_and_every_problem_names_its_place() {
    assert!(CASES.len() >= 30, "the matrix covers 30 or more configurations");
    let dir = std::env::temp_dir().join(format!("wsapi-matrix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for (i, c) in CASES.iter().enumerate() {
        let file = dir.join(format!("case{i}.toml"));
        std::fs::write(&file, c.file).expect("write");
        let (check_code, check, check_err) = verdict("check-config", &file, c.env);
        let (serve_code, serve, serve_err) = verdict("serve", &file, c.env);
        assert_eq!((check_code, serve_code), (64, 64), "case {i}: {check_err}\n{serve_err}");
        let problems = if check.is_empty() {
            BTreeSet::from([check_err.clone()])
        } else {
            check.clone()
        };
        assert_eq!(check, serve, "case {i}: one verdict");
        let named = problems.iter().find(|p| p.contains(c.says));
        let named = named.unwrap_or_else(|| panic!("case {i}: no problem says {:?}: {check_err}", c.says));
        assert!(named.contains(c.at), "case {i}: {named:?} names no place {:?}", c.at);
        assert!(
            check_err.starts_with("websocket_api: configuration from "),
            "case {i}: which file: {check_err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
