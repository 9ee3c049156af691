//! Simulators of both peers, shipped in the product: `agent` is a real ElevenLabs Agents WebSocket server
//! (used by `simulate-agent`, `demo` and the tests); `carrier` places Mcube calls through the real refurl +
//! WebSocket path (used by `demo`, the tests and load generation); `dialects` speaks Plivo's and Exotel's
//! webhooks and events.
pub mod agent;
pub mod carrier;
pub mod dialects;
