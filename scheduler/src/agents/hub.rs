//! [`AgentHub`]: the live sessions of agents with this replica.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gantry_proto::v1::{
    LogCancel, LogChunk, LogRequest, NodeHealth, NodeMetrics, SchedulerMessage, XidEvent, scheduler_message,
};
use tokio::sync::mpsc;
use tonic::Status;

/// Chunks buffered per log request before the agent's session has to wait; bounded so
/// a slow CLI slows the agent's reader instead of growing memory.
const LOG_BUFFER: usize = 64;

/// How long a log reader may take nothing before its request is dropped.
const SLOW_READER: Duration = Duration::from_secs(5);

pub type SessionSender = mpsc::Sender<Result<SchedulerMessage, Status>>;

struct Session {
    id: u64,
    tx: SessionSender,
    /// Wall clock, for display (`node get`).
    last_heartbeat_ms: u64,
    /// Monotonic, for liveness: a wall-clock jump must not make every node look silent.
    last_heard: Instant,
    metrics: Option<NodeMetrics>,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    /// Open log requests: request id → (node, where its chunks go).
    logs: HashMap<u64, (String, mpsc::Sender<LogChunk>)>,
    next_id: u64,
    /// Recent XID events by node, kept when sessions end (see `gpu_health`).
    xid_events: HashMap<String, VecDeque<XidEvent>>,
}

#[derive(Clone, Default)]
pub struct AgentHub {
    inner: Arc<Mutex<Inner>>,
}

