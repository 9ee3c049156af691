//! The trust boundary: what crosses the wire is validated where it enters, no record can block the ones
//! after it, and the defaults are closed. Each test here reproduces a hole found in the gateway as a new
//! user or an attacker would meet it (issue 10), against the real gateway over real sockets.

use crate::common::db::{Backend, TestDb};
use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::config::Config;
use websocket_api::db::batcher::FlushAll;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{open_media_socket, CarrierConn, Heard};

async fn flush(h: &Harness) {
    let _ = h.gw.db.send(FlushAll).await;
}

/// POSTs `body` to `url`; the status and the JSON answer.
async fn post_json(url: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = awc::Client::default().post(url);
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut resp = req.send_json(body).await.expect("POST answers");
    let status = resp.status().as_u16();
    (status, resp.json::<Value>().await.unwrap_or(Value::Null))
}

/// The configuration with `extra` TOML laid over it, parsed as an operator's file would be.
fn with_toml(c: &mut Config, extra: &str) {
    let mut table: toml::Table = toml::to_string(c).expect("serializes").parse().expect("TOML");
    let extra: toml::Table = extra.parse().expect("extra TOML");
    for (section, values) in extra {
        let entry = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if let (Some(t), toml::Value::Table(v)) = (entry.as_table_mut(), values) {
            t.extend(v);
        }
    }
    *c = Config::from_parts(&toml::to_string(&table).expect("TOML"), &[]).expect("the configuration is valid");
}

/// The gateway in front of `script`, recording to a database of `backend` (kept alive beside it).
async fn start_on(backend: Backend, script: AgentScript, tweak: impl FnOnce(&mut Config)) -> (Harness, TestDb) {
    let db = TestDb::new(backend, &scratch_dir("tb-db"));
    let url = db.url.clone();
    let h = start(script, |c| {
        c.database.url = url;
        tweak(c);
    })
    .await;
    (h, db)
}

/// One test per backend for a hole where a database is involved.
macro_rules! on_both_backends {
    ($test:ident: $sqlite:ident, $postgres:ident) => {
        #[actix_rt::test]
        async fn $sqlite() {
            $test(Backend::Sqlite).await;
        }

        #[actix_rt::test]
        async fn $postgres() {
            $test(Backend::Postgres).await;
        }
    };
}

