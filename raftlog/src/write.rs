//! `LogWrite`: what one `Ready` asks the store to persist, and how two of them combine.

use raft::Ready;
use raft::eraftpb::{Entry, HardState, Snapshot, SnapshotMetadata};

/// The durable part of one `raft::Ready`: its snapshot, entries and hard state.
///
/// Applied in that order, as raft documents for handling a `Ready`:
/// 1. `snapshot` replaces the whole log: every entry is dropped, the snapshot becomes the
///    latest one, the conf state becomes the snapshot's, and the hard state's commit is set to
///    the snapshot index (its term raised to the snapshot's term if lower);
/// 2. `entries` (consecutive indexes) are appended; an existing entry at or after the first
///    new index is replaced, as raft requires when a follower's log conflicts with the
///    leader's; entries at or below the snapshot index are skipped (they are committed, so
///    the snapshot already holds them);
/// 3. `hard_state`, when present, replaces the stored one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogWrite {
    /// Entries to append; consecutive indexes, the first at most the log's last index + 1.
    pub entries: Vec<Entry>,
    /// The new hard state, if it changed.
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader, if any. One with index 0 (raft's "no
    /// snapshot") counts as none.
    pub snapshot: Option<Snapshot>,
}

impl LogWrite {
    /// Takes the durable part out of `ready`: moves its entries, copies its hard state and
    /// its snapshot (the caller still needs the snapshot to restore the application).
    pub fn from_ready(ready: &mut Ready) -> LogWrite {
        let snapshot = ready.snapshot();
        LogWrite {
            snapshot: (!snapshot.is_empty()).then(|| snapshot.clone()),
            hard_state: ready.hs().cloned(),
            entries: ready.take_entries(),
        }
    }

    /// The snapshot, unless absent or empty.
    pub(crate) fn real_snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref().filter(|s| !s.is_empty())
    }

    /// True when persisting this write would change nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.hard_state.is_none() && self.real_snapshot().is_none()
    }

    /// Combines `later` (the write of the next `Ready`) into `self`, so that persisting the
    /// result equals persisting `self` and then `later`.
    ///
    /// Precondition: `later` was produced by raft after `self`, as consecutive `Ready`s are.
    /// In particular a later snapshot is newer than an earlier one; when it is not, the merged
    /// write may succeed where the two separate writes would have been rejected.
    pub fn merge(&mut self, later: LogWrite) {
        if let Some(snapshot) = later.snapshot.filter(|s| !s.is_empty()) {
            // The later snapshot wipes the log, including everything `self` appended.
            self.entries.clear();
            if let Some(hard_state) = &mut self.hard_state {
                apply_snapshot_to_hard_state(hard_state, snapshot.get_metadata());
            }
            self.snapshot = Some(snapshot);
        }
        splice(&mut self.entries, later.entries);
        if later.hard_state.is_some() {
            self.hard_state = later.hard_state;
        }
    }
}

/// Replaces the suffix of `log` from the first index of `new` on, then appends `new`.
/// `log` must hold consecutive indexes.
pub(crate) fn splice(log: &mut Vec<Entry>, new: Vec<Entry>) {
    let Some(first_new) = new.first().map(|e| e.index) else {
        return;
    };
    let keep = log.partition_point(|e| e.index < first_new);
    log.truncate(keep);
    log.extend(new);
}

/// What a snapshot does to the hard state: the snapshot's entries are committed, and the
/// term can never go back.
pub(crate) fn apply_snapshot_to_hard_state(hard_state: &mut HardState, meta: &SnapshotMetadata) {
    hard_state.commit = meta.index;
    hard_state.term = hard_state.term.max(meta.term);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index, term, ..Default::default() }
    }

    fn indexes_and_terms(entries: &[Entry]) -> Vec<(u64, u64)> {
        entries.iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn later_entries_replace_the_earlier_suffix() {
        let mut write = LogWrite { entries: vec![entry(5, 1), entry(6, 1), entry(7, 1)], ..Default::default() };
        write.merge(LogWrite { entries: vec![entry(6, 2)], ..Default::default() });
        assert_eq!(indexes_and_terms(&write.entries), [(5, 1), (6, 2)]);
    }

    #[test]
    fn later_entries_below_the_earlier_ones_replace_them_all() {
        let mut write = LogWrite { entries: vec![entry(5, 1), entry(6, 1)], ..Default::default() };
        write.merge(LogWrite { entries: vec![entry(3, 2)], ..Default::default() });
        assert_eq!(indexes_and_terms(&write.entries), [(3, 2)]);
    }

    #[test]
    fn later_hard_state_wins_and_missing_one_keeps_earlier() {
        let hs = |term| HardState { term, ..Default::default() };
        let mut write = LogWrite { hard_state: Some(hs(1)), ..Default::default() };
        write.merge(LogWrite::default());
        assert_eq!(write.hard_state, Some(hs(1)));
        write.merge(LogWrite { hard_state: Some(hs(2)), ..Default::default() });
        assert_eq!(write.hard_state, Some(hs(2)));
    }

    #[test]
    fn later_snapshot_drops_earlier_entries_and_adjusts_earlier_hard_state() {
        let mut snapshot = Snapshot::default();
        snapshot.mut_metadata().index = 10;
        snapshot.mut_metadata().term = 3;
        let mut write = LogWrite {
            entries: vec![entry(5, 1), entry(6, 1)],
            hard_state: Some(HardState { term: 2, vote: 1, commit: 5, ..Default::default() }),
            snapshot: None,
        };
        write.merge(LogWrite { entries: vec![entry(11, 3)], hard_state: None, snapshot: Some(snapshot.clone()) });
        assert_eq!(indexes_and_terms(&write.entries), [(11, 3)]);
        assert_eq!(write.snapshot, Some(snapshot));
        let hs = write.hard_state.unwrap_or_default();
        assert_eq!((hs.term, hs.vote, hs.commit), (3, 1, 10));
    }
}
