//! Behaviour of the store and its readers, through the public API only.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use tempfile::tempdir;

use super::layout::{list_segments, parse_segment_name, segment_path};
use super::{LogCursor, LogError, LogLimits, LogReader, LogStore};

const DEADLINE: Duration = Duration::from_secs(60);

/// About 60 bytes, like a typical training log line, numbered so order can be checked.
fn line(i: u64) -> String {
    format!("{i:010} step loss=0.123456 lr=3.0e-4 tokens/s=123456.7 ok")
}

fn number(line: &str) -> u64 {
    line[..10].parse().unwrap()
}

fn limits(max_file_bytes: u64, max_files: usize) -> LogLimits {
    LogLimits { max_file_bytes, max_files }
}

fn append_range(store: &mut LogStore, lines: std::ops::Range<u64>) {
    for i in lines {
        store.append(&line(i)).unwrap();
    }
}

fn expected(lines: std::ops::Range<u64>) -> Vec<String> {
    lines.map(line).collect()
}

fn split_chunk(chunk: &[u8]) -> impl Iterator<Item = String> + '_ {
    let body = chunk.strip_suffix(b"\n").expect("a chunk ends with a whole line");
    body.split(|&b| b == b'\n').map(|l| String::from_utf8(l.to_vec()).unwrap())
}

fn read_all(cursor: &mut LogCursor) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(chunk) = cursor.next_chunk(64 * 1024).unwrap() {
        lines.extend(split_chunk(&chunk));
    }
    lines
}

async fn follow(cursor: &mut LogCursor) -> Vec<String> {
    let mut lines = Vec::new();
    while cursor.wait_for_more().await.unwrap() {
        while let Some(chunk) = cursor.next_chunk(16 * 1024).unwrap() {
            lines.extend(split_chunk(&chunk));
        }
    }
    lines
}

/// Runs `f` on its own thread and fails the test if it has not returned by `deadline`.
fn with_deadline<T: Send + 'static>(deadline: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(deadline).expect("finished (or panicked) before the deadline")
}

fn segment_count(dir: &Path) -> usize {
    list_segments(dir).unwrap().len()
}

#[test]
fn handles_can_move_between_tasks() {
    fn reader<T: Clone + Send + Sync + 'static>() {}
    fn owned<T: Send + 'static>() {}
    reader::<LogReader>();
    owned::<LogStore>();
    owned::<LogCursor>();
}

#[test]
fn segment_names_are_zero_padded_first_line_numbers() {
    let path = segment_path(Path::new("/logs"), 52_113);
    assert_eq!(path, Path::new("/logs/00000000000000052113.log"));
    assert_eq!(parse_segment_name("00000000000000052113.log"), Some(52_113));
    assert_eq!(parse_segment_name("18446744073709551615.log"), Some(u64::MAX));
    assert_eq!(parse_segment_name("52113.log"), None);
    assert_eq!(parse_segment_name("0000000000000005211x.log"), None);
    assert_eq!(parse_segment_name("00000000000000052113.tmp"), None);
    assert_eq!(parse_segment_name("finished"), None);
}

#[test]
fn appended_lines_read_back_in_order() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), LogLimits::default()).unwrap();
    let lines = expected(0..1000);
    store.append_many(lines.iter().map(String::as_str)).unwrap();
    store.flush().unwrap();

    assert_eq!(store.total_lines(), 1000);
    assert_eq!(read_all(&mut store.reader().cursor(0).unwrap()), lines);
}

#[test]
fn lines_are_invisible_until_flushed() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), LogLimits::default()).unwrap();
    let mut cursor = store.reader().cursor(0).unwrap();
    append_range(&mut store, 0..10);
    assert_eq!(cursor.next_chunk(1024).unwrap(), None);

    store.flush().unwrap();
    assert_eq!(read_all(&mut cursor), expected(0..10));
    assert_eq!(cursor.next_chunk(1024).unwrap(), None);
}

