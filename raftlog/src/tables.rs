//! The fjall partitions, and the only code that reads or writes them.
//!
//! Every value is a rust-protobuf 2 encoding of a raft message, except the snapshot data,
//! which is the application's bytes as given. Nothing read from disk is trusted: a value
//! that does not decode, or an entry whose index disagrees with its key, is
//! [`Error::Corrupt`].

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};
use protobuf::Message;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};

use crate::error::Error;
use crate::fault::{DiskFaults, WriteKind};
use crate::mirror::{Mirror, Plan};

/// Log entries by index (8-byte big-endian keys, so they sort by index).
pub const ENTRIES: &str = "entries";
/// Small state records, by the names below.
pub const META: &str = "meta";
/// Snapshot data, under [`data_key`] of the snapshot's index.
const SNAPSHOT: &str = "snapshot";

const HARD_STATE: &str = "hard_state";
/// Present once the store is initialised; its absence means a fresh store.
const CONF_STATE: &str = "conf_state";
const SNAPSHOT_META: &str = "snapshot_meta";
/// Where stores written before snapshot data had per-index keys keep it.
const LEGACY_SNAPSHOT_DATA: &str = "data";

/// The key of the data of the snapshot at `index`: zero-padded, so keys sort by index.
fn data_key(index: u64) -> String {
    format!("data-{index:020}")
}

fn data_key_index(key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key).ok()?.strip_prefix("data-")?.parse().ok()
}

/// The store: one fjall keyspace (a directory). Its journal is appended to and fdatasynced
/// once per commit, and a batch is atomic across partitions.
pub(crate) struct Store {
    keyspace: Keyspace,
    entries: PartitionHandle,
    meta: PartitionHandle,
    snapshot: PartitionHandle,
}

/// The key of the entry at `index`.
pub fn entry_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Opens the store directory, creating an empty store if there is none.
pub(crate) fn open(path: &Path) -> Result<Store, Error> {
    let keyspace = Config::new(path).open()?;
    let partition = |name| keyspace.open_partition(name, PartitionCreateOptions::default());
    Ok(Store { entries: partition(ENTRIES)?, meta: partition(META)?, snapshot: partition(SNAPSHOT)?, keyspace })
}

/// Reads the whole store into memory; `None` if it was never initialised.
pub(crate) fn load(store: &Store) -> Result<Option<Mirror>, Error> {
    let Some(conf_state) = get_decoded::<ConfState>(&store.meta, CONF_STATE)? else {
        return Ok(None);
    };
    let hard_state = get_decoded::<HardState>(&store.meta, HARD_STATE)?.unwrap_or_default();
    let snapshot_meta = get_decoded::<SnapshotMetadata>(&store.meta, SNAPSHOT_META)?;

    let index = snapshot_meta.as_ref().map_or(0, |m| m.index);
    let data = match store.snapshot.get(data_key(index))? {
        Some(value) => Some(value),
        None => store.snapshot.get(LEGACY_SNAPSHOT_DATA)?,
    };
    let data = data.map(|value| value.to_vec()).unwrap_or_default();
    remove_orphan_data(store, index)?;
    let mut snapshot = Snapshot::default();
    // Only when stored: a message field that is set, even to its default, compares unequal
    // to an unset one, and the state must read back exactly as it was written.
    if let Some(snapshot_meta) = snapshot_meta {
        snapshot.set_metadata(snapshot_meta);
    }
    snapshot.data = data.into();

    let mut entries = Vec::new();
    for row in store.entries.iter() {
        let (key, value) = row?;
        let index = <[u8; 8]>::try_from(&*key)
            .map(u64::from_be_bytes)
            .map_err(|_| Error::corrupt("entries", format!("key of {} bytes", key.len())))?;
        let entry: Entry = decode(|| format!("entry {index}"), &value)?;
        if entry.index != index {
            return Err(Error::corrupt(format!("entry {index}"), format!("holds index {}", entry.index)));
        }
        entries.push(entry);
    }

    let mirror = Mirror { hard_state, conf_state, snapshot, entries };
    mirror.check_loaded()?;
    Ok(Some(mirror))
}

/// Deletes the data of every snapshot but the one at `current`: left by a crash between
/// the two steps of `RaftLog::save_snapshot`. Only while nothing else writes (open).
fn remove_orphan_data(store: &Store, current: u64) -> Result<(), Error> {
    let mut orphans = Vec::new();
    for row in store.snapshot.iter() {
        let (key, _) = row?;
        if data_key_index(&key).is_some_and(|index| index != current) {
            orphans.push(key);
        }
    }
    if orphans.is_empty() {
        return Ok(());
    }
    let mut batch = store.keyspace.batch().durability(Some(PersistMode::SyncData));
    for key in orphans {
        batch.remove(&store.snapshot, key);
    }
    batch.commit()?;
    Ok(())
}

/// Makes a fresh store: records the initial membership.
pub(crate) fn initialise(store: &Store, faults: &DiskFaults, conf_state: &ConfState) -> Result<(), Error> {
    let plan = Plan { conf_state: Some(conf_state.clone()), ..Plan::default() };
    commit(store, faults, std::slice::from_ref(&plan))
}

