//! The fleet's admin endpoints (docs/fleet.md): `GET /fleet`, `GET /calls?scope=fleet` (every
//! live instance's `/calls`, merged) and the forwarding of `DELETE /calls/{id}` to the instance that carries
//! the call. Instances reach each other's admin API at the URL each registered, with the same admin token,
//! but only where the operator allowed it (`fleet.peers`): the database is not trusted to say where the
//! token may go. A peer's answer is read as a typed value; junk is that peer's error, never a panic. A
//! forwarded request says so in a header, so it is never forwarded again.

use super::reply::{bearer_token, read_db};
use super::state::AppState;
use crate::carriers::Carrier;
use crate::db::DbConnection;
use crate::fleet::store::{self, InstanceRow};
use crate::values::CallId;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// Marks a request one instance sent another on an admin's behalf.
pub const FORWARDED_HEADER: &str = "x-wsapi-forwarded-by";
/// Longest wait for another instance's answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer read from another instance (its `/calls` at a few thousand calls fits many times over).
const PEER_ANSWER_MAX: usize = 16 << 20;

/// The fleet's tables are PostgreSQL's.
fn pg(conn: &mut DbConnection) -> diesel::QueryResult<&mut diesel::PgConnection> {
    match conn {
        DbConnection::Pg(c) => Ok(c),
        DbConnection::Sqlite(_) => Err(diesel::result::Error::QueryBuilderError(
            "the fleet's tables live in PostgreSQL".into(),
        )),
    }
}

fn no_fleet() -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": "no_fleet",
        "detail": "this gateway runs alone: fleet.max_concurrent_calls is not set",
    }))
}

/// `GET /fleet`: every instance on the database (lease age, live calls, local cap, held slots, draining)
/// and the fleet's cap with its use.
pub async fn fleet_view(state: &AppState) -> HttpResponse {
    let Some(fleet) = state.fleet.as_ref() else {
        return no_fleet();
    };
    let ttl = fleet.member.lease_ttl_ms;
    let read = read_db(&state.pool, move |c| {
        let c = pg(c)?;
        Ok((store::instances(c, ttl)?, store::fleet_cap(c)?))
    });
    let (instances, stored_cap) = match read.await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let live: Vec<&InstanceRow> = instances.iter().filter(|i| !i.expired).collect();
    let sum = |f: fn(&InstanceRow) -> i32| live.iter().map(|i| i64::from(f(i))).sum::<i64>();
    HttpResponse::Ok().json(json!({
        "this_instance": state.instance,
        "max_concurrent_calls": fleet.member.fleet_cap,
        "cap_in_database": stored_cap,
        "held_slots": sum(|i| i.held_slots),
        "live_calls": sum(|i| i.live_calls),
        "lease_ttl_ms": ttl,
        "instances": instances,
    }))
}

/// A client for another instance's admin API.
fn peer_client() -> awc::Client {
    awc::Client::builder().timeout(PEER_TIMEOUT).finish()
}

