//! The client-side history of a fault run: what each client asked, where, when, and
//! what it was told.
//!
//! One [`Op`] is one logical client operation (one idempotency key); it may take several
//! [`Attempt`]s, each sent to one replica. Its [`Op::result`] is the last attempt's: a
//! client stops retrying at the first `Ok` or definite `Failed`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tonic::{Code, Status};

/// What an operation does. The key's meaning depends on the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// Key: the experiment name.
    CreateExperiment,
}

/// What the client learned about its write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// Acknowledged: committed on a majority and applied.
    Ok,
    /// Definitely not applied: rejected before or by the state machine.
    Failed(Code),
    /// The write may or may not have happened (timeout, replica unreachable or crashed,
    /// leadership lost before commit).
    Unknown(String),
}

impl OpResult {
    /// Classifies a gRPC error. Only codes that the scheduler returns for a write it did
    /// not (and never will) apply count as definite; everything else is unknown, which
    /// the checkers treat as "may be either".
    pub fn from_status(status: &Status) -> OpResult {
        match status.code() {
            code @ (Code::InvalidArgument
            | Code::AlreadyExists
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::Unauthenticated) => OpResult::Failed(code),
            code => OpResult::Unknown(format!("{code:?}: {}", status.message())),
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, OpResult::Ok)
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, OpResult::Unknown(_))
    }
}

/// One request of an operation to one replica.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Replica index the request was sent to.
    pub replica: usize,
    pub invoke: Instant,
    pub complete: Instant,
    pub result: OpResult,
}

/// One logical client operation and every attempt it took.
#[derive(Debug, Clone)]
pub struct Op {
    /// Unique within a [`Recorder`], in invocation order.
    pub id: u64,
    pub kind: OpKind,
    pub key: String,
    /// The idempotency key every attempt carried.
    pub request_id: String,
    pub invoke: Instant,
    pub complete: Instant,
    /// Never empty for a recorded op.
    pub attempts: Vec<Attempt>,
    pub result: OpResult,
}

impl Op {
    /// The replicas the attempts went to, in order.
    pub fn replicas(&self) -> Vec<usize> {
        self.attempts.iter().map(|a| a.replica).collect()
    }
}

/// An operation in progress; hand it back to [`Recorder::complete`] when done.
#[derive(Debug)]
pub struct PendingOp {
    id: u64,
    kind: OpKind,
    key: String,
    request_id: String,
    invoke: Instant,
    attempts: Vec<Attempt>,
}

impl PendingOp {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Records an attempt that was sent at `invoke` and has just completed.
    pub fn attempt(&mut self, replica: usize, invoke: Instant, result: OpResult) {
        self.attempts.push(Attempt { replica, invoke, complete: Instant::now(), result });
    }

    pub fn last_result(&self) -> Option<&OpResult> {
        self.attempts.last().map(|a| &a.result)
    }

    pub fn attempts(&self) -> usize {
        self.attempts.len()
    }
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    ops: Vec<Op>,
}

/// Shared by all client tasks of a run. std Mutex: held only to push, never across an
/// await.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Starts an operation now.
    pub fn invoke(&self, kind: OpKind, key: impl Into<String>, request_id: impl Into<String>) -> PendingOp {
        let id = {
            let mut inner = self.lock();
            inner.next_id += 1;
            inner.next_id
        };
        PendingOp {
            id,
            kind,
            key: key.into(),
            request_id: request_id.into(),
            invoke: Instant::now(),
            attempts: Vec::new(),
        }
    }

    /// Records the finished operation; its result is its last attempt's. An operation
    /// that never got an attempt out was never sent: it is recorded as a definite
    /// failure with `Code::Cancelled`.
    pub fn complete(&self, op: PendingOp) {
        let result = op.attempts.last().map(|a| a.result.clone()).unwrap_or(OpResult::Failed(Code::Cancelled));
        let complete = op.attempts.last().map(|a| a.complete).unwrap_or(op.invoke);
        let op = Op {
            id: op.id,
            kind: op.kind,
            key: op.key,
            request_id: op.request_id,
            invoke: op.invoke,
            complete,
            attempts: op.attempts,
            result,
        };
        self.lock().ops.push(op);
    }

    /// Everything completed so far, in invocation order.
    pub fn history(&self) -> History {
        let mut ops = self.lock().ops.clone();
        ops.sort_by_key(|o| o.id);
        History { ops }
    }
}

/// A finished run's operations, in invocation order.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub ops: Vec<Op>,
}

/// Counts of a history's final results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub ops: usize,
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
    /// Attempts beyond the first, over all operations.
    pub retries: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ops: {} ok, {} failed, {} unknown, {} retries",
            self.ops, self.ok, self.failed, self.unknown, self.retries
        )
    }
}

impl History {
    pub fn from_ops(ops: Vec<Op>) -> History {
        History { ops }
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary { ops: self.ops.len(), ..Summary::default() };
        for op in &self.ops {
            match op.result {
                OpResult::Ok => s.ok += 1,
                OpResult::Failed(_) => s.failed += 1,
                OpResult::Unknown(_) => s.unknown += 1,
            }
            s.retries += op.attempts.len().saturating_sub(1);
        }
        s
    }

    /// Operations of `kind`, grouped by key.
    pub fn by_key(&self, kind: OpKind) -> BTreeMap<&str, Vec<&Op>> {
        let mut map: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
        for op in self.ops.iter().filter(|o| o.kind == kind) {
            map.entry(op.key.as_str()).or_default().push(op);
        }
        map
    }

    /// Codes of the definite failures, with how often each occurred.
    pub fn failure_codes(&self) -> BTreeMap<String, usize> {
        let mut map = BTreeMap::new();
        for op in &self.ops {
            if let OpResult::Failed(code) = &op.result {
                *map.entry(format!("{code:?}")).or_default() += 1;
            }
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_classified_conservatively() {
        assert_eq!(OpResult::from_status(&Status::already_exists("x")), OpResult::Failed(Code::AlreadyExists));
        assert_eq!(OpResult::from_status(&Status::invalid_argument("x")), OpResult::Failed(Code::InvalidArgument));
        for unknown in
            [Status::unavailable("x"), Status::deadline_exceeded("x"), Status::cancelled("x"), Status::internal("x")]
        {
            assert!(OpResult::from_status(&unknown).is_unknown(), "{unknown:?}");
        }
    }

    #[test]
    fn an_op_ends_with_its_last_attempt() {
        let rec = Recorder::new();
        let mut op = rec.invoke(OpKind::CreateExperiment, "a", "r-a");
        op.attempt(0, Instant::now(), OpResult::Unknown("Unavailable".into()));
        op.attempt(2, Instant::now(), OpResult::Ok);
        rec.complete(op);
        rec.complete(rec.invoke(OpKind::CreateExperiment, "b", "r-b"));
        let h = rec.history();
        assert_eq!(h.ops[0].result, OpResult::Ok);
        assert_eq!(h.ops[0].replicas(), vec![0, 2]);
        assert_eq!(h.ops[1].result, OpResult::Failed(Code::Cancelled));
        assert_eq!(h.summary(), Summary { ops: 2, ok: 1, failed: 1, unknown: 0, retries: 1 });
    }
}
