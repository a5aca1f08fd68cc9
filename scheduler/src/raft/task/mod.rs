//! The ready loop: the one task that owns a replica's `RawNode`.
//!
//! ```text
//!  clients ─Request─▶ ┌───────────┐ ─messages──────────▶ peers
//!  peers ──Step─────▶ │ RaftTask  │ ─PersistJob─▶ log writer ─(fsync)─▶ persisted msgs, Persisted(n)
//!  timer ──tick─────▶ └───────────┘ ─committed entries─▶ apply(State) ─▶ proposer's oneshot
//! ```
//!
//! Each `Ready` is handled in the order raft-rs prescribes: send messages, install a
//! snapshot, apply committed entries, hand entries + hard state to the log writer
//! (messages that need them durable go out after the fsync), `advance_append_async`.
//!
//! This module holds the task's state and its inputs; the rest, by concern:
//! `ready` (one Ready), `apply` (committed entries, conf changes, installed snapshots),
//! `snapshot` (taking snapshots off the loop), `recovery` (a replica that lost its
//! disk), `status` (what the task publishes).

mod apply;
mod ready;
mod recovery;
mod snapshot;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use gantry_raftlog::RaftLog;
use raft::eraftpb::{ConfChange, ConfState, Message};
use raft::{RawNode, SnapshotStatus, StateRole};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::catchup::CatchUpFloor;
use super::counters::Counters;
use super::persist::PersistJob;
use super::transport::Transport;
use super::{ProposeError, RaftStatus, ReplicaView};
use crate::state::{Outcome, State};

pub type ProposeReply = oneshot::Sender<Result<(u64, Outcome), ProposeError>>;

/// Requests from handles (clients of this replica).
pub enum Request {
    Propose {
        command: Vec<u8>,
        reply: ProposeReply,
    },
    /// Membership change (only used to re-add a replica that lost its data).
    ProposeConfChange {
        change: ConfChange,
        reply: ProposeReply,
    },
    ReadIndex {
        reply: oneshot::Sender<Result<u64, ProposeError>>,
    },
    Status {
        reply: oneshot::Sender<RaftStatus>,
    },
}

/// Exit status of a replica whose log store failed (EX_IOERR): the store's state is
/// unknown, so the process stops and systemd restarts it from what is on disk.
pub const STORAGE_FAILED_EXIT: i32 = 74;

/// Stops the process after a log store failure; see [`STORAGE_FAILED_EXIT`]. Never
/// returns: running on could acknowledge writes that are not durable, and retrying a
/// failed fsync can report success over lost pages.
pub fn exit_on_storage_failure(what: &str, error: &gantry_raftlog::Error) -> ! {
    tracing::error!(%error, what, "raft log storage failed; exiting so the replica restarts from disk");
    std::process::exit(STORAGE_FAILED_EXIT)
}

/// Internal events from the network and the log writer.
pub enum Event {
    Step(Vec<Message>),
    Persisted(u64),
    Unreachable(u64),
    /// Proposals forwarded to the leader that were dropped before reaching the wire.
    Undelivered(Vec<Message>),
    SnapshotSent {
        peer: u64,
        ok: bool,
    },
    /// A snapshot taken off the loop is on disk: its index and size (`None`: it failed
    /// or was superseded).
    SnapshotSaved(Option<(u64, u64)>),
}

pub struct TaskConfig {
    pub id: u64,
    pub peers: Vec<(u64, String)>,
    pub tick: Duration,
    pub snapshot_every: u64,
    pub read_timeout: Duration,
}

struct PendingRead {
    ctx: Vec<u8>,
    issued: Instant,
    first_issued: Instant,
    reply: oneshot::Sender<Result<u64, ProposeError>>,
}

