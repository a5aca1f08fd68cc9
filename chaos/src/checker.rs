//! Invariant: no acknowledged create is lost, none is applied twice, no rejected create
//! is applied, and every replica ends with the same set.
//!
//! Pure: a [`History`] and the names each replica lists in, a report or every violation
//! out. Each key falls in exactly one class, decided by the history:
//!
//! | class        | history for the key                         | required on every replica |
//! | ------------ | ------------------------------------------- | ------------------------- |
//! | acknowledged | at least one `Ok`                            | present exactly once      |
//! | rejected     | no `Ok`, at least one definite `Failed`      | absent                    |
//! | unknown      | only `Unknown`                               | all present or all absent |
//! | unrequested  | no operation at all                          | absent                    |
//!
//! A rejected key is one that every attempt either definitely missed or left unknown;
//! if it had taken effect the client would have been told `Ok` on a retry with the same
//! request id, so its presence means the write happened after being reported failed.

use std::collections::{BTreeMap, BTreeSet};

use tonic::Code;

use crate::history::{History, OpKind, OpResult};

/// A broken invariant, with enough detail to find the operation in the logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("acknowledged create '{key}' (op {op}, request id {request_id}) is missing on replica {replica}")]
    Lost { key: String, op: u64, request_id: String, replica: usize },
    #[error("'{key}' is listed {count} times on replica {replica}")]
    Duplicated { key: String, replica: usize, count: usize },
    #[error("create '{key}' was rejected ({code:?}, op {op}) but is present on replica {replica}")]
    RejectedButPresent { key: String, op: u64, code: Code, replica: usize },
    #[error("'{key}' (outcome unknown to clients) is present on replicas {present_on:?} but absent on {absent_on:?}")]
    Diverged { key: String, present_on: Vec<usize>, absent_on: Vec<usize> },
    #[error("'{key}' is present on replica {replica} but no client ever created it")]
    Unrequested { key: String, replica: usize },
    #[error("no replica's state was observed")]
    NothingObserved,
}

/// What a passing check saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub replicas: usize,
    /// Distinct keys the history created.
    pub keys: usize,
    pub acknowledged: usize,
    pub rejected: usize,
    /// Keys whose outcome was unknown to every client, and what became of them.
    pub unknown_present: usize,
    pub unknown_absent: usize,
    /// Size of each replica's (identical) set.
    pub observed: usize,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} replicas agree on {} keys; {} keys requested: {} acknowledged, {} rejected, \
             {} unknown (present {}, absent {})",
            self.replicas,
            self.observed,
            self.keys,
            self.acknowledged,
            self.rejected,
            self.unknown_present + self.unknown_absent,
            self.unknown_present,
            self.unknown_absent
        )
    }
}

