//! A read position in a log: chunks of whole lines, across segments, and waiting for more.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::warn;

use super::LogError;
use super::layout::{self, segment_path};
use super::store::Published;
use super::tail::Start;

/// How often a follower without a writer in its process looks at the directory.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Bounds one `read(2)`: large enough for few syscalls, small enough that a reader asking for
/// huge chunks does not zero huge buffers each time it finds nothing new.
const READ_MIN: usize = 4 * 1024;
const READ_MAX: usize = 256 * 1024;

/// A reader's position in a log. Reads never return part of a line.
///
/// The cursor keeps its segment file open, so a segment rotated away while it is being read is
/// still read to its end; only segments deleted before the cursor reached them are skipped.
#[derive(Debug)]
pub struct LogCursor {
    dir: Arc<Path>,
    live: Option<watch::Receiver<Published>>,
    /// `None` only while the log has no segment at all.
    segment: Option<OpenSegment>,
    /// Bytes read from the segment and not yet returned: whole lines, then maybe the start of
    /// one whose end is not written yet.
    carry: Vec<u8>,
}

#[derive(Debug)]
struct OpenSegment {
    first: u64,
    file: File,
    /// Offset of the next byte `file` will read.
    read_pos: u64,
}

impl LogCursor {
    pub(super) fn new(dir: Arc<Path>, live: Option<watch::Receiver<Published>>) -> LogCursor {
        LogCursor { dir, live, segment: None, carry: Vec::new() }
    }

    pub(super) fn start_at(&mut self, start: Start) -> Result<(), LogError> {
        let Start { segment, mut file, offset } = start;
        file.seek(SeekFrom::Start(offset)).map_err(LogError::io("reading", &segment_path(&self.dir, segment)))?;
        self.segment = Some(OpenSegment { first: segment, file, read_pos: offset });
        Ok(())
    }

    pub(super) fn open_oldest(&mut self) -> Result<(), LogError> {
        self.open_next(None).map(|_| ())
    }

    /// The next whole lines (each ending in `'\n'`), at most `max_bytes` of them unless the
    /// first line alone is longer; `None` when the cursor has caught up with the writer.
    pub fn next_chunk(&mut self, max_bytes: usize) -> Result<Option<Vec<u8>>, LogError> {
        let max = max_bytes.max(1);
        loop {
            if self.carry.len() >= max
                && let Some(chunk) = split_lines(&mut self.carry, max)
            {
                return Ok(Some(chunk));
            }
            // Past `max` the first line is longer than a chunk: read on in big steps to its end.
            let want = if self.carry.len() >= max { READ_MAX } else { max - self.carry.len() };
            if self.read_more(want)? > 0 {
                continue;
            }
            if let Some(chunk) = split_lines(&mut self.carry, max) {
                return Ok(Some(chunk));
            }
            if !self.advance_segment()? {
                return Ok(None);
            }
        }
    }

    /// Waits until there is something this cursor has not read, or the log is finished.
    /// `Ok(false)` means finished and fully read: the follower is done.
    ///
    /// With a writer in this process, wakes on its flush; otherwise polls the directory every
    /// [`POLL_INTERVAL`], and also falls back to that when the writer is dropped unfinished.
    pub async fn wait_for_more(&mut self) -> Result<bool, LogError> {
        loop {
            let Some(live) = self.live.as_mut() else { return self.poll_directory().await };
            let end = *live.borrow_and_update();
            if self.unread_before(&end) {
                return Ok(true);
            }
            if end.finished {
                return Ok(false);
            }
            if let Some(live) = self.live.as_mut()
                && live.changed().await.is_err()
            {
                self.live = None;
            }
        }
    }

