//! NodeService: the operator's view of nodes, with the health this replica last heard,
//! and the revocation of a node's identity.

use gantry_domain::Node;
use gantry_proto::convert;
use gantry_proto::v1::node_service_server::NodeService;
use gantry_proto::v1::{
    self as pb, AdmitNodeRequest, GetNodeRequest, ListNodesRequest, ListNodesResponse, RevokeNodeRequest,
};
use tonic::{Request, Response, Status};

use super::auth::Caller;
use super::catalog::unexpected;
use super::context::{ApiContext, now_ms};
use super::status;
use crate::agents::AgentHub;
use crate::state::{Applied, CommandV1, State, WorkloadOwner};

pub struct NodeApi(pub ApiContext);

/// A node as `caller` may see it: resources are cluster-wide facts, but the workloads
/// listed are only those of projects the caller can see.
fn node_to_wire(state: &State, hub: &AgentHub, n: &Node, caller: &Caller) -> pb::Node {
    let (allocated, allocated_gpus) = state.allocated_on(&n.id);
    let capacity = n.inventory.capacity();
    let mut free = capacity.saturating_sub(&allocated);
    // An unhealthy GPU is not free even when nothing holds it: placement skips it.
    let usable = n.inventory.gpus.iter().filter(|g| !n.unhealthy_gpus.contains_key(&g.uuid));
    free.gpus = usable.filter(|g| !allocated_gpus.contains(&g.uuid)).count() as u32;
    let workloads = state
        .workloads
        .on_node(&n.id)
        .filter(|(_, w)| match &w.owner {
            WorkloadOwner::Training { project, .. } | WorkloadOwner::StageInstance { project, .. } => {
                caller.sees_project(project)
            }
        })
        .map(|(id, _)| id.clone())
        .collect();
    pb::Node {
        id: n.id.clone(),
        hostname: n.hostname.clone(),
        address: n.address.clone(),
        inventory: Some(convert::inventory_to_wire(&n.inventory)),
        status: n.status.as_str().into(),
        allocated: Some(convert::resources_to_wire(&allocated)),
        free: Some(convert::resources_to_wire(&free)),
        allocated_gpus,
        registered_at_ms: n.registered_at_ms,
        status_changed_at_ms: n.status_changed_at_ms,
        workloads,
        health: Some(hub.health(&n.id)),
        unhealthy_gpus: n
            .unhealthy_gpus
            .iter()
            .map(|(uuid, f)| pb::UnhealthyGpu { uuid: uuid.clone(), reason: f.reason.clone(), since_ms: f.since_ms })
            .collect(),
    }
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    #[tracing::instrument(skip_all)]
    async fn list_nodes(&self, req: Request<ListNodesRequest>) -> Result<Response<ListNodesResponse>, Status> {
        let caller = self.0.auth.authenticate(&req)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let nodes = state.nodes.values().map(|n| node_to_wire(&state, &self.0.hub, n, &caller)).collect();
        Ok(Response::new(ListNodesResponse { nodes }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_node(&self, req: Request<GetNodeRequest>) -> Result<Response<pb::Node>, Status> {
        let caller = self.0.auth.authenticate(&req)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let id = &req.get_ref().id;
        let node = state.nodes.get(id).ok_or_else(|| Status::not_found(format!("node '{id}' not found")))?;
        Ok(Response::new(node_to_wire(&state, &self.0.hub, node, &caller)))
    }

    #[tracing::instrument(skip_all, fields(node = %req.get_ref().id))]
    async fn revoke_node(&self, req: Request<RevokeNodeRequest>) -> Result<Response<pb::Node>, Status> {
        let caller = self.0.auth.authenticate(&req)?;
        caller.authorize_cluster()?;
        let req = req.into_inner();
        gantry_domain::validate::node_name("id", &req.id).map_err(status::invalid)?;
        if req.reason.chars().count() > 1024 {
            return Err(Status::invalid_argument("reason: must be at most 1024 characters"));
        }
        let cmd = CommandV1::RevokeNode { node_id: req.id.clone(), reason: req.reason, now_ms: now_ms() };
        let node = match self.0.write(cmd).await? {
            Applied::Node(n) => n,
            other => return Err(unexpected(other)),
        };
        // This replica's session ends now; the others end theirs as they apply the entry.
        self.0.hub.close(&req.id, Status::permission_denied(format!("node '{}' was revoked", req.id)));
        tracing::warn!(node = %req.id, by = %caller.name, "node revoked");
        Ok(Response::new(node_to_wire(&self.0.raft.state(), &self.0.hub, &node, &caller)))
    }

    #[tracing::instrument(skip_all, fields(node = %req.get_ref().id))]
    async fn admit_node(&self, req: Request<AdmitNodeRequest>) -> Result<Response<pb::Node>, Status> {
        let caller = self.0.auth.authenticate(&req)?;
        caller.authorize_cluster()?;
        let id = req.into_inner().id;
        gantry_domain::validate::node_name("id", &id).map_err(status::invalid)?;
        let node = match self.0.write(CommandV1::AdmitNode { node_id: id.clone() }).await? {
            Applied::Node(n) => n,
            other => return Err(unexpected(other)),
        };
        tracing::info!(node = %id, by = %caller.name, "revoked node admitted to join again");
        Ok(Response::new(node_to_wire(&self.0.raft.state(), &self.0.hub, &node, &caller)))
    }
}
