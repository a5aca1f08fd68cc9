//! Commit-time checking and applying of one placement against a snapshot.
//!
//! The scheduler solves on a snapshot, then commits through Raft; by then the state may
//! have moved on. [`check_fit`] re-checks a placement against the state it is about to be
//! applied to, and [`apply`] subtracts it, so the next check sees it.

use std::collections::{BTreeMap, BTreeSet};

use gantry_domain::{Placement, WorkloadDemand};

use crate::reason::{self, Unplaceable};
use crate::snapshot::NodeSnapshot;

/// Why a placement does not fit the snapshot it was checked against.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    /// The demand itself can never be placed.
    #[error("invalid demand: {0}")]
    InvalidDemand(Unplaceable),

    #[error("placement has {got} assignments but the gang has {expected} containers")]
    ContainerCount { expected: u32, got: usize },

    #[error("container {rank} is assigned to node {node_id}, which is not in the snapshot")]
    UnknownNode { rank: usize, node_id: String },

    #[error("container {rank} is given {got} GPUs but needs {expected}")]
    GpuCount { rank: usize, expected: u32, got: usize },

    #[error("GPU {uuid} is given to more than one container")]
    DuplicateGpu { uuid: String },

    /// Anti-affinity: the node already runs a workload of the same spread group (or
    /// the placement puts two containers of the group there).
    #[error("node {node_id} already runs a workload of spread group {group}")]
    SpreadGroupTaken { node_id: String, group: String },

    /// Taken by someone else since the solve, or not on that node at all.
    #[error("GPU {uuid} is not free on node {node_id}")]
    GpuNotFree { node_id: String, uuid: String },

    #[error("GPU {uuid} on node {node_id} is a {found}, but the workload needs {expected}")]
    WrongGpuModel { node_id: String, uuid: String, expected: String, found: String },

    #[error("node {node_id} has {free_millis}m CPU free but its containers need {need_millis}m")]
    CpuOvercommitted { node_id: String, need_millis: u64, free_millis: u64 },

    #[error("node {node_id} has {free_mib} MiB memory free but its containers need {need_mib} MiB")]
    MemoryOvercommitted { node_id: String, need_mib: u64, free_mib: u64 },

    #[error("node {node_id} has {free} GPUs free but its containers need {need}")]
    GpusOvercommitted { node_id: String, need: u64, free: u32 },
}

/// First node with `id`; node ids are unique in a well-formed snapshot.
fn find(nodes: &[NodeSnapshot], id: &str) -> Option<usize> {
    nodes.iter().position(|n| n.id == id)
}

