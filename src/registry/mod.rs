//! The call registry: the single place that admits, counts and lists calls. `Slots` is the table, decided
//! synchronously under a short lock; the `CallRegistry` actor does the timed work around it. Admission
//! happens before any WebSocket upgrade or upstream dial; a slot is released when the call actor stops, when
//! a reservation's deadline passes without a WebSocket (the call is then recorded as never connected), and
//! by a periodic reconcile against live call actors. The table is in `slots`; the actor and its messages
//! are in `actor`.
mod actor;
mod slots;

pub use actor::*;
pub use slots::*;
