//! The log writer: a dedicated thread that makes Raft's log writes durable.
//!
//! The ready loop stages each `Ready`'s writes in the log (visible to raft at once) and
//! moves on (raft-rs async ready); this thread syncs everything staged in one fjall
//! transaction (one fsync for many Readies under load), then sends the messages that
//! had to wait for durability and tells the loop which Ready numbers are persisted.

use std::sync::mpsc as std_mpsc;

use gantry_raftlog::RaftLog;
use raft::eraftpb::Message;
use tokio::sync::mpsc;

use std::sync::Arc;
use std::time::Instant;

use super::counters::Counters;
use super::task::{Event, exit_on_storage_failure};
use super::transport::Transport;

pub struct PersistJob {
    pub number: u64,
    /// Messages raft allows out only after this write is on disk (votes, append acks).
    pub after: Vec<Message>,
    /// False when the write may wait for a later fsync (see `task::ready::must_sync`).
    pub sync: bool,
}

pub fn spawn(
    log: RaftLog,
    transport: Transport,
    events: mpsc::UnboundedSender<Event>,
    counters: Arc<Counters>,
) -> std_mpsc::Sender<PersistJob> {
    let (tx, rx) = std_mpsc::channel::<PersistJob>();
    std::thread::Builder::new()
        .name("raft-log-writer".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                let PersistJob { mut number, mut after, mut sync } = job;
                while let Ok(next) = rx.try_recv() {
                    after.extend(next.after);
                    number = next.number;
                    sync |= next.sync;
                }
                // Jobs are handled in order, so an unsynced job is reported persisted
                // only after every earlier job that needed the disk reached it.
                if !sync {
                    transport.send(after);
                    if events.send(Event::Persisted(number)).is_err() {
                        return;
                    }
                    continue;
                }
                let started = Instant::now();
                let synced = log.sync();
                Counters::add(&counters.log_syncs, 1);
                Counters::add(&counters.log_sync_micros, started.elapsed().as_micros() as u64);
                if let Err(e) = synced {
                    exit_on_storage_failure("syncing the raft log", &e);
                }
                transport.send(after);
                if events.send(Event::Persisted(number)).is_err() {
                    return;
                }
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot start the raft log writer thread");
            std::process::exit(70);
        });
    tx
}
