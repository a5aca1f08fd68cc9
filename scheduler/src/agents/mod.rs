//! The scheduler's side of its agents: who is connected to this replica, what they last
//! reported (in memory only: heartbeats never enter the raft log), what each node should
//! run, and the log requests relayed to them.
//!
//! ```text
//!   agent ──Session stream──▶ hub (per replica): heartbeats, log chunks
//!   agent ◀─Session stream─── assignments (pure, from State) + log requests
//!   agent ──ReportContainer──▶ raft (durable) ──▶ training status
//! ```

pub mod assignments;
pub mod gpu_health;
mod hub;
pub mod serving;

pub use hub::{AgentHub, LogSubscription, SessionSender};
