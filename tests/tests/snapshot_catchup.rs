//! Invariant: a follower that needs entries the leader has compacted away catches up from
//! the leader's snapshot, and ends with every acknowledged write.
//!
//! Three replicas snapshotting every 50 entries, two ways to fall behind:
//! - the follower loses its disk: stopped, data dir deleted, started empty;
//! - the follower is down while the leader compacts past its last entry (disk kept).
//!
//! Each time the follower's own state (stale list) must end with every experiment, with a
//! snapshot installed and a log starting after it, and the whole cluster must agree with
//! the client history.
//!
//! Needs the scheduler binary: `cargo build -p gantry-scheduler`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use gantry_chaos::{ClusterOptions, CreateWorkload, ProcessCluster, Recorder, check_creates};
use gantry_proto::v1::{ClusterStatus, ListExperimentsRequest, ReadOptions};
use tokio::time::Instant;

const PROJECT: &str = "chaos";
const SNAPSHOT_EVERY: u64 = 50;
const ELECTION_DEADLINE: Duration = Duration::from_secs(20);
const CATCH_UP_DEADLINE: Duration = Duration::from_secs(30);

/// One cluster at a time: six replicas plus two workloads on a 2-core machine would
/// make the timing of both tests depend on each other.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_follower_catches_up_from_a_snapshot() -> anyhow::Result<()> {
    const BEFORE: usize = 300;
    const AFTER: usize = 50;
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (cluster, recorder, leader, seed) = start().await?;
    create(&cluster, &recorder, 0, BEFORE, Vec::new(), seed).await?;

    // Replica 3 (index 2) unless it leads: the point is to lose a follower's disk.
    let victim = if leader == 2 { 1 } else { 2 };
    let leader_status = cluster.status(leader).await?;
    assert!(
        leader_status.first_log_index > 1,
        "precondition: the leader must have compacted its log, so that an empty replica needs a snapshot: {leader_status:?}"
    );
    cluster.terminate(victim).await?;
    cluster.wipe(victim)?;
    cluster.restart(victim).await.with_context(|| {
        format!(
            "replica {victim} was restarted with an empty data dir (its disk was lost) while the leader's log \
             starts at {}; it must install the leader's snapshot, not crash",
            leader_status.first_log_index
        )
    })?;

    let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != victim).collect();
    create(&cluster, &recorder, BEFORE, AFTER, others, seed ^ 1).await?;
    let status = wait_caught_up(&cluster, victim, BEFORE + AFTER, 0).await?;
    eprintln!(
        "wiped replica {victim} caught up: snapshot {} log {}..={} applied {}",
        status.snapshot_index, status.first_log_index, status.last_log_index, status.applied_index
    );
    finish(cluster, &recorder).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_catches_up_from_a_snapshot() -> anyhow::Result<()> {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (cluster, recorder, _, _) = lag_and_catch_up(false).await?;
    finish(cluster, &recorder).await
}

