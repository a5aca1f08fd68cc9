//! What a store held before it was dropped is what it holds after reopening.

mod common;

use common::{TempLog, append, conf_state, entries, entry, hard_state, observe, snapshot};
use gantry_raftlog::{LogWrite, RaftLog};
use raft::Storage;

#[test]
fn fresh_store_reopens_with_its_initial_voters() {
    let store = TempLog::new(&[1, 2, 3]);
    let before = observe(&store.log);
    // The voters given on reopen are ignored: the file already has its membership.
    let store = store.reopen();
    assert_eq!(observe(&store.log), before);
    assert_eq!(store.log.conf_state(), conf_state(&[1, 2, 3]));
}

#[test]
fn entries_and_hard_state_survive_reopen() {
    let store = TempLog::new(&[1]);
    store
        .log
        .persist(&LogWrite { entries: entries(1, 5, 1), hard_state: Some(hard_state(1, 1, 2)), snapshot: None })
        .expect("persist");
    store
        .log
        .persist(&LogWrite {
            entries: vec![entry(4, 2), entry(5, 2), entry(6, 2)],
            hard_state: Some(hard_state(2, 1, 4)),
            snapshot: None,
        })
        .expect("persist conflicting suffix");
    let before = observe(&store.log);

    let store = store.reopen();
    assert_eq!(observe(&store.log), before);
    assert_eq!(store.log.term(3), Ok(1));
    assert_eq!(store.log.term(4), Ok(2));
    assert_eq!(store.log.last_index(), 6);
}

#[test]
fn saved_snapshot_and_compaction_survive_reopen() {
    let store = TempLog::new(&[1]);
    store.log.persist(&append(entries(1, 8, 3))).expect("persist");
    store.log.save_snapshot(5, conf_state(&[1, 2]), b"state at 5".to_vec()).expect("save snapshot");
    let before = observe(&store.log);

    let store = store.reopen();
    assert_eq!(observe(&store.log), before);
    assert_eq!(store.log.latest_snapshot(), snapshot(5, 3, &[1, 2], b"state at 5"));
    assert_eq!(store.log.first_index(), Ok(6));
    assert_eq!(store.log.term(5), Ok(3));
    assert_eq!(store.log.conf_state(), conf_state(&[1, 2]));
}

#[test]
fn received_snapshot_survives_reopen() {
    let store = TempLog::new(&[]);
    assert!(!store.log.initial_state().expect("state").initialized());
    store
        .log
        .persist(&LogWrite {
            entries: vec![entry(11, 4)],
            hard_state: None,
            snapshot: Some(snapshot(10, 4, &[1, 2, 3], b"leader state")),
        })
        .expect("persist snapshot");
    let before = observe(&store.log);

    let store = store.reopen();
    assert_eq!(observe(&store.log), before);
    assert_eq!(store.log.hard_state(), hard_state(4, 0, 10));
    assert_eq!(store.log.snapshot_index(), 10);
    assert_eq!(store.log.last_index(), 11);
}

#[test]
fn rejected_write_leaves_the_file_unchanged() {
    let store = TempLog::new(&[1]);
    store.log.persist(&append(entries(1, 3, 1))).expect("persist");
    let before = observe(&store.log);
    store.log.persist(&append(vec![entry(7, 1)])).expect_err("hole");

    let store = store.reopen();
    assert_eq!(observe(&store.log), before);
}

#[test]
fn clones_share_one_store() {
    let store = TempLog::new(&[1]);
    let clone = store.log.clone();
    clone.persist(&append(entries(1, 2, 1))).expect("persist");
    assert_eq!(store.log.last_index(), 2);
}

#[test]
fn staged_writes_are_visible_at_once_and_durable_after_sync() {
    let store = TempLog::new(&[1]);
    store
        .log
        .stage(&LogWrite { entries: entries(1, 3, 1), hard_state: Some(hard_state(1, 1, 2)), snapshot: None })
        .expect("stage");
    store.log.stage(&append(entries(4, 5, 1))).expect("stage");
    assert_eq!(store.log.last_index(), 5);
    assert_eq!(store.log.hard_state(), hard_state(1, 1, 2));
    store.log.sync().expect("sync");
    let before = observe(&store.log);

    let store = store.reopen();
    assert_eq!(observe(&store.log), before);
}

