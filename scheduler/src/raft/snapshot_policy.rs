//! When a replica snapshots its state and compacts its log.
//!
//! A snapshot costs time proportional to the whole state, so taking one every fixed
//! number of entries makes a large state pay that cost again and again for a few small
//! writes (quadratic overall). Like an LSM's size ratio or Redis' AOF rewrite, a snapshot
//! is due once the log since the last one is at least `every` entries *and* holds at
//! least as many bytes as that snapshot: total snapshot work then stays proportional to
//! the bytes written. The log never grows past `MAX_DEFER` × `every` entries, so restart
//! replay and catch-up stay bounded however large the state is. A snapshot smaller than
//! `CHEAP_BYTES` is never deferred: it costs next to nothing.

/// How many times `every` entries a snapshot may be deferred for being costly.
pub const MAX_DEFER: u64 = 4;
/// Snapshots below this size are taken every `every` entries.
pub const CHEAP_BYTES: u64 = 1024 * 1024;

/// Whether to snapshot now, given what was applied since the last snapshot.
pub fn snapshot_due(every: u64, entries_since: u64, log_bytes_since: u64, last_snapshot_bytes: u64) -> bool {
    entries_since >= every
        && (last_snapshot_bytes < CHEAP_BYTES
            || log_bytes_since >= last_snapshot_bytes
            || entries_since >= MAX_DEFER * every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_state_snapshots_every_n_entries() {
        assert!(!snapshot_due(100, 99, 1_000_000, 0));
        assert!(snapshot_due(100, 100, 0, 0));
        assert!(snapshot_due(100, 100, 5_000, 4_000));
        assert!(snapshot_due(100, 100, 0, CHEAP_BYTES - 1));
        assert!(!snapshot_due(100, 100, 0, CHEAP_BYTES));
    }

    #[test]
    fn a_large_state_waits_until_the_log_is_as_large_but_not_forever() {
        let state = 10_000_000;
        assert!(!snapshot_due(100, 100, 40_000, state));
        assert!(!snapshot_due(100, 399, 159_600, state));
        assert!(snapshot_due(100, 400, 160_000, state), "capped at MAX_DEFER × every");
        assert!(snapshot_due(100, 250, state, state), "log as large as the snapshot");
    }
}
