//! The input side of placement: what each node has free at the moment of solving.
//!
//! A snapshot is a copy, not a view: placement subtracts from it as it decides, and the
//! caller's cluster state is untouched until it commits the resulting plan.

use std::collections::BTreeSet;

use gantry_domain::Resources;
use serde::{Deserialize, Serialize};

/// One GPU that no container owns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FreeGpu {
    pub uuid: String,
    /// GPU core type, e.g. `A100-80GB`; matched exactly against a demand's `gpu_model`.
    pub model: String,
}

/// A node as placement sees it.
///
/// Invariants the caller keeps (the scheduler builds snapshots from its replicated
/// state, where they hold): node ids are unique within one snapshot, GPU uuids are
/// unique across it, and `free.gpus == free_gpus.len()`. Placement checks both the count
/// and the list, so a snapshot that breaks the last one errs on the side of placing less.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    pub id: String,
    /// Unreserved CPU and memory; `gpus` is the number of free GPUs of any model.
    pub free: Resources,
    /// What the node has in total; scoring uses it to compare nodes of different sizes.
    pub capacity: Resources,
    pub free_gpus: Vec<FreeGpu>,
    /// Spread groups with a container on this node: a demand of one of these groups
    /// never goes here (see `WorkloadDemand::spread_group`).
    #[serde(default)]
    pub spread_groups: BTreeSet<String>,
}

impl NodeSnapshot {
    /// A node with nothing reserved: everything it has is free.
    pub fn idle(id: impl Into<String>, cpu_millis: u64, memory_mib: u64, gpus: Vec<FreeGpu>) -> Self {
        let capacity = Resources::new(cpu_millis, memory_mib, gpus.len() as u32);
        Self { id: id.into(), free: capacity, capacity, free_gpus: gpus, spread_groups: BTreeSet::new() }
    }

    /// Whether a container of `group` may go here (anti-affinity).
    pub fn admits(&self, group: Option<&str>) -> bool {
        group.is_none_or(|g| !self.spread_groups.contains(g))
    }

    /// Free GPUs of `model`, bounded by the free count so an inconsistent snapshot never
    /// offers more than it claims.
    pub fn free_gpus_of(&self, model: &str) -> u32 {
        let listed = self.free_gpus.iter().filter(|g| g.model == model).count() as u32;
        listed.min(self.free.gpus)
    }

    /// True when the node has GPUs and none of them is taken: breaking into it costs a
    /// large gang its only chance of a whole node.
    pub fn gpus_untouched(&self) -> bool {
        self.capacity.gpus > 0 && self.free.gpus >= self.capacity.gpus
    }

    /// Subtracts one container: its CPU and memory, and the GPUs named in `gpu_uuids`.
    ///
    /// Saturates rather than fails: callers validate with [`crate::check_fit`] first, and
    /// a snapshot is scratch data that is rebuilt from the replicated state anyway.
    pub(crate) fn take_container(&mut self, per_container: &Resources, gpu_uuids: &[String]) {
        self.free.cpu_millis = self.free.cpu_millis.saturating_sub(per_container.cpu_millis);
        self.free.memory_mib = self.free.memory_mib.saturating_sub(per_container.memory_mib);
        let before = self.free_gpus.len();
        self.free_gpus.retain(|g| !gpu_uuids.contains(&g.uuid));
        let removed = (before - self.free_gpus.len()) as u32;
        self.free.gpus = self.free.gpus.saturating_sub(removed);
    }

    /// The `count` lowest-uuid free GPUs of `model`; lowest-first keeps the choice
    /// deterministic whatever order the agent reported them in.
    pub(crate) fn lowest_gpus(&self, model: &str, count: u32) -> Vec<String> {
        let mut uuids: Vec<&str> =
            self.free_gpus.iter().filter(|g| g.model == model).map(|g| g.uuid.as_str()).collect();
        uuids.sort_unstable();
        uuids.into_iter().take(count as usize).map(str::to_owned).collect()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Small builders shared by the unit tests of this crate.

    use gantry_domain::{Resources, WorkloadDemand};

    use super::{FreeGpu, NodeSnapshot};

    pub fn gpus(node: &str, model: &str, n: u32) -> Vec<FreeGpu> {
        (0..n).map(|i| FreeGpu { uuid: format!("{node}-gpu-{i}"), model: model.to_owned() }).collect()
    }

    pub fn cpu_node(id: &str, cpu_millis: u64, memory_mib: u64) -> NodeSnapshot {
        NodeSnapshot::idle(id, cpu_millis, memory_mib, Vec::new())
    }

    pub fn gpu_node(id: &str, cpu_millis: u64, memory_mib: u64, model: &str, n: u32) -> NodeSnapshot {
        NodeSnapshot::idle(id, cpu_millis, memory_mib, gpus(id, model, n))
    }

    pub fn demand(
        id: &str,
        cpu_millis: u64,
        memory_mib: u64,
        gpus: u32,
        model: Option<&str>,
        count: u32,
    ) -> WorkloadDemand {
        WorkloadDemand {
            id: id.to_owned(),
            per_container: Resources::new(cpu_millis, memory_mib, gpus),
            gpu_model: model.map(str::to_owned),
            count,
            spread_group: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;

    #[test]
    fn taking_a_container_removes_exactly_its_gpus() {
        let mut node = gpu_node("n1", 32000, 65536, "T4", 4);
        let picked = node.lowest_gpus("T4", 2);
        assert_eq!(picked, vec!["n1-gpu-0".to_owned(), "n1-gpu-1".to_owned()]);
        node.take_container(&gantry_domain::Resources::new(4000, 8192, 2), &picked);
        assert_eq!(node.free, gantry_domain::Resources::new(28000, 57344, 2));
        assert_eq!(node.free_gpus_of("T4"), 2);
        assert!(!node.gpus_untouched());
    }

    #[test]
    fn free_count_bounds_the_listed_gpus() {
        let mut node = gpu_node("n1", 32000, 65536, "T4", 4);
        node.free.gpus = 1;
        assert_eq!(node.free_gpus_of("T4"), 1);
        assert_eq!(node.free_gpus_of("H100"), 0);
    }
}
