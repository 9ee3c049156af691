//! websocket_api: a media gateway that bridges carrier phone calls (Mcube, Plivo-style stream events) to
//! ElevenLabs conversational agents over WebSocket, one supervised actor per call, with a call cap.
//!
//! Layout:
//! - `config`: TOML + `WSAPI__SECTION__KEY` overrides, secrets from the environment, validation.
//! - `values`: typed, bounded values for everything a carrier, ElevenLabs or an admin sends, made where it
//!   enters.
//! - `error`: errors tagged by side (carrier, elevenlabs, db, internal).
//! - `registry`: the `CallRegistry` actor — admission, the cap, slots, the live-call list.
//! - `call`: the `CallActor` per call and its two legs, `McubeLeg` and `ElevenLabsLeg`.
//! - `protocol`: wire formats of both sides as plain serde types (no I/O).
//! - `audio`: μ-law/PCM16 codecs, resampling, the per-call transcoder and pacer (no I/O).
//! - `http`: carrier endpoints, admin endpoints, health checks.
//! - `server`: binds and starts everything.
//! - `capacity`: live system limits × measured per-call cost → the capacity report.
//! - `loadtest`: simulated carriers against a running gateway, measured.
//! - `lifecycle`: FD limits, systemd notifications, signals (drain, reload).
//! - `db`: call records (SQLite or PostgreSQL via diesel + r2d2), the writer actor, batcher and spool.
//! - `sim`: the ElevenLabs agent simulator and the Mcube carrier simulator (demo, tests, load).
//! - `carrier_token`: per-call HMAC tokens in the carrier's WebSocket URL.
//! - `ws_frames`: reassembly of fragmented WebSocket messages.
//! - `metrics`: the Prometheus metrics.
pub mod audio;
pub mod call;
pub mod capacity;
pub mod carrier_token;
pub mod config;
pub mod conformance;
pub mod db;
pub mod demo;
pub mod error;
pub mod http;
pub mod lifecycle;
pub mod loadtest;
pub mod metrics;
pub mod protocol;
pub mod registry;
pub mod server;
pub mod sim;
pub mod values;
pub mod ws_frames;
