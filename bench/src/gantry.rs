//! The Gantry side of the replicated-write and failover benchmarks: a real cluster of
//! `gantry-scheduler` processes (TLS, fsync) started by the chaos harness, driven
//! through the public admin API exactly as `gantryctl` would.
//!
//! ```text
//!   client c ──own TLS connection──▶ replica c % n ──(follower: forward)──▶ leader
//! ```
//!
//! A "commit" is one `CreateExperiment`: acknowledged only after a majority has the
//! entry on disk and it is applied, the same guarantee an etcd put gives.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use gantry_chaos::{ADMIN_TOKEN, Authorization, Clients, ClusterOptions, ProcessCluster};
use gantry_proto::v1::CreateExperimentRequest;
use prost::Message as _;
use tonic::transport::{Channel, Endpoint};

use crate::failover::timing::RaftTiming;
use crate::load::{LoadReport, run_closed_loop};

/// Connect and per-request timeout of the benchmark writers' connections (as etcd's).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Description of every benchmark experiment: with the fixed-width name and request
/// id, every request has the same size ([`request_len`]).
const DESCRIPTION_BYTES: usize = 120;

/// Starts `replicas` scheduler processes with the default (production) timings.
pub async fn start(replicas: usize) -> anyhow::Result<ProcessCluster> {
    start_with(replicas, RaftTiming::gantry_default()).await
}

/// Starts `replicas` scheduler processes with `timing` as their `[raft]` settings.
pub async fn start_with(replicas: usize, timing: RaftTiming) -> anyhow::Result<ProcessCluster> {
    let cluster = ProcessCluster::start(ClusterOptions {
        replicas,
        tick: timing.tick,
        election_ticks: usize::try_from(timing.election_ticks)?,
        heartbeat_ticks: usize::try_from(timing.heartbeat_ticks)?,
        log_filter: "warn".into(),
        ..Default::default()
    })
    .await?;
    cluster.wait_for_leader(Duration::from_secs(30)).await?;
    Ok(cluster)
}

/// The benchmark's write for `seq` of run `run`; names are fixed-width so every request
/// of a run has the same size.
pub fn create(run: &str, seq: usize) -> CreateExperimentRequest {
    CreateExperimentRequest {
        project: "bench".into(),
        name: format!("e{run}-{seq:010}"),
        description: "x".repeat(DESCRIPTION_BYTES),
        tags: Vec::new(),
        request_id: format!("{run}-{seq:010}"),
    }
}

/// Bytes of every request of run `run` on the wire (protobuf, without gRPC framing
/// and the bearer token header).
pub fn request_len(run: &str) -> usize {
    create(run, 0).encoded_len()
}

/// A client of replica `i` on a connection of its own (not shared with any other
/// client, unlike [`ProcessCluster::client`]), with `timeout` on connecting and on
/// each request.
pub fn own_client(cluster: &ProcessCluster, i: usize, timeout: Duration) -> anyhow::Result<Clients> {
    let tls = gantry_pki::client_tls_ca_only(&cluster.tls_files().ca_cert, "localhost")?;
    let channel: Channel = Endpoint::from_shared(cluster.api_url(i))?
        .tls_config(tls)?
        .connect_timeout(timeout)
        .timeout(timeout)
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(Clients::new(channel, Authorization::bearer(ADMIN_TOKEN)?))
}

/// `clients` concurrent writers, client `c` on its own connection to replica
/// `c % replicas` (as the etcd side); followers forward to the leader. Each client
/// does one warm-up write first, so connection setup is not in the latencies.
pub async fn bench_writes(
    cluster: &ProcessCluster,
    run: &str,
    clients: usize,
    total_ops: usize,
    max_duration: Duration,
) -> anyhow::Result<LoadReport> {
    let mut conns = Vec::with_capacity(clients);
    for c in 0..clients {
        let mut conn = own_client(cluster, c % cluster.len(), WRITE_TIMEOUT)?;
        let warmup = create(&format!("{run}w"), c);
        conn.experiments.create_experiment(warmup).await.context("gantry warm-up write")?;
        conns.push(conn);
    }
    let conns = Arc::new(conns);
    let run = run.to_string();
    Ok(run_closed_loop(clients, total_ops, max_duration, move |client, seq| {
        let mut experiments = conns[client].experiments.clone();
        let request = create(&run, seq);
        async move {
            experiments.create_experiment(request).await?;
            Ok(())
        }
    })
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_of_a_run_have_one_size() {
        assert_eq!(create("c64", 0).encoded_len(), create("c64", 1_234_567).encoded_len());
        assert_eq!(request_len("c1"), create("c1", 99).encoded_len());
    }
}
