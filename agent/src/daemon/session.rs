//! One session with one scheduler replica: Hello, then heartbeats (with the latest
//! metrics) and log chunks up; assignments and log requests down. Reconnects with
//! backoff for as long as the agent runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gantry_proto::v1::{
    AgentMessage, Heartbeat, Hello, NodeMetrics, SchedulerMessage, agent_message, scheduler_message,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::desired::Desired;
use super::link::{Client, Link};
use super::logs;
use super::worker::WorkerEnv;

/// Messages queued towards the scheduler (heartbeats, log chunks).
const OUTBOUND: usize = 64;

pub struct SessionCtx {
    pub node_id: String,
    pub desired: Desired,
    pub metrics: watch::Receiver<NodeMetrics>,
    pub heartbeat_interval: Duration,
    pub env: Arc<WorkerEnv>,
}

/// Holds the session with replica `replica` (an index into the link's clients), on
/// the link's current identity: a renewal ends the session, which reconnects at once
/// with the new certificate.
pub async fn run(ctx: Arc<SessionCtx>, link: Link, replica: usize, url: String, cancel: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    let mut renewed = link.renewed();
    loop {
        let started = std::time::Instant::now();
        renewed.mark_unchanged();
        let Some(client) = link.clients().get(replica).cloned() else { return };
        let result = tokio::select! {
            result = once(&ctx, client, &cancel) => result,
            _ = renewed.changed() => {
                tracing::info!(scheduler = %url, "reconnecting with the renewed certificate");
                continue;
            }
        };
        match result {
            Ok(()) => tracing::info!(scheduler = %url, "session ended"),
            Err(e) => tracing::debug!(scheduler = %url, error = %e, "session failed"),
        }
        if cancel.is_cancelled() {
            return;
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(200);
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn once(ctx: &SessionCtx, mut client: Client, cancel: &CancellationToken) -> Result<(), tonic::Status> {
    let (tx, rx) = mpsc::channel::<AgentMessage>(OUTBOUND);
    let hello = AgentMessage { kind: Some(agent_message::Kind::Hello(Hello { node_id: ctx.node_id.clone() })) };
    let _ = tx.send(hello).await;
    let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
    tracing::info!(node = %ctx.node_id, "session open");
    let session_cancel = cancel.child_token();
    let _stop = session_cancel.clone().drop_guard();
    tokio::spawn(heartbeats(tx.clone(), ctx.metrics.clone(), ctx.heartbeat_interval, session_cancel.clone()));
    let mut log_requests: HashMap<u64, CancellationToken> = HashMap::new();
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            msg = inbound.message() => msg?,
        };
        let Some(SchedulerMessage { kind: Some(kind) }) = msg else {
            if msg.is_none() {
                return Ok(());
            }
            continue;
        };
        match kind {
            scheduler_message::Kind::Assignments(a) => {
                ctx.desired.offer(a.applied_index, a.items);
            }
            scheduler_message::Kind::LogRequest(req) => {
                log_requests.retain(|_, t| !t.is_cancelled());
                let token = session_cancel.child_token();
                log_requests.insert(req.request_id, token.clone());
                let dir = ctx.env.log_dir(&req.workload_id, req.rank);
                tokio::spawn(logs::serve(ctx.env.logs.clone(), dir, req, tx.clone(), token));
            }
            scheduler_message::Kind::LogCancel(c) => {
                if let Some(t) = log_requests.remove(&c.request_id) {
                    t.cancel();
                }
            }
        }
    }
}

async fn heartbeats(
    tx: mpsc::Sender<AgentMessage>,
    metrics: watch::Receiver<NodeMetrics>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let hb = Heartbeat { metrics: Some(metrics.borrow().clone()) };
        if tx.send(AgentMessage { kind: Some(agent_message::Kind::Heartbeat(hb)) }).await.is_err() {
            return;
        }
    }
}
