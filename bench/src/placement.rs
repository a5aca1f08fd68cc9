//! Placement throughput and per-decision latency of `gantry-placement` on a synthetic
//! fleet: 5,000 nodes of mixed instance types and GPU models, 10,000 pending
//! single-container workloads of mixed shapes, all from a fixed seed.
//!
//! ```text
//!   fleet + queue (seeded) ──► solve() x RUNS ──► median batch time ──► placements/s
//!                         └──► Solver::place() one by one, each timed ──► p50 / p99
//!                         └──► check_fit + apply over the plan ──────► verified
//!
//! placements/s counts placed workloads only, over the whole batch time including
//! building the index and explaining the unplaced ones.
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gantry_domain::{Resources, WorkloadDemand};
use gantry_placement::{FreeGpu, NodeSnapshot, Problem, Solution, Solver, apply, check_fit, solve};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// "gantry" in ASCII.
const SEED: u64 = 0x6761_6e74_7279;
const NODES: usize = 5_000;
const WORKLOADS: usize = 10_000;
/// Batch solves timed; the median is reported so one noisy run does not decide.
const RUNS: usize = 5;

/// An instance type of the fleet: (weight out of 100, cores, GiB, GPUs, model).
const NODE_TYPES: [(u32, u64, u64, u32, &str); 9] = [
    (15, 8, 32, 0, ""),
    (15, 32, 128, 0, ""),
    (10, 64, 256, 0, ""),
    (15, 96, 1024, 8, "A100-80GB"),
    (10, 64, 512, 4, "H100"),
    (5, 192, 2048, 8, "H100"),
    (15, 16, 64, 1, "T4"),
    (10, 48, 192, 4, "T4"),
    (5, 32, 128, 2, "L4"),
];

fn fleet(rng: &mut StdRng) -> Vec<NodeSnapshot> {
    (0..NODES)
        .map(|i| {
            let (_, cores, gib, gpus, model) = pick(rng, &NODE_TYPES, |t| t.0);
            let id = format!("node-{i:05}");
            let free_gpus =
                (0..gpus).map(|k| FreeGpu { uuid: format!("GPU-{id}-{k}"), model: model.to_owned() }).collect();
            NodeSnapshot::idle(id, cores * 1000, gib * 1024, free_gpus)
        })
        .collect()
}

/// A workload shape: (weight out of 100, max cores, max GiB, GPUs, model).
const SHAPES: [(u32, u64, u64, u32, &str); 10] = [
    (30, 4, 16, 0, ""),
    (10, 16, 64, 0, ""),
    (15, 12, 96, 1, "A100-80GB"),
    (5, 24, 192, 2, "A100-80GB"),
    (3, 48, 480, 4, "A100-80GB"),
    (2, 96, 960, 8, "A100-80GB"),
    (8, 16, 128, 1, "H100"),
    (4, 32, 256, 2, "H100"),
    (15, 8, 32, 1, "T4"),
    (8, 8, 32, 1, "L4"),
];

fn queue(rng: &mut StdRng) -> Vec<WorkloadDemand> {
    (0..WORKLOADS)
        .map(|i| {
            let (_, cores, gib, gpus, model) = pick(rng, &SHAPES, |s| s.0);
            // Up to the shape's maximum, in halves, so shapes vary within a type.
            let cpu_millis = rng.random_range(1..=cores * 2) * 500;
            let memory_mib = rng.random_range(1..=gib * 2) * 512;
            WorkloadDemand {
                id: format!("workload-{i:05}"),
                per_container: Resources::new(cpu_millis, memory_mib, gpus),
                gpu_model: (gpus > 0).then(|| model.to_owned()),
                count: 1,
                spread_group: None,
            }
        })
        .collect()
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T], weight: impl Fn(&T) -> u32) -> T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut roll = rng.random_range(0..total);
    for item in items {
        if roll < weight(item) {
            return *item;
        }
        roll -= weight(item);
    }
    items[items.len() - 1]
}

