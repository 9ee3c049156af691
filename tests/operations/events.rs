//! `GET /calls/events` on the real gateway: with an admin token set, it opens for the token as a header or
//! for a ticket traded for it, and for nothing else; it says once a second how many calls there are and
//! tells each call's admission, change of state and end as they happen, an admin's hang-up included; at
//! most `MAX_WATCHERS` streams are open at once.

use crate::common::*;
use futures_util::StreamExt as _;
use serde_json::Value;
use std::time::Duration;
use websocket_api::audio::format::AudioFormat;
use websocket_api::http::seats::MAX_EVENT_STREAMS as MAX_WATCHERS;
use websocket_api::tools::sim::carrier::Heard;

const TOKEN: &str = "events-token";

/// An open event stream and what it has said so far, as `(event, data)`.
struct Stream<S> {
    resp: awc::ClientResponse<S>,
    text: String,
}

impl<S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin> Stream<S> {
    /// The events read so far.
    fn events(&self) -> Vec<(String, Value)> {
        self.text
            .split("\n\n")
            .filter_map(|block| {
                let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
                Some((
                    field("event:")?.to_string(),
                    serde_json::from_str(field("data:")?).ok()?,
                ))
            })
            .collect()
    }

    /// Reads until `seen` holds for the events so far, for at most `span`.
    async fn until(&mut self, span: Duration, seen: impl Fn(&[(String, Value)]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + span;
        while !seen(&self.events()) {
            match tokio::time::timeout_at(deadline, self.resp.next()).await {
                Ok(Some(Ok(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return false,
            }
        }
        true
    }
}

async fn open(
    h: &Harness,
    query: &str,
    token: Option<&str>,
) -> Result<Stream<impl futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin>, u16> {
    let mut req = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
        .get(format!("{}/calls/events{query}", h.gw.admin_url));
    if let Some(t) = token {
        req = req.insert_header(("authorization", format!("Bearer {t}")));
    }
    let resp = req.send().await.expect("answers");
    match resp.status().as_u16() {
        200 => Ok(Stream {
            resp,
            text: String::new(),
        }),
        status => Err(status),
    }
}

/// A call event about `id` of kind `event` (and, when given, with `field` = `value`).
fn has(events: &[(String, Value)], id: &str, event: &str, field: Option<(&str, &str)>) -> bool {
    events.iter().any(|(kind, v)| {
        kind == "call"
            && v["call_id"] == id
            && v["event"] == event
            && field.is_none_or(|(name, value)| v[name] == value)
    })
}

#[actix_rt::test]
async fn the_event_stream_tells_each_call_as_it_happens_to_whoever_the_token_lets_in() {
    let h = start(quiet_script(), |c| c.admin.token = Some(TOKEN.into())).await;
    let client = awc::Client::default();
    let ticket_url = format!("{}/calls/events/ticket", h.gw.admin_url);
    let resp = client.post(&ticket_url).send().await.expect("answers");
    assert_eq!(resp.status().as_u16(), 401, "no ticket without the token");
    let mut resp = client
        .post(&ticket_url)
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .send()
        .await
        .expect("answers");
    let ticket: Value = resp.json().await.expect("ticket JSON");
    let ticket = ticket["ticket"].as_str().expect("a ticket").to_string();

    assert_eq!(
        open(&h, "", None).await.err(),
        Some(401),
        "nothing without the token or a ticket"
    );
    assert_eq!(open(&h, "", Some("wrong")).await.err(), Some(401));
    let forged = format!("9{ticket}");
    assert_eq!(
        open(&h, &format!("?ticket={forged}"), None).await.err(),
        Some(401),
        "an edited ticket"
    );
    let mut by_header = open(&h, "", Some(TOKEN)).await.expect("the token as a header opens it");
    let mut stream = open(&h, &format!("?ticket={ticket}"), None)
        .await
        .expect("a ticket opens it");

    let counters = |e: &[(String, Value)]| {
        e.iter()
            .any(|(kind, v)| kind == "counters" && v["active"] == 0 && v["breaker"]["account"]["state"] == "closed")
    };
    assert!(
        stream.until(Duration::from_secs(3), counters).await,
        "counters at once: {}",
        stream.text
    );

    let mut conn = start_call(&h, "EV-1", "stream-EV-1", AudioFormat::ULAW_8K).await;
    let bridged =
        |e: &[(String, Value)]| has(e, "EV-1", "admitted", None) && has(e, "EV-1", "state", Some(("state", "active")));
    assert!(
        stream.until(Duration::from_secs(5), bridged).await,
        "admitted, then active: {}",
        stream.text
    );
    let busy = |e: &[(String, Value)]| e.iter().any(|(kind, v)| kind == "counters" && v["active"] == 1);
    assert!(
        stream.until(Duration::from_secs(3), busy).await,
        "the call counted: {}",
        stream.text
    );

    let hang_up = client
        .delete(format!("{}/calls/EV-1", h.gw.admin_url))
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .send()
        .await
        .expect("answers");
    assert_eq!(hang_up.status().as_u16(), 202);
    let ended = |e: &[(String, Value)]| has(e, "EV-1", "ended", Some(("reason", "admin")));
    assert!(
        stream.until(Duration::from_secs(5), ended).await,
        "ended by the admin: {}",
        stream.text
    );
    assert!(
        by_header.until(Duration::from_secs(5), ended).await,
        "every watcher is told"
    );
    let heard = listen(&mut conn, Duration::from_secs(2)).await;
    assert!(heard.contains(&Heard::Terminate), "the carrier was told: {heard:?}");
}

#[actix_rt::test]
async fn at_most_max_watchers_streams_are_open_and_a_closed_one_frees_its_place() {
    let h = start(quiet_script(), |_| {}).await;
    let mut open_ones = Vec::new();
    for _ in 0..MAX_WATCHERS {
        open_ones.push(open(&h, "", None).await.expect("under the cap"));
    }
    assert_eq!(open(&h, "", None).await.err(), Some(503), "one more is refused");
    drop(open_ones.pop());
    let mut reopened = false;
    for _ in 0..30 {
        if open(&h, "", None).await.is_ok() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened, "a closed stream gives its place back");
}
