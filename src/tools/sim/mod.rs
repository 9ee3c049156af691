//! Simulators of both peers, shipped in the product: `agent` is a real ElevenLabs Agents WebSocket server
//! (used by `simulate-agent`, `demo` and the tests); `carrier` places Mcube calls through the real refurl +
//! WebSocket path (used by `demo`, the tests and load generation); `dialects` gathers every carrier's
//! own webhooks and events from its folder; `placing` is what each carrier's simulator places a call with; `stream` places a call in any of the four; `sent` reads what the gateway
//! sends in any of them; `stamp` marks load-test audio with when it was sent and heard.
pub mod agent;

/// Why a simulated carrier's request got no answer it could read.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{0} failed: {1}")]
    Request(&'static str, String),
    #[error("{0} unreadable: {1}")]
    Answer(&'static str, String),
}

pub mod carrier;
pub mod dialects;
pub mod placing;
pub mod sent;
pub mod stamp;
pub mod stream;
