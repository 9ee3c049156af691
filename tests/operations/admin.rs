//! The admin API (interface.md §4) on its own listener: bearer-token auth on every admin endpoint (on both
//! listeners once a token is set), the cap changed at run time with live calls, a call hung up by an admin,
//! `/capacity` and `/metrics` matching what happened, `/readyz` following the cap and the drain.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::db::batcher::FlushAll;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{post_refurl, Admission, Heard};

async fn request(h: &Harness, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    request_to(&h.gw.admin_url, method, path, token, body).await
}

async fn request_to(base: &str, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let client = awc::Client::default();
    let url = format!("{base}{path}");
    let mut req = match method {
        "PUT" => client.put(url),
        "POST" => client.post(url),
        "DELETE" => client.delete(url),
        _ => client.get(url),
    };
    if let Some(t) = token {
        req = req.insert_header(("authorization", format!("Bearer {t}")));
    }
    let mut resp = match body {
        Some(b) => {
            req.insert_header(("content-type", "application/json"))
                .send_body(b.to_string())
                .await
        }
        None => req.send().await,
    }
    .expect("answers");
    let status = resp.status().as_u16();
    let body = resp
        .body()
        .limit(4 << 20)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    (status, body)
}

#[actix_rt::test]
async fn every_admin_endpoint_needs_the_token_when_one_is_set() {
    let h = start(quiet_script(), |c| c.admin.token = Some("s3cret-token".into())).await;
    // What each endpoint answers with the token, when no call is live.
    let endpoints = [
        ("GET", "/calls", None, 200),
        ("GET", "/calls/history", None, 200),
        ("GET", "/calls/history.csv", None, 200),
        ("GET", "/calls/SOME-CALL", None, 404),
        ("DELETE", "/calls/SOME-CALL", None, 404),
        ("PUT", "/calls/limit", Some(r#"{"max_concurrent_calls": 5}"#), 200),
        ("GET", "/capacity", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/fleet", None, 404),
        ("POST", "/calls/events/ticket", None, 200),
        ("POST", "/calls/SOME-CALL/listen/ticket", None, 200),
        ("GET", "/calls/SOME-CALL/listen", None, 404),
    ];
    // With a token, both listeners serve the admin API, behind it.
    for base in [&h.gw.admin_url, &h.gw.http_url] {
        for (method, path, body, with_token) in endpoints {
            let answer = |token| request_to(base, method, path, token, body);
            assert_eq!(answer(None).await.0, 401, "{base} {method} {path} without a token");
            assert_eq!(
                answer(Some("wrong")).await.0,
                401,
                "{base} {method} {path} with a wrong token"
            );
            let (status, text) = answer(Some("s3cret-token")).await;
            assert_eq!(status, with_token, "{base} {method} {path} with the token: {text}");
        }
        // Probes stay open.
        assert_eq!(request_to(base, "GET", "/healthz", None, None).await.0, 200);
        assert_eq!(request_to(base, "GET", "/readyz", None, None).await.0, 200);
    }
    let (_, capacity) = request(&h, "GET", "/capacity", Some("s3cret-token"), None).await;
    let capacity: serde_json::Value = serde_json::from_str(&capacity).expect("JSON");
    assert_eq!(capacity["current_cap"], 5, "the cap just set: {capacity}");
    assert!(capacity["maximum"].as_u64().is_some_and(|m| m > 0), "{capacity}");
    assert!(
        capacity["recommended"].as_u64() <= capacity["maximum"].as_u64(),
        "{capacity}"
    );
    assert!(
        capacity["bottleneck"].as_str().is_some_and(|b| !b.is_empty()),
        "{capacity}"
    );
    assert!(
        capacity["limits"]["nofile_soft"].as_u64().is_some_and(|n| n > 0),
        "{capacity}"
    );
}

#[actix_rt::test]
async fn without_a_token_the_admin_api_is_on_its_own_listener_only() {
    let h = start(quiet_script(), |_| {}).await;
    for path in [
        "/calls",
        "/calls/history",
        "/calls/history.csv",
        "/capacity",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        assert_eq!(
            request(&h, "GET", path, None, None).await.0,
            200,
            "{path} on the admin listener"
        );
    }
    for path in [
        "/calls",
        "/calls/history",
        "/calls/history.csv",
        "/capacity",
        "/metrics",
    ] {
        assert_eq!(
            request_to(&h.gw.http_url, "GET", path, None, None).await.0,
            404,
            "{path} on the carrier listener"
        );
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            request_to(&h.gw.http_url, "GET", path, None, None).await.0,
            200,
            "{path}: probes"
        );
    }
    // An admin's path is validated like a carrier's: a call id out of bounds is a 400, not a lookup.
    assert_eq!(request(&h, "GET", "/calls/a%00b", None, None).await.0, 400);
}

#[actix_rt::test]
async fn the_cap_changes_at_run_time_and_admission_follows() {
    let h = start(quiet_script(), |c| c.calls.max_concurrent_calls = 3).await;
    let a = start_call(&h, "LIM-A", "a", AudioFormat::ULAW_8K).await;
    let b = start_call(&h, "LIM-B", "b", AudioFormat::ULAW_8K).await;
    assert_eq!(request(&h, "GET", "/readyz", None, None).await.0, 200);

    let (status, body) = request(&h, "PUT", "/calls/limit", None, Some(r#"{"max_concurrent_calls": 1}"#)).await;
    assert_eq!(status, 200, "{body}");
    let (_, calls) = get_json(&h, "/calls").await;
    assert_eq!(calls["max_concurrent_calls"], 1);
    assert_eq!(calls["active"], 2, "live calls untouched by a lower cap");
    assert!(matches!(
        post_refurl(&h.gw.http_url, &call("LIM-C")).await,
        Ok(Admission::Refused { status: 503, ref error, .. }) if error == "capacity"
    ));
    assert_eq!(
        request(&h, "GET", "/readyz", None, None).await.0,
        503,
        "not ready at (or over) the cap"
    );

    assert_eq!(
        request(&h, "PUT", "/calls/limit", None, Some(r#"{"max_concurrent_calls": 5}"#))
            .await
            .0,
        200
    );
    assert!(matches!(
        post_refurl(&h.gw.http_url, &call("LIM-D")).await,
        Ok(Admission::Admitted { .. })
    ));
    assert_eq!(request(&h, "GET", "/readyz", None, None).await.0, 200);
    assert_eq!(
        request(&h, "PUT", "/calls/limit", None, Some(r#"{"max_concurrent_calls": 0}"#))
            .await
            .0,
        400
    );
    assert_eq!(request(&h, "PUT", "/calls/limit", None, Some("nonsense")).await.0, 400);
    drop((a, b));
}

#[actix_rt::test]
async fn an_admin_hangs_a_call_up_cleanly() {
    let h = start(
        AgentScript {
            greeting_ms: 200,
            ..quiet_script()
        },
        |_| {},
    )
    .await;
    let mut conn = start_call(&h, "DEL-1", "s", AudioFormat::ULAW_8K).await;
    let _ = listen(&mut conn, Duration::from_millis(500)).await;
    let (status, _) = request(&h, "DELETE", "/calls/DEL-1", None, None).await;
    assert_eq!(status, 202);
    let heard = listen(&mut conn, Duration::from_secs(3)).await;
    let t = heard
        .iter()
        .position(|x| *x == Heard::Terminate)
        .expect("terminate sent to the carrier");
    assert_eq!(heard.get(t + 1), Some(&Heard::Closed(Some(1000))));
    let log = h.sim.log.clone();
    assert!(
        eventually(Duration::from_secs(3), || log.connections()[0].client_close
            == Some(1000))
        .await
    );
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await);
    let _ = h.gw.db.send(FlushAll).await;
    let (_, stored) = get_json(&h, "/calls/DEL-1").await;
    assert_eq!(stored["state"], "ended");
    assert_eq!(stored["end_reason"], "admin");
    assert_eq!(
        request(&h, "DELETE", "/calls/DEL-1", None, None).await.0,
        404,
        "no longer live"
    );
}

#[actix_rt::test]
async fn metrics_parse_and_count_what_happened() {
    let h = start(
        AgentScript {
            greeting_ms: 200,
            ..quiet_script()
        },
        |c| c.calls.max_concurrent_calls = 1,
    )
    .await;
    let mut conn = start_call(&h, "MET-1", "s", AudioFormat::ULAW_8K).await;
    for _ in 0..15 {
        conn.send_media(&[0xFF; 160]);
    }
    let heard = listen(&mut conn, Duration::from_millis(600)).await;
    let frames_heard = heard.iter().filter(|x| matches!(x, Heard::Audio(_))).count();
    assert!(matches!(
        post_refurl(&h.gw.http_url, &call("MET-2")).await,
        Ok(Admission::Refused { .. })
    ));
    conn.close(1000);
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await);

    let (status, text) = request(&h, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text");
    let value = |name: &str, label: Option<(&str, &str)>| -> f64 {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("{name} {label:?} missing from /metrics"))
    };
    assert_eq!(value("wsapi_calls_admitted_total", Some(("carrier", "mcube"))), 1.0);
    // Traffic is counted by carrier: Plivo's calls can be told from Mcube's.
    let by_carrier = |name: &str| {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .all(|s| s.labels.get("carrier").is_some())
    };
    for name in [
        "wsapi_calls_refused_total",
        "wsapi_calls_ended_total",
        "wsapi_frames_total",
        "wsapi_audio_bytes_total",
    ] {
        assert!(by_carrier(name), "{name} has a carrier label");
    }
    assert_eq!(value("wsapi_calls_refused_total", Some(("reason", "capacity"))), 1.0);
    assert_eq!(
        value("wsapi_calls_ended_total", Some(("reason", "carrier_hangup"))),
        1.0
    );
    assert_eq!(
        value("wsapi_frames_total", Some(("direction", "carrier_to_agent"))),
        15.0
    );
    assert_eq!(
        value("wsapi_frames_total", Some(("direction", "agent_to_carrier"))),
        frames_heard as f64
    );
    assert_eq!(
        value("wsapi_audio_bytes_total", Some(("direction", "carrier_to_agent"))),
        15.0 * 160.0
    );
    assert_eq!(value("wsapi_calls_max_concurrent", None), 1.0);
    assert_eq!(value("wsapi_calls_active", None), 0.0);
    assert_eq!(
        value("wsapi_outbound_queue_bytes", None),
        0.0,
        "every queue emptied with its call"
    );
    assert_eq!(value("wsapi_db_up", None), 1.0);
    assert!(value("wsapi_process_open_fds", None) > 0.0);
    assert!(value("wsapi_process_resident_memory_bytes", None) > 0.0);
}

#[actix_rt::test]
async fn readyz_follows_the_cap_and_the_drain() {
    let h = start(quiet_script(), |c| c.calls.max_concurrent_calls = 1).await;
    assert_eq!(request(&h, "GET", "/readyz", None, None).await.0, 200);
    let conn = dial(&h, "READY-1").await;
    assert_eq!(request(&h, "GET", "/readyz", None, None).await.0, 503, "at the cap");
    conn.close(1000);
    assert!(active_becomes(&h, 0, Duration::from_secs(3)).await);
    assert_eq!(request(&h, "GET", "/readyz", None, None).await.0, 200);
    h.gw.registry.start_drain();
    let (status, body) = request(&h, "GET", "/readyz", None, None).await;
    assert_eq!(status, 503);
    assert!(body.contains("\"draining\":true"), "{body}");
    assert!(matches!(
        post_refurl(&h.gw.http_url, &call("READY-2")).await,
        Ok(Admission::Refused { status: 503, ref error, .. }) if error == "draining"
    ));
}
