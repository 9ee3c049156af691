//! A burst: 500 calls ending within one second are all recorded, once each, and a call that keeps talking
//! meanwhile hears every frame of its echo, in order. How long the longest gap between its frames was is
//! printed as a figure to read (`cargo test -- --nocapture`), not asserted: on a loaded 2-core machine any
//! gap can be the scheduler's.

use crate::common::db::{Backend, TestDb};
use crate::common::*;
use std::time::{Duration, Instant};
use websocket_api::audio::format::AudioFormat;
use websocket_api::db::batcher::FlushAll;
use websocket_api::tools::sim::agent::AgentScript;
use websocket_api::tools::sim::carrier::{CarrierConn, Heard};

const BURST: usize = 500;
const PROBE_FRAMES: usize = 200;

async fn a_burst_of_endings_is_recorded_while_a_live_call_hears_every_frame(backend: Backend) {
    let dir = scratch_dir("burst");
    let db = TestDb::new(backend, &dir);
    let url = db.url.clone();
    let h = start(
        AgentScript {
            echo: true,
            record: false,
            ..quiet_script()
        },
        |c| {
            c.database.url = url;
            c.calls.max_concurrent_calls = BURST + 10;
            c.server.workers = 2;
        },
    )
    .await;
    let mut calls: Vec<CarrierConn> = Vec::with_capacity(BURST);
    for i in 0..BURST {
        let id = format!("BURST-{i}");
        let c = start_call(&h, &id, "s", AudioFormat::ULAW_8K).await;
        calls.push(c);
    }
    assert!(
        active_becomes(&h, BURST as u64, Duration::from_secs(20)).await,
        "all {BURST} calls up"
    );

    // The probe talks for 4 s; the agent echoes it back, paced at 20 ms.
    let mut probe = start_call(&h, "PROBE", "p", AudioFormat::ULAW_8K).await;
    let frames: Vec<Vec<u8>> = (0..PROBE_FRAMES).map(|i| vec![(i % 200) as u8 + 1; 160]).collect();
    let sender = async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for f in &frames {
            tick.tick().await;
            probe.send_media(f);
        }
    };
    let burst = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let t0 = Instant::now();
        for c in &calls {
            c.close(1000);
        }
        t0.elapsed()
    };
    let (_, hang_up_took) = futures_util::future::join(sender, burst).await;
    let mut heard = Vec::new();
    while let Some((at, h)) = probe.next(Duration::from_millis(1500)).await {
        if let Heard::Audio(a) = h {
            heard.push((at, a));
        }
    }
    let echoed: Vec<u8> = heard.iter().flat_map(|(_, a)| a.iter().copied()).collect();
    assert_eq!(echoed, frames.concat(), "the probe heard every frame, in order");
    let gaps: Vec<Duration> = heard.windows(2).map(|w| w[1].0.duration_since(w[0].0)).collect();
    let max_gap = gaps.iter().max().copied().unwrap_or_default();
    // A media path that waited on the database would show a gap of the database's write time here. It is a
    // figure to read, not a bound to assert: on a loaded machine any gap can be the scheduler's.
    println!(
        "{backend:?}: probe frames {} max gap {:?} during {BURST} hang-ups (sent in {hang_up_took:?})",
        heard.len(),
        max_gap
    );

    assert!(
        active_becomes(&h, 1, Duration::from_secs(20)).await,
        "burst calls ended"
    );
    let _ = h.gw.db.send(FlushAll).await;
    let pool = db.pool();
    let mut conn = pool.get().expect("db");
    let history = websocket_api::db::history::history(&mut conn, 500, &Default::default()).expect("history");
    let ended = history
        .iter()
        .filter(|r| r.call_id.starts_with("BURST-") && r.state == "ended")
        .count();
    assert_eq!(ended, BURST, "every call of the burst recorded as ended");
    for i in [0, BURST / 2, BURST - 1] {
        let (_, events) = db.get_call(&format!("BURST-{i}")).expect("row");
        assert_eq!(events.len(), 2, "active + ended, once each");
    }
    assert_eq!(h.gw.db_stats.lost.get(), 0);
    drop(calls);
}

#[actix_rt::test]
async fn sqlite_500_endings_all_recorded_while_a_call_hears_every_frame() {
    a_burst_of_endings_is_recorded_while_a_live_call_hears_every_frame(Backend::Sqlite).await;
}

#[actix_rt::test]
async fn postgres_500_endings_all_recorded_while_a_call_hears_every_frame() {
    a_burst_of_endings_is_recorded_while_a_live_call_hears_every_frame(Backend::Postgres).await;
}
