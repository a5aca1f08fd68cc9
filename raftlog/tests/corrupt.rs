//! Damage planted straight into the redb tables is reported as an error on open, never a
//! panic. The table definitions here restate the layout documented in the crate docs.

mod common;

use std::path::Path;

use common::{TempLog, entries, entry, hard_state};
use gantry_raftlog::{Error, LogWrite, RaftLog};
use protobuf::Message;
use redb::{Database, TableDefinition};

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

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
fn damage_and_reopen(
    store: TempLog,
    damage: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
) -> Result<RaftLog, Error> {
    let TempLog { log, dir } = store;
    drop(log);
    let path = dir.path().join("raft.redb");
    edit(&path, damage).expect("edit raw file");
    RaftLog::open(&path, &[1])
}

fn edit(
    path: &Path,
    damage: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
) -> Result<(), redb::Error> {
    let db = Database::open(path)?;
    let txn = db.begin_write()?;
    damage(&txn)?;
    txn.commit()?;
    Ok(())
}

fn assert_corrupt(result: Result<RaftLog, Error>, expected_what: &str) {
    match result {
        Err(Error::Corrupt { what, .. }) => assert_eq!(what, expected_what),
        other => panic!("expected corrupt {expected_what}, got {other:?}"),
    }
}

#[test]
fn undecodable_entry() {
    let reopened = damage_and_reopen(store_with_entries(), |txn| {
        txn.open_table(ENTRIES)?.insert(2, GARBAGE)?;
        Ok(())
    });
    assert_corrupt(reopened, "entry 2");
}

#[test]
fn entry_under_the_wrong_key() {
    let reopened = damage_and_reopen(store_with_entries(), |txn| {
        let bytes = entry(9, 1).write_to_bytes().expect("encode");
        txn.open_table(ENTRIES)?.insert(2, bytes.as_slice())?;
        Ok(())
    });
    assert_corrupt(reopened, "entry 2");
}

#[test]
fn hole_in_the_log() {
    let reopened = damage_and_reopen(store_with_entries(), |txn| {
        txn.open_table(ENTRIES)?.remove(2)?;
        Ok(())
    });
    assert_corrupt(reopened, "entry 3");
}

#[test]
fn undecodable_hard_state() {
    let reopened = damage_and_reopen(store_with_entries(), |txn| {
        txn.open_table(META)?.insert("hard_state", GARBAGE)?;
        Ok(())
    });
    assert_corrupt(reopened, "meta hard_state");
}

#[test]
fn undecodable_conf_state() {
    let reopened = damage_and_reopen(store_with_entries(), |txn| {
        txn.open_table(META)?.insert("conf_state", GARBAGE)?;
        Ok(())
    });
    assert_corrupt(reopened, "meta conf_state");
}

#[test]
fn not_a_redb_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("raft.redb");
    std::fs::write(&path, b"this is not a database").expect("write file");
    let result = RaftLog::open(&path, &[1]);
    assert!(matches!(result, Err(Error::Storage(_))), "got {result:?}");
}

#[test]
fn errors_reach_raft_as_storage_errors() {
    let err = raft::Error::from(Error::Corrupt { what: "entry 1".into(), detail: "bad".into() });
    assert!(matches!(err, raft::Error::Store(raft::StorageError::Other(_))));
}
