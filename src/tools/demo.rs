//! `websocket_api demo`: the whole system on one machine with nothing configured — the gateway, the agent
//! simulator, and simulated calls from a carrier (Mcube unless told) through its real webhook + WebSocket
//! path, in its own dialect — printing what happened.

use crate::carriers::Carrier;
use crate::config::{Config, ElevenLabsAuth};
use crate::db::batcher::FlushAll;
use crate::gateway::{self, Gateway};
use crate::tools::sim::agent::{self, AgentScript};
use crate::tools::sim::carrier::CallRequest;
use crate::tools::sim::stream::{frame_ms, run_call, CallReport};
use futures_util::future::join_all;
use std::time::Duration;

/// The media messages the simulated carriers send, unless theirs are longer (Exotel's 100 ms).
const FRAME_MS: u64 = 20;

/// The demo's outcome: every call bridged both ways, or not.
pub struct DemoOutcome {
    pub reports: Vec<CallReport>,
    pub ok: bool,
}

fn demo_script() -> AgentScript {
    AgentScript {
        // ElevenLabs' default formats, so the demo shows the transcoding path too.
        input_format: "pcm_16000".into(),
        output_format: "pcm_16000".into(),
        greeting_ms: 1500,
        // The caller pauses after 2 s of speech (`sim::stream`); the agent answers 350 ms into the pause,
        // a quick real agent's turn, which the gateway then measures as the caller hears it.
        reply_after_user_ms: 0,
        answer_after_silence_ms: 350,
        reply_ms: 700,
        ping_interval_ms: 1000,
        interrupt_after_ms: 1000,
        transcripts: true,
        ..AgentScript::default()
    }
}

/// The embedded default the demo records to (relative to the working directory).
const DEFAULT_DB: &str = "sqlite://data/websocket_api.db";

/// `base` (the defaults, or the file `--config` named) with what the demo needs: loopback listeners, the
/// simulator as the agent, the embedded database, carriers that present no credentials.
fn demo_config(base: Config, agent_url: &str, calls: usize) -> Config {
    let mut cfg = base;
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.admin.listen = "127.0.0.1:0".into();
    cfg.server.public_url = String::new();
    cfg.server.workers = 2;
    cfg.calls.max_concurrent_calls = calls.max(1);
    cfg.elevenlabs.url = agent_url.into();
    cfg.elevenlabs.agent_id = Some("demo-agent".into());
    cfg.elevenlabs.auth = ElevenLabsAuth::None;
    cfg.database.url = DEFAULT_DB.into();
    // Its simulated carriers present no credentials: the file's carrier access is not the demo's.
    cfg.carrier.static_token = None;
    cfg.carrier.allowed_ips.clear();
    cfg.carriers.clear_secrets();
    // The simulator signs each conversation's post-call webhook with it, as ElevenLabs would.
    cfg.elevenlabs.webhook_secret = Some(DEMO_WEBHOOK_SECRET.into());
    cfg
}

/// The post-call webhook's secret between the demo's simulator and its gateway.
const DEMO_WEBHOOK_SECRET: &str = "demo-webhook-secret";

/// Why the demo could not run at all (a call that fails is in its outcome instead).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("agent simulator: {0}")]
    Simulator(std::io::Error),
    #[error("gateway: {0}")]
    Gateway(std::io::Error),
}

/// Runs the demo: `calls` concurrent calls of `seconds` each.
pub async fn run(base: Config, calls: usize, seconds: f64, carrier: Carrier) -> Result<DemoOutcome, DemoError> {
    let (sim, sim_server) = agent::start("127.0.0.1:0", demo_script()).map_err(DemoError::Simulator)?;
    actix_rt::spawn(sim_server);
    let (gw, gw_server) = gateway::start(demo_config(base, &sim.url, calls), false)
        .await
        .map_err(DemoError::Gateway)?;
    actix_rt::spawn(gw_server);
    sim.log
        .deliver_to(&format!("{}/elevenlabs/post-call", gw.http_url), DEMO_WEBHOOK_SECRET);
    print_banner(&gw, &sim, carrier, calls, seconds);

    let run = std::process::id();
    let placed = (0..calls).map(|i| {
        let base = gw.http_url.clone();
        let id = format!("DEMO-{run}-{:03}", i + 1);
        async move {
            run_call(
                &base,
                carrier,
                CallRequest::inbound(&id),
                seconds,
                FRAME_MS,
                i as u64 + 1,
            )
            .await
        }
    });
    let snapshot = async {
        tokio::time::sleep(Duration::from_secs_f64((seconds / 2.0).max(0.5))).await;
        print_calls_snapshot(&gw).await;
    };
    let (reports, ()) = futures_util::future::join(join_all(placed), snapshot).await;

    print_reports(&reports);
    let chunks = print_agent_side(&sim).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    print_calls_snapshot(&gw).await;
    // The simulator's post-call webhooks go out as its conversations end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = gw.db.send(FlushAll).await;
    let stats = &gw.db_stats;
    println!(
        "records: {} write(s) stored in {} ({} spooled, {} lost)",
        stats.written.get(),
        DEFAULT_DB,
        stats.spooled.get(),
        stats.lost.get()
    );
    print_history(&gw, calls).await;
    let ok = !reports.is_empty()
        && reports
            .iter()
            .all(|r| r.admitted && r.frames_sent > 0 && r.frames_heard > 0)
        && chunks > 0;
    println!(
        "\n{}",
        if ok {
            "demo OK: every call bridged both ways"
        } else {
            "demo FAILED: a call was not bridged both ways"
        }
    );
    gw.stop().await;
    sim.server.stop(false).await;
    Ok(DemoOutcome { reports, ok })
}

