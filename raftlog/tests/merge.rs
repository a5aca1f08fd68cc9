//! `LogWrite::merge`: persisting consecutive writes one by one leaves the store exactly as
//! persisting their merge does, on disk as in memory; and so does staging them one by one
//! and syncing once.

mod common;

use common::{TempLog, append, conf_state, entries, hard_state, observe, snapshot};
use gantry_raftlog::LogWrite;
use proptest::prelude::*;

/// Random choices from which `build` makes one write raft could have produced.
#[derive(Debug, Clone)]
struct Step {
    /// `(distance past the last index, term bump, voters)` of a snapshot from the leader.
    snapshot: Option<(u64, bool, u8)>,
    /// `(how far back from the end the entries start, how many, term bump)`.
    entries: (u64, u64, bool),
    /// `(vote, how far the commit index advances)`.
    hard_state: Option<(u64, u64)>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        proptest::option::weighted(0.15, (1..4u64, any::<bool>(), 1..8u8)),
        (0..4u64, 0..4u64, any::<bool>()),
        proptest::option::of((0..3u64, 0..4u64)),
    )
        .prop_map(|(snapshot, entries, hard_state)| Step { snapshot, entries, hard_state })
}

/// The log as raft sees it while producing writes: enough to keep them valid (entries
/// contiguous, never replacing committed ones, terms that never go down).
struct Model {
    snapshot_index: u64,
    last_index: u64,
    commit: u64,
    term: u64,
}

impl Model {
    fn build(&mut self, step: &Step) -> LogWrite {
        let mut write = LogWrite::default();
        if let Some((distance, bump, voters)) = step.snapshot {
            self.term += u64::from(bump);
            let index = self.last_index + distance;
            let voters: Vec<u64> = (1..=3).filter(|id| voters & (1 << (id - 1)) != 0).collect();
            write.snapshot = Some(snapshot(index, self.term, &voters, &index.to_be_bytes()));
            (self.snapshot_index, self.last_index, self.commit) = (index, index, index);
        }

        let (back, count, bump) = step.entries;
        if count > 0 {
            // Only uncommitted entries can be replaced, and a replacement has a newer term.
            let lowest = self.commit.max(self.snapshot_index) + 1;
            let first = (self.last_index + 1).saturating_sub(back).max(lowest);
            self.term += u64::from(bump || first <= self.last_index);
            let last = first + count - 1;
            write.entries = entries(first, last, self.term);
            self.last_index = last;
        }

        if let Some((vote, advance)) = step.hard_state {
            self.commit = (self.commit + advance).min(self.last_index);
            write.hard_state = Some(hard_state(self.term, vote, self.commit));
        }
        write
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn merged_write_equals_writes_one_by_one(
        base in 0..6u64,
        steps in proptest::collection::vec(step(), 1..6),
    ) {
        let one_by_one = TempLog::new(&[1]);
        let merged = TempLog::new(&[1]);
        let staged = TempLog::new(&[1]);
        for store in [&one_by_one, &merged, &staged] {
            store.log.persist(&append(entries(1, base, 1))).expect("base log");
        }

        let mut model = Model { snapshot_index: 0, last_index: base, commit: 0, term: 1 };
        let writes: Vec<LogWrite> = steps.iter().map(|step| model.build(step)).collect();
        let mut combined = LogWrite::default();
        for write in &writes {
            one_by_one.log.persist(write).expect("persist one write");
            combined.merge(write.clone());
            staged.log.stage(write).expect("stage one write");
        }
        merged.log.persist(&combined).expect("persist merged write");

        let expected = observe(&one_by_one.log);
        prop_assert_eq!(&observe(&merged.log), &expected);
        prop_assert_eq!(&observe(&staged.log), &expected);
        staged.log.sync().expect("sync staged writes");
        prop_assert_eq!(&observe(&merged.reopen().log), &expected);
        prop_assert_eq!(observe(&staged.reopen().log), expected);
    }
}

#[test]
fn conf_state_from_a_merged_snapshot_is_the_latest() {
    let mut write = LogWrite { snapshot: Some(snapshot(5, 1, &[1, 2], b"")), ..LogWrite::default() };
    write.merge(LogWrite { snapshot: Some(snapshot(9, 2, &[1, 2, 3], b"")), ..LogWrite::default() });
    let store = TempLog::new(&[1]);
    store.log.persist(&write).expect("persist");
    assert_eq!(store.log.conf_state(), conf_state(&[1, 2, 3]));
    assert_eq!(store.log.snapshot_index(), 9);
}