/// A follower that caught up from a snapshot with no entry after it, and has applied
/// nothing since, must still be able to run for election. raft-rs reads the log from
/// its *applied* index + 1 when it campaigns, so that index must have moved to the
/// snapshot's, or the read hits the compacted part of the log and raft-rs panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_follower_that_caught_up_from_a_snapshot_can_campaign() -> anyhow::Result<()> {
    let _serial = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (cluster, recorder, victim, created) = lag_and_catch_up(true).await?;
    let caught_up = cluster.status(victim).await?;
    eprintln!(
        "replica {victim} after installing snapshot {}: applied index reported {} (commit {})",
        caught_up.snapshot_index, caught_up.applied_index, caught_up.commit_index
    );

    // Leave it alone so that its election timer certainly fires, then wait until it
    // campaigns (or fails trying).
    let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != victim).collect();
    for &i in &others {
        cluster.kill(i).await?;
    }
    let deadline = Instant::now() + ELECTION_DEADLINE;
    loop {
        let panics = cluster.panics(victim);
        if !panics.is_empty() {
            cluster.mark_failed();
            anyhow::bail!(
                "replica {victim}, alone after catching up from snapshot {} (its status said applied {}), panicked \
                 when its election timer fired:\n  {}\nlog tail:\n{}\n{}",
                caught_up.snapshot_index,
                caught_up.applied_index,
                panics.join("\n  "),
                cluster.log_tail(victim, 20),
                cluster.describe()
            );
        }
        match cluster.status(victim).await {
            Ok(s) if s.role == "PRE_CANDIDATE" || s.role == "CANDIDATE" => break,
            last if Instant::now() >= deadline => {
                cluster.mark_failed();
                anyhow::bail!("replica {victim} did not campaign within {ELECTION_DEADLINE:?}; last status {last:?}");
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    for &i in &others {
        cluster.restart(i).await?;
    }
    cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    create(&cluster, &recorder, created, 10, Vec::new(), 0x5eed).await?;
    finish(cluster, &recorder).await
}

/// 100 creates; a follower stops; 250 more while the leader compacts past its last entry
/// (with `snapshot_at_tip`, then single creates until the leader's snapshot is its last
/// entry, so the follower gets a snapshot with nothing after it); the follower restarts
/// and catches up. Returns the follower's index and the number of creates.
async fn lag_and_catch_up(snapshot_at_tip: bool) -> anyhow::Result<(Arc<ProcessCluster>, Recorder, usize, usize)> {
    const BEFORE: usize = 100;
    const WHILE_DOWN: usize = 250;
    let (cluster, recorder, leader, seed) = start().await?;
    create(&cluster, &recorder, 0, BEFORE, Vec::new(), seed).await?;

    let victim = if leader == 2 { 1 } else { 2 };
    let stopped_at = cluster.status(victim).await?.last_log_index;
    cluster.terminate(victim).await?;
    let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != victim).collect();
    create(&cluster, &recorder, BEFORE, WHILE_DOWN, others.clone(), seed ^ 1).await?;
    let mut created = BEFORE + WHILE_DOWN;
    let leader = cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    let mut leader_status = cluster.status(leader).await?;
    // Each create adds one entry, so a snapshot lands on the tip within SNAPSHOT_EVERY.
    while snapshot_at_tip && leader_status.snapshot_index != leader_status.last_log_index {
        anyhow::ensure!(
            created < BEFORE + WHILE_DOWN + 2 * SNAPSHOT_EVERY as usize,
            "the leader's snapshot never landed on its last entry: {leader_status:?}"
        );
        create(&cluster, &recorder, created, 1, vec![leader], seed ^ 2).await?;
        created += 1;
        leader_status = cluster.status(leader).await?;
        // Snapshots are written off the ready loop: when this create made one due, wait
        // for it to land before the next create moves the tip.
        let due = leader_status.applied_index;
        let deadline = Instant::now() + Duration::from_secs(5);
        while due >= leader_status.snapshot_index + SNAPSHOT_EVERY && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            leader_status = cluster.status(leader).await?;
        }
    }
    assert!(
        leader_status.first_log_index > stopped_at + 1,
        "precondition: the leader must have compacted past the stopped follower's last entry {stopped_at}: {leader_status:?}"
    );

    cluster.restart(victim).await?;
    let status = wait_caught_up(&cluster, victim, created, stopped_at).await?;
    eprintln!(
        "lagging replica {victim} (stopped at {stopped_at}) caught up: snapshot {} log {}..={} applied {}",
        status.snapshot_index, status.first_log_index, status.last_log_index, status.applied_index
    );
    Ok((cluster, recorder, victim, created))
}

/// A 3-replica cluster snapshotting every [`SNAPSHOT_EVERY`] entries, with a leader.
async fn start() -> anyhow::Result<(Arc<ProcessCluster>, Recorder, usize, u64)> {
    let seed = gantry_chaos::chaos_seed()?;
    let options =
        ClusterOptions { replicas: 3, snapshot_every: SNAPSHOT_EVERY, seed: Some(seed), ..Default::default() };
    let cluster = Arc::new(ProcessCluster::start(options).await?);
    let leader = cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    eprintln!("{}; leader: replica {leader}", cluster.describe());
    Ok((cluster, Recorder::new(), leader, seed))
}

