//! EndpointService: endpoints, stages, stage resources and API keys (design:
//! docs/adr/0003-serving-design.md). Writes go through the replicated
//! `CommandV1::Endpoint` commands; reads answer from the local state.

pub mod pod_report;
mod reads;
pub mod routes;
pub mod wire;

use gantry_domain::endpoint::EndpointSpec;
use gantry_gateway::auth::sha256_hex;
use gantry_proto::convert;
use gantry_proto::v1::endpoint_service_server::EndpointService;
use gantry_proto::v1::*;
use tonic::{Request, Response, Status};

use super::catalog::unexpected;
use super::context::{ApiContext, new_id, now_ms};
use super::status;
use crate::state::endpoints::EndpointCommand as C;
use crate::state::{Applied, CommandV1};

pub struct EndpointApi(pub ApiContext);

impl EndpointApi {
    async fn write(&self, c: C) -> Result<Applied, Status> {
        self.0.write(CommandV1::Endpoint(c)).await
    }

    /// The endpoint as it is after a write.
    fn answer(&self, applied: Applied) -> Result<Response<Endpoint>, Status> {
        match applied {
            Applied::Endpoint(e) => {
                let mut out = wire::endpoint(&self.0.raft.state(), &self.0.gateway_url, &e, now_ms());
                wire::fill_usage_all(&self.0.hub, &mut out);
                Ok(Response::new(out))
            }
            other => Err(unexpected(other)),
        }
    }

    fn stage_answer(&self, applied: Applied, stage: &str) -> Result<Response<Stage>, Status> {
        match applied {
            Applied::Endpoint(e) => {
                let s = e.stages.get(stage).ok_or_else(|| Status::not_found(format!("stage '{stage}' not found")))?;
                let mut out = wire::stage(&self.0.raft.state(), &self.0.gateway_url, &e, s, now_ms());
                wire::fill_usage(&self.0.hub, &mut out);
                Ok(Response::new(out))
            }
            other => Err(unexpected(other)),
        }
    }
}

fn required<T>(field: &str, v: Option<T>) -> Result<T, Status> {
    v.ok_or_else(|| Status::invalid_argument(format!("{field}: is required")))
}

