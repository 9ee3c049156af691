//! Simulators of both peers, shipped in the product: `agent` is a real ElevenLabs Agents WebSocket server
//! (used by `simulate-agent`, `demo` and the tests); `carrier` places Mcube calls through the real refurl +
//! WebSocket path (used by `demo`, the tests and load generation).
pub mod agent;
pub mod carrier;
