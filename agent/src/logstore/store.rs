//! The writer: appends lines to the active segment, rotates, recovers after a crash.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::warn;

use super::layout::{self, segment_path};
use super::{LogError, LogLimits, LogReader};

/// Big enough that the agent's flush every few milliseconds is one `write(2)`, even at hundreds
/// of thousands of lines per second.
const WRITE_BUFFER: usize = 256 * 1024;
const SCAN_BUFFER: usize = 64 * 1024;

/// How far the log is readable, as the writer last published it. Readers compare their
/// position with it instead of asking the writer anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Published {
    /// First line number of the active segment.
    pub segment: u64,
    /// Bytes of the active segment written to the file.
    pub bytes: u64,
    pub finished: bool,
}

/// One container's log, open for appending. There is one writer per directory.
///
/// Appends are buffered; [`LogStore::flush`] makes them visible to readers. Dropping the store
/// writes buffered lines out but does not publish them: in-process followers then fall back to
/// polling the directory.
#[derive(Debug)]
pub struct LogStore {
    dir: Arc<Path>,
    limits: LogLimits,
    /// First line numbers of the retained segments, oldest first; the last is the active one.
    segments: VecDeque<u64>,
    active: u64,
    out: BufWriter<File>,
    /// Bytes in the active segment, buffered ones included.
    active_bytes: u64,
    total_lines: u64,
    finished: bool,
    /// Set when a write failed part-way: the file may now end in a torn line, and appending
    /// after it would glue the next line onto it.
    poisoned: bool,
    published: watch::Sender<Published>,
}

impl LogStore {
    /// Opens the log in `dir`, creating both if needed.
    ///
    /// After a crash the active segment may end in a torn line (no `'\n'`); it is cut off, so
    /// [`LogStore::total_lines`] counts exactly the complete lines and appends continue after
    /// them. Segments beyond `limits.max_files` are deleted.
    pub fn open(dir: &Path, limits: LogLimits) -> Result<LogStore, LogError> {
        fs::create_dir_all(dir).map_err(LogError::io("creating", dir))?;
        let mut segments: VecDeque<u64> = layout::list_segments(dir)?.into();
        let (active, active_bytes, lines) = match segments.back() {
            Some(&last) => {
                let (bytes, lines) = recover(&segment_path(dir, last))?;
                (last, bytes, lines)
            }
            None => {
                segments.push_back(0);
                (0, 0, 0)
            }
        };
        let path = segment_path(dir, active);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(LogError::io("opening", &path))?;
        let finished = layout::is_finished(dir)?;
        let (published, _) = watch::channel(Published { segment: active, bytes: active_bytes, finished });
        let mut store = LogStore {
            dir: dir.into(),
            limits,
            segments,
            active,
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            active_bytes,
            total_lines: active + lines,
            finished,
            poisoned: false,
            published,
        };
        store.prune()?;
        Ok(store)
    }

    /// Appends one line, given without its `'\n'`. A `'\n'` inside it becomes a space: one
    /// call is one line, which is what [`LogStore::total_lines`] counts.
    pub fn append(&mut self, line: &str) -> Result<(), LogError> {
        self.check_writable()?;
        let len = line.len() as u64 + 1;
        if self.active_bytes > 0 && self.active_bytes + len > self.limits.max_file_bytes {
            self.rotate()?;
        }
        if let Err(source) = write_line(&mut self.out, line.as_bytes()) {
            self.poisoned = true;
            return Err(LogError::Io { op: "writing", path: segment_path(&self.dir, self.active), source });
        }
        self.active_bytes += len;
        self.total_lines += 1;
        Ok(())
    }

