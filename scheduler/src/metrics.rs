//! Prometheus text metrics for operators, served over plain HTTP on `metrics.listen`
//! (loopback by default: scrape it through the host's agent or a local Prometheus).

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::raft::{RaftHandle, Role};

/// Renders the current metrics in the Prometheus text exposition format.
pub async fn render(raft: &RaftHandle) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    if let Ok(s) = raft.status().await {
        gauge("gantry_raft_term", "Current Raft term.", &[(String::new(), s.term)]);
        gauge("gantry_raft_commit_index", "Highest committed log index.", &[(String::new(), s.commit_index)]);
        gauge("gantry_raft_applied_index", "Highest applied log index.", &[(String::new(), s.applied_index)]);
        gauge("gantry_raft_snapshot_index", "Index of the latest snapshot.", &[(String::new(), s.snapshot_index)]);
        gauge(
            "gantry_raft_is_leader",
            "1 if this replica leads.",
            &[(String::new(), u64::from(s.role == Role::Leader))],
        );
        gauge("gantry_raft_leader_id", "Replica id of the known leader (0: none).", &[(String::new(), s.leader_id)]);
    }
    let (trainings, nodes, pending) = {
        let state = raft.state();
        let mut trainings = std::collections::BTreeMap::<&str, u64>::new();
        for t in state.projects.values().flat_map(|p| p.trainings.values()) {
            *trainings.entry(t.status.as_str()).or_default() += 1;
        }
        let mut nodes = std::collections::BTreeMap::<&str, u64>::new();
        for n in state.nodes.values() {
            *nodes.entry(n.status.as_str()).or_default() += 1;
        }
        let pending = state.workloads.pending_count() as u64;
        let fmt = |m: std::collections::BTreeMap<&str, u64>, label: &str| {
            m.into_iter().map(|(k, v)| (format!("{{{label}=\"{k}\"}}"), v)).collect::<Vec<_>>()
        };
        (fmt(trainings, "status"), fmt(nodes, "status"), pending)
    };
    gauge("gantry_trainings", "Trainings by status (this replica's applied state).", &trainings);
    gauge("gantry_nodes", "Nodes by status.", &nodes);
    gauge("gantry_workloads_pending", "Workloads waiting for placement.", &[(String::new(), pending)]);
    for (name, help, value) in raft.counters().samples() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    out
}

pub async fn serve(addr: SocketAddr, raft: RaftHandle, cancel: CancellationToken) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let raft = raft.clone();
            async move { ([("content-type", "text/plain; version=0.0.4")], render(&raft).await) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics listening");
    axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await?;
    Ok(())
}
