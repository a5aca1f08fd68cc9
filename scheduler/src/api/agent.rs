//! AgentService: agents join, hold a session with this replica, and report their
//! containers.
//!
//! Identity: the first `Register` proves itself with the join token and gets a client
//! certificate signed from the agent's CSR (CommonName `node-{id}`); every later call
//! is made with that certificate and may only speak for that node. Without TLS
//! (`insecure_dev`) there are no certificates, and the join token (metadata
//! `x-gantry-join-token`) stands in for them.

use std::time::Duration;

use gantry_proto::v1::agent_service_server::AgentService;
use gantry_proto::v1::{
    AgentMessage, NodeAssignments, RegisterNodeRequest, RegisterNodeResponse, ReportContainerRequest,
    ReportContainerResponse, SchedulerMessage, agent_message, scheduler_message,
};
use gantry_proto::{JOIN_TOKEN_HEADER, convert};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::catalog::unexpected;
use super::context::{ApiContext, now_ms};
use super::status;
use crate::agents::SessionSender;
use crate::agents::assignments::node_assignments;
use crate::state::{Applied, CommandV1, ContainerPhase};

/// Messages queued towards one agent; assignments are small and log requests rare.
const SESSION_BUFFER: usize = 256;

pub struct AgentApi(pub ApiContext);

/// Who is calling the agent service.
enum NodeCaller {
    /// Proven by a node certificate.
    Node(String),
    /// Holds the join token: may act for any node (registration, or dev mode).
    Joiner,
    Anonymous,
}

impl NodeCaller {
    /// May this caller act for `node_id`?
    fn check(&self, node_id: &str) -> Result<(), Status> {
        match self {
            NodeCaller::Node(id) if id == node_id => Ok(()),
            NodeCaller::Node(id) => {
                Err(Status::permission_denied(format!("this certificate is node '{id}', not '{node_id}'")))
            }
            NodeCaller::Joiner => Ok(()),
            NodeCaller::Anonymous => Err(Status::unauthenticated(
                "agents must present their node certificate (or the join token when TLS is off)",
            )),
        }
    }
}

