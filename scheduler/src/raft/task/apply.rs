//! Committed entries into the state machine: commands, membership changes, and
//! snapshots installed from the leader.

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, Entry, EntryType};

use super::RaftTask;
use crate::raft::counters::Counters;
use crate::raft::snapshot_policy::snapshot_due;
use crate::state::{self, Command, Outcome, State};

impl RaftTask {
    pub(super) fn apply_entries(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let entries_count = entries.len() as u64;
        let mut bytes = 0;
        let mut last = 0;
        let mut replies = Vec::new();
        {
            // A local Arc: the guard must not borrow `self`, which conf changes mutate.
            let shared = self.state.clone();
            let mut state = match shared.write() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            for entry in entries {
                last = entry.index;
                if entry.get_entry_type() == EntryType::EntryConfChange {
                    let outcome = self.apply_conf_change(&entry);
                    state.applied_index = entry.index;
                    if let Some(reply) = self.own_seq(&entry.context).and_then(|seq| self.proposals.remove(&seq)) {
                        replies.push((reply, entry.index, outcome));
                    }
                    continue;
                }
                if entry.get_entry_type() != EntryType::EntryNormal {
                    continue;
                }
                if entry.data.is_empty() {
                    state.applied_index = entry.index;
                    continue;
                }
                bytes += entry.data.len() as u64;
                let outcome = match serde_json::from_slice::<Command>(&entry.data) {
                    Ok(cmd) => state::apply(&mut state, entry.index, cmd),
                    Err(e) => {
                        // Written by a newer version we cannot read: every replica of
                        // this version rejects it the same way.
                        state.applied_index = entry.index;
                        Err(state::Rejected::Unsupported(e.to_string()))
                    }
                };
                if let Some(seq) = self.own_seq(&entry.context)
                    && let Some(reply) = self.proposals.remove(&seq)
                {
                    replies.push((reply, entry.index, outcome));
                }
            }
        }
        for (reply, index, outcome) in replies {
            let _ = reply.send(Ok((index, outcome)));
        }
        Counters::add(&self.counters.entries_applied, entries_count);
        self.log_bytes_since_snapshot += bytes;
        self.applied_target = self.applied_target.max(last);
        let _ = self.applied_tx.send(last);
        let entries_since = last.saturating_sub(self.last_snapshot_index);
        if !self.snapshot_running
            && (self.snapshot_wanted
                || snapshot_due(
                    self.cfg.snapshot_every,
                    entries_since,
                    self.log_bytes_since_snapshot,
                    self.last_snapshot_bytes,
                ))
        {
            self.start_snapshot(last);
        }
    }

    /// Applies a committed membership change (entries are raft-rs's v1 `ConfChange`).
    pub(super) fn apply_conf_change(&mut self, entry: &Entry) -> Outcome {
        let change = ConfChange::parse_from_bytes(&entry.data)
            .map_err(|e| state::Rejected::Unsupported(format!("conf change: {e}")))?;
        match self.raw.apply_conf_change(&change) {
            Ok(cs) => {
                let added =
                    matches!(change.get_change_type(), ConfChangeType::AddNode | ConfChangeType::AddLearnerNode);
                self.snapshot_wanted |= added;
                tracing::info!(index = entry.index, node = change.node_id, change = ?change.get_change_type(), voters = ?cs.voters, "membership changed");
                self.conf_state = cs;
                Ok(state::Applied::Done)
            }
            Err(e) => Err(state::Rejected::precondition(format!("conf change: {e}"))),
        }
    }

    pub(super) fn install_snapshot(&mut self, data: &[u8], index: u64) {
        match serde_json::from_slice::<State>(data) {
            Ok(mut restored) => {
                restored.applied_index = index;
                let mut state = match self.state.write() {
                    Ok(s) => s,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *state = restored;
                drop(state);
                self.last_snapshot_index = index;
                self.last_snapshot_bytes = data.len() as u64;
                self.log_bytes_since_snapshot = 0;
                self.applied_target = self.applied_target.max(index);
                let _ = self.applied_tx.send(index);
                tracing::info!(index, "installed snapshot from leader");
            }
            Err(e) => {
                // Applying anything on top of a state we could not restore would diverge.
                tracing::error!(error = %e, index, "cannot decode snapshot; exiting");
                std::process::exit(70);
            }
        }
    }
}
