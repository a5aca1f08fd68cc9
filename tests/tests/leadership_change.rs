//! A write waiting on a leader that stops answering gets a prompt, retryable error the
//! moment the cluster moves on to a new leader, instead of hanging until its timeout.
//!
//! Three real replicas. The leader is frozen (SIGSTOP: its sockets stay open, so the
//! follower's forwarded write is neither delivered nor refused), a write is sent to a
//! follower, and the survivors elect a new leader. Regression: the follower used to
//! notice the change only at its 5 s proposal timeout ("timed out waiting for the
//! cluster"); it must answer `Unavailable` saying leadership changed.

use std::time::{Duration, Instant};

use gantry_chaos::{ClusterOptions, ProcessCluster};
use gantry_proto::v1::CreateExperimentRequest;
use tonic::Code;

const ELECTION_DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_write_waiting_on_a_lost_leader_fails_promptly() -> anyhow::Result<()> {
    let cluster = ProcessCluster::start(ClusterOptions { replicas: 3, ..Default::default() }).await?;
    let leader = cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    let follower = (0..cluster.len()).find(|i| *i != leader).unwrap_or_default();
    let mut client = cluster.client(follower);

    cluster.pause(leader)?;
    let request = CreateExperimentRequest {
        project: "chaos".into(),
        name: "after-freeze".into(),
        request_id: "r-after-freeze".into(),
        ..Default::default()
    };
    let sent = Instant::now();
    let answer = client.experiments.create_experiment(request).await;
    let took = sent.elapsed();
    cluster.resume(leader)?;

    let status = match answer {
        Err(status) => status,
        // The follower may have forwarded before the freeze took hold: then it committed.
        Ok(_) => return cluster.shutdown().await,
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("leadership changed"),
        "the write must fail because leadership changed, not by timing out ({took:?}): {}",
        status.message()
    );
    // A new leader among the survivors accepts the retry (same request id: safe).
    cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    cluster.shutdown().await
}
