//! Calls bridged over real sockets: the real gateway between a carrier client and the agent simulator —
//! audio both ways, pacing, barge-in, the agent's end and auth, heartbeats, pings, hang-ups, upstream
//! failures, and that what we send ElevenLabs validates against its schema.
#[path = "../common/mod.rs"]
mod common;

mod agent_auth;
mod agent_end;
mod breaker;
mod conversation;
mod exotel;
mod hangup;
mod heartbeat;
mod interruption;
mod pacing;
mod passthrough;
mod ping;
mod plivo;
mod protocol;
mod recording;
mod resume;
mod route_failures;
mod routes;
mod schema;
mod tls;
mod transcoding;
mod turns;
mod twilio;
mod upstream_failure;
