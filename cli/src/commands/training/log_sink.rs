//! Where a training's log bytes go: stdout as they came (`-o table`) or one JSON object
//! per line (`-o json`), counting whole lines so a broken stream can be resumed.
//!
//! ```text
//!   chunk ──▶ [partial line carried] ──▶ [lines a resumed stream repeats, skipped] ──▶ out
//! ```
//!
//! Raw output is one write per chunk, whatever the number of lines in it: only the
//! newline count and the last newline's position are looked for. The sink is pure over
//! any `Write`; the caller decides when to flush.

use std::io::{self, Write};

use serde::Serialize;

use crate::output::Format;

/// One line of `-o json` log output.
#[derive(Serialize)]
struct JsonLine<'a> {
    line: &'a str,
}

#[derive(Debug)]
pub struct LogSink<W: Write> {
    out: W,
    format: Format,
    /// Whole lines written, over every stream this sink was fed.
    printed: u64,
    /// Lines still to drop: those a resumed stream sends again.
    skip: u64,
    /// The start of a line whose end has not arrived yet (the server sends whole lines,
    /// so this stays empty unless it does not).
    partial: Vec<u8>,
}

impl<W: Write> LogSink<W> {
    pub fn new(out: W, format: Format) -> Self {
        LogSink { out, format, printed: 0, skip: 0, partial: Vec::new() }
    }

    /// Whole lines written so far.
    pub fn printed(&self) -> u64 {
        self.printed
    }

    /// Writes the whole lines `data` completes; keeps a trailing partial line for later.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(last_newline) = data.iter().rposition(|&b| b == b'\n') else {
            self.partial.extend_from_slice(data);
            return Ok(());
        };
        let (complete, rest) = data.split_at(last_newline + 1);
        if self.partial.is_empty() {
            self.lines(complete)?;
        } else {
            let mut joined = std::mem::take(&mut self.partial);
            joined.extend_from_slice(complete);
            self.lines(&joined)?;
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// Prepares for a new stream that starts again from the first line kept: the lines
    /// already written will be skipped, and a partial line is dropped (it comes again
    /// whole).
    pub fn resume(&mut self) {
        self.skip = self.printed;
        self.partial.clear();
    }

    /// Writes a last line left without its newline, then flushes.
    pub fn finish(&mut self) -> io::Result<()> {
        if !self.partial.is_empty() && self.skip == 0 {
            let mut last = std::mem::take(&mut self.partial);
            last.push(b'\n');
            self.lines(&last)?;
        }
        self.partial.clear();
        self.flush()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes `complete`, whole lines each ending in `\n`, minus those still to skip.
    fn lines(&mut self, complete: &[u8]) -> io::Result<()> {
        let complete = if self.skip > 0 {
            let (skipped, after) = skip_lines(complete, self.skip);
            self.skip -= skipped;
            after
        } else {
            complete
        };
        if complete.is_empty() {
            return Ok(());
        }
        match self.format {
            Format::Table => {
                self.out.write_all(complete)?;
                self.printed += count_lines(complete);
            }
            Format::Json => {
                // Drop the final '\n' so `split` yields exactly the lines.
                for line in complete[..complete.len() - 1].split(|&b| b == b'\n') {
                    serde_json::to_writer(&mut self.out, &JsonLine { line: &String::from_utf8_lossy(line) })?;
                    self.out.write_all(b"\n")?;
                    self.printed += 1;
                }
            }
        }
        Ok(())
    }
}

/// Drops up to `n` whole lines from the start of `data`; returns how many it dropped
/// and what follows them.
fn skip_lines(data: &[u8], n: u64) -> (u64, &[u8]) {
    let mut skipped = 0;
    let mut start = 0;
    for (i, _) in data.iter().enumerate().filter(|&(_, &b)| b == b'\n') {
        if skipped == n {
            break;
        }
        skipped += 1;
        start = i + 1;
    }
    (skipped, &data[start..])
}

fn count_lines(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(sink: &LogSink<Vec<u8>>) -> &str {
        std::str::from_utf8(&sink.out).unwrap()
    }

    #[test]
    fn raw_output_is_the_bytes_as_they_came() {
        let mut sink = LogSink::new(Vec::new(), Format::Table);
        sink.write(b"epoch 1\nepoch 2\n").unwrap();
        sink.write(b"done\n").unwrap();
        sink.finish().unwrap();
        assert_eq!(text(&sink), "epoch 1\nepoch 2\ndone\n");
        assert_eq!(sink.printed(), 3);
    }

    #[test]
    fn json_output_is_one_object_per_line() {
        let mut sink = LogSink::new(Vec::new(), Format::Json);
        sink.write(b"loss=0.5 \"ok\"\n\n\xff tab\there\n").unwrap();
        sink.finish().unwrap();
        assert_eq!(
            text(&sink),
            "{\"line\":\"loss=0.5 \\\"ok\\\"\"}\n{\"line\":\"\"}\n{\"line\":\"\u{fffd} tab\\there\"}\n"
        );
        assert_eq!(sink.printed(), 3);
    }

    #[test]
    fn a_line_split_across_chunks_is_written_whole() {
        for format in [Format::Table, Format::Json] {
            let mut sink = LogSink::new(Vec::new(), format);
            sink.write(b"a\nhalf").unwrap();
            assert_eq!(sink.printed(), 1);
            sink.write(b" of it").unwrap();
            sink.write(b"\nb\n").unwrap();
            assert_eq!(sink.printed(), 3);
            let out = text(&sink).to_string();
            let expected = match format {
                Format::Table => "a\nhalf of it\nb\n",
                Format::Json => "{\"line\":\"a\"}\n{\"line\":\"half of it\"}\n{\"line\":\"b\"}\n",
            };
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn a_last_line_without_newline_is_ended_on_finish() {
        let mut sink = LogSink::new(Vec::new(), Format::Table);
        sink.write(b"a\nno newline").unwrap();
        sink.finish().unwrap();
        assert_eq!(text(&sink), "a\nno newline\n");
    }

    #[test]
    fn a_resumed_stream_skips_the_lines_already_written() {
        let mut sink = LogSink::new(Vec::new(), Format::Table);
        sink.write(b"1\n2\n3\npart").unwrap();
        sink.resume();
        // The new server sends everything again, in different chunks.
        sink.write(b"1\n2").unwrap();
        sink.write(b"\n3\npartial line\n4\n").unwrap();
        sink.finish().unwrap();
        assert_eq!(text(&sink), "1\n2\n3\npartial line\n4\n");
        assert_eq!(sink.printed(), 5);
    }

    #[test]
    fn resuming_again_while_still_skipping_skips_the_same_lines() {
        let mut sink = LogSink::new(Vec::new(), Format::Json);
        sink.write(b"1\n2\n").unwrap();
        sink.resume();
        sink.write(b"1\n").unwrap();
        sink.resume();
        sink.write(b"1\n2\n3\n").unwrap();
        assert_eq!(text(&sink), "{\"line\":\"1\"}\n{\"line\":\"2\"}\n{\"line\":\"3\"}\n");
    }

    #[test]
    fn skip_lines_stops_at_n_or_at_the_end() {
        assert_eq!(skip_lines(b"a\nb\nc\n", 2), (2, &b"c\n"[..]));
        assert_eq!(skip_lines(b"a\nb\n", 5), (2, &b""[..]));
        assert_eq!(skip_lines(b"a\n", 0), (0, &b"a\n"[..]));
    }
}