impl AgentHub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Registers a node's new session, replacing an older one (a reconnect). Returns
    /// the session id to pass to [`AgentHub::detach`].
    pub fn attach(&self, node_id: &str, tx: SessionSender, now_ms: u64) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let metrics = inner.sessions.remove(node_id).and_then(|s| s.metrics);
        let session = Session { id, tx, last_heartbeat_ms: now_ms, last_heard: Instant::now(), metrics };
        inner.sessions.insert(node_id.to_string(), session);
        id
    }

    /// Ends whatever session `node_id` has with this replica at once (a revoked node):
    /// its agent's stream ends with `status`, its log requests fail.
    pub fn close(&self, node_id: &str, status: Status) {
        let mut inner = self.lock();
        if let Some(session) = inner.sessions.remove(node_id) {
            let _ = session.tx.try_send(Err(status));
        }
        inner.logs.retain(|_, (node, _)| node != node_id);
    }

    /// Ends session `session_id` of `node_id` (if it is still the current one) and fails
    /// the log requests it was serving.
    pub fn detach(&self, node_id: &str, session_id: u64) {
        let mut inner = self.lock();
        if inner.sessions.get(node_id).is_some_and(|s| s.id == session_id) {
            inner.sessions.remove(node_id);
            // Dropping the senders ends those log streams; the reader reports it.
            inner.logs.retain(|_, (node, _)| node != node_id);
        }
    }

    pub fn heartbeat(&self, node_id: &str, metrics: Option<NodeMetrics>, now_ms: u64) {
        let mut inner = self.lock();
        if !inner.sessions.contains_key(node_id) {
            return;
        }
        if let Some(m) = metrics.as_ref().filter(|m| !m.xid_events.is_empty()) {
            let kept = inner.xid_events.entry(node_id.to_string()).or_default();
            super::gpu_health::merge_xid_events(kept, &m.xid_events);
        }
        if let Some(s) = inner.sessions.get_mut(node_id) {
            s.last_heartbeat_ms = now_ms;
            s.last_heard = Instant::now();
            if metrics.is_some() {
                s.metrics = metrics;
            }
        }
    }

    /// When this replica last heard from the node (wall clock), if it has a session.
    pub fn last_seen_ms(&self, node_id: &str) -> Option<u64> {
        self.lock().sessions.get(node_id).map(|s| s.last_heartbeat_ms)
    }

    /// How long the node has been silent as of `now` (monotonic), if it has a session.
    pub fn silent_for(&self, node_id: &str, now: Instant) -> Option<Duration> {
        self.lock().sessions.get(node_id).map(|s| now.saturating_duration_since(s.last_heard))
    }

    pub fn health(&self, node_id: &str) -> NodeHealth {
        let inner = self.lock();
        let xid_events = inner.xid_events.get(node_id).map(|e| e.iter().cloned().collect()).unwrap_or_default();
        match inner.sessions.get(node_id) {
            Some(s) => NodeHealth {
                connected: true,
                last_heartbeat_ms: s.last_heartbeat_ms,
                metrics: s.metrics.clone(),
                xid_events,
            },
            None => NodeHealth { xid_events, ..NodeHealth::default() },
        }
    }

    /// Asks the node's agent for a container's output; the chunks arrive on the
    /// subscription. Unavailable when the agent has no session with this replica.
    pub fn open_log(&self, node_id: &str, mut request: LogRequest) -> Result<LogSubscription, Status> {
        let mut inner = self.lock();
        let tx = inner
            .sessions
            .get(node_id)
            .map(|s| s.tx.clone())
            .ok_or_else(|| Status::unavailable(format!("node {node_id} has no session with this replica")))?;
        inner.next_id += 1;
        let id = inner.next_id;
        request.request_id = id;
        let (chunk_tx, chunk_rx) = mpsc::channel(LOG_BUFFER);
        inner.logs.insert(id, (node_id.to_string(), chunk_tx));
        drop(inner);
        let msg = SchedulerMessage { kind: Some(scheduler_message::Kind::LogRequest(request)) };
        if tx.try_send(Ok(msg)).is_err() {
            self.lock().logs.remove(&id);
            return Err(Status::unavailable(format!("node {node_id}'s session is busy or closing; retry")));
        }
        Ok(LogSubscription { hub: self.clone(), id, rx: chunk_rx, session: tx, done: false })
    }

    /// A chunk from `node_id`'s agent. Waits when the reader is slow (backpressure to
    /// the agent's session), but not forever: the same session carries the node's
    /// heartbeats, so a reader that takes nothing for [`SLOW_READER`] is cut off.
    /// Chunks of requests nobody waits for any more are dropped, and so are chunks for
    /// a request this hub sent to another node: one node never speaks for another's
    /// log stream.
    pub async fn deliver(&self, node_id: &str, chunk: LogChunk) {
        let target = match self.lock().logs.get(&chunk.request_id) {
            Some((owner, tx)) if owner == node_id => Some(tx.clone()),
            Some((owner, _)) => {
                tracing::warn!(
                    node = %node_id,
                    owner = %owner,
                    request_id = chunk.request_id,
                    "dropped a log chunk for another node's log request"
                );
                None
            }
            None => None,
        };
        let Some(tx) = target else { return };
        let eof = chunk.eof;
        let id = chunk.request_id;
        let sent = tokio::time::timeout(SLOW_READER, tx.send(chunk)).await;
        if !matches!(sent, Ok(Ok(()))) || eof {
            self.lock().logs.remove(&id);
        }
    }
}

/// One open log request. Dropping it before the end tells the agent to stop sending.
pub struct LogSubscription {
    hub: AgentHub,
    id: u64,
    rx: mpsc::Receiver<LogChunk>,
    session: SessionSender,
    done: bool,
}

impl LogSubscription {
    /// The next chunk; `None` when the agent's session ended before the last chunk.
    pub async fn next(&mut self) -> Option<LogChunk> {
        let chunk = self.rx.recv().await;
        if chunk.as_ref().is_none_or(|c| c.eof) {
            self.done = true;
        }
        chunk
    }
}