/// Checks that `placement` of `demand` fits `nodes` as they are now: every node exists,
/// every GPU is free, of the demanded model and given to exactly one container, each
/// container has exactly its GPU count, and the containers sharing a node fit in it
/// together.
pub fn check_fit(nodes: &[NodeSnapshot], demand: &WorkloadDemand, placement: &Placement) -> Result<(), FitError> {
    if let Some(reason) = reason::invalid(demand) {
        return Err(FitError::InvalidDemand(reason));
    }
    let per = demand.per_container;
    if placement.assignments.len() != demand.count as usize {
        return Err(FitError::ContainerCount { expected: demand.count, got: placement.assignments.len() });
    }
    let model = reason::gpu_model(demand);
    let mut seen_gpus = BTreeSet::new();
    // Node index -> how many containers land there; sorted so errors are reproducible.
    let mut per_node: BTreeMap<usize, u64> = BTreeMap::new();

    for (rank, assignment) in placement.assignments.iter().enumerate() {
        let index = find(nodes, &assignment.node_id)
            .ok_or_else(|| FitError::UnknownNode { rank, node_id: assignment.node_id.clone() })?;
        let node = &nodes[index];
        if let Some(group) = &demand.spread_group
            && (!node.admits(Some(group)) || per_node.contains_key(&index))
        {
            return Err(FitError::SpreadGroupTaken { node_id: node.id.clone(), group: group.clone() });
        }
        if assignment.gpu_uuids.len() != per.gpus as usize {
            return Err(FitError::GpuCount { rank, expected: per.gpus, got: assignment.gpu_uuids.len() });
        }
        for uuid in &assignment.gpu_uuids {
            if !seen_gpus.insert(uuid.as_str()) {
                return Err(FitError::DuplicateGpu { uuid: uuid.clone() });
            }
            let gpu = node
                .free_gpus
                .iter()
                .find(|g| &g.uuid == uuid)
                .ok_or_else(|| FitError::GpuNotFree { node_id: node.id.clone(), uuid: uuid.clone() })?;
            if let Some(expected) = model
                && gpu.model != expected
            {
                return Err(FitError::WrongGpuModel {
                    node_id: node.id.clone(),
                    uuid: uuid.clone(),
                    expected: expected.to_owned(),
                    found: gpu.model.clone(),
                });
            }
        }
        *per_node.entry(index).or_default() += 1;
    }

    for (index, containers) in per_node {
        let node = &nodes[index];
        let need_millis = per.cpu_millis.saturating_mul(containers);
        if need_millis > node.free.cpu_millis {
            return Err(FitError::CpuOvercommitted {
                node_id: node.id.clone(),
                need_millis,
                free_millis: node.free.cpu_millis,
            });
        }
        let need_mib = per.memory_mib.saturating_mul(containers);
        if need_mib > node.free.memory_mib {
            return Err(FitError::MemoryOvercommitted {
                node_id: node.id.clone(),
                need_mib,
                free_mib: node.free.memory_mib,
            });
        }
        let need = u64::from(per.gpus).saturating_mul(containers);
        if need > u64::from(node.free.gpus) {
            return Err(FitError::GpusOvercommitted { node_id: node.id.clone(), need, free: node.free.gpus });
        }
    }
    Ok(())
}