/// Commits the plan the way the scheduler would, failing on the first placement that
/// does not fit the state left by the ones before it.
fn verify(problem: &Problem, solution: &Solution) -> anyhow::Result<Vec<NodeSnapshot>> {
    let demands: BTreeMap<&str, &WorkloadDemand> = problem.pending.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut nodes = problem.nodes.clone();
    for (id, placement) in &solution.placed {
        let demand = demands.get(id.as_str()).with_context(|| format!("{id} is not in the queue"))?;
        check_fit(&nodes, demand, placement).with_context(|| format!("placement of {id}"))?;
        apply(&mut nodes, demand, placement);
    }
    Ok(nodes)
}

pub fn run() -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let problem = Problem { nodes: fleet(&mut rng), pending: queue(&mut rng) };

    let mut batch_times = Vec::with_capacity(RUNS);
    let mut solution = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let s = solve(&problem);
        batch_times.push(start.elapsed());
        if solution.as_ref().is_some_and(|previous| *previous != s) {
            bail!("two solves of the same problem gave different plans");
        }
        solution = Some(s);
    }
    let solution = solution.context("no run")?;
    batch_times.sort();
    let batch = batch_times[RUNS / 2];

    // Per decision: the same decisions one by one, each timed from outside the solver.
    let build_start = Instant::now();
    let mut solver = Solver::new(&problem.nodes);
    let build = build_start.elapsed();
    let mut decisions = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut one_by_one = Vec::with_capacity(problem.pending.len());
    for demand in &problem.pending {
        let start = Instant::now();
        let result = solver.place(demand);
        decisions.record(start.elapsed().as_nanos().max(1) as u64)?;
        one_by_one.push(result.is_ok());
    }
    if one_by_one.iter().filter(|ok| **ok).count() != solution.placed.len() {
        bail!("one-by-one placement disagrees with the batch solve");
    }

    let after = verify(&problem, &solution)?;
    let whole_gpu_nodes = |nodes: &[NodeSnapshot]| nodes.iter().filter(|n| n.gpus_untouched()).count();
    let placed = solution.placed.len();
    let per_s = placed as f64 / batch.as_secs_f64();
    let p50_us = decisions.value_at_quantile(0.50) as f64 / 1000.0;
    let p99_us = decisions.value_at_quantile(0.99) as f64 / 1000.0;
    let max_us = decisions.max() as f64 / 1000.0;

    println!(
        "placement: {NODES} nodes ({} types), {WORKLOADS} single-container workloads, seed {SEED:#x}",
        NODE_TYPES.len()
    );
    println!(
        "{:>6} {:>9} {:>7} {:>9} {:>9} {:>13} {:>8} {:>8} {:>8}",
        "nodes", "workloads", "placed", "unplaced", "total_ms", "placements/s", "p50_us", "p99_us", "max_us"
    );
    println!(
        "{:>6} {:>9} {:>7} {:>9} {:>9.1} {:>13.0} {:>8.2} {:>8.2} {:>8.1}",
        problem.nodes.len(),
        problem.pending.len(),
        placed,
        solution.unplaced.len(),
        batch.as_secs_f64() * 1000.0,
        per_s,
        p50_us,
        p99_us,
        max_us
    );
    println!(
        "index build {:.1} ms (inside total); batch runs {}; plan verified with check_fit; \
         untouched GPU nodes {} -> {}",
        build.as_secs_f64() * 1000.0,
        batch_times.iter().map(|d| format!("{:.1}", ms(*d))).collect::<Vec<_>>().join("/"),
        whole_gpu_nodes(&problem.nodes),
        whole_gpu_nodes(&after)
    );
    if let Some((id, reason)) = solution.unplaced.first() {
        println!("first unplaced: {id}: {reason}");
    }
    println!(
        "bench: placement placements_per_s={} p99_us={} p50_us={} p99_ns={} nodes={} workloads={} placed={}",
        per_s.round() as u64,
        p99_us.round() as u64,
        p50_us.round() as u64,
        decisions.value_at_quantile(0.99),
        problem.nodes.len(),
        problem.pending.len(),
        placed
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
