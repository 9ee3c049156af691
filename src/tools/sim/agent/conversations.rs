//! ElevenLabs' conversation details (`GET /v1/convai/conversations/{id}`) for the conversations the
//! simulator held: what the gateway's reconciler fetches when no post-call webhook came. A conversation
//! still open is `in-progress`; an ended one is `done`, with an analysis and a transcript made from what
//! the simulator saw.

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
        Some(c) => HttpResponse::Ok().json(of(&id, &c)),
        None => HttpResponse::NotFound().json(json!({"detail": "conversation not found"})),
    }
}

/// The details of one conversation, in ElevenLabs' shape.
pub fn of(id: &str, c: &ConnectionLog) -> Value {
    let over = c.ended || c.client_close.is_some();
    // The caller's audio it received, as μ-law 8 kHz would be (what the simulator is usually given).
    let secs = c.audio_bytes / 8000;
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