/// A short ordinary call: admitted, `start`, a few frames, hung up.
async fn ordinary_call(h: &Harness, id: &str, frames: usize) {
    let conn = start_call(h, id, &format!("s-{id}"), AudioFormat::ULAW_8K).await;
    for _ in 0..frames {
        conn.send_media(&[0xD5; 160]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    conn.close(1000);
    assert!(active_becomes(h, 0, Duration::from_secs(5)).await, "{id} ended");
}

// ----- one NUL must not stop every later record ------------------------------------------------------

async fn a_nul_in_a_number_blocks_no_later_record(backend: Backend) {
    let (h, db) = start_on(backend, quiet_script(), |_| {}).await;
    let body = json!({"callId": "NUL-1", "fromNumber": "+91\u{0}4155551234", "toNumber": "+918001234567",
        "dialStatus": "CONNECTING"});
    let (status, answer) = post_json(&format!("{}/mcube/call", h.gw.http_url), &body, &[]).await;
    if let Some(wss) = answer["wss_url"].as_str() {
        // Admitted: the call runs, so its record (with the NUL) reaches the database.
        let conn = CarrierConn::connect(wss, true).await.expect("media socket");
        conn.send_start("NUL-1", "s", AudioFormat::ULAW_8K);
        tokio::time::sleep(Duration::from_millis(300)).await;
        conn.close(1000);
        assert!(active_becomes(&h, 0, Duration::from_secs(5)).await);
    }
    flush(&h).await;
    for i in 0..3 {
        ordinary_call(&h, &format!("ORD-{i}"), 5).await;
    }
    flush(&h).await;
    for i in 0..3 {
        assert!(
            db.get_call(&format!("ORD-{i}")).is_some(),
            "{backend:?}: ORD-{i}, placed after the NUL call, never reached the database"
        );
    }
    assert_eq!(status, 400, "{backend:?}: a NUL in fromNumber is refused: {answer}");
    assert!(
        answer.to_string().contains("fromNumber"),
        "the answer names the field: {answer}"
    );
}

on_both_backends!(a_nul_in_a_number_blocks_no_later_record:
    sqlite_a_nul_in_a_number_blocks_no_later_record, postgres_a_nul_in_a_number_blocks_no_later_record);

// ----- one `start` must not kill the process ----------------------------------------------------------

#[actix_rt::test]
async fn an_absurd_sample_rate_is_refused_and_the_gateway_lives() {
    let sim = start_agent(AgentScript {
        output_format: "pcm_16000".into(),
        input_format: "pcm_16000".into(),
        greeting_ms: 1000,
        ..quiet_script()
    });
    let dir = scratch_dir("rate");
    let db = format!("sqlite://{}", dir.join("calls.db").display());
    let spool = dir.join("spool").display().to_string();
    // 3 GiB of address space: plenty for the gateway, not for a resampler asked for 4294967295 Hz.
    let mut gw = crate::common::process::serve_limited(
        &dir,
        &[
            ("WSAPI__ELEVENLABS__URL", &sim.url),
            ("WSAPI__DATABASE__URL", &db),
            ("WSAPI__DATABASE__SPOOL_PATH", &spool),
        ],
        Some(3 << 30),
    );
    let wss = match websocket_api::tools::sim::carrier::post_refurl(&gw.http, &call("RATE-1")).await {
        Ok(websocket_api::tools::sim::carrier::Admission::Admitted { wss_url }) => wss_url,
        other => panic!("not admitted: {other:?}"),
    };
    let mut conn = CarrierConn::connect(&wss, true).await.expect("media socket");
    conn.send_text(
        json!({"event": "start", "start": {"callId": "RATE-1", "streamId": "s",
            "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 4294967295u64}}})
        .to_string(),
    );
    let heard = listen(&mut conn, Duration::from_secs(4)).await;
    if let Some(status) = gw.wait_exit(Duration::from_secs(2)) {
        panic!(
            "the gateway died ({status}): {:?}",
            gw.drain_log().iter().rev().take(5).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        heard.last(),
        Some(&Heard::Closed(Some(1007))),
        "the start is refused with 1007: {heard:?}"
    );
    // The gateway goes on serving calls.
    let mut next = crate::common::process::bridged_call(&gw.http, "RATE-2").await;
    next.close(1000);
    let _ = listen(&mut next, Duration::from_millis(300)).await;
    assert!(gw.wait_exit(Duration::from_millis(10)).is_none());
    // The record says why, and the refusal is counted by field.
    let client = awc::Client::default();
    let mut rec = Value::Null;
    for _ in 0..50 {
        let mut resp = client
            .get(format!("{}/calls/RATE-1", gw.admin))
            .send()
            .await
            .expect("admin");
        rec = resp.json().await.unwrap_or(Value::Null);
        if rec["state"] == "ended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rec["end_reason"], "carrier_invalid_data", "{rec}");
    assert!(
        rec["error_detail"]
            .as_str()
            .is_some_and(|d| d.contains("start.mediaFormat.sampleRate")),
        "{rec}"
    );
    let mut metrics = client
        .get(format!("{}/metrics", gw.admin))
        .send()
        .await
        .expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body().await.expect("body")).into_owned();
    assert!(
        text.contains(r#"wsapi_carrier_invalid_total{field="start.mediaFormat.sampleRate"} 1"#),
        "{}",
        text.lines()
            .filter(|l| l.contains("invalid"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ----- open by default ----------------------------------------------------------------------------------

#[test]
fn an_unauthenticated_carrier_on_a_public_address_is_refused() {
    use std::process::{Command, Stdio};
    let dir = scratch_dir("open");
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").expect("config");
    let base = |cmd: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_websocket_api"));
        c.arg(cmd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WSAPI_CONFIG", &empty)
            .env("WSAPI__SERVER__LISTEN", "0.0.0.0:0")
            .env("WSAPI__ELEVENLABS__AGENT_ID", "agent_test")
            .env("WSAPI__ELEVENLABS__AUTH", "none")
            .env(
                "WSAPI__DATABASE__URL",
                format!("sqlite://{}", dir.join("calls.db").display()),
            )
            .env("WSAPI__DATABASE__SPOOL_PATH", dir.join("spool").display().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let mut child = base("serve").spawn().expect("serve starts");
    let mut status = None;
    for _ in 0..100 {
        if let Ok(Some(s)) = child.try_wait() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(64),
        "serve on 0.0.0.0 with no carrier authentication must refuse to start: {stderr}"
    );
    assert!(stderr.contains("allow_unauthenticated"), "{stderr}");
    let check = base("check-config").output().expect("check-config runs");
    assert_eq!(
        check.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

// ----- the admin API behind a proxy, and the carrier behind one -----------------------------------------

#[actix_rt::test]
async fn the_carrier_listener_serves_no_admin_endpoint_without_a_token() {
    let h = start(quiet_script(), |_| {}).await;
    // A TLS proxy in front of the carrier port connects from 127.0.0.1: that must not open the admin API.
    for path in ["/calls", "/calls/history", "/metrics", "/capacity"] {
        let resp = awc::Client::default()
            .get(format!("{}{path}", h.gw.http_url))
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status().as_u16(), 404, "{path} on the carrier listener");
    }
}

#[actix_rt::test]
async fn the_carrier_allow_list_sees_the_carrier_behind_a_trusted_proxy() {
    let h = start(quiet_script(), |c| {
        with_toml(
            c,
            "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[carrier]\nallowed_ips = [\"203.0.113.7\"]\n",
        )
    })
    .await;
    let refurl = format!("{}/mcube/call", h.gw.http_url);
    let body = |id: &str| json!({"callId": id});
    let (allowed, _) = post_json(&refurl, &body("XFF-1"), &[("x-forwarded-for", "203.0.113.7")]).await;
    assert_eq!(allowed, 200, "the carrier behind the proxy is on the list");
    let (other, _) = post_json(&refurl, &body("XFF-2"), &[("x-forwarded-for", "198.51.100.9")]).await;
    assert_eq!(other, 403, "a stranger behind the proxy is not");
    let (proxy, _) = post_json(&refurl, &body("XFF-3"), &[]).await;
    assert_eq!(proxy, 403, "the proxy itself is not a carrier");
    // A client that only claims a forwarded address, from a peer that is not a trusted proxy, is not believed.
    let h2 = start(quiet_script(), |c| {
        with_toml(
            c,
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\"]\n[carrier]\nallowed_ips = [\"203.0.113.7\"]\n",
        )
    })
    .await;
    let (spoofed, _) = post_json(
        &format!("{}/mcube/call", h2.gw.http_url),
        &body("XFF-4"),
        &[("x-forwarded-for", "203.0.113.7")],
    )
    .await;
    assert_eq!(spoofed, 403);
}

// ----- a reused call id ------------------------------------------------------------------------------

async fn a_reused_call_id_gets_a_record_of_its_own(backend: Backend) {
    let (h, _db) = start_on(backend, quiet_script(), |_| {}).await;
    ordinary_call(&h, "AGAIN-1", 50).await;
    ordinary_call(&h, "AGAIN-1", 5).await;
    flush(&h).await;
    let (status, latest) = get_json(&h, "/calls/AGAIN-1").await;
    assert_eq!(status, 200);
    assert_eq!(latest["frames_in"], 5, "the latest attempt is shown: {latest}");
    let attempts = latest["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 2, "both attempts are listed: {latest}");
    let first = attempts
        .iter()
        .map(|a| a["attempt"].clone())
        .find(|a| *a != latest["attempt"])
        .expect("the other attempt");
    let (_, older) = get_json(&h, &format!("/calls/AGAIN-1?attempt={first}")).await;
    assert_eq!(older["frames_in"], 50, "the first call's record is intact: {older}");
    for rec in [&latest, &older] {
        let events = rec["events"].as_array().cloned().unwrap_or_default();
        assert!(
            events
                .iter()
                .any(|e| e["detail"].as_str().is_some_and(|d| d.starts_with("ended"))),
            "each attempt keeps its own events: {rec}"
        );
    }
}

on_both_backends!(a_reused_call_id_gets_a_record_of_its_own:
    sqlite_a_reused_call_id_gets_a_record_of_its_own, postgres_a_reused_call_id_gets_a_record_of_its_own);

async fn a_call_id_that_is_live_is_refused_as_a_duplicate(backend: Backend) {
    let (h, _db) = start_on(backend, quiet_script(), |_| {}).await;
    let conn = start_call(&h, "LIVE-1", "s", AudioFormat::ULAW_8K).await;
    // A repeated POST while the call waits for its socket is the same admission; once it is live, a second
    // call with its id is refused, and its own record says so, next to the live one.
    let again = websocket_api::tools::sim::carrier::post_refurl(&h.gw.http_url, &call("LIVE-1")).await;
    assert!(
        matches!(again, Ok(websocket_api::tools::sim::carrier::Admission::Refused { status: 409, ref error, .. }) if error == "duplicate"),
        "{again:?}"
    );
    conn.close(1000);
    assert!(active_becomes(&h, 0, Duration::from_secs(5)).await);
    flush(&h).await;
    let (_, rec) = get_json(&h, "/calls/LIVE-1").await;
    let attempts = rec["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 2, "{rec}");
    assert!(
        attempts
            .iter()
            .any(|a| a["state"] == "rejected" && a["end_reason"] == "duplicate"),
        "{rec}"
    );
    assert!(attempts.iter().any(|a| a["state"] == "ended"), "{rec}");
    let reserved = admit(&h, "WAIT-1").await;
    let repeated = admit(&h, "WAIT-1").await;
    assert_ne!(reserved, "", "admitted");
    assert_ne!(repeated, "", "a repeated POST is admitted again");
    assert_eq!(get_json(&h, "/calls").await.1["active"], 1, "one slot for both POSTs");
}

on_both_backends!(a_call_id_that_is_live_is_refused_as_a_duplicate:
    sqlite_a_call_id_that_is_live_is_refused_as_a_duplicate, postgres_a_call_id_that_is_live_is_refused_as_a_duplicate);

// ----- unauthenticated rows ------------------------------------------------------------------------

async fn a_forged_token_writes_no_row(backend: Backend) {
    let (h, _db) = start_on(backend, quiet_script(), |_| {}).await;
    let ws = h.gw.http_url.replace("http://", "ws://");
    for path in ["FORGED-1?token=forged", "NEVER-ADMITTED"] {
        match open_media_socket(&format!("{ws}/ws/mcube/{path}")).await {
            Err(refused) => assert_eq!(refused.status, Some(401), "{path}"),
            Ok(_) => panic!("{path}: upgraded"),
        }
    }
    flush(&h).await;
    assert_eq!(
        get_json(&h, "/calls/FORGED-1").await.0,
        404,
        "no row for a forged token"
    );
    assert_eq!(get_json(&h, "/calls/NEVER-ADMITTED").await.0, 404);
    assert!(
        h.gw.metrics
            .traffic
            .refused
            .with_label_values(&["unauthorized", "mcube"])
            .get()
            >= 2,
        "counted"
    );
}

on_both_backends!(a_forged_token_writes_no_row: sqlite_a_forged_token_writes_no_row, postgres_a_forged_token_writes_no_row);

// ----- a call admitted but never connected ------------------------------------------------------------

async fn an_admitted_call_that_never_connects_is_recorded(backend: Backend) {
    let (h, _db) = start_on(backend, quiet_script(), |c| c.calls.admission_deadline_ms = 300).await;
    let _wss = admit(&h, "NOSHOW-1").await;
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await, "the slot is freed");
    flush(&h).await;
    let (status, rec) = get_json(&h, "/calls/NOSHOW-1").await;
    assert_eq!(status, 200, "the admitted call is on record");
    assert_eq!(rec["state"], "expired", "{rec}");
    assert_eq!(rec["end_reason"], "carrier_never_connected", "{rec}");
    assert_eq!(rec["from"], "+914155551234");
    let (_, history) = get_json(&h, "/calls/history").await;
    assert!(
        history["calls"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["call_id"] == "NOSHOW-1")),
        "{history}"
    );
}

on_both_backends!(an_admitted_call_that_never_connects_is_recorded:
    sqlite_an_admitted_call_that_never_connects_is_recorded, postgres_an_admitted_call_that_never_connects_is_recorded);

// ----- late messages from an abandoned agent connection ---------------------------------------------

/// An agent in front of the simulator: its first connection never announces anything, and once the
/// gateway gives up on it and closes, it says late things (metadata, audio, a transcript, a tool call)
/// before it closes too; every later connection is passed through to the simulator.
async fn lingering_first_agent(sim: std::net::SocketAddr) -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    actix_rt::spawn(async move {
        let mut first = true;
        while let Ok((mut s, _)) = listener.accept().await {
            if !std::mem::take(&mut first) {
                actix_rt::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(sim).await {
                        let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                    }
                });
                continue;
            }
            actix_rt::spawn(async move {
                if !accept_ws_upgrade(&mut s).await {
                    return;
                }
                // Wait for the gateway's close (opcode 8), answering nothing before it.
                while let Some((opcode, _)) = read_client_frame(&mut s).await {
                    if opcode == 8 {
                        break;
                    }
                }
                let stale_audio = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0x2Au8; 160]);
                for text in [
                    r#"{"type":"conversation_initiation_metadata","conversation_initiation_metadata_event":{"conversation_id":"STALE-CONV","agent_output_audio_format":"ulaw_8000","user_input_audio_format":"ulaw_8000"}}"#.to_string(),
                    format!(r#"{{"type":"audio","audio_event":{{"audio_base_64":"{stale_audio}","event_id":1}}}}"#),
                    r#"{"type":"user_transcript","user_transcription_event":{"user_transcript":"STALE words"}}"#.to_string(),
                    r#"{"type":"client_tool_call","client_tool_call":{"tool_name":"stale_tool","tool_call_id":"tc_stale","parameters":{}}}"#.to_string(),
                ] {
                    if s.write_all(&server_text(&text)).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = s.write_all(&[0x88, 0x02, 0x03, 0xE8]).await;
            });
        }
    });
    addr
}

async fn nothing_from_an_abandoned_agent_connection_reaches_the_call(backend: Backend) {
    let h = start(
        AgentScript {
            transcripts: false,
            ..quiet_script()
        },
        |_| {},
    )
    .await;
    let agent = lingering_first_agent(h.sim.addr).await;
    // A second gateway (same simulator behind) whose agent URL goes through the lingering agent.
    let (h2, _db) = start_on(backend, quiet_script(), |c| {
        c.elevenlabs.url = format!("ws://{agent}/v1/convai/conversation");
        c.elevenlabs.connect_timeout_ms = 300;
        c.elevenlabs.metadata_timeout_ms = 300;
        c.elevenlabs.max_redials_per_call = 2;
    })
    .await;
    let conn = start_call(&h2, "LATE-1", "s", AudioFormat::ULAW_8K).await;
    // Caller audio while the first connection is still expected to answer: held, then owed to the agent
    // that does answer.
    for _ in 0..10 {
        conn.send_media(&[0xD5; 160]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = h.sim.log.clone();
    assert!(
        eventually(Duration::from_secs(5), || log
            .connections()
            .first()
            .is_some_and(|c| c.audio_bytes >= 10 * 160))
        .await,
        "the held caller audio reaches the agent that answered: {:?}",
        log.connections().first().map(|c| c.audio_bytes)
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    conn.close(1000);
    assert!(active_becomes(&h2, 0, Duration::from_secs(5)).await);
    flush(&h2).await;
    let (_, rec) = get_json(&h2, "/calls/LATE-1").await;
    let text = rec["events"].to_string();
    assert!(!text.contains("STALE") && !text.contains("stale_tool"), "{text}");
    assert_ne!(rec["conversation_id"], "STALE-CONV");
    assert!(
        log.connections().iter().all(|c| c.tool_results.is_empty()),
        "no answer to a tool call of an abandoned connection"
    );
    assert!(
        h2.gw.metrics.unread.agent_stale_reports.get() >= 1,
        "the late messages are counted"
    );
}

on_both_backends!(nothing_from_an_abandoned_agent_connection_reaches_the_call:
    sqlite_nothing_from_an_abandoned_agent_connection_reaches_the_call,
    postgres_nothing_from_an_abandoned_agent_connection_reaches_the_call);

// ----- the spool ---------------------------------------------------------------------------------------

#[test]
fn a_torn_spool_line_costs_that_line_only() {
    use std::io::Write as _;
    use websocket_api::db::models::DbWrite;
    use websocket_api::db::spool::Spool;
    let dir = scratch_dir("torn");
    let path = dir.join("spool.jsonl");
    let status = |id: &str| -> DbWrite {
        serde_json::from_value(
            json!({"kind": "status", "data": {"call_id": id, "dial_status": "ANSWER",
            "recording_url": null, "at_ms": 1}}),
        )
        .expect("a status write")
    };
    let mut spool = Spool::open(&path, 1 << 20);
    spool.append(&[status("A"), status("B")]).expect("append");
    // A crash in the middle of an append leaves half a line.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(b"{\"kind\":\"sta"))
        .expect("tear");
    let mut spool = Spool::open(&path, 1 << 20);
    spool.append(&[status("C")]).expect("append after the tear");
    let (writes, skipped) = spool.read_all().expect("read");
    assert_eq!(
        writes,
        vec![status("A"), status("B"), status("C")],
        "C survives the torn line before it"
    );
    assert_eq!(skipped, 1, "the torn line is counted");
}

fn a_long_spool_is_replayed_after_the_gateway_is_ready(backend: Backend) {
    let dir = scratch_dir("replay");
    let test_db = TestDb::new(backend, &dir);
    let spool = dir.join("spool.jsonl");
    let n = 3000;
    let lines: String = (0..n)
        .map(|i| {
            format!("{{\"kind\":\"status\",\"data\":{{\"call_id\":\"SP-{i}\",\"dial_status\":\"ANSWER\",\"recording_url\":null,\"at_ms\":{i}}}}}\n")
        })
        .collect();
    std::fs::write(&spool, lines).expect("spool");
    let db = test_db.url.clone();
    let spool_path = spool.display().to_string();
    let gw = crate::common::process::serve(
        &dir,
        &[
            ("WSAPI__DATABASE__URL", &db),
            ("WSAPI__DATABASE__SPOOL_PATH", &spool_path),
            ("WSAPI__ELEVENLABS__URL", "ws://127.0.0.1:9/v1/convai/conversation"),
        ],
    );
    assert!(
        !gw.early_log.iter().any(|l| l.contains("replayed")),
        "the spool was replayed before the gateway was ready:\n{}",
        gw.early_log.join("\n")
    );
    let mut stored = false;
    for _ in 0..300 {
        if !spool.exists() {
            stored = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(stored, "the spool was replayed and emptied");
    for i in [0, n / 2, n - 1] {
        assert!(
            test_db.get_call(&format!("SP-{i}")).is_some(),
            "{backend:?}: SP-{i} stored"
        );
    }
}

#[test]
fn sqlite_a_long_spool_is_replayed_after_the_gateway_is_ready() {
    a_long_spool_is_replayed_after_the_gateway_is_ready(Backend::Sqlite);
}

#[test]
fn postgres_a_long_spool_is_replayed_after_the_gateway_is_ready() {
    a_long_spool_is_replayed_after_the_gateway_is_ready(Backend::Postgres);
}

// ----- secrets and personal data at rest --------------------------------------------------------------

#[test]
fn check_config_redacts_credentials_inside_urls() {
    let dir = scratch_dir("redact");
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_websocket_api"))
        .arg("check-config")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WSAPI_CONFIG", &empty)
        .env("WSAPI__SERVER__LISTEN", "127.0.0.1:7900")
        .env("WSAPI__ELEVENLABS__AGENT_ID", "agent_x")
        .env("WSAPI__ELEVENLABS__AUTH", "none")
        .env(
            "WSAPI__DATABASE__URL",
            "postgres://gateway:hunter2@db.example:5432/calls",
        )
        .env(
            "WSAPI__ELEVENLABS__URL",
            "wss://user:pa55word@el.example/v1/convai/conversation?token=t0ps3cret",
        )
        .output()
        .expect("check-config runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}{}", String::from_utf8_lossy(&out.stderr));
    for secret in ["hunter2", "pa55word", "t0ps3cret"] {
        assert!(!shown.contains(secret), "{secret} printed:\n{shown}");
    }
    assert!(
        shown.contains("db.example:5432/calls"),
        "the rest of the URL is shown:\n{shown}"
    );
}

#[test]
fn records_are_not_readable_by_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch_dir("modes");
    let data = dir.join("data");
    let db = format!("sqlite://{}", data.join("calls.db").display());
    let spool = data.join("spool").display().to_string();
    let _gw = crate::common::process::serve(
        &dir,
        &[
            ("WSAPI__DATABASE__URL", &db),
            ("WSAPI__DATABASE__SPOOL_PATH", &spool),
            ("WSAPI__ELEVENLABS__URL", "ws://127.0.0.1:9/v1/convai/conversation"),
        ],
    );
    let file = data.join("calls.db");
    for _ in 0..50 {
        if file.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for path in [&data, &file] {
        let mode = std::fs::metadata(path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o077,
            0,
            "{} is mode {mode:o}: phone numbers and transcripts for anyone",
            path.display()
        );
    }
}
