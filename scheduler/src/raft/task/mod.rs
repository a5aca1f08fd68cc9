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

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use gantry_raftlog::{LogWrite, RaftLog};
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message, MessageType};
use raft::{RawNode, SnapshotStatus, StateRole, Storage};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::counters::Counters;
use super::persist::PersistJob;
use super::snapshot_policy::snapshot_due;
use super::transport::Transport;
use super::{ProposeError, RaftStatus, ReplicaView, Role};
use crate::state::{self, Command, Outcome, State};

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
    /// (term, leader id) as of the last check: waiting proposals belong to it.
    regime: (u64, u64),
    counters: Arc<Counters>,
}

pub struct TaskParts {
    pub raw: RawNode<RaftLog>,
    pub log: RaftLog,
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
                    if self.lost_data(&m) {
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
            Event::SnapshotSaved(index) => {
                self.snapshot_running = false;
                if let Some((index, bytes)) = index
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
            Event::SnapshotSent { peer, ok } => {
                let status = if ok { SnapshotStatus::Finish } else { SnapshotStatus::Failure };
                self.raw.report_snapshot(peer, status);
            }
        }
    }

    /// Fails every waiting proposal the moment the term or the leader changes. The change
    /// happens inside `step` or `tick`, before the Ready that reports it, so it is
    /// compared with the regime last seen here, not with one taken at the Ready.
    fn on_regime_change(&mut self) {
        let now = (self.raw.raft.term, self.raw.raft.leader_id);
        if now == self.regime {
            return;
        }
        self.regime = now;
        // Proposals made under the old leader (here or forwarded to it) may still commit
        // under the new one, or may be overwritten or lost on the way: their outcome is
        // unknown to us. Clients retry with the same request id, which makes the retry
        // safe.
        for (_, reply) in self.proposals.drain() {
            let _ = reply.send(Err(ProposeError::LeadershipLost));
        }
    }

    fn handle_ready(&mut self) {
        self.on_regime_change();
        if !self.raw.has_ready() {
            return;
        }
        let mut rd = self.raw.ready();
        Counters::add(&self.counters.readies, 1);
        self.transport.send(rd.take_messages());
        if !rd.snapshot().is_empty() {
            let meta = rd.snapshot().get_metadata();
            self.conf_state = meta.get_conf_state().clone();
            self.install_snapshot(rd.snapshot().get_data(), meta.index);
        }
        let committed = rd.take_committed_entries();
        self.apply_entries(committed);
        for rs in rd.take_read_states() {
            if let Some(seq) = self.own_seq(&rs.request_ctx)
                && let Some(read) = self.reads.remove(&seq)
            {
                let _ = read.reply.send(Ok(rs.index));
            }
        }
        let after = rd.take_persisted_messages();
        let write = LogWrite::from_ready(&mut rd);
        let sync = must_sync(&self.log.hard_state(), &write);
        Counters::add(&self.counters.entries_staged, write.entries.len() as u64);
        // raft-rs reads this Ready's entries back from storage as soon as
        // `advance_append_async` returns, so they must be visible now; the writer
        // thread makes them durable (batched) and only then reports them persisted.
        if let Err(e) = self.log.stage(&write) {
            tracing::error!(error = %e, "cannot stage raft log write; exiting");
            std::process::exit(70);
        }
        let number = rd.number();
        if self.persist_tx.send(PersistJob { number, after, sync }).is_err() {
            tracing::error!("raft log writer is gone");
        }
        self.raw.advance_append_async(rd);
        self.sync_applied();
        self.publish_view();
        self.on_regime_change();
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let entries_count = entries.len() as u64;
        let mut bytes = 0;
        let mut last = 0;
        let mut replies = Vec::new();
        {
            // A local Arc: the guard must not borrow `self`, which conf changes mutate.
            let shared = self.state.clone();
            let mut state = match shared.write() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            for entry in entries {
                last = entry.index;
                if entry.get_entry_type() == EntryType::EntryConfChange {
                    let outcome = self.apply_conf_change(&entry);
                    state.applied_index = entry.index;
                    if let Some(reply) = self.own_seq(&entry.context).and_then(|seq| self.proposals.remove(&seq)) {
                        replies.push((reply, entry.index, outcome));
                    }
                    continue;
                }
                if entry.get_entry_type() != EntryType::EntryNormal {
                    continue;
                }
                if entry.data.is_empty() {
                    state.applied_index = entry.index;
                    continue;
                }
                bytes += entry.data.len() as u64;
                let outcome = match serde_json::from_slice::<Command>(&entry.data) {
                    Ok(cmd) => state::apply(&mut state, entry.index, cmd),
                    Err(e) => {
                        // Written by a newer version we cannot read: every replica of
                        // this version rejects it the same way.
                        state.applied_index = entry.index;
                        Err(state::Rejected::Unsupported(e.to_string()))
                    }
                };
                if let Some(seq) = self.own_seq(&entry.context)
                    && let Some(reply) = self.proposals.remove(&seq)
                {
                    replies.push((reply, entry.index, outcome));
                }
            }
        }
        for (reply, index, outcome) in replies {
            let _ = reply.send(Ok((index, outcome)));
        }
        Counters::add(&self.counters.entries_applied, entries_count);
        self.log_bytes_since_snapshot += bytes;
        self.applied_target = self.applied_target.max(last);
        let _ = self.applied_tx.send(last);
        let entries_since = last.saturating_sub(self.last_snapshot_index);
        if !self.snapshot_running
            && (self.snapshot_wanted
                || snapshot_due(
                    self.cfg.snapshot_every,
                    entries_since,
                    self.log_bytes_since_snapshot,
                    self.last_snapshot_bytes,
                ))
        {
            self.start_snapshot(last);
        }
    }