pub struct RaftTask {
    cfg: TaskConfig,
    raw: RawNode<RaftLog>,
    log: RaftLog,
    /// See `recovery`: votes withheld until the durable log reaches it.
    catch_up: CatchUpFloor,
    conf_state: ConfState,
    state: Arc<RwLock<State>>,
    applied_tx: watch::Sender<u64>,
    view_tx: watch::Sender<ReplicaView>,
    transport: Transport,
    persist_tx: std::sync::mpsc::Sender<PersistJob>,
    requests: mpsc::Receiver<Request>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Proposal contexts are (replica id, incarnation nonce, sequence): an entry proposed
    /// by an earlier run of this replica never answers a waiter of this one.
    nonce: u64,
    next_seq: u64,
    proposals: HashMap<u64, ProposeReply>,
    reads: HashMap<u64, PendingRead>,
    last_snapshot_index: u64,
    /// A snapshot is being serialized and saved off the loop.
    snapshot_running: bool,
    /// A member was added: take a snapshot that includes it as soon as possible, since
    /// it can only catch up from a snapshot whose membership lists it.
    snapshot_wanted: bool,
    /// Size of the latest snapshot, and command bytes applied since it was taken (see
    /// `snapshot_policy`).
    last_snapshot_bytes: u64,
    log_bytes_since_snapshot: u64,
    events_tx: mpsc::UnboundedSender<Event>,
    unreachable: HashMap<u64, Instant>,
    /// Highest index the state machine holds (entries applied or snapshot installed);
    /// raft-rs is told about it once raft also has it persisted.
    applied_target: u64,
    last_rejoin_request: Option<Instant>,
    /// When a vote was last withheld (`recovery`), to log it once a second at most.
    last_withheld_vote: Option<Instant>,
    /// (term, leader id) as of the last check: waiting proposals belong to it.
    regime: (u64, u64),
    counters: Arc<Counters>,
}

pub struct TaskParts {
    pub raw: RawNode<RaftLog>,
    pub log: RaftLog,
    pub catch_up: CatchUpFloor,
    pub state: Arc<RwLock<State>>,
    pub applied_tx: watch::Sender<u64>,
    pub view_tx: watch::Sender<ReplicaView>,
    pub transport: Transport,
    pub persist_tx: std::sync::mpsc::Sender<PersistJob>,
    pub requests: mpsc::Receiver<Request>,
    pub events: mpsc::UnboundedReceiver<Event>,
    /// Where work done off the loop reports back (the sender of `events`).
    pub events_tx: mpsc::UnboundedSender<Event>,
    pub counters: Arc<Counters>,
}

impl RaftTask {
    pub fn new(cfg: TaskConfig, parts: TaskParts) -> Self {
        let latest = parts.log.latest_snapshot();
        let last_snapshot_index = latest.get_metadata().index;
        let last_snapshot_bytes = latest.get_data().len() as u64;
        let conf_state = parts.log.conf_state();
        RaftTask {
            cfg,
            raw: parts.raw,
            log: parts.log,
            catch_up: parts.catch_up,
            conf_state,
            state: parts.state,
            applied_tx: parts.applied_tx,
            view_tx: parts.view_tx,
            transport: parts.transport,
            persist_tx: parts.persist_tx,
            requests: parts.requests,
            events: parts.events,
            nonce: rand::random(),
            next_seq: 0,
            proposals: HashMap::new(),
            reads: HashMap::new(),
            last_snapshot_index,
            snapshot_running: false,
            snapshot_wanted: false,
            last_snapshot_bytes,
            log_bytes_since_snapshot: 0,
            events_tx: parts.events_tx,
            unreachable: HashMap::new(),
            applied_target: last_snapshot_index,
            last_rejoin_request: None,
            last_withheld_vote: None,
            regime: (0, 0),
            counters: parts.counters,
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        let mut ticker = tokio::time::interval(self.cfg.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticker.tick() => self.on_tick(),
                Some(req) = self.requests.recv() => {
                    self.on_request(req);
                    // Batch whatever else is queued into the same Ready.
                    for _ in 0..1024 {
                        match self.requests.try_recv() {
                            Ok(req) => self.on_request(req),
                            Err(_) => break,
                        }
                    }
                }
                Some(ev) = self.events.recv() => {
                    self.on_event(ev);
                    for _ in 0..1024 {
                        match self.events.try_recv() {
                            Ok(ev) => self.on_event(ev),
                            Err(_) => break,
                        }
                    }
                }
            }
            self.handle_ready();
        }
        self.fail_all(ProposeError::Shutdown);
    }

