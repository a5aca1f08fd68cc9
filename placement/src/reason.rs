//! Why a workload could not be placed, in words a user waiting for a training can act on.
//!
//! The solver only knows "no node was found"; [`diagnose`] works out the most useful
//! explanation from the same snapshot, checking from the permanent to the transient:
//! an invalid demand, a container larger than any node (waiting will never help), a GPU
//! model nobody has free, then each resource in turn, then the combination, then the
//! gang as a whole.

use gantry_domain::{Resources, WorkloadDemand};
use serde::{Deserialize, Serialize};

use crate::snapshot::NodeSnapshot;

/// Why a pending workload stays pending. Each message names the resource, the core type
/// and the numbers that fell short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Unplaceable {
    /// A gang of zero containers has nothing to run; the demand is malformed.
    #[error("gang has no containers (count is 0)")]
    EmptyGang,

    /// GPUs were asked for without a core type, so no GPU can be matched.
    #[error("asks for {gpus} GPUs per container but names no GPU model")]
    MissingGpuModel { gpus: u32 },

    /// The snapshot holds no node at all.
    #[error("no nodes are available to place on")]
    NoNodes,

    /// Permanent: no node is that big even when idle.
    #[error(
        "a container needs {need_millis}m CPU but the largest node has {largest_millis}m in total; \
         it can never be placed, choose a smaller instance type"
    )]
    CpuExceedsEveryNode { need_millis: u64, largest_millis: u64 },

    /// Permanent: no node is that big even when idle.
    #[error(
        "a container needs {need_mib} MiB memory but the largest node has {largest_mib} MiB in total; \
         it can never be placed, choose a smaller instance type"
    )]
    MemoryExceedsEveryNode { need_mib: u64, largest_mib: u64 },

    /// Permanent: no node has that many GPUs even when idle.
    #[error(
        "a container needs {need} GPUs but the largest node has {largest} GPUs in total; \
         it can never be placed, choose a smaller instance type"
    )]
    GpusExceedEveryNode { need: u32, largest: u32 },

    /// No node has even one free GPU of the model. The snapshot lists free GPUs only, so
    /// this cannot tell a model that is all busy from one the cluster lacks; the free
    /// models are listed so a misspelt core type is easy to spot.
    #[error("no node has free GPUs of model {model} ({})", free_models_text(.free_models))]
    NoFreeGpusOfModel { model: String, free_models: Vec<String> },

    /// Some node has GPUs of the model free, but none has enough for one container.
    #[error("no node with {need} free {model} GPUs (largest free: {largest_free})")]
    NotEnoughGpus { model: String, need: u32, largest_free: u32 },

    /// Among nodes that have the GPUs (or all nodes, for CPU work), none has the CPU.
    #[error(
        "not enough free CPU {}: need {need_millis}m per container x {count}, best node has {best_free_millis}m free",
        where_text(.gpu_model, .gpus)
    )]
    NotEnoughCpu { gpu_model: Option<String>, gpus: u32, need_millis: u64, count: u32, best_free_millis: u64 },

    /// Among nodes that have the GPUs (or all nodes, for CPU work), none has the memory.
    #[error(
        "not enough free memory {}: need {need_mib} MiB per container x {count}, best node has {best_free_mib} MiB free",
        where_text(.gpu_model, .gpus)
    )]
    NotEnoughMemory { gpu_model: Option<String>, gpus: u32, need_mib: u64, count: u32, best_free_mib: u64 },

    /// Every resource is free somewhere, but never all on the same node.
    #[error("no single node has {} free at once (each is free somewhere, but on different nodes)", shape_text(.per_container, .gpu_model))]
    NoNodeFitsAll { per_container: Resources, gpu_model: Option<String> },

    /// One container fits, the whole gang does not; gangs start all together or not at all.
    #[error(
        "gang of {count} does not fit: only {placeable} containers (each {}) can be placed at once",
        shape_text(.per_container, .gpu_model)
    )]
    GangDoesNotFit { count: u32, placeable: u32, per_container: Resources, gpu_model: Option<String> },

    /// Anti-affinity: the nodes with room already run a workload of the same spread
    /// group (e.g. another instance of the same endpoint stage).
    #[error(
        "spread group {group} needs {count} node(s) with room and without another of its workloads, only {nodes} \
         have both (instances of one stage never share a node)"
    )]
    SpreadGroupTaken { group: String, count: u32, nodes: u32 },
}

fn free_models_text(models: &[String]) -> String {
    if models.is_empty() {
        "no GPU is free on any node".to_owned()
    } else {
        format!("free models: {}", models.join(", "))
    }
}

