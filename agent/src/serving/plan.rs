//! What to do about the pods of one endpoint stage instance (pure): the pods the
//! assignment lists, the containers the engine has and what the agent remembers of
//! each pod → a list of [`PodAction`]s. Called every probe interval; with nothing new
//! it returns only probes.
//!
//! | pod | container | action |
//! | --- | --- | --- |
//! | listed, failed | any | remove a container left of it, nothing else |
//! | listed | none, backoff over | [`PodAction::Create`] |
//! | listed | running | [`PodAction::Probe`] |
//! | listed | exited with [`EXIT_ARTIFACT_MISSING`] | [`PodAction::Fail`] (not restarted) |
//! | listed | exited otherwise, or created but never started | [`PodAction::Restart`] |
//! | not listed | any | [`PodAction::RemoveUnlisted`]: confirmed first |

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gantry_proto::v1::ServingPod;

use super::EXIT_ARTIFACT_MISSING;
use crate::runtime::{ContainerInfo, ContainerState, labels};

/// The first restart waits this long; each further one twice as long, up to
/// [`BACKOFF_MAX`].
pub const BACKOFF_START: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What the agent remembers of one pod between rounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMemory {
    /// Restarts so far (resets once the pod answered ready).
    pub restarts: u32,
    /// No new container before this instant (restart backoff).
    pub not_before: Option<Instant>,
    /// The pod cannot start and retrying will not fix it: the reason.
    pub failed: Option<String>,
    /// Its last probe answered ready.
    pub ready: bool,
    /// Why the last start or run did not work, while it is retried.
    pub last_error: Option<String>,
}

/// The delay before restart number `restarts + 1`.
pub fn backoff(restarts: u32) -> Duration {
    BACKOFF_START.saturating_mul(1u32 << restarts.min(16)).min(BACKOFF_MAX)
}

#[derive(Debug, Clone, PartialEq)]
pub enum PodAction {
    /// Resolve the artifact and start the pod's container.
    Create(ServingPod),
    /// Ask the running pod whether it is ready.
    Probe { pod_id: String, host_port: u32 },
    /// The pod's server said its artifact is missing: read its reason, record the pod
    /// failed, remove the container.
    Fail { pod_id: String, container: ContainerInfo },
    /// The container died (or never started): remove it and start again after the
    /// backoff.
    Restart { pod_id: String, container: ContainerInfo },
    /// A container of a failed pod: remove it.
    RemoveFailed(ContainerInfo),
    /// A container of a pod the assignment no longer lists: remove it once a
    /// linearizable read confirms the absence (a lagging replica's set may miss a pod
    /// a newer set added).
    RemoveUnlisted(ContainerInfo),
}

impl PodAction {
    /// Acts on the absence of a pod from the set: confirm first.
    pub fn needs_confirmation(&self) -> bool {
        matches!(self, PodAction::RemoveUnlisted(_))
    }
}

/// The pod a container runs, by its label.
pub fn pod_of(c: &ContainerInfo) -> Option<&str> {
    c.labels.get(labels::POD).map(String::as_str)
}

