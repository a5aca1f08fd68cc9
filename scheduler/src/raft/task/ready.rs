//! One `Ready`: messages out, snapshot and committed entries applied, the log write
//! staged and handed to the writer thread, and waiting proposals failed the moment the
//! leadership they were made under is gone.

use gantry_raftlog::LogWrite;

use super::{RaftTask, exit_on_storage_failure};
use crate::raft::ProposeError;
use crate::raft::counters::Counters;
use crate::raft::persist::PersistJob;

impl RaftTask {
    /// Fails every waiting proposal the moment the term or the leader changes. The change
    /// happens inside `step` or `tick`, before the Ready that reports it, so it is
    /// compared with the regime last seen here, not with one taken at the Ready.
    pub(super) fn on_regime_change(&mut self) {
        let now = (self.raw.raft.term, self.raw.raft.leader_id);
        if now == self.regime {
            return;
        }
        self.regime = now;
        // Proposals made under the old leader (here or forwarded to it) may still commit
        // under the new one, or may be overwritten or lost on the way: their outcome is
        // unknown to us. Clients retry with the same request id, which makes the retry
        // safe.
        for (_, reply) in self.proposals.drain() {
            let _ = reply.send(Err(ProposeError::LeadershipLost));
        }
    }

    pub(super) fn handle_ready(&mut self) {
        self.on_regime_change();
        if !self.raw.has_ready() {
            return;
        }
        let mut rd = self.raw.ready();
        Counters::add(&self.counters.readies, 1);
        self.transport.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            let meta = rd.snapshot().get_metadata();
            self.conf_state = meta.get_conf_state().clone();
            self.install_snapshot(rd.snapshot().get_data(), meta.index);
        }
        let committed = rd.take_committed_entries();
        self.apply_entries(committed);
        for rs in rd.take_read_states() {
            if let Some(seq) = self.own_seq(&rs.request_ctx)
                && let Some(read) = self.reads.remove(&seq)
            {
                let _ = read.reply.send(Ok(rs.index));
            }
        }
        let after = rd.take_persisted_messages();
        let write = LogWrite::from_ready(&mut rd);
        let sync = must_sync(&self.log.hard_state(), &write);
        Counters::add(&self.counters.entries_staged, write.entries.len() as u64);
        // raft-rs reads this Ready's entries back from storage as soon as
        // `advance_append_async` returns, so they must be visible now; the writer
        // thread makes them durable (batched) and only then reports them persisted.
        if let Err(e) = self.log.stage(&write) {
            exit_on_storage_failure("staging a Ready", &e);
        }
        let number = rd.number();
        if self.persist_tx.send(PersistJob { number, after, sync }).is_err() {
            tracing::error!("raft log writer is gone");
        }
        self.raw.advance_append_async(rd);
        self.sync_applied();
        self.publish_view();
        self.on_regime_change();
    }

    /// Tells raft-rs what the state machine has applied. raft-rs accepts only indexes it
    /// has itself persisted, so an installed snapshot counts once its Ready is on disk.
    pub(super) fn sync_applied(&mut self) {
        let log = &self.raw.raft.raft_log;
        let target = self.applied_target.min(log.committed).min(log.persisted);
        if target > log.applied {
            self.raw.advance_apply_to(target);
        }
    }
}

/// Whether a write must be on disk before raft may count it persisted: new entries, a
/// snapshot, or a new term or vote (what a replica promised). A hard state that only
/// moves the commit index need not be: a commit index lost in a crash is learned again
/// from the leader (etcd skips the same fsync). It is still written, with the next sync.
fn must_sync(stored: &raft::eraftpb::HardState, write: &LogWrite) -> bool {
    !write.entries.is_empty()
        || write.snapshot.as_ref().is_some_and(|s| !s.is_empty())
        || write.hard_state.as_ref().is_some_and(|hs| hs.term != stored.term || hs.vote != stored.vote)
}

#[cfg(test)]
mod tests {
    use raft::eraftpb::{Entry, HardState};

    use super::*;

    fn hs(term: u64, vote: u64, commit: u64) -> HardState {
        HardState { term, vote, commit, ..Default::default() }
    }

    #[test]
    fn only_a_moved_commit_index_skips_the_fsync() {
        let stored = hs(3, 1, 10);
        let commit_only = LogWrite { hard_state: Some(hs(3, 1, 12)), ..Default::default() };
        assert!(!must_sync(&stored, &commit_only));
        assert!(!must_sync(&stored, &LogWrite::default()));
        let entries = LogWrite { entries: vec![Entry::default()], ..commit_only.clone() };
        assert!(must_sync(&stored, &entries));
        assert!(must_sync(&stored, &LogWrite { hard_state: Some(hs(4, 0, 10)), ..Default::default() }));
        assert!(must_sync(&stored, &LogWrite { hard_state: Some(hs(3, 2, 10)), ..Default::default() }));
    }
}
