//! Builders and fixtures shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use gantry_raftlog::{LogWrite, RaftLog};
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, Storage};
use tempfile::TempDir;

pub fn entry(index: u64, term: u64) -> Entry {
    Entry { index, term, data: format!("{index}@{term}").into_bytes().into(), ..Entry::default() }
}

/// Entries `from..=to`, all of `term`.
pub fn entries(from: u64, to: u64, term: u64) -> Vec<Entry> {
    (from..=to).map(|index| entry(index, term)).collect()
}

pub fn conf_state(voters: &[u64]) -> ConfState {
    ConfState { voters: voters.to_vec(), ..ConfState::default() }
}

pub fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit, ..HardState::default() }
}

pub fn snapshot(index: u64, term: u64, voters: &[u64], data: &[u8]) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let meta = snapshot.mut_metadata();
    meta.index = index;
    meta.term = term;
    meta.set_conf_state(conf_state(voters));
    snapshot.data = data.to_vec().into();
    snapshot
}

pub fn append(entries: Vec<Entry>) -> LogWrite {
    LogWrite { entries, ..LogWrite::default() }
}

/// A store in a temporary directory that lives as long as the value.
pub struct TempLog {
    pub log: RaftLog,
    pub dir: TempDir,
}

impl TempLog {
    pub fn new(voters: &[u64]) -> TempLog {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = RaftLog::open(dir.path().join("raft-log"), voters).expect("open new store");
        TempLog { log, dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("raft-log")
    }

    /// Drops the handle and opens the file again, as after a restart.
    pub fn reopen(self) -> TempLog {
        let TempLog { log, dir } = self;
        drop(log);
        let log = RaftLog::open(dir.path().join("raft-log"), &[]).expect("reopen store");
        TempLog { log, dir }
    }
}

/// Everything a store exposes, for comparing two stores or a store before and after reopen.
#[derive(Debug, PartialEq)]
pub struct Observed {
    pub hard_state: HardState,
    pub conf_state: ConfState,
    pub snapshot: Snapshot,
    pub first_index: u64,
    pub last_index: u64,
    pub entries: Vec<Entry>,
}

pub fn observe(log: &RaftLog) -> Observed {
    let state = log.initial_state().expect("initial state");
    let first_index = log.first_index().expect("first index");
    let last_index = log.last_index();
    let entries = log.entries(first_index, last_index + 1, None, GetEntriesContext::empty(false)).expect("all entries");
    assert_eq!(state.hard_state, log.hard_state());
    assert_eq!(state.conf_state, log.conf_state());
    Observed {
        hard_state: state.hard_state,
        conf_state: state.conf_state,
        snapshot: log.latest_snapshot(),
        first_index,
        last_index,
        entries,
    }
}
