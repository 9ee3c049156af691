//! The call registry: the single place that admits, counts and lists calls, behind one door (`Registry`,
//! in `door`). Admission happens before any WebSocket upgrade or upstream dial; a slot is released when its
//! call's `SlotGuard` drops (every way a call ends passes there), when a reservation's deadline passes
//! without a WebSocket (the call is then recorded as never connected), and by a periodic reconcile against
//! live call actors. The table is plain data in `slots`; the clock that expires and reconciles is the
//! actor in `actor`. In a fleet the table also stops at this instance's share of the fleet's cap (`share`,
//! moved by `crate::fleet`).
mod actor;
mod door;
mod share;
mod slots;

pub use door::{FleetView, Registry, RegistrySetup, SlotGuard};
pub use share::FleetShare;
pub use slots::*;
