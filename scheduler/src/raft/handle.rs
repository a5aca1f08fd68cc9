//! The cloneable front of a replica's ready loop.

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use raft::eraftpb::{ConfChange, ConfChangeType, Message};
use tokio::sync::{mpsc, oneshot, watch};

use super::counters::{Counters, CountersSnapshot};
use super::task::{Event, Request};
use super::{ProposeError, RaftStatus, ReplicaView, Role};
use crate::state::{Command, Outcome, State};

/// How long a write may wait for a leader and a majority before the client is told to
/// retry. Covers one election on a loaded machine.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct RaftHandle {
    id: u64,
    requests: mpsc::Sender<Request>,
    events: mpsc::UnboundedSender<Event>,
    state: Arc<RwLock<State>>,
    applied: watch::Receiver<u64>,
    view: watch::Receiver<ReplicaView>,
    counters: Arc<Counters>,
}

impl RaftHandle {
    pub(super) fn new(
        id: u64,
        requests: mpsc::Sender<Request>,
        events: mpsc::UnboundedSender<Event>,
        state: Arc<RwLock<State>>,
        applied: watch::Receiver<u64>,
        view: watch::Receiver<ReplicaView>,
        counters: Arc<Counters>,
    ) -> Self {
        RaftHandle { id, requests, events, state, applied, view, counters }
    }

    /// The replication pipeline's counters (see `counters.rs`).
    pub fn counters(&self) -> CountersSnapshot {
        self.counters.snapshot()
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn view(&self) -> ReplicaView {
        *self.view.borrow()
    }

    pub fn is_leader(&self) -> bool {
        self.view().role == Role::Leader
    }

    /// The local state. std RwLock: held only to copy data out, never across an await.
    pub fn state(&self) -> RwLockReadGuard<'_, State> {
        match self.state.read() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Messages from a peer (already authenticated by mutual TLS).
    pub fn step(&self, msgs: Vec<Message>) {
        let _ = self.events.send(Event::Step(msgs));
    }

    /// Replicates `command` and returns its log index and outcome once it is applied
    /// here. On a follower, raft forwards the entry to the leader.
    pub async fn propose(&self, command: &Command) -> Result<(u64, Outcome), ProposeError> {
        let bytes = serde_json::to_vec(command).map_err(|e| ProposeError::Codec(e.to_string()))?;
        self.propose_bytes(bytes).await
    }

    pub async fn propose_bytes(&self, bytes: Vec<u8>) -> Result<(u64, Outcome), ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        let mut view = self.view.clone();
        loop {
            let current = *view.borrow_and_update();
            let attempt = if current.leader_id != 0 {
                self.propose_local(bytes.clone()).await
            } else {
                Err(ProposeError::NoLeader)
            };
            match attempt {
                Err(ProposeError::NotDelivered) if Instant::now() < deadline => {
                    // Never reached the leader, so it cannot commit: send it again.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(ProposeError::NoLeader | ProposeError::NotLeader(_)) if Instant::now() < deadline => {
                    // Wait for the next leadership change (or a short pause) and retry.
                    let _ = tokio::time::timeout(Duration::from_millis(100), view.changed()).await;
                }
                other => return other,
            }
            if Instant::now() >= deadline {
                return Err(ProposeError::Timeout);
            }
        }
    }

    async fn propose_local(&self, command: Vec<u8>) -> Result<(u64, Outcome), ProposeError> {
        let (reply, rx) = oneshot::channel();
        self.requests.send(Request::Propose { command, reply }).await.map_err(|_| ProposeError::Shutdown)?;
        match tokio::time::timeout(PROPOSE_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ProposeError::Shutdown),
            Err(_) => Err(ProposeError::Timeout),
        }
    }

    /// Waits until this replica has applied everything committed before the call
    /// (ReadIndex). After it returns, reading [`RaftHandle::state`] is linearizable.
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        let (reply, rx) = oneshot::channel();
        self.requests.send(Request::ReadIndex { reply }).await.map_err(|_| ProposeError::Shutdown)?;
        let index = rx.await.map_err(|_| ProposeError::Shutdown)??;
        self.wait_applied(index, Duration::from_secs(5)).await
    }

    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), ProposeError> {
        let mut applied = self.applied.clone();
        tokio::time::timeout(timeout, applied.wait_for(|a| *a >= index))
            .await
            .map_err(|_| ProposeError::Timeout)?
            .map_err(|_| ProposeError::Shutdown)?;
        Ok(())
    }

    pub async fn status(&self) -> Result<RaftStatus, ProposeError> {
        let (reply, rx) = oneshot::channel();
        self.requests.send(Request::Status { reply }).await.map_err(|_| ProposeError::Shutdown)?;
        rx.await.map_err(|_| ProposeError::Shutdown)
    }

    /// On the leader: removes and re-adds replica `id`, which reported that it lost its
    /// log. A replica the leader already tracks from an empty log (match index 0) is
    /// left alone, so repeated requests do nothing.
    pub async fn readmit(&self, id: u64) -> Result<(), ProposeError> {
        if !self.is_leader() {
            return Err(ProposeError::NotLeader(self.view().leader_id));
        }
        let status = self.status().await?;
        let known = status.replicas.iter().find(|r| r.0 == id).map(|r| r.3);
        if known == Some(0) {
            return Ok(());
        }
        tracing::warn!(replica = id, "re-admitting a replica that lost its log");
        for change_type in [ConfChangeType::RemoveNode, ConfChangeType::AddNode] {
            let mut change = ConfChange::default();
            change.set_change_type(change_type);
            change.node_id = id;
            let (reply, rx) = oneshot::channel();
            self.requests
                .send(Request::ProposeConfChange { change, reply })
                .await
                .map_err(|_| ProposeError::Shutdown)?;
            match tokio::time::timeout(PROPOSE_TIMEOUT, rx).await {
                Ok(Ok(Ok((_, Ok(_))))) => {}
                Ok(Ok(Ok((_, Err(rejected))))) => return Err(ProposeError::Dropped(rejected.to_string())),
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Err(_)) => return Err(ProposeError::Shutdown),
                Err(_) => return Err(ProposeError::Timeout),
            }
        }
        Ok(())
    }

    /// Changes whenever an entry is applied: for watchers of the state (agent sessions).
    pub fn applied_watch(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    pub fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }
}