    /// Appends lines in order; see [`LogStore::append`]. On an error, the lines before the
    /// failing one are appended.
    pub fn append_many<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>) -> Result<(), LogError> {
        lines.into_iter().try_for_each(|line| self.append(line))
    }

    /// Writes buffered lines to the file and publishes the new end to followers.
    pub fn flush(&mut self) -> Result<(), LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned(self.dir.to_path_buf()));
        }
        self.write_out()?;
        self.publish();
        Ok(())
    }

    /// Marks the log complete (its container ended): flushes, fsyncs the active segment, then
    /// writes and fsyncs the `finished` marker, and wakes followers. Later appends fail with
    /// [`LogError::Finished`]. Finishing twice is a no-op.
    pub fn finish(&mut self) -> Result<(), LogError> {
        if self.finished {
            return Ok(());
        }
        self.check_writable()?;
        self.write_out()?;
        let segment = segment_path(&self.dir, self.active);
        self.out.get_ref().sync_data().map_err(LogError::io("syncing", &segment))?;
        let marker = layout::finished_marker(&self.dir);
        File::create(&marker).and_then(|f| f.sync_all()).map_err(LogError::io("writing", &marker))?;
        // The marker's directory entry must be durable too, or a power loss could forget it.
        File::open(&*self.dir).and_then(|d| d.sync_all()).map_err(LogError::io("syncing", &self.dir))?;
        self.finished = true;
        self.publish();
        Ok(())
    }

    /// Whether [`LogStore::finish`] was called, by this store or before a reopen.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Lines ever appended to this log, rotated-away ones included; exact across reopens.
    pub fn total_lines(&self) -> u64 {
        self.total_lines
    }

    /// A handle for readers, usable concurrently with this writer; its followers are woken by
    /// [`LogStore::flush`] and [`LogStore::finish`].
    pub fn reader(&self) -> LogReader {
        LogReader::live(self.dir.clone(), self.published.subscribe())
    }

    fn check_writable(&self) -> Result<(), LogError> {
        if self.poisoned {
            Err(LogError::Poisoned(self.dir.to_path_buf()))
        } else if self.finished {
            Err(LogError::Finished(self.dir.to_path_buf()))
        } else {
            Ok(())
        }
    }

    fn write_out(&mut self) -> Result<(), LogError> {
        self.out.flush().map_err(|source| {
            self.poisoned = true;
            LogError::Io { op: "writing", path: segment_path(&self.dir, self.active), source }
        })
    }

    fn publish(&self) {
        let end = Published { segment: self.active, bytes: self.active_bytes, finished: self.finished };
        // Only a real change wakes followers; the agent flushes every few ms even when idle.
        self.published.send_if_modified(|published| {
            let changed = *published != end;
            *published = end;
            changed
        });
    }

    /// Closes the active segment and starts the next one, named by the next line's number.
    fn rotate(&mut self) -> Result<(), LogError> {
        // The old segment is complete on disk before the new one exists: a reader that sees the
        // new file may conclude it has read all of the old one once it reads to its end.
        self.write_out()?;
        let first = self.total_lines;
        let path = segment_path(&self.dir, first);
        let file =
            OpenOptions::new().create_new(true).append(true).open(&path).map_err(LogError::io("creating", &path))?;
        self.out = BufWriter::with_capacity(WRITE_BUFFER, file);
        self.segments.push_back(first);
        self.active = first;
        self.active_bytes = 0;
        self.prune()
    }

    fn prune(&mut self) -> Result<(), LogError> {
        while self.segments.len() > self.limits.max_files.max(1) {
            let Some(oldest) = self.segments.pop_front() else { break };
            let path = segment_path(&self.dir, oldest);
            match fs::remove_file(&path) {
                Err(e) if !layout::is_gone(&e) => return Err(LogError::io("deleting", &path)(e)),
                _ => {}
            }
        }
        Ok(())
    }
}

fn write_line(out: &mut impl Write, line: &[u8]) -> io::Result<()> {
    if line.contains(&b'\n') {
        for (i, part) in line.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                out.write_all(b" ")?;
            }
            out.write_all(part)?;
        }
    } else {
        out.write_all(line)?;
    }
    out.write_all(b"\n")
}

/// Cuts a torn last line off the segment at `path`; returns its remaining size and line count.
fn recover(path: &Path) -> Result<(u64, u64), LogError> {
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(LogError::io("opening", path))?;
    let mut buf = vec![0; SCAN_BUFFER];
    let (mut read, mut complete, mut lines) = (0u64, 0u64, 0u64);
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LogError::io("reading", path)(e)),
        };
        let chunk = &buf[..n];
        if let Some(last) = chunk.iter().rposition(|&b| b == b'\n') {
            complete = read + last as u64 + 1;
            lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        read += n as u64;
    }
    if read > complete {
        warn!(segment = %path.display(), dropped_bytes = read - complete, "cutting a torn last line left by a crash");
        file.set_len(complete).map_err(LogError::io("truncating", path))?;
    }
    Ok((complete, lines))
}
