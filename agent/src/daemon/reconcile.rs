//! Reconciliation (pure): the desired assignments, the running workers and the
//! containers the engine has → what to do. Called on every change and periodically;
//! running it twice in a row with nothing new returns nothing the second time.

use std::collections::{BTreeMap, BTreeSet};

use gantry_proto::v1::WorkAssignment;

use crate::runtime::{ContainerInfo, labels};

/// One container of a workload.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub workload_id: String,
    pub rank: u32,
}

impl Key {
    pub fn of(a: &WorkAssignment) -> Key {
        Key { workload_id: a.workload_id.clone(), rank: a.rank }
    }

    /// The key a container's labels record, if they are complete.
    pub fn of_container(c: &ContainerInfo) -> Option<Key> {
        Some(Key {
            workload_id: c.labels.get(labels::WORKLOAD)?.clone(),
            rank: c.labels.get(labels::RANK)?.parse().ok()?,
        })
    }
}

/// What the reconciler knows of a worker it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerView {
    /// It was told to stop (or abandon, or release).
    pub stopping: bool,
    /// It was told to release its rank.
    pub releasing: bool,
}

/// What the reconciler remembers of workers that ended, by key, until the scheduler
/// stops listing the key.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// The worker finished (reported its end): not started again while a
    /// not-yet-updated assignment set still lists it.
    pub done: BTreeSet<Key>,
    /// The rank was released and reported GONE.
    pub released: BTreeSet<Key>,
}

// A few actions per reconcile round, consumed at once: boxing the assignment buys
// nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Start a worker; it adopts the container if there is one (after an agent restart).
    Start { assignment: WorkAssignment, existing: Option<ContainerInfo> },
    /// The scheduler asks for a stop: the worker stops its container and reports it.
    Stop(Key),
    /// The workload is no longer assigned here (it ended, or the node was declared
    /// lost): the worker removes its container without reporting.
    Abandon(Key),
    /// The workload has ended: the worker removes its container and reports it GONE.
    Release(Key),
    /// A leftover container of a rank whose end is recorded: remove it.
    RemoveLeftover(ContainerInfo),
    /// A container nobody assigns or runs: remove it.
    RemoveOrphan(ContainerInfo),
}

impl Action {
    /// Acts on the *absence* of a key from the assignment set, which a set from a
    /// lagging replica may show wrongly: confirm with a linearizable read first.
    /// (Everything else follows from what a set says, and what it says never goes
    /// back: a stop, an end, a release stay true.)
    pub fn needs_confirmation(&self) -> bool {
        matches!(self, Action::Abandon(_) | Action::RemoveOrphan(_))
    }
}

