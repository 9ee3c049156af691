//! Configuration: the TOML file, `WSAPI__SECTION__KEY` environment overrides, secrets from the environment
//! only, and validation that lists every problem at once (docs/configuration.md). The sections are here; loading
//! (file, environment, secrets, redaction) is in `load`, the files it names in `files`, the carriers'
//! sections in `carriers` (each carrier's own in its folder, behind `section`), the checks in `validate`,
//! the routes in `routes`, whom a fleet's instance trusts in `peers`; `reading` turns the TOML into
//! sections key by key, `origins` says where each setting came from,
//! and `reload` what a SIGHUP does with each changed key.
mod carriers;
mod durations;
mod files;
mod load;
pub mod origins;
mod peers;
mod reading;
mod recording;
pub mod reload;
pub mod routes;
pub mod section;
mod sections;
mod validate;

pub use carriers::*;
pub use load::redact_url;
pub use recording::RecordingConfig;
pub use sections::*;
