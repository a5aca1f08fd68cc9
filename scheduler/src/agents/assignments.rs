//! What a node should run: derived from the replicated state alone (pure), resent
//! whole to the node's agent whenever it changes, so the agent reconciles to it
//! (level-triggered: a lost message is repaired by the next one).

use gantry_domain::TrainingStatus;
use gantry_proto::convert;
use gantry_proto::v1::WorkAssignment;

use crate::state::{State, WorkloadOwner};

/// Every container placed on `node_id` that still holds its resources (an ended
/// workload's until the agent reports it gone), ordered by workload id and rank.
pub fn node_assignments(state: &State, node_id: &str) -> Vec<WorkAssignment> {
    let mut out = Vec::new();
    for (workload_id, w) in state.workloads.on_node(node_id) {
        let Some(placement) = &w.placement else { continue };
        let (project, name) = match &w.owner {
            WorkloadOwner::Training { project, name } => (project, name),
            WorkloadOwner::StageInstance { .. } => {
                out.extend(super::serving::instance_assignment(state, node_id, workload_id, w));
                continue;
            }
        };
        // An ended workload outlives its training (deleted, its name perhaps reused):
        // the agent needs only its key to release it.
        let training = state.training(project, name).filter(|t| &t.workload_id == workload_id);
        if training.is_none() && !w.ended {
            continue;
        }
        let rank_addresses: Vec<String> = placement
            .assignments
            .iter()
            .map(|a| state.nodes.get(&a.node_id).map(|n| n.address.clone()).unwrap_or_default())
            .collect();
        let rank_node_ids: Vec<String> = placement.assignments.iter().map(|a| a.node_id.clone()).collect();
        for (rank, a) in w.held().filter(|(_, a)| a.node_id == node_id) {
            out.push(WorkAssignment {
                workload_id: workload_id.clone(),
                rank: rank as u32,
                project: project.clone(),
                training_name: name.clone(),
                spec: training.map(|t| convert::training_spec_to_wire(&t.spec)),
                image: w.image.clone(),
                cpu_millis: w.demand.per_container.cpu_millis,
                memory_mib: w.demand.per_container.memory_mib,
                gpu_uuids: a.gpu_uuids.clone(),
                rank_addresses: rank_addresses.clone(),
                stop: training.is_some_and(|t| t.status == TrainingStatus::StopInProgress),
                grants: Some(convert::storage_grants_to_wire(&state.grants(project))),
                rank_node_ids: rank_node_ids.clone(),
                finished: w.phases.get(rank).is_some_and(|p| p.is_final()),
                master_port: w.ports.map_or(0, |p| u32::from(p.master())),
                worker_ports: w.ports.map(|p| p.workers().into_iter().map(u32::from).collect()).unwrap_or_default(),
                release: w.ended,
                serving: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use gantry_domain::{Assignment, Gpu, NodeInventory, Placement};

    use super::*;
    use crate::state::tests::cpu_catalog;
    use crate::state::{CommandV1, apply};

    fn state_with_training() -> State {
        let mut state = cpu_catalog();
        let mut i = state.applied_index;
        let mut run = |state: &mut State, c: CommandV1| {
            i += 1;
            apply(state, i, c.into()).unwrap();
        };
        for n in ["a", "b"] {
            run(
                &mut state,
                CommandV1::RegisterNode {
                    hostname: n.into(),
                    address: format!("10.0.0.{}", if n == "a" { 1 } else { 2 }),
                    inventory: NodeInventory {
                        cpu_millis: 64_000,
                        memory_mib: 1 << 20,
                        disk_mib: 0,
                        gpus: vec![Gpu { uuid: format!("GPU-{n}"), model: "A100-80GB".into(), memory_mib: 1 }],
                    },
                    now_ms: 1,
                },
            );
        }
        run(&mut state, crate::state::tests::create_t("w1", 2));
        let placement = Placement {
            assignments: vec![
                Assignment { node_id: "b".into(), gpu_uuids: vec![] },
                Assignment { node_id: "a".into(), gpu_uuids: vec![] },
            ],
        };
        let ports = Some(gantry_domain::GangPorts { first: 29600, count: 3 });
        run(&mut state, CommandV1::Place { workload_id: "w1".into(), placement, now_ms: 3, ports });
        state
    }

    #[test]
    fn each_node_gets_its_ranks_with_the_gang_addresses() {
        let state = state_with_training();
        let a = node_assignments(&state, "a");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].rank, 1);
        assert_eq!(a[0].rank_addresses, ["10.0.0.2", "10.0.0.1"]);
        assert_eq!(a[0].rank_node_ids, ["b", "a"]);
        // Every rank learns the gang's ports from the scheduler.
        assert_eq!((a[0].master_port, &a[0].worker_ports[..]), (29600, &[29601, 29602][..]));
        assert_eq!(node_assignments(&state, "b")[0].worker_ports, a[0].worker_ports);
        assert_eq!(a[0].training_name, "t");
        assert!(!a[0].stop);
        assert_eq!(node_assignments(&state, "b")[0].rank, 0);
        assert!(node_assignments(&state, "c").is_empty());
    }

    #[test]
    fn a_stop_is_announced_and_the_end_removes_the_assignment() {
        let mut state = state_with_training();
        let stop = CommandV1::StopTraining { project: "p".into(), name: "t".into(), now_ms: 4, reason: String::new() };
        apply(&mut state, 100, stop.into()).unwrap();
        assert!(node_assignments(&state, "a")[0].stop);
        for (node, rank) in [("b", 0), ("a", 1)] {
            let report = CommandV1::ReportContainer {
                node_id: node.into(),
                workload_id: "w1".into(),
                rank,
                phase: crate::state::ContainerPhase::Stopped,
                reason: String::new(),
                now_ms: 5,
            };
            apply(&mut state, 101 + rank as u64, report.into()).unwrap();
        }
        assert_eq!(state.training("p", "t").unwrap().status, TrainingStatus::Stopped);
        // Ended: each node releases its rank, then no longer has it.
        assert!(node_assignments(&state, "a")[0].release);
        let gone = CommandV1::ContainerGone { node_id: "a".into(), workload_id: "w1".into(), rank: 1 };
        apply(&mut state, 110, gone.into()).unwrap();
        assert!(node_assignments(&state, "a").is_empty());
        assert!(node_assignments(&state, "b")[0].release, "b's rank is not gone yet");
    }

    #[test]
    fn a_rank_whose_end_is_recorded_is_marked_finished() {
        let mut state = state_with_training();
        assert!(!node_assignments(&state, "b")[0].finished);
        // Rank 0 (on b) succeeds while rank 1 (on a) still runs: b is still assigned it.
        let report = CommandV1::ReportContainer {
            node_id: "b".into(),
            workload_id: "w1".into(),
            rank: 0,
            phase: crate::state::ContainerPhase::Succeeded,
            reason: String::new(),
            now_ms: 5,
        };
        apply(&mut state, 100, report.into()).unwrap();
        assert!(node_assignments(&state, "b")[0].finished);
        assert!(!node_assignments(&state, "a")[0].finished);
    }
}
