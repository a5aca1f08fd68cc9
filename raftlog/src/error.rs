//! Errors of the Raft log store.

use raft::StorageError;

/// What can go wrong reading or writing the Raft log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the database file could not be opened, read or written
    #[error("raft log storage failed: {0}")]
    Storage(#[from] fjall::Error),

    /// a value read from the database is not what this crate wrote (bad bytes, a hole in
    /// the log, a key that disagrees with its value); the store refuses to guess
    #[error("raft log is corrupt: {what}: {detail}")]
    Corrupt {
        /// which value, e.g. `entry 42` or `meta hard_state`
        what: String,
        /// why it was rejected
        detail: String,
    },

    /// an earlier write failed, so the file's state is unknown; reopen the store
    #[error("an earlier raft log write failed; the store must be reopened")]
    Failed,

    /// the disk fault hook failed this write on purpose (fault-injection tests)
    #[error("injected disk fault: {kind:?} write failed")]
    InjectedFault {
        /// which write
        kind: crate::fault::WriteKind,
    },

    /// a message could not be encoded for writing (rust-protobuf only fails this for
    /// proto2 messages missing required fields, which raft's proto3 messages cannot be)
    #[error("could not encode {what}: {detail}")]
    Encode {
        /// which value
        what: String,
        /// the encoder's complaint
        detail: String,
    },

    /// appended entries would leave a hole after the last index, or are not consecutive
    #[error("entry {index} does not follow index {after}")]
    Gap {
        /// index of the offending entry
        index: u64,
        /// index it should have followed
        after: u64,
    },

    /// a snapshot does not cover anything the log does not already have compacted
    #[error("snapshot at index {index} is older than the log's first index {first_index}")]
    SnapshotOutOfDate {
        /// index of the rejected snapshot
        index: u64,
        /// first index of the log at the time
        first_index: u64,
    },

    /// the index is past the end of the log
    #[error("index {index} is past the last index {last_index}")]
    Unavailable {
        /// requested index
        index: u64,
        /// last index of the log
        last_index: u64,
    },
}

impl Error {
    /// True when the store can no longer be trusted and the process should stop (and
    /// reopen the store from disk): a failed write or read, corrupt data, or a store
    /// already failed. False for a write rejected before anything was written (out of
    /// date, out of range, a gap), which leaves the store as it was.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Error::SnapshotOutOfDate { .. } | Error::Unavailable { .. } | Error::Gap { .. })
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl ToString) -> Self {
        Error::Corrupt { what: what.into(), detail: detail.to_string() }
    }
}

/// Raft reacts to a few storage errors by kind (`SnapshotOutOfDate`); everything else is
/// fatal to the node and travels as `StorageError::Other`.
impl From<Error> for raft::Error {
    fn from(err: Error) -> Self {
        let store = match err {
            Error::SnapshotOutOfDate { .. } => StorageError::SnapshotOutOfDate,
            Error::Unavailable { .. } => StorageError::Unavailable,
            other => StorageError::Other(Box::new(other)),
        };
        raft::Error::Store(store)
    }
}