fn where_text(gpu_model: &Option<String>, gpus: &u32) -> String {
    match gpu_model {
        Some(model) if *gpus > 0 => format!("on nodes with {gpus} free {model} GPUs"),
        _ => "on any node".to_owned(),
    }
}

fn shape_text(per_container: &Resources, gpu_model: &Option<String>) -> String {
    let cpu_mem = format!("{}m CPU, {} MiB memory", per_container.cpu_millis, per_container.memory_mib);
    match gpu_model {
        Some(model) if per_container.gpus > 0 => {
            let noun = if per_container.gpus == 1 { "GPU" } else { "GPUs" };
            format!("{} {model} {noun}, {cpu_mem}", per_container.gpus)
        }
        _ => cpu_mem,
    }
}

/// The GPU model a demand must match, or `None` for CPU-only work. A model named with
/// zero GPUs constrains nothing, so it is ignored rather than rejected.
pub(crate) fn gpu_model(demand: &WorkloadDemand) -> Option<&str> {
    if demand.per_container.gpus == 0 { None } else { demand.gpu_model.as_deref() }
}

/// Reasons that need no snapshot: the demand itself cannot be placed anywhere.
pub(crate) fn invalid(demand: &WorkloadDemand) -> Option<Unplaceable> {
    if demand.count == 0 {
        return Some(Unplaceable::EmptyGang);
    }
    if demand.per_container.gpus > 0 && demand.gpu_model.is_none() {
        return Some(Unplaceable::MissingGpuModel { gpus: demand.per_container.gpus });
    }
    None
}

/// True when one container of `demand` fits on `node` as it is now.
pub(crate) fn container_fits(node: &NodeSnapshot, per_container: &Resources, model: Option<&str>) -> bool {
    per_container.cpu_millis <= node.free.cpu_millis
        && per_container.memory_mib <= node.free.memory_mib
        && match model {
            None => true,
            Some(model) => per_container.gpus <= node.free_gpus_of(model),
        }
}

/// How many containers of the shape `node` could take at once, up to `cap`.
fn containers_on(node: &NodeSnapshot, per_container: &Resources, model: Option<&str>, cap: u32) -> u32 {
    // A dimension the container does not use (division by zero) does not limit it.
    let mut n = u64::from(cap);
    if let Some(by_cpu) = node.free.cpu_millis.checked_div(per_container.cpu_millis) {
        n = n.min(by_cpu);
    }
    if let Some(by_memory) = node.free.memory_mib.checked_div(per_container.memory_mib) {
        n = n.min(by_memory);
    }
    if let Some(model) = model {
        n = n.min(u64::from(node.free_gpus_of(model) / per_container.gpus.max(1)));
    }
    n as u32
}

/// The part of the cluster a diagnosis needs to look at.
///
/// A GPU workload can only ever use nodes with a free GPU of its model, so only those
/// are scanned; the solver builds the scope from its index, which keeps explaining a
/// GPU workload cheap on a large fleet where most nodes are of other models.
pub(crate) struct Scope<'a> {
    /// True when the snapshot has no node at all.
    pub no_nodes: bool,
    /// Per dimension, the largest capacity of any node: "never fits" is measured here.
    pub largest: Resources,
    /// Models with a free GPU on some node, sorted and distinct.
    pub free_models: Vec<&'a str>,
    /// Nodes with at least one free GPU of the demand's model; every node for CPU work.
    pub nodes: Vec<&'a NodeSnapshot>,
}

impl<'a> Scope<'a> {
    /// Builds the scope by scanning every node; the solver's index gives the same result
    /// without the scan.
    pub fn scan(nodes: &'a [NodeSnapshot], model: Option<&str>) -> Self {
        let mut free_models: Vec<&str> =
            nodes.iter().flat_map(|n| n.free_gpus.iter().map(|g| g.model.as_str())).collect();
        free_models.sort_unstable();
        free_models.dedup();
        Scope {
            no_nodes: nodes.is_empty(),
            largest: largest_capacity(nodes),
            free_models,
            nodes: nodes.iter().filter(|n| model.is_none_or(|m| n.free_gpus_of(m) > 0)).collect(),
        }
    }
}

/// Per dimension, the largest capacity among `nodes`.
pub(crate) fn largest_capacity(nodes: &[NodeSnapshot]) -> Resources {
    nodes.iter().fold(Resources::ZERO, |acc, n| Resources {
        cpu_millis: acc.cpu_millis.max(n.capacity.cpu_millis),
        memory_mib: acc.memory_mib.max(n.capacity.memory_mib),
        gpus: acc.gpus.max(n.capacity.gpus),
    })
}