#[tonic::async_trait]
impl EndpointService for EndpointApi {
    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project))]
    async fn create_endpoint(&self, req: Request<CreateEndpointRequest>) -> Result<Response<Endpoint>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let req = req.into_inner();
        let stage = required("stage", req.stage.as_ref())?;
        let spec = EndpointSpec {
            name: req.name,
            description: req.description,
            tags: convert::tags_from_wire(&req.tags),
            stage: wire::stage_spec(stage),
        };
        spec.validate().map_err(status::invalid)?;
        let cmd = C::CreateEndpoint {
            project: req.project,
            id: new_id("ep"),
            stage_id: new_id("stg"),
            request_id: req.request_id,
            spec,
            now_ms: now_ms(),
        };
        self.answer(self.write(cmd).await?)
    }

    async fn get_endpoint(&self, req: Request<GetEndpointRequest>) -> Result<Response<Endpoint>, Status> {
        reads::get_endpoint(&self.0, req).await
    }

    async fn list_endpoints(
        &self,
        req: Request<ListEndpointsRequest>,
    ) -> Result<Response<ListEndpointsResponse>, Status> {
        reads::list_endpoints(&self.0, req).await
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, name = %req.get_ref().name))]
    async fn update_endpoint(&self, req: Request<UpdateEndpointRequest>) -> Result<Response<Endpoint>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let req = req.into_inner();
        let cmd = C::UpdateEndpoint {
            project: req.project,
            name: req.name,
            new_name: req.new_name,
            description: req.description,
            tags: req.set_tags.then(|| convert::tags_from_wire(&req.tags)),
            now_ms: now_ms(),
        };
        self.answer(self.write(cmd).await?)
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, name = %req.get_ref().name))]
    async fn delete_endpoint(
        &self,
        req: Request<DeleteEndpointRequest>,
    ) -> Result<Response<DeleteEndpointResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let req = req.into_inner();
        self.write(C::DeleteEndpoint { project: req.project, name: req.name, now_ms: now_ms() }).await?;
        Ok(Response::new(DeleteEndpointResponse {}))
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, endpoint = %req.get_ref().endpoint))]
    async fn create_stage(&self, req: Request<CreateStageRequest>) -> Result<Response<Stage>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let req = req.into_inner();
        let spec = wire::stage_spec(required("stage", req.stage.as_ref())?);
        spec.validate("stage").map_err(status::invalid)?;
        let name = spec.name.clone();
        let cmd = C::CreateStage {
            project: req.project,
            endpoint: req.endpoint,
            stage_id: new_id("stg"),
            request_id: req.request_id,
            spec,
            now_ms: now_ms(),
        };
        self.stage_answer(self.write(cmd).await?, &name)
    }

    async fn get_stage(&self, req: Request<GetStageRequest>) -> Result<Response<Stage>, Status> {
        reads::get_stage(&self.0, req).await
    }

    async fn list_stages(&self, req: Request<ListStagesRequest>) -> Result<Response<ListStagesResponse>, Status> {
        reads::list_stages(&self.0, req).await
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, stage = %req.get_ref().stage))]
    async fn delete_stage(&self, req: Request<DeleteStageRequest>) -> Result<Response<DeleteStageResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        let cmd = C::DeleteStage { project: r.project, endpoint: r.endpoint, stage: r.stage, now_ms: now_ms() };
        self.write(cmd).await?;
        Ok(Response::new(DeleteStageResponse {}))
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, stage = %req.get_ref().stage))]
    async fn set_default_stage(&self, req: Request<SetDefaultStageRequest>) -> Result<Response<Endpoint>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        let cmd = C::SetDefaultStage { project: r.project, endpoint: r.endpoint, stage: r.stage, now_ms: now_ms() };
        self.answer(self.write(cmd).await?)
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, stage = %req.get_ref().stage))]
    async fn redeploy_stage(&self, req: Request<RedeployStageRequest>) -> Result<Response<Stage>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        let stage = r.stage.clone();
        let cmd = C::RedeployStage { project: r.project, endpoint: r.endpoint, stage: r.stage, now_ms: now_ms() };
        self.stage_answer(self.write(cmd).await?, &stage)
    }

    async fn get_gateway_config(
        &self,
        req: Request<GetGatewayConfigRequest>,
    ) -> Result<Response<GatewayConfig>, Status> {
        reads::get_gateway_config(&self.0, req).await
    }

    async fn get_stage_stats(&self, req: Request<GetStageStatsRequest>) -> Result<Response<StageStats>, Status> {
        reads::get_stage_stats(&self.0, req).await
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, stage = %req.get_ref().stage))]
    async fn add_stage_resource(&self, req: Request<AddStageResourceRequest>) -> Result<Response<Stage>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        let spec = wire::resource_spec(required("resource", r.resource.as_ref())?);
        spec.validate("resource").map_err(status::invalid)?;
        let stage = r.stage.clone();
        let cmd =
            C::AddStageResource { project: r.project, endpoint: r.endpoint, stage: r.stage, spec, now_ms: now_ms() };
        self.stage_answer(self.write(cmd).await?, &stage)
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, stage = %req.get_ref().stage))]
    async fn delete_stage_resource(&self, req: Request<DeleteStageResourceRequest>) -> Result<Response<Stage>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        let stage = r.stage.clone();
        let cmd = C::DeleteStageResource {
            project: r.project,
            endpoint: r.endpoint,
            stage: r.stage,
            resource_id: r.resource_id,
            now_ms: now_ms(),
        };
        self.stage_answer(self.write(cmd).await?, &stage)
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, stage = %req.get_ref().stage))]
    async fn update_stage_resource(&self, req: Request<UpdateStageResourceRequest>) -> Result<Response<Stage>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        gantry_domain::validate::name("model", &r.model).map_err(status::invalid)?;
        let stage = r.stage.clone();
        let cmd = C::UpdateStageResource {
            project: r.project,
            endpoint: r.endpoint,
            stage: r.stage,
            resource_id: r.resource_id,
            model: r.model,
            now_ms: now_ms(),
        };
        self.stage_answer(self.write(cmd).await?, &stage)
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, endpoint = %req.get_ref().endpoint))]
    async fn create_api_key(&self, req: Request<CreateApiKeyRequest>) -> Result<Response<ApiKey>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        gantry_domain::validate::description("description", &r.description).map_err(status::invalid)?;
        // 32 random bytes: the caller's secret; only its hash is replicated.
        let secret = format!("gk-{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
        let cmd = C::CreateApiKey {
            project: r.project,
            endpoint: r.endpoint.clone(),
            id: new_id("key"),
            description: r.description,
            secret_sha256: sha256_hex(&secret),
            now_ms: now_ms(),
        };
        match self.write(cmd).await? {
            Applied::ApiKey(k) => Ok(Response::new(wire::api_key(&r.endpoint, &k, secret))),
            other => Err(unexpected(other)),
        }
    }

    async fn list_api_keys(&self, req: Request<ListApiKeysRequest>) -> Result<Response<ListApiKeysResponse>, Status> {
        reads::list_api_keys(&self.0, req).await
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, endpoint = %req.get_ref().endpoint))]
    async fn delete_api_key(
        &self,
        req: Request<DeleteApiKeyRequest>,
    ) -> Result<Response<DeleteApiKeyResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        self.write(C::DeleteApiKey { project: r.project, endpoint: r.endpoint, id: r.id }).await?;
        Ok(Response::new(DeleteApiKeyResponse {}))
    }
}
