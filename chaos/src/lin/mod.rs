//! A linearizability checker for recorded client histories (Wing & Gong's search with
//! Lowe's memoisation, as in Knossos and Porcupine), written for the nemesis suite.
//!
//! A history is a list of [`Operation`]s on one object: when the client invoked it, when
//! it learned the outcome (or never, for an outcome it could not learn), its input and
//! output. It is linearizable when there is a total order of the operations that
//! respects real time (an operation that returned before another was invoked comes
//! first) and that the sequential [`Model`] accepts, output by output. Operations with
//! an unknown outcome may take effect at any point after their invocation, or never.
//!
//! Keys are checked independently (linearizability is compositional): the caller splits
//! a history by key and checks each part with [`check`].
//!
//! ```text
//!   events (call/return, by time) ──▶ depth-first: linearize the first call whose model
//!   step accepts its output, lift it out; a return reached first means backtrack; the
//!   (linearized set, state) pairs already explored are skipped
//! ```

mod models;
mod search;
#[cfg(test)]
mod tests;

pub use models::{Membership, MembershipInput, MembershipOutput, Register, RegisterInput, RegisterOutput};
pub use search::{Verdict, check};

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification of one object.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Debug;
    type Output: Debug;

    fn init(&self) -> Self::State;

    /// The state after applying `input` to `state` if the object may answer `output`;
    /// `None` when it may not. `output` is `None` for an operation whose outcome the
    /// client never learned: any output is allowed then.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;
}

/// One client operation on one object. Times are any monotonic unit (the suite uses
/// nanoseconds since the run started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The recording's id, reported back in a [`Verdict`].
    pub id: u64,
    pub call: u64,
    /// `None`: the outcome is unknown (timeout, crash): the operation may have taken
    /// effect at any time after `call`, or never.
    pub ret: Option<u64>,
    pub input: I,
    /// `None` together with `ret: None`.
    pub output: Option<O>,
}
