//! The rest of the ElevenLabs protocol on purpose: MCP tool calls awaiting approval get the configured
//! answer at once, the schema's messages a phone gateway has no use for are not counted as unknown, and an
//! outbound call's numbers reach the agent the right way round.

use crate::common::*;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::config::McpApproval;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{post_refurl, Admission, CallRequest, CarrierConn};

async fn mcp_answer(approval: McpApproval) -> (Harness, CarrierConn, (String, bool)) {
    let script = AgentScript {
        mcp_approval_after_ms: 200,
        ..quiet_script()
    };
    let h = start(script, |c| c.elevenlabs.mcp_approval = approval).await;
    let conn = start_call(&h, "MCP-1", "s", AudioFormat::ULAW_8K).await;
    let answered = eventually(Duration::from_secs(3), || {
        h.sim
            .log
            .connections()
            .first()
            .is_some_and(|c| !c.mcp_approvals.is_empty())
    })
    .await;
    assert!(answered, "the approval request was answered");
    let answer = h.sim.log.connections()[0].mcp_approvals[0].clone();
    (h, conn, answer)
}

#[actix_rt::test]
async fn an_mcp_tool_call_awaiting_approval_is_denied_by_default() {
    let (h, _conn, (tool_call_id, approved)) = mcp_answer(McpApproval::Deny).await;
    assert!(tool_call_id.starts_with("mcp_"), "the request's own id: {tool_call_id}");
    assert!(!approved);
    let view = call_view(&h, "MCP-1").await.expect("live");
    assert_eq!(view["state"], "active", "the call goes on");
    assert_eq!(
        h.gw.metrics.upstream.mcp_approvals.with_label_values(&["denied"]).get(),
        1
    );
}

#[actix_rt::test]
async fn an_mcp_tool_call_is_approved_when_configured() {
    let (h, _conn, (_, approved)) = mcp_answer(McpApproval::Allow).await;
    assert!(approved);
    assert_eq!(
        h.gw.metrics
            .upstream
            .mcp_approvals
            .with_label_values(&["allowed"])
            .get(),
        1
    );
}

#[actix_rt::test]
async fn an_outbound_call_gives_the_agent_the_customer_as_caller_number() {
    let h = start(quiet_script(), |_| {}).await;
    // Outbound, Mcube's fromNumber is our line (the executive's number) and toNumber the customer.
    let request = CallRequest {
        direction: "outbound".into(),
        from: "+918001234567".into(),
        to: "+919812345678".into(),
        ..CallRequest::inbound("OUT-1")
    };
    let Ok(Admission::Admitted { wss_url }) = post_refurl(&h.gw.http_url, &request).await else {
        panic!("not admitted")
    };
    let conn = CarrierConn::connect(&wss_url, true).await.expect("socket");
    conn.send_start("OUT-1", "s", AudioFormat::ULAW_8K);
    assert!(
        eventually(Duration::from_secs(3), || h
            .sim
            .log
            .connections()
            .first()
            .is_some_and(|c| c.initiation.is_some()))
        .await
    );
    let init = h.sim.log.connections()[0].initiation.clone().expect("initiation");
    let vars = &init.dynamic_variables;
    assert_eq!(vars["caller_number"], "+919812345678", "the customer");
    assert_eq!(vars["called_number"], "+918001234567", "our line");
    assert_eq!(vars["direction"], "outbound");
    let (_, inbound) = {
        let _c = start_call(&h, "IN-1", "s", AudioFormat::ULAW_8K).await;
        assert!(eventually(Duration::from_secs(3), || h.sim.log.connection_count() == 2).await);
        assert!(
            eventually(Duration::from_secs(3), || h.sim.log.connections()[1]
                .initiation
                .is_some())
            .await
        );
        ((), h.sim.log.connections()[1].initiation.clone().expect("initiation"))
    };
    assert_eq!(
        inbound.dynamic_variables["caller_number"], "+914155551234",
        "inbound: fromNumber is the customer"
    );
    assert_eq!(inbound.dynamic_variables["called_number"], "+918001234567");
}