/// Checks the [`OpKind::CreateExperiment`] operations of `history` against the names each
/// replica holds (`observed_per_replica[i]` for replica `i`, e.g. from a stale list).
pub fn check_creates(history: &History, observed_per_replica: Vec<Vec<String>>) -> Result<CheckReport, Vec<Violation>> {
    if observed_per_replica.is_empty() {
        return Err(vec![Violation::NothingObserved]);
    }
    let mut violations = Vec::new();

    // Per replica, how often each name is listed.
    let counts: Vec<BTreeMap<&str, usize>> = observed_per_replica
        .iter()
        .map(|names| {
            let mut m = BTreeMap::new();
            for n in names {
                *m.entry(n.as_str()).or_insert(0) += 1;
            }
            m
        })
        .collect();
    for (replica, m) in counts.iter().enumerate() {
        for (key, &count) in m {
            if count > 1 {
                violations.push(Violation::Duplicated { key: (*key).into(), replica, count });
            }
        }
    }
    let present_on =
        |key: &str| -> (Vec<usize>, Vec<usize>) { (0..counts.len()).partition(|&r| counts[r].contains_key(key)) };

    let by_key = history.by_key(OpKind::CreateExperiment);
    let mut report = CheckReport { replicas: counts.len(), keys: by_key.len(), ..CheckReport::default() };
    for (key, ops) in &by_key {
        let (present, absent) = present_on(key);
        if let Some(ok) = ops.iter().find(|o| o.result.is_ok()) {
            report.acknowledged += 1;
            for replica in absent {
                violations.push(Violation::Lost {
                    key: (*key).into(),
                    op: ok.id,
                    request_id: ok.request_id.clone(),
                    replica,
                });
            }
        } else if let Some((op, code)) = ops.iter().find_map(|o| match o.result {
            OpResult::Failed(code) => Some((o, code)),
            _ => None,
        }) {
            report.rejected += 1;
            for replica in present {
                violations.push(Violation::RejectedButPresent { key: (*key).into(), op: op.id, code, replica });
            }
        } else if absent.is_empty() {
            report.unknown_present += 1;
        } else if present.is_empty() {
            report.unknown_absent += 1;
        } else {
            violations.push(Violation::Diverged { key: (*key).into(), present_on: present, absent_on: absent });
        }
    }

    let requested: BTreeSet<&str> = by_key.keys().copied().collect();
    for (replica, m) in counts.iter().enumerate() {
        for key in m.keys().filter(|k| !requested.contains(*k)) {
            violations.push(Violation::Unrequested { key: (*key).into(), replica });
        }
    }

    report.observed = counts[0].len();
    if violations.is_empty() { Ok(report) } else { Err(violations) }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::history::Recorder;

    /// A history from (key, [results of each attempt]).
    fn history(ops: &[(&str, &[OpResult])]) -> History {
        let rec = Recorder::new();
        for (i, (key, results)) in ops.iter().enumerate() {
            let mut op = rec.invoke(OpKind::CreateExperiment, *key, format!("req-{i}"));
            for (attempt, result) in results.iter().enumerate() {
                op.attempt(attempt % 3, Instant::now(), result.clone());
            }
            rec.complete(op);
        }
        rec.history()
    }

    fn names(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    fn unknown() -> OpResult {
        OpResult::Unknown("Unavailable: leader lost".into())
    }

    const EXISTS: OpResult = OpResult::Failed(Code::AlreadyExists);

    #[test]
    fn a_consistent_run_passes_with_unknowns_either_way() {
        let h = history(&[
            ("a", &[OpResult::Ok]),
            ("b", &[unknown(), OpResult::Ok]),
            ("c", &[unknown()]),
            ("d", &[unknown(), unknown()]),
            ("e", &[OpResult::Failed(Code::InvalidArgument)]),
        ]);
        let everywhere = names(&["a", "b", "c"]);
        let report = check_creates(&h, vec![everywhere.clone(), everywhere.clone(), everywhere]).expect("consistent");
        assert_eq!(
            report,
            CheckReport {
                replicas: 3,
                keys: 5,
                acknowledged: 2,
                rejected: 1,
                unknown_present: 1,
                unknown_absent: 1,
                observed: 3
            }
        );
    }

    #[test]
    fn a_rejection_is_fine_when_another_op_with_the_same_key_succeeded() {
        let h = history(&[("a", &[OpResult::Ok]), ("a", &[EXISTS])]);
        assert!(check_creates(&h, vec![names(&["a"]), names(&["a"])]).is_ok());
    }

    #[test]
    fn a_lost_acknowledged_create_fails() {
        let h = history(&[("a", &[OpResult::Ok]), ("b", &[unknown(), OpResult::Ok])]);
        let err = check_creates(&h, vec![names(&["a", "b"]), names(&["a"]), names(&["a", "b"])])
            .expect_err("the check must fail");
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(matches!(&err[0], Violation::Lost { key, replica: 1, .. } if key == "b"), "{err:?}");
    }

    #[test]
    fn a_create_applied_twice_fails() {
        let h = history(&[("a", &[OpResult::Ok])]);
        let err = check_creates(&h, vec![names(&["a"]), names(&["a", "a"])]).expect_err("the check must fail");
        assert_eq!(err, vec![Violation::Duplicated { key: "a".into(), replica: 1, count: 2 }]);
    }

    #[test]
    fn a_rejected_create_that_took_effect_fails() {
        // The retry of an unknown attempt was told AlreadyExists: the first attempt
        // committed and the idempotency key did not match it.
        let h = history(&[("a", &[unknown(), EXISTS])]);
        let err = check_creates(&h, vec![names(&["a"]), names(&["a"])]).expect_err("the check must fail");
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(err.iter().all(|v| matches!(v, Violation::RejectedButPresent { code: Code::AlreadyExists, .. })));
    }

    #[test]
    fn replicas_that_disagree_on_an_unknown_create_fail() {
        let h = history(&[("a", &[unknown()])]);
        let err = check_creates(&h, vec![names(&["a"]), names(&[]), names(&["a"])]).expect_err("the check must fail");
        assert_eq!(err, vec![Violation::Diverged { key: "a".into(), present_on: vec![0, 2], absent_on: vec![1] }]);
    }

    #[test]
    fn a_key_nobody_created_fails() {
        let h = history(&[("a", &[OpResult::Ok])]);
        let err = check_creates(&h, vec![names(&["a", "zz"]), names(&["a"])]).expect_err("the check must fail");
        assert_eq!(err, vec![Violation::Unrequested { key: "zz".into(), replica: 0 }]);
    }

    #[test]
    fn observing_nothing_fails() {
        assert_eq!(
            check_creates(&History::default(), vec![]).expect_err("the check must fail"),
            vec![Violation::NothingObserved]
        );
    }
}
