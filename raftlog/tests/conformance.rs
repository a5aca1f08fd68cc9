//! One suite of `raft::Storage` assertions, run against raft's own `MemStorage` (the
//! reference) and against `RaftLog`. Behaviour where the two differ on purpose is tested
//! in `store_only`.

mod common;

use common::{TempLog, append, conf_state, entries, entry, hard_state, snapshot};
use gantry_raftlog::{LogWrite, RaftLog};
use raft::eraftpb::{Entry, HardState, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, Storage, StorageError};
use tempfile::TempDir;

/// What the suite needs beyond `raft::Storage`: the writes the ready loop performs.
trait Subject: Storage {
    fn append(&self, entries: Vec<Entry>);
    fn set_hard_state(&self, hard_state: HardState);
    fn apply_snapshot(&self, snapshot: Snapshot) -> raft::Result<()>;
    /// Discards entries so that `first_index` becomes `first_index`.
    fn compact_to(&self, first_index: u64);
}

impl Subject for MemStorage {
    fn append(&self, entries: Vec<Entry>) {
        self.wl().append(&entries).expect("append");
    }
    fn set_hard_state(&self, hard_state: HardState) {
        self.wl().set_hardstate(hard_state);
    }
    fn apply_snapshot(&self, snapshot: Snapshot) -> raft::Result<()> {
        self.wl().apply_snapshot(snapshot)
    }
    fn compact_to(&self, first_index: u64) {
        self.wl().compact(first_index).expect("compact");
    }
}

impl Subject for RaftLog {
    fn append(&self, entries: Vec<Entry>) {
        self.persist(&append(entries)).expect("persist entries");
    }
    fn set_hard_state(&self, hard_state: HardState) {
        let write = LogWrite { hard_state: Some(hard_state), ..LogWrite::default() };
        self.persist(&write).expect("persist hard state");
    }
    fn apply_snapshot(&self, snapshot: Snapshot) -> raft::Result<()> {
        let write = LogWrite { snapshot: Some(snapshot), ..LogWrite::default() };
        Ok(self.persist(&write)?)
    }
    fn compact_to(&self, first_index: u64) {
        self.save_snapshot(first_index - 1, self.conf_state(), b"state".to_vec()).expect("save snapshot");
    }
}

/// `RaftLog` written through `stage` and never synced: reads must not tell the difference.
struct Staged(RaftLog);

impl Storage for Staged {
    fn initial_state(&self) -> raft::Result<raft::RaftState> {
        self.0.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.0.entries(low, high, max_size, context)
    }
    fn term(&self, index: u64) -> raft::Result<u64> {
        self.0.term(index)
    }
    fn first_index(&self) -> raft::Result<u64> {
        Storage::first_index(&self.0)
    }
    fn last_index(&self) -> raft::Result<u64> {
        Storage::last_index(&self.0)
    }
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        self.0.snapshot(request_index, to)
    }
}

impl Subject for Staged {
    fn append(&self, entries: Vec<Entry>) {
        self.0.stage(&append(entries)).expect("stage entries");
    }
    fn set_hard_state(&self, hard_state: HardState) {
        let write = LogWrite { hard_state: Some(hard_state), ..LogWrite::default() };
        self.0.stage(&write).expect("stage hard state");
    }
    fn apply_snapshot(&self, snapshot: Snapshot) -> raft::Result<()> {
        let write = LogWrite { snapshot: Some(snapshot), ..LogWrite::default() };
        Ok(self.0.stage(&write)?)
    }
    fn compact_to(&self, first_index: u64) {
        self.0.compact_to(first_index);
    }
}

fn mem(voters: &[u64]) -> (MemStorage, Option<TempDir>) {
    (MemStorage::new_with_conf_state(conf_state(voters)), None)
}

fn fjall_store(voters: &[u64]) -> (RaftLog, Option<TempDir>) {
    let TempLog { log, dir } = TempLog::new(voters);
    (log, Some(dir))
}

