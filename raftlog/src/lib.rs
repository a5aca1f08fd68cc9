//! Crash-safe storage for one Raft node: its log, hard state, membership and latest
//! snapshot, in one [fjall] keyspace, behind `raft::Storage`.
//!
//! ```text
//!   ready loop ── persist(LogWrite) ─┐      stage(LogWrite)     save_snapshot(..)
//!                                    │            │              1. data ── own fjall batch, fsynced
//!                                    │            │                 (no lock the others take)
//!                                    ▼            ▼              2. metadata ─┐
//!              plan, checked against the mirror ◄─┴──────────────────────────┘
//!                    │                            │
//!                    │                   apply to the mirror now,
//!                    │                   queue the plan ── sync() (writer thread,
//!                    ▼                                      or save_snapshot itself) ─┐
//!              one fjall batch per call (queued plans first), fsynced  ◄─────────────┘
//!                    │
//!              persist: apply to the mirror after the fsync
//!
//!   RawNode ── raft::Storage (entries, term, first/last index, snapshot) ── reads mirror
//! ```
//!
//! Raft's hot path reads only memory. [`RaftLog::persist`] shows a write only once it is
//! durable; [`RaftLog::stage`] shows it at once and [`RaftLog::sync`] makes everything
//! staged durable with one fsync, which is how a ready loop pipelines and batches its
//! writes (see [`RaftLog`] for why raft needs that). [`RaftLog::save_snapshot`] writes
//! the (large) data on its own, then stages and syncs the rest, so the ready loop never
//! waits for a snapshot; it returns once all of it is durable.
//! [`LogWrite::merge`] combines the writes of consecutive `Ready`s into one.
//!
//! # Semantics
//!
//! - The log holds the entries after the latest snapshot: `first_index` is always the
//!   snapshot index + 1, so the term of the entry before the first one is the snapshot's.
//!   Compaction happens only through [`RaftLog::save_snapshot`], so a follower that needs a
//!   compacted entry can always be sent the latest snapshot.
//! - The application's applied index is not stored on its own: after a restart the
//!   application restores [`RaftLog::latest_snapshot`] and raft replays the committed
//!   entries after it (pass the snapshot index as `Config::applied`, or leave it 0).
//!
//! # Layout on disk
//!
//! | table      | key (type)            | value                                         |
//! |------------|-----------------------|-----------------------------------------------|
//! | `entries`  | index (`u64`)         | `eraftpb::Entry`, protobuf; only indexes after the snapshot |
//! | `meta`     | `"hard_state"`        | `eraftpb::HardState`, protobuf                |
//! | `meta`     | `"conf_state"`        | `eraftpb::ConfState`, protobuf, as of the snapshot; its presence marks an initialised store |
//! | `meta`     | `"snapshot_meta"`     | `eraftpb::SnapshotMetadata`, protobuf (absent: index 0) |
//! | `snapshot` | `"data-{index:020}"`   | a snapshot's application bytes, as given; only the latest's is kept (older stores: `"data"`) |
//!
//! Each `persist` and `sync` is one write transaction, so a crash leaves either all of it
//! or none. `save_snapshot` writes the data first, then the rest in one transaction; the
//! data of a snapshot whose metadata never made it is deleted on the next open.
//!
//! A [`DiskFaults`] hook, inert unless configured, can delay or fail every write+fsync
//! for fault-injection tests.
//! Values that do not decode are reported as [`Error::Corrupt`], never a panic.

mod error;
mod fault;
mod log;
mod mirror;
mod storage;
mod tables;
mod write;

pub use error::Error;
pub use fault::{DiskFaults, FailOn, Fault, WriteKind};
pub use log::RaftLog;
pub use write::LogWrite;
