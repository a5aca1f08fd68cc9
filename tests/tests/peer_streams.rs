//! Peer streams live as long as the peers do. Regression: every replica's channel to its
//! peers had a 30 s request timeout, which also bounded the long-lived `StepStream`
//! (torn down and reopened every 30 s, dropping what was queued on it) and would cut off
//! any snapshot transfer longer than that.
//!
//! Three real replicas run for longer than that timeout with writes going on; no
//! replica's stream to a peer may fail meanwhile.

use std::time::{Duration, Instant};

use gantry_chaos::{ClusterOptions, ProcessCluster};
use gantry_proto::v1::CreateExperimentRequest;

const ELECTION_DEADLINE: Duration = Duration::from_secs(20);
/// Past the old 30 s timeout, with a margin for a loaded machine.
const HOLD: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_peer_streams_outlive_the_old_request_timeout() -> anyhow::Result<()> {
    let cluster = ProcessCluster::start(ClusterOptions { replicas: 3, ..Default::default() }).await?;
    let leader = cluster.wait_for_leader(ELECTION_DEADLINE).await?;
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < HOLD {
        let request = CreateExperimentRequest {
            project: "chaos".into(),
            name: format!("e{n}"),
            request_id: format!("r{n}"),
            ..Default::default()
        };
        // Writes keep the streams busy; an error here is not the subject of the test.
        let _ = cluster.client(leader).experiments.create_experiment(request).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for i in 0..cluster.len() {
        let log = std::fs::read_to_string(cluster.log_path(i))?;
        let failed: Vec<&str> = log.lines().filter(|l| l.contains("raft stream failed")).collect();
        assert!(failed.is_empty(), "replica {i}: a peer stream failed in a healthy cluster:\n{}", failed.join("\n"));
    }
    cluster.shutdown().await
}
