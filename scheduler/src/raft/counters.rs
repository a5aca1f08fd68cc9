//! Cumulative counters of the replication pipeline, for `/metrics` and benchmarks.
//!
//! They answer "how well does batching work": entries per fsync, messages per batch on
//! the wire, Readies per proposal. Relaxed atomics: each counter is independent and read
//! only for reporting.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    pub proposals: AtomicU64,
    pub readies: AtomicU64,
    pub entries_staged: AtomicU64,
    pub log_syncs: AtomicU64,
    pub log_sync_micros: AtomicU64,
    pub entries_applied: AtomicU64,
    pub messages_sent: AtomicU64,
    pub batches_sent: AtomicU64,
    pub messages_received: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    pub proposals: u64,
    pub readies: u64,
    pub entries_staged: u64,
    pub log_syncs: u64,
    pub log_sync_micros: u64,
    pub entries_applied: u64,
    pub messages_sent: u64,
    pub batches_sent: u64,
    pub messages_received: u64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            proposals: get(&self.proposals),
            readies: get(&self.readies),
            entries_staged: get(&self.entries_staged),
            log_syncs: get(&self.log_syncs),
            log_sync_micros: get(&self.log_sync_micros),
            entries_applied: get(&self.entries_applied),
            messages_sent: get(&self.messages_sent),
            batches_sent: get(&self.batches_sent),
            messages_received: get(&self.messages_received),
        }
    }
}

impl CountersSnapshot {
    /// (metric name, help, value) for the Prometheus exposition.
    pub fn samples(&self) -> [(&'static str, &'static str, u64); 9] {
        [
            ("gantry_raft_proposals_total", "Client proposals handed to raft on this replica.", self.proposals),
            ("gantry_raft_readies_total", "Raft Ready batches handled.", self.readies),
            (
                "gantry_raft_entries_appended_total",
                "Log entries written (staged for the next sync).",
                self.entries_staged,
            ),
            ("gantry_raft_log_syncs_total", "Durable log commits (one fsync each).", self.log_syncs),
            ("gantry_raft_log_sync_microseconds_total", "Time spent in durable log commits.", self.log_sync_micros),
            ("gantry_raft_entries_applied_total", "Committed entries applied to the state.", self.entries_applied),
            ("gantry_raft_messages_sent_total", "Raft messages queued to peers.", self.messages_sent),
            ("gantry_raft_message_batches_sent_total", "Batches of raft messages put on the wire.", self.batches_sent),
            ("gantry_raft_messages_received_total", "Raft messages received from peers.", self.messages_received),
        ]
    }
}
