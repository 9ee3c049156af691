//! Simulators of both peers, shipped in the product: `agent` is a real ElevenLabs Agents WebSocket server
//! (used by `simulate-agent`, `demo` and the tests); `carrier` places Mcube calls through the real refurl +
//! WebSocket path (used by `demo`, the tests and load generation); `dialects` speaks Plivo's, Exotel's and
//! Twilio's webhooks and events; `stream` places a call in any of the four; `sent` reads what the gateway
//! sends in any of them; `stamp` marks load-test audio with when it was sent and heard.
pub mod agent;
pub mod carrier;
pub mod dialects;
pub mod sent;
pub mod stamp;
pub mod stream;