#[test]
fn a_newline_inside_a_line_becomes_a_space() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), LogLimits::default()).unwrap();
    store.append_many(["first\nsecond\n", "", "plain"]).unwrap();
    store.flush().unwrap();

    assert_eq!(store.total_lines(), 3);
    assert_eq!(read_all(&mut store.reader().cursor(0).unwrap()), ["first second ", "", "plain"]);
}

#[test]
fn chunks_hold_whole_lines_within_max_bytes_unless_one_line_is_longer() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), LogLimits::default()).unwrap();
    let long = "y".repeat(1000);
    let mut lines: Vec<String> = (0..50).map(|i| "x".repeat(i * 7 % 90)).collect();
    lines.insert(20, long.clone());
    store.append_many(lines.iter().map(String::as_str)).unwrap();
    store.flush().unwrap();

    let mut cursor = store.reader().cursor(0).unwrap();
    let mut read = Vec::new();
    while let Some(chunk) = cursor.next_chunk(100).unwrap() {
        let chunk_lines: Vec<String> = split_chunk(&chunk).collect();
        assert!(chunk.len() <= 100 || chunk_lines == [long.clone()], "chunk of {} bytes", chunk.len());
        read.extend(chunk_lines);
    }
    assert_eq!(read, lines);
}

#[test]
fn tail_starts_at_the_last_n_lines_across_segments() {
    let dir = tempdir().unwrap();
    // About 8 lines per segment, so tails start inside segments and on their boundaries.
    let mut store = LogStore::open(dir.path(), limits(500, 100)).unwrap();
    append_range(&mut store, 0..100);
    store.flush().unwrap();
    assert!(segment_count(dir.path()) > 10);

    let reader = store.reader();
    for tail in 1..=100 {
        assert_eq!(read_all(&mut reader.cursor(tail).unwrap()), expected(100 - tail..100), "tail {tail}");
    }
    assert_eq!(read_all(&mut reader.cursor(1000).unwrap()), expected(0..100));
}

#[test]
fn tail_counts_from_the_oldest_retained_line_after_rotation() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(500, 2)).unwrap();
    append_range(&mut store, 0..100);
    store.flush().unwrap();

    let oldest = list_segments(dir.path()).unwrap()[0];
    let reader = store.reader();
    assert_eq!(read_all(&mut reader.cursor(1000).unwrap()), expected(oldest..100));
    assert_eq!(read_all(&mut reader.cursor(0).unwrap()), expected(oldest..100));
    assert_eq!(read_all(&mut reader.cursor(3).unwrap()), expected(97..100));
}

#[test]
fn rotation_keeps_max_files_and_total_lines_survives_reopen() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(1000, 3)).unwrap();
    for batch in 0..10 {
        append_range(&mut store, batch * 100..(batch + 1) * 100);
        store.flush().unwrap();
        assert!(segment_count(dir.path()) <= 3);
    }
    assert_eq!(store.total_lines(), 1000);
    drop(store);

    // Every retained segment is named by the number of its first line and within the limit.
    let segments = list_segments(dir.path()).unwrap();
    assert_eq!(segments.len(), 3);
    for &first in &segments {
        let content = fs::read_to_string(segment_path(dir.path(), first)).unwrap();
        assert!(content.len() <= 1000);
        assert_eq!(number(content.lines().next().unwrap()), first);
    }

    let mut store = LogStore::open(dir.path(), limits(1000, 3)).unwrap();
    assert_eq!(store.total_lines(), 1000);
    append_range(&mut store, 1000..1010);
    store.flush().unwrap();
    assert_eq!(store.total_lines(), 1010);
    let oldest = list_segments(dir.path()).unwrap()[0];
    assert!(oldest > segments[0]);
    assert_eq!(read_all(&mut store.reader().cursor(0).unwrap()), expected(oldest..1010));
}

#[test]
fn reopening_with_fewer_files_deletes_the_oldest() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(500, 10)).unwrap();
    append_range(&mut store, 0..100);
    store.flush().unwrap();
    drop(store);
    let newest = *list_segments(dir.path()).unwrap().last().unwrap();

    let store = LogStore::open(dir.path(), limits(500, 1)).unwrap();
    assert_eq!(list_segments(dir.path()).unwrap(), [newest]);
    assert_eq!(store.total_lines(), 100);
    assert_eq!(read_all(&mut store.reader().cursor(0).unwrap()), expected(newest..100));
}

