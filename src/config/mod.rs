//! Configuration: the TOML file, `WSAPI__SECTION__KEY` environment overrides, secrets from the environment
//! only, and validation that lists every problem at once (docs/configuration.md). The sections are here; loading
//! (file, environment, secrets, redaction) is in `load`, the files it names in `files`, each carrier's settings
//! in `carriers`, the checks in `validate`, the routes in `routes`, whom a fleet's instance trusts in `peers`;
//! `reading` turns the TOML into sections key by key, `origins` says where each setting came from, and
//! `setup` what to enter at each carrier.
mod carriers;
mod files;
mod load;
pub mod origins;
mod peers;
mod reading;
pub mod routes;
mod sections;
mod setup;
mod validate;

pub use carriers::*;
pub use load::redact_url;
pub use sections::*;
