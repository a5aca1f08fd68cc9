//! Controllers run on the leader only. Each compares desired with observed state and
//! returns commands (pure, unit-tested); the runner proposes them through Raft, so
//! every decision is committed before anything acts on it.

pub mod clock;
pub mod deadline;
pub mod liveness;
pub mod placement;
