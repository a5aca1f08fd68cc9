//! What a command prints: a human table (the default) or the response message as JSON.
//!
//! ```text
//!   response ──▶ json::ToJson ──▶ -o json   (stable shape for scripts)
//!            └─▶ commands/<noun> view (table::Table, table::fields, format::*) ──▶ -o table
//! ```

pub mod format;
pub mod json;
pub mod table;

use std::io::{self, Write};

use clap::ValueEnum;

/// `-o/--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns and `Label: value` details, for people
    Table,
    /// The response message as JSON, for scripts
    Json,
}

/// Prints `message` as JSON or the human view `table` builds, per `format`.
pub fn emit<M: json::ToJson>(format: Format, message: &M, table: impl FnOnce(&M) -> String) -> anyhow::Result<()> {
    let text = match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&message.to_json())?;
            text.push('\n');
            text
        }
        Format::Table => table(message),
    };
    write_stdout(&text)
}

/// Prints `message` as JSON on one line, for output that is JSON lines (a training's
/// log lines followed by the training).
pub fn emit_json_line<M: json::ToJson>(message: &M) -> anyhow::Result<()> {
    let mut text = serde_json::to_string(&message.to_json())?;
    text.push('\n');
    write_stdout(&text)
}

/// Writes to stdout, treating a closed pipe (`gantryctl training list | head -1`) as
/// success rather than panicking like `print!` does.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => Ok(result?),
    }
}
