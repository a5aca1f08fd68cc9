//! Invariant: a replica whose disk fails stops at once (exits non-zero, for systemd to
//! restart it) instead of running on with a log store in an unknown state, and once
//! restarted on a healthy disk it rejoins with no acknowledged write lost.
//!
//! Faults come from the raft log's fault hook (`[raft] fault_file`), set on a running
//! follower through `ProcessCluster::fail_disk` / `fail_snapshots`.
//!
//! Needs the scheduler binary: `cargo build -p gantry-scheduler`.

mod replicated;

use std::sync::Arc;
use std::time::Duration;

use gantry_chaos::{ClusterOptions, ProcessCluster, Recorder};
use replicated::{ELECTION_DEADLINE, create, finish};
use tokio::time::Instant;

const SNAPSHOT_EVERY: u64 = 20;
/// From the fault to the exit: one write, one log line. Generous for a loaded machine.
const EXIT_DEADLINE: Duration = Duration::from_secs(15);
/// The scheduler's exit status after a log store failure (EX_IOERR).
const STORAGE_FAILED_EXIT: i32 = 74;

/// One cluster at a time: two 3-replica clusters on a 2-core machine would make each
/// test's timing depend on the other.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A 3-replica cluster with a leader, a few experiments, and the follower to hurt.
async fn start(recorder: &Recorder) -> anyhow::Result<(Arc<ProcessCluster>, usize, usize)> {
    let seed = gantry_chaos::chaos_seed()?;
    let options =
        ClusterOptions { replicas: 3, snapshot_every: SNAPSHOT_EVERY, seed: Some(seed), ..Default::default() };
    let cluster = Arc::new(ProcessCluster::start(options).await?);
    let leader = cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    create(&cluster, recorder, 0, 5, Vec::new(), seed).await?;
    let victim = (leader + 1) % 3;
    eprintln!("{}; leader {leader}, disk fault on {victim}", cluster.describe());
    Ok((cluster, leader, victim))
}

/// Waits for replica `victim` to exit with the storage failure status, heals its disk,
/// restarts it and checks that nothing acknowledged was lost.
async fn expect_exit_then_rejoin(
    cluster: Arc<ProcessCluster>,
    recorder: &Recorder,
    victim: usize,
) -> anyhow::Result<()> {
    let status = cluster.wait_exited(victim, EXIT_DEADLINE).await?;
    let Some(status) = status else {
        cluster.mark_failed();
        anyhow::bail!(
            "replica {victim} still runs {EXIT_DEADLINE:?} after its disk failed: it must stop, not run on with a \
             failed log store; log tail:\n{}",
            cluster.log_tail(victim, 20)
        );
    };
    anyhow::ensure!(
        status.code() == Some(STORAGE_FAILED_EXIT),
        "replica {victim} must exit with status {STORAGE_FAILED_EXIT} after a disk failure, not {status}; log tail:\n{}",
        cluster.log_tail(victim, 20)
    );
    cluster.heal_disk(victim)?;
    cluster.restart(victim).await?;
    let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != victim).collect();
    let next = recorder.history().ops.len();
    create(&cluster, recorder, next, 10, others, 0xd15c).await?;
    finish(cluster, recorder).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_replica_and_it_rejoins_after_a_restart() -> anyhow::Result<()> {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let recorder = Recorder::new();
    let (cluster, leader, victim) = start(&recorder).await?;
    cluster.fail_disk(victim)?;
    // Acknowledged by the other two while the victim's writes fail.
    let third = 3 - leader - victim;
    create(&cluster, &recorder, 5, 20, vec![leader, third], 0xfa11).await?;
    expect_exit_then_rejoin(cluster, &recorder, victim).await
}

/// Before the fix a failed snapshot save was logged and ignored: the store was poisoned,
/// but a replica with no further write to make ran on with it indefinitely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_failed_snapshot_save_stops_an_idle_replica() -> anyhow::Result<()> {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let recorder = Recorder::new();
    let (cluster, leader, victim) = start(&recorder).await?;
    cluster.fail_snapshots(victim)?;
    // One write at a time until the victim has applied enough for a snapshot, then no
    // more: the failed save is the last write it attempts.
    let mut next = recorder.history().ops.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let applied = match cluster.status(victim).await {
            Ok(s) => s.applied_index,
            Err(_) if !cluster.is_running(victim) => break,
            Err(e) => return Err(e),
        };
        if applied >= SNAPSHOT_EVERY {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "replica {victim} never applied {SNAPSHOT_EVERY} entries");
        create(&cluster, &recorder, next, 1, vec![leader], 0x5a4e).await?;
        next += 1;
        let target = cluster.status(leader).await?.commit_index;
        while cluster.is_running(victim)
            && cluster.status(victim).await.is_ok_and(|s| s.applied_index < target)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    expect_exit_then_rejoin(cluster, &recorder, victim).await
}

/// The hook acts on a running replica: with both followers' disks slowed, no write can
/// commit sooner than one delayed fsync (the leader needs one follower's); healed, the
/// cluster goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_disk_set_at_runtime_delays_commits() -> anyhow::Result<()> {
    const DELAY: Duration = Duration::from_millis(400);
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let recorder = Recorder::new();
    let (cluster, leader, follower) = start(&recorder).await?;
    let other = 3 - leader - follower;
    cluster.slow_disk(follower, DELAY)?;
    cluster.slow_disk(other, DELAY)?;
    let next = recorder.history().ops.len();
    let started = Instant::now();
    create(&cluster, &recorder, next, 1, vec![leader], 0x510e).await?;
    let took = started.elapsed();
    anyhow::ensure!(took >= DELAY, "a write committed in {took:?}, faster than the followers' {DELAY:?} disks");
    cluster.heal_disk(follower)?;
    cluster.heal_disk(other)?;
    finish(cluster, &recorder).await
}
