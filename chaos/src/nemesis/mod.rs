//! The nemesis suite: a real cluster of separate hosts (a network namespace per replica
//! and per agent), clients recording every operation, seeded faults of every kind the
//! issue names, and checkers that judge the recorded history (linearizability per key),
//! the final state (nothing acknowledged lost, nothing duplicated, every training
//! finished) and the Docker engine itself (no GPU held twice, every container owned by
//! exactly one workload rank).
//!
//! [`run::run`] does one run; `cargo run -p gantry-chaos -- soak` does many; the tests
//! in `chaos/tests/` run short ones in CI.

pub mod check;
pub mod clients;
pub mod containers;
pub mod inject;
pub mod record;
pub mod run;
pub mod schedule;
pub mod trainings;

pub use run::{NemesisOptions, RunReport, run};
pub use schedule::FaultKind;
