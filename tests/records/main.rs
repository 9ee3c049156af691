//! Call records and their storage, on SQLite and on PostgreSQL: what a call leaves behind and how it is read
//! back, bursts, crashes, database faults, and rows the database refuses.
#[path = "../common/mod.rs"]
mod common;

mod history;
mod history_filters;
mod identity;
mod post_call;
mod recordings;
mod records_burst;
mod records_crash;
mod records_faults;
mod records_poison;
