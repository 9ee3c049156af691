//! The fleet-wide cap through the balancer: a burst admits exactly the cap and every admitted call bridges
//! on the instance that admitted it; a draining instance's spare slots go to the others.

use super::*;
use futures_util::future::join_all;
use futures_util::StreamExt;

/// Refurl POSTs in flight at once: more and this one-thread client cannot send them all within the
/// balancer's `timeout http-request` on 2 cores shared with three gateways (HAProxy answers 408).
const IN_FLIGHT: usize = 250;

#[actix_rt::test]
async fn a_burst_through_the_balancer_admits_exactly_the_fleet_cap_and_every_call_bridges() {
    let f = Fleet::start(Setup::cap(500)).await;
    let posts = (0..5000).map(|i| {
        let lb = f.lb.url.clone();
        async move {
            let id = format!("BURST-{i}");
            admit_at(&lb, &id).await.map(|url| (id, url))
        }
    });
    let answers: Vec<_> = futures_util::stream::iter(posts)
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let admitted: Vec<(String, String)> = answers.into_iter().flatten().collect();
    assert_eq!(admitted.len(), 500, "admitted fleet-wide");
    let per_instance = active_per_instance(&f).await;
    assert_eq!(per_instance.iter().sum::<u64>(), 500, "slots held: {per_instance:?}");
    assert!(
        per_instance.iter().all(|n| *n > 0),
        "the balancer spread the burst: {per_instance:?}"
    );
    for (id, url) in &admitted {
        assert!(
            url.starts_with(&f.lb.url.replace("http://", "ws://")) && url.contains("&instance=gw"),
            "{id}: {url} names the balancer and the instance"
        );
    }
    // Every admitted call bridges through the URL it was given: the balancer routes each socket to the
    // instance that admitted the call (another would answer 421).
    for wave in admitted.chunks(50) {
        let calls = join_all(wave.iter().map(|(id, url)| bridge(id, url))).await;
        for c in &calls {
            c.close(1000);
        }
    }
    for n in 0..3 {
        assert_eq!(
            counter(&f, n, "wsapi_misdirected_sockets_total").await,
            0.0,
            "gw{}",
            n + 1
        );
    }
}

#[actix_rt::test]
async fn a_draining_instance_gives_its_spare_slots_to_the_others() {
    let f = Fleet::start(Setup::cap(12)).await;
    let url = admit_eventually(&f.gw(0).http, "DRAIN-LIVE", Duration::from_secs(5))
        .await
        .expect("admitted at gw1");
    let mut live = bridge("DRAIN-LIVE", &url).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    f.gw(0).signal("TERM");
    // Without the drain gw1 would keep a spare slot beside its live call, and the others could reach 10.
    let mut admitted = 0;
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while admitted < 11 && std::time::Instant::now() < until {
        for n in [1, 2] {
            if admitted < 11 && admit_at(&f.gw(n).http, &format!("DRAIN-{admitted}")).await.is_some() {
                admitted += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        admitted, 11,
        "the others took every slot but the draining instance's live call"
    );
    assert!(
        admit_at(&f.gw(1).http, "DRAIN-OVER").await.is_none(),
        "the fleet is full"
    );
    let (view, rows) = fleet_rows(&f, 1).await;
    let gw1 = row_of(&rows, "gw1");
    assert_eq!(gw1["draining"], true, "{view}");
    assert_eq!(gw1["held_slots"], 1, "only its live call: {view}");
    assert!(still_talks(&mut live).await, "the draining instance's call goes on");
    // Its last call over, the drained instance leaves the fleet: its row goes, and no survivor had to
    // close it as lost (which is what a lease running out would have meant).
    live.close(1000);
    let mut gone = false;
    for _ in 0..200 {
        if row_of(&fleet_rows(&f, 1).await.1, "gw1").is_null() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "gw1 left the fleet");
    for n in [1, 2] {
        assert_eq!(
            counter(&f, n, "wsapi_fleet_instances_lost_total").await,
            0.0,
            "left, not lost"
        );
    }
}

#[actix_rt::test]
async fn a_busy_instance_gets_the_slots_idle_ones_held() {
    let f = Fleet::start(Setup::cap(12)).await;
    // Every call at gw1: the spare slots gw2 and gw3 sit on must come to it (idle instances that kept
    // theirs would leave gw1 short for good).
    for k in 0..12 {
        let id = format!("BUSY-{k}");
        assert!(
            admit_eventually(&f.gw(0).http, &id, Duration::from_secs(20))
                .await
                .is_some(),
            "{id}: the fleet has a free slot"
        );
    }
    assert!(
        admit_at(&f.gw(0).http, "BUSY-OVER").await.is_none(),
        "the fleet is full"
    );
    assert_eq!(active_per_instance(&f).await, vec![12, 0, 0]);
}