#[test]
fn a_line_longer_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(100, 10)).unwrap();
    let long = "z".repeat(500);
    store.append_many(["a", &long, "b"]).unwrap();
    store.flush().unwrap();

    assert_eq!(list_segments(dir.path()).unwrap(), [0, 1, 2]);
    assert_eq!(read_all(&mut store.reader().cursor(0).unwrap()), ["a", long.as_str(), "b"]);
}

#[test]
fn a_crash_loses_unflushed_lines_and_a_torn_last_line_is_cut() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(1000, 10)).unwrap();
    append_range(&mut store, 0..40);
    store.flush().unwrap();
    append_range(&mut store, 40..45);
    // A crash: buffered lines never reach the file, and the process dies mid-write.
    std::mem::forget(store);
    let active = *list_segments(dir.path()).unwrap().last().unwrap();
    let mut file = OpenOptions::new().append(true).open(segment_path(dir.path(), active)).unwrap();
    file.write_all(b"0000000040 torn li").unwrap();
    drop(file);

    // A reader of the crashed log never sees the torn line.
    let reader = LogReader::open(dir.path()).unwrap();
    assert_eq!(read_all(&mut reader.cursor(0).unwrap()), expected(0..40));
    assert_eq!(read_all(&mut reader.cursor(2).unwrap()), expected(38..40));

    let mut store = LogStore::open(dir.path(), limits(1000, 10)).unwrap();
    assert_eq!(store.total_lines(), 40);
    append_range(&mut store, 40..60);
    store.flush().unwrap();
    assert_eq!(store.total_lines(), 60);
    assert_eq!(read_all(&mut store.reader().cursor(0).unwrap()), expected(0..60));
}

#[test]
fn a_crash_right_after_rotation_recovers_from_the_empty_segment() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(1000, 10)).unwrap();
    append_range(&mut store, 0..30);
    store.flush().unwrap();
    std::mem::forget(store);
    let last = *list_segments(dir.path()).unwrap().last().unwrap();
    fs::File::create(segment_path(dir.path(), 30)).unwrap();
    assert!(last < 30);

    let mut store = LogStore::open(dir.path(), limits(1000, 10)).unwrap();
    assert_eq!(store.total_lines(), 30);
    append_range(&mut store, 30..35);
    store.flush().unwrap();
    assert_eq!(read_all(&mut store.reader().cursor(0).unwrap()), expected(0..35));
}

#[test]
fn last_lines_are_the_newest_oldest_first() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(500, 100)).unwrap();
    let reader = store.reader();
    assert!(reader.last_lines(5).unwrap().is_empty());

    append_range(&mut store, 0..100);
    store.flush().unwrap();
    assert!(reader.last_lines(0).unwrap().is_empty());
    assert_eq!(reader.last_lines(1).unwrap(), expected(99..100));
    assert_eq!(reader.last_lines(20).unwrap(), expected(80..100));
    assert_eq!(reader.last_lines(500).unwrap(), expected(0..100));
}

#[test]
fn an_empty_log_has_nothing_to_read() {
    let dir = tempdir().unwrap();
    let store = LogStore::open(dir.path(), LogLimits::default()).unwrap();
    assert_eq!(store.total_lines(), 0);
    assert!(!store.is_finished());
    assert_eq!(store.reader().cursor(0).unwrap().next_chunk(1024).unwrap(), None);
    assert_eq!(store.reader().cursor(10).unwrap().next_chunk(1024).unwrap(), None);
}

#[test]
fn finish_is_durable_and_ends_appending() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), LogLimits::default()).unwrap();
    append_range(&mut store, 0..3);
    store.finish().unwrap();
    store.finish().unwrap();
    assert!(store.is_finished());
    assert!(matches!(store.append("late"), Err(LogError::Finished(_))));
    // `finish` flushed: a crash now loses nothing.
    std::mem::forget(store);

    let mut store = LogStore::open(dir.path(), LogLimits::default()).unwrap();
    assert!(store.is_finished());
    assert_eq!(store.total_lines(), 3);
    assert!(matches!(store.append("later"), Err(LogError::Finished(_))));
    assert_eq!(read_all(&mut store.reader().cursor(0).unwrap()), expected(0..3));
}

