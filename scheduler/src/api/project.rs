//! ProjectService: the storage grants operators give each project.

use gantry_proto::convert;
use gantry_proto::v1::project_service_server::ProjectService;
use gantry_proto::v1::*;
use tonic::{Request, Response, Status};

use super::context::ApiContext;
use super::status;
use crate::state::CommandV1;

pub struct ProjectApi(pub ApiContext);

fn project_grants(project: &str, grants: &gantry_domain::StorageGrants) -> ProjectGrants {
    ProjectGrants { project: project.to_string(), grants: Some(convert::storage_grants_to_wire(grants)) }
}

#[tonic::async_trait]
impl ProjectService for ProjectApi {
    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project))]
    async fn set_storage_grants(
        &self,
        req: Request<SetStorageGrantsRequest>,
    ) -> Result<Response<ProjectGrants>, Status> {
        self.0.auth.authenticate(&req)?.authorize_cluster()?;
        let req = req.into_inner();
        gantry_domain::validate::name("project", &req.project).map_err(status::invalid)?;
        let grants =
            convert::storage_grants_from_wire("grants", &req.grants.unwrap_or_default()).map_err(status::invalid)?;
        self.0.write(CommandV1::SetStorageGrants { project: req.project.clone(), grants: grants.clone() }).await?;
        tracing::info!(project = %req.project, read = grants.read.len(), write = grants.write.len(), "storage grants set");
        Ok(Response::new(project_grants(&req.project, &grants)))
    }

    async fn get_storage_grants(
        &self,
        req: Request<GetStorageGrantsRequest>,
    ) -> Result<Response<ProjectGrants>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let project = &req.get_ref().project;
        Ok(Response::new(project_grants(project, &self.0.raft.state().grants(project))))
    }

    async fn list_storage_grants(
        &self,
        req: Request<ListStorageGrantsRequest>,
    ) -> Result<Response<ListStorageGrantsResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_cluster()?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let projects = state.storage_grants.iter().map(|(p, g)| project_grants(p, g)).collect();
        Ok(Response::new(ListStorageGrantsResponse { projects }))
    }
}
