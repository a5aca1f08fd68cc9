//! Finding where the last N lines of a log begin, by scanning backwards from its end.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::LogError;
use super::layout::{self, segment_path};

const SCAN_BLOCK: u64 = 64 * 1024;

/// A position to start reading at, with the segment already open so that rotation cannot
/// delete it between finding the position and reading from it.
#[derive(Debug)]
pub(super) struct Start {
    pub segment: u64,
    pub file: File,
    pub offset: u64,
}

/// The start of the last `lines` complete lines, or of the oldest retained line if fewer are
/// kept; `None` if the log has no segment. A torn or not yet completed line at the very end is
/// not counted (a reader will get it once it is complete).
pub(super) fn start_of_last(dir: &Path, lines: u64) -> Result<Option<Start>, LogError> {
    let mut counted = 0;
    // The segment after the one being scanned; it starts on a line boundary.
    let mut newer: Option<(u64, File)> = None;
    for &first in layout::list_segments(dir)?.iter().rev() {
        let path = segment_path(dir, first);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            // Rotated away while we scanned: older ones are gone too, what we have is all.
            Err(e) if layout::is_gone(&e) && newer.is_some() => break,
            Err(e) if layout::is_gone(&e) => continue,
            Err(e) => return Err(LogError::io("opening", &path)(e)),
        };
        // The (lines + 1)-th '\n' from the end ends the line before the first one wanted.
        match nth_newline_from_end(&mut file, &path, lines + 1 - counted)? {
            Ok(offset) => return Ok(Some(Start { segment: first, file, offset })),
            Err(seen) => counted += seen,
        }
        if counted == lines {
            return Ok(Some(Start { segment: first, file, offset: 0 }));
        }
        newer = Some((first, file));
    }
    Ok(newer.map(|(segment, file)| Start { segment, file, offset: 0 }))
}

/// `Ok(offset just after the n-th '\n' counted from the end)`, or `Err(newlines in the file)`
/// when it has fewer than `n`.
fn nth_newline_from_end(file: &mut File, path: &Path, n: u64) -> Result<Result<u64, u64>, LogError> {
    let mut end = file.metadata().map_err(LogError::io("reading", path))?.len();
    let mut buf = vec![0; SCAN_BLOCK.min(end) as usize];
    let mut seen = 0;
    while end > 0 {
        let start = end.saturating_sub(SCAN_BLOCK);
        let block = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(block))
            .map_err(LogError::io("reading", path))?;
        for (i, _) in block.iter().enumerate().rev().filter(|(_, b)| **b == b'\n') {
            seen += 1;
            if seen == n {
                return Ok(Ok(start + i as u64 + 1));
            }
        }
        end = start;
    }
    Ok(Err(seen))
}
