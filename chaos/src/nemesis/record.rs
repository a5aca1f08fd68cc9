//! The nemesis workload's history: one [`Record`] per client operation, written as JSON
//! lines so that a failed run can be read (and its checks replayed) later.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::lin::{MembershipInput, MembershipOutput, Operation, RegisterInput, RegisterOutput};

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Action {
    CreateExperiment,
    DeleteExperiment,
    GetExperiment,
    /// Put an instance type whose memory is `value`.
    PutRegister {
        value: u64,
    },
    /// List instance types and take this key's memory.
    ReadRegister,
    CreateTraining,
}

/// What the client learned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// A read's answer: `None` when the key was absent.
    Read {
        value: Option<u64>,
    },
    /// A definite failure, by gRPC code name (`AlreadyExists`, `NotFound`, …).
    Failed {
        code: String,
    },
    /// Timeout, unreachable, crashed, leadership lost: may or may not have happened.
    Unknown {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: u64,
    pub client: usize,
    pub replica: usize,
    pub key: String,
    pub action: Action,
    /// A read answered from the replica's local state (`--stale`): not linearizable by
    /// contract, so left out of the check.
    pub stale: bool,
    /// Nanoseconds since the run started.
    pub call_ns: u64,
    /// `None` while pending or when the outcome is unknown.
    pub ret_ns: Option<u64>,
    pub outcome: Outcome,
}

impl Record {
    fn failed(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Failed { code } => Some(code),
            _ => None,
        }
    }

    fn is_unknown(&self) -> bool {
        matches!(self.outcome, Outcome::Unknown { .. })
    }
}

/// Shared by the client tasks; a std Mutex, never held across an await.
#[derive(Clone)]
pub struct Journal {
    start: Instant,
    inner: Arc<Mutex<Vec<Record>>>,
}

impl Journal {
    pub fn new() -> Journal {
        Journal { start: Instant::now(), inner: Arc::default() }
    }

    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn push(&self, mut record: Record) {
        let mut all = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        record.id = all.len() as u64;
        all.push(record);
    }

    pub fn records(&self) -> Vec<Record> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Default for Journal {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `records` as JSON lines.
pub fn write_jsonl(path: &Path, records: &[Record]) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in records {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Reads a history written by [`write_jsonl`].
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Record>> {
    let text = std::fs::read_to_string(path)?;
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| Ok(serde_json::from_str(l)?)).collect()
}

pub type MembershipOp = Operation<MembershipInput, MembershipOutput>;
pub type RegisterOp = Operation<RegisterInput, RegisterOutput>;

/// Experiment operations per name, as the membership model's history. Stale reads and
/// reads that got no answer are left out (they constrain nothing).
pub fn membership_histories(records: &[Record]) -> BTreeMap<String, Vec<MembershipOp>> {
    let mut by_key: BTreeMap<String, Vec<MembershipOp>> = BTreeMap::new();
    for r in records {
        let input = match r.action {
            Action::CreateExperiment => MembershipInput::Create,
            Action::DeleteExperiment => MembershipInput::Delete,
            Action::GetExperiment if !r.stale => MembershipInput::Get,
            _ => continue,
        };
        let output = match (&r.outcome, input) {
            (Outcome::Ok, MembershipInput::Get) => Some(MembershipOutput::Found),
            (Outcome::Ok, _) => Some(MembershipOutput::Ok),
            (Outcome::Failed { code }, _) if code == "AlreadyExists" => Some(MembershipOutput::AlreadyExists),
            (Outcome::Failed { code }, _) if code == "NotFound" => Some(MembershipOutput::NotFound),
            // Any other definite failure (bad request): the operation did nothing.
            (Outcome::Failed { .. }, _) => continue,
            (Outcome::Unknown { .. }, MembershipInput::Get) => continue,
            (Outcome::Unknown { .. } | Outcome::Read { .. }, _) => None,
        };
        by_key.entry(r.key.clone()).or_default().push(operation(r, input, output));
    }
    by_key
}

/// Instance-type operations per name, as the register model's history.
pub fn register_histories(records: &[Record]) -> BTreeMap<String, Vec<RegisterOp>> {
    let mut by_key: BTreeMap<String, Vec<RegisterOp>> = BTreeMap::new();
    for r in records {
        let (input, output) = match (&r.action, &r.outcome) {
            (Action::PutRegister { value }, Outcome::Ok) => {
                (RegisterInput::Write(*value), Some(RegisterOutput::Written))
            }
            (Action::PutRegister { value }, Outcome::Unknown { .. }) => (RegisterInput::Write(*value), None),
            (Action::ReadRegister, Outcome::Read { value }) if !r.stale => {
                (RegisterInput::Read, Some(RegisterOutput::Value(*value)))
            }
            _ => continue,
        };
        by_key.entry(r.key.clone()).or_default().push(operation(r, input, output));
    }
    by_key
}

fn operation<I, O>(r: &Record, input: I, output: Option<O>) -> Operation<I, O> {
    let known = output.is_some() && !r.is_unknown();
    Operation { id: r.id, call: r.call_ns, ret: if known { r.ret_ns } else { None }, input, output }
}

/// Training creates whose acknowledgement the client saw, by name.
pub fn acknowledged_trainings(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.action == Action::CreateTraining && r.outcome == Outcome::Ok)
        .map(|r| r.key.clone())
        .collect()
}

/// Training creates that definitely did nothing (so must not exist), by name.
pub fn rejected_trainings(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.action == Action::CreateTraining && r.failed().is_some())
        .map(|r| r.key.clone())
        .collect()
}
