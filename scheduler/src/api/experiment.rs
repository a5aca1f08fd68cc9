//! ExperimentService.

use gantry_proto::convert;
use gantry_proto::v1::experiment_service_server::ExperimentService;
use gantry_proto::v1::*;
use tonic::{Request, Response, Status};

use super::catalog::unexpected;
use super::context::{ApiContext, new_id, now_ms};
use super::status;
use crate::state::{Applied, CommandV1, State};

pub struct ExperimentApi(pub ApiContext);

fn to_wire(state: &State, e: &gantry_domain::Experiment) -> Experiment {
    let count = state.trainings_of_experiment(&e.meta.project, &e.meta.id).count() as u32;
    convert::experiment_to_wire(e, count)
}

#[tonic::async_trait]
impl ExperimentService for ExperimentApi {
    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, name = %req.get_ref().name))]
    async fn create_experiment(&self, req: Request<CreateExperimentRequest>) -> Result<Response<Experiment>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let req = req.into_inner();
        let spec = convert::experiment_spec_from_wire(&req).map_err(status::invalid)?;
        let cmd = CommandV1::CreateExperiment {
            project: req.project,
            id: new_id("exp"),
            request_id: req.request_id,
            spec,
            now_ms: now_ms(),
        };
        match self.0.write(cmd).await? {
            Applied::Experiment(e) => Ok(Response::new(to_wire(&self.0.raft.state(), &e))),
            other => Err(unexpected(other)),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn get_experiment(&self, req: Request<GetExperimentRequest>) -> Result<Response<Experiment>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let r = req.get_ref();
        let state = self.0.raft.state();
        let e = state
            .experiment(&r.project, &r.name)
            .ok_or_else(|| Status::not_found(format!("experiment '{}' not found", r.name)))?;
        Ok(Response::new(to_wire(&state, e)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_experiments(
        &self,
        req: Request<ListExperimentsRequest>,
    ) -> Result<Response<ListExperimentsResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let experiments = state
            .project(&req.get_ref().project)
            .map(|p| p.experiments.values().map(|e| to_wire(&state, e)).collect())
            .unwrap_or_default();
        Ok(Response::new(ListExperimentsResponse { experiments }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_experiment(
        &self,
        req: Request<DeleteExperimentRequest>,
    ) -> Result<Response<DeleteExperimentResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        self.0.write(CommandV1::DeleteExperiment { project: r.project, name: r.name }).await?;
        Ok(Response::new(DeleteExperimentResponse {}))
    }
}
