//! Helpers of the process-cluster tests that write experiments and check that every
//! acknowledged one survives (`wiped_replica`, `disk_faults`).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use gantry_chaos::{CreateWorkload, ProcessCluster, Recorder, check_creates};
use gantry_proto::v1::{ListExperimentsRequest, ReadOptions};

pub const PROJECT: &str = "chaos";
pub const ELECTION_DEADLINE: Duration = Duration::from_secs(20);
pub const CONVERGE_DEADLINE: Duration = Duration::from_secs(30);

/// Creates experiments `first..first + count` (4 clients, sent to `targets`, all
/// replicas if empty) and requires every one to succeed.
pub async fn create(
    cluster: &Arc<ProcessCluster>,
    recorder: &Recorder,
    first: usize,
    count: usize,
    targets: Vec<usize>,
    seed: u64,
) -> anyhow::Result<()> {
    let workload = CreateWorkload { first, concurrency: 4, targets, ..CreateWorkload::new(PROJECT, count, seed) };
    workload.spawn(cluster.clone(), recorder.clone()).join().await?;
    let summary = recorder.history().summary();
    anyhow::ensure!(
        summary.ok == summary.ops,
        "every create must succeed on a cluster with a leader and a majority: {summary}; {}",
        cluster.describe()
    );
    Ok(())
}

/// The experiment names replica `i` holds in its own state.
pub async fn stale_names(cluster: &ProcessCluster, i: usize) -> anyhow::Result<Vec<String>> {
    let list = cluster
        .client(i)
        .experiments
        .list_experiments(ListExperimentsRequest { project: PROJECT.into(), read: Some(ReadOptions { stale: true }) })
        .await?
        .into_inner();
    Ok(list.experiments.into_iter().map(|e| e.name).collect())
}

/// One last create on every replica's path, convergence, the history check on every
/// replica (no acknowledged create lost), no panics, clean shutdown.
pub async fn finish(cluster: Arc<ProcessCluster>, recorder: &Recorder) -> anyhow::Result<()> {
    let next = recorder.history().ops.len();
    create(&cluster, recorder, next, 1, Vec::new(), 0xf1a1).await?;
    cluster.wait_converged(CONVERGE_DEADLINE).await?;
    let mut observed = Vec::new();
    for i in 0..cluster.len() {
        observed.push(stale_names(&cluster, i).await?);
    }
    match check_creates(&recorder.history(), observed) {
        Ok(report) => eprintln!("check passed: {report}"),
        Err(violations) => {
            cluster.mark_failed();
            let shown: Vec<String> = violations.iter().take(20).map(|v| format!("  {v}")).collect();
            anyhow::bail!("{} violations; first ones:\n{}\n{}", violations.len(), shown.join("\n"), cluster.describe());
        }
    }
    cluster.check_no_panics()?;
    match Arc::try_unwrap(cluster) {
        Ok(cluster) => cluster.shutdown().await,
        Err(_) => anyhow::bail!("the cluster is still shared after the workloads ended"),
    }
}
