//! A single-node `raft::RawNode<RaftLog>` driven through the async-ready protocol, then
//! restarted from the same file: once with every `Ready` persisted before
//! `advance_append_async`, once pipelined (`stage`, then a lagging `sync`).

mod common;

use common::TempLog;
use gantry_raftlog::{LogWrite, RaftLog};
use raft::eraftpb::{Entry, EntryType, Message, Snapshot};
use raft::{Config, RawNode, StateRole, Storage};

/// The replicated application: the data of every applied normal entry, in order.
#[derive(Debug, Default, PartialEq)]
struct App {
    applied_index: u64,
    values: Vec<String>,
}

impl App {
    fn restore(&mut self, snapshot: &Snapshot) {
        let data = String::from_utf8_lossy(snapshot.get_data());
        self.values = data.lines().map(str::to_owned).collect();
        self.applied_index = snapshot.get_metadata().index;
    }

    fn snapshot_data(&self) -> Vec<u8> {
        self.values.join("\n").into_bytes()
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            self.applied_index = entry.index;
            // The leader's empty entry on election carries nothing to apply.
            if entry.get_entry_type() == EntryType::EntryNormal && !entry.data.is_empty() {
                self.values.push(String::from_utf8_lossy(&entry.data).into_owned());
            }
        }
    }
}

fn node(log: &RaftLog, applied: u64) -> RawNode<RaftLog> {
    let config = Config { id: 1, election_tick: 10, heartbeat_tick: 3, applied, ..Config::default() };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    RawNode::new(&config, log.clone(), &logger).expect("raw node")
}

/// Single node: nothing to send. A real loop hands these to the transport.
fn send(messages: Vec<Message>) {
    assert!(messages.is_empty(), "single node sent {messages:?}");
}

/// Handles every pending `Ready` in the order raft documents.
fn drain_ready(node: &mut RawNode<RaftLog>, app: &mut App) {
    while node.has_ready() {
        let mut ready = node.ready();
        // 1. messages that may go out before persisting (a leader's appends)
        send(ready.take_messages());
        // 2. a snapshot from the leader restores the application
        if !ready.snapshot().is_empty() {
            app.restore(ready.snapshot());
        }
        // 3. committed entries (raft only hands out ones already persisted)
        app.apply(ready.take_committed_entries());
        // 4 + 5. snapshot, entries and hard state: one fsynced transaction
        node.store().persist(&LogWrite::from_ready(&mut ready)).expect("persist ready");
        // 6. messages that must wait until the above is durable (votes, acks)
        send(ready.take_persisted_messages());
        let number = ready.number();
        node.advance_append_async(ready);
        node.on_persist_ready(number);
        node.advance_apply_to(app.applied_index);
    }
}

fn propose(node: &mut RawNode<RaftLog>, app: &mut App, values: &[&str]) {
    for value in values {
        node.propose(vec![], value.as_bytes().to_vec()).expect("propose");
    }
    drain_ready(node, app);
}

#[test]
fn committed_entries_survive_a_restart() {
    let store = TempLog::new(&[1]);
    let mut app = App::default();
    {
        let mut node = node(&store.log, 0);
        node.campaign().expect("campaign");
        drain_ready(&mut node, &mut app);
        assert_eq!(node.raft.state, StateRole::Leader);

        propose(&mut node, &mut app, &["a", "b", "c"]);
        assert_eq!(app.values, ["a", "b", "c"]);
        let last = store.log.last_index();
        assert_eq!(app.applied_index, last);
        assert_eq!(store.log.hard_state().commit, last);
    }

    let store = store.reopen();
    let log = &store.log;
    assert_eq!(log.hard_state().commit, log.last_index());
    let first = log.first_index().expect("first index");
    let data: Vec<Vec<u8>> = log
        .entries(first, log.last_index() + 1, None, raft::GetEntriesContext::empty(false))
        .expect("entries")
        .into_iter()
        .map(|e| e.data.to_vec())
        .filter(|data| !data.is_empty())
        .collect();
    assert_eq!(data, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);

    // Restarted, raft replays the committed entries into a fresh application.
    let mut replayed = App::default();
    let mut node = node(log, 0);
    drain_ready(&mut node, &mut replayed);
    assert_eq!(replayed, app);
}