#[test]
fn entries_replaced_before_the_sync_are_replaced_on_disk() {
    // A follower stages a leader's entries 1..=4, then a new leader's conflicting 3..=3
    // arrives before the log writer syncs: one sync must store 1, 2 and the new 3 only.
    let store = TempLog::new(&[1]);
    store.log.stage(&append(entries(1, 4, 1))).expect("stage");
    store.log.stage(&append(vec![entry(3, 2)])).expect("stage conflicting");
    store.log.sync().expect("sync");
    let before = observe(&store.log);
    assert_eq!(before.last_index, 3);

    let store = store.reopen();
    let after = observe(&store.log);
    assert_eq!(after, before);
    assert_eq!(after.entries.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(), [(1, 1), (2, 1), (3, 2)]);
}

#[test]
fn staged_writes_not_synced_are_lost_like_in_a_crash() {
    let store = TempLog::new(&[1]);
    store.log.persist(&append(entries(1, 2, 1))).expect("persist");
    let durable = observe(&store.log);
    store.log.stage(&append(entries(3, 4, 1))).expect("stage");
    assert_eq!(store.log.last_index(), 4);

    let store = store.reopen();
    assert_eq!(observe(&store.log), durable);
}

#[test]
fn synchronous_writes_commit_staged_ones_first() {
    let store = TempLog::new(&[1]);
    store.log.stage(&append(entries(1, 6, 2))).expect("stage");
    // Planned against the staged log: entry 5 exists only there.
    store.log.save_snapshot(5, conf_state(&[1]), b"state at 5".to_vec()).expect("save snapshot");
    store.log.stage(&append(vec![entry(7, 2)])).expect("stage");
    store.log.persist(&LogWrite { hard_state: Some(hard_state(2, 1, 7)), ..LogWrite::default() }).expect("persist");
    let before = observe(&store.log);
    assert_eq!(before.first_index, 6);
    assert_eq!(before.last_index, 7);

    let store = store.reopen();
    assert_eq!(observe(&store.log), before);
}

#[test]
fn rejected_stage_changes_nothing() {
    let store = TempLog::new(&[1]);
    store.log.stage(&append(entries(1, 2, 1))).expect("stage");
    let before = observe(&store.log);
    store.log.stage(&append(vec![entry(9, 1)])).expect_err("hole");
    assert_eq!(observe(&store.log), before);
    store.log.sync().expect("sync");
    assert_eq!(observe(&store.reopen().log), before);
}

/// Stores written before snapshot data had per-index keys kept it under `"data"`: it is
/// still restored, and replaced by the next snapshot.
#[test]
fn snapshot_data_under_the_old_key_is_restored_and_replaced() {
    let store = TempLog::new(&[1]);
    store.log.persist(&append(entries(1, 8, 3))).expect("persist");
    store.log.save_snapshot(5, conf_state(&[1]), b"state at 5".to_vec()).expect("save snapshot");
    let path = store.path();
    let TempLog { log, dir } = store;
    drop(log);
    {
        // Move the data to where older versions kept it.
        let keyspace = fjall::Config::new(&path).open().expect("open keyspace");
        let partition =
            keyspace.open_partition("snapshot", fjall::PartitionCreateOptions::default()).expect("partition");
        let new_key = format!("data-{:020}", 5);
        let data = partition.get(&new_key).expect("read").expect("data under its index");
        partition.insert("data", data).expect("insert");
        partition.remove(new_key).expect("remove");
        keyspace.persist(fjall::PersistMode::SyncAll).expect("persist");
    }
    let store = TempLog { log: RaftLog::open(&path, &[]).expect("reopen"), dir };
    assert_eq!(store.log.latest_snapshot().get_data(), b"state at 5");
    store.log.save_snapshot(7, conf_state(&[1]), b"state at 7".to_vec()).expect("next snapshot");
    let store = store.reopen();
    assert_eq!(store.log.latest_snapshot().get_data(), b"state at 7");
}
