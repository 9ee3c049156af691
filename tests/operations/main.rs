//! What an operator touches: the admin API, drain and reload on the real binary, the cap, the command
//! line, the systemd unit and a loadtest smoke run.
#[path = "../common/mod.rs"]
mod common;

mod admin;
mod browser;
mod capacity;
mod cli;
mod config_matrix;
mod console;
mod dialects;
mod docs;
mod drain;
mod events;
mod listen;
mod loadtest_smoke;
mod reload;
mod systemd;
mod tls;