#[test]
fn restart_from_a_snapshot_replays_only_later_entries() {
    let store = TempLog::new(&[1]);
    let mut app = App::default();
    {
        let mut node = node(&store.log, 0);
        node.campaign().expect("campaign");
        drain_ready(&mut node, &mut app);
        propose(&mut node, &mut app, &["a", "b"]);

        let conf_state = store.log.conf_state();
        store.log.save_snapshot(app.applied_index, conf_state, app.snapshot_data()).expect("save snapshot");
        assert_eq!(store.log.first_index(), Ok(app.applied_index + 1));

        // Raft keeps working on the compacted log.
        propose(&mut node, &mut app, &["c", "d"]);
        assert_eq!(app.values, ["a", "b", "c", "d"]);
    }

    let store = store.reopen();
    let snapshot = store.log.latest_snapshot();
    let mut restarted = App::default();
    restarted.restore(&snapshot);
    assert_eq!(restarted.values, ["a", "b"]);

    let mut node = node(&store.log, snapshot.get_metadata().index);
    drain_ready(&mut node, &mut restarted);
    assert_eq!(restarted, app);

    // And it is still a working single-node cluster.
    node.campaign().expect("campaign");
    drain_ready(&mut node, &mut restarted);
    propose(&mut node, &mut restarted, &["e"]);
    assert_eq!(restarted.values, ["a", "b", "c", "d", "e"]);
}

/// The pipelined half of the loop: stages and advances every pending `Ready` without
/// waiting for the disk. Returns the number of the last one staged.
fn stage_ready(node: &mut RawNode<RaftLog>, app: &mut App, handed_out: &mut Vec<u64>) -> Option<u64> {
    let mut last = None;
    while node.has_ready() {
        let mut ready = node.ready();
        send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            app.restore(ready.snapshot());
        }
        app.apply(ready.take_committed_entries());
        let write = LogWrite::from_ready(&mut ready);
        handed_out.extend(write.entries.iter().map(|e| e.index));
        node.store().stage(&write).expect("stage");
        // A real loop holds these back until the sync that makes this Ready durable.
        send(ready.take_persisted_messages());
        last = Some(ready.number());
        node.advance_append_async(ready);
        node.advance_apply_to(app.applied_index);
    }
    last
}

/// The pipelined loop: each `Ready` is staged and advanced at once; the fsync (`sync`)
/// lags behind, as on a writer thread, and only then are the `Ready`s reported persisted.
#[test]
fn pipelined_ready_loop_with_a_lagging_sync() {
    let store = TempLog::new(&[1]);
    let mut app = App::default();
    let mut handed_out = Vec::new();
    {
        let mut node = node(&store.log, 0);
        node.campaign().expect("campaign");
        let mut unsynced = None;
        for round in 0..10 {
            if round < 9 {
                node.propose(vec![], format!("v{round}").into_bytes()).expect("propose");
            }
            unsynced = stage_ready(&mut node, &mut app, &mut handed_out).or(unsynced);
            if round % 3 == 2 || round == 9 {
                store.log.sync().expect("sync");
                if let Some(number) = unsynced.take() {
                    node.on_persist_ready(number);
                }
                unsynced = stage_ready(&mut node, &mut app, &mut handed_out);
            }
        }
        assert_eq!(unsynced, None, "the last sync left nothing behind");
    }

    // Had the entries not been readable at advance time, raft would reuse indexes here.
    let expected: Vec<u64> = (1..=handed_out.len() as u64).collect();
    assert_eq!(handed_out, expected);
    let values: Vec<String> = (0..9).map(|round| format!("v{round}")).collect();
    assert_eq!(app.values, values);

    let store = store.reopen();
    assert_eq!(store.log.hard_state().commit, store.log.last_index());
    let mut replayed = App::default();
    let mut node = node(&store.log, 0);
    drain_ready(&mut node, &mut replayed);
    assert_eq!(replayed, app);
}