/// Creates experiments `first..first + count` (8 clients, sent to `targets`, all replicas
/// if empty) and requires every one to succeed: no fault is injected meanwhile.
async fn create(
    cluster: &Arc<ProcessCluster>,
    recorder: &Recorder,
    first: usize,
    count: usize,
    targets: Vec<usize>,
    seed: u64,
) -> anyhow::Result<()> {
    let workload = CreateWorkload { first, concurrency: 8, targets, ..CreateWorkload::new(PROJECT, count, seed) };
    workload.spawn(cluster.clone(), recorder.clone()).join().await?;
    let summary = recorder.history().summary();
    anyhow::ensure!(
        summary.ok == first + count && summary.ops == first + count,
        "every create must succeed on a cluster with a leader and a majority: {summary}; {}",
        cluster.describe()
    );
    Ok(())
}

/// Waits until replica `i` lists `expected` experiments from its own state and reports a
/// snapshot beyond `snapshot_above` with its log starting after index 1.
async fn wait_caught_up(
    cluster: &ProcessCluster,
    i: usize,
    expected: usize,
    snapshot_above: u64,
) -> anyhow::Result<ClusterStatus> {
    let deadline = Instant::now() + CATCH_UP_DEADLINE;
    loop {
        // A replica whose raft task panicked keeps answering "shutting down": stop at once.
        let panics = cluster.panics(i);
        if !panics.is_empty() {
            cluster.mark_failed();
            anyhow::bail!(
                "replica {i} panicked while catching up:\n  {}\nlog tail:\n{}\n{}",
                panics.join("\n  "),
                cluster.log_tail(i, 30),
                cluster.describe()
            );
        }
        let names = stale_names(cluster, i).await;
        let status = cluster.status(i).await;
        let caught_up = matches!(&names, Ok(n) if n.len() == expected);
        match status {
            Ok(s) if caught_up && s.snapshot_index > snapshot_above && s.first_log_index > 1 => {
                anyhow::ensure!(
                    s.snapshot_index + 1 >= s.first_log_index,
                    "replica {i}'s log must start right after its snapshot: {s:?}"
                );
                return Ok(s);
            }
            last if Instant::now() >= deadline => {
                cluster.mark_failed();
                anyhow::bail!(
                    "replica {i} did not catch up from a snapshot within {CATCH_UP_DEADLINE:?}: it lists {:?} of {expected} \
                     experiments; status {last:?}\n{}",
                    names.map(|n| n.len()),
                    cluster.describe()
                );
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One last create, convergence, the history check on every replica, no panics, clean
/// shutdown.
///
/// The last create gives every replica an entry to apply after any snapshot it
/// installed: a replica that installed a snapshot and applied nothing since reports a
/// stale applied index, which `wait_converged` would (rightly) reject. That defect has
/// its own test, `regression_a_follower_that_caught_up_from_a_snapshot_can_campaign`, so
/// that these tests check what their names say.
async fn finish(cluster: Arc<ProcessCluster>, recorder: &Recorder) -> anyhow::Result<()> {
    let next = recorder.history().ops.len();
    create(&cluster, recorder, next, 1, Vec::new(), 0xf1a1).await?;
    cluster.wait_converged(CATCH_UP_DEADLINE).await?;
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

/// The experiment names replica `i` holds in its own state.
async fn stale_names(cluster: &ProcessCluster, i: usize) -> anyhow::Result<Vec<String>> {
    let list = cluster
        .client(i)
        .experiments
        .list_experiments(ListExperimentsRequest { project: PROJECT.into(), read: Some(ReadOptions { stale: true }) })
        .await?
        .into_inner();
    Ok(list.experiments.into_iter().map(|e| e.name).collect())
}
