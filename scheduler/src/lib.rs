//! The Gantry scheduler: a Raft-replicated control plane.
//!
//! ```text
//!  gantryctl / agents ──gRPC──▶ api ──propose──▶ raft ──commit──▶ state::apply
//!                                 ◀──read (ReadIndex)──────────── State
//!  controller (leader only): State ──plan──▶ commands ──propose──▶ raft
//! ```
//!
//! | module | role |
//! | --- | --- |
//! | `state` | the pure replicated state machine |
//! | `raft` | ready loop, durable log, peer transport |
//! | `api` | gRPC services, auth, status mapping |
//! | `controller` | leader-side reconcilers (placement) |
//! | `metrics` | Prometheus text metrics |
//! | `config`, `bootstrap`, `server` | process wiring |
//! | `secret` | tokens in memory: redacted, compared in constant time |

// Tests may unwrap: a panic there is a failed test, not a crash on input.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod agents;
pub mod api;
pub mod bootstrap;
pub mod config;
pub mod controller;
pub mod embedded_agent;
pub mod embedded_gateway;
pub mod metrics;
pub mod raft;
pub mod secret;
pub mod server;
pub mod state;
