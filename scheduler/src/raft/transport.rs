//! Replica-to-replica message delivery over tonic (mutual TLS).
//!
//! Each `send` encodes its messages per peer into one `StepRequest` and hands it straight
//! to that peer's long-lived `StepStream` (no task in between: one hop less on every
//! write's path). The stream's queue is bounded, so a slow or dead peer never blocks the
//! ready loop or the log writer: when it is full, the batch is dropped (Raft tolerates
//! loss and retransmits), the peer is reported unreachable and the next batch opens a new
//! stream. Snapshots go as unary calls, because raft-rs must learn whether they arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gantry_proto::v1::raft_service_client::RaftServiceClient;
use gantry_proto::v1::{RejoinRequest, StepRequest};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::counters::Counters;
use super::task::Event;

/// HTTP/2 flow-control windows of replica links (both ends).
pub const PEER_STREAM_WINDOW: u32 = 8 * 1024 * 1024;
pub const PEER_CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Snapshots can be large; everything else is small.
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;
/// Batches buffered in a peer's stream before new ones are dropped.
const STREAM_QUEUE: usize = 1024;

#[derive(Clone)]
pub struct Transport {
    me: u64,
    peers: Arc<HashMap<u64, Peer>>,
    events: mpsc::UnboundedSender<Event>,
    counters: Arc<Counters>,
    /// `send` also runs on the log writer's thread, outside the runtime.
    runtime: Handle,
}

struct Peer {
    client: RaftServiceClient<Channel>,
    /// The open `StepStream`, if any. std Mutex: held only to clone or replace it.
    stream: Mutex<Option<mpsc::Sender<StepRequest>>>,
}

/// How often an idle peer connection is pinged; twice this without an answer and the
/// connection (and its streams) is dropped and the peer reported unreachable.
const PEER_KEEPALIVE: Duration = Duration::from_secs(5);
/// A `Rejoin` is a small unary call: bounded on its own now that the channel is not.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(5);

impl Transport {
    /// `peers` excludes this replica. Connections are lazy: a peer that is down costs
    /// nothing until something is sent to it. Must be called inside the runtime.
    pub fn start(
        me: u64,
        peers: &[(u64, String)],
        tls: Option<ClientTlsConfig>,
        events: mpsc::UnboundedSender<Event>,
        counters: Arc<Counters>,
    ) -> Result<Transport, tonic::transport::Error> {
        let mut map = HashMap::new();
        for (id, url) in peers {
            // No request timeout on the channel: it would also bound the long-lived
            // StepStream (torn down every 30 s) and a snapshot transfer (capping its
            // size). A dead or silent peer is found by HTTP/2 keep-alive instead.
            let mut endpoint = Endpoint::from_shared(url.clone())?
                .connect_timeout(Duration::from_millis(500))
                .tcp_nodelay(true)
                .initial_stream_window_size(PEER_STREAM_WINDOW)
                .initial_connection_window_size(PEER_CONNECTION_WINDOW)
                .http2_keep_alive_interval(PEER_KEEPALIVE)
                .keep_alive_timeout(PEER_KEEPALIVE * 2)
                .keep_alive_while_idle(true);
            if let Some(tls) = &tls {
                endpoint = endpoint.tls_config(tls.clone())?;
            }
            let client = RaftServiceClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
            map.insert(*id, Peer { client, stream: Mutex::new(None) });
        }
        Ok(Transport { me, peers: Arc::new(map), events, counters, runtime: Handle::current() })
    }

    pub fn send(&self, msgs: Vec<Message>) {
        Counters::add(&self.counters.messages_sent, msgs.len() as u64);
        let mut by_peer: HashMap<u64, Vec<Message>> = HashMap::new();
        for m in msgs {
            if m.get_msg_type() == MessageType::MsgSnapshot {
                self.send_snapshot(m);
            } else {
                by_peer.entry(m.to).or_default().push(m);
            }
        }
        for (to, batch) in by_peer {
            self.send_batch(to, batch);
        }
    }

    fn send_batch(&self, to: u64, batch: Vec<Message>) {
        let Some(peer) = self.peers.get(&to) else { return };
        let messages = batch.iter().filter_map(|m| m.write_to_bytes().ok()).collect();
        let request = StepRequest { from: self.me, messages };
        Counters::add(&self.counters.batches_sent, 1);
        let mut stream = peer.stream.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = match &*stream {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                let tx = self.open_stream(to, peer.client.clone());
                *stream = Some(tx.clone());
                tx
            }
        };
        if tx.try_send(request).is_err() {
            // The stream broke (its task reported the peer unreachable) or is backed up:
            // drop this batch, raft retransmits; a new stream opens with the next one.
            *stream = None;
            drop(stream);
            let _ = self.events.send(Event::Unreachable(to));
            undelivered(&self.events, batch.into_iter());
        }
    }

    fn send_snapshot(&self, m: Message) {
        let peer = m.to;
        let Some(mut client) = self.peers.get(&peer).map(|p| p.client.clone()) else { return };
        Counters::add(&self.counters.batches_sent, 1);
        let request = StepRequest { from: self.me, messages: m.write_to_bytes().into_iter().collect() };
        let events = self.events.clone();
        self.runtime.spawn(async move {
            let result = client.step(request).await;
            if let Err(status) = &result {
                tracing::debug!(peer, error = %status.message(), "raft snapshot send failed");
                let _ = events.send(Event::Unreachable(peer));
            }
            let _ = events.send(Event::SnapshotSent { peer, ok: result.is_ok() });
        });
    }

    /// Opens a long-lived `StepStream` to `peer`; the returned sender feeds it. When the
    /// stream fails, the peer is reported unreachable and the sender closes.
    fn open_stream(&self, peer: u64, mut client: RaftServiceClient<Channel>) -> mpsc::Sender<StepRequest> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let events = self.events.clone();
        self.runtime.spawn(async move {
            if let Err(status) = client.step_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await {
                tracing::info!(peer, error = %status.message(), "raft stream failed");
                let _ = events.send(Event::Unreachable(peer));
            }
        });
        tx
    }

    /// Asks `leader` to remove and re-add this replica (see `RaftTask::lost_data`).
    pub async fn rejoin(&self, leader: u64, me: u64) -> Result<(), tonic::Status> {
        let mut client = self
            .peers
            .get(&leader)
            .map(|p| p.client.clone())
            .ok_or_else(|| tonic::Status::unavailable(format!("leader {leader} is not a known peer")))?;
        let mut request = tonic::Request::new(RejoinRequest { id: me });
        request.set_timeout(REJOIN_TIMEOUT);
        client.rejoin(request).await?;
        Ok(())
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
