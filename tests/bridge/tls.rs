//! The production path is TLS: the signed URL fetched over HTTPS, then `wss://` over HTTP/1.1, against the
//! agent simulator serving a certificate from a CA made here, trusted through `elevenlabs.ca_file`. A
//! certificate from another CA, for another host, or expired is refused with a clear reason on the
//! record, and counts toward the upstream breaker.

use crate::common::ca::TestCa;
use crate::common::*;
use std::path::Path;
use websocket_api::audio::format::AudioFormat;
use websocket_api::config::{Config, ElevenLabsAuth};
use websocket_api::tools::sim::agent::{self, AgentScript, TlsFiles};

const KEY: &str = "sk_tls_test";

/// The gateway, trusting a CA made here (`ca_file`), in front of the simulator serving what `served`
/// makes (given that CA) over TLS, with signed URLs on.
async fn behind_tls(served: &impl Fn(&TestCa, &Path) -> TlsFiles, tweak: impl FnOnce(&mut Config)) -> Harness {
    let dir = scratch_dir("tls");
    let ca = TestCa::new("websocket_api test CA");
    let files = served(&ca, &dir);
    let (sim, server) = agent::start_tls("127.0.0.1:0", script(), &files).expect("TLS simulator starts");
    actix_rt::spawn(server);
    assert!(sim.url.starts_with("wss://localhost:") && sim.signed_url_endpoint.starts_with("https://localhost:"));
    let ca_file = ca.write(&dir);
    start_with_agent(sim, move |c| {
        c.elevenlabs.auth = ElevenLabsAuth::SignedUrl;
        c.elevenlabs.api_key = Some(KEY.into());
        c.elevenlabs.ca_file = Some(ca_file);
        let mut problems = Vec::new();
        c.read_files(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        tweak(c);
    })
    .await
}

fn script() -> AgentScript {
    AgentScript {
        echo: true,
        require_api_key: Some(KEY.into()),
        ..quiet_script()
    }
}

#[actix_rt::test]
async fn a_call_bridges_over_https_and_wss_with_a_private_ca() {
    let h = behind_tls(
        &|ca: &TestCa, dir: &Path| ca.issue(dir, "localhost", (2099, 1, 1)),
        |_| {},
    )
    .await;
    let mut conn = start_call(&h, "TLS-OK", "s", AudioFormat::ULAW_8K).await;
    conn.send_media(&[0x55; 160]);
    let heard = listen(&mut conn, std::time::Duration::from_millis(800)).await;
    assert!(audio_of(&heard).contains(&0x55), "the echo came back over wss://");
    let conns = h.sim.log.connections();
    assert_eq!(conns.len(), 1);
    assert!(
        conns[0].query.contains("conversation_signature="),
        "dialled the signed URL: {}",
        conns[0].query
    );
    assert_eq!(call_view(&h, "TLS-OK").await.expect("live")["state"], "active");
}

/// A call against a simulator whose certificate the gateway must refuse, at the signed-URL request and,
/// with the key in a header instead, at the `wss://` dial: each time the call ends, the record says why in
/// `reason`'s words, and the breaker (threshold 1 here) opens.
async fn refused_certificate(served: impl Fn(&TestCa, &Path) -> TlsFiles, id: &str, reason: &str) {
    for (auth, step) in [
        (ElevenLabsAuth::SignedUrl, "signed URL request failed"),
        (ElevenLabsAuth::Header, "connect failed"),
    ] {
        let h = behind_tls(&served, |c| {
            c.elevenlabs.auth = auth;
            c.elevenlabs.max_redials_per_call = 0;
            c.elevenlabs.breaker_failures = 1;
        })
        .await;
        refused_call(&h, id, &format!("{step}: {reason}")).await;
    }
}

async fn refused_call(h: &Harness, id: &str, reason: &str) {
    let _conn = start_call(h, id, "s", AudioFormat::ULAW_8K).await;
    assert_eq!(end_reason(h, id).await, "elevenlabs_unavailable");
    let (_, record) = get_json(h, &format!("/calls/{id}")).await;
    let error = record["error_detail"].as_str().unwrap_or_default();
    assert!(error.contains(reason), "a clear reason ({reason}): {error}");
    assert_eq!(h.sim.log.connection_count(), 0, "no conversation");
    assert_eq!(
        h.gw.metrics.upstream.breaker_opened.get(),
        1,
        "counted toward the breaker"
    );
}

#[actix_rt::test]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    refused_certificate(
        |_, dir| TestCa::new("someone else's CA").issue(dir, "localhost", (2099, 1, 1)),
        "TLS-UNTRUSTED",
        "TLS: the certificate is not trusted",
    )
    .await;
}

#[actix_rt::test]
async fn a_certificate_for_another_host_is_refused() {
    refused_certificate(
        |ca, dir| ca.issue(dir, "elsewhere.example", (2099, 1, 1)),
        "TLS-WRONG-HOST",
        "TLS: the certificate does not name this host",
    )
    .await;
}

#[actix_rt::test]
async fn an_expired_certificate_is_refused() {
    refused_certificate(
        |ca, dir| ca.issue(dir, "localhost", (2021, 1, 1)),
        "TLS-EXPIRED",
        "TLS: the certificate has expired",
    )
    .await;
}