fn staged(voters: &[u64]) -> (Staged, Option<TempDir>) {
    let (log, dir) = fjall_store(voters);
    (Staged(log), dir)
}

type New<S> = fn(&[u64]) -> (S, Option<TempDir>);

fn get<S: Storage>(store: &S, low: u64, high: u64, max_size: Option<u64>) -> raft::Result<Vec<Entry>> {
    store.entries(low, high, max_size, GetEntriesContext::empty(false))
}

fn compacted<T>() -> raft::Result<T> {
    Err(raft::Error::Store(StorageError::Compacted))
}

fn unavailable<T>() -> raft::Result<T> {
    Err(raft::Error::Store(StorageError::Unavailable))
}

fn starts_with_configured_voters<S: Subject>(new: New<S>) {
    let (store, _dir) = new(&[1, 2, 3]);
    let state = store.initial_state().expect("initial state");
    assert!(state.initialized());
    assert_eq!(state.conf_state, conf_state(&[1, 2, 3]));
    assert_eq!(state.hard_state, HardState::default());
    assert_eq!(store.first_index(), Ok(1));
    assert_eq!(store.last_index(), Ok(0));
    assert_eq!(store.term(0), Ok(0));
    assert_eq!(store.term(1), unavailable());
}

fn appended_entries_are_readable<S: Subject>(new: New<S>) {
    let (store, _dir) = new(&[1]);
    let log = [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2), entry(5, 3)];
    store.append(log[..3].to_vec());
    store.append(log[3..].to_vec());

    assert_eq!(store.first_index(), Ok(1));
    assert_eq!(store.last_index(), Ok(5));
    for e in &log {
        assert_eq!(store.term(e.index), Ok(e.term), "term of {}", e.index);
    }
    assert_eq!(store.term(6), unavailable());
    assert_eq!(get(&store, 2, 5, None), Ok(log[1..4].to_vec()));
    assert_eq!(get(&store, 1, 6, None), Ok(log.to_vec()));
}

fn max_size_limits_but_returns_at_least_one<S: Subject>(new: New<S>) {
    let (store, _dir) = new(&[1]);
    let log = entries(1, 4, 1);
    store.append(log.clone());
    let size = |e: &Entry| u64::from(protobuf::Message::compute_size(e));

    assert_eq!(get(&store, 1, 5, Some(0)), Ok(log[..1].to_vec()));
    let two = size(&log[0]) + size(&log[1]);
    assert_eq!(get(&store, 1, 5, Some(two)), Ok(log[..2].to_vec()));
    assert_eq!(get(&store, 1, 5, Some(two + size(&log[2]) - 1)), Ok(log[..2].to_vec()));
}

fn conflicting_suffix_is_replaced<S: Subject>(new: New<S>) {
    let (store, _dir) = new(&[1]);
    store.append(entries(1, 5, 1));
    store.append(vec![entry(3, 2), entry(4, 2)]);

    assert_eq!(store.last_index(), Ok(4));
    assert_eq!(store.term(2), Ok(1));
    assert_eq!(store.term(3), Ok(2));
    assert_eq!(store.term(5), unavailable());
    assert_eq!(get(&store, 1, 5, None), Ok(vec![entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]));

    // A replacement that starts right after the last entry is a plain append.
    store.append(vec![entry(5, 3)]);
    assert_eq!(store.last_index(), Ok(5));
    assert_eq!(store.term(5), Ok(3));
}

fn compaction_hides_old_entries<S: Subject>(new: New<S>) {
    let (store, _dir) = new(&[1]);
    let log = entries(1, 6, 1);
    store.append(log.clone());
    store.compact_to(4);

    assert_eq!(store.first_index(), Ok(4));
    assert_eq!(store.last_index(), Ok(6));
    assert_eq!(get(&store, 3, 7, None), compacted());
    assert_eq!(get(&store, 4, 7, None), Ok(log[3..].to_vec()));
    assert_eq!(store.term(2), compacted());
    assert_eq!(store.term(4), Ok(1));
    assert_eq!(store.term(7), unavailable());
}

