//! `gantryctl cluster`: the Raft cluster as the answering replica sees it.

use clap::Subcommand;
use gantry_proto::v1::cluster_service_client::ClusterServiceClient;
use gantry_proto::v1::{ClusterStatus, GetClusterStatusRequest};

use super::Context;
use crate::output::emit;
use crate::output::format::yes_no;
use crate::output::table::{Table, fields};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Leader, term, log indexes and every replica's role and progress
    Status,
}

pub async fn run(ctx: &Context, cmd: ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Status => {
            let status = ctx
                .conn
                .call(|ch| async move { ClusterServiceClient::new(ch).get_status(GetClusterStatusRequest {}).await })
                .await?;
            emit(ctx.format, &status, status_view)
        }
    }
}

/// Summary lines, then the replicas; `*` marks the replica that answered.
fn status_view(s: &ClusterStatus) -> String {
    let leader = if s.leader_id == 0 { "none".to_string() } else { s.leader_id.to_string() };
    let mut out = fields(&[
        ("Replica", format!("{} ({})", s.replica_id, s.role)),
        ("Leader", leader),
        ("Term", s.term.to_string()),
        ("Commit index", s.commit_index.to_string()),
        ("Applied index", s.applied_index.to_string()),
        ("Log", format!("first {}, last {}, snapshot {}", s.first_log_index, s.last_log_index, s.snapshot_index)),
    ]);
    let mut replicas = Table::new(["ID", "ADDRESS", "ROLE", "MATCH INDEX", "REACHABLE"]);
    for r in &s.replicas {
        let id = if r.id == s.replica_id { format!("{}*", r.id) } else { r.id.to_string() };
        replicas.row([id, r.address.clone(), r.role.clone(), r.match_index.to_string(), yes_no(r.reachable)]);
    }
    out.push('\n');
    out.push_str(&replicas.render());
    out
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1::ReplicaStatus;

    use super::*;

    #[test]
    fn status_view_shows_summary_and_replicas() {
        let replica = |id, role: &str, match_index, reachable| ReplicaStatus {
            id,
            address: format!("10.0.0.{id}:7443"),
            role: role.into(),
            match_index,
            reachable,
        };
        let s = ClusterStatus {
            replica_id: 2,
            leader_id: 1,
            term: 5,
            commit_index: 120,
            applied_index: 119,
            role: "FOLLOWER".into(),
            replicas: vec![
                replica(1, "LEADER", 120, true),
                replica(2, "FOLLOWER", 120, true),
                replica(3, "UNREACHABLE", 0, false),
            ],
            snapshot_index: 100,
            first_log_index: 101,
            last_log_index: 120,
        };
        assert_eq!(
            status_view(&s),
            "\
Replica:        2 (FOLLOWER)
Leader:         1
Term:           5
Commit index:   120
Applied index:  119
Log:            first 101, last 120, snapshot 100

ID   ADDRESS         ROLE          MATCH INDEX   REACHABLE
1    10.0.0.1:7443   LEADER        120           yes
2*   10.0.0.2:7443   FOLLOWER      120           yes
3    10.0.0.3:7443   UNREACHABLE   0             no
"
        );
    }
}
