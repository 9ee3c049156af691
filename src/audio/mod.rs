//! Audio work for the bridge: G.711 μ-law and PCM16 codecs, resampling between telephony rates, formats,
//! the per-call transcoder and the real-time pacer. Plain functions and structs, no I/O.
pub mod clip;
pub mod codec;
pub mod format;
pub mod level;
pub mod pacer;
pub mod resample;
pub mod signal;
pub mod transcode;