    /// Snapshots the state as of `applied` without stalling the loop: only the copy is
    /// made here; serializing (the costly part, growing with the state) and writing run
    /// on a blocking thread. The log store orders that write with the loop's own.
    fn start_snapshot(&mut self, applied: u64) {
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
                        Err(e) => {
                            tracing::warn!(error = %e, index = applied, "snapshot failed");
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

    fn state_applied_index(&self) -> u64 {
        match self.state.read() {
            Ok(s) => s.applied_index,
            Err(poisoned) => poisoned.into_inner().applied_index,
        }
    }

    /// Tells raft-rs what the state machine has applied. raft-rs accepts only indexes it
    /// has itself persisted, so an installed snapshot counts once its Ready is on disk.
    fn sync_applied(&mut self) {
        let log = &self.raw.raft.raft_log;
        let target = self.applied_target.min(log.committed).min(log.persisted);
        if target > log.applied {
            self.raw.advance_apply_to(target);
        }
    }

    /// Applies a committed membership change (entries are raft-rs's v1 `ConfChange`).
    fn apply_conf_change(&mut self, entry: &Entry) -> Outcome {
        let change = ConfChange::parse_from_bytes(&entry.data)
            .map_err(|e| state::Rejected::Unsupported(format!("conf change: {e}")))?;
        match self.raw.apply_conf_change(&change) {
            Ok(cs) => {
                let added =
                    matches!(change.get_change_type(), ConfChangeType::AddNode | ConfChangeType::AddLearnerNode);
                self.snapshot_wanted |= added;
                tracing::info!(index = entry.index, node = change.node_id, change = ?change.get_change_type(), voters = ?cs.voters, "membership changed");
                self.conf_state = cs;
                Ok(state::Applied::Done)
            }
            Err(e) => Err(state::Rejected::precondition(format!("conf change: {e}"))),
        }
    }

    /// A heartbeat promising a commit index beyond our last entry means this replica lost
    /// log entries it had acknowledged (its data directory was wiped or rolled back).
    /// Stepping it would make raft-rs abort; instead drop it and ask the leader to remove
    /// and re-add us, after which the leader tracks us from an empty log and sends a
    /// snapshot.
    fn lost_data(&mut self, m: &Message) -> bool {
        if m.get_msg_type() != MessageType::MsgHeartbeat || m.commit <= self.raw.raft.raft_log.last_index() {
            return false;
        }
        let now = Instant::now();
        if self.last_rejoin_request.is_none_or(|t| now.duration_since(t) > Duration::from_secs(1)) {
            self.last_rejoin_request = Some(now);
            tracing::warn!(
                leader = m.from,
                commit = m.commit,
                last_index = self.raw.raft.raft_log.last_index(),
                "this replica lost log entries; asking the leader to re-add it"
            );
            let transport = self.transport.clone();
            let (me, leader) = (self.cfg.id, m.from);
            tokio::spawn(async move {
                if let Err(e) = transport.rejoin(leader, me).await {
                    tracing::warn!(leader, error = %e.message(), "rejoin request failed");
                }
            });
        }
        true
    }

    fn install_snapshot(&mut self, data: &[u8], index: u64) {
        match serde_json::from_slice::<State>(data) {
            Ok(mut restored) => {
                restored.applied_index = index;
                let mut state = match self.state.write() {
                    Ok(s) => s,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *state = restored;
                drop(state);
                self.last_snapshot_index = index;
                self.last_snapshot_bytes = data.len() as u64;
                self.log_bytes_since_snapshot = 0;
                self.applied_target = self.applied_target.max(index);
                let _ = self.applied_tx.send(index);
                tracing::info!(index, "installed snapshot from leader");
            }
            Err(e) => {
                // Applying anything on top of a state we could not restore would diverge.
                tracing::error!(error = %e, index, "cannot decode snapshot; exiting");
                std::process::exit(70);
            }
        }
    }

    fn publish_view(&mut self) {
        let view = ReplicaView {
            role: role_of(self.raw.raft.state),
            leader_id: self.raw.raft.leader_id,
            term: self.raw.raft.term,
        };
        self.view_tx.send_if_modified(|v| {
            if *v == view {
                false
            } else {
                *v = view;
                true
            }
        });
    }

    fn status(&self) -> RaftStatus {
        let status = self.raw.status();
        let mut replicas = Vec::new();
        let progress = status.progress;
        let leader = self.raw.raft.leader_id;
        for (id, addr) in std::iter::once((self.cfg.id, String::new())).chain(self.cfg.peers.iter().cloned()) {
            let match_index = progress.and_then(|p| p.get(id)).map(|p| p.matched).unwrap_or(0);
            let reachable = id == self.cfg.id || !self.unreachable.contains_key(&id);
            let role = if id == self.cfg.id {
                role_of(self.raw.raft.state)
            } else if id == leader {
                Role::Leader
            } else if reachable {
                Role::Follower
            } else {
                Role::Unreachable
            };
            replicas.push((id, addr, role, match_index, reachable));
        }
        RaftStatus {
            id: self.cfg.id,
            leader_id: leader,
            term: status.hs.term,
            commit_index: status.hs.commit,
            applied_index: status.applied,
            role: role_of(self.raw.raft.state),
            snapshot_index: self.log.latest_snapshot().get_metadata().index,
            first_index: self.log.first_index().unwrap_or(0),
            last_index: self.log.last_index(),
            replicas,
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

fn role_of(role: StateRole) -> Role {
    match role {
        StateRole::Leader => Role::Leader,
        StateRole::Follower => Role::Follower,
        StateRole::Candidate => Role::Candidate,
        StateRole::PreCandidate => Role::PreCandidate,
    }
}

/// Whether a write must be on disk before raft may count it persisted: new entries, a
/// snapshot, or a new term or vote (what a replica promised). A hard state that only
/// moves the commit index need not be: a commit index lost in a crash is learned again
/// from the leader (etcd skips the same fsync). It is still written, with the next sync.
fn must_sync(stored: &raft::eraftpb::HardState, write: &LogWrite) -> bool {
    !write.entries.is_empty()
        || write.snapshot.as_ref().is_some_and(|s| !s.is_empty())
        || write.hard_state.as_ref().is_some_and(|hs| hs.term != stored.term || hs.vote != stored.vote)
}

#[cfg(test)]
mod tests {
    use raft::eraftpb::HardState;

    use super::*;

    fn hs(term: u64, vote: u64, commit: u64) -> HardState {
        HardState { term, vote, commit, ..Default::default() }
    }

    #[test]
    fn only_a_moved_commit_index_skips_the_fsync() {
        let stored = hs(3, 1, 10);
        let commit_only = LogWrite { hard_state: Some(hs(3, 1, 12)), ..Default::default() };
        assert!(!must_sync(&stored, &commit_only));
        assert!(!must_sync(&stored, &LogWrite::default()));
        let entries = LogWrite { entries: vec![Entry::default()], ..commit_only.clone() };
        assert!(must_sync(&stored, &entries));
        assert!(must_sync(&stored, &LogWrite { hard_state: Some(hs(4, 0, 10)), ..Default::default() }));
        assert!(must_sync(&stored, &LogWrite { hard_state: Some(hs(3, 2, 10)), ..Default::default() }));
    }
}
