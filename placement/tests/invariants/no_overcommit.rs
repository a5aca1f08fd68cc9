//! No node ever gives out more CPU, memory or GPUs than it had free, and no GPU is
//! given to two containers.

use std::collections::{BTreeMap, BTreeSet};

use gantry_placement::solve;
use proptest::prelude::*;

use crate::strategy::{demand_by_id, node_by_id, problem};

proptest! {
    #[test]
    fn no_node_is_overcommitted(problem in problem()) {
        let solution = solve(&problem);
        let mut used: BTreeMap<&str, (u64, u64, u32)> = BTreeMap::new();
        let mut gpus = BTreeSet::new();
        for (id, placement) in &solution.placed {
            let per = demand_by_id(&problem, id).per_container;
            for assignment in &placement.assignments {
                let entry = used.entry(assignment.node_id.as_str()).or_default();
                entry.0 += per.cpu_millis;
                entry.1 += per.memory_mib;
                entry.2 += assignment.gpu_uuids.len() as u32;
                let node = node_by_id(&problem.nodes, &assignment.node_id);
                for uuid in &assignment.gpu_uuids {
                    prop_assert!(gpus.insert(uuid.clone()), "GPU {uuid} assigned twice");
                    prop_assert!(node.free_gpus.iter().any(|g| &g.uuid == uuid), "GPU {uuid} not free on {}", node.id);
                }
            }
        }
        for (node_id, (cpu, mem, gpu)) in used {
            let free = node_by_id(&problem.nodes, node_id).free;
            prop_assert!(cpu <= free.cpu_millis, "{node_id}: cpu {cpu} > {}", free.cpu_millis);
            prop_assert!(mem <= free.memory_mib, "{node_id}: memory {mem} > {}", free.memory_mib);
            prop_assert!(gpu <= free.gpus, "{node_id}: gpus {gpu} > {}", free.gpus);
        }
    }
}
