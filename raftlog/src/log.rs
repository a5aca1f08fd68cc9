//! `RaftLog`: the cloneable handle, its constructor and its durable writes.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use raft::eraftpb::{ConfState, HardState, Snapshot};
use redb::Database;
use tracing::debug;

use crate::error::Error;
use crate::mirror::{Mirror, Plan};
use crate::tables;
use crate::write::LogWrite;

/// A Raft node's log, hard state, membership and latest snapshot, stored in one redb file.
///
/// Cheap to clone; all clones share one store. Reads (the `raft::Storage` methods and the
/// accessors) are served from memory. Writes return only once they are fsynced, and only
/// then become visible to reads.
///
/// After a write fails with [`Error::Storage`] the on-disk state is unknown: drop every
/// clone and [`RaftLog::open`] the file again (raft itself treats storage errors as fatal).
#[derive(Clone)]
pub struct RaftLog {
    inner: Arc<Inner>,
}

struct Inner {
    // Writers hold this lock from planning through commit to updating the mirror, so the
    // mirror cannot change between a plan being checked and being applied. Raft's reads
    // never take it, so an fsync in progress does not block them.
    db: Mutex<Database>,
    // std RwLock: held only to copy or splice in-memory data, never across I/O or an await.
    mirror: RwLock<Mirror>,
}

impl RaftLog {
    /// Opens the store at `path`, creating it if the file does not exist or was never
    /// initialised.
    ///
    /// A new store starts with `initial_voters` as its membership, an empty log and no
    /// snapshot (index 0, term 0), as `MemStorage::new_with_conf_state`. Every node of a new
    /// cluster must be given the same voters; a node joining an existing cluster passes
    /// `&[]` and waits for a snapshot. On reopen `initial_voters` is ignored and everything
    /// persisted is loaded back.
    pub fn open(path: impl AsRef<Path>, initial_voters: &[u64]) -> Result<RaftLog, Error> {
        let path = path.as_ref();
        let db = tables::open(path)?;
        let mirror = match tables::load(&db)? {
            Some(mirror) => mirror,
            None => {
                let conf_state = ConfState {
                    voters: initial_voters.to_vec(),
                    ..ConfState::default()
                };
                tables::initialise(&db, &conf_state)?;
                Mirror {
                    conf_state,
                    ..Mirror::default()
                }
            }
        };
        debug!(
            path = %path.display(),
            snapshot_index = mirror.snapshot_index(),
            last_index = mirror.last_index(),
            commit = mirror.hard_state.commit,
            "raft log opened"
        );
        Ok(RaftLog {
            inner: Arc::new(Inner {
                db: Mutex::new(db),
                mirror: RwLock::new(mirror),
            }),
        })
    }

    /// Makes `write` durable in one transaction, then visible to raft; see [`LogWrite`] for
    /// what each part does.
    ///
    /// In the async-ready protocol call this before `RawNode::advance_append_async` (raft
    /// reads the entries back from storage from then on) and then `on_persist_ready`.
    /// Rejects entries that leave a hole ([`Error::Gap`]) and a snapshot older than the
    /// log's first index ([`Error::SnapshotOutOfDate`]) without changing anything.
    pub fn persist(&self, write: &LogWrite) -> Result<(), Error> {
        if write.is_empty() {
            return Ok(());
        }
        self.commit(|mirror| mirror.plan_persist(write))
    }

    /// Records `data`, the application's state with every entry up to `index` applied, as
    /// the latest snapshot, and drops the entries it covers, in one transaction.
    ///
    /// `conf_state` is the membership as of `index` (what the last applied conf change
    /// returned). The snapshot's term is looked up in the log: `index` must lie between
    /// the current snapshot index and the last index ([`Error::SnapshotOutOfDate`],
    /// [`Error::Unavailable`]). The stored commit index is raised to `index` if lower:
    /// raft may hand out committed entries before their commit index is persisted, and it
    /// refuses to start from a snapshot beyond the commit index.
    ///
    /// On restart the application restores this snapshot and raft replays the committed
    /// entries after it; membership changes after `index` are replayed the same way, which
    /// is why the store's conf state only ever changes with a snapshot.
    pub fn save_snapshot(&self, index: u64, conf_state: ConfState, data: Vec<u8>) -> Result<(), Error> {
        self.commit(|mirror| mirror.plan_save_snapshot(index, conf_state, data))?;
        debug!(index, "raft snapshot saved, log compacted");
        Ok(())
    }

    /// The hard state as persisted.
    pub fn hard_state(&self) -> HardState {
        self.read().hard_state.clone()
    }

    /// The membership as of the latest snapshot (the initial voters before any).
    pub fn conf_state(&self) -> ConfState {
        self.read().conf_state.clone()
    }

    /// The latest snapshot, with its data; index 0 and no data if none was saved or received.
    pub fn latest_snapshot(&self) -> Snapshot {
        self.read().snapshot.clone()
    }

    /// The index of the latest snapshot; entries up to it are compacted away.
    pub fn snapshot_index(&self) -> u64 {
        self.read().snapshot_index()
    }

    /// The index of the last entry, or the snapshot index if the log is empty.
    pub fn last_index(&self) -> u64 {
        self.read().last_index()
    }

    fn commit(&self, plan: impl FnOnce(&Mirror) -> Result<Plan, Error>) -> Result<(), Error> {
        let db = self.lock_db();
        let plan = plan(&self.read())?;
        tables::commit(&db, &plan)?;
        self.write().apply(plan);
        Ok(())
    }

    // Poisoning is ignored on both locks: a panic elsewhere while holding them cannot leave
    // the mirror half-changed, because `Mirror::apply` only moves already-validated data.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Mirror> {
        self.inner.mirror.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Mirror> {
        self.inner
            .mirror
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_db(&self) -> MutexGuard<'_, Database> {
        self.inner.db.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for RaftLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mirror = self.read();
        f.debug_struct("RaftLog")
            .field("snapshot_index", &mirror.snapshot_index())
            .field("last_index", &mirror.last_index())
            .field("hard_state", &mirror.hard_state)
            .finish_non_exhaustive()
    }
}