#[test]
fn reader_open_rejects_a_missing_directory() {
    let dir = tempdir().unwrap();
    assert!(matches!(LogReader::open(&dir.path().join("missing")), Err(LogError::Io { .. })));
}

#[tokio::test]
async fn a_finished_log_is_served_from_its_directory_after_the_writer_is_gone() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(2000, 100)).unwrap();
    append_range(&mut store, 0..500);
    store.finish().unwrap();
    drop(store);

    let reader = LogReader::open(dir.path()).unwrap();
    assert_eq!(reader.last_lines(3).unwrap(), expected(497..500));
    assert_eq!(read_all(&mut reader.cursor(10).unwrap()), expected(490..500));
    let mut cursor = reader.cursor(0).unwrap();
    let lines = tokio::time::timeout(DEADLINE, follow(&mut cursor)).await.unwrap();
    assert_eq!(lines, expected(0..500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_receives_every_line_in_order_and_ends_after_finish() {
    const LINES: u64 = 100_000;
    let dir = tempdir().unwrap();
    // Many rotations, none deleting a segment: nothing may be lost or repeated.
    let mut store = LogStore::open(dir.path(), limits(256 * 1024, 1000)).unwrap();
    let mut cursor = store.reader().cursor(0).unwrap();
    let follower = tokio::spawn(async move {
        let mut next = 0;
        while cursor.wait_for_more().await.unwrap() {
            while let Some(chunk) = cursor.next_chunk(16 * 1024).unwrap() {
                for got in split_chunk(&chunk) {
                    assert_eq!(got, line(next));
                    next += 1;
                }
            }
        }
        next
    });
    let writer = tokio::task::spawn_blocking(move || {
        for batch in 0..LINES / 1000 {
            append_range(&mut store, batch * 1000..(batch + 1) * 1000);
            store.flush().unwrap();
        }
        store.finish().unwrap();
        store.total_lines()
    });

    assert_eq!(tokio::time::timeout(DEADLINE, writer).await.unwrap().unwrap(), LINES);
    assert_eq!(tokio::time::timeout(DEADLINE, follower).await.unwrap().unwrap(), LINES);
    assert!(segment_count(dir.path()) > 10);
}

#[test]
fn an_in_process_follower_is_woken_by_flush_without_polling() {
    let lines = with_deadline(DEADLINE, || {
        // No timer driver: a follower that fell back to sleeping between polls would panic.
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let dir = tempdir().unwrap();
            let mut store = LogStore::open(dir.path(), limits(4096, 1000)).unwrap();
            let mut cursor = store.reader().cursor(0).unwrap();
            let follower = tokio::spawn(async move { follow(&mut cursor).await });
            for batch in 0..20 {
                append_range(&mut store, batch * 50..(batch + 1) * 50);
                store.flush().unwrap();
                tokio::task::yield_now().await;
            }
            store.finish().unwrap();
            follower.await.unwrap()
        })
    });
    assert_eq!(lines, expected(0..1000));
}

#[tokio::test]
async fn wait_for_more_returns_at_once_when_there_is_unread_data() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), LogLimits::default()).unwrap();
    append_range(&mut store, 0..10);
    store.flush().unwrap();
    let mut cursor = store.reader().cursor(0).unwrap();

    assert!(cursor.wait_for_more().await.unwrap());
    // A small chunk leaves whole lines behind in the cursor: still more to read.
    let chunk = cursor.next_chunk(1).unwrap().unwrap();
    assert_eq!(split_chunk(&chunk).collect::<Vec<_>>(), expected(0..1));
    assert!(cursor.wait_for_more().await.unwrap());
    assert_eq!(read_all(&mut cursor), expected(1..10));

    store.finish().unwrap();
    assert!(!cursor.wait_for_more().await.unwrap());
}

