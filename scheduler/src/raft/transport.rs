//! Replica-to-replica message delivery over tonic (mutual TLS).
//!
//! One sender task per peer drains a bounded queue and ships messages in batches, so a
//! slow or dead peer never blocks the ready loop: when its queue is full, messages are
//! dropped (Raft tolerates loss and retransmits) and the peer is reported unreachable.

use std::collections::HashMap;
use std::time::Duration;

use gantry_proto::v1::raft_service_client::RaftServiceClient;
use gantry_proto::v1::{RejoinRequest, StepRequest};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::sync::mpsc;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use std::sync::Arc;

use super::counters::Counters;
use super::task::Event;

/// HTTP/2 flow-control windows of replica links (both ends).
pub const PEER_STREAM_WINDOW: u32 = 8 * 1024 * 1024;
pub const PEER_CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Snapshots can be large; everything else is small.
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;
const QUEUE: usize = 8192;
const BATCH: usize = 512;
/// Batches buffered in a peer's stream before new ones are dropped.
const STREAM_QUEUE: usize = 64;

#[derive(Clone)]
pub struct Transport {
    queues: HashMap<u64, mpsc::Sender<Message>>,
    clients: HashMap<u64, RaftServiceClient<Channel>>,
    events: mpsc::UnboundedSender<Event>,
    counters: Arc<Counters>,
}

impl Transport {
    /// `peers` excludes this replica. Connections are lazy: a peer that is down costs
    /// nothing until something is sent to it.
    pub fn start(
        me: u64,
        peers: &[(u64, String)],
        tls: Option<ClientTlsConfig>,
        events: mpsc::UnboundedSender<Event>,
        counters: Arc<Counters>,
    ) -> Result<Transport, tonic::transport::Error> {
        let mut queues = HashMap::new();
        let mut clients = HashMap::new();
        for (id, url) in peers {
            let mut endpoint = Endpoint::from_shared(url.clone())?
                .connect_timeout(Duration::from_millis(500))
                .timeout(Duration::from_secs(30))
                .tcp_nodelay(true)
                .initial_stream_window_size(PEER_STREAM_WINDOW)
                .initial_connection_window_size(PEER_CONNECTION_WINDOW)
                .http2_keep_alive_interval(Duration::from_secs(5));
            if let Some(tls) = &tls {
                endpoint = endpoint.tls_config(tls.clone())?;
            }
            let client = RaftServiceClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(peer_sender(me, *id, client.clone(), rx, events.clone(), counters.clone()));
            queues.insert(*id, tx);
            clients.insert(*id, client);
        }
        Ok(Transport { queues, clients, events, counters })
    }

    pub fn send(&self, msgs: Vec<Message>) {
        Counters::add(&self.counters.messages_sent, msgs.len() as u64);
        for m in msgs {
            let to = m.to;
            let Some(q) = self.queues.get(&to) else { continue };
            if let Err(e) = q.try_send(m) {
                let _ = self.events.send(Event::Unreachable(to));
                undelivered(&self.events, std::iter::once(e.into_inner()));
            }
        }
    }

    /// Asks `leader` to remove and re-add this replica (see `RaftTask::lost_data`).
    pub async fn rejoin(&self, leader: u64, me: u64) -> Result<(), tonic::Status> {
        let mut client = self
            .clients
            .get(&leader)
            .cloned()
            .ok_or_else(|| tonic::Status::unavailable(format!("leader {leader} is not a known peer")))?;
        client.rejoin(RejoinRequest { id: me }).await?;
        Ok(())
    }
}

async fn peer_sender(
    me: u64,
    peer: u64,
    mut client: RaftServiceClient<Channel>,
    mut rx: mpsc::Receiver<Message>,
    events: mpsc::UnboundedSender<Event>,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut stream: Option<mpsc::Sender<StepRequest>> = None;
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let has_snapshot = batch.iter().any(|m| m.get_msg_type() == MessageType::MsgSnapshot);
        let messages = batch.iter().filter_map(|m| m.write_to_bytes().ok()).collect();
        let request = StepRequest { from: me, messages };
        Counters::add(&counters.batches_sent, 1);
        if has_snapshot {
            // Unary: raft-rs must learn whether the snapshot arrived.
            let result = client.step(request).await;
            if result.is_err() {
                undelivered(&events, batch.drain(..));
            }
            if let Err(status) = &result {
                tracing::debug!(peer, error = %status.message(), "raft snapshot send failed");
                let _ = events.send(Event::Unreachable(peer));
            }
            let _ = events.send(Event::SnapshotSent { peer, ok: result.is_ok() });
            continue;
        }
        let tx = match &stream {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let tx = open_stream(peer, client.clone(), events.clone());
                stream = Some(tx.clone());
                tx
            }
        };
        if tx.try_send(request).is_err() {
            // The stream broke (its task reported the peer unreachable) or is backed up:
            // drop this batch, raft retransmits; a new stream opens with the next one.
            stream = None;
            let _ = events.send(Event::Unreachable(peer));
            undelivered(&events, batch.drain(..));
        }
    }
}

/// Hands proposals (MsgProp) that never went on the wire back to the ready loop: they
/// cannot have been committed, so their waiters may retry at once. Everything else raft
/// retransmits by itself.
fn undelivered(events: &mpsc::UnboundedSender<Event>, msgs: impl Iterator<Item = Message>) {
    let proposals: Vec<Message> = msgs.filter(|m| m.get_msg_type() == MessageType::MsgPropose).collect();
    if !proposals.is_empty() {
        let _ = events.send(Event::Undelivered(proposals));
    }
}

/// Opens a long-lived `StepStream` to `peer`; the returned sender feeds it. When the
/// stream fails, the peer is reported unreachable and the sender closes.
fn open_stream(
    peer: u64,
    mut client: RaftServiceClient<Channel>,
    events: mpsc::UnboundedSender<Event>,
) -> mpsc::Sender<StepRequest> {
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    tokio::spawn(async move {
        if let Err(status) = client.step_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await {
            tracing::debug!(peer, error = %status.message(), "raft stream failed");
            let _ = events.send(Event::Unreachable(peer));
        }
    });
    tx
}