    async fn poll_directory(&mut self) -> Result<bool, LogError> {
        loop {
            // Checked before the data: the marker is written after the last line, so once it is
            // seen, what the files hold is everything.
            let finished = layout::is_finished(&self.dir)?;
            if self.unread_on_disk()? {
                return Ok(true);
            }
            if finished {
                return Ok(false);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Whether the writer has published data this cursor has not returned. Whenever true,
    /// `next_chunk` makes progress, so a follower cannot spin.
    fn unread_before(&self, end: &Published) -> bool {
        if self.carry.contains(&b'\n') {
            return true;
        }
        match &self.segment {
            None => end.segment > 0 || end.bytes > 0,
            Some(segment) => {
                segment.first < end.segment || (segment.first == end.segment && segment.read_pos < end.bytes)
            }
        }
    }

    fn unread_on_disk(&self) -> Result<bool, LogError> {
        if self.carry.contains(&b'\n') {
            return Ok(true);
        }
        let Some(segment) = &self.segment else { return Ok(!layout::list_segments(&self.dir)?.is_empty()) };
        let path = segment_path(&self.dir, segment.first);
        let len = segment.file.metadata().map_err(LogError::io("reading", &path))?.len();
        Ok(len > segment.read_pos || self.has_newer_segment(segment.first)?)
    }

    /// Appends up to about `want` bytes of the current segment to `carry`; `0` at its end.
    fn read_more(&mut self, want: usize) -> Result<usize, LogError> {
        let Some(segment) = self.segment.as_mut() else { return Ok(0) };
        let old = self.carry.len();
        self.carry.resize(old + want.clamp(READ_MIN, READ_MAX), 0);
        let read = loop {
            match segment.file.read(&mut self.carry[old..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                read => break read,
            }
        };
        match read {
            Ok(got) => {
                self.carry.truncate(old + got);
                segment.read_pos += got as u64;
                Ok(got)
            }
            Err(e) => {
                self.carry.truncate(old);
                Err(LogError::io("reading", &segment_path(&self.dir, segment.first))(e))
            }
        }
    }

    /// At the end of the current segment: moves to the next one if the writer has moved on.
    /// Returns whether there may be more to read now.
    fn advance_segment(&mut self) -> Result<bool, LogError> {
        let Some(current) = self.segment.as_ref().map(|s| s.first) else { return self.open_next(None) };
        if !self.has_newer_segment(current)? {
            return Ok(false);
        }
        // The writer completed this segment before creating the next, so what we saw as its end
        // may have been stale; a read from here on sees the real one.
        if self.read_more(READ_MIN)? > 0 {
            return Ok(true);
        }
        if !self.carry.is_empty() {
            warn!(segment = %segment_path(&self.dir, current).display(), bytes = self.carry.len(),
                "skipping a closed segment's unterminated last line");
            self.carry.clear();
        }
        self.open_next(Some(current))
    }

    fn has_newer_segment(&self, current: u64) -> Result<bool, LogError> {
        if let Some(live) = &self.live
            && live.has_changed().is_ok()
        {
            return Ok(live.borrow().segment > current);
        }
        Ok(layout::list_segments(&self.dir)?.last().is_some_and(|&last| last > current))
    }

    /// Opens the oldest segment after `after` (or the oldest at all); whether there was one.
    fn open_next(&mut self, mut after: Option<u64>) -> Result<bool, LogError> {
        loop {
            let segments = layout::list_segments(&self.dir)?;
            let Some(&first) = segments.iter().find(|&&first| after.is_none_or(|after| first > after)) else {
                return Ok(false);
            };
            let path = segment_path(&self.dir, first);
            match File::open(&path) {
                Ok(file) => {
                    self.segment = Some(OpenSegment { first, file, read_pos: 0 });
                    return Ok(true);
                }
                // Rotated away between listing and opening; the ones after it are the oldest.
                Err(e) if layout::is_gone(&e) => after = Some(first),
                Err(e) => return Err(LogError::io("opening", &path)(e)),
            }
        }
    }
}

/// Takes the longest run of whole lines from the front of `carry` that fits in `max` bytes, or
/// the first line alone if it is longer; `None` if `carry` holds no whole line.
fn split_lines(carry: &mut Vec<u8>, max: usize) -> Option<Vec<u8>> {
    let fitting = carry[..carry.len().min(max)].iter().rposition(|&b| b == b'\n');
    let end = match fitting {
        Some(newline) => newline + 1,
        None => max + carry.get(max..)?.iter().position(|&b| b == b'\n')? + 1,
    };
    let rest = carry.split_off(end);
    Some(std::mem::replace(carry, rest))
}
