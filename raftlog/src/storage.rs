//! `raft::Storage` for `RaftLog`: answered from the in-memory mirror, never from disk.

use raft::eraftpb::{Entry, Snapshot};
use raft::util::limit_size;
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use tracing::debug;

use crate::log::RaftLog;

impl Storage for RaftLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let mirror = self.read();
        Ok(RaftState::new(mirror.hard_state.clone(), mirror.conf_state.clone()))
    }

    /// Entries in `[low, high)`, at least one if any, at most `max_size` bytes otherwise.
    /// `high` past the last index + 1 is a caller bug; it returns `Unavailable` rather
    /// than panicking as `MemStorage` does.
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let mirror = self.read();
        if low < mirror.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > mirror.last_index() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let start = (low - mirror.first_index()) as usize;
        let end = (high - mirror.first_index()) as usize;
        let mut entries = mirror.entries[start..end].to_vec();
        limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        let mirror = self.read();
        if let Some(term) = mirror.term(index) {
            return Ok(term);
        }
        let error = if index < mirror.snapshot_index() { StorageError::Compacted } else { StorageError::Unavailable };
        Err(raft::Error::Store(error))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.read().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.read().last_index())
    }

    /// The latest saved or received snapshot.
    ///
    /// Raft asks for one when a follower needs entries below the first index; the latest
    /// snapshot always covers those, because compaction only happens with a snapshot.
    /// When there is no snapshot yet, or a follower explicitly asked for one at least at
    /// `request_index` and ours is older, this returns `SnapshotTemporarilyUnavailable`:
    /// raft then skips this round and asks again later, after the application has saved a
    /// newer one with `RaftLog::save_snapshot` (raft would abort on an empty snapshot, and
    /// `MemStorage`'s trick of relabelling an old snapshot with a newer index would hand
    /// the follower state that does not match the index).
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let mirror = self.read();
        let index = mirror.snapshot_index();
        if index == 0 || index < request_index {
            debug!(to, request_index, snapshot_index = index, "no snapshot to send yet");
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        // A snapshot taken before `to` joined would be ignored by it ("not in the
        // ConfState") and sent again forever; wait for one that includes it.
        let cs = mirror.snapshot.get_metadata().get_conf_state();
        let members = [&cs.voters, &cs.learners, &cs.voters_outgoing, &cs.learners_next];
        if !members.iter().any(|ids| ids.contains(&to)) {
            debug!(to, snapshot_index = index, "latest snapshot predates this member");
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(mirror.snapshot.clone())
    }
}
