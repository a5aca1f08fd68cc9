//! The placement controller: pending workloads → `Place` commands, and explicit pending
//! reasons for what does not fit.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::time::Duration;

use gantry_domain::{Placement, PortRange};

use gantry_placement::{Problem, solve};
use tokio_util::sync::CancellationToken;

use crate::api::now_ms;
use crate::raft::RaftHandle;
use crate::state::rendezvous::{PortBook, spans_nodes};
use crate::state::{Command, CommandV1, State};

/// Pure: what placement wants to change, given the replicated state. A gang placed on
/// several nodes gets a block of `ports` free on all of them.
pub fn plan(state: &State, now_ms: u64, ports: PortRange) -> Vec<CommandV1> {
    // Oldest first (the index keeps them in that order).
    let pending: Vec<_> = state.workloads.pending().collect();
    if pending.is_empty() {
        return Vec::new();
    }
    let problem =
        Problem { nodes: state.node_snapshots(), pending: pending.iter().map(|(_, w)| w.demand.clone()).collect() };
    let solution = solve(&problem);
    let mut book = PortBook::of(state);
    let mut unplaced: Vec<(String, String)> =
        solution.unplaced.into_iter().map(|(id, why)| (id, why.to_string())).collect();
    let mut commands = Vec::new();
    for (workload_id, placement) in solution.placed {
        let gang_ports = if spans_nodes(&placement) {
            match book.reserve(&placement, ports) {
                Some(p) => Some(p),
                None => {
                    unplaced.push((workload_id, format!("no free rendezvous ports in {ports} on its nodes")));
                    continue;
                }
            }
        } else {
            None
        };
        commands.push(CommandV1::Place { workload_id, placement, now_ms, ports: gang_ports });
    }
    let reasons: Vec<(String, String)> = unplaced
        .into_iter()
        .filter(|(id, why)| state.workloads.get(id).is_some_and(|w| &w.pending_reason != why))
        .collect();
    if !reasons.is_empty() {
        commands.push(CommandV1::SetPendingReasons { reasons, now_ms });
    }
    commands
}

/// Placements the state machine refused, each with the view of the nodes it was made
/// on. Planning the same view again gives the same decision, which would be refused
/// again, and every refusal is an applied entry that triggers the next plan: without
/// this memory one bad decision loops through the raft log forever. A changed view
/// (a node joined, a workload ended) clears the memory.
#[derive(Debug, Default)]
pub struct Refused {
    view: u64,
    placements: HashMap<String, Placement>,
}

impl Refused {
    /// A fingerprint of what placement sees: free resources and GPUs of every node.
    pub fn view_of(state: &State) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}", state.node_snapshots()).hash(&mut h);
        h.finish()
    }

    /// Drops the decisions already refused on this same view.
    pub fn filter(&mut self, view: u64, commands: Vec<CommandV1>) -> Vec<CommandV1> {
        if view != self.view {
            self.view = view;
            self.placements.clear();
        }
        commands
            .into_iter()
            .filter(|c| match c {
                CommandV1::Place { workload_id, placement, .. } => self.placements.get(workload_id) != Some(placement),
                _ => true,
            })
            .collect()
    }

    pub fn record(&mut self, view: u64, workload_id: String, placement: Placement) {
        if view == self.view {
            self.placements.insert(workload_id, placement);
        }
    }
}

/// The inputs of the last plan whose every proposal was answered (committed or
/// refused). Planning the same pending set on the same nodes again decides the same
/// thing, so most writes (which touch neither) cost the controller no plan at all: the
/// plan is O(pending workloads), and it must not run on every write of a loaded state.
/// A proposal that got no answer (lost leadership, timeout) forgets the inputs, so the
/// next change re-plans and retries it.
#[derive(Debug, Default)]
struct Settled(Option<(u64, u64)>);

impl Settled {
    fn unchanged(&self, inputs: (u64, u64)) -> bool {
        self.0 == Some(inputs)
    }

    fn record(&mut self, inputs: (u64, u64), all_answered: bool) {
        self.0 = all_answered.then_some(inputs);
    }
}

