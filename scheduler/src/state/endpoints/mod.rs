//! Endpoints, stages, stage resources and their pods in the replicated state (design:
//! docs/adr/0003-serving-design.md).
//!
//! ```text
//!   create ─▶ stage instances = workloads (anti-affinity group = stage id)
//!             pods (round-robin over instances, host port each)
//!   ReportPods ─▶ ready / failed ─▶ routes switch to a fully ready generation
//!   ReportGateway ─▶ applied versions ─▶ old generations, retired stages go
//!   after every command: statuses derived again (gantry_domain::endpoint::derive)
//! ```

mod build;
mod command;
mod create;
#[cfg(test)]
pub(super) mod fuzz;
mod gateway;
#[cfg(test)]
pub(super) mod invariants;
mod lifecycle;
mod pods;
mod refresh;
#[cfg(test)]
pub(crate) mod tests;

use gantry_domain::endpoint::{Endpoint, Stage};

pub use build::{DEFAULT_POD_PORTS, serving_image_name};
pub use command::{EndpointCommand, PodReport, StageError, StageMinute};
pub(super) use pods::instance_lost;
pub(super) use refresh::refresh_instance_owner;

use super::{Applied, Outcome, Rejected, State};

/// Applies one endpoint command at log index `index`.
pub(super) fn apply(state: &mut State, index: u64, command: EndpointCommand) -> Outcome {
    use EndpointCommand as C;
    match command {
        C::CreateEndpoint { project, id, stage_id, request_id, spec, now_ms } => {
            create::create_endpoint(state, index, project, id, stage_id, request_id, spec, now_ms)
        }
        C::CreateStage { project, endpoint, stage_id, request_id, spec, now_ms } => {
            create::create_stage(state, index, &project, &endpoint, stage_id, request_id, spec, now_ms)
        }
        C::UpdateEndpoint { project, name, new_name, description, tags, now_ms } => {
            lifecycle::update_endpoint(state, index, &project, &name, new_name, description, tags, now_ms)
        }
        C::DeleteEndpoint { project, name, now_ms } => {
            lifecycle::delete_endpoint(state, index, &project, &name, now_ms)
        }
        C::DeleteStage { project, endpoint, stage, now_ms } => {
            lifecycle::delete_stage(state, index, &project, &endpoint, &stage, now_ms)
        }
        C::SetDefaultStage { project, endpoint, stage, now_ms } => {
            lifecycle::set_default_stage(state, index, &project, &endpoint, &stage, now_ms)
        }
        C::RedeployStage { project, endpoint, stage, now_ms } => {
            let s = stage_mut(state, &project, &endpoint, &stage)?;
            s.config_version = index;
            s.updated_at_ms = now_ms;
            finish(state, index, &project, &endpoint, now_ms)
        }
        C::AddStageResource { project, endpoint, stage, spec, now_ms } => {
            create::add_resource(state, index, &project, &endpoint, &stage, spec, now_ms)
        }
        C::DeleteStageResource { project, endpoint, stage, resource_id, now_ms } => {
            lifecycle::delete_resource(state, index, &project, &endpoint, &stage, &resource_id, now_ms)
        }
        C::UpdateStageResource { project, endpoint, stage, resource_id, model, now_ms } => {
            lifecycle::update_resource(state, index, &project, &endpoint, &stage, &resource_id, &model, now_ms)
        }
        C::CreateApiKey { project, endpoint, id, description, secret_sha256, now_ms } => {
            lifecycle::create_api_key(state, &project, &endpoint, id, description, secret_sha256, now_ms)
        }
        C::DeleteApiKey { project, endpoint, id } => {
            let e = endpoint_mut(state, &project, &endpoint)?;
            let before = e.api_keys.len();
            e.api_keys.retain(|k| k.id != id);
            if e.api_keys.len() == before {
                return Err(Rejected::not_found(format!("API key '{id}' of endpoint '{endpoint}'")));
            }
            Ok(Applied::Done)
        }
        C::ReportPods { node_id, workload_id, pods, now_ms } => {
            pods::report_pods(state, index, &node_id, &workload_id, pods, now_ms)
        }
        C::ReportGateway { gateway_id, applied_version, errors, minutes, now_ms } => {
            gateway::report_gateway(state, index, &gateway_id, applied_version, errors, minutes, now_ms)
        }
    }
}

/// The names of the project's endpoints with a stage resource serving `model_id`
/// (what keeps the model from being deleted).
pub fn endpoint_names_using_model(state: &State, project: &str, model_id: &str) -> Vec<String> {
    let Some(p) = state.project(project) else { return Vec::new() };
    p.endpoints
        .values()
        .filter(|e| {
            e.stages.values().flat_map(|s| s.resources.iter()).any(|r| {
                // An older generation still running counts too: its pods serve the model.
                r.model_id == model_id || r.pods.iter().any(|p| p.served.model_id == model_id)
            })
        })
        .map(|e| e.meta.name.clone())
        .collect()
}

pub(super) fn endpoint_mut<'a>(state: &'a mut State, project: &str, name: &str) -> Result<&'a mut Endpoint, Rejected> {
    state
        .projects
        .get_mut(project)
        .and_then(|p| p.endpoints.get_mut(name))
        .ok_or_else(|| Rejected::not_found(format!("endpoint '{name}'")))
}

pub(super) fn stage_mut<'a>(
    state: &'a mut State,
    project: &str,
    endpoint: &str,
    stage: &str,
) -> Result<&'a mut Stage, Rejected> {
    endpoint_mut(state, project, endpoint)?
        .stages
        .get_mut(stage)
        .ok_or_else(|| Rejected::not_found(format!("stage '{stage}' of endpoint '{endpoint}'")))
}

/// Statuses derived again, pending removals done; answers with the endpoint (or Done
/// when it is gone).
fn finish(state: &mut State, index: u64, project: &str, endpoint: &str, now_ms: u64) -> Outcome {
    refresh::settle_project(state, index, project, Some(now_ms));
    match state.project(project).and_then(|p| p.endpoints.get(endpoint)) {
        Some(e) => Ok(Applied::Endpoint(e.clone())),
        None => Ok(Applied::Done),
    }
}
