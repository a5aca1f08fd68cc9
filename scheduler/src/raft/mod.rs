//! Replication: raft-rs driven by one tokio task per replica, a durable fjall log, and
//! tonic transport between replicas.
//!
//! [`RaftHandle`] is what the rest of the scheduler uses: `propose` a command (forwarded
//! to the leader when this replica is not it) and get the applied outcome back once a
//! majority has the entry on disk; `read_barrier` before a linearizable read.
//!
//! Reads use raft's ReadIndex (`ReadOnlyOption::Safe`), not a leader lease: a lease is
//! only safe if clocks never drift more than the lease margin, and a paused VM or a
//! stalled process breaks that silently. ReadIndex costs one heartbeat round per read
//! batch and is correct under any timing. Followers serve linearizable reads too (raft
//! forwards the ReadIndex to the leader, then the follower waits until it has applied
//! that index).

mod catchup;
mod counters;
mod handle;
mod logger;
mod persist;
mod service;
mod snapshot_policy;
mod task;
mod transport;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gantry_raftlog::{DiskFaults, RaftLog};
use raft::{RawNode, ReadOnlyOption};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::ClientTlsConfig;

pub use counters::CountersSnapshot;
pub use handle::RaftHandle;
pub use service::{PeerPolicy, RaftPeerService, propose_error_status};
pub use transport::{MAX_MESSAGE_BYTES, PEER_CONNECTION_WINDOW, PEER_STREAM_WINDOW};

use crate::state::State;

/// Why a proposal or read did not produce an outcome. All of these are "try again"
/// errors (gRPC `Unavailable`): none means the command was rejected.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    #[error("no leader elected yet")]
    NoLeader,
    #[error("replica {0} is the leader")]
    NotLeader(u64),
    #[error("leadership changed before the write committed; its outcome is unknown (retry with the same request id)")]
    LeadershipLost,
    #[error("raft dropped the proposal: {0}")]
    Dropped(String),
    #[error("the write could not be sent to the leader")]
    NotDelivered,
    #[error("timed out waiting for the cluster")]
    Timeout,
    #[error("replica is shutting down")]
    Shutdown,
    #[error("cannot encode or decode a command: {0}")]
    Codec(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    PreCandidate,
    Unreachable,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Leader => "LEADER",
            Role::Follower => "FOLLOWER",
            Role::Candidate => "CANDIDATE",
            Role::PreCandidate => "PRE_CANDIDATE",
            Role::Unreachable => "UNREACHABLE",
        }
    }
}

/// What the ready loop publishes after each Ready, for handles to route requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaView {
    pub role: Role,
    pub leader_id: u64,
    pub term: u64,
}

#[derive(Debug, Clone)]
pub struct RaftStatus {
    pub id: u64,
    pub leader_id: u64,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub role: Role,
    pub snapshot_index: u64,
    pub first_index: u64,
    pub last_index: u64,
    /// (id, address, role as seen here, match index, reachable)
    pub replicas: Vec<(u64, String, Role, u64, bool)>,
}

pub struct RaftOptions {
    pub id: u64,
    /// Other replicas: (id, URL of their peer listener).
    pub peers: Vec<(u64, String)>,
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    pub snapshot_every: u64,
    /// The raft log's disk fault hook (`[raft] fault_file`), for fault-injection tests.
    pub fault_file: Option<PathBuf>,
    pub client_tls: Option<ClientTlsConfig>,
}