/// Re-plans whenever the state changes (and at least every `interval`), on the leader.
pub async fn run(raft: RaftHandle, interval: Duration, ports: PortRange, cancel: CancellationToken) {
    let mut last_seen = 0;
    let mut refused = Refused::default();
    let mut settled = Settled::default();
    let mut applied_changes = raft.applied_watch();
    loop {
        // Event-driven: a create is placed as soon as it is applied (this is on the path
        // from `training create` to a running container); the timer is a fallback.
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = applied_changes.changed() => {}
            _ = tokio::time::sleep(interval) => {}
        }
        let applied = raft.applied_index();
        if !raft.is_leader() || applied == last_seen {
            continue;
        }
        last_seen = applied;
        let (commands, view, inputs) = {
            let state = raft.state();
            let view = Refused::view_of(&state);
            let inputs = (state.workloads.pending_version(), view);
            if settled.unchanged(inputs) {
                continue;
            }
            (refused.filter(view, plan(&state, now_ms(), ports)), view, inputs)
        };
        let proposals = commands.into_iter().map(|c| {
            let raft = raft.clone();
            async move {
                let place = match &c {
                    CommandV1::Place { workload_id, placement, .. } => Some((workload_id.clone(), placement.clone())),
                    _ => None,
                };
                (raft.propose(&Command::V1(c)).await, place)
            }
        });
        let mut all_answered = true;
        for (result, place) in futures::future::join_all(proposals).await {
            match result {
                Ok((_, Err(rejected))) => {
                    tracing::warn!(%rejected, "placement decision rejected at commit");
                    if let Some((workload_id, placement)) = place {
                        refused.record(view, workload_id, placement);
                    }
                }
                Err(e) => {
                    all_answered = false;
                    tracing::debug!(error = %e, "placement proposal failed");
                }
                Ok(_) => {}
            }
        }
        settled.record(inputs, all_answered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Applied, apply};
    use gantry_domain::*;

    fn setup(gpus_on_node: usize) -> State {
        let mut s = crate::state::tests::granted(State::default());
        let mut i = 0;
        let mut run = |s: &mut State, c: CommandV1| {
            i += 1;
            apply(s, i, Command::V1(c))
        };
        run(
            &mut s,
            CommandV1::PutInstanceType {
                instance_type: InstanceType {
                    name: "g2".into(),
                    cpu_millis: 4000,
                    memory_mib: 8192,
                    gpu_count: 2,
                    gpu_model: Some("A100-80GB".into()),
                },
            },
        )
        .unwrap();
        run(
            &mut s,
            CommandV1::PutImage {
                image: Image {
                    name: "torch".into(),
                    reference: "gantry/torch".into(),
                    core_type: ImageCoreType::Gpu,
                    framework: Framework::Pytorch,
                    framework_version: "2.3".into(),
                    python_version: "3.11".into(),
                },
            },
        )
        .unwrap();
        let gpus = (0..gpus_on_node)
            .map(|g| Gpu { uuid: format!("GPU-{g}"), model: "A100-80GB".into(), memory_mib: 81920 })
            .collect();
        run(
            &mut s,
            CommandV1::RegisterNode {
                hostname: "n1".into(),
                address: "10.0.0.1".into(),
                inventory: NodeInventory { cpu_millis: 16000, memory_mib: 65536, disk_mib: 0, gpus },
                now_ms: 1,
            },
        )
        .unwrap();
        let mut spec = training_spec();
        spec.create_experiment = true;
        let out = run(
            &mut s,
            CommandV1::CreateTraining {
                project: "p".into(),
                id: "trn-1".into(),
                experiment_id: "exp-1".into(),
                request_id: "r1".into(),
                spec,
                now_ms: 2,
            },
        );
        assert!(matches!(out, Ok(Applied::Training { .. })));
        s
    }

    fn training_spec() -> TrainingSpec {
        crate::state::tests::spec("t1", "e", "g2", "torch", 1)
    }

    #[test]
    fn places_when_it_fits_and_explains_when_not() {
        let s = setup(4);
        let cmds = plan(&s, 10, PortRange::default());
        assert!(matches!(&cmds[..], [CommandV1::Place { workload_id, .. }] if workload_id == "trn-1"));

        let mut s = setup(1);
        let cmds = plan(&s, 10, PortRange::default());
        let [CommandV1::SetPendingReasons { reasons, .. }] = &cmds[..] else { panic!("{cmds:?}") };
        assert!(reasons[0].1.contains("GPU"), "{}", reasons[0].1);
        apply(&mut s, 100, Command::V1(cmds[0].clone())).unwrap();
        assert!(s.training("p", "t1").unwrap().status_reason.contains("GPU"));
        // The same reason is not proposed again.
        assert!(plan(&s, 11, PortRange::default()).is_empty());
    }

    #[test]
    fn regression_a_refused_decision_is_not_proposed_again_on_the_same_view() {
        let s = setup(4);
        let mut refused = Refused::default();
        let view = Refused::view_of(&s);
        let cmds = refused.filter(view, plan(&s, 10, PortRange::default()));
        let [CommandV1::Place { workload_id, placement, .. }] = &cmds[..] else { panic!("{cmds:?}") };
        refused.record(view, workload_id.clone(), placement.clone());
        // The refusal is applied, the controller plans again on the same nodes: nothing.
        assert!(refused.filter(view, plan(&s, 11, PortRange::default())).is_empty());
        // The nodes change (another one joins): the decision is tried again.
        let mut s = s;
        let node = CommandV1::RegisterNode {
            hostname: "n2".into(),
            address: "10.0.0.2".into(),
            inventory: NodeInventory { cpu_millis: 1000, memory_mib: 1024, disk_mib: 0, gpus: vec![] },
            now_ms: 5,
        };
        apply(&mut s, 60, Command::V1(node)).unwrap();
        let view = Refused::view_of(&s);
        assert_eq!(refused.filter(view, plan(&s, 12, PortRange::default())).len(), 1);
    }

    #[test]
    fn a_plan_is_skipped_only_while_its_inputs_stay_and_every_proposal_was_answered() {
        let mut s = setup(4);
        let mut settled = Settled::default();
        let inputs = |s: &State| (s.workloads.pending_version(), Refused::view_of(s));
        assert!(!settled.unchanged(inputs(&s)), "nothing planned yet");
        settled.record(inputs(&s), false);
        assert!(!settled.unchanged(inputs(&s)), "a proposal got no answer: plan again");
        settled.record(inputs(&s), true);
        assert!(settled.unchanged(inputs(&s)));
        // A write that touches neither pending work nor nodes keeps the plan settled.
        let experiment = CommandV1::CreateExperiment {
            project: "p".into(),
            id: "x".into(),
            request_id: String::new(),
            spec: ExperimentSpec { name: "other".into(), description: String::new(), tags: vec![] },
            now_ms: 5,
        };
        apply(&mut s, 70, Command::V1(experiment)).unwrap();
        assert!(settled.unchanged(inputs(&s)));
        // A new pending workload changes the inputs.
        let mut spec = training_spec();
        spec.name = "t2".into();
        let create = CommandV1::CreateTraining {
            project: "p".into(),
            id: "trn-2".into(),
            experiment_id: "x".into(),
            request_id: "r2".into(),
            spec,
            now_ms: 6,
        };
        apply(&mut s, 71, Command::V1(create)).unwrap();
        assert!(!settled.unchanged(inputs(&s)));
        // So does a snapshot restore of the same state (versions never repeat).
        settled.record(inputs(&s), true);
        let restored: State = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert!(!settled.unchanged(inputs(&restored)));
    }

    #[test]
    fn a_stale_decision_is_rejected_at_commit() {
        let mut s = setup(2);
        let cmds = plan(&s, 10, PortRange::default());
        // Another workload takes the GPUs first (as a deposed leader's decision might).
        let CommandV1::Place { placement, .. } = &cmds[0] else { panic!() };
        let mut spec = training_spec();
        spec.name = "t2".into();
        apply(
            &mut s,
            50,
            Command::V1(CommandV1::CreateTraining {
                project: "p".into(),
                id: "trn-2".into(),
                experiment_id: "x".into(),
                request_id: "r2".into(),
                spec,
                now_ms: 3,
            }),
        )
        .unwrap();
        apply(
            &mut s,
            51,
            Command::V1(CommandV1::Place {
                workload_id: "trn-2".into(),
                placement: placement.clone(),
                now_ms: 4,
                ports: None,
            }),
        )
        .unwrap();
        let again = apply(&mut s, 52, Command::V1(cmds[0].clone()));
        assert!(matches!(again, Err(crate::state::Rejected::FailedPrecondition { .. })), "{again:?}");
        assert_eq!(s.training("p", "t1").unwrap().status, TrainingStatus::CreateRequested);
    }
}
