//! ElevenLabs' conversation details (`GET /v1/convai/conversations/{id}`) for the conversations the
//! simulator held: what the gateway's reconciler fetches when no post-call webhook came, and what the
//! simulator's own signed webhook carries (`deliver`). A conversation still open is `in-progress`; an ended
//! one is `done`, with an analysis and a transcript made from what the simulator saw.

use super::script::ConnectionLog;
use super::SimState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

/// The id the simulator gives its `index`th conversation.
pub fn conversation_id(index: u32) -> String {
    format!("conv_sim_{}_{index}", std::process::id())
}

fn index_of(id: &str) -> Option<u32> {
    let rest = id.strip_prefix(&format!("conv_sim_{}_", std::process::id()))?;
    rest.parse().ok()
}

pub(super) async fn details(req: HttpRequest, path: web::Path<String>, state: web::Data<SimState>) -> HttpResponse {
    if state.script.require_api_key.is_some() && super::api_key(&req) != state.script.require_api_key {
        return HttpResponse::Unauthorized().json(json!({"detail": "invalid api key"}));
    }
    let id = path.into_inner();
    let known = index_of(&id).and_then(|i| state.log.connections().into_iter().find(|c| c.index == i));
    match known {
        Some(c) => HttpResponse::Ok().json(of(&id, &c, input_rate(&state.script))),
        None => HttpResponse::NotFound().json(json!({"detail": "conversation not found"})),
    }
}

/// Bytes a second of the caller's audio, in the format the simulator asks for.
pub fn input_rate(script: &super::AgentScript) -> u64 {
    let format = crate::audio::format::AudioFormat::from_elevenlabs(&script.input_format)
        .unwrap_or(crate::audio::format::AudioFormat::ULAW_8K);
    format.bytes_for_ms(1000) as u64
}

/// The details of one conversation, in ElevenLabs' shape (`per_second`: bytes a second of caller audio).
pub fn of(id: &str, c: &ConnectionLog, per_second: u64) -> Value {
    let over = c.ended || c.client_close.is_some();
    let secs = c.audio_bytes / per_second.max(1);
    json!({
        "agent_id": c.agent_id,
        "conversation_id": id,
        "status": if over { "done" } else { "in-progress" },
        "transcript": [
            {"role": "agent", "message": "Hello! How can I help?", "time_in_call_secs": 0,
             "conversation_turn_metrics": {"metrics": {"convai_llm_service_ttfb": {"elapsed_time": 0.35}}}},
            {"role": "user", "message": "hello, I am calling about my order", "time_in_call_secs": 2}
        ],
        "metadata": {"call_duration_secs": secs, "cost": 10 + 8 * secs, "termination_reason": "simulated", "main_language": "en"},
        "analysis": {
            "call_successful": "success",
            "transcript_summary": format!("Simulated conversation of {secs} s with agent {}.", c.agent_id),
            "call_summary_title": "Simulated call",
            "data_collection_results": {"order_id": {"value": "SIM-1"}},
            "evaluation_criteria_results": {"greeted": {"result": "success"}}
        }
    })
}

/// Waits before each try of a delivery: ElevenLabs retries one that is not answered 2xx.
const RETRIES: [std::time::Duration; 4] = [
    std::time::Duration::ZERO,
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(4),
];

/// Posts a conversation's `post_call_transcription` to `url`, signed as ElevenLabs signs it
/// (`ElevenLabs-Signature: t=<unix>,v0=<HMAC-SHA256 of "t.body">`), retried until one is answered 2xx.
pub async fn deliver(url: String, secret: String, details: Value) {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let body = json!({"type": "post_call_transcription", "event_timestamp": now(), "data": details}).to_string();
    let client = awc::Client::default();
    for wait in RETRIES {
        actix_rt::time::sleep(wait).await;
        let t = now();
        let signature = format!("t={t},v0={}", crate::http::post_call::sign(&secret, t, body.as_bytes()));
        let sent = client
            .post(&url)
            .insert_header(("ElevenLabs-Signature", signature))
            .content_type("application/json")
            .send_body(body.clone())
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            return;
        }
    }
    log::warn!(
        "simulator: the post-call webhook to {url} was not taken after {} tries",
        RETRIES.len()
    );
}
