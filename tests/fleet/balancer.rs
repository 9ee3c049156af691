//! The shipped balancer configuration in front of three instances: Twilio's streams, whose URL may carry
//! no query, reach the instance that admitted their call by a path segment; and what HAProxy logs holds
//! no media token.

use super::*;
use futures_util::future::join_all;
use websocket_api::carriers::Carrier;
use websocket_api::tools::sim::carrier::CallRequest;
use websocket_api::tools::sim::stream::run_call;

#[actix_rt::test]
async fn twilio_calls_bridge_on_the_instance_that_admitted_them_and_the_balancer_logs_no_token() {
    let f = Fleet::start(Setup::cap(30)).await;
    // Each instance's webhook admits two calls; every stream comes back through the balancer.
    let mut placed = Vec::new();
    for n in 0..3 {
        for k in 0..2 {
            let id = format!("TW-GW{}-{k}", n + 1);
            let http = f.gw(n).http.clone();
            placed.push(async move {
                let report = run_call(&http, Carrier::Twilio, CallRequest::inbound(&id), 0.5, 20, k).await;
                (n, id, report)
            });
        }
    }
    for (n, id, report) in join_all(placed).await {
        assert!(
            report.admitted && report.frames_heard > 0,
            "{id}: bridged through the balancer on gw{}: {report:?}",
            n + 1
        );
        assert!(
            eventually(Duration::from_secs(5), || f
                .db
                .get_call(&id)
                .is_some_and(|(r, _)| r.instance_id == instance(n)))
            .await,
            "{id} was carried by the instance that admitted it"
        );
    }
    // Webhooks through the balancer too, and an Mcube call whose URL carries its token in the query.
    for k in 0..3 {
        let id = format!("TW-LB-{k}");
        let report = run_call(&f.lb.url, Carrier::Twilio, CallRequest::inbound(&id), 0.3, 20, k).await;
        assert!(report.admitted && report.frames_heard > 0, "{id}: {report:?}");
    }
    let mcube = run_call(&f.lb.url, Carrier::Mcube, CallRequest::inbound("MC-LB"), 0.3, 20, 9).await;
    assert!(mcube.admitted && mcube.frames_heard > 0, "{mcube:?}");

    let log_path = f.dir.join("haproxy.log");
    let read = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(5), || read().contains("/ws/mcube/MC-LB")).await,
        "the balancer logged the media socket: {}",
        read()
    );
    let log = read();
    assert!(log.contains("/ws/twilio/gw1"), "{log}");
    assert!(!log.contains("token="), "a token in the balancer's log:\n{log}");
    for n in 0..3 {
        let own = f.log(n).join("\n");
        assert!(!own.contains("token="), "a token in gw{}'s log:\n{own}", n + 1);
    }
}
