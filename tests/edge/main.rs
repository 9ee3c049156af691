//! Hostile input at the trust boundary: misbehaving carriers, what crosses the wire validated where it
//! enters, properties over generated input, and descriptor exhaustion on the real binary.
#[path = "../common/mod.rs"]
mod common;

mod carrier_identity;
mod fd_exhaustion;
mod hostile_carrier;
mod plivo_replay;
mod properties;
mod supervision;
mod trust_boundary;