pub fn plan(
    desired: &[WorkAssignment],
    workers: &BTreeMap<Key, WorkerView>,
    finished: &Finished,
    containers: &[ContainerInfo],
) -> Vec<Action> {
    let mut actions = Vec::new();
    let wanted: BTreeMap<Key, &WorkAssignment> = desired.iter().map(|a| (Key::of(a), a)).collect();
    let by_key: BTreeMap<Key, &ContainerInfo> =
        containers.iter().filter_map(|c| Some((Key::of_container(c)?, c))).collect();
    for (key, a) in &wanted {
        match workers.get(key) {
            Some(w) if a.release && !w.releasing => actions.push(Action::Release(key.clone())),
            Some(w) if a.stop && !w.stopping => actions.push(Action::Stop(key.clone())),
            Some(_) => {}
            // A worker that finished still has to release: the scheduler holds the
            // rank's resources until it hears GONE.
            None if a.release && finished.released.contains(key) => {}
            None if a.release => actions
                .push(Action::Start { assignment: (*a).clone(), existing: by_key.get(key).map(|c| (*c).clone()) }),
            None if finished.done.contains(key) => {}
            // Its end is recorded: a leftover container goes, nothing starts again.
            None if a.finished => {
                if let Some(c) = by_key.get(key) {
                    actions.push(Action::RemoveLeftover((*c).clone()));
                }
            }
            None => actions
                .push(Action::Start { assignment: (*a).clone(), existing: by_key.get(key).map(|c| (*c).clone()) }),
        }
    }
    for key in workers.keys().filter(|k| !wanted.contains_key(*k)) {
        actions.push(Action::Abandon(key.clone()));
    }
    for c in containers {
        let owned = Key::of_container(c).is_some_and(|k| workers.contains_key(&k) || wanted.contains_key(&k));
        if !owned {
            actions.push(Action::RemoveOrphan(c.clone()));
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ContainerId, ContainerState};

    fn a(w: &str, rank: u32, stop: bool) -> WorkAssignment {
        WorkAssignment { workload_id: w.into(), rank, stop, ..Default::default() }
    }

    fn container(w: &str, rank: u32) -> ContainerInfo {
        ContainerInfo {
            id: ContainerId(format!("id-{w}-{rank}")),
            name: format!("c-{w}-{rank}"),
            labels: [(labels::WORKLOAD.to_string(), w.to_string()), (labels::RANK.to_string(), rank.to_string())]
                .into(),
            state: ContainerState::Running,
            exit_code: None,
        }
    }

    fn key(w: &str, rank: u32) -> Key {
        Key { workload_id: w.into(), rank }
    }

    #[test]
    fn new_assignments_start_and_existing_containers_are_adopted() {
        let plan = plan(
            &[a("w1", 0, false), a("w2", 1, false)],
            &BTreeMap::new(),
            &Finished::default(),
            &[container("w2", 1)],
        );
        assert_eq!(plan.len(), 2);
        assert!(matches!(&plan[0], Action::Start { existing: None, assignment } if assignment.workload_id == "w1"));
        assert!(matches!(&plan[1], Action::Start { existing: Some(c), .. } if c.name == "c-w2-1"));
    }

    #[test]
    fn regression_a_finished_rank_is_not_started_again_after_a_restart() {
        // A restarted agent (no workers, nothing done in memory) still assigned rank 0 of
        // a gang whose other ranks run elsewhere; rank 0 has SUCCEEDED.
        let finished = WorkAssignment { finished: true, ..a("w1", 0, false) };
        assert!(plan(std::slice::from_ref(&finished), &BTreeMap::new(), &Finished::default(), &[]).is_empty());
        // Its container was left over (the agent died before removing it): removed once.
        let leftover = container("w1", 0);
        let actions = plan(&[finished], &BTreeMap::new(), &Finished::default(), std::slice::from_ref(&leftover));
        assert_eq!(actions, [Action::RemoveLeftover(leftover)]);
    }

    #[test]
    fn running_workers_are_left_alone_until_a_stop() {
        let workers = BTreeMap::from([(key("w1", 0), WorkerView::default())]);
        let containers = [container("w1", 0)];
        assert!(plan(&[a("w1", 0, false)], &workers, &Finished::default(), &containers).is_empty());
        assert_eq!(
            plan(&[a("w1", 0, true)], &workers, &Finished::default(), &containers),
            [Action::Stop(key("w1", 0))]
        );
        let stopping = BTreeMap::from([(key("w1", 0), WorkerView { stopping: true, releasing: false })]);
        assert!(plan(&[a("w1", 0, true)], &stopping, &Finished::default(), &containers).is_empty());
    }

    #[test]
    fn unassigned_workers_are_abandoned_and_strays_removed() {
        let workers = BTreeMap::from([(key("w1", 0), WorkerView::default())]);
        let plan = plan(&[], &workers, &Finished::default(), &[container("w1", 0), container("old", 0)]);
        assert_eq!(plan, [Action::Abandon(key("w1", 0)), Action::RemoveOrphan(container("old", 0))]);
    }

    #[test]
    fn finished_work_is_not_restarted_from_a_stale_set() {
        let finished = Finished { done: BTreeSet::from([key("w1", 0)]), ..Finished::default() };
        assert!(plan(&[a("w1", 0, false)], &BTreeMap::new(), &finished, &[]).is_empty());
    }

    #[test]
    fn planning_is_stable() {
        let workers = BTreeMap::from([(key("w1", 0), WorkerView::default())]);
        assert!(plan(&[a("w1", 0, false)], &workers, &Finished::default(), &[container("w1", 0)]).is_empty());
    }

    #[test]
    fn an_ended_workload_is_released_even_after_its_worker_finished() {
        let release = WorkAssignment { release: true, finished: true, ..a("w1", 0, false) };
        // A running worker is told to release.
        let workers = BTreeMap::from([(key("w1", 0), WorkerView::default())]);
        let actions = plan(std::slice::from_ref(&release), &workers, &Finished::default(), &[container("w1", 0)]);
        assert_eq!(actions, [Action::Release(key("w1", 0))]);
        let releasing = BTreeMap::from([(key("w1", 0), WorkerView { stopping: true, releasing: true })]);
        assert!(plan(std::slice::from_ref(&release), &releasing, &Finished::default(), &[]).is_empty());
        // Its worker already finished (it reported FAILED): a release worker reports GONE.
        let done = Finished { done: BTreeSet::from([key("w1", 0)]), ..Finished::default() };
        let actions = plan(std::slice::from_ref(&release), &BTreeMap::new(), &done, &[]);
        assert!(matches!(&actions[..], [Action::Start { assignment, existing: None }] if assignment.release));
        // Once released, nothing more while a set that still lists it is current.
        let released = Finished { released: BTreeSet::from([key("w1", 0)]), ..Finished::default() };
        assert!(plan(std::slice::from_ref(&release), &BTreeMap::new(), &released, &[]).is_empty());
    }

    #[test]
    fn only_acting_on_an_absence_needs_confirmation() {
        let workers = BTreeMap::from([(key("w1", 0), WorkerView::default())]);
        let actions = plan(&[a("w2", 0, false)], &workers, &Finished::default(), &[container("old", 0)]);
        let confirm: Vec<bool> = actions.iter().map(Action::needs_confirmation).collect();
        assert_eq!(confirm, [false, true, true], "{actions:?}");
    }
}