#[test]
fn a_cursor_whose_segments_rotate_away_skips_to_the_oldest_retained_line() {
    let dir = tempdir().unwrap();
    // Segments larger than one read, so the cursor is part-way through a file when it goes.
    let mut store = LogStore::open(dir.path(), limits(8192, 2)).unwrap();
    append_range(&mut store, 0..300);
    store.flush().unwrap();
    let segments = list_segments(dir.path()).unwrap();
    let (first, second) = (segments[0], segments[1]);
    let mut cursor = store.reader().cursor(0).unwrap();
    let mut lines: Vec<String> = split_chunk(&cursor.next_chunk(130).unwrap().unwrap()).collect();

    append_range(&mut store, 300..2000);
    store.flush().unwrap();
    assert!(!list_segments(dir.path()).unwrap().contains(&first));
    lines.extend(read_all(&mut cursor));

    let numbers: Vec<u64> = lines.iter().map(|l| number(l)).collect();
    for l in &lines {
        assert_eq!(*l, line(number(l)), "a corrupted line");
    }
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "out of order or repeated");
    // The segment the cursor was in is read to its end although it was deleted meanwhile.
    assert!(numbers.starts_with(&(first..second).collect::<Vec<_>>()));
    let oldest = list_segments(dir.path()).unwrap()[0];
    assert!(numbers.ends_with(&(oldest..2000).collect::<Vec<_>>()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_rotation_gets_ordered_whole_lines_and_the_last_one() {
    const LINES: u64 = 100_000;
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(16 * 1024, 2)).unwrap();
    let mut cursor = store.reader().cursor(0).unwrap();
    let follower = tokio::spawn(async move {
        let (mut last, mut count) = (None, 0u64);
        while cursor.wait_for_more().await.unwrap() {
            while let Some(chunk) = cursor.next_chunk(4096).unwrap() {
                for got in split_chunk(&chunk) {
                    let n = number(&got);
                    assert_eq!(got, line(n), "a corrupted line");
                    assert!(last.is_none_or(|last| n > last), "line {n} after {last:?}");
                    (last, count) = (Some(n), count + 1);
                }
            }
        }
        (last, count)
    });
    let writer = tokio::task::spawn_blocking(move || {
        for batch in 0..LINES / 500 {
            append_range(&mut store, batch * 500..(batch + 1) * 500);
            store.flush().unwrap();
        }
        store.finish().unwrap();
    });

    tokio::time::timeout(DEADLINE, writer).await.unwrap().unwrap();
    let (last, count) = tokio::time::timeout(DEADLINE, follower).await.unwrap().unwrap();
    assert_eq!(last, Some(LINES - 1));
    assert!(count > 0 && count <= LINES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_follower_polls_a_writer_outside_its_process() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(1000, 1000)).unwrap();
    // Opened from the directory, so it is not connected to this store: as if another process.
    let mut cursor = LogReader::open(dir.path()).unwrap().cursor(0).unwrap();
    let follower = tokio::spawn(async move { follow(&mut cursor).await });
    for batch in 0..5 {
        append_range(&mut store, batch * 100..(batch + 1) * 100);
        store.flush().unwrap();
        tokio::task::yield_now().await;
    }
    store.finish().unwrap();

    let lines = tokio::time::timeout(DEADLINE, follower).await.unwrap().unwrap();
    assert_eq!(lines, expected(0..500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_outlives_its_writer_and_sees_a_reopened_one() {
    let dir = tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), limits(1000, 1000)).unwrap();
    let mut cursor = store.reader().cursor(0).unwrap();
    let follower = tokio::spawn(async move { follow(&mut cursor).await });
    append_range(&mut store, 0..100);
    store.flush().unwrap();
    // An agent restart in-process: the old writer goes away unfinished, a new one takes over.
    drop(store);

    let mut store = LogStore::open(dir.path(), limits(1000, 1000)).unwrap();
    append_range(&mut store, 100..200);
    store.finish().unwrap();

    let lines = tokio::time::timeout(DEADLINE, follower).await.unwrap().unwrap();
    assert_eq!(lines, expected(0..200));
}
