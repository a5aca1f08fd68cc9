//! ClusterService: replication status, answered by any replica.

use gantry_proto::v1::cluster_service_server::ClusterService;
use gantry_proto::v1::{ClusterStatus, GetClusterStatusRequest, ReplicaStatus};
use tonic::{Request, Response, Status};

use super::context::ApiContext;
use super::status;

pub struct ClusterApi(pub ApiContext);

#[tonic::async_trait]
impl ClusterService for ClusterApi {
    #[tracing::instrument(skip_all)]
    async fn get_status(&self, req: Request<GetClusterStatusRequest>) -> Result<Response<ClusterStatus>, Status> {
        self.0.auth.authenticate(&req)?;
        let s = self.0.raft.status().await.map_err(status::propose)?;
        Ok(Response::new(ClusterStatus {
            replica_id: s.id,
            leader_id: s.leader_id,
            term: s.term,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            role: s.role.as_str().into(),
            replicas: s
                .replicas
                .into_iter()
                .map(|(id, address, role, match_index, reachable)| ReplicaStatus {
                    id,
                    address,
                    role: role.as_str().into(),
                    match_index,
                    reachable,
                })
                .collect(),
            snapshot_index: s.snapshot_index,
            first_log_index: s.first_index,
            last_log_index: s.last_index,
        }))
    }
}
