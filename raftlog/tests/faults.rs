//! The disk fault hook, and what the store does under a slow or failing disk:
//! - the ready loop's writes (`stage`, `sync`) go on while a snapshot's data is being
//!   written (regression: `save_snapshot` held `staged` through its write and fsync);
//! - the snapshot's hard state, planned after those writes, never undoes their vote;
//! - a failed write fails every later one until the store is reopened, and the reopened
//!   store holds everything that was acknowledged.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TempLog, append, conf_state, entries, hard_state};
use gantry_raftlog::{DiskFaults, Error, FailOn, Fault, LogWrite, RaftLog, WriteKind};
use raft::Storage;

/// Long enough for any loaded machine; a blocked write never returns at all.
const WAIT: Duration = Duration::from_secs(20);

/// A hook that holds every snapshot data write until released, and says when one is held.
fn barrier_on_snapshot_writes() -> (DiskFaults, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let faults = DiskFaults::callback(move |kind| {
        if kind == WriteKind::Snapshot {
            let _ = entered_tx.lock().map(|tx| tx.send(()));
            let _ = release_rx.lock().map(|rx| rx.recv_timeout(WAIT * 3));
        }
        Fault::default()
    });
    (faults, entered_rx, release_tx)
}

#[test]
fn regression_appends_complete_while_a_snapshot_save_is_in_progress() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("raft-log");
    let (faults, entered, release) = barrier_on_snapshot_writes();
    let log = RaftLog::open_with_faults(&path, &[1], faults).expect("open");
    log.persist(&LogWrite { entries: entries(1, 10, 1), hard_state: Some(hard_state(1, 1, 10)), snapshot: None })
        .expect("persist");

    let saver = {
        let log = log.clone();
        std::thread::spawn(move || log.save_snapshot(8, conf_state(&[1]), vec![7; 1 << 20]))
    };
    entered.recv_timeout(WAIT).expect("the snapshot's data write reaches the hook");

    // What the ready loop does meanwhile: stage a Ready (new entries and a new term and
    // vote), and the writer thread syncs it.
    let (done_tx, done_rx) = mpsc::channel();
    {
        let log = log.clone();
        std::thread::spawn(move || {
            let staged = log.stage(&LogWrite {
                entries: entries(11, 12, 2),
                hard_state: Some(hard_state(2, 3, 10)),
                snapshot: None,
            });
            let _ = done_tx.send((staged, log.sync()));
        });
    }
    let done = done_rx.recv_timeout(WAIT);
    release.send(()).expect("release the snapshot write");
    let (staged, synced) = done.expect("stage and sync must not wait for a snapshot save in progress");
    staged.expect("stage");
    synced.expect("sync");
    saver.join().expect("saver thread").expect("save_snapshot");

    // After a restart: the snapshot, the entries after it, and the newer term and vote
    // (the snapshot's hard state was planned after them, so it carries them).
    drop(log);
    let log = RaftLog::open(&path, &[]).expect("reopen");
    assert_eq!(log.snapshot_index(), 8);
    assert_eq!(log.latest_snapshot().get_data().len(), 1 << 20);
    assert_eq!(log.first_index(), Ok(9));
    assert_eq!(log.last_index(), 12);
    let hs = log.hard_state();
    assert_eq!((hs.term, hs.vote, hs.commit), (2, 3, 10));
}

#[test]
fn an_interrupted_snapshot_save_leaves_the_previous_snapshot_and_no_orphan_data() {
    let store = TempLog::new(&[1]);
    store.log.persist(&append(entries(1, 10, 1))).expect("persist");
    store.log.save_snapshot(4, conf_state(&[1]), b"at 4".to_vec()).expect("first snapshot");
    let path = store.path();
    drop(store.log);

    // A store whose every snapshot write fails: the data may reach the file, the
    // metadata never does.
    let failing = DiskFaults::callback(|_| Fault { fail: Some(FailOn::Snapshot), ..Fault::default() });
    let log = RaftLog::open_with_faults(&path, &[], failing).expect("open");
    let err = log.save_snapshot(8, conf_state(&[1]), b"at 8".to_vec()).expect_err("injected failure");
    assert!(matches!(err, Error::InjectedFault { kind: WriteKind::Snapshot }), "{err:?}");
    assert!(err.is_fatal());
    // Poisoned: nothing more is written until the store is reopened.
    assert!(matches!(log.stage(&append(entries(11, 11, 1))), Err(Error::Failed)));
    assert!(matches!(log.sync(), Err(Error::Failed)));
    drop(log);

    let log = RaftLog::open(&path, &[]).expect("reopen");
    assert_eq!(log.snapshot_index(), 4);
    assert_eq!(log.latest_snapshot().get_data(), b"at 4");
    assert_eq!(log.last_index(), 10);
    // The next snapshot is saved normally over the orphan's index.
    log.save_snapshot(8, conf_state(&[1]), b"at 8 again".to_vec()).expect("snapshot after reopen");
    drop(log);
    let log = RaftLog::open(&path, &[]).expect("reopen again");
    assert_eq!(log.latest_snapshot().get_data(), b"at 8 again");
}

#[test]
fn a_failed_sync_fails_every_later_write_and_reopening_keeps_what_was_synced() {
    let store = TempLog::new(&[1]);
    let path = store.path();
    drop(store.log);
    let fail = Arc::new(Mutex::new(false));
    let faults = {
        let fail = fail.clone();
        DiskFaults::callback(move |_| Fault {
            fail: fail.lock().map(|f| *f).unwrap_or(false).then_some(FailOn::All),
            ..Fault::default()
        })
    };
    let log = RaftLog::open_with_faults(&path, &[], faults).expect("open");
    log.stage(&append(entries(1, 5, 1))).expect("stage");
    log.sync().expect("sync");
    *fail.lock().expect("lock") = true;
    log.stage(&append(entries(6, 7, 1))).expect("stage");
    assert!(matches!(log.sync(), Err(Error::InjectedFault { kind: WriteKind::Log })));
    *fail.lock().expect("lock") = false;
    // Healing the disk does not heal the store: a failed fsync may have lost pages.
    assert!(matches!(log.stage(&append(entries(8, 8, 1))), Err(Error::Failed)));
    assert!(matches!(log.sync(), Err(Error::Failed)));
    drop(log);

    let log = RaftLog::open(&path, &[]).expect("reopen");
    assert!(log.last_index() >= 5, "synced entries survive: last index {}", log.last_index());
    assert_eq!(log.term(5), Ok(1));
}