impl Drop for LogSubscription {
    fn drop(&mut self) {
        self.hub.lock().logs.remove(&self.id);
        if !self.done {
            let cancel = LogCancel { request_id: self.id };
            let _ =
                self.session.try_send(Ok(SchedulerMessage { kind: Some(scheduler_message::Kind::LogCancel(cancel)) }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reconnect_replaces_the_session_and_an_old_detach_is_ignored() {
        let hub = AgentHub::default();
        let (tx1, _rx1) = mpsc::channel(4);
        let (tx2, _rx2) = mpsc::channel(4);
        let s1 = hub.attach("n1", tx1, 10);
        let _s2 = hub.attach("n1", tx2, 20);
        hub.detach("n1", s1);
        assert_eq!(hub.last_seen_ms("n1"), Some(20));
        hub.heartbeat("n1", None, 30);
        assert!(hub.health("n1").connected);
        assert_eq!(hub.health("n1").last_heartbeat_ms, 30);
        assert!(!hub.health("n2").connected);
    }

    #[tokio::test]
    async fn log_chunks_reach_the_subscriber_and_a_drop_cancels() {
        let hub = AgentHub::default();
        let (tx, mut rx) = mpsc::channel(4);
        let sid = hub.attach("n1", tx, 0);
        let mut sub = hub.open_log("n1", LogRequest { workload_id: "w".into(), ..Default::default() }).unwrap();
        let Some(Ok(SchedulerMessage { kind: Some(scheduler_message::Kind::LogRequest(req)) })) = rx.recv().await
        else {
            panic!("expected a log request");
        };
        hub.deliver("n1", LogChunk { request_id: req.request_id, data: b"a\n".to_vec(), ..Default::default() }).await;
        assert_eq!(sub.next().await.unwrap().data, b"a\n");
        drop(sub);
        assert!(matches!(
            rx.recv().await,
            Some(Ok(SchedulerMessage { kind: Some(scheduler_message::Kind::LogCancel(_)) }))
        ));
        // A session that ends fails its open requests.
        let mut sub = hub.open_log("n1", LogRequest::default()).unwrap();
        hub.detach("n1", sid);
        assert!(sub.next().await.is_none());
        assert!(hub.open_log("n1", LogRequest::default()).is_err());
    }

    #[tokio::test]
    async fn a_chunk_for_another_nodes_request_is_dropped() {
        let hub = AgentHub::default();
        let (tx_a, _rx_a) = mpsc::channel(4);
        let (tx_b, mut rx_b) = mpsc::channel(4);
        hub.attach("a", tx_a, 0);
        hub.attach("b", tx_b, 0);
        let mut sub = hub.open_log("b", LogRequest::default()).expect("open log");
        let Some(Ok(SchedulerMessage { kind: Some(scheduler_message::Kind::LogRequest(req)) })) = rx_b.recv().await
        else {
            panic!("expected a log request to b");
        };
        let forged =
            LogChunk { request_id: req.request_id, data: b"forged\n".to_vec(), eof: true, ..Default::default() };
        hub.deliver("a", forged).await;
        let real = LogChunk { request_id: req.request_id, data: b"real\n".to_vec(), ..Default::default() };
        hub.deliver("b", real).await;
        let first =
            tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("a chunk in time").expect("a chunk");
        assert_eq!(first.data, b"real\n", "node a's chunk reached b's reader");
        assert!(!first.eof);
    }

    #[tokio::test]
    async fn closing_a_node_ends_its_session_and_its_log_requests() {
        let hub = AgentHub::default();
        let (tx, mut rx) = mpsc::channel(4);
        hub.attach("a", tx, 0);
        let mut sub = hub.open_log("a", LogRequest::default()).expect("open log");
        let _request = rx.recv().await;
        hub.close("a", Status::permission_denied("revoked"));
        match rx.recv().await {
            Some(Err(status)) => assert_eq!(status.code(), tonic::Code::PermissionDenied),
            other => panic!("expected the session to end with an error, got {other:?}"),
        }
        assert!(sub.next().await.is_none());
        assert!(!hub.health("a").connected);
    }

    #[test]
    fn xid_events_of_a_node_outlive_its_session() {
        let hub = AgentHub::default();
        let (tx, _rx) = mpsc::channel(4);
        let sid = hub.attach("n1", tx, 0);
        let event = XidEvent { at_ms: 7, gpu_uuid: "GPU-1".into(), xid: 79, meaning: "fell off the bus".into() };
        let metrics = NodeMetrics { xid_events: vec![event.clone()], ..Default::default() };
        hub.heartbeat("n1", Some(metrics.clone()), 1);
        hub.heartbeat("n1", Some(metrics), 2);
        assert_eq!(hub.health("n1").xid_events, std::slice::from_ref(&event));
        hub.detach("n1", sid);
        let health = hub.health("n1");
        assert!(!health.connected);
        assert_eq!(health.xid_events, [event], "the scheduler keeps them after the agent left");
    }
}
