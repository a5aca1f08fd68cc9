//! Damage planted straight into the fjall partitions is reported as an error on open,
//! never a panic. The partition names and key format here restate the crate's layout.

mod common;

use std::path::Path;

use common::{TempLog, entries, entry, hard_state};
use gantry_raftlog::{Error, LogWrite, RaftLog};
use protobuf::Message;

const ENTRIES: &str = "entries";
const META: &str = "meta";

/// The store's partitions, opened directly: `(entries, meta)`.
struct Raw {
    entries: fjall::PartitionHandle,
    meta: fjall::PartitionHandle,
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Not a protobuf message: a field tag whose varint never ends.
const GARBAGE: &[u8] = &[0xff, 0xff, 0xff];

fn store_with_entries() -> TempLog {
    let store = TempLog::new(&[1]);
    store
        .log
        .persist(&LogWrite { entries: entries(1, 3, 1), hard_state: Some(hard_state(1, 1, 2)), snapshot: None })
        .expect("persist");
    store
}

/// Closes the store, lets `damage` edit the raw file, and reopens it.
fn damage_and_reopen(store: TempLog, damage: impl FnOnce(&Raw) -> fjall::Result<()>) -> Result<RaftLog, Error> {
    let TempLog { log, dir } = store;
    drop(log);
    let path = dir.path().join("raft-log");
    edit(&path, damage).expect("edit raw store");
    RaftLog::open(&path, &[1])
}

fn edit(path: &Path, damage: impl FnOnce(&Raw) -> fjall::Result<()>) -> fjall::Result<()> {
    let keyspace = fjall::Config::new(path).open()?;
    let partition = |name| keyspace.open_partition(name, fjall::PartitionCreateOptions::default());
    let raw = Raw { entries: partition(ENTRIES)?, meta: partition(META)? };
    damage(&raw)?;
    keyspace.persist(fjall::PersistMode::SyncAll)
}

fn assert_corrupt(result: Result<RaftLog, Error>, expected_what: &str) {
    match result {
        Err(Error::Corrupt { what, .. }) => assert_eq!(what, expected_what),
        other => panic!("expected corrupt {expected_what}, got {other:?}"),
    }
}

#[test]
fn undecodable_entry() {
    let reopened = damage_and_reopen(store_with_entries(), |raw| raw.entries.insert(key(2), GARBAGE));
    assert_corrupt(reopened, "entry 2");
}

#[test]
fn entry_under_the_wrong_key() {
    let reopened = damage_and_reopen(store_with_entries(), |raw| {
        let bytes = entry(9, 1).write_to_bytes().expect("encode");
        raw.entries.insert(key(2), bytes)
    });
    assert_corrupt(reopened, "entry 2");
}

#[test]
fn hole_in_the_log() {
    let reopened = damage_and_reopen(store_with_entries(), |raw| raw.entries.remove(key(2)));
    assert_corrupt(reopened, "entry 3");
}

#[test]
fn undecodable_hard_state() {
    let reopened = damage_and_reopen(store_with_entries(), |raw| raw.meta.insert("hard_state", GARBAGE));
    assert_corrupt(reopened, "meta hard_state");
}

#[test]
fn undecodable_conf_state() {
    let reopened = damage_and_reopen(store_with_entries(), |raw| raw.meta.insert("conf_state", GARBAGE));
    assert_corrupt(reopened, "meta conf_state");
}

#[test]
fn not_a_store_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("raft-log");
    std::fs::write(&path, b"this is not a database").expect("write file");
    let result = RaftLog::open(&path, &[1]);
    assert!(matches!(result, Err(Error::Storage(_))), "got {result:?}");
}

#[test]
fn errors_reach_raft_as_storage_errors() {
    let err = raft::Error::from(Error::Corrupt { what: "entry 1".into(), detail: "bad".into() });
    assert!(matches!(err, raft::Error::Store(raft::StorageError::Other(_))));
}
