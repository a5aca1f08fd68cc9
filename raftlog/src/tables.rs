//! The redb tables, and the only code that reads or writes them.
//!
//! Every value is a rust-protobuf 2 encoding of a raft message, except the snapshot data,
//! which is the application's bytes as given. Nothing read from disk is trusted: a value
//! that does not decode, or an entry whose index disagrees with its key, is
//! [`Error::Corrupt`].

use std::path::Path;

use protobuf::Message;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError};

use crate::error::Error;
use crate::mirror::{Mirror, Plan};

/// Log entries by index.
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// Small state records, by the names below.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The latest snapshot's data, under [`SNAPSHOT_DATA`].
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

const HARD_STATE: &str = "hard_state";
/// Present once the store is initialised; its absence means a fresh file.
const CONF_STATE: &str = "conf_state";
const SNAPSHOT_META: &str = "snapshot_meta";
const SNAPSHOT_DATA: &str = "data";

/// Opens the database file, creating an empty one if there is none.
pub(crate) fn open(path: &Path) -> Result<Database, Error> {
    Ok(Database::create(path)?)
}

/// Reads the whole store into memory; `None` if it was never initialised.
pub(crate) fn load(db: &Database) -> Result<Option<Mirror>, Error> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let Some(conf_state) = get_decoded::<ConfState>(&meta, CONF_STATE)? else {
        return Ok(None);
    };
    let hard_state = get_decoded::<HardState>(&meta, HARD_STATE)?.unwrap_or_default();
    let snapshot_meta = get_decoded::<SnapshotMetadata>(&meta, SNAPSHOT_META)?;

    let data = txn.open_table(SNAPSHOT)?.get(SNAPSHOT_DATA)?.map(|value| value.value().to_vec()).unwrap_or_default();
    let mut snapshot = Snapshot::default();
    // Only when stored: a message field that is set, even to its default, compares unequal
    // to an unset one, and the state must read back exactly as it was written.
    if let Some(snapshot_meta) = snapshot_meta {
        snapshot.set_metadata(snapshot_meta);
    }
    snapshot.data = data.into();

    let mut entries = Vec::new();
    for row in txn.open_table(ENTRIES)?.range::<u64>(..)? {
        let (key, value) = row?;
        let index = key.value();
        let entry: Entry = decode(|| format!("entry {index}"), value.value())?;
        if entry.index != index {
            return Err(Error::corrupt(format!("entry {index}"), format!("holds index {}", entry.index)));
        }
        entries.push(entry);
    }

    let mirror = Mirror { hard_state, conf_state, snapshot, entries };
    mirror.check_loaded()?;
    Ok(Some(mirror))
}

/// Makes a fresh store: creates the tables and records the initial membership.
pub(crate) fn initialise(db: &Database, conf_state: &ConfState) -> Result<(), Error> {
    let plan = Plan { conf_state: Some(conf_state.clone()), ..Plan::default() };
    commit(db, std::slice::from_ref(&plan))
}

/// Writes `plans`, in order, in one write transaction, fsynced before this returns.
pub(crate) fn commit(db: &Database, plans: &[Plan]) -> Result<(), Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut entries = txn.open_table(ENTRIES)?;
        let mut meta = txn.open_table(META)?;
        let mut data = txn.open_table(SNAPSHOT)?;
        for plan in plans {
            if let Some(through) = plan.drop_through {
                entries.retain_in::<u64, _>(..=through, |_, _| false)?;
            }
            if let Some(from) = plan.truncate_from {
                entries.retain_in::<u64, _>(from.., |_, _| false)?;
            }
            for entry in &plan.append {
                entries.insert(entry.index, encode("entry", entry)?.as_slice())?;
            }
            if let Some(hard_state) = &plan.hard_state {
                meta.insert(HARD_STATE, encode(HARD_STATE, hard_state)?.as_slice())?;
            }
            if let Some(conf_state) = &plan.conf_state {
                meta.insert(CONF_STATE, encode(CONF_STATE, conf_state)?.as_slice())?;
            }
            if let Some(snapshot) = &plan.snapshot {
                let snapshot_meta = encode(SNAPSHOT_META, snapshot.get_metadata())?;
                meta.insert(SNAPSHOT_META, snapshot_meta.as_slice())?;
                data.insert(SNAPSHOT_DATA, snapshot.get_data())?;
            }
        }
    }
    txn.commit()?;
    Ok(())
}

fn get_decoded<M: Message>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<M>, Error> {
    match table.get(key)? {
        Some(value) => decode(|| format!("meta {key}"), value.value()).map(Some),
        None => Ok(None),
    }
}

fn decode<M: Message>(what: impl FnOnce() -> String, bytes: &[u8]) -> Result<M, Error> {
    M::parse_from_bytes(bytes).map_err(|err| Error::corrupt(what(), err))
}

fn encode(what: &str, message: &impl Message) -> Result<Vec<u8>, Error> {
    message.write_to_bytes().map_err(|err| Error::Encode { what: what.to_owned(), detail: err.to_string() })
}