fn snapshot_replaces_log_and_membership<S: Subject>(new: New<S>) {
    let (store, _dir) = new(&[1]);
    store.append(entries(1, 5, 1));
    store.set_hard_state(hard_state(1, 1, 3));
    store.apply_snapshot(snapshot(8, 2, &[1, 2, 3], b"")).expect("apply snapshot");

    assert_eq!(store.first_index(), Ok(9));
    assert_eq!(store.last_index(), Ok(8));
    assert_eq!(store.term(8), Ok(2));
    assert_eq!(store.term(5), compacted());
    let state = store.initial_state().expect("initial state");
    assert_eq!(state.conf_state, conf_state(&[1, 2, 3]));
    assert_eq!(state.hard_state, hard_state(2, 1, 8));

    store.append(vec![entry(9, 2), entry(10, 3)]);
    assert_eq!(store.last_index(), Ok(10));
    assert_eq!(get(&store, 9, 11, None), Ok(vec![entry(9, 2), entry(10, 3)]));
}

fn stale_snapshot_is_rejected<S: Subject>(new: New<S>) {
    let (store, _dir) = new(&[1]);
    store.apply_snapshot(snapshot(8, 2, &[1], b"")).expect("apply snapshot");
    assert_eq!(
        store.apply_snapshot(snapshot(5, 2, &[1], b"")),
        Err(raft::Error::Store(StorageError::SnapshotOutOfDate))
    );
    assert_eq!(store.first_index(), Ok(9));
}

