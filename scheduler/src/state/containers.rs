//! What the containers of a workload report, and what that means for its training.
//!
//! Agents report one container (one rank) at a time; [`training_target`] folds the
//! phases of every rank into the training's next status. Pure, so the rules are tested
//! without agents:
//!
//! ```text
//!   any FAILED                        ─▶ FAIL TRAIN (the failing rank's reason)
//!   stop requested, every rank ended  ─▶ STOPPED
//!   every rank SUCCEEDED              ─▶ COMPLETE
//!   every rank UPLOADING/SUCCEEDED    ─▶ COMPLETE IN PROGRESS
//!   any rank started                  ─▶ RUNNING
//! ```

use gantry_domain::TrainingStatus;
use serde::{Deserialize, Serialize};

/// The life of one container as its agent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerPhase {
    /// Placed; the agent has not started it yet.
    Pending,
    Running,
    /// Exited 0; its model and checkpoints are being copied to the output paths.
    Uploading,
    Succeeded,
    Failed,
    Stopped,
}

impl ContainerPhase {
    pub fn parse(s: &str) -> Option<ContainerPhase> {
        Some(match s {
            "PENDING" => ContainerPhase::Pending,
            "RUNNING" => ContainerPhase::Running,
            "UPLOADING" => ContainerPhase::Uploading,
            "SUCCEEDED" => ContainerPhase::Succeeded,
            "FAILED" => ContainerPhase::Failed,
            "STOPPED" => ContainerPhase::Stopped,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ContainerPhase::Pending => "PENDING",
            ContainerPhase::Running => "RUNNING",
            ContainerPhase::Uploading => "UPLOADING",
            ContainerPhase::Succeeded => "SUCCEEDED",
            ContainerPhase::Failed => "FAILED",
            ContainerPhase::Stopped => "STOPPED",
        }
    }

    /// The container will not run again.
    pub fn is_final(&self) -> bool {
        matches!(self, ContainerPhase::Succeeded | ContainerPhase::Failed | ContainerPhase::Stopped)
    }

    /// Order of a container's life; a report never moves a rank backwards (a late,
    /// retried RUNNING after SUCCEEDED changes nothing).
    fn rank(&self) -> u8 {
        match self {
            ContainerPhase::Pending => 0,
            ContainerPhase::Running => 1,
            ContainerPhase::Uploading => 2,
            ContainerPhase::Succeeded | ContainerPhase::Failed | ContainerPhase::Stopped => 3,
        }
    }

    /// Whether a rank in `self` may move to `to`.
    pub fn may_become(&self, to: ContainerPhase) -> bool {
        to.rank() > self.rank()
    }
}

/// The status the training should have given its ranks' phases, if it should change.
pub fn training_target(current: TrainingStatus, phases: &[ContainerPhase]) -> Option<TrainingStatus> {
    use ContainerPhase as P;
    use TrainingStatus as S;
    if current.is_terminal() {
        return None;
    }
    let all = |f: fn(&P) -> bool| !phases.is_empty() && phases.iter().all(f);
    let target = if current == S::StopInProgress {
        all(P::is_final).then_some(S::Stopped)?
    } else if phases.contains(&P::Failed) {
        S::FailTrain
    } else if all(|p| *p == P::Succeeded) {
        S::Complete
    } else if all(|p| matches!(p, P::Uploading | P::Succeeded)) {
        S::CompleteInProgress
    } else if phases.iter().any(|p| *p != P::Pending) {
        S::Running
    } else {
        return None;
    };
    (target != current).then_some(target)
}

/// The statuses to pass through from `from` to `to`, so the history reads as the guide's
/// lifecycle even when reports arrive faster than each step (a container that finishes
/// before its RUNNING report was applied still shows RUNNING).
pub fn path(from: TrainingStatus, to: TrainingStatus) -> Vec<TrainingStatus> {
    use TrainingStatus as S;
    let chain = [S::CreateInProgress, S::Running, S::CompleteInProgress, S::Complete];
    if let (Some(i), Some(j)) = (chain.iter().position(|s| *s == from), chain.iter().position(|s| *s == to))
        && i < j
    {
        return chain[i + 1..=j].to_vec();
    }
    vec![to]
}

#[cfg(test)]
mod tests {
    use super::ContainerPhase as P;
    use super::*;
    use gantry_domain::TrainingStatus as S;

    #[test]
    fn phases_parse_and_print() {
        for p in [P::Pending, P::Running, P::Uploading, P::Succeeded, P::Failed, P::Stopped] {
            assert_eq!(P::parse(p.as_str()), Some(p));
        }
        assert_eq!(P::parse("running"), None);
    }

    #[test]
    fn phases_never_go_backwards() {
        assert!(P::Pending.may_become(P::Running));
        assert!(P::Running.may_become(P::Failed));
        assert!(!P::Succeeded.may_become(P::Running));
        assert!(!P::Failed.may_become(P::Succeeded));
        assert!(!P::Running.may_become(P::Running));
    }

    #[test]
    fn one_container_lifecycle() {
        assert_eq!(training_target(S::CreateInProgress, &[P::Pending]), None);
        assert_eq!(training_target(S::CreateInProgress, &[P::Running]), Some(S::Running));
        assert_eq!(training_target(S::Running, &[P::Running]), None);
        assert_eq!(training_target(S::Running, &[P::Uploading]), Some(S::CompleteInProgress));
        assert_eq!(training_target(S::CompleteInProgress, &[P::Succeeded]), Some(S::Complete));
        assert_eq!(training_target(S::Running, &[P::Failed]), Some(S::FailTrain));
        assert_eq!(training_target(S::Complete, &[P::Failed]), None);
    }

    #[test]
    fn a_gang_completes_only_when_every_rank_has() {
        assert_eq!(training_target(S::Running, &[P::Succeeded, P::Running]), None);
        assert_eq!(training_target(S::Running, &[P::Succeeded, P::Uploading]), Some(S::CompleteInProgress));
        assert_eq!(training_target(S::CompleteInProgress, &[P::Succeeded, P::Succeeded]), Some(S::Complete));
        assert_eq!(training_target(S::Running, &[P::Succeeded, P::Failed]), Some(S::FailTrain));
        assert_eq!(training_target(S::CreateInProgress, &[P::Pending, P::Running]), Some(S::Running));
    }

    #[test]
    fn a_stop_ends_when_every_rank_has_ended() {
        assert_eq!(training_target(S::StopInProgress, &[P::Running, P::Stopped]), None);
        assert_eq!(training_target(S::StopInProgress, &[P::Stopped, P::Succeeded]), Some(S::Stopped));
        assert_eq!(training_target(S::StopInProgress, &[P::Failed]), Some(S::Stopped));
    }

    #[test]
    fn paths_walk_the_happy_chain() {
        assert_eq!(path(S::CreateInProgress, S::Complete), vec![S::Running, S::CompleteInProgress, S::Complete]);
        assert_eq!(path(S::Running, S::CompleteInProgress), vec![S::CompleteInProgress]);
        assert_eq!(path(S::CreateInProgress, S::FailTrain), vec![S::FailTrain]);
        assert_eq!(path(S::StopInProgress, S::Stopped), vec![S::Stopped]);
    }
}