    fn on_tick(&mut self) {
        self.raw.tick();
        self.clear_catch_up_floor();
        // raft-rs drops read requests a leader cannot serve yet (no entry of its term
        // committed) or that a follower cannot forward (no leader): re-issue them.
        let now = Instant::now();
        let mut expired = Vec::new();
        for (seq, read) in self.reads.iter_mut() {
            if now.duration_since(read.first_issued) > self.cfg.read_timeout {
                expired.push(*seq);
            } else if now.duration_since(read.issued) > self.cfg.tick * 4 {
                read.issued = now;
                self.raw.read_index(read.ctx.clone());
            }
        }
        for seq in expired {
            if let Some(read) = self.reads.remove(&seq) {
                let _ = read.reply.send(Err(ProposeError::NoLeader));
            }
        }
    }

    fn ctx(&mut self) -> (u64, Vec<u8>) {
        self.next_seq += 1;
        let mut ctx = Vec::with_capacity(24);
        ctx.extend_from_slice(&self.cfg.id.to_le_bytes());
        ctx.extend_from_slice(&self.nonce.to_le_bytes());
        ctx.extend_from_slice(&self.next_seq.to_le_bytes());
        (self.next_seq, ctx)
    }

    fn own_seq(&self, ctx: &[u8]) -> Option<u64> {
        if ctx.len() != 24 {
            return None;
        }
        let id = u64::from_le_bytes(ctx[0..8].try_into().ok()?);
        let nonce = u64::from_le_bytes(ctx[8..16].try_into().ok()?);
        (id == self.cfg.id && nonce == self.nonce)
            .then(|| u64::from_le_bytes(ctx[16..24].try_into().unwrap_or_default()))
    }

    fn on_request(&mut self, req: Request) {
        match req {
            Request::Propose { command, reply } => {
                // A follower proposes too: raft-rs forwards the entry to the leader as a
                // MsgProp on the peer stream (batched with everything else going there),
                // and this replica answers once it applies the entry, matched by context.
                if self.raw.raft.leader_id == 0 {
                    let _ = reply.send(Err(ProposeError::NoLeader));
                    return;
                }
                let (seq, ctx) = self.ctx();
                match self.raw.propose(ctx, command) {
                    Ok(()) => {
                        Counters::add(&self.counters.proposals, 1);
                        self.proposals.insert(seq, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ProposeError::Dropped(e.to_string())));
                    }
                }
            }
            Request::ReadIndex { reply } => {
                let (seq, ctx) = self.ctx();
                self.raw.read_index(ctx.clone());
                let now = Instant::now();
                self.reads.insert(seq, PendingRead { ctx, issued: now, first_issued: now, reply });
            }
            Request::ProposeConfChange { change, reply } => {
                if self.raw.raft.state != StateRole::Leader {
                    let _ = reply.send(Err(ProposeError::NotLeader(self.raw.raft.leader_id)));
                    return;
                }
                let (seq, ctx) = self.ctx();
                match self.raw.propose_conf_change(ctx, change) {
                    Ok(()) => {
                        self.proposals.insert(seq, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ProposeError::Dropped(e.to_string())));
                    }
                }
            }
            Request::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Step(msgs) => {
                Counters::add(&self.counters.messages_received, msgs.len() as u64);
                for m in msgs {
                    self.unreachable.remove(&m.from);
                    if self.lost_data(&m) || self.withhold_vote(&m) {
                        continue;
                    }
                    if let Err(e) = self.raw.step(m) {
                        tracing::debug!(error = %e, "raft step rejected a message");
                    }
                }
            }
            Event::Persisted(number) => {
                self.raw.on_persist_ready(number);
                self.sync_applied();
            }
            Event::Unreachable(peer) => {
                self.unreachable.insert(peer, Instant::now());
                self.raw.report_unreachable(peer);
            }
            Event::Undelivered(msgs) => {
                for entry in msgs.iter().flat_map(|m| m.get_entries()) {
                    if let Some(reply) = self.own_seq(&entry.context).and_then(|seq| self.proposals.remove(&seq)) {
                        let _ = reply.send(Err(ProposeError::NotDelivered));
                    }
                }
            }
            Event::SnapshotSaved(saved) => self.on_snapshot_saved(saved),
            Event::SnapshotSent { peer, ok } => {
                let status = if ok { SnapshotStatus::Finish } else { SnapshotStatus::Failure };
                self.raw.report_snapshot(peer, status);
            }
        }
    }

    fn fail_all(&mut self, err: ProposeError) {
        for (_, reply) in self.proposals.drain() {
            let _ = reply.send(Err(err.clone()));
        }
        for (_, read) in self.reads.drain() {
            let _ = read.reply.send(Err(err.clone()));
        }
    }
}
