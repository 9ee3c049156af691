//! Where the features meet, in one run: a fleet of two behind the shipped balancer, calls of all four
//! carriers with the same id and with ids made to collide, several routes of which one has a broken agent,
//! account-level failures under the breaker's threshold, and then every call's record read back: each call
//! ended where it should, and its record says why.

use super::*;
use futures_util::future::join_all;
use std::collections::{BTreeMap, HashMap};
use websocket_api::carriers::Carrier;
use websocket_api::tools::sim::carrier::CallRequest;
use websocket_api::tools::sim::stream::{run_call, CallReport};

const SALES: &str = "+918047000001";

/// The agent breaker's threshold (the default).
const THRESHOLD: usize = 3;

async fn call(f: &Fleet, carrier: Carrier, id: &str, to: &str) -> CallReport {
    let request = CallRequest {
        to: to.into(),
        ..CallRequest::inbound(id)
    };
    run_call(&f.lb.url, carrier, request, 0.4, 20, 3).await
}

fn bridged(r: &CallReport) -> bool {
    r.admitted && r.frames_heard > 0 && r.refused.is_none()
}

/// The final state and end reason of `carrier`'s call `id`, once it has one.
async fn final_record(f: &Fleet, id: &str, carrier: Carrier) -> (String, String, String) {
    let mut last = None;
    for _ in 0..100 {
        last = f.db.get_call_of(id, carrier.as_str());
        if let Some(r) = &last {
            if r.state == "ended" || r.state == "rejected" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = last.unwrap_or_else(|| {
        let attempts = f.db.stored(id, None).map(|s| s.attempts);
        panic!("{carrier:?} {id}: no record; the id's records: {attempts:?}")
    });
    (
        r.state.clone(),
        r.end_reason.clone().unwrap_or_default(),
        r.instance_id.clone(),
    )
}

#[actix_rt::test]
async fn every_carrier_route_and_failure_meets_in_a_fleet_of_two_and_every_record_says_why() {
    let f = Fleet::start(Setup {
        instances: 2,
        config: routes_toml(&[
            ("sales", Some(SALES), "agent_sales"),
            ("support", None, "agent_support"),
        ]),
        script: AgentScript {
            greeting_ms: 100,
            echo: true,
            // The account's first two conversations are refused (a concurrency limit): under the threshold.
            refuse_first: 2,
            refuse_status: 429,
            required_variables: BTreeMap::from([("agent_sales".into(), vec!["customer_tier".into()])]),
            ..quiet_script()
        },
        extra: vec![("WSAPI__ELEVENLABS__MAX_REDIALS_PER_CALL", "0".into())],
        ..Setup::cap(40)
    })
    .await;
    let mut expected: Vec<(&str, Carrier, &[&str])> = Vec::new();

    // Account-level failures under the threshold: those calls end, nothing else is touched.
    for id in ["DOWN-1", "DOWN-2"] {
        let r = call(&f, Carrier::Mcube, id, "+918001234567").await;
        assert!(r.admitted && r.frames_heard == 0, "{id}: {r:?}");
        expected.push((id, Carrier::Mcube, &["elevenlabs_unavailable"]));
    }

    // One id, four carriers, at once: four calls.
    let same = join_all(Carrier::ALL.map(|c| call(&f, c, "MATRIX-1", "+918001234567"))).await;
    for r in &same {
        assert!(bridged(r), "{:?} MATRIX-1: {r:?}", r.carrier);
    }
    expected.push(("MATRIX-1", Carrier::Mcube, &["carrier_hangup"]));
    expected.push(("MATRIX-1", Carrier::Plivo, &["carrier_hangup"]));
    expected.push(("MATRIX-1", Carrier::Exotel, &["carrier_stop"]));
    expected.push(("MATRIX-1", Carrier::Twilio, &["carrier_stop"]));

    // An Mcube id made to look like Plivo's call: two calls, neither touching the other.
    let (forged, plivo) = futures_util::future::join(
        call(&f, Carrier::Mcube, "plivo:MATRIX-2", "+918001234567"),
        call(&f, Carrier::Plivo, "MATRIX-2", "+918001234567"),
    )
    .await;
    assert!(bridged(&forged) && bridged(&plivo), "{forged:?} {plivo:?}");
    expected.push(("plivo:MATRIX-2", Carrier::Mcube, &["carrier_hangup"]));
    expected.push(("MATRIX-2", Carrier::Plivo, &["carrier_hangup"]));

    // The broken route, ten times, beside another route's calls that go on.
    let sales_ids: Vec<String> = (0..10).map(|i| format!("SALES-{i}")).collect();
    let support_ids: Vec<String> = (0..10).map(|i| format!("SUPPORT-{i}")).collect();
    for (sales, support) in sales_ids.iter().zip(&support_ids) {
        let broken = call(&f, Carrier::Mcube, sales, SALES).await;
        assert!(
            broken.frames_heard == 0,
            "{sales}: the broken agent never answers: {broken:?}"
        );
        let other = call(&f, Carrier::Twilio, support, "+918001234567").await;
        assert!(bridged(&other), "{support}: another route's call: {other:?}");
        expected.push((support, Carrier::Twilio, &["carrier_stop"]));
    }

    // Every record says why its call ended.
    for (id, carrier, reasons) in &expected {
        let (state, reason, _) = final_record(&f, id, *carrier).await;
        assert!(
            state == "ended" && reasons.contains(&reason.as_str()),
            "{carrier:?} {id}: {state} {reason}, expected ended {reasons:?}"
        );
    }
    // The broken route's calls failed, then were refused, each instance within 2 failures past its
    // threshold (each instance keeps its own agent breaker).
    let mut failed: HashMap<String, usize> = HashMap::new();
    let mut refused_on: HashMap<String, bool> = HashMap::new();
    let mut refused = 0;
    for id in &sales_ids {
        let (state, reason, instance) = final_record(&f, id, Carrier::Mcube).await;
        match (state.as_str(), reason.as_str()) {
            ("ended", "elevenlabs_rejected") => {
                assert!(
                    !refused_on.contains_key(&instance),
                    "{id} admitted on {instance} after a refusal"
                );
                *failed.entry(instance).or_default() += 1;
            }
            ("rejected", "agent_unavailable") => {
                refused_on.insert(instance, true);
                refused += 1;
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    assert!(refused > 0, "the broken route was refused: {failed:?}");
    assert!(
        failed.values().all(|n| *n <= THRESHOLD + 2),
        "within 2 failures past the threshold on each instance: {failed:?}"
    );
    for n in 0..2 {
        let ready = get(&format!("{}/readyz", f.gw(n).admin)).await;
        assert!(
            ready["upstream"].is_null(),
            "the account's breaker stayed closed on gw{}: {ready}",
            n + 1
        );
        assert!(counter(&f, n, "wsapi_upstream_breaker_opened_total").await == 0.0);
    }
}
