//! `RaftLog`: the cloneable handle, its constructor and its writes.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use raft::eraftpb::{ConfState, HardState, Snapshot};
use tracing::debug;

use crate::error::Error;
use crate::fault::DiskFaults;
use crate::mirror::{Mirror, Plan};
use crate::tables;
use crate::write::LogWrite;

/// A Raft node's log, hard state, membership and latest snapshot, stored in one fjall
/// keyspace (a directory).
///
/// Cheap to clone; all clones share one store. Reads (the `raft::Storage` methods and the
/// accessors) are served from memory. There are two ways to write, to be used in the
/// matching form of the ready loop:
///
/// - [`RaftLog::persist`]: durable, then visible. For a loop that persists each `Ready`
///   before calling `advance_append_async` (or `advance_append`).
/// - [`RaftLog::stage`] then [`RaftLog::sync`]: visible at once, durable at the next sync.
///   For a loop that hands the fsync to another thread: raft requires a `Ready`'s entries
///   to be readable from storage as soon as `advance_append_async` is called (otherwise it
///   reuses their indexes for new proposals), but only reports them persisted, commits
///   them and acknowledges them once told so through `on_persist_ready`.
///
/// Writes reach the file in the order they were made, whichever method made them. After a
/// write fails ([`Error::is_fatal`]) the file's state is unknown: every later write
/// returns [`Error::Failed`]. Do not retry: after a failed fsync the kernel may have
/// dropped the dirty pages, so a later fsync can succeed over lost data. Stop the process
/// and [`RaftLog::open`] the file again (raft itself treats storage errors as fatal).
#[derive(Clone)]
pub struct RaftLog {
    inner: Arc<Inner>,
}

