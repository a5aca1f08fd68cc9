//! raft-rs logs through `slog`; this drain forwards its records to `tracing` so one
//! subscriber (set up in `main`) sees everything.

use std::fmt::Write as _;

use slog::{Drain, KV, Key, Level, OwnedKVList, Record, Serializer};

struct TracingDrain;

struct Fields(String);

impl Serializer for Fields {
    fn emit_arguments(&mut self, key: Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = Fields(String::new());
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let msg = record.msg();
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: "raft", "{msg}{}", fields.0),
            Level::Warning => tracing::warn!(target: "raft", "{msg}{}", fields.0),
            Level::Info => tracing::info!(target: "raft", "{msg}{}", fields.0),
            Level::Debug => tracing::debug!(target: "raft", "{msg}{}", fields.0),
            Level::Trace => tracing::trace!(target: "raft", "{msg}{}", fields.0),
        }
        Ok(())
    }
}

pub fn raft_logger(replica_id: u64) -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!("replica" => replica_id))
}
