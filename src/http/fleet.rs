//! The fleet's admin endpoints (README: Running a fleet): `GET /fleet`, `GET /calls?scope=fleet` (every
//! live instance's `/calls`, merged) and the forwarding of `DELETE /calls/{id}` to the instance that carries
//! the call. Instances reach each other's admin API at the URL each registered, with the same admin token;
//! a forwarded request says so in a header, so it is never forwarded again.

use super::reply::{bearer_token, read_db};
use super::state::AppState;
use crate::db::DbConnection;
use crate::fleet::store::{self, InstanceRow};
use crate::values::CallId;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::Duration;

/// Marks a request one instance sent another on an admin's behalf.
pub const FORWARDED_HEADER: &str = "x-wsapi-forwarded-by";
/// Longest wait for another instance's answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);

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

/// The live instances other than this one, with their admin URLs.
async fn peers(state: &AppState, ttl: u64) -> Result<Vec<InstanceRow>, HttpResponse> {
    let me = state.instance.to_string();
    let all = read_db(&state.pool, move |c| store::instances(pg(c)?, ttl)).await?;
    Ok(all.into_iter().filter(|i| !i.expired && i.instance_id != me).collect())
}

/// `GET /calls?scope=fleet`: this instance's `/calls` beside every other live instance's, each call marked
/// with its instance; an instance that does not answer is listed with the error.
pub async fn fleet_calls(req: &HttpRequest, state: &AppState, local: Value) -> HttpResponse {
    let Some(fleet) = state.fleet.as_ref() else {
        return no_fleet();
    };
    let peers = match peers(state, fleet.member.lease_ttl_ms).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let client = peer_client();
    let asks = peers.iter().map(|p| {
        let url = format!("{}/calls", p.admin_url);
        let sent = forwarded(state, client.get(&url), req).send();
        async move {
            match sent.await {
                Ok(mut resp) if resp.status().is_success() => {
                    resp.json::<Value>().limit(64 << 20).await.map_err(|e| e.to_string())
                }
                Ok(resp) => Err(format!("answered {}", resp.status())),
                Err(e) => Err(e.to_string()),
            }
        }
    });
    let answers = join_all(asks).await;
    let mut calls = Vec::new();
    let mut instances = vec![instance_summary(state.instance.as_str(), Ok(&local), &mut calls)];
    for (peer, answer) in peers.iter().zip(&answers) {
        instances.push(instance_summary(&peer.instance_id, answer.as_ref(), &mut calls));
    }
    HttpResponse::Ok().json(json!({ "scope": "fleet", "instances": instances, "calls": calls }))
}

/// One instance's line of the fleet's call list; its calls, marked with it, go to `calls`.
fn instance_summary(instance: &str, answer: Result<&Value, &String>, calls: &mut Vec<Value>) -> Value {
    match answer {
        Ok(list) => {
            for call in list["calls"].as_array().into_iter().flatten() {
                let mut call = call.clone();
                call["instance_id"] = json!(instance);
                calls.push(call);
            }
            json!({"instance_id": instance, "active": list["active"], "max_concurrent_calls": list["max_concurrent_calls"]})
        }
        Err(e) => json!({"instance_id": instance, "error": format!("fleet: {instance} did not answer: {e}")}),
    }
}

/// `DELETE /calls/{id}` for a call not live here: sent on to the instance whose record says it carries
/// it. `None` when there is no such instance (the caller answers 404).
pub async fn forward_end(req: &HttpRequest, state: &AppState, call_id: &CallId) -> Option<HttpResponse> {
    state.fleet.as_ref()?;
    if req.headers().contains_key(FORWARDED_HEADER) {
        return None;
    }
    let id = call_id.to_string();
    let owner = read_db(&state.pool, move |c| store::owner_of(pg(c)?, &id)).await;
    let (instance, admin_url) = match owner {
        Ok(Some(o)) if o.0 != state.instance.as_str() => o,
        Ok(_) => return None,
        Err(resp) => return Some(resp),
    };
    let url = format!("{admin_url}/calls/{call_id}");
    let sent = forwarded(state, peer_client().delete(&url), req).send().await;
    Some(match sent {
        Ok(mut resp) => {
            let status = resp.status();
            let body = resp.json::<Value>().await.unwrap_or(Value::Null);
            log::info!("call_id={call_id} hang-up forwarded to {instance}: {status}");
            let mut answer = json!({"call_id": call_id, "instance_id": instance, "forwarded": true});
            if let Value::Object(fields) = body {
                for (k, v) in fields {
                    answer[k] = v;
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
    })
}
