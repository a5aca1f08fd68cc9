//! Invariant: a replica that lost its disk (restarted with an empty data dir, same id)
//! never helps elect a leader that lacks an acknowledged write.
//!
//! Three replicas L (leader), G and V. G is frozen, so a write is acknowledged by L and
//! V only. Then L crashes, V loses its disk, and G and V restart: G lacks the write, V
//! no longer has it. Before the fix V voted for G (its empty log made any candidate
//! look up to date), G led, and the write was gone for good once L came back and took
//! G's log. Now V withholds its vote until it holds a log, so G and V elect nobody;
//! when L returns it leads, and every replica ends with every acknowledged write.
//!
//! Needs the scheduler binary: `cargo build -p gantry-scheduler`.

mod replicated;

use std::sync::Arc;
use std::time::Duration;

use gantry_chaos::{ClusterOptions, ProcessCluster, Recorder};
use replicated::{CONVERGE_DEADLINE, ELECTION_DEADLINE, create, finish, stale_names};
use tokio::time::Instant;

/// Many election timeouts (0.5–1 s each with the default timing): before the fix G was
/// elected within the first one or two.
const LEADERLESS_FOR: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_wiped_replica_does_not_vote_for_a_candidate_missing_an_acknowledged_write() -> anyhow::Result<()>
{
    let seed = gantry_chaos::chaos_seed()?;
    let options = ClusterOptions { replicas: 3, seed: Some(seed), ..Default::default() };
    let cluster = Arc::new(ProcessCluster::start(options).await?);
    let recorder = Recorder::new();
    let leader = cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    // Every replica holds a log before the faults: G is behind, not empty.
    create(&cluster, &recorder, 0, 5, Vec::new(), seed).await?;
    cluster.wait_converged(CONVERGE_DEADLINE).await?;

    let (lagger, victim) = ((leader + 1) % 3, (leader + 2) % 3);
    cluster.pause(lagger)?;
    create(&cluster, &recorder, 5, 1, vec![leader], seed ^ 1).await?;
    let acked = recorder.history().ops.last().map(|op| op.key.clone()).unwrap_or_default();
    eprintln!("{}; {acked} acknowledged by replicas {leader} and {victim}, {lagger} frozen", cluster.describe());

    cluster.kill(leader).await?;
    cluster.kill(victim).await?;
    cluster.wipe(victim)?;
    cluster.kill(lagger).await?;
    cluster.restart(lagger).await?;
    cluster.restart(victim).await?;

    let deadline = Instant::now() + LEADERLESS_FOR;
    while Instant::now() < deadline {
        for i in [lagger, victim] {
            let status = cluster.status(i).await?;
            if status.role == "LEADER" {
                let names = stale_names(&cluster, i).await?;
                cluster.mark_failed();
                anyhow::bail!(
                    "replica {i} was elected with only the lagging replica {lagger} and the wiped replica {victim} \
                     running; the acknowledged {acked} is {} on it: the wiped replica voted as a full member\n{}",
                    if names.contains(&acked) { "present" } else { "MISSING" },
                    cluster.describe()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    cluster.restart(leader).await?;
    let new_leader = cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    eprintln!("replica {new_leader} leads once replica {leader} is back");
    finish(cluster, &recorder).await
}
