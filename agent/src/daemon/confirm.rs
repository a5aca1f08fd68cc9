//! One reconcile round's decisions, with the destructive ones confirmed first.
//!
//! A set from a replica that lags can miss a workload a newer set listed; acting on that
//! absence (abandoning a worker, removing a container nobody lists) would kill a
//! running training. So before such an action the agent reads its assignments
//! linearizably (the replica confirms with the leader that it is up to date) and plans
//! again on that answer; without an answer it does only what needs no confirmation.

use std::collections::BTreeMap;

use async_trait::async_trait;
use gantry_proto::v1::{AssignmentsRequest, WorkAssignment};

use super::link::Link;
use super::reconcile::{self, Action, Finished, Key, WorkerView};
use crate::runtime::ContainerInfo;

/// An assignment set and the raft index it is as of.
pub type AssignmentSet = (u64, Vec<WorkAssignment>);

/// Where the up-to-date assignment set comes from.
#[async_trait]
pub trait Latest: Send + Sync {
    /// The node's assignments as of a linearizable read.
    async fn latest(&self) -> Result<AssignmentSet, tonic::Status>;
}

/// The scheduler replicas, through the link.
pub struct LinkLatest {
    pub link: Link,
    pub node_id: String,
}

#[async_trait]
impl Latest for LinkLatest {
    async fn latest(&self) -> Result<AssignmentSet, tonic::Status> {
        let req = AssignmentsRequest { node_id: self.node_id.clone() };
        let set = self
            .link
            .any(|mut c| {
                let req = req.clone();
                async move { c.assignments(req).await }
            })
            .await?
            .into_inner();
        Ok((set.applied_index, set.items))
    }
}

/// What a round decided.
#[derive(Debug)]
pub struct Round {
    /// The index of the set the actions follow from.
    pub index: u64,
    pub actions: Vec<Action>,
    /// The confirmed set, when one was read: newer news for the agent's desired state.
    pub confirmed: Option<AssignmentSet>,
}

/// Plans on `set`; if that calls for a destructive action, plans again on the latest
/// set instead (or leaves the destructive actions out when it cannot be read).
pub async fn round(
    set: &AssignmentSet,
    workers: &BTreeMap<Key, WorkerView>,
    finished: &Finished,
    containers: &[ContainerInfo],
    latest: &dyn Latest,
) -> Round {
    let actions = reconcile::plan(&set.1, workers, finished, containers);
    if !actions.iter().any(Action::needs_confirmation) {
        return Round { index: set.0, actions, confirmed: None };
    }
    match latest.latest().await {
        // A linearizable read is never older than a set any replica sent before it.
        Ok(confirmed) if confirmed.0 >= set.0 => {
            let actions = reconcile::plan(&confirmed.1, workers, finished, containers);
            Round { index: confirmed.0, actions, confirmed: Some(confirmed) }
        }
        Ok((index, _)) => {
            tracing::warn!(index, held = set.0, "a linearizable read answered an older set; removing nothing");
            Round { index: set.0, actions: without_destructive(actions), confirmed: None }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot confirm the assignments; removing nothing this round");
            Round { index: set.0, actions: without_destructive(actions), confirmed: None }
        }
    }
}

fn without_destructive(actions: Vec<Action>) -> Vec<Action> {
    actions.into_iter().filter(|a| !a.needs_confirmation()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ContainerId, ContainerState, labels};

    struct Fixed(Result<AssignmentSet, tonic::Code>);

    #[async_trait]
    impl Latest for Fixed {
        async fn latest(&self) -> Result<AssignmentSet, tonic::Status> {
            self.0.clone().map_err(|code| tonic::Status::new(code, "test"))
        }
    }

    fn assignment(w: &str) -> WorkAssignment {
        WorkAssignment { workload_id: w.into(), ..Default::default() }
    }

    fn running(w: &str) -> ContainerInfo {
        ContainerInfo {
            id: ContainerId(format!("id-{w}")),
            name: format!("c-{w}"),
            labels: [(labels::WORKLOAD.to_string(), w.to_string()), (labels::RANK.to_string(), "0".to_string())].into(),
            state: ContainerState::Running,
            exit_code: None,
        }
    }

    #[tokio::test]
    async fn regression_a_stale_set_does_not_remove_a_running_container() {
        // A restarted agent (no workers yet) finds w1 running; the first set it gets comes
        // from a follower that lags and does not list w1 yet.
        let stale = (12, vec![]);
        let containers = [running("w1")];
        let no_workers = BTreeMap::new();
        let leader_knows = Fixed(Ok((15, vec![assignment("w1")])));
        let r = round(&stale, &no_workers, &Finished::default(), &containers, &leader_knows).await;
        assert!(
            !r.actions.iter().any(|a| matches!(a, Action::RemoveOrphan(_))),
            "removed a running container on a lagging replica's word: {:?}",
            r.actions
        );
        assert!(matches!(&r.actions[..], [Action::Start { existing: Some(c), .. }] if c.name == "c-w1"));
        assert_eq!(r.index, 15);
        // Without a confirmation nothing is removed either.
        let unreachable = Fixed(Err(tonic::Code::Unavailable));
        let r = round(&stale, &no_workers, &Finished::default(), &containers, &unreachable).await;
        assert!(r.actions.is_empty(), "{:?}", r.actions);
        // A confirmed absence does remove it.
        let gone = Fixed(Ok((15, vec![])));
        let r = round(&stale, &no_workers, &Finished::default(), &containers, &gone).await;
        assert_eq!(r.actions, [Action::RemoveOrphan(running("w1"))]);
    }

    #[tokio::test]
    async fn a_round_with_nothing_destructive_reads_nothing() {
        let set = (3, vec![assignment("w1")]);
        let never = Fixed(Err(tonic::Code::Internal));
        let r = round(&set, &BTreeMap::new(), &Finished::default(), &[], &never).await;
        assert!(matches!(&r.actions[..], [Action::Start { existing: None, .. }]));
        assert!(r.confirmed.is_none());
    }
}
