//! The solver: pending workloads in, a plan out.
//!
//! Greedy in priority order. Each gang is placed container by container with best fit;
//! if one container finds no node, the gang's earlier containers are rolled back and the
//! workload is explained instead. Greedy is exact for a single gang: its containers are
//! identical and nodes independent, so any order of best-fit choices reaches the same
//! count. The solver is deterministic: nodes are held sorted by id, GPUs are chosen
//! lowest uuid first, and no hash-map order is ever observed.

use gantry_domain::{Assignment, Placement, Resources, WorkloadDemand};
use serde::{Deserialize, Serialize};

use crate::index::{Index, Rank};
use crate::reason::{self, Scope, Unplaceable};
use crate::snapshot::NodeSnapshot;

/// What to place, and on what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub nodes: Vec<NodeSnapshot>,
    /// In priority order: the first one (the oldest) is placed first.
    pub pending: Vec<WorkloadDemand>,
}

/// The plan: every pending workload is in exactly one of the two lists, each list in
/// the order of `Problem::pending`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Solution {
    pub placed: Vec<(String, Placement)>,
    pub unplaced: Vec<(String, Unplaceable)>,
}

/// Places every workload of `problem` that fits, in priority order.
pub fn solve(problem: &Problem) -> Solution {
    let mut solver = Solver::new(&problem.nodes);
    let mut solution = Solution { placed: Vec::new(), unplaced: Vec::new() };
    for demand in &problem.pending {
        match solver.place(demand) {
            Ok(placement) => solution.placed.push((demand.id.clone(), placement)),
            Err(reason) => solution.unplaced.push((demand.id.clone(), reason)),
        }
    }
    solution
}

/// Incremental form of [`solve`]: one decision per call, each seeing the ones before.
/// [`solve`] is exactly a loop over [`Solver::place`]; callers that want to interleave
/// their own work (or time each decision) use this.
#[derive(Debug)]
pub struct Solver {
    /// Sorted by id, one entry per id: a node's rank is its position here.
    nodes: Vec<NodeSnapshot>,
    index: Index,
    /// Capacities never change during a solve, so "larger than any node" is worked out once.
    largest: Resources,
}

impl Solver {
    /// Takes a copy of `nodes`. Should an id appear twice, the first occurrence counts,
    /// as it does for [`crate::check_fit`].
    pub fn new(nodes: &[NodeSnapshot]) -> Self {
        let mut nodes = nodes.to_vec();
        // Stable sort: among duplicates the first occurrence comes first and is kept.
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        nodes.dedup_by(|later, earlier| later.id == earlier.id);
        let index = Index::new(&nodes);
        let largest = reason::largest_capacity(&nodes);
        Self { nodes, index, largest }
    }

    /// Places the whole gang `demand`, subtracting it from the solver's nodes, or
    /// explains why it cannot be placed and leaves the nodes as they were.
    pub fn place(&mut self, demand: &WorkloadDemand) -> Result<Placement, Unplaceable> {
        if let Some(reason) = reason::invalid(demand) {
            return Err(reason);
        }
        let per = demand.per_container;
        let model = reason::gpu_model(demand);
        // State of each node before this gang touched it, to roll back to.
        let mut touched: Vec<(Rank, NodeSnapshot)> = Vec::new();
        let mut assignments = Vec::with_capacity(demand.count as usize);

        for _ in 0..demand.count {
            let group = demand.spread_group.as_deref();
            let found = self.index.best(&self.nodes, &per, model, group);
            let Some((rank, node)) = found.and_then(|r| Some((r, self.nodes.get_mut(r as usize)?))) else {
                let placeable = assignments.len() as u32;
                self.roll_back(touched);
                // The fallback is unreachable while diagnose and the index agree on what
                // fits; a truthful reason beats a panic if they ever drift apart.
                if let Some(reason) = self.spread_blocked(demand) {
                    return Err(reason);
                }
                return Err(self.explain(demand).unwrap_or_else(|| Unplaceable::GangDoesNotFit {
                    count: demand.count,
                    placeable,
                    per_container: per,
                    gpu_model: model.map(str::to_owned),
                }));
            };
            if !touched.iter().any(|(r, _)| *r == rank) {
                touched.push((rank, node.clone()));
            }
            self.index.remove(rank, node);
            let gpu_uuids = model.map(|m| node.lowest_gpus(m, per.gpus)).unwrap_or_default();
            node.take_container(&per, &gpu_uuids);
            // The index ranks by free resources only: groups can change without it.
            if let Some(group) = group {
                node.spread_groups.insert(group.to_owned());
            }
            self.index.insert(rank, node);
            assignments.push(Assignment { node_id: node.id.clone(), gpu_uuids });
        }
        Ok(Placement { assignments })
    }

    /// The nodes as they are after the placements made so far, sorted by id.
    pub fn nodes(&self) -> &[NodeSnapshot] {
        &self.nodes
    }

