//! Failures of the log store and its readers.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong storing or reading a log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation on the log's directory failed.
    #[error("{op} {} failed: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The log is finished (its container ended): nothing more may be appended.
    #[error("log {} is finished", .0.display())]
    Finished(PathBuf),
    /// An earlier write failed part-way, so the active segment may end in a torn line;
    /// reopening the store recovers it.
    #[error("log {} is unusable after a failed write; reopen it", .0.display())]
    Poisoned(PathBuf),
}

impl LogError {
    /// For `map_err`: names the operation and the file it was done on.
    pub(super) fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogError {
        move |source| LogError::Io { op, path: path.to_path_buf(), source }
    }
}