fn hard_state_round_trips<S: Subject>(new: New<S>) {
    let (store, _dir) = new(&[1]);
    store.append(entries(1, 3, 2));
    store.set_hard_state(hard_state(2, 1, 2));
    let state = store.initial_state().expect("initial state");
    assert_eq!(state.hard_state, hard_state(2, 1, 2));
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod mem_storage {
            $(#[test] fn $case() { super::$case(super::mem) })*
        }
        mod raft_log {
            $(#[test] fn $case() { super::$case(super::fjall_store) })*
        }
        mod raft_log_staged {
            $(#[test] fn $case() { super::$case(super::staged) })*
        }
    };
}

conformance!(
    starts_with_configured_voters,
    appended_entries_are_readable,
    max_size_limits_but_returns_at_least_one,
    conflicting_suffix_is_replaced,
    compaction_hides_old_entries,
    snapshot_replaces_log_and_membership,
    stale_snapshot_is_rejected,
    hard_state_round_trips,
);

/// Where `RaftLog` deliberately differs from `MemStorage`.
mod store_only {
    use super::*;

    #[test]
    fn term_before_first_index_is_the_snapshot_term() {
        // MemStorage::compact forgets it; raft needs it to match a follower's log.
        let TempLog { log, dir: _dir } = TempLog::new(&[1]);
        log.persist(&append(vec![entry(1, 1), entry(2, 1), entry(3, 2)])).expect("persist");
        log.save_snapshot(2, conf_state(&[1]), b"s".to_vec()).expect("save snapshot");
        assert_eq!(Storage::first_index(&log), Ok(3));
        assert_eq!(log.term(2), Ok(1));
        assert_eq!(log.term(1), compacted());
    }

    #[test]
    fn empty_range_on_empty_log_is_empty() {
        // MemStorage indexes entries[0] here and panics.
        let TempLog { log, dir: _dir } = TempLog::new(&[1]);
        assert_eq!(get(&log, 1, 1, None), Ok(vec![]));
    }

    #[test]
    fn range_past_the_end_is_an_error_not_a_panic() {
        let TempLog { log, dir: _dir } = TempLog::new(&[1]);
        log.persist(&append(entries(1, 2, 1))).expect("persist");
        assert_eq!(get(&log, 1, 5, None), unavailable());
    }

    #[test]
    fn no_snapshot_yet_is_temporarily_unavailable() {
        // MemStorage makes one up from the commit index; raft aborts on an empty one.
        let TempLog { log, dir: _dir } = TempLog::new(&[1]);
        assert_eq!(log.snapshot(0, 2), Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable)));
    }

    #[test]
    fn snapshot_is_the_latest_saved_one_unless_older_than_requested() {
        let TempLog { log, dir: _dir } = TempLog::new(&[1, 2]);
        log.persist(&append(entries(1, 5, 1))).expect("persist");
        log.save_snapshot(4, conf_state(&[1, 2]), b"app@4".to_vec()).expect("save snapshot");

        let sent = log.snapshot(0, 2).expect("snapshot");
        assert_eq!(sent, snapshot(4, 1, &[1, 2], b"app@4"));
        assert_eq!(log.snapshot(4, 2), Ok(sent));
        assert_eq!(log.snapshot(5, 2), Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable)));
    }

    #[test]
    fn a_snapshot_taken_before_a_member_joined_is_not_sent_to_it() {
        // The member would ignore it ("not in the ConfState") and be sent it forever.
        let TempLog { log, dir: _dir } = TempLog::new(&[1, 2]);
        log.persist(&append(entries(1, 5, 1))).expect("persist");
        log.save_snapshot(4, conf_state(&[1, 2]), b"app@4".to_vec()).expect("save snapshot");
        assert_eq!(log.snapshot(0, 3), Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable)));
        log.save_snapshot(5, conf_state(&[1, 2, 3]), b"app@5".to_vec()).expect("save snapshot");
        assert_eq!(log.snapshot(0, 3), Ok(snapshot(5, 1, &[1, 2, 3], b"app@5")));
    }

    #[test]
    fn save_snapshot_keeps_later_entries_and_raises_commit() {
        let TempLog { log, dir: _dir } = TempLog::new(&[1]);
        log.persist(&LogWrite { entries: entries(1, 6, 1), hard_state: Some(hard_state(1, 1, 3)), snapshot: None })
            .expect("persist");
        log.save_snapshot(4, conf_state(&[1]), b"app@4".to_vec()).expect("save snapshot");

        assert_eq!(log.snapshot_index(), 4);
        assert_eq!(get(&log, 5, 7, None), Ok(entries(5, 6, 1)));
        assert_eq!(log.hard_state(), hard_state(1, 1, 4));
    }

    #[test]
    fn save_snapshot_past_the_log_or_before_the_last_one_is_rejected() {
        let TempLog { log, dir: _dir } = TempLog::new(&[1]);
        log.persist(&append(entries(1, 5, 1))).expect("persist");
        let err = log.save_snapshot(6, conf_state(&[1]), vec![]).expect_err("past the log");
        assert!(matches!(err, gantry_raftlog::Error::Unavailable { index: 6, last_index: 5 }));

        log.save_snapshot(3, conf_state(&[1]), vec![]).expect("save");
        let err = log.save_snapshot(2, conf_state(&[1]), vec![]).expect_err("older than the last");
        assert!(matches!(err, gantry_raftlog::Error::SnapshotOutOfDate { index: 2, .. }));
    }

    #[test]
    fn entries_leaving_a_hole_are_rejected_and_change_nothing() {
        let TempLog { log, dir: _dir } = TempLog::new(&[1]);
        log.persist(&append(entries(1, 3, 1))).expect("persist");
        let before = common::observe(&log);

        let gap = LogWrite { entries: vec![entry(5, 1)], hard_state: Some(hard_state(9, 9, 9)), snapshot: None };
        let err = log.persist(&gap).expect_err("hole after the log");
        assert!(matches!(err, gantry_raftlog::Error::Gap { index: 5, after: 3 }));

        let not_consecutive = append(vec![entry(4, 1), entry(6, 1)]);
        let err = log.persist(&not_consecutive).expect_err("hole inside the write");
        assert!(matches!(err, gantry_raftlog::Error::Gap { index: 6, after: 4 }));

        assert_eq!(common::observe(&log), before);
    }
}