    /// Why `demand` does not fit the current state, looking only at the nodes the index
    /// says could hold its GPUs.
    fn explain(&self, demand: &WorkloadDemand) -> Option<Unplaceable> {
        let model = reason::gpu_model(demand);
        let nodes = match model {
            None => self.nodes.iter().collect(),
            Some(model) => self.index.members(model).into_iter().filter_map(|r| self.nodes.get(r as usize)).collect(),
        };
        let scope = Scope {
            no_nodes: self.nodes.is_empty(),
            largest: self.largest,
            free_models: self.index.free_models(),
            nodes,
        };
        let reason = reason::diagnose(&scope, demand);
        // Tests run in debug: every explanation there is cross-checked against a full scan.
        debug_assert_eq!(reason, reason::diagnose(&Scope::scan(&self.nodes, model), demand));
        reason
    }

    /// When anti-affinity is what stops `demand`: fewer nodes with room for one
    /// container and without its spread group than it has containers, while the group
    /// (another workload's or the gang's own spreading) is what rules the rest out.
    fn spread_blocked(&self, demand: &WorkloadDemand) -> Option<Unplaceable> {
        let group = demand.spread_group.as_deref()?;
        let model = reason::gpu_model(demand);
        let fitting: Vec<&NodeSnapshot> =
            self.nodes.iter().filter(|n| reason::container_fits(n, &demand.per_container, model)).collect();
        let admitting = fitting.iter().filter(|n| n.admits(Some(group))).count() as u32;
        let spread_is_why = (fitting.len() as u32) > admitting || (demand.count > 1 && admitting > 0);
        (admitting < demand.count && spread_is_why).then(|| Unplaceable::SpreadGroupTaken {
            group: group.to_owned(),
            count: demand.count,
            nodes: admitting,
        })
    }

