//! AgentService: agents join, hold a session with this replica, report their
//! containers and renew their certificates.
//!
//! Identity: the first `Register` proves itself with the join token and gets a client
//! certificate signed from the agent's CSR (CommonName `node-{id}`); the join token
//! admits a *new* node name only (once). Every later call is made with that
//! certificate and may only speak for that node, about the containers and log streams
//! that node owns. A revoked node's certificates (issued before its revocation) are
//! refused on every call. Without TLS (`insecure_dev`, development only) there are no
//! certificates, and the join token (metadata `x-gantry-join-token`) stands in for any
//! node.

use std::time::Duration;

use gantry_pki::NodeCertificate;
use gantry_proto::v1::agent_service_server::AgentService;
use gantry_proto::v1::{
    AgentMessage, AssignmentsRequest, NodeAssignments, RegisterNodeRequest, RegisterNodeResponse,
    RenewCertificateRequest, RenewCertificateResponse, ReportContainerRequest, ReportContainerResponse,
    ReportPodsRequest, ReportPodsResponse, SchedulerMessage, agent_message, scheduler_message,
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
use crate::agents::gpu_health::GpuHealthReporter;
use crate::state::{Applied, CommandV1, ContainerPhase, Rejected, State, ownership, revocations};

/// The phase an agent reports once a released rank's container no longer exists.
const GONE: &str = "GONE";

/// Messages queued towards one agent; assignments are small and log requests rare.
const SESSION_BUFFER: usize = 256;

pub struct AgentApi(pub ApiContext);

/// Who is calling the agent service.
enum NodeCaller {
    /// Proven by a node certificate (verified against the CA by TLS).
    Node(NodeCertificate),
    /// Holds the join token, over TLS without a node certificate: may only join a new
    /// node name.
    Joiner,
    /// Holds the join token with TLS off: stands in for any node (development only).
    DevJoiner,
    Anonymous,
}

impl NodeCaller {
    /// The issue time of the caller's certificate (`None`: no certificate).
    fn issued_at_ms(&self) -> Option<u64> {
        match self {
            NodeCaller::Node(cert) => Some(cert.issued_at_ms),
            _ => None,
        }
    }

    /// May this caller act for `node_id` now? A node certificate speaks only for its own
    /// node, and only while that node has not revoked it.
    fn check(&self, state: &State, node_id: &str) -> Result<(), Status> {
        match self {
            NodeCaller::Node(cert) if cert.node_id == node_id => refuse_revoked(state, node_id, self.issued_at_ms()),
            NodeCaller::Node(cert) => {
                Err(Status::permission_denied(format!("this certificate is node '{}', not '{node_id}'", cert.node_id)))
            }
            NodeCaller::DevJoiner => refuse_revoked(state, node_id, None),
            NodeCaller::Joiner => Err(Status::permission_denied(format!(
                "acting for node '{node_id}' needs its node certificate: the join token only admits a new node"
            ))),
            NodeCaller::Anonymous => Err(Status::unauthenticated(
                "agents must present their node certificate (or the join token when TLS is off)",
            )),
        }
    }

    /// Refuses a revoked certificate whatever the call is about: checked first on
    /// every RPC.
    fn check_not_revoked(&self, state: &State) -> Result<(), Status> {
        match self {
            NodeCaller::Node(cert) => refuse_revoked(state, &cert.node_id, Some(cert.issued_at_ms)),
            _ => Ok(()),
        }
    }
}

fn refuse_revoked(state: &State, node_id: &str, issued_at_ms: Option<u64>) -> Result<(), Status> {
    match revocations::refusal(state, node_id, issued_at_ms) {
        Some(why) => Err(Status::permission_denied(why)),
        None => Ok(()),
    }
}

impl AgentApi {
    fn caller<T>(&self, req: &Request<T>, body_token: &str) -> NodeCaller {
        if let Some(cert) = NodeCertificate::of_peer(req) {
            return NodeCaller::Node(cert);
        }
        let header = req.metadata().get(JOIN_TOKEN_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let token = if body_token.is_empty() { header } else { body_token };
        if self.0.join_token.is_empty() || token != self.0.join_token {
            NodeCaller::Anonymous
        } else if self.0.tls {
            NodeCaller::Joiner
        } else {
            NodeCaller::DevJoiner
        }
    }

    /// A certificate for `node_id` from `csr_pem`, issued after any revocation of it.
    fn sign(&self, state: &State, csr_pem: &str, node_id: &str) -> Result<String, Status> {
        let ca = self.0.node_ca.as_ref().ok_or_else(|| {
            Status::failed_precondition(
                "csr_pem: this replica holds no CA key to sign node certificates; configure the agent's tls.cert",
            )
        })?;
        let issued_at_ms = revocations::earliest_issue_ms(state, node_id, now_ms());
        gantry_pki::sign_node_csr(ca, csr_pem, node_id, issued_at_ms, self.0.node_cert_lifetime)
            .map_err(|e| Status::invalid_argument(format!("csr_pem: {e}")))
    }
}

/// The command a registration becomes: the node's own certificate updates its node;
/// the join token joins a new (or revoked and re-admitted) name. With TLS off the join
/// token keeps updating existing nodes (development only: anyone with it is any node).
fn registration(
    caller: &NodeCaller,
    state: &State,
    req: &RegisterNodeRequest,
    inventory: gantry_domain::NodeInventory,
) -> Result<CommandV1, Status> {
    let (hostname, address, now_ms) = (req.hostname.clone(), req.address.clone(), now_ms());
    let exists = state.nodes.contains_key(&req.hostname);
    let revoked = state.node_revocations.contains_key(&req.hostname);
    match caller {
        NodeCaller::Node(_) => {
            caller.check(state, &req.hostname)?;
            Ok(CommandV1::RegisterNode { hostname, address, inventory, now_ms })
        }
        NodeCaller::DevJoiner if exists && !revoked => {
            Ok(CommandV1::RegisterNode { hostname, address, inventory, now_ms })
        }
        NodeCaller::Joiner | NodeCaller::DevJoiner => {
            // The CSR's signature is verified here: whoever sent it holds the key.
            let key = if req.csr_pem.is_empty() {
                String::new()
            } else {
                gantry_pki::csr_public_key(&req.csr_pem)
                    .map_err(|e| Status::invalid_argument(format!("csr_pem: {e}")))?
            };
            // Refused here already so no certificate is signed for a name the join
            // cannot take; `JoinNode`'s apply decides races.
            let admitted = state.node_revocations.get(&req.hostname).is_some_and(|r| r.rejoin_allowed);
            let retry = revocations::is_retry(state, &hostname, &address, &inventory, &key).is_some();
            if exists && !admitted && !retry {
                let reason = if revoked {
                    format!(
                        "node '{hostname}' was revoked: an operator must admit it again first (gantryctl node admit)"
                    )
                } else {
                    format!(
                        "node '{hostname}' is registered: the join token admits a new name once; \
                         re-register with the node's own certificate"
                    )
                };
                return Err(Status::permission_denied(reason));
            }
            Ok(CommandV1::JoinNode { hostname, address, inventory, now_ms, key })
        }
        NodeCaller::Anonymous => Err(Status::unauthenticated("join_token: does not match the cluster's join token")),
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
        caller.check_not_revoked(&self.0.raft.state())?;
        gantry_domain::validate::node_name("hostname", &req.hostname).map_err(status::invalid)?;
        let inventory = req
            .inventory
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("inventory: is required"))
            .and_then(|inv| convert::inventory_from_wire(inv).map_err(status::invalid))?;
        let (cmd, cert_pem) = {
            let state = self.0.raft.state();
            let cmd = registration(&caller, &state, &req, inventory)?;
            let cert_pem =
                if req.csr_pem.is_empty() { String::new() } else { self.sign(&state, &req.csr_pem, &req.hostname)? };
            (cmd, cert_pem)
        };
        // The certificate is handed out only once the registration is committed.
        match self.0.write(cmd).await? {
            Applied::Node(n) => Ok(Response::new(RegisterNodeResponse { node_id: n.id, cert_pem })),
            other => Err(unexpected(other)),
        }
    }

    type SessionStream = ReceiverStream<Result<SchedulerMessage, Status>>;

    async fn session(&self, req: Request<Streaming<AgentMessage>>) -> Result<Response<Self::SessionStream>, Status> {
        let caller = self.caller(&req, "");
        caller.check_not_revoked(&self.0.raft.state())?;
        let mut inbound = req.into_inner();
        let node_id = match inbound.message().await?.and_then(|m| m.kind) {
            Some(agent_message::Kind::Hello(h)) => h.node_id,
            _ => return Err(Status::invalid_argument("hello: the first message of a session must be Hello")),
        };
        {
            let state = self.0.raft.state();
            caller.check(&state, &node_id)?;
            if !state.nodes.contains_key(&node_id) {
                return Err(Status::not_found(format!("node '{node_id}' is not registered: call Register first")));
            }
        }
        let (tx, rx) = mpsc::channel(SESSION_BUFFER);
        let session = self.0.hub.attach(&node_id, tx.clone(), now_ms());
        tracing::info!(node = %node_id, "agent session opened");
        let identity = SessionIdentity { node_id, issued_at_ms: caller.issued_at_ms() };
        tokio::spawn(run_session(self.0.clone(), identity, session, inbound, tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[tracing::instrument(skip_all, fields(workload = %req.get_ref().workload_id, rank = req.get_ref().rank))]
    async fn report_container(
        &self,
        req: Request<ReportContainerRequest>,
    ) -> Result<Response<ReportContainerResponse>, Status> {
        let caller = self.caller(&req, "");
        let req = req.into_inner();
        {
            let state = self.0.raft.state();
            caller.check_not_revoked(&state)?;
            caller.check(&state, &req.node_id)?;
            // A placement never changes once made: a rank this replica already sees on
            // another node is refused without a raft entry. Anything it cannot see yet
            // (a lagging replica) is decided by the same check in apply.
            if let Err(Rejected::PermissionDenied { reason }) =
                ownership::check_container_owner(&state, &req.node_id, &req.workload_id, req.rank)
            {
                return Err(Status::permission_denied(reason));
            }
        }
        if req.phase == GONE {
            let cmd = CommandV1::ContainerGone { node_id: req.node_id, workload_id: req.workload_id, rank: req.rank };
            self.0.write(cmd).await?;
            return Ok(Response::new(ReportContainerResponse {}));
        }
        let phase = ContainerPhase::parse(&req.phase).ok_or_else(|| {
            Status::invalid_argument("phase: must be RUNNING, UPLOADING, SUCCEEDED, FAILED, STOPPED or GONE")
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

    /// The node may speak only for itself and about an instance placed on it (an
    /// endpoint stage instance is a one-rank workload: rank 0); the report's effect is
    /// [`super::pods::apply_pod_report`]'s.
    #[tracing::instrument(skip_all, fields(node = %req.get_ref().node_id, workload = %req.get_ref().workload_id))]
    async fn report_pods(&self, req: Request<ReportPodsRequest>) -> Result<Response<ReportPodsResponse>, Status> {
        let caller = self.caller(&req, "");
        let req = req.into_inner();
        {
            let state = self.0.raft.state();
            caller.check_not_revoked(&state)?;
            caller.check(&state, &req.node_id)?;
            // As for ReportContainer: a placement never moves, so a denial seen here
            // holds on the leader too.
            if let Err(Rejected::PermissionDenied { reason }) =
                ownership::check_container_owner(&state, &req.node_id, &req.workload_id, 0)
            {
                return Err(Status::permission_denied(reason));
            }
        }
        super::pods::apply_pod_report(&self.0, req).await?;
        Ok(Response::new(ReportPodsResponse {}))
    }

    #[tracing::instrument(skip_all, fields(node = %req.get_ref().node_id))]
    async fn assignments(&self, req: Request<AssignmentsRequest>) -> Result<Response<NodeAssignments>, Status> {
        let caller = self.caller(&req, "");
        let node_id = req.into_inner().node_id;
        caller.check(&self.0.raft.state(), &node_id)?;
        // Linearizable: the agent removes containers on this answer, so it must not
        // come from a replica that lags (or was wiped and rebuilt behind the leader).
        self.0.read_barrier(None).await?;
        let state = self.0.raft.state();
        caller.check(&state, &node_id)?;
        Ok(Response::new(NodeAssignments {
            applied_index: state.applied_index,
            items: node_assignments(&state, &node_id),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn renew_certificate(
        &self,
        req: Request<RenewCertificateRequest>,
    ) -> Result<Response<RenewCertificateResponse>, Status> {
        let caller = self.caller(&req, "");
        let node_id = match &caller {
            NodeCaller::Node(cert) => cert.node_id.clone(),
            NodeCaller::Anonymous => return Err(Status::unauthenticated("renewal needs the node's certificate")),
            NodeCaller::Joiner | NodeCaller::DevJoiner => {
                return Err(Status::permission_denied(
                    "a certificate is renewed over mutual TLS with the node's current certificate, \
                     not with the join token",
                ));
            }
        };
        let req = req.into_inner();
        if req.csr_pem.is_empty() {
            return Err(Status::invalid_argument("csr_pem: is required"));
        }
        let state = self.0.raft.state();
        caller.check(&state, &node_id)?;
        if !state.nodes.contains_key(&node_id) {
            return Err(Status::not_found(format!("node '{node_id}' is not registered")));
        }
        let cert_pem = self.sign(&state, &req.csr_pem, &node_id)?;
        tracing::info!(node = %node_id, "node certificate renewed");
        Ok(Response::new(RenewCertificateResponse { cert_pem }))
    }
}

/// Who holds a session: the node, and the issue time of the certificate it opened the
/// session with (`None` without TLS), to end the session when that is revoked.
struct SessionIdentity {
    node_id: String,
    issued_at_ms: Option<u64>,
}

/// Serves one session until the agent goes away or its certificate is revoked: pushes
/// assignments on every change and takes heartbeats and log chunks.
async fn run_session(
    ctx: ApiContext,
    identity: SessionIdentity,
    session: u64,
    mut inbound: Streaming<AgentMessage>,
    tx: SessionSender,
) {
    let node_id = identity.node_id.as_str();
    let pusher = tokio::spawn(push_assignments(ctx.clone(), node_id.to_string(), tx.clone()));
    let gpu_health = GpuHealthReporter::new(ctx.raft.clone(), node_id);
    mark_ready_if_down(&ctx, node_id).await;
    // Every replica watches the replicated deny list, so a revocation ends the node's
    // sessions everywhere, not only on the replica that took the command.
    let mut applied = ctx.raft.applied_watch();
    loop {
        let message = tokio::select! {
            message = inbound.message() => message,
            changed = applied.changed() => {
                if changed.is_err() {
                    break;
                }
                if let Some(why) = revocations::refusal(&ctx.raft.state(), node_id, identity.issued_at_ms) {
                    tracing::warn!(node = %node_id, "closing the session of a revoked node");
                    let _ = tx.try_send(Err(Status::permission_denied(why)));
                    break;
                }
                continue;
            }
        };
        match message {
            Ok(Some(AgentMessage { kind: Some(agent_message::Kind::Heartbeat(hb)) })) => {
                if let Some(metrics) = &hb.metrics {
                    gpu_health.observe(metrics, now_ms());
                }
                ctx.hub.heartbeat(node_id, hb.metrics, now_ms());
            }
            Ok(Some(AgentMessage { kind: Some(agent_message::Kind::Log(chunk)) })) => {
                ctx.hub.deliver(node_id, chunk).await;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    pusher.abort();
    ctx.hub.detach(node_id, session);
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
