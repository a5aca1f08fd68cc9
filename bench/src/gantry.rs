//! The Gantry side of the replicated-write and failover benchmarks: a real 3-replica
//! cluster of `gantry-scheduler` processes (TLS, fsync) started by the chaos harness,
//! driven through the public admin API exactly as `gantryctl` would.
//!
//! A "commit" is one `CreateExperiment`: acknowledged only after a majority has the
//! entry on disk and it is applied, the same guarantee an etcd put gives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use gantry_chaos::{ClusterOptions, ProcessCluster};
use gantry_proto::v1::CreateExperimentRequest;
use tokio::sync::mpsc;

use crate::load::{LoadReport, run_closed_loop};

const FAILOVER_OP_TIMEOUT: Duration = Duration::from_millis(200);
const FAILOVER_GIVE_UP: Duration = Duration::from_secs(30);
const FAILOVER_WARMUP_ACKS: usize = 20;

/// Starts `replicas` scheduler processes with the default (production) timings.
pub async fn start(replicas: usize) -> anyhow::Result<ProcessCluster> {
    let cluster =
        ProcessCluster::start(ClusterOptions { replicas, log_filter: "warn".into(), ..Default::default() }).await?;
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    Ok(cluster)
}

fn create(run: &str, seq: usize) -> CreateExperimentRequest {
    CreateExperimentRequest {
        project: "bench".into(),
        name: format!("e{run}-{seq}"),
        description: "x".repeat(120),
        tags: Vec::new(),
        request_id: format!("{run}-{seq}"),
    }
}

/// `clients` concurrent writers, client `c` talking to replica `c % replicas` (as etcd's
/// clients spread over its members); followers forward to the leader.
pub async fn bench_writes(
    cluster: &ProcessCluster,
    run: &str,
    clients: usize,
    total_ops: usize,
    max_duration: Duration,
) -> LoadReport {
    let pool: Arc<Vec<_>> = Arc::new((0..cluster.len()).map(|i| cluster.client(i)).collect());
    let run = run.to_string();
    run_closed_loop(clients, total_ops, max_duration, move |client, seq| {
        let mut experiments = pool[client % pool.len()].experiments.clone();
        let request = create(&run, seq);
        async move {
            experiments.create_experiment(request).await?;
            Ok(())
        }
    })
    .await
}

struct Ack {
    issued: Instant,
    acked: Instant,
}

/// Time from SIGKILL of the leader to the first acknowledged write issued after it, by
/// a writer that retries on the next replica with a 200 ms per-write timeout (the same
/// writer the etcd side uses). The killed replica is restarted before returning.
pub async fn bench_failover(cluster: &ProcessCluster) -> anyhow::Result<Duration> {
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await?;
    let (acks, mut acked) = mpsc::channel(64);
    let pool: Vec<_> = (0..cluster.len()).map(|i| cluster.client(i)).collect();
    let deadline = Instant::now() + FAILOVER_GIVE_UP * 2;
    let writer = tokio::spawn(async move {
        let mut current = 0;
        let mut seq = 0;
        while Instant::now() < deadline && !acks.is_closed() {
            seq += 1;
            let issued = Instant::now();
            let mut c = pool[current].experiments.clone();
            match tokio::time::timeout(FAILOVER_OP_TIMEOUT, c.create_experiment(create("failover", seq))).await {
                Ok(Ok(_)) => {
                    if acks.send(Ack { issued, acked: Instant::now() }).await.is_err() {
                        return;
                    }
                }
                _ => current = (current + 1) % pool.len(),
            }
        }
    });
    for _ in 0..FAILOVER_WARMUP_ACKS {
        match tokio::time::timeout(FAILOVER_GIVE_UP, acked.recv()).await {
            Ok(Some(_)) => {}
            _ => bail!("failover writer got no acknowledgements before the kill"),
        }
    }
    let killed_at = Instant::now();
    cluster.kill(leader).await?;
    let failover = loop {
        match tokio::time::timeout_at((killed_at + FAILOVER_GIVE_UP).into(), acked.recv()).await {
            Ok(Some(ack)) if ack.issued >= killed_at => break ack.acked - killed_at,
            Ok(Some(_)) => {}
            Ok(None) => bail!("failover writer stopped"),
            Err(_) => bail!("no write acknowledged within {FAILOVER_GIVE_UP:?} of the kill"),
        }
    };
    drop(acked);
    let _ = writer.await;
    let new_leader = cluster.wait_for_leader(Duration::from_secs(10)).await?;
    ensure!(new_leader != leader, "after killing replica {leader} it still leads");
    cluster.restart(leader).await?;
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    Ok(failover)
}
