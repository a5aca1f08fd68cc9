//! Placement: which node, and which GPUs, each pending workload's containers get.
//!
//! Pure and synchronous: a snapshot of free resources and the pending queue go in, a
//! plan comes out. No clock, no I/O, no hash-map order; the same problem always gives
//! the same plan. The scheduler calls [`solve`], commits each placement through Raft
//! after [`check_fit`] against the state it applies to, and [`apply`]s it.
//!
//! ```text
//!   Problem { nodes, pending }
//!        │   for each workload, oldest first, whole gang or nothing:
//!        ▼
//!   feasibility ──► fit ──────────► score ─────────────► plan
//!   (pool: CPU     (range query:    (tier, then          (subtract; roll the
//!    or GPU model)  free >= need)    normalised leftover)  gang back if short)
//!        │
//!        └─ nothing fits ──► reason::diagnose ──► Unplaceable (shown to the user)
//! ```
//!
//! See `README.md` beside this crate for the goals and the scoring in prose.

mod fit;
mod index;
mod reason;
mod score;
mod snapshot;
mod solve;

pub use fit::{FitError, apply, check_fit};
pub use reason::Unplaceable;
pub use snapshot::{FreeGpu, NodeSnapshot};
pub use solve::{Problem, Solution, Solver, solve};
