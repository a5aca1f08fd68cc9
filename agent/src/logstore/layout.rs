//! Where a log's pieces live in its directory, and how their names are read back.
//!
//! A segment is `<first line number, 20 digits>.log`: the fixed width makes names sort like
//! numbers, and 20 digits hold any `u64`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::LogError;

const SEGMENT_SUFFIX: &str = ".log";
const NAME_DIGITS: usize = 20;
/// Present once the log is complete; written (and fsync'd) after the last line is durable.
const FINISHED_MARKER: &str = "finished";

pub(super) fn segment_path(dir: &Path, first_line: u64) -> PathBuf {
    dir.join(format!("{first_line:0NAME_DIGITS$}{SEGMENT_SUFFIX}"))
}

pub(super) fn finished_marker(dir: &Path) -> PathBuf {
    dir.join(FINISHED_MARKER)
}

/// The first line number a segment file name stands for; `None` for any other file.
pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The first line numbers of the segments in `dir`, oldest first.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut firsts = Vec::new();
    for entry in fs::read_dir(dir).map_err(LogError::io("listing", dir))? {
        let entry = entry.map_err(LogError::io("listing", dir))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

pub(super) fn is_finished(dir: &Path) -> Result<bool, LogError> {
    let marker = finished_marker(dir);
    marker.try_exists().map_err(LogError::io("checking", &marker))
}

/// Whether an error means the file is gone, which for a segment means rotated away.
pub(super) fn is_gone(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound
}