/// Opens the log in `data_dir`, restores the state from the latest snapshot, and
/// starts the ready loop, the log writer and the peer senders.
pub fn start(
    opts: RaftOptions,
    data_dir: &Path,
    cancel: CancellationToken,
) -> anyhow::Result<(RaftHandle, tokio::task::JoinHandle<()>)> {
    std::fs::create_dir_all(data_dir)?;
    let mut voters: Vec<u64> = opts.peers.iter().map(|(id, _)| *id).collect();
    voters.push(opts.id);
    voters.sort_unstable();
    let log_dir = data_dir.join("raft-log");
    // Before ADR 0002 the log was `raft.redb`. Opening an empty log beside it would start
    // this replica from nothing (a single replica would lose its whole state): refuse.
    let old_log = data_dir.join("raft.redb");
    anyhow::ensure!(
        log_dir.exists() || !old_log.exists(),
        "{} is a raft log of an older Gantry (redb); this version keeps the log in {}. \
         In a cluster, move the old file away and restart: the replica rejoins and catches up \
         from the leader's snapshot",
        old_log.display(),
        log_dir.display()
    );
    let faults = match &opts.fault_file {
        Some(path) => {
            tracing::warn!(path = %path.display(), "raft log disk fault hook configured (a testing aid)");
            DiskFaults::file(path)
        }
        None => DiskFaults::none(),
    };
    let log = RaftLog::open_with_faults(&log_dir, &voters, faults)?;
    let catch_up = catchup::CatchUpFloor::load(data_dir)?;
    if catch_up.floor() > 0 {
        tracing::warn!(
            floor = catch_up.floor(),
            "catching up after a lost disk: not voting until the log reaches the floor"
        );
    }
    let snapshot = log.latest_snapshot();
    let mut state = if snapshot.get_data().is_empty() {
        State::default()
    } else {
        serde_json::from_slice::<State>(snapshot.get_data())?
    };
    state.applied_index = snapshot.get_metadata().index;
    let config = raft::Config {
        id: opts.id,
        election_tick: opts.election_ticks,
        heartbeat_tick: opts.heartbeat_ticks,
        applied: snapshot.get_metadata().index,
        max_size_per_msg: 4 * 1024 * 1024,
        // A small window makes the leader batch: while 4 appends are unacknowledged, new
        // entries wait and leave together in the next one (one message, one fsync per
        // follower) instead of one message per entry.
        max_inflight_msgs: 4,
        check_quorum: true,
        pre_vote: true,
        read_only_option: ReadOnlyOption::Safe,
        ..Default::default()
    };
    config.validate()?;
    let raw = RawNode::new(&config, log.clone(), &logger::raft_logger(opts.id))?;

    let state = Arc::new(RwLock::new(state));
    let (applied_tx, applied_rx) = watch::channel(snapshot.get_metadata().index);
    let initial_view = ReplicaView { role: Role::Follower, leader_id: 0, term: raw.raft.term };
    let (view_tx, view_rx) = watch::channel(initial_view);
    let (req_tx, req_rx) = mpsc::channel(16 * 1024);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let counters = Arc::new(counters::Counters::default());
    let transport =
        transport::Transport::start(opts.id, &opts.peers, opts.client_tls.clone(), ev_tx.clone(), counters.clone())?;
    let persist_tx = persist::spawn(log.clone(), transport.clone(), ev_tx.clone(), counters.clone());
    let task = task::RaftTask::new(
        task::TaskConfig {
            id: opts.id,
            peers: opts.peers.clone(),
            tick: opts.tick,
            snapshot_every: opts.snapshot_every,
            read_timeout: Duration::from_secs(5),
        },
        task::TaskParts {
            raw,
            log,
            catch_up,
            state: state.clone(),
            applied_tx,
            view_tx,
            transport: transport.clone(),
            persist_tx,
            requests: req_rx,
            events: ev_rx,
            events_tx: ev_tx.clone(),
            counters: counters.clone(),
        },
    );
    let join = tokio::spawn(task.run(cancel));
    let handle = RaftHandle::new(opts.id, req_tx, ev_tx, state, applied_rx, view_rx, counters);
    Ok((handle, join))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> RaftOptions {
        RaftOptions {
            id: 1,
            peers: Vec::new(),
            tick: Duration::from_millis(50),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_every: 100,
            fault_file: None,
            client_tls: None,
        }
    }

    #[tokio::test]
    async fn refuses_a_data_directory_with_only_the_old_redb_log() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("raft.redb"), b"old log")?;
        let cancel = CancellationToken::new();
        let err = start(options(), dir.path(), cancel.clone()).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("older Gantry"), "got {err:?}");
        assert!(!dir.path().join("raft-log").exists(), "nothing may be created beside the old log");

        // A directory that has the new log too (already upgraded) starts.
        let fresh = tempfile::tempdir()?;
        let (_, join) = start(options(), fresh.path(), cancel.clone())?;
        std::fs::write(fresh.path().join("raft.redb"), b"leftover")?;
        cancel.cancel();
        join.await?;
        let again = CancellationToken::new();
        let (_, join) = start(options(), fresh.path(), again.clone())?;
        again.cancel();
        join.await?;
        Ok(())
    }
}
