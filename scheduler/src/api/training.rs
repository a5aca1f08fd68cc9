//! TrainingService.

use gantry_proto::convert;
use gantry_proto::v1::training_service_server::TrainingService;
use gantry_proto::v1::*;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::catalog::unexpected;
use super::context::{ApiContext, new_id, now_ms};
use super::status;
use crate::state::{Applied, CommandV1};

pub struct TrainingApi(pub ApiContext);

fn to_wire(t: &gantry_domain::Training) -> Training {
    convert::training_to_wire(t, t.placement.as_ref(), now_ms())
}

fn applied_training(applied: Applied) -> Result<Response<Training>, Status> {
    match applied {
        Applied::Training { training, placement } => {
            Ok(Response::new(convert::training_to_wire(&training, placement.as_ref(), now_ms())))
        }
        other => Err(unexpected(other)),
    }
}

#[tonic::async_trait]
impl TrainingService for TrainingApi {
    type TrainingLogsStream = ReceiverStream<Result<TrainingLogsChunk, Status>>;

    /// Relays one container's output from the agent of the node it ran on. Any replica
    /// can serve it: every agent holds a session with every replica.
    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project, name = %req.get_ref().name))]
    async fn training_logs(
        &self,
        req: Request<TrainingLogsRequest>,
    ) -> Result<Response<Self::TrainingLogsStream>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let req = req.into_inner();
        self.0.read_barrier(None).await?;
        let (workload_id, node_id) = {
            let state = self.0.raft.state();
            let t = state
                .training(&req.project, &req.name)
                .ok_or_else(|| Status::not_found(format!("training '{}' not found", req.name)))?;
            if let Some(why) = logs_not_kept(t, req.follow) {
                return Err(Status::failed_precondition(why));
            }
            let placement = t.placement.as_ref().ok_or_else(|| {
                Status::failed_precondition(format!("training '{}' has not been placed yet ({})", req.name, t.status))
            })?;
            let a = placement.assignments.get(req.rank as usize).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "rank: training '{}' has {} container(s), ranks 0..{}",
                    req.name,
                    placement.assignments.len(),
                    placement.assignments.len()
                ))
            })?;
            (t.workload_id.clone(), a.node_id.clone())
        };
        let request =
            LogRequest { request_id: 0, workload_id, rank: req.rank, follow: req.follow, tail_lines: req.tail_lines };
        let mut sub = self.0.hub.open_log(&node_id, request)?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let item = match sub.next().await {
                    Some(c) if !c.error.is_empty() => Err(Status::not_found(c.error)),
                    Some(c) if c.eof => {
                        if !c.data.is_empty() {
                            let _ = tx.send(Ok(TrainingLogsChunk { data: c.data })).await;
                        }
                        return;
                    }
                    Some(c) => Ok(TrainingLogsChunk { data: c.data }),
                    None => Err(Status::unavailable(format!("node {node_id}'s agent went away; retry"))),
                };
                let last = item.is_err();
                if tx.send(item).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    #[tracing::instrument(skip_all, fields(project = %req.get_ref().project))]
    async fn create_training(&self, req: Request<CreateTrainingRequest>) -> Result<Response<Training>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let req = req.into_inner();
        let wire = req.spec.ok_or_else(|| Status::invalid_argument("spec: is required"))?;
        let spec = convert::training_spec_from_wire(&wire).map_err(status::invalid)?;
        // The state machine checks the grants again when the entry applies; checking
        // here first answers a denied path without a raft round.
        self.0.raft.state().grants(&req.project).check_all(spec.storage_paths()).map_err(status::grant_denied)?;
        let cmd = CommandV1::CreateTraining {
            project: req.project,
            id: new_id("trn"),
            experiment_id: new_id("exp"),
            request_id: req.request_id,
            spec,
            now_ms: now_ms(),
        };
        applied_training(self.0.write(cmd).await?)
    }

    #[tracing::instrument(skip_all)]
    async fn get_training(&self, req: Request<GetTrainingRequest>) -> Result<Response<Training>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let r = req.get_ref();
        let state = self.0.raft.state();
        let t = state
            .training(&r.project, &r.name)
            .ok_or_else(|| Status::not_found(format!("training '{}' not found", r.name)))?;
        Ok(Response::new(to_wire(t)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_trainings(
        &self,
        req: Request<ListTrainingsRequest>,
    ) -> Result<Response<ListTrainingsResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        self.0.read_barrier(req.get_ref().read.as_ref()).await?;
        let r = req.get_ref();
        let state = self.0.raft.state();
        let experiment_id = if r.experiment.is_empty() {
            None
        } else {
            let e = state
                .experiment(&r.project, &r.experiment)
                .ok_or_else(|| Status::not_found(format!("experiment '{}' not found", r.experiment)))?;
            Some(e.meta.id.clone())
        };
        let trainings = state
            .project(&r.project)
            .into_iter()
            .flat_map(|p| p.trainings.values())
            .filter(|t| experiment_id.as_ref().is_none_or(|id| &t.experiment_id == id))
            .map(to_wire)
            .collect();
        Ok(Response::new(ListTrainingsResponse { trainings }))
    }

    #[tracing::instrument(skip_all)]
    async fn stop_training(&self, req: Request<StopTrainingRequest>) -> Result<Response<Training>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        applied_training(
            self.0
                .write(CommandV1::StopTraining {
                    project: r.project,
                    name: r.name,
                    now_ms: now_ms(),
                    reason: String::new(),
                })
                .await?,
        )
    }

    #[tracing::instrument(skip_all)]
    async fn delete_training(
        &self,
        req: Request<DeleteTrainingRequest>,
    ) -> Result<Response<DeleteTrainingResponse>, Status> {
        self.0.auth.authenticate(&req)?.authorize_project(&req.get_ref().project)?;
        let r = req.into_inner();
        self.0.write(CommandV1::DeleteTraining { project: r.project, name: r.name }).await?;
        Ok(Response::new(DeleteTrainingResponse {}))
    }
}

/// Why `t`'s logs cannot be served, when its log management is off (`use_log = false`):
/// its nodes keep none of its output, so there is no history to read or search; only
/// following it live while it runs works.
fn logs_not_kept(t: &gantry_domain::Training, follow: bool) -> Option<String> {
    if t.spec.use_log {
        return None;
    }
    let name = &t.meta.name;
    if t.status.is_terminal() {
        Some(format!(
            "training '{name}' ran with log management off (use_log = false) and has ended: none of its output was kept"
        ))
    } else if !follow {
        Some(format!(
            "training '{name}' has log management off (use_log = false): its output is not kept, so there is no \
             history to read or search; follow it live while it runs (gantryctl training logs -f {name})"
        ))
    } else {
        None
    }
}
