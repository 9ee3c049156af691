//! The tools shipped beside the gateway, none of which a served call uses: the demo (`demo`), the
//! simulators of both peers (`sim`: the ElevenLabs agent, and every carrier, whose own events are in its
//! folder), the load tool (`loadtest`) and the Autobahn echo server (`conformance`).
pub mod conformance;
pub mod demo;
pub mod loadtest;
pub mod sim;