/// Writes the data of the snapshot at `index`, fdatasynced, under its own key: nothing
/// refers to it until a plan with that snapshot's metadata is committed. Safe to call
/// while other writes commit.
pub(crate) fn write_snapshot_data(store: &Store, faults: &DiskFaults, index: u64, data: &[u8]) -> Result<(), Error> {
    let mut batch = store.keyspace.batch().durability(Some(PersistMode::SyncData));
    batch.insert(&store.snapshot, data_key(index), data);
    finish(batch, faults, WriteKind::Snapshot)
}

/// Asks the fault hook, then commits. An injected failure still hands the batch to the
/// journal without syncing it, as a real failed fsync leaves the write's fate unknown.
fn finish(mut batch: fjall::Batch, faults: &DiskFaults, kind: WriteKind) -> Result<(), Error> {
    if let Err(injected) = faults.before_write(kind) {
        batch = batch.durability(None);
        batch.commit()?;
        return Err(injected);
    }
    batch.commit()?;
    Ok(())
}

/// Writes `plans`, in order, in one atomic batch, fdatasynced before this returns.
///
/// The plans are folded into their net effect first: every key written once. A batch
/// gives all its writes one sequence number, so two writes of one key in it (an entry
/// appended by one plan and truncated by the next, as when a follower's unsynced entries
/// are replaced by a new leader's) would have no defined order.
pub(crate) fn commit(store: &Store, faults: &DiskFaults, plans: &[Plan]) -> Result<(), Error> {
    let mut entries: BTreeMap<u64, Option<&Entry>> = BTreeMap::new();
    let mut meta: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let mut snapshot_data = None;
    let mut snapshot_index = None;
    for plan in plans {
        if let Some(through) = plan.drop_through {
            remove_range(store, &mut entries, ..=through)?;
        }
        if let Some(from) = plan.truncate_from {
            remove_range(store, &mut entries, from..)?;
        }
        for entry in &plan.append {
            entries.insert(entry.index, Some(entry));
        }
        if let Some(hard_state) = &plan.hard_state {
            meta.insert(HARD_STATE, encode(HARD_STATE, hard_state)?);
        }
        if let Some(conf_state) = &plan.conf_state {
            meta.insert(CONF_STATE, encode(CONF_STATE, conf_state)?);
        }
        if let Some(snapshot) = &plan.snapshot {
            let index = snapshot.get_metadata().index;
            meta.insert(SNAPSHOT_META, encode(SNAPSHOT_META, snapshot.get_metadata())?);
            snapshot_index = Some(index);
            snapshot_data = (!plan.snapshot_data_written).then(|| (index, snapshot.get_data()));
        }
    }
    let mut batch = store.keyspace.batch().durability(Some(PersistMode::SyncData));
    for (index, entry) in entries {
        match entry {
            Some(entry) => batch.insert(&store.entries, entry_key(index), encode("entry", entry)?),
            None => batch.remove(&store.entries, entry_key(index)),
        }
    }
    for (key, value) in meta {
        batch.insert(&store.meta, key, value);
    }
    if let Some((index, data)) = snapshot_data {
        batch.insert(&store.snapshot, data_key(index), data);
    }
    if let Some(index) = snapshot_index {
        // Older snapshots' data only: a newer one may be being written by `save_snapshot`.
        batch.remove(&store.snapshot, LEGACY_SNAPSHOT_DATA);
        for row in store.snapshot.range(..data_key(index)) {
            let (key, _) = row?;
            if data_key_index(&key).is_some() {
                batch.remove(&store.snapshot, key);
            }
        }
    }
    finish(batch, faults, WriteKind::Log)
}

/// Marks for removal every entry in `range`: those stored, and those earlier plans of
/// this commit appended.
fn remove_range(
    store: &Store,
    entries: &mut BTreeMap<u64, Option<&Entry>>,
    range: impl std::ops::RangeBounds<u64> + Clone,
) -> Result<(), Error> {
    let keys = (map_bound(range.start_bound()), map_bound(range.end_bound()));
    for row in store.entries.range(keys) {
        let (key, _) = row?;
        if let Ok(bytes) = <[u8; 8]>::try_from(&*key) {
            entries.insert(u64::from_be_bytes(bytes), None);
        }
    }
    for (_, entry) in entries.range_mut(range) {
        *entry = None;
    }
    Ok(())
}

fn map_bound(bound: Bound<&u64>) -> Bound<[u8; 8]> {
    match bound {
        Bound::Included(i) => Bound::Included(entry_key(*i)),
        Bound::Excluded(i) => Bound::Excluded(entry_key(*i)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn get_decoded<M: Message>(partition: &PartitionHandle, key: &str) -> Result<Option<M>, Error> {
    match partition.get(key)? {
        Some(value) => decode(|| format!("meta {key}"), &value).map(Some),
        None => Ok(None),
    }
}

fn decode<M: Message>(what: impl FnOnce() -> String, bytes: &[u8]) -> Result<M, Error> {
    M::parse_from_bytes(bytes).map_err(|err| Error::corrupt(what(), err))
}

fn encode(what: &str, message: &impl Message) -> Result<Vec<u8>, Error> {
    message.write_to_bytes().map_err(|err| Error::Encode { what: what.to_owned(), detail: err.to_string() })
}