/// Explains why `demand` cannot be placed in `scope`, or `None` if it can.
///
/// Exact for gangs too: containers are identical and nodes independent, so the most a
/// gang can get is the sum over nodes of how many containers each can take.
pub(crate) fn diagnose(scope: &Scope<'_>, demand: &WorkloadDemand) -> Option<Unplaceable> {
    if let Some(reason) = invalid(demand) {
        return Some(reason);
    }
    if scope.no_nodes {
        return Some(Unplaceable::NoNodes);
    }
    let per = demand.per_container;
    let model = gpu_model(demand);
    let owned_model = model.map(str::to_owned);
    let largest = scope.largest;
    if per.cpu_millis > largest.cpu_millis {
        return Some(Unplaceable::CpuExceedsEveryNode {
            need_millis: per.cpu_millis,
            largest_millis: largest.cpu_millis,
        });
    }
    if per.memory_mib > largest.memory_mib {
        return Some(Unplaceable::MemoryExceedsEveryNode { need_mib: per.memory_mib, largest_mib: largest.memory_mib });
    }
    if per.gpus > largest.gpus {
        return Some(Unplaceable::GpusExceedEveryNode { need: per.gpus, largest: largest.gpus });
    }

    let nodes = &scope.nodes;
    if let Some(model) = model {
        let largest_free = nodes.iter().map(|n| n.free_gpus_of(model)).max().unwrap_or(0);
        if largest_free == 0 {
            let free_models = scope.free_models.iter().map(|m| (*m).to_owned()).collect();
            return Some(Unplaceable::NoFreeGpusOfModel { model: model.to_owned(), free_models });
        }
        if largest_free < per.gpus {
            return Some(Unplaceable::NotEnoughGpus { model: model.to_owned(), need: per.gpus, largest_free });
        }
    }

    // From here on only nodes with the GPUs count: CPU free on a node without them is
    // no use to this workload and would make the numbers misleading.
    let with_gpus = || nodes.iter().filter(|n| model.is_none_or(|m| n.free_gpus_of(m) >= per.gpus));
    let best_free_millis = with_gpus().map(|n| n.free.cpu_millis).max().unwrap_or(0);
    if best_free_millis < per.cpu_millis {
        return Some(Unplaceable::NotEnoughCpu {
            gpu_model: owned_model,
            gpus: per.gpus,
            need_millis: per.cpu_millis,
            count: demand.count,
            best_free_millis,
        });
    }
    let best_free_mib = with_gpus().map(|n| n.free.memory_mib).max().unwrap_or(0);
    if best_free_mib < per.memory_mib {
        return Some(Unplaceable::NotEnoughMemory {
            gpu_model: owned_model,
            gpus: per.gpus,
            need_mib: per.memory_mib,
            count: demand.count,
            best_free_mib,
        });
    }
    if !nodes.iter().any(|n| container_fits(n, &per, model)) {
        return Some(Unplaceable::NoNodeFitsAll { per_container: per, gpu_model: owned_model });
    }

    let mut placeable = 0u32;
    for node in nodes {
        placeable = placeable.saturating_add(containers_on(node, &per, model, demand.count - placeable));
        if placeable >= demand.count {
            return None;
        }
    }
    Some(Unplaceable::GangDoesNotFit { count: demand.count, placeable, per_container: per, gpu_model: owned_model })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::*;

    fn explain(nodes: &[NodeSnapshot], demand: &WorkloadDemand) -> Option<Unplaceable> {
        diagnose(&Scope::scan(nodes, gpu_model(demand)), demand)
    }

    fn why(nodes: &[NodeSnapshot], demand: &WorkloadDemand) -> String {
        explain(nodes, demand).map(|r| r.to_string()).unwrap_or_default()
    }

    fn busy(mut node: NodeSnapshot, used_gpus: usize) -> NodeSnapshot {
        node.free_gpus.drain(..used_gpus);
        node.free.gpus = node.free_gpus.len() as u32;
        node
    }

    #[test]
    fn malformed_demands() {
        let nodes = [cpu_node("c1", 8000, 32768)];
        assert_eq!(why(&nodes, &demand("w", 1000, 1024, 0, None, 0)), "gang has no containers (count is 0)");
        assert_eq!(
            why(&nodes, &demand("w", 1000, 1024, 2, None, 1)),
            "asks for 2 GPUs per container but names no GPU model"
        );
        assert_eq!(why(&[], &demand("w", 1000, 1024, 0, None, 1)), "no nodes are available to place on");
    }

    #[test]
    fn larger_than_any_node_says_it_never_fits() {
        let nodes = [cpu_node("c1", 8000, 32768), gpu_node("g1", 64000, 262144, "T4", 4)];
        assert_eq!(
            explain(&nodes, &demand("w", 96000, 1024, 0, None, 1)),
            Some(Unplaceable::CpuExceedsEveryNode { need_millis: 96000, largest_millis: 64000 })
        );
        assert_eq!(
            explain(&nodes, &demand("w", 1000, 524288, 0, None, 1)),
            Some(Unplaceable::MemoryExceedsEveryNode { need_mib: 524288, largest_mib: 262144 })
        );
        assert_eq!(
            why(&nodes, &demand("w", 1000, 1024, 8, Some("T4"), 1)),
            "a container needs 8 GPUs but the largest node has 4 GPUs in total; it can never be placed, \
             choose a smaller instance type"
        );
    }

    #[test]
    fn missing_model_lists_what_is_free() {
        let nodes = [gpu_node("a", 64000, 262144, "A100-80GB", 8), gpu_node("t", 32000, 131072, "T4", 4)];
        assert_eq!(
            why(&nodes, &demand("w", 1000, 1024, 1, Some("H100"), 1)),
            "no node has free GPUs of model H100 (free models: A100-80GB, T4)"
        );
        let all_busy = [busy(gpu_node("a", 64000, 262144, "A100-80GB", 8), 8)];
        assert_eq!(
            why(&all_busy, &demand("w", 1000, 1024, 1, Some("A100-80GB"), 1)),
            "no node has free GPUs of model A100-80GB (no GPU is free on any node)"
        );
    }

    #[test]
    fn not_enough_gpus_names_the_largest_free() {
        let nodes = [busy(gpu_node("a", 64000, 262144, "A100-80GB", 8), 7), gpu_node("t", 32000, 131072, "T4", 4)];
        assert_eq!(
            why(&nodes, &demand("w", 1000, 1024, 2, Some("A100-80GB"), 1)),
            "no node with 2 free A100-80GB GPUs (largest free: 1)"
        );
    }

    #[test]
    fn cpu_and_memory_are_counted_only_where_the_gpus_are() {
        let mut a100 = gpu_node("a", 64000, 262144, "A100-80GB", 8);
        a100.free.cpu_millis = 3000;
        a100.free.memory_mib = 8192;
        // A roomy CPU node must not make the CPU look available to GPU work.
        let nodes = [a100, cpu_node("c", 96000, 393216)];
        assert_eq!(
            why(&nodes, &demand("w", 4000, 1024, 2, Some("A100-80GB"), 2)),
            "not enough free CPU on nodes with 2 free A100-80GB GPUs: need 4000m per container x 2, \
             best node has 3000m free"
        );
        assert_eq!(
            why(&nodes, &demand("w", 2000, 16384, 2, Some("A100-80GB"), 1)),
            "not enough free memory on nodes with 2 free A100-80GB GPUs: need 16384 MiB per container x 1, \
             best node has 8192 MiB free"
        );
        let mut small = cpu_node("c", 8000, 32768);
        small.free.cpu_millis = 3000;
        assert_eq!(
            why(&[small], &demand("w", 4000, 1024, 0, None, 2)),
            "not enough free CPU on any node: need 4000m per container x 2, best node has 3000m free"
        );
    }

    #[test]
    fn resources_split_across_nodes() {
        let mut cpu_rich = cpu_node("a", 16000, 65536);
        cpu_rich.free.memory_mib = 1024;
        let mut mem_rich = cpu_node("b", 16000, 65536);
        mem_rich.free.cpu_millis = 500;
        assert_eq!(
            why(&[cpu_rich, mem_rich], &demand("w", 4000, 8192, 0, None, 1)),
            "no single node has 4000m CPU, 8192 MiB memory free at once (each is free somewhere, but on different nodes)"
        );
    }

    #[test]
    fn gang_counts_every_node_it_could_use() {
        let nodes = [busy(gpu_node("a", 64000, 262144, "H100", 4), 2), gpu_node("b", 64000, 262144, "H100", 4)];
        assert_eq!(
            why(&nodes, &demand("w", 8000, 32768, 2, Some("H100"), 4)),
            "gang of 4 does not fit: only 3 containers (each 2 H100 GPUs, 8000m CPU, 32768 MiB memory) can be placed at once"
        );
        assert_eq!(explain(&nodes, &demand("w", 8000, 32768, 2, Some("H100"), 3)), None);
    }
}