/// Subtracts `placement` of `demand` from `nodes`.
///
/// Precondition: [`check_fit`] passed against the same `nodes`. Without it nothing
/// panics, but unknown nodes and GPUs are skipped and amounts stop at zero, so the
/// snapshot no longer tells the truth.
pub fn apply(nodes: &mut [NodeSnapshot], demand: &WorkloadDemand, placement: &Placement) {
    for assignment in &placement.assignments {
        if let Some(index) = find(nodes, &assignment.node_id) {
            nodes[index].take_container(&demand.per_container, &assignment.gpu_uuids);
            if let Some(group) = &demand.spread_group {
                nodes[index].spread_groups.insert(group.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gantry_domain::{Assignment, Resources};

    use super::*;
    use crate::snapshot::fixtures::*;

    fn on(node: &str, gpus: &[&str]) -> Assignment {
        Assignment { node_id: node.to_owned(), gpu_uuids: gpus.iter().map(|g| (*g).to_owned()).collect() }
    }

    fn placement(assignments: Vec<Assignment>) -> Placement {
        Placement { assignments }
    }

    #[test]
    fn a_spread_group_is_checked_and_recorded() {
        let mut nodes = vec![cpu_node("a", 8000, 8192), cpu_node("b", 8000, 8192)];
        let mut d = demand("i0", 1000, 1024, 0, None, 1);
        d.spread_group = Some("s".into());
        let on_a = placement(vec![on("a", &[])]);
        assert_eq!(check_fit(&nodes, &d, &on_a), Ok(()));
        apply(&mut nodes, &d, &on_a);
        assert!(matches!(check_fit(&nodes, &d, &on_a), Err(FitError::SpreadGroupTaken { .. })));
        assert_eq!(check_fit(&nodes, &d, &placement(vec![on("b", &[])])), Ok(()));
        let mut gang = d.clone();
        gang.count = 2;
        let twice_b = placement(vec![on("b", &[]), on("b", &[])]);
        assert!(matches!(check_fit(&nodes, &gang, &twice_b), Err(FitError::SpreadGroupTaken { .. })));
    }

    #[test]
    fn accepts_a_valid_gang_and_apply_consumes_it() {
        let mut nodes = vec![gpu_node("a", 32000, 131072, "T4", 4)];
        let w = demand("w", 8000, 32768, 2, Some("T4"), 2);
        let p = placement(vec![on("a", &["a-gpu-0", "a-gpu-1"]), on("a", &["a-gpu-2", "a-gpu-3"])]);
        assert_eq!(check_fit(&nodes, &w, &p), Ok(()));
        apply(&mut nodes, &w, &p);
        assert_eq!(nodes[0].free, Resources::new(16000, 65536, 0));
        assert!(nodes[0].free_gpus.is_empty());
        assert!(matches!(check_fit(&nodes, &w, &p), Err(FitError::GpuNotFree { .. })));
    }

    #[test]
    fn rejects_structural_mistakes() {
        let nodes = vec![gpu_node("a", 32000, 131072, "T4", 4), gpu_node("h", 64000, 262144, "H100", 4)];
        let w = demand("w", 1000, 1024, 1, Some("T4"), 2);
        let cases = [
            (placement(vec![on("a", &["a-gpu-0"])]), FitError::ContainerCount { expected: 2, got: 1 }),
            (
                placement(vec![on("a", &["a-gpu-0"]), on("zz", &["a-gpu-1"])]),
                FitError::UnknownNode { rank: 1, node_id: "zz".into() },
            ),
            (placement(vec![on("a", &["a-gpu-0"]), on("a", &[])]), FitError::GpuCount { rank: 1, expected: 1, got: 0 }),
            (
                placement(vec![on("a", &["a-gpu-0"]), on("a", &["a-gpu-0"])]),
                FitError::DuplicateGpu { uuid: "a-gpu-0".into() },
            ),
            (
                placement(vec![on("a", &["a-gpu-0"]), on("a", &["h-gpu-0"])]),
                FitError::GpuNotFree { node_id: "a".into(), uuid: "h-gpu-0".into() },
            ),
            (
                placement(vec![on("a", &["a-gpu-0"]), on("h", &["h-gpu-0"])]),
                FitError::WrongGpuModel {
                    node_id: "h".into(),
                    uuid: "h-gpu-0".into(),
                    expected: "T4".into(),
                    found: "H100".into(),
                },
            ),
        ];
        for (p, expected) in cases {
            assert_eq!(check_fit(&nodes, &w, &p), Err(expected));
        }
    }

    #[test]
    fn counts_every_container_sharing_a_node() {
        let nodes = vec![cpu_node("c", 8000, 32768)];
        let cpu_heavy = demand("w", 5000, 1024, 0, None, 2);
        assert_eq!(
            check_fit(&nodes, &cpu_heavy, &placement(vec![on("c", &[]), on("c", &[])])),
            Err(FitError::CpuOvercommitted { node_id: "c".into(), need_millis: 10000, free_millis: 8000 })
        );
        let mem_heavy = demand("w", 1000, 20000, 0, None, 2);
        assert_eq!(
            check_fit(&nodes, &mem_heavy, &placement(vec![on("c", &[]), on("c", &[])])),
            Err(FitError::MemoryOvercommitted { node_id: "c".into(), need_mib: 40000, free_mib: 32768 })
        );
    }

    #[test]
    fn free_gpu_count_is_enforced_even_if_the_list_disagrees() {
        let mut nodes = vec![gpu_node("a", 32000, 131072, "T4", 2)];
        nodes[0].free.gpus = 1;
        let w = demand("w", 1000, 1024, 1, Some("T4"), 2);
        assert_eq!(
            check_fit(&nodes, &w, &placement(vec![on("a", &["a-gpu-0"]), on("a", &["a-gpu-1"])])),
            Err(FitError::GpusOvercommitted { node_id: "a".into(), need: 2, free: 1 })
        );
    }
}
