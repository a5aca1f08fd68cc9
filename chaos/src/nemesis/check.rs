//! The verdicts of one run: linearizability of the journal per key, and the final-state
//! checks (no acknowledged training lost, none duplicated, none rejected yet present,
//! every training finished). Pure: fed the journal and what the replicas hold.

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::{Record, acknowledged_trainings, membership_histories, register_histories, rejected_trainings};
use crate::lin::{self, Membership, Register, Verdict};

/// Steps the search may take per key before it gives up.
pub const SEARCH_BUDGET: usize = 5_000_000;

/// The statuses a training ends in.
pub const TERMINAL: [&str; 4] = ["COMPLETE", "FAIL TRAIN", "STOPPED", "CREATE FAILED"];

#[derive(Debug, Default, Clone, Serialize)]
pub struct Findings {
    /// Every violation, one line each.
    pub anomalies: Vec<String>,
    pub lost: usize,
    pub duplicated: usize,
    pub double_booked: usize,
    /// Keys whose search gave up (neither proven nor refuted).
    pub inconclusive: usize,
    pub keys_checked: usize,
}

/// Checks every key of the journal; violations and give-ups are added to `findings`.
pub fn check_linearizable(records: &[Record], findings: &mut Findings) {
    let mut report = |kind: &str, key: &str, verdict: Verdict| match verdict {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable { linearized, blocked } => findings.anomalies.push(format!(
            "{kind} {key}: not linearizable; operation {blocked} returned before it could be ordered \
             (longest order found: {linearized:?})"
        )),
        Verdict::GaveUp { budget } => {
            findings.inconclusive += 1;
            tracing::warn!(key, budget, "linearizability search gave up");
        }
    };
    let experiments = membership_histories(records);
    let registers = register_histories(records);
    let keys = experiments.len() + registers.len();
    for (key, ops) in experiments {
        report("experiment", &key, lin::check(&Membership, &ops, SEARCH_BUDGET));
    }
    for (key, ops) in registers {
        report("register", &key, lin::check(&Register, &ops, SEARCH_BUDGET));
    }
    findings.keys_checked += keys;
}

/// What one replica lists at the end: training name → (id, status), with a count for
/// names listed more than once.
#[derive(Debug, Default, Clone)]
pub struct FinalTrainings {
    pub replica: usize,
    pub by_name: BTreeMap<String, Vec<(String, String)>>,
}

/// Lost, duplicated, wrongly present and unfinished trainings, replica by replica.
pub fn check_trainings(records: &[Record], finals: &[FinalTrainings], findings: &mut Findings) {
    let acked = acknowledged_trainings(records);
    let rejected = rejected_trainings(records);
    for f in finals {
        for name in &acked {
            if !f.by_name.contains_key(name) {
                findings.lost += 1;
                findings.anomalies.push(format!("replica {}: acknowledged training {name} is missing", f.replica));
            }
        }
        for name in &rejected {
            if f.by_name.contains_key(name) {
                findings.anomalies.push(format!("replica {}: rejected training {name} exists", f.replica));
            }
        }
        for (name, copies) in &f.by_name {
            if copies.len() > 1 {
                findings.duplicated += 1;
                findings.anomalies.push(format!(
                    "replica {}: training {name} listed {} times",
                    f.replica,
                    copies.len()
                ));
            }
            for (_, status) in copies {
                if !TERMINAL.contains(&status.as_str()) {
                    findings
                        .anomalies
                        .push(format!("replica {}: training {name} never finished ({status})", f.replica));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{Action, Outcome};
    use super::*;

    fn rec(id: u64, key: &str, action: Action, call: u64, ret: Option<u64>, outcome: Outcome, stale: bool) -> Record {
        Record { id, client: 0, replica: 0, key: key.into(), action, stale, call_ns: call, ret_ns: ret, outcome }
    }

    #[test]
    fn a_stale_follower_read_is_caught_unless_it_asked_for_stale() {
        let history = |stale| {
            vec![
                rec(0, "reg-0", Action::PutRegister { value: 1 }, 0, Some(10), Outcome::Ok, false),
                rec(1, "reg-0", Action::PutRegister { value: 2 }, 20, Some(30), Outcome::Ok, false),
                rec(2, "reg-0", Action::ReadRegister, 40, Some(50), Outcome::Read { value: Some(1) }, stale),
            ]
        };
        let mut f = Findings::default();
        check_linearizable(&history(false), &mut f);
        assert_eq!(f.anomalies.len(), 1, "{f:?}");
        let mut f = Findings::default();
        check_linearizable(&history(true), &mut f);
        assert!(f.anomalies.is_empty(), "{f:?}");
    }

    #[test]
    fn a_lost_experiment_create_is_caught() {
        let h = vec![
            rec(0, "exp-0", Action::CreateExperiment, 0, Some(10), Outcome::Ok, false),
            rec(1, "exp-0", Action::GetExperiment, 20, Some(30), Outcome::Failed { code: "NotFound".into() }, false),
        ];
        let mut f = Findings::default();
        check_linearizable(&h, &mut f);
        assert_eq!(f.anomalies.len(), 1);
        assert_eq!(f.keys_checked, 1);
    }

    #[test]
    fn an_unknown_create_later_seen_is_fine_but_a_duplicate_is_not() {
        let fine = vec![
            rec(0, "exp-1", Action::CreateExperiment, 0, None, Outcome::Unknown { error: "timeout".into() }, false),
            rec(1, "exp-1", Action::GetExperiment, 20, Some(30), Outcome::Ok, false),
        ];
        let mut f = Findings::default();
        check_linearizable(&fine, &mut f);
        assert!(f.anomalies.is_empty());
        let dup = vec![
            rec(0, "exp-1", Action::CreateExperiment, 0, Some(5), Outcome::Ok, false),
            rec(1, "exp-1", Action::CreateExperiment, 20, Some(30), Outcome::Ok, false),
        ];
        let mut f = Findings::default();
        check_linearizable(&dup, &mut f);
        assert_eq!(f.anomalies.len(), 1);
    }

    #[test]
    fn final_training_checks() {
        let records = vec![
            rec(0, "t-1", Action::CreateTraining, 0, Some(1), Outcome::Ok, false),
            rec(1, "t-2", Action::CreateTraining, 0, Some(1), Outcome::Ok, false),
            rec(
                2,
                "t-3",
                Action::CreateTraining,
                0,
                Some(1),
                Outcome::Failed { code: "InvalidArgument".into() },
                false,
            ),
            rec(3, "t-4", Action::CreateTraining, 0, None, Outcome::Unknown { error: "x".into() }, false),
        ];
        let done = |id: &str| vec![(id.to_string(), "COMPLETE".to_string())];
        let good = FinalTrainings {
            replica: 0,
            by_name: [("t-1".to_string(), done("a")), ("t-2".to_string(), done("b"))].into(),
        };
        let mut f = Findings::default();
        check_trainings(&records, std::slice::from_ref(&good), &mut f);
        assert!(f.anomalies.is_empty(), "{f:?}");

        let mut dup = done("b");
        dup.push(("c".into(), "RUNNING".into()));
        let bad =
            FinalTrainings { replica: 1, by_name: [("t-2".to_string(), dup), ("t-3".to_string(), done("d"))].into() };
        let mut f = Findings::default();
        check_trainings(&records, &[bad], &mut f);
        assert_eq!((f.lost, f.duplicated), (1, 1));
        assert!(f.anomalies.iter().any(|a| a.contains("rejected training t-3")));
        assert!(f.anomalies.iter().any(|a| a.contains("never finished")));
    }
}
