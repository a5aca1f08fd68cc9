//! Invariant: no acknowledged create is lost or applied twice when the leader crashes
//! mid-stream, and no rejected create is applied.
//!
//! Three real replicas (processes, TLS, loopback sockets). 16 clients send 1,000
//! `CreateExperiment`s to random replicas, paced over ~5 s; after ~300 are acknowledged
//! the leader is SIGKILLed and, once a successor leads (and at least 1 s passed), started
//! again while the stream goes on. Clients retry unknown outcomes on another replica with
//! the same request id. Finally every replica's own state (stale list) is checked
//! against the client history.
//!
//! Needs the scheduler binary: `cargo build -p gantry-scheduler`. Replay a failure with
//! the printed `GANTRY_CHAOS_SEED`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gantry_chaos::history::Summary;
use gantry_chaos::{ClusterOptions, CreateWorkload, ProcessCluster, Recorder, check_creates};
use gantry_proto::v1::{ListExperimentsRequest, ReadOptions};

const PROJECT: &str = "chaos";
const CREATES: usize = 1_000;
const KILL_AFTER_ACKED: usize = 300;
const CLIENTS: usize = 16;
/// 1,000 ops × 5 ms: the stream lasts at least 5 s, so the restart lands inside it.
const PACE: Duration = Duration::from_millis(5);
const DOWNTIME: Duration = Duration::from_secs(1);
const ELECTION_DEADLINE: Duration = Duration::from_secs(20);
const CONVERGE_DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_a_leader_crash() -> anyhow::Result<()> {
    let test_start = Instant::now();
    let seed = gantry_chaos::chaos_seed()?;
    let cluster =
        Arc::new(ProcessCluster::start(ClusterOptions { replicas: 3, seed: Some(seed), ..Default::default() }).await?);
    let first_leader = cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    eprintln!("{}; leader: replica {first_leader}", cluster.describe());

    let recorder = Recorder::new();
    let workload = CreateWorkload {
        concurrency: CLIENTS,
        pace: PACE,
        op_deadline: Duration::from_secs(25),
        deadline: Duration::from_secs(60),
        ..CreateWorkload::new(PROJECT, CREATES, seed)
    };
    let running = workload.spawn(cluster.clone(), recorder.clone());
    let progress = running.progress();

    // The fault: crash whoever leads once ~300 creates are acknowledged.
    progress.wait_acked(KILL_AFTER_ACKED, Duration::from_secs(40)).await?;
    let victim = cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    let acked_at_kill = progress.acked();
    let killed_at = Instant::now();
    cluster.kill(victim).await?;
    let successor = cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    let elected_after = killed_at.elapsed();
    tokio::time::sleep(DOWNTIME.saturating_sub(killed_at.elapsed())).await;
    cluster.restart(victim).await?;
    let restarted_at = Instant::now();
    let acked_at_restart = progress.acked();
    eprintln!(
        "killed leader replica {victim} at {acked_at_kill} acked; replica {successor} led after {elected_after:?}; \
         restarted at {acked_at_restart} acked"
    );

    running.join().await?;
    let workload_took = test_start.elapsed();
    let history = recorder.history();
    let summary = history.summary();
    eprintln!("history: {summary}; definite failures by code: {:?}", history.failure_codes());

    cluster.check_no_panics()?;
    let applied = cluster.wait_converged(CONVERGE_DEADLINE).await?;
    let converged_at = test_start.elapsed();
    let mut observed = Vec::new();
    for i in 0..cluster.len() {
        let list = cluster
            .client(i)
            .experiments
            .list_experiments(ListExperimentsRequest {
                project: PROJECT.into(),
                read: Some(ReadOptions { stale: true }),
            })
            .await?
            .into_inner();
        observed.push(list.experiments);
    }
    // The same experiment must be the same record everywhere, not just the same name.
    for (i, list) in observed.iter().enumerate().skip(1) {
        let ids = |l: &Vec<gantry_proto::v1::Experiment>| {
            l.iter().map(|e| (e.name.clone(), e.id.clone())).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(list),
            ids(&observed[0]),
            "replica {i} and replica 0 hold different experiment records; {}",
            cluster.describe()
        );
    }
    let names = observed.into_iter().map(|l| l.into_iter().map(|e| e.name).collect()).collect();
    match check_creates(&history, names) {
        Ok(report) => eprintln!("check passed at applied index {applied}: {report}"),
        Err(violations) => {
            let shown: Vec<String> = violations.iter().take(20).map(|v| format!("  {v}")).collect();
            panic!(
                "{} violations after a leader crash ({summary}); first ones:\n{}\n{}",
                violations.len(),
                shown.join("\n"),
                cluster.describe()
            );
        }
    }

    // The scenario really happened: the crash and the restart both fell inside the stream.
    assert_eq!(summary.ops, CREATES, "every create must have been sent; {}", cluster.describe());
    assert!(acked_at_kill < CREATES, "the leader was killed after the stream ended");
    let completed_after_restart = history.ops.iter().filter(|o| o.result.is_ok() && o.complete > restarted_at).count();
    assert!(
        completed_after_restart > 0,
        "no create was acknowledged after the old leader restarted: the stream ended too early ({summary})"
    );
    // Liveness: with unique names nothing is rejected, and a cluster that has a leader
    // again must acknowledge every retried create within its 25 s budget.
    assert_eq!(
        (summary.failed, summary.unknown),
        (0, 0),
        "creates that never succeeded ({summary}; failures by code {:?}); {}",
        history.failure_codes(),
        unfinished(&history.ops)
    );
    let Summary { retries, .. } = summary;
    eprintln!(
        "{completed_after_restart} creates acknowledged after the restart; {retries} retries; \
         workload done at {workload_took:?}, converged at {converged_at:?}"
    );

    let Ok(cluster) = Arc::try_unwrap(cluster) else {
        anyhow::bail!("the cluster is still shared after the workload ended");
    };
    cluster.shutdown().await?;
    eprintln!("took {:?} in all", test_start.elapsed());
    Ok(())
}

/// The first few ops that did not end Ok, with their attempts.
fn unfinished(ops: &[gantry_chaos::Op]) -> String {
    ops.iter()
        .filter(|o| !o.result.is_ok())
        .take(5)
        .map(|o| {
            let attempts: Vec<String> =
                o.attempts.iter().map(|a| format!("replica {}: {:?}", a.replica, a.result)).collect();
            format!("{} ({}): {}", o.key, o.request_id, attempts.join("; "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
