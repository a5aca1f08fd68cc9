//! Snapshots of the state machine, taken off the ready loop.

use super::{Event, RaftTask, exit_on_storage_failure};

impl RaftTask {
    /// Snapshots the state as of `applied` without stalling the loop: only the copy is
    /// made here; serializing (the costly part, growing with the state) and writing run
    /// on a blocking thread. The log store orders that write with the loop's own.
    pub(super) fn start_snapshot(&mut self, applied: u64) {
        let state = match self.state.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        self.snapshot_running = true;
        self.snapshot_wanted = false;
        self.log_bytes_since_snapshot = 0;
        let (log, conf_state, events) = (self.log.clone(), self.conf_state.clone(), self.events_tx.clone());
        tokio::task::spawn_blocking(move || {
            let saved = match serde_json::to_vec(&state) {
                Ok(data) => {
                    let bytes = data.len() as u64;
                    match log.save_snapshot(applied, conf_state, data) {
                        Ok(()) => {
                            tracing::info!(index = applied, bytes, "snapshot saved, log compacted");
                            Some((applied, bytes))
                        }
                        // The store is poisoned: the next write would stop the process,
                        // but an idle replica might not write for a long time.
                        Err(e) if e.is_fatal() => exit_on_storage_failure("saving a snapshot", &e),
                        Err(e) => {
                            tracing::warn!(error = %e, index = applied, "snapshot skipped");
                            None
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialize state for a snapshot");
                    None
                }
            };
            let _ = events.send(Event::SnapshotSaved(saved));
        });
    }

    /// A snapshot taken off the loop finished (`None`: failed or superseded).
    pub(super) fn on_snapshot_saved(&mut self, saved: Option<(u64, u64)>) {
        self.snapshot_running = false;
        if let Some((index, bytes)) = saved
            && index > self.last_snapshot_index
        {
            self.last_snapshot_index = index;
            self.last_snapshot_bytes = bytes;
        }
        let applied = self.state_applied_index();
        if self.snapshot_wanted && applied > self.last_snapshot_index {
            self.start_snapshot(applied);
        }
    }

    pub(super) fn state_applied_index(&self) -> u64 {
        match self.state.read() {
            Ok(s) => s.applied_index,
            Err(poisoned) => poisoned.into_inner().applied_index,
        }
    }
}