    fn roll_back(&mut self, touched: Vec<(Rank, NodeSnapshot)>) {
        for (rank, before) in touched {
            if let Some(node) = self.nodes.get_mut(rank as usize) {
                self.index.remove(rank, node);
                self.index.insert(rank, &before);
                *node = before;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use gantry_domain::Resources;

    use super::*;
    use crate::snapshot::fixtures::*;

    fn nodes_of(solution: &Solution) -> Vec<Vec<&str>> {
        solution.placed.iter().map(|(_, p)| p.assignments.iter().map(|a| a.node_id.as_str()).collect()).collect()
    }

    fn with_used_gpus(mut node: NodeSnapshot, used: usize) -> NodeSnapshot {
        node.free_gpus.drain(..used);
        node.free.gpus = node.free_gpus.len() as u32;
        node
    }

    fn one(nodes: Vec<NodeSnapshot>, demand: WorkloadDemand) -> Solution {
        solve(&Problem { nodes, pending: vec![demand] })
    }

    #[test]
    fn gpu_work_keeps_whole_gpu_nodes_whole() {
        // The untouched 2-GPU node would be the tighter fit; the partly used 8-GPU node
        // is still preferred so that a whole node stays free for a gang.
        let nodes = vec![
            gpu_node("whole", 16000, 65536, "A100-80GB", 2),
            with_used_gpus(gpu_node("used", 64000, 262144, "A100-80GB", 8), 1),
        ];
        let s = one(nodes.clone(), demand("w", 4000, 16384, 1, Some("A100-80GB"), 1));
        assert_eq!(nodes_of(&s), vec![vec!["used"]]);
        // Only when no partly used node fits does the solver break into a whole one.
        let s = one(nodes, demand("w", 4000, 16384, 2, Some("A100-80GB"), 4));
        assert_eq!(nodes_of(&s), vec![vec!["used", "used", "used", "whole"]]);
    }

    #[test]
    fn gpu_leftover_is_part_of_best_fit() {
        // CPU and memory alone (Nomad's best fit) would pick the half-CPU-full node and
        // leave 6 GPUs idle there; counting GPUs picks the node it fills completely.
        let mut seven_free = with_used_gpus(gpu_node("a", 64000, 262144, "H100", 8), 1);
        seven_free.free.cpu_millis = 32000;
        let one_free = with_used_gpus(gpu_node("b", 64000, 262144, "H100", 8), 7);
        let s = one(vec![seven_free, one_free], demand("w", 2000, 8192, 1, Some("H100"), 1));
        assert_eq!(nodes_of(&s), vec![vec!["b"]]);
    }

    #[test]
    fn cpu_work_stays_off_gpu_nodes_while_a_cpu_node_fits() {
        let gpu = gpu_node("a-gpu", 64000, 262144, "T4", 4);
        let cpu = cpu_node("z-cpu", 8000, 32768);
        let s = one(vec![gpu.clone(), cpu.clone()], demand("w", 8000, 32768, 0, None, 1));
        assert_eq!(nodes_of(&s), vec![vec!["z-cpu"]]);
        // Too big for the CPU node: then a GPU node, the one with fewest GPUs to strand.
        let busier = with_used_gpus(gpu_node("b-gpu", 64000, 262144, "T4", 4), 3);
        let s = one(vec![gpu, busier, cpu], demand("w", 16000, 32768, 0, None, 1));
        assert_eq!(nodes_of(&s), vec![vec!["b-gpu"]]);
    }

    #[test]
    fn best_fit_is_normalised_across_node_sizes() {
        let mut small = cpu_node("b-small", 8000, 32768);
        small.free = Resources::new(4000, 16384, 0);
        let big = cpu_node("a-big", 96000, 393216);
        let s = one(vec![big, small], demand("w", 2000, 8192, 0, None, 1));
        assert_eq!(nodes_of(&s), vec![vec!["b-small"]]);
    }

    #[test]
    fn gpu_model_is_matched_exactly_and_lowest_uuids_are_taken() {
        let nodes = vec![gpu_node("a", 64000, 262144, "A100-80GB", 8), gpu_node("t", 64000, 262144, "T4", 8)];
        let s = one(nodes, demand("w", 1000, 1024, 2, Some("T4"), 1));
        let placement = &s.placed[0].1;
        assert_eq!(placement.assignments[0].node_id, "t");
        assert_eq!(placement.assignments[0].gpu_uuids, vec!["t-gpu-0".to_owned(), "t-gpu-1".to_owned()]);
    }

    #[test]
    fn a_gang_is_packed_onto_as_few_nodes_as_fit() {
        let nodes = vec![gpu_node("a", 64000, 262144, "H100", 8), gpu_node("b", 64000, 262144, "H100", 8)];
        let s = one(nodes, demand("w", 4000, 16384, 1, Some("H100"), 4));
        assert_eq!(nodes_of(&s), vec![vec!["a", "a", "a", "a"]]);
    }

    #[test]
    fn a_gang_that_does_not_fit_takes_nothing() {
        let nodes = vec![gpu_node("a", 64000, 262144, "H100", 4)];
        let problem = Problem {
            nodes: nodes.clone(),
            pending: vec![
                demand("big", 4000, 16384, 1, Some("H100"), 5),
                demand("small", 4000, 16384, 4, Some("H100"), 1),
            ],
        };
        let mut solver = Solver::new(&problem.nodes);
        assert!(matches!(
            solver.place(&problem.pending[0]),
            Err(Unplaceable::GangDoesNotFit { count: 5, placeable: 4, .. })
        ));
        assert_eq!(solver.nodes(), &nodes[..]);
        assert!(solver.place(&problem.pending[1]).is_ok());
    }

    #[test]
    fn a_spread_group_never_shares_a_node() {
        let mut first = demand("i0", 1000, 1024, 0, None, 1);
        first.spread_group = Some("stage-1".into());
        let mut second = first.clone();
        second.id = "i1".into();
        let mut third = first.clone();
        third.id = "i2".into();
        let mut other = first.clone();
        other.id = "o".into();
        other.spread_group = Some("stage-2".into());
        let nodes = vec![cpu_node("a", 8000, 32768), cpu_node("b", 8000, 32768)];
        let s = solve(&Problem { nodes: nodes.clone(), pending: vec![first, second, third.clone(), other] });
        // Without the group all four would pack onto one node.
        assert_eq!(nodes_of(&s), vec![vec!["a"], vec!["b"], vec!["a"]]);
        assert_eq!(s.placed[2].0, "o");
        let (id, reason) = &s.unplaced[0];
        assert_eq!(id, "i2");
        assert_eq!(reason, &Unplaceable::SpreadGroupTaken { group: "stage-1".into(), count: 1, nodes: 0 });
        assert!(reason.to_string().contains("stage-1"), "{reason}");

        // A gang of one group spreads over distinct nodes too.
        let mut gang = demand("g", 1000, 1024, 0, None, 2);
        gang.spread_group = Some("g".into());
        assert_eq!(nodes_of(&one(nodes.clone(), gang.clone())), vec![vec!["a", "b"]]);
        gang.count = 3;
        assert!(matches!(one(nodes, gang).unplaced[0].1, Unplaceable::SpreadGroupTaken { .. }));
    }

    #[test]
    fn ties_go_to_the_lowest_id_whatever_the_input_order() {
        let nodes = vec![cpu_node("n3", 8000, 32768), cpu_node("n1", 8000, 32768), cpu_node("n2", 8000, 32768)];
        let s = one(nodes, demand("w", 1000, 1024, 0, None, 1));
        assert_eq!(nodes_of(&s), vec![vec!["n1"]]);
    }

    #[test]
    fn a_duplicated_node_id_counts_once() {
        let nodes = vec![cpu_node("n", 8000, 32768), cpu_node("n", 64000, 262144)];
        let s = one(nodes, demand("w", 16000, 1024, 0, None, 1));
        assert_eq!(s.unplaced[0].1, Unplaceable::CpuExceedsEveryNode { need_millis: 16000, largest_millis: 8000 });
    }
}