fn print_banner(gw: &Gateway, sim: &agent::AgentSimulator, carrier: Carrier, calls: usize, seconds: f64) {
    let (method, webhook) = carrier.webhook();
    println!(
        "gateway        {} ({} webhook {method} {}{webhook}; admin API {})",
        gw.addr,
        carrier.as_str(),
        gw.http_url,
        gw.admin_url
    );
    println!(
        "agent sim      {} (formats pcm_16000 in/out: the gateway transcodes to/from 8 kHz μ-law)",
        sim.url
    );
    let frames = format!("{} ms frames in its own codec", frame_ms(carrier, FRAME_MS));
    println!(
        "placing {calls} simulated {} call(s) of {seconds:.1} s each, {frames} at real time, through its own webhook\n",
        carrier.as_str()
    );
}

fn print_reports(reports: &[CallReport]) {
    println!(
        "\n{:<16} {:>9} {:>12} {:>11} {:>8} {:>11} {:>9}",
        "call", "admitted", "frames→gw", "frames←gw", "clears", "terminated", "setup_ms"
    );
    for r in reports {
        println!(
            "{:<16} {:>9} {:>12} {:>11} {:>8} {:>11} {:>9}",
            r.call_id,
            if r.admitted { "yes" } else { "no" },
            r.frames_sent,
            r.frames_heard,
            r.clears,
            r.terminated,
            r.setup_ms.map_or("-".into(), |m| m.to_string())
        );
        if let Some(e) = r.error.as_ref().or(r.refused.as_ref()) {
            println!("           problem: {e}");
        }
    }
}

/// What the agent side received; waits first for every conversation's close (the agent reads each one to
/// its end on its own thread). Returns the caller audio chunks it received.
async fn print_agent_side(sim: &agent::AgentSimulator) -> u64 {
    for _ in 0..40 {
        if sim
            .log
            .connections()
            .iter()
            .all(|c| c.client_close.is_some() || c.ended)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let conns = sim.log.connections();
    let chunks: u64 = conns.iter().map(|c| c.audio_chunks).sum();
    let pongs: usize = conns.iter().map(|c| c.pongs.len()).sum();
    let pings: usize = conns.iter().map(|c| c.pings_sent.len()).sum();
    println!(
        "\nagent side: {} conversation(s), {chunks} caller audio chunks received, {pongs}/{pings} pings answered",
        conns.len()
    );
    chunks
}

async fn print_history(gw: &Gateway, n: usize) {
    let url = format!("{}/calls/history?limit={n}", gw.admin_url);
    let Ok(mut resp) = awc::Client::default().get(url).send().await else {
        return;
    };
    let Ok(v) = resp.json::<serde_json::Value>().limit(1 << 20).await else {
        return;
    };
    println!("GET /calls/history → {} most recent", n);
    for c in v["calls"].as_array().into_iter().flatten() {
        println!(
            "  {} state={} end_reason={} duration_ms={} frames_in={} frames_out={} interruptions={}",
            c["call_id"].as_str().unwrap_or("?"),
            c["state"].as_str().unwrap_or("?"),
            c["end_reason"].as_str().unwrap_or("-"),
            c["duration_ms"],
            c["frames_in"],
            c["frames_out"],
            c["interruptions"]
        );
        println!(
            "      turns={} turn latency p50={} p95={} ms (caller silent → answer heard; ElevenLabs' share p50={} ms)",
            c["turns"], c["turn_p50_ms"], c["turn_p95_ms"], c["turn_elevenlabs_p50_ms"]
        );
        let outcome = &c["outcome"];
        println!(
            "      ElevenLabs' verdict: {} cost={} summary: {}",
            outcome["call_successful"].as_str().unwrap_or("(none yet)"),
            outcome["cost"],
            outcome["summary"].as_str().unwrap_or("-")
        );
    }
}

async fn print_calls_snapshot(gw: &Gateway) {
    let client = awc::Client::default();
    match client.get(format!("{}/calls", gw.admin_url)).send().await {
        Ok(mut resp) => match resp.json::<serde_json::Value>().await {
            Ok(v) => {
                println!(
                    "GET /calls → active {} of {} (available {})",
                    v["active"], v["max_concurrent_calls"], v["available"]
                );
                for c in v["calls"].as_array().into_iter().flatten() {
                    println!(
                        "  {} state={} in={} out={} interruptions={} conversation={} agent_said={}",
                        c["call_id"].as_str().unwrap_or("?"),
                        c["state"].as_str().unwrap_or("?"),
                        c["frames_in"],
                        c["frames_out"],
                        c["interruptions"],
                        c["conversation_id"].as_str().unwrap_or("-"),
                        c["last_agent_response"].as_str().unwrap_or("-")
                    );
                }
            }
            Err(e) => println!("GET /calls unreadable: {e}"),
        },
        Err(e) => println!("GET /calls failed: {e}"),
    }
}
