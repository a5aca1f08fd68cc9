//! The read side's handle: where cursors come from.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use super::store::Published;
use super::tail;
use super::{LogCursor, LogError};

/// Read access to one log, usable concurrently with its writer and from any task.
///
/// Made by [`super::LogStore::reader`] (followers are woken by the writer) or by
/// [`LogReader::open`] from the directory alone (followers poll it).
#[derive(Debug, Clone)]
pub struct LogReader {
    dir: Arc<Path>,
    /// The writer's published end, when the writer is in this process.
    live: Option<watch::Receiver<Published>>,
}

impl LogReader {
    pub(super) fn live(dir: Arc<Path>, published: watch::Receiver<Published>) -> LogReader {
        LogReader { dir, live: Some(published) }
    }

    /// Reads the log in `dir` without a writer in this process, e.g. a finished training's
    /// log after an agent restart. Fails if `dir` is not a directory.
    pub fn open(dir: &Path) -> Result<LogReader, LogError> {
        let metadata = fs::metadata(dir).map_err(LogError::io("opening", dir))?;
        if !metadata.is_dir() {
            let source = io::Error::new(io::ErrorKind::NotADirectory, "a log is a directory");
            return Err(LogError::Io { op: "opening", path: dir.to_path_buf(), source });
        }
        Ok(LogReader { dir: dir.into(), live: None })
    }

    /// A cursor at the oldest retained line (`tail_lines == 0`), or at the start of the last
    /// `tail_lines` complete lines (all retained ones if there are fewer).
    pub fn cursor(&self, tail_lines: u64) -> Result<LogCursor, LogError> {
        let mut cursor = LogCursor::new(self.dir.clone(), self.live.clone());
        if tail_lines == 0 {
            cursor.open_oldest()?;
        } else if let Some(start) = tail::start_of_last(&self.dir, tail_lines)? {
            cursor.start_at(start)?;
        }
        Ok(cursor)
    }

    /// The last `n` complete lines, oldest first, without their `'\n'` (invalid UTF-8 is
    /// replaced). Lines appended while this runs may be among them.
    pub fn last_lines(&self, n: usize) -> Result<Vec<String>, LogError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut cursor = self.cursor(n as u64)?;
        let mut lines = VecDeque::with_capacity(n);
        while let Some(chunk) = cursor.next_chunk(64 * 1024)? {
            for line in chunk.strip_suffix(b"\n").unwrap_or(&chunk).split(|&b| b == b'\n') {
                if lines.len() == n {
                    lines.pop_front();
                }
                lines.push_back(String::from_utf8_lossy(line).into_owned());
            }
        }
        Ok(lines.into())
    }
}
