//! websocket_api: a media gateway that bridges carrier phone calls (Mcube, Plivo, Exotel, Twilio, each in
//! its own dialect) to ElevenLabs conversational agents over WebSocket, one actor per call, under a cap
//! measured, explained and changeable at run time, with every call's record kept.
//!
//! Layout, by layer. A module uses only modules of its own layer or of layers below it, and no two files
//! import each other, directly or around a circle: `scripts/layers` checks both (CI runs it).
//!
//! 1. foundation — `values`, `config`, `carriers::list`, `carriers::*::config`, `metrics`, `net`, `tls`, `supervise`:
//!    typed bounded values made where data enters; the configuration and its validation (the one list of
//!    carriers, and each carrier's section in its folder); the Prometheus metrics; socket options; the
//!    carrier listener's reloadable certificate; panics caught at each part's boundary, and fault points.
//! 2. wire — `protocol`, `carriers`, `audio`, `ws`, `carrier_token`, `routing`: both sides' wire formats as
//!    plain types (no I/O), each carrier's in its folder with its `Dialect`; codecs, resampling and the
//!    pacer's queue; WebSocket frame plumbing; per-call carrier tokens; the routes from a carrier and
//!    number to an agent.
//! 3. records — `db`, `recording`, `capacity`: call records (SQLite or PostgreSQL), the writer, batcher
//!    and spool; the calls' recordings (stereo WAV on the call's clock, written off its thread); live limits
//!    × measured per-call cost.
//! 4. call — `call`, `registry`, `fleet`, `admission`, `reconcile`: the `CallActor` per call, its parts and
//!    its two legs;
//!    the registry that counts and lists calls (the cap); the fleet's lease and share of a cap held across
//!    instances on one PostgreSQL database; admission, the one door every carrier's call comes in by (route,
//!    breakers, cap and shares, token; then claim and launch); the reconciler that fetches the verdicts no
//!    webhook brought.
//! 5. edges — `http`, `carriers::*::endpoint`: the webhooks' and media sockets' HTTP side, each carrier's
//!    webhook in its folder, admin endpoints, health checks.
//! 6. process — `gateway`, `lifecycle`: assembling and starting it all; FD limits, systemd, signals.
//! 7. tools — `tools`, `carriers::*::sim`: beside the product, used by no served call: the demo, the agent
//!    and carrier simulators (each carrier's own in its folder), the load tool, the Autobahn echo server.
pub mod admission;
pub mod audio;
pub mod call;
pub mod capacity;
pub mod carrier_token;
pub mod carriers;
pub mod config;
pub mod db;
pub mod fleet;
pub mod gateway;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod reconcile;
pub mod recording;
pub mod registry;
pub mod routing;
pub mod supervise;
pub mod tls;
pub mod tools;
pub mod values;
pub mod ws;
