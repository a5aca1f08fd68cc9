//! What the task publishes: the replica view handles route by, and the status report.

use raft::{StateRole, Storage};

use super::RaftTask;
use crate::raft::{RaftStatus, ReplicaView, Role};

impl RaftTask {
    pub(super) fn publish_view(&mut self) {
        let view = ReplicaView {
            role: role_of(self.raw.raft.state),
            leader_id: self.raw.raft.leader_id,
            term: self.raw.raft.term,
        };
        self.view_tx.send_if_modified(|v| {
            if *v == view {
                false
            } else {
                *v = view;
                true
            }
        });
    }

    pub(super) fn status(&self) -> RaftStatus {
        let status = self.raw.status();
        let mut replicas = Vec::new();
        let progress = status.progress;
        let leader = self.raw.raft.leader_id;
        for (id, addr) in std::iter::once((self.cfg.id, String::new())).chain(self.cfg.peers.iter().cloned()) {
            let match_index = progress.and_then(|p| p.get(id)).map(|p| p.matched).unwrap_or(0);
            let reachable = id == self.cfg.id || !self.unreachable.contains_key(&id);
            let role = if id == self.cfg.id {
                role_of(self.raw.raft.state)
            } else if id == leader {
                Role::Leader
            } else if reachable {
                Role::Follower
            } else {
                Role::Unreachable
            };
            replicas.push((id, addr, role, match_index, reachable));
        }
        RaftStatus {
            id: self.cfg.id,
            leader_id: leader,
            term: status.hs.term,
            commit_index: status.hs.commit,
            applied_index: status.applied,
            role: role_of(self.raw.raft.state),
            snapshot_index: self.log.latest_snapshot().get_metadata().index,
            first_index: self.log.first_index().unwrap_or(0),
            last_index: self.log.last_index(),
            replicas,
        }
    }
}

fn role_of(role: StateRole) -> Role {
    match role {
        StateRole::Leader => Role::Leader,
        StateRole::Follower => Role::Follower,
        StateRole::Candidate => Role::Candidate,
        StateRole::PreCandidate => Role::PreCandidate,
    }
}
