//! TLS without a proxy, on the real binary: the carrier listener serves `https://` and `wss://` itself with
//! a certificate made here, a real TLS client places a call through it, and a renewal mid-call (new files,
//! SIGHUP) serves the new certificate to new connections while the live call goes on.

use crate::common::ca::{client_trusting, TestCa};
use crate::common::process::{serve_in_with, Served};
use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::tools::sim::agent::{AgentScript, TlsFiles};
use websocket_api::tools::sim::carrier::{CarrierConn, Heard};

/// Admits call `id` over HTTPS and opens its media socket over WSS, both with `client`.
async fn tls_call(client: &awc::Client, https: &str, id: &str) -> Result<CarrierConn, String> {
    let body = serde_json::json!({"callId": id, "callDirection": "inbound", "fromNumber": "+914155551234",
        "toNumber": "+918001234567", "dialStatus": "CONNECTING"});
    let mut resp = client
        .post(format!("{https}/mcube/call"))
        .send_json(&body)
        .await
        .map_err(|e| format!("refurl over TLS: {e}"))?;
    let admitted: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    let wss = admitted["wss_url"]
        .as_str()
        .ok_or(format!("not admitted: {admitted}"))?;
    assert!(wss.starts_with("wss://"), "the wss_url derives as wss://: {wss}");
    let (_, socket) = client
        .ws(wss)
        .connect()
        .await
        .map_err(|e| format!("media socket over TLS: {e}"))?;
    let conn = CarrierConn::over(socket, true);
    conn.send_start(id, "s", AudioFormat::ULAW_8K);
    Ok(conn)
}

/// Whether the agent's echo of a frame comes back on `conn`.
async fn echoes(conn: &mut CarrierConn, byte: u8) -> bool {
    conn.send_media(&[byte; 160]);
    audio_of(&listen(conn, Duration::from_millis(800)).await).contains(&byte)
}

fn serve_tls(dir: &std::path::Path, agent_url: &str, files: &TlsFiles) -> Served {
    let tls = [
        ("WSAPI__SERVER__TLS_CERT", files.cert.as_str()),
        ("WSAPI__SERVER__TLS_KEY", files.key.as_str()),
    ];
    serve_in_with(dir, agent_url, &tls)
}

#[actix_rt::test]
async fn the_carrier_listener_serves_tls_and_a_renewal_mid_call_drops_nothing() {
    let dir = scratch_dir("tls-listener");
    let (a_dir, b_dir) = (dir.join("a"), dir.join("b"));
    for d in [&a_dir, &b_dir] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let (ca_a, ca_b) = (TestCa::new("Old CA"), TestCa::new("Renewal CA"));
    let served = ca_a.issue_for_loopback(&dir, "gateway");
    let sim = start_agent(AgentScript {
        echo: true,
        ..quiet_script()
    });
    let mut gw = serve_tls(&dir, &sim.url, &served);
    let https = gw.http.replacen("http://", "https://", 1);
    let (ca_a_file, ca_b_file) = (ca_a.write(&a_dir), ca_b.write(&b_dir));
    let old_client = client_trusting(&ca_a_file);
    let new_client = client_trusting(&ca_b_file);

    let mut live = tls_call(&old_client, &https, "TLS-1").await.expect("a call over TLS");
    assert!(echoes(&mut live, 0x21).await, "audio flows both ways over wss://");
    assert!(
        tls_call(&new_client, &https, "TLS-X").await.is_err(),
        "a client that trusts only the renewal CA is refused before the renewal"
    );

    // The renewal: new files under the same names, then SIGHUP.
    let renewed = ca_b.issue_for_loopback(&dir, "renewed");
    std::fs::copy(&renewed.cert, &served.cert).expect("renew certificate");
    std::fs::copy(&renewed.key, &served.key).expect("renew key");
    let (reloaded, seen) = gw.signal_and_await_log("HUP", "server.tls_cert reloaded").await;
    assert!(reloaded, "the certificate was reloaded: {seen:#?}");

    let mut fresh = tls_call(&new_client, &https, "TLS-2")
        .await
        .expect("the renewed certificate is served to new connections");
    assert!(echoes(&mut fresh, 0x33).await);
    // A fresh client: the first one keeps its pooled connection, whose handshake was before the renewal.
    assert!(
        tls_call(&client_trusting(&ca_a_file), &https, "TLS-Y").await.is_err(),
        "the old certificate is no longer served"
    );
    assert!(echoes(&mut live, 0x45).await, "the call up before the renewal goes on");
    assert!(!live
        .drain(Duration::from_millis(200))
        .await
        .iter()
        .any(|(_, h)| matches!(h, Heard::Closed(_))));
    let _ = gw.wait_exit(Duration::from_millis(1));
}
