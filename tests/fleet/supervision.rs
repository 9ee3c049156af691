//! A panic in the fleet's lease steward (feature `fault-injection`, armed over the admin API of a real
//! gateway process): the renewal it was making fails and is retried, the steward is rebuilt, `/healthz`
//! says so, and the instance's calls and its next admission go on.
#![cfg(feature = "fault-injection")]

use super::*;

#[actix_rt::test]
async fn a_panic_in_the_steward_fails_no_call_and_the_steward_comes_back() {
    let f = Fleet::start(Setup {
        instances: 1,
        ..Setup::cap(30)
    })
    .await;
    let base = &f.gw(0).http;
    let mut calls = Vec::new();
    for i in 0..20 {
        let id = format!("SUP-STEW-{i}");
        let url = admit_at(base, &id).await.unwrap_or_else(|| panic!("{id} admitted"));
        calls.push(bridge(&id, &url).await);
    }
    let armed = awc::Client::default()
        .put(format!("{}/faults/steward/{}", f.gw(0).admin, instance(0)))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(armed.ok(), Some(204));
    let mut recovered = false;
    for _ in 0..50 {
        let health = f.admin_get(0, "/healthz").await;
        if health["recovered"]["steward"]["recovered"].as_u64() >= Some(1) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the steward panicked once and /healthz says it recovered");
    for (i, c) in calls.iter_mut().enumerate() {
        assert!(still_talks(c).await, "call {i} still talks");
    }
    // The rebuilt steward renews the lease: the instance keeps admitting within its share.
    tokio::time::sleep(Duration::from_millis(LEASE_TTL_MS)).await;
    let next = admit_at(base, "SUP-STEW-NEXT").await.expect("admitted after the fault");
    let mut next = bridge("SUP-STEW-NEXT", &next).await;
    assert!(still_talks(&mut next).await);
    assert!(f
        .log(0)
        .iter()
        .any(|l| l.contains("internal error in steward: injected fault")));
}
