//! The agent's durable store of one container's output, and the reader that serves it
//! (history and live follow) to the scheduler.
//!
//! One log is one directory: segment files named by the number of their first line, and a
//! `finished` marker once the container has ended.
//!
//! ```text
//!   docker logs ──► LogStore::append ──► BufWriter ──flush──► 00000000000000000000.log
//!                        │  rotates before max_file_bytes,   00000000000000052113.log
//!                        │  keeps max_files segments          00000000000000104226.log (active)
//!                        │                                    finished                 (marker)
//!                        └─ watch: published end ──┐                │ read(2)
//!                                                  ▼                ▼
//!                      LogReader::cursor ──► LogCursor::next_chunk / wait_for_more ──► scheduler
//! ```
//!
//! Line numbers are the log's identity. Because a segment's name is the number of its first
//! line, the count of lines ever appended ([`LogStore::total_lines`]) survives rotation and
//! restarts; after a restart the agent uses it to skip the part of `docker logs` it already has.
//!
//! Readers read the files themselves. The writer shares only its published end (active segment,
//! bytes flushed, finished) through a `tokio::sync::watch`, so a slow follower never holds up
//! the writer, and a follower in the writer's process wakes on a flush without polling. A
//! reader opened from the directory alone ([`LogReader::open`]) polls the directory instead.
//!
//! All file operations block. Appends and chunk reads touch only the page cache (the writer
//! fsyncs on [`LogStore::finish`] only), so they are cheap enough for async callers that do
//! them in bounded batches.

mod cursor;
mod error;
mod layout;
mod reader;
mod store;
mod tail;

#[cfg(test)]
mod tests;

pub use cursor::LogCursor;
pub use error::LogError;
pub use reader::LogReader;
pub use store::LogStore;

/// How much of a log is kept on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// A segment is closed before a line would take it past this size; a single line longer
    /// than this gets a segment of its own.
    pub max_file_bytes: u64,
    /// Segments kept, the active one included; older ones are deleted. `0` counts as `1`.
    pub max_files: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits { max_file_bytes: 16 * 1024 * 1024, max_files: 4 }
    }
}
