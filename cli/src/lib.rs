//! `gantryctl`, the admin command line of a Gantry cluster.
//!
//! ```text
//!   argv ──▶ cli (clap) ──▶ config (flags > env > file) ──▶ connect (TLS, token, failover)
//!                                                               │ gRPC
//!   stdout ◀── output (table | json) ◀── commands/<noun> ◀──────┘
//!   stderr ◀── report (one line, exit code 1; usage errors 2; a waited-for training's own)
//! ```
//!
//! A library so the parsing, config and rendering can be unit-tested and reused by the
//! end-to-end tests; `main.rs` only sets up the process.

// Tests may unwrap: a panic there is a failed test, not a crash on user input.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cli;
pub mod commands;
pub mod config;
pub mod connect;
pub mod output;
pub mod parse;
pub mod report;
pub mod request_id;
pub mod toml_file;
