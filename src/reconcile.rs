//! The reconciler (docs/post-call.md): a conversation whose post-call webhook has not come
//! `elevenlabs.reconcile_after_s` after its call ended is fetched from ElevenLabs
//! (`GET <elevenlabs.api_url>/v1/convai/conversations/{id}`, with the API key) and its verdict stored as the
//! webhook's would be. One request at a time, at most `PER_SECOND` a second; a conversation not ready yet
//! or a failed fetch is tried again later (`BACKOFF`), and given up after `MAX_TRIES` or once its call
//! ended more than `WINDOW` ago; each outcome is counted. Each instance reconciles its own calls.

use crate::db::after_call::unjudged;
use crate::db::batcher::{DbBatcher, Save};
use crate::db::models::{now_ms, AnalysisRow, DbWrite};
use crate::db::DbPool;
use crate::metrics::Metrics;
use crate::protocol::post_call::{self, Delivery};
use actix::Addr;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fetches a second, at most.
const PER_SECOND: u32 = 5;
/// Waits before each further try of one conversation.
const BACKOFF: [Duration; 5] = [
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(900),
    Duration::from_secs(3600),
];
const MAX_TRIES: u32 = 6;
/// Calls that ended longer ago than this are not looked at any more.
const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Calls looked at per pass.
const BATCH: i64 = 200;

/// What the reconciler needs.
pub struct Reconciler {
    pub pool: DbPool,
    pub db: Addr<DbBatcher>,
    pub metrics: Arc<Metrics>,
    pub instance: String,
    pub api_url: String,
    pub api_key: Option<String>,
    pub after: Duration,
    pub tls: Arc<rustls::ClientConfig>,
}

/// How a fetch went.
enum Fetched {
    /// The verdict, stored.
    Joined,
    /// ElevenLabs has not finished the conversation's analysis.
    NotReady,
    /// ElevenLabs does not know the conversation: nothing will come.
    Unknown,
    Failed(String),
}

/// A conversation being tried again.
struct Retry {
    tries: u32,
    next: Instant,
}

impl Reconciler {
    /// Runs until the gateway stops (a service of the gateway's).
    pub async fn run(self) {
        let client = self.client();
        let pass = (self.after / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        let mut retries: HashMap<String, Retry> = HashMap::new();
        loop {
            actix_rt::time::sleep(pass).await;
            let due = self.unjudged().await;
            retries.retain(|id, _| due.contains(id));
            for id in due {
                if retries
                    .get(&id)
                    .is_some_and(|r| r.tries >= MAX_TRIES || r.next > Instant::now())
                {
                    continue;
                }
                let fetched = self.fetch(&client, &id).await;
                self.settle(&id, fetched, &mut retries);
                actix_rt::time::sleep(Duration::from_secs(1) / PER_SECOND).await;
            }
        }
    }

    fn client(&self) -> awc::Client {
        let connector = awc::Connector::new()
            .timeout(Duration::from_secs(10))
            .max_http_version(awc::http::Version::HTTP_11)
            .rustls_0_23(self.tls.clone());
        awc::Client::builder()
            .connector(connector)
            .timeout(Duration::from_secs(30))
            .finish()
    }

    /// Conversations due a fetch: their calls ended between `WINDOW` and `after` ago.
    async fn unjudged(&self) -> Vec<String> {
        let (pool, instance) = (self.pool.clone(), self.instance.clone());
        let now = now_ms();
        let (from, until) = (now - WINDOW.as_millis() as i64, now - self.after.as_millis() as i64);
        let read = actix_web::web::block(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            unjudged(&mut conn, &instance, from, until, BATCH).map_err(|e| e.to_string())
        });
        match read.await {
            Ok(Ok(ids)) => ids,
            Ok(Err(e)) => {
                log::warn!("db: the reconciler could not read the calls: {e}");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }

    async fn fetch(&self, client: &awc::Client, id: &str) -> Fetched {
        let url = format!("{}/v1/convai/conversations/{id}", self.api_url.trim_end_matches('/'));
        let mut req = client.get(url);
        if let Some(key) = &self.api_key {
            req = req.insert_header(("xi-api-key", key.as_str()));
        }
        let mut resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => return Fetched::Failed(format!("elevenlabs: {e}")),
        };
        match resp.status().as_u16() {
            200 => {}
            404 => return Fetched::Unknown,
            status => return Fetched::Failed(format!("elevenlabs answered {status}")),
        }
        let Ok(body) = resp.body().limit(post_call::MAX_BODY_BYTES).await else {
            return Fetched::Failed("elevenlabs: the body did not arrive".into());
        };
        self.store(&body)
    }

    /// A conversation's details, read as a `post_call_transcription` delivery would be.
    fn store(&self, body: &[u8]) -> Fetched {
        let Ok(details) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Fetched::Failed("elevenlabs: the conversation is not JSON".into());
        };
        if details["status"].as_str() != Some("done") {
            return Fetched::NotReady;
        }
        let delivery = serde_json::json!({
            "type": "post_call_transcription",
            "event_timestamp": now_ms() / 1000,
            "data": details,
        });
        match post_call::parse(delivery.to_string().as_bytes()) {
            Ok(Delivery::Outcome(outcome)) => {
                let row = AnalysisRow::of(*outcome, "reconciler");
                self.db.do_send(Save {
                    writes: vec![DbWrite::Analysis(Box::new(row))],
                });
                Fetched::Joined
            }
            Ok(Delivery::Other(_)) => Fetched::NotReady,
            Err(e) => Fetched::Failed(format!("elevenlabs: {}", e.0)),
        }
    }

    fn settle(&self, id: &str, fetched: Fetched, retries: &mut HashMap<String, Retry>) {
        let count = |outcome: &str| self.metrics.upstream.reconciled.with_label_values(&[outcome]).inc();
        let why = match fetched {
            Fetched::Joined => {
                count("joined");
                log::info!("elevenlabs: conversation {id}'s verdict fetched (no webhook came)");
                retries.remove(id);
                return;
            }
            Fetched::Unknown => {
                count("unknown");
                retries.insert(
                    id.to_string(),
                    Retry {
                        tries: MAX_TRIES,
                        next: Instant::now(),
                    },
                );
                log::warn!("elevenlabs: conversation {id} is unknown to ElevenLabs; not fetched again");
                return;
            }
            Fetched::NotReady => "not ready".to_string(),
            Fetched::Failed(why) => why,
        };
        let retry = retries.entry(id.to_string()).or_insert(Retry {
            tries: 0,
            next: Instant::now(),
        });
        retry.tries += 1;
        let wait = BACKOFF[(retry.tries as usize - 1).min(BACKOFF.len() - 1)];
        retry.next = Instant::now() + wait;
        if retry.tries >= MAX_TRIES {
            count("gave_up");
            log::warn!("elevenlabs: conversation {id}'s verdict given up after {MAX_TRIES} tries ({why})");
        } else {
            count("retried");
            log::info!("elevenlabs: conversation {id}'s verdict not fetched ({why}); again in {wait:?}");
        }
    }
}
