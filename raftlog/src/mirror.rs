//! The in-memory copy of everything on disk, and the plans that change both.
//!
//! A write is first *planned* against the mirror (validated, nothing changed), then the plan
//! is committed to the store, then applied to the mirror. The mirror therefore never shows state
//! that is not durable, and a failed commit leaves it untouched.
//!
//! Invariant: `entries` holds consecutive indexes starting at `snapshot index + 1`. So the
//! term of the entry just before the first one is always known (the snapshot's term), and
//! compaction only ever happens together with a snapshot that covers what it drops.

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};

use crate::error::Error;
use crate::write::{LogWrite, apply_snapshot_to_hard_state};

/// Everything the store holds, as it is on disk.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Mirror {
    pub hard_state: HardState,
    /// Membership as of the latest snapshot (or the initial voters before any).
    pub conf_state: ConfState,
    /// The latest snapshot, metadata and data; index 0 means none yet.
    pub snapshot: Snapshot,
    /// Entries after the snapshot index, consecutive.
    pub entries: Vec<Entry>,
}

/// One atomic change, in the order it is applied: drop, truncate, append, then the
/// replaced values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// Drop every entry with index <= this (covered by `snapshot`).
    pub drop_through: Option<u64>,
    /// Drop every entry with index >= this (replaced by `append`, or wiped by a snapshot).
    pub truncate_from: Option<u64>,
    pub append: Vec<Entry>,
    pub hard_state: Option<HardState>,
    pub conf_state: Option<ConfState>,
    pub snapshot: Option<Snapshot>,
    /// The snapshot's data is already on disk (`RaftLog::save_snapshot` writes it first):
    /// commit writes only its metadata.
    pub snapshot_data_written: bool,
}

impl Plan {
    /// The plan as the commit needs it: without the snapshot's data when that is
    /// already on disk (it can be large; the mirror keeps the only in-memory copy).
    pub fn without_written_data(&self) -> Plan {
        let mut plan = self.clone_without_snapshot();
        plan.snapshot = self.snapshot.as_ref().map(|snapshot| {
            let mut copy = Snapshot::default();
            copy.set_metadata(snapshot.get_metadata().clone());
            if !self.snapshot_data_written {
                copy.data = snapshot.data.clone();
            }
            copy
        });
        plan
    }

    fn clone_without_snapshot(&self) -> Plan {
        Plan {
            drop_through: self.drop_through,
            truncate_from: self.truncate_from,
            append: self.append.clone(),
            hard_state: self.hard_state.clone(),
            conf_state: self.conf_state.clone(),
            snapshot: None,
            snapshot_data_written: self.snapshot_data_written,
        }
    }
}

impl Mirror {
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    pub fn first_index(&self) -> u64 {
        self.snapshot_index() + 1
    }

    pub fn last_index(&self) -> u64 {
        self.entries.last().map_or(self.snapshot_index(), |e| e.index)
    }

    /// The entry at `index`, if the log holds it.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Term of `index`, for `index` in `[snapshot index, last index]`.
    pub fn term(&self, index: u64) -> Option<u64> {
        let meta = self.snapshot.get_metadata();
        if index == meta.index {
            return Some(meta.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// Checks `write` against the log and returns the change it makes; see [`LogWrite`].
    pub fn plan_persist(&self, write: &LogWrite) -> Result<Plan, Error> {
        let mut plan = Plan::default();
        let mut hard_state = None;
        let (mut first_index, mut last_index) = (self.first_index(), self.last_index());

        if let Some(snapshot) = write.real_snapshot() {
            let meta = snapshot.get_metadata();
            if meta.index < first_index {
                return Err(Error::SnapshotOutOfDate { index: meta.index, first_index });
            }
            // As MemStorage::apply_snapshot: raft only hands over a snapshot whose last entry
            // the log does not match, so nothing in the log survives it.
            plan.drop_through = Some(meta.index);
            plan.truncate_from = Some(meta.index + 1);
            let mut adjusted = self.hard_state.clone();
            apply_snapshot_to_hard_state(&mut adjusted, meta);
            hard_state = Some(adjusted);
            plan.conf_state = Some(meta.get_conf_state().clone());
            plan.snapshot = Some(snapshot.clone());
            (first_index, last_index) = (meta.index + 1, meta.index);
        }

        check_consecutive(&write.entries)?;
        // Entries the snapshot already covers are committed and identical: skip them.
        let start = write.entries.partition_point(|e| e.index < first_index);
        let append = &write.entries[start..];
        if let Some(first) = append.first() {
            if first.index > last_index + 1 {
                return Err(Error::Gap { index: first.index, after: last_index });
            }
            plan.truncate_from = Some(plan.truncate_from.map_or(first.index, |from| from.min(first.index)));
            plan.append = append.to_vec();
        }

        if write.hard_state.is_some() {
            hard_state = write.hard_state.clone();
        }
        plan.hard_state = hard_state;
        Ok(plan)
    }

    /// Records a snapshot of the application at `index` and drops the entries it covers;
    /// its data must already be on disk (`tables::write_snapshot_data`).
    pub fn plan_save_snapshot(&self, index: u64, conf_state: ConfState, data: Vec<u8>) -> Result<Plan, Error> {
        if index < self.snapshot_index() {
            return Err(Error::SnapshotOutOfDate { index, first_index: self.first_index() });
        }
        let term = self.term(index).ok_or(Error::Unavailable { index, last_index: self.last_index() })?;
        let mut snapshot = Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(conf_state.clone());
        snapshot.data = data.into();

        // An applied entry is committed, but in the async-ready protocol the commit index
        // may not be persisted yet; raft refuses to start when commit < snapshot index.
        let hard_state = (self.hard_state.commit < index).then(|| {
            let mut hs = self.hard_state.clone();
            hs.commit = index;
            hs
        });
        Ok(Plan {
            drop_through: Some(index),
            hard_state,
            conf_state: Some(conf_state),
            snapshot: Some(snapshot),
            snapshot_data_written: true,
            ..Plan::default()
        })
    }

    /// Applies a plan that [`Mirror::plan_persist`] or [`Mirror::plan_save_snapshot`]
    /// produced from this same state. Never fails or panics: the plan was validated.
    pub fn apply(&mut self, plan: Plan) {
        if let Some(through) = plan.drop_through {
            let drop = self.entries.partition_point(|e| e.index <= through);
            self.entries.drain(..drop);
        }
        if let Some(from) = plan.truncate_from {
            let keep = self.entries.partition_point(|e| e.index < from);
            self.entries.truncate(keep);
        }
        self.entries.extend(plan.append);
        if let Some(hard_state) = plan.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(conf_state) = plan.conf_state {
            self.conf_state = conf_state;
        }
        if let Some(snapshot) = plan.snapshot {
            self.snapshot = snapshot;
        }
    }

    /// Checks the invariant on a mirror loaded from disk.
    pub fn check_loaded(&self) -> Result<(), Error> {
        for (expected, entry) in (self.first_index()..).zip(&self.entries) {
            if entry.index != expected {
                return Err(Error::corrupt(
                    format!("entry {}", entry.index),
                    format!("expected index {expected} after the snapshot and previous entries"),
                ));
            }
        }
        Ok(())
    }
}

fn check_consecutive(entries: &[Entry]) -> Result<(), Error> {
    for pair in entries.windows(2) {
        if pair[1].index != pair[0].index + 1 {
            return Err(Error::Gap { index: pair[1].index, after: pair[0].index });
        }
    }
    Ok(())
}
