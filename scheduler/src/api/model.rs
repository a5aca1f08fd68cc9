//! ModelService: models made from COMPLETE trainings or external artifacts.
//!
//! PyTorch: the guide requires a PyTorch model's name to equal the PyTorch model name.
//! The serving contract loads `{artifact_path}/{name}.pt`, so the rule is enforced when
//! an endpoint loads the model (a missing file fails the endpoint's creation with the
//! reason), not here: the artifact may sit on storage this replica cannot see.

use gantry_domain::{Access, ModelSource, StoragePath, TrainingStatus};
use gantry_proto::convert;
use gantry_proto::v1::model_service_server::ModelService;
use gantry_proto::v1::*;
use tonic::{Request, Response, Status};

use super::catalog::unexpected;
use super::context::{ApiContext, new_id, now_ms};
use super::status;
use crate::state::{Applied, CommandV1, State};

pub struct ModelApi(pub ApiContext);

fn to_wire(state: &State, m: &gantry_domain::Model) -> Model {
    convert::model_to_wire(m, state.endpoints_using_model(&m.meta.project, &m.meta.id))
}

impl ModelApi {
    fn applied_model(&self, applied: Applied) -> Result<Response<Model>, Status> {
        match applied {
            Applied::Model(m) => Ok(Response::new(to_wire(&self.0.raft.state(), &m))),
            other => Err(unexpected(other)),
        }
    }
}

/// Where a create's artifact comes from, checked against the current state for good
/// errors (apply checks all of it again): the source, and the path and field to check
/// the project's read grant on.
fn resolve_source(
    state: &State,
    project: &str,
    create: &convert::ModelCreate,
) -> Result<(ModelSource, String, &'static str), Status> {
    let Some(name) = &create.from_training else {
        return Ok((ModelSource::External, create.spec.artifact_path.clone(), "artifact_path"));
    };
    let t = state.training(project, name).ok_or_else(|| Status::not_found(format!("training '{name}' not found")))?;
    if t.status != TrainingStatus::Complete {
        return Err(Status::failed_precondition(format!(
            "training '{name}' is {}: a model can only be made from a COMPLETE training",
            t.status
        )));
    }
    let source = ModelSource::Training { training_id: t.meta.id.clone(), training_name: name.clone() };
    Ok((source, t.spec.output_path.to_string(), "from_training"))
}

#[tonic::async_trait]
impl ModelService for ModelApi {
    /// From a COMPLETE training (its output path) or an external artifact path the
    /// project may read. A PyTorch model's name must be the PyTorch model name: checked
    /// when an endpoint loads `{artifact_path}/{name}.pt` (see the module docs).
    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, name = %req.get_ref().name))]
    async fn create_model(&self, req: Request<CreateModelRequest>) -> Result<Response<Model>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let req = req.into_inner();
        let create = convert::model_create_from_wire(&req).map_err(status::invalid)?;
        let source = {
            let state = self.0.raft.state();
            let (source, path, field) = resolve_source(&state, &req.project, &create)?;
            let path = StoragePath::parse(field, &path).map_err(status::invalid)?;
            state
                .grants(&req.project)
                .check(field, Access::Read, &path)
                .map_err(|e| Status::permission_denied(e.to_string()))?;
            source
        };
        let cmd = CommandV1::CreateModel {
            project: req.project,
            id: new_id("mdl"),
            request_id: req.request_id,
            spec: create.spec,
            source,
            now_ms: now_ms(),
        };
        self.applied_model(self.0.write(cmd).await?)
    }

    #[tracing::instrument(skip_all)]
    async fn get_model(&self, req: Request<GetModelRequest>) -> Result<Response<Model>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let r = req.get_ref();
        let state = self.0.raft.state();
        let m = state
            .model(&r.project, &r.name)
            .ok_or_else(|| Status::not_found(format!("model '{}' not found", r.name)))?;
        Ok(Response::new(to_wire(&state, m)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_models(&self, req: Request<ListModelsRequest>) -> Result<Response<ListModelsResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let state = self.0.raft.state();
        let models = state
            .project(&req.get_ref().project)
            .map(|p| p.models.values().map(|m| to_wire(&state, m)).collect())
            .unwrap_or_default();
        Ok(Response::new(ListModelsResponse { models }))
    }

    /// Name, description and tags: what the guide lets a user change.
    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, name = %req.get_ref().name))]
    async fn update_model(&self, req: Request<UpdateModelRequest>) -> Result<Response<Model>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        use gantry_domain::validate;
        if let Some(new_name) = &r.new_name {
            validate::name("new_name", new_name).map_err(status::invalid)?;
        }
        if let Some(description) = &r.description {
            validate::description("description", description).map_err(status::invalid)?;
        }
        if !r.set_tags && !r.tags.is_empty() {
            return Err(Status::invalid_argument("tags: set set_tags to replace the tags"));
        }
        let tags = r.set_tags.then(|| convert::tags_from_wire(&r.tags));
        if let Some(tags) = &tags {
            validate::tags("tags", tags).map_err(status::invalid)?;
        }
        let cmd = CommandV1::UpdateModel {
            project: r.project,
            name: r.name,
            new_name: r.new_name,
            description: r.description,
            tags,
            now_ms: now_ms(),
        };
        self.applied_model(self.0.write(cmd).await?)
    }

    /// Refused (FAILED_PRECONDITION naming them) while endpoints use the model.
    #[tracing::instrument(skip_all)]
    async fn delete_model(&self, req: Request<DeleteModelRequest>) -> Result<Response<DeleteModelResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        self.0.write(CommandV1::DeleteModel { project: r.project, name: r.name }).await?;
        Ok(Response::new(DeleteModelResponse {}))
    }
}