impl AgentApi {
    fn caller<T>(&self, req: &Request<T>, body_token: &str) -> NodeCaller {
        if let Some(cn) = gantry_pki::peer_common_name(req)
            && let Some(id) = gantry_pki::node_id_from_common_name(&cn)
        {
            return NodeCaller::Node(id.to_string());
        }
        let header = req.metadata().get(JOIN_TOKEN_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let token = if body_token.is_empty() { header } else { body_token };
        if !self.0.join_token.is_empty() && token == self.0.join_token {
            NodeCaller::Joiner
        } else {
            NodeCaller::Anonymous
        }
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    #[tracing::instrument(skip_all, fields(hostname = %req.get_ref().hostname))]
    async fn register(&self, req: Request<RegisterNodeRequest>) -> Result<Response<RegisterNodeResponse>, Status> {
        let caller = self.caller(&req, &req.get_ref().join_token);
        let req = req.into_inner();
        if matches!(caller, NodeCaller::Anonymous) {
            return Err(Status::unauthenticated("join_token: does not match the cluster's join token"));
        }
        gantry_domain::validate::node_name("hostname", &req.hostname).map_err(status::invalid)?;
        caller.check(&req.hostname)?;
        let inventory = req
            .inventory
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("inventory: is required"))
            .and_then(|inv| convert::inventory_from_wire(inv).map_err(status::invalid))?;
        let cert_pem = if req.csr_pem.is_empty() {
            String::new()
        } else {
            let ca = self.0.node_ca.as_ref().ok_or_else(|| {
                Status::failed_precondition(
                    "csr_pem: this replica holds no CA key to sign node certificates; configure the agent's tls.cert",
                )
            })?;
            gantry_pki::sign_node_csr(ca, &req.csr_pem, &req.hostname)
                .map_err(|e| Status::invalid_argument(format!("csr_pem: {e}")))?
        };
        let cmd = CommandV1::RegisterNode { hostname: req.hostname, address: req.address, inventory, now_ms: now_ms() };
        match self.0.write(cmd).await? {
            Applied::Node(n) => Ok(Response::new(RegisterNodeResponse { node_id: n.id, cert_pem })),
            other => Err(unexpected(other)),
        }
    }

    type SessionStream = ReceiverStream<Result<SchedulerMessage, Status>>;

    async fn session(&self, req: Request<Streaming<AgentMessage>>) -> Result<Response<Self::SessionStream>, Status> {
        let caller = self.caller(&req, "");
        let mut inbound = req.into_inner();
        let node_id = match inbound.message().await?.and_then(|m| m.kind) {
            Some(agent_message::Kind::Hello(h)) => h.node_id,
            _ => return Err(Status::invalid_argument("hello: the first message of a session must be Hello")),
        };
        caller.check(&node_id)?;
        if !self.0.raft.state().nodes.contains_key(&node_id) {
            return Err(Status::not_found(format!("node '{node_id}' is not registered: call Register first")));
        }
        let (tx, rx) = mpsc::channel(SESSION_BUFFER);
        let session = self.0.hub.attach(&node_id, tx.clone(), now_ms());
        tracing::info!(node = %node_id, "agent session opened");
        tokio::spawn(run_session(self.0.clone(), node_id, session, inbound, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[tracing::instrument(skip_all, fields(workload = %req.get_ref().workload_id, rank = req.get_ref().rank))]
    async fn report_container(
        &self,
        req: Request<ReportContainerRequest>,
    ) -> Result<Response<ReportContainerResponse>, Status> {
        let caller = self.caller(&req, "");
        let req = req.into_inner();
        caller.check(&req.node_id)?;
        let phase = ContainerPhase::parse(&req.phase).ok_or_else(|| {
            Status::invalid_argument("phase: must be RUNNING, UPLOADING, SUCCEEDED, FAILED or STOPPED")
        })?;
        let cmd = CommandV1::ReportContainer {
            node_id: req.node_id,
            workload_id: req.workload_id,
            rank: req.rank,
            phase,
            reason: req.reason,
            now_ms: now_ms(),
        };
        self.0.write(cmd).await?;
        Ok(Response::new(ReportContainerResponse {}))
    }
}

/// Serves one session until the agent goes away: pushes assignments on every change
/// and takes heartbeats and log chunks.
async fn run_session(
    ctx: ApiContext,
    node_id: String,
    session: u64,
    mut inbound: Streaming<AgentMessage>,
    tx: SessionSender,
) {
    let pusher = tokio::spawn(push_assignments(ctx.clone(), node_id.clone(), tx));
    mark_ready_if_down(&ctx, &node_id).await;
    loop {
        match inbound.message().await {
            Ok(Some(AgentMessage { kind: Some(agent_message::Kind::Heartbeat(hb)) })) => {
                ctx.hub.heartbeat(&node_id, hb.metrics, now_ms());
            }
            Ok(Some(AgentMessage { kind: Some(agent_message::Kind::Log(chunk)) })) => ctx.hub.deliver(chunk).await,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    pusher.abort();
    ctx.hub.detach(&node_id, session);
    tracing::info!(node = %node_id, "agent session closed");
}

/// A node the leader declared DOWN is back: its agent talks to us again.
async fn mark_ready_if_down(ctx: &ApiContext, node_id: &str) {
    let down = ctx.raft.state().nodes.get(node_id).is_some_and(|n| n.status == gantry_domain::NodeStatus::Down);
    if down {
        let cmd = CommandV1::SetNodeStatus {
            node_id: node_id.to_string(),
            status: gantry_domain::NodeStatus::Ready,
            now_ms: now_ms(),
            reason: "agent reconnected".into(),
        };
        if let Err(e) = ctx.write(cmd).await {
            tracing::warn!(node = %node_id, error = %e, "could not mark the node ready again");
        }
    }
}

/// Sends the node's assignments whenever they change, coalescing bursts of applies.
async fn push_assignments(ctx: ApiContext, node_id: String, tx: SessionSender) {
    let mut applied = ctx.raft.applied_watch();
    let mut last_sent = None;
    loop {
        let (index, items) = {
            let state = ctx.raft.state();
            (state.applied_index, node_assignments(&state, &node_id))
        };
        if last_sent.as_ref() != Some(&items) {
            let msg = NodeAssignments { applied_index: index, items: items.clone() };
            let msg = SchedulerMessage { kind: Some(scheduler_message::Kind::Assignments(msg)) };
            if tx.send(Ok(msg)).await.is_err() {
                return;
            }
            last_sent = Some(items);
        }
        if applied.changed().await.is_err() {
            return;
        }
        // Many entries apply in a burst (50 creates): one recomputation for all of them.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