/// `req` as sent on to another instance: the admin's token, and the mark that it was forwarded.
fn forwarded(state: &AppState, req: awc::ClientRequest, original: &HttpRequest) -> awc::ClientRequest {
    let req = req.insert_header((FORWARDED_HEADER, state.instance.as_str()));
    match bearer_token(original) {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// Why an instance's row may not be sent the admin token, if it may not.
fn not_allowed(state: &AppState, instance: &str, admin_url: &str) -> Option<String> {
    (!state.config.fleet.allows_peer(admin_url)).then(|| {
        format!(
            "fleet: {instance} registered its admin API at '{admin_url}', which fleet.peers does not allow: not asked"
        )
    })
}

/// The live instances other than this one, with their admin URLs.
async fn peers(state: &AppState, ttl: u64) -> Result<Vec<InstanceRow>, HttpResponse> {
    let me = state.instance.to_string();
    let all = read_db(&state.pool, move |c| store::instances(pg(c)?, ttl)).await?;
    Ok(all.into_iter().filter(|i| !i.expired && i.instance_id != me).collect())
}

/// One instance's `/calls`, as another reads it.
#[derive(Debug, Deserialize)]
struct InstanceCalls {
    active: u64,
    max_concurrent_calls: u64,
    calls: Vec<ListedCall>,
}

/// One call of an instance's list: its key read into bounded values, the rest passed on as it came.
#[derive(Debug, Deserialize, Serialize)]
struct ListedCall {
    call_id: String,
    carrier: String,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// Why an instance's calls are missing from the fleet's list: shown as that instance's `error`.
#[derive(Debug, thiserror::Error)]
enum PeerError {
    /// `fleet.peers` does not allow the address it registered (`not_allowed` says so).
    #[error("{0}")]
    NotAllowed(String),
    #[error("fleet: {0} did not answer: {1}")]
    NoAnswer(String, String),
    #[error("fleet: {0} answered {1}")]
    Status(String, actix_web::http::StatusCode),
    #[error("fleet: {0} answered junk: {1}")]
    Junk(String, String),
}

impl InstanceCalls {
    /// Reads `instance`'s answer; a call whose id or carrier is not one makes the whole answer junk.
    fn read(instance: &str, answer: Value) -> Result<InstanceCalls, PeerError> {
        let junk = |why: String| PeerError::Junk(instance.to_string(), why);
        let calls: InstanceCalls = serde_json::from_value(answer).map_err(|e| junk(e.to_string()))?;
        for call in &calls.calls {
            CallId::parse("call_id", &call.call_id).map_err(|e| junk(e.to_string()))?;
            Carrier::from_path(&call.carrier)
                .ok_or_else(|| junk(format!("carrier '{}'", crate::values::shown(&call.carrier))))?;
        }
        Ok(calls)
    }
}

/// Asks one peer for its `/calls`, if the operator allowed it.
async fn ask_peer(
    state: &AppState,
    client: &awc::Client,
    req: &HttpRequest,
    peer: &InstanceRow,
) -> Result<InstanceCalls, PeerError> {
    if let Some(why) = not_allowed(state, &peer.instance_id, &peer.admin_url) {
        return Err(PeerError::NotAllowed(why));
    }
    let id = || peer.instance_id.clone();
    let url = format!("{}/calls", peer.admin_url.trim_end_matches('/'));
    let mut resp = forwarded(state, client.get(&url), req)
        .send()
        .await
        .map_err(|e| PeerError::NoAnswer(id(), e.to_string()))?;
    if !resp.status().is_success() {
        return Err(PeerError::Status(id(), resp.status()));
    }
    let answer = resp
        .json::<Value>()
        .limit(PEER_ANSWER_MAX)
        .await
        .map_err(|e| PeerError::Junk(id(), e.to_string()))?;
    InstanceCalls::read(&peer.instance_id, answer)
}

/// `GET /calls?scope=fleet`: this instance's `/calls` beside every other live instance's, each call marked
/// with its instance; an instance that is not allowed, does not answer or answers junk is listed with the
/// error.
pub async fn fleet_calls(req: &HttpRequest, state: &AppState, local: Value) -> HttpResponse {
    let Some(fleet) = state.fleet.as_ref() else {
        return no_fleet();
    };
    let peers = match peers(state, fleet.member.lease_ttl_ms).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let client = peer_client();
    let answers = join_all(peers.iter().map(|p| ask_peer(state, &client, req, p))).await;
    let mut calls = Vec::new();
    let mut instances = vec![instance_summary(
        state.instance.as_str(),
        InstanceCalls::read(state.instance.as_str(), local),
        &mut calls,
    )];
    for (peer, answer) in peers.iter().zip(answers) {
        instances.push(instance_summary(&peer.instance_id, answer, &mut calls));
    }
    HttpResponse::Ok().json(json!({ "scope": "fleet", "instances": instances, "calls": calls }))
}

/// One instance's line of the fleet's call list; its calls, marked with it, go to `calls`.
fn instance_summary(instance: &str, answer: Result<InstanceCalls, PeerError>, calls: &mut Vec<Value>) -> Value {
    match answer {
        Ok(list) => {
            for call in list.calls {
                let mut call = json!(call);
                if let Some(fields) = call.as_object_mut() {
                    fields.insert("instance_id".into(), json!(instance));
                }
                calls.push(call);
            }
            json!({"instance_id": instance, "active": list.active, "max_concurrent_calls": list.max_concurrent_calls})
        }
        Err(e) => {
            log::warn!("{e}");
            json!({"instance_id": instance, "error": e.to_string()})
        }
    }
}

/// `DELETE /calls/{id}[?carrier=]` for a call not live here: sent on to the instance whose record says it
/// carries it, if the operator allowed that instance. `None` when there is no such instance (the caller
/// answers 404).
pub async fn forward_end(
    req: &HttpRequest,
    state: &AppState,
    call_id: &CallId,
    carrier: Option<Carrier>,
) -> Option<HttpResponse> {
    state.fleet.as_ref()?;
    if req.headers().contains_key(FORWARDED_HEADER) {
        return None;
    }
    let id = call_id.to_string();
    let named = carrier.map(Carrier::as_str);
    let mut owners = match read_db(&state.pool, move |c| store::owners_of(pg(c)?, &id, named)).await {
        Ok(owners) => owners,
        Err(resp) => return Some(resp),
    };
    owners.retain(|o| o.instance_id != state.instance.as_str());
    if owners.len() > 1 {
        let carriers: Vec<&str> = owners.iter().map(|o| o.carrier.as_str()).collect();
        return Some(super::reply::ambiguous_call(&carriers));
    }
    let owner = owners.pop()?;
    if let Some(why) = not_allowed(state, &owner.instance_id, &owner.admin_url) {
        log::warn!("call_id={call_id} {why}");
        return Some(HttpResponse::BadGateway().json(json!({
            "error": "peer_not_allowed", "call_id": call_id, "instance_id": owner.instance_id, "detail": why,
        })));
    }
    Some(send_end(req, state, call_id, owner).await)
}

/// Sends the hang-up to the instance that carries the call and passes its answer back.
async fn send_end(req: &HttpRequest, state: &AppState, call_id: &CallId, owner: store::Owner) -> HttpResponse {
    let url = format!(
        "{}/calls/{call_id}?carrier={}",
        owner.admin_url.trim_end_matches('/'),
        owner.carrier
    );
    let instance = owner.instance_id;
    match forwarded(state, peer_client().delete(&url), req).send().await {
        Ok(mut resp) => {
            let status = resp.status();
            let body = resp.json::<Value>().limit(64 << 10).await.unwrap_or(Value::Null);
            log::info!("call_id={call_id} hang-up forwarded to {instance}: {status}");
            let mut answer = json!({"call_id": call_id, "instance_id": instance, "forwarded": true});
            if let (Value::Object(fields), Some(out)) = (body, answer.as_object_mut()) {
                for (k, v) in fields {
                    out.insert(k, v);
                }
            }
            HttpResponse::build(StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)).json(answer)
        }
        Err(e) => {
            log::warn!("call_id={call_id} fleet: hang-up not forwarded to {instance}: {e}");
            HttpResponse::BadGateway().json(json!({
                "error": "instance_unreachable", "call_id": call_id, "instance_id": instance,
            }))
        }
    }
}
