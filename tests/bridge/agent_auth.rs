//! The three ways of reaching an agent: the `xi-api-key` header on the upgrade, a signed URL fetched with the
//! key, or none; a wrong key means no conversation and the carrier is told to hang up.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::config::ElevenLabsAuth;
use websocket_api::tools::sim::agent::AgentScript;

fn keyed() -> AgentScript {
    AgentScript {
        require_api_key: Some("sk_test_key".into()),
        greeting_ms: 200,
        ..quiet_script()
    }
}

async fn greeting_heard(h: &Harness, id: &str) -> usize {
    let mut conn = start_call(h, id, "s", AudioFormat::ULAW_8K).await;
    audio_of(&listen(&mut conn, Duration::from_millis(1200)).await).len()
}

#[actix_rt::test]
async fn header_auth_sends_the_key_on_the_upgrade() {
    let h = start(keyed(), |c| {
        c.elevenlabs.auth = ElevenLabsAuth::Header;
        c.elevenlabs.api_key = Some("sk_test_key".into());
    })
    .await;
    assert_eq!(greeting_heard(&h, "AUTH-H").await, 1600);
    let conn = &h.sim.log.connections()[0];
    assert_eq!(conn.api_key.as_deref(), Some("sk_test_key"));
    assert!(conn.query.contains("agent_id=agent_test"), "{}", conn.query);
}

#[actix_rt::test]
async fn signed_url_auth_fetches_a_signed_url_first() {
    let h = start(keyed(), |c| {
        c.elevenlabs.auth = ElevenLabsAuth::SignedUrl;
        c.elevenlabs.api_key = Some("sk_test_key".into());
    })
    .await;
    assert_eq!(greeting_heard(&h, "AUTH-S").await, 1600);
    let conn = &h.sim.log.connections()[0];
    assert_eq!(conn.api_key, None, "the key is not sent on the signed upgrade");
    assert!(conn.query.contains("conversation_signature="), "{}", conn.query);
}

#[actix_rt::test]
async fn a_wrong_key_ends_the_call() {
    let h = start(keyed(), |c| {
        c.elevenlabs.auth = ElevenLabsAuth::Header;
        c.elevenlabs.api_key = Some("sk_wrong".into());
        c.elevenlabs.max_redials_per_call = 1;
    })
    .await;
    let mut conn = start_call(&h, "AUTH-X", "s", AudioFormat::ULAW_8K).await;
    let heard = listen(&mut conn, Duration::from_secs(5)).await;
    assert!(
        heard.contains(&websocket_api::tools::sim::carrier::Heard::Terminate),
        "{heard:?}"
    );
    assert_eq!(h.sim.log.connection_count(), 0);
    assert_eq!(h.sim.log.upgrades_refused(), 2);
}