// Lock order: db, then staged, then mirror.
struct Inner {
    store: tables::Store,
    // Held across every commit, so plans reach the file in the order they were made.
    // Raft's reads never take it, so an fsync in progress does not block them. A
    // snapshot's data is written without it (see `save_snapshot`).
    db: Mutex<()>,
    // Plans already applied to the mirror but not yet committed, oldest first. Held from
    // planning to applying, so the queue's order is the mirror's order. std Mutex, like the
    // others: never held across an await.
    staged: Mutex<Vec<Plan>>,
    // std RwLock: held only to copy or splice in-memory data, never across I/O or an await.
    mirror: RwLock<Mirror>,
    // A commit failed: later plans build on the lost ones, so none may be committed.
    failed: AtomicBool,
    faults: DiskFaults,
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
        RaftLog::open_with_faults(path, initial_voters, DiskFaults::none())
    }

    /// [`RaftLog::open`] with a disk fault hook (for fault-injection tests; see
    /// [`DiskFaults`]): every write+fsync asks `faults` first.
    pub fn open_with_faults(
        path: impl AsRef<Path>,
        initial_voters: &[u64],
        faults: DiskFaults,
    ) -> Result<RaftLog, Error> {
        let path = path.as_ref();
        let db = tables::open(path)?;
        let mirror = match tables::load(&db)? {
            Some(mirror) => mirror,
            None => {
                let conf_state = ConfState { voters: initial_voters.to_vec(), ..ConfState::default() };
                tables::initialise(&db, &faults, &conf_state)?;
                Mirror { conf_state, ..Mirror::default() }
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
                store: db,
                db: Mutex::new(()),
                staged: Mutex::new(Vec::new()),
                mirror: RwLock::new(mirror),
                failed: AtomicBool::new(false),
                faults,
            }),
        })
    }

    /// Makes `write` durable in one transaction, then visible to raft; see [`LogWrite`] for
    /// what each part does.
    ///
    /// Call it before `RawNode::advance_append_async` (raft reads the entries back from
    /// storage from then on), then `on_persist_ready`. Any staged writes are committed
    /// first, in the same transaction. Rejects entries that leave a hole ([`Error::Gap`])
    /// and a snapshot older than the log's first index ([`Error::SnapshotOutOfDate`])
    /// without changing anything.
    pub fn persist(&self, write: &LogWrite) -> Result<(), Error> {
        if write.is_empty() {
            return Ok(());
        }
        self.commit(|mirror| mirror.plan_persist(write))
    }

    /// Makes `write` visible to raft now and queues it for the next [`RaftLog::sync`]; it is
    /// checked as [`RaftLog::persist`] checks it. Call it before
    /// `RawNode::advance_append_async`, and report the `Ready` persisted only after a
    /// `sync` that started after this call returned. A crash before that sync loses it.
    pub fn stage(&self, write: &LogWrite) -> Result<(), Error> {
        if write.is_empty() {
            return Ok(());
        }
        self.stage_plan(|mirror| mirror.plan_persist(write))
    }

    /// Plans against the mirror (staged writes included), applies the plan to it and
    /// queues it for the next sync; holds `staged` only for that, never across I/O.
    fn stage_plan(&self, plan: impl FnOnce(&Mirror) -> Result<Plan, Error>) -> Result<(), Error> {
        self.check_not_failed()?;
        let mut staged = self.lock_staged();
        let plan = plan(&self.read())?;
        staged.push(plan.without_written_data());
        self.write().apply(plan);
        Ok(())
    }

    /// Makes every staged write durable in one transaction (one fsync), oldest first.
    /// `stage` can go on while the fsync runs; what it stages waits for the next sync.
    pub fn sync(&self) -> Result<(), Error> {
        let _order = self.lock_db();
        self.check_not_failed()?;
        let plans = std::mem::take(&mut *self.lock_staged());
        if plans.is_empty() {
            return Ok(());
        }
        self.commit_plans(&plans)
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
    ///
    /// Two steps, so that the ready loop's writes never wait for the costly one:
    /// 1. the data, written and fsynced under a key of its own (`index`), holding no lock
    ///    that `stage` or `sync` take; nothing refers to it yet, so a crash here leaves
    ///    only an orphan that the next open deletes;
    /// 2. the metadata, the compaction and the raised commit index, planned against the
    ///    mirror *now* (so its hard state carries every term and vote staged meanwhile and
    ///    can never overwrite them with older ones), staged in order behind everything
    ///    staged before it, and synced like any staged write. Raft sees the new snapshot
    ///    from step 2 on; it is durable when this returns.
    pub fn save_snapshot(&self, index: u64, conf_state: ConfState, data: Vec<u8>) -> Result<(), Error> {
        self.check_not_failed()?;
        let snapshot_index = self.read().snapshot_index();
        if index < snapshot_index {
            return Err(Error::SnapshotOutOfDate { index, first_index: snapshot_index + 1 });
        }
        let written = tables::write_snapshot_data(&self.inner.store, &self.inner.faults, index, &data);
        self.fail_on_error(written)?;
        self.stage_plan(|mirror| mirror.plan_save_snapshot(index, conf_state, data))?;
        self.sync()?;
        debug!(index, "raft snapshot saved, log compacted");
        Ok(())
    }

    /// The hard state, staged writes included.
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

    /// Plans against the mirror, commits (after anything staged), then shows the result.
    fn commit(&self, plan: impl FnOnce(&Mirror) -> Result<Plan, Error>) -> Result<(), Error> {
        let _order = self.lock_db();
        self.check_not_failed()?;
        // Holding `staged` through the fsync stalls `stage`; acceptable for `persist`, whose
        // caller waits for the disk anyway (the ready loop stages instead).
        let mut staged = self.lock_staged();
        let plan = plan(&self.read())?;
        let mut plans = std::mem::take(&mut *staged);
        plans.push(plan);
        self.commit_plans(&plans)?;
        if let Some(plan) = plans.pop() {
            self.write().apply(plan);
        }
        Ok(())
    }

    fn commit_plans(&self, plans: &[Plan]) -> Result<(), Error> {
        self.fail_on_error(tables::commit(&self.inner.store, &self.inner.faults, plans))
    }

    /// A failed write poisons the store: see [`RaftLog`].
    fn fail_on_error<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if result.is_err() {
            self.inner.failed.store(true, Ordering::SeqCst);
        }
        result
    }

    fn check_not_failed(&self) -> Result<(), Error> {
        if self.inner.failed.load(Ordering::SeqCst) {
            return Err(Error::Failed);
        }
        Ok(())
    }

    // Poisoning is ignored on all locks: a panic elsewhere while holding them cannot leave
    // the mirror half-changed, because `Mirror::apply` only moves already-validated data.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Mirror> {
        self.inner.mirror.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Mirror> {
        self.inner.mirror.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_db(&self) -> MutexGuard<'_, ()> {
        self.inner.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_staged(&self) -> MutexGuard<'_, Vec<Plan>> {
        self.inner.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for RaftLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lock order: staged before mirror.
        let staged = self.lock_staged().len();
        let mirror = self.read();
        f.debug_struct("RaftLog")
            .field("snapshot_index", &mirror.snapshot_index())
            .field("last_index", &mirror.last_index())
            .field("hard_state", &mirror.hard_state)
            .field("staged", &staged)
            .finish_non_exhaustive()
    }
}