pub fn plan(
    pods: &[ServingPod],
    containers: &[ContainerInfo],
    memory: &BTreeMap<String, PodMemory>,
    now: Instant,
) -> Vec<PodAction> {
    let mut actions = Vec::new();
    for c in containers {
        if !pod_of(c).is_some_and(|id| pods.iter().any(|p| p.pod_id == id)) {
            actions.push(PodAction::RemoveUnlisted(c.clone()));
        }
    }
    for pod in pods {
        let remembered = memory.get(&pod.pod_id);
        let container = containers.iter().find(|c| pod_of(c) == Some(pod.pod_id.as_str()));
        let pod_id = pod.pod_id.clone();
        if remembered.is_some_and(|m| m.failed.is_some()) {
            if let Some(c) = container {
                actions.push(PodAction::RemoveFailed(c.clone()));
            }
            continue;
        }
        match container {
            None => {
                if remembered.and_then(|m| m.not_before).is_none_or(|t| now >= t) {
                    actions.push(PodAction::Create(pod.clone()));
                }
            }
            Some(c) => match c.state {
                ContainerState::Running => actions.push(PodAction::Probe { pod_id, host_port: pod.host_port }),
                ContainerState::Exited | ContainerState::Dead if c.exit_code == Some(EXIT_ARTIFACT_MISSING) => {
                    actions.push(PodAction::Fail { pod_id, container: c.clone() })
                }
                ContainerState::Exited | ContainerState::Dead | ContainerState::Created => {
                    actions.push(PodAction::Restart { pod_id, container: c.clone() })
                }
                // The engine is moving it between states: look again next round.
                ContainerState::Paused
                | ContainerState::Restarting
                | ContainerState::Removing
                | ContainerState::Unknown => {}
            },
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ContainerId;

    fn pod(id: &str) -> ServingPod {
        ServingPod { pod_id: id.into(), host_port: 31000, ..Default::default() }
    }

    fn container(pod_id: &str, state: ContainerState, exit_code: Option<i64>) -> ContainerInfo {
        ContainerInfo {
            id: ContainerId(format!("id-{pod_id}")),
            name: format!("c-{pod_id}"),
            labels: [(labels::POD.to_string(), pod_id.to_string())].into(),
            state,
            exit_code,
        }
    }

    #[test]
    fn missing_pods_are_created_and_running_ones_probed() {
        let now = Instant::now();
        let running = container("p2", ContainerState::Running, None);
        let actions = plan(&[pod("p1"), pod("p2")], &[running], &BTreeMap::new(), now);
        assert_eq!(actions, [PodAction::Create(pod("p1")), PodAction::Probe { pod_id: "p2".into(), host_port: 31000 }]);
    }

    #[test]
    fn a_dead_pod_restarts_after_its_backoff() {
        let now = Instant::now();
        let dead = container("p1", ContainerState::Exited, Some(137));
        let actions = plan(&[pod("p1")], std::slice::from_ref(&dead), &BTreeMap::new(), now);
        assert_eq!(actions, [PodAction::Restart { pod_id: "p1".into(), container: dead }]);
        let waiting = PodMemory { restarts: 1, not_before: Some(now + Duration::from_secs(2)), ..Default::default() };
        let memory = BTreeMap::from([("p1".to_string(), waiting)]);
        assert!(plan(&[pod("p1")], &[], &memory, now).is_empty(), "still backing off");
        assert_eq!(plan(&[pod("p1")], &[], &memory, now + Duration::from_secs(2)), [PodAction::Create(pod("p1"))]);
    }

    #[test]
    fn backoff_doubles_and_is_bounded() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(5), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn a_missing_artifact_fails_the_pod_for_good() {
        let now = Instant::now();
        let exited = container("p1", ContainerState::Exited, Some(EXIT_ARTIFACT_MISSING));
        let actions = plan(&[pod("p1")], std::slice::from_ref(&exited), &BTreeMap::new(), now);
        assert_eq!(actions, [PodAction::Fail { pod_id: "p1".into(), container: exited.clone() }]);
        let failed = PodMemory { failed: Some("no saved_model.pb".into()), ..Default::default() };
        let memory = BTreeMap::from([("p1".to_string(), failed)]);
        assert!(plan(&[pod("p1")], &[], &memory, now).is_empty(), "never started again");
        assert_eq!(plan(&[pod("p1")], std::slice::from_ref(&exited), &memory, now), [PodAction::RemoveFailed(exited)]);
    }

    #[test]
    fn unlisted_containers_are_removed_only_with_confirmation() {
        let now = Instant::now();
        let old = container("p0", ContainerState::Running, None);
        let unlabelled = ContainerInfo { labels: BTreeMap::new(), ..container("x", ContainerState::Running, None) };
        let actions = plan(&[], &[old.clone(), unlabelled.clone()], &BTreeMap::new(), now);
        assert_eq!(actions, [PodAction::RemoveUnlisted(old), PodAction::RemoveUnlisted(unlabelled)]);
        assert!(actions.iter().all(PodAction::needs_confirmation));
        assert!(!PodAction::Create(pod("p1")).needs_confirmation());
    }

    #[test]
    fn a_container_never_started_is_replaced() {
        let created = container("p1", ContainerState::Created, None);
        let actions = plan(&[pod("p1")], std::slice::from_ref(&created), &BTreeMap::new(), Instant::now());
        assert_eq!(actions, [PodAction::Restart { pod_id: "p1".into(), container: created }]);
    }
}
