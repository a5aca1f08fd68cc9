//! Random problems small enough to contend: a few nodes, some partly used, and a queue
//! of mixed CPU and GPU gangs, including malformed ones and models nobody has.

use gantry_domain::{Resources, WorkloadDemand};
use gantry_placement::{FreeGpu, NodeSnapshot, Problem};
use proptest::prelude::*;

const MODELS: [&str; 3] = ["A100-80GB", "H100", "T4"];

/// Mostly lightly used, sometimes full, so that both fit and shortage are common.
fn used_pct() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..=50, 1 => 50u64..=100]
}

fn node(index: usize) -> impl Strategy<Value = NodeSnapshot> {
    let gpus = prop_oneof![
        2 => Just(Vec::new()),
        3 => (0..MODELS.len(), 1u32..=8).prop_map(|(m, n)| vec![(MODELS[m], n)]),
        // A node with two models: placement must treat each model separately.
        1 => (0..MODELS.len(), 1u32..=2, 1u32..=2).prop_map(|(m, a, b)| vec![(MODELS[m], a), (MODELS[(m + 1) % 3], b)]),
    ];
    (1u64..=64, 1u64..=256, gpus, used_pct(), used_pct(), any::<u64>()).prop_map(
        move |(cores, gib, gpus, cpu_used_pct, mem_used_pct, used_gpu_bits)| {
            let id = format!("n{index:02}");
            let mut all = Vec::new();
            for (model, n) in gpus {
                for k in 0..n {
                    all.push(FreeGpu { uuid: format!("{id}-{model}-{k}"), model: model.to_owned() });
                }
            }
            let capacity = Resources::new(cores * 1000, gib * 1024, all.len() as u32);
            let free_gpus: Vec<FreeGpu> =
                all.into_iter().enumerate().filter(|(k, _)| used_gpu_bits & (1 << k) == 0).map(|(_, g)| g).collect();
            let free = Resources::new(
                capacity.cpu_millis * (100 - cpu_used_pct) / 100,
                capacity.memory_mib * (100 - mem_used_pct) / 100,
                free_gpus.len() as u32,
            );
            NodeSnapshot { id, free, capacity, free_gpus, spread_groups: Default::default() }
        },
    )
}

fn demand(index: usize) -> impl Strategy<Value = WorkloadDemand> {
    let model = prop_oneof![
        8 => (0..MODELS.len()).prop_map(|m| Some(MODELS[m].to_owned())),
        1 => Just(Some("V100".to_owned())),
        1 => Just(None),
    ];
    let gpus = prop_oneof![4 => Just(0u32), 4 => 1u32..=2, 1 => 3u32..=9];
    let count = prop_oneof![1 => Just(0u32), 12 => 1u32..=2, 4 => 3u32..=6];
    // A few demands share an anti-affinity group, so spreading is exercised too.
    let group = prop_oneof![3 => Just(None), 1 => (0u8..2).prop_map(|g| Some(format!("s{g}")))];
    (0u64..=16, 0u64..=48, gpus, model, count, group).prop_map(move |(half_cores, gib, gpus, model, count, group)| {
        WorkloadDemand {
            id: format!("w{index:02}"),
            per_container: Resources::new(half_cores * 500, gib * 1024, gpus),
            gpu_model: model,
            count,
            spread_group: group,
        }
    })
}

pub fn problem() -> impl Strategy<Value = Problem> {
    let nodes = (0usize..=10).prop_flat_map(|n| (0..n).map(node).collect::<Vec<_>>()).prop_shuffle();
    let pending = (0usize..=14).prop_flat_map(|n| (0..n).map(demand).collect::<Vec<_>>());
    (nodes, pending).prop_map(|(nodes, pending)| Problem { nodes, pending })
}

/// The node `id` in `nodes`; ids are unique in generated problems.
pub fn node_by_id<'a>(nodes: &'a [NodeSnapshot], id: &str) -> &'a NodeSnapshot {
    nodes.iter().find(|n| n.id == id).expect("placed on a node of the problem")
}

pub fn demand_by_id<'a>(problem: &'a Problem, id: &str) -> &'a WorkloadDemand {
    problem.pending.iter().find(|d| d.id == id).expect("placed a workload of the problem")
}
