//! Creating endpoints, stages and stage resources.

use gantry_domain::Meta;
use gantry_domain::endpoint::{Endpoint, EndpointSpec, EndpointStatus, StageResourceSpec, StageSpec, spec};

use super::build::{self, DEFAULT_POD_PORTS};
use super::{finish, stage_mut};
use crate::state::{Applied, Outcome, Rejected, State};

#[allow(clippy::too_many_arguments)]
pub(super) fn create_endpoint(
    state: &mut State,
    index: u64,
    project: String,
    id: String,
    stage_id: String,
    request_id: String,
    spec: EndpointSpec,
    now_ms: u64,
) -> Outcome {
    spec.validate()?;
    if let Some(existing) = state.project(&project).and_then(|p| p.endpoints.get(&spec.name)) {
        if !request_id.is_empty() && existing.meta.request_id == request_id {
            return Ok(Applied::Endpoint(existing.clone()));
        }
        return Err(Rejected::AlreadyExists { what: format!("endpoint '{}'", spec.name) });
    }
    let served = build::resolve_all(state, &project, &spec.stage)?;
    let mut stage = build::new_stage(state, stage_id, &spec.stage, served, now_ms)?;
    for i in 0..stage.instance_count {
        build::add_instance(state, index, &project, &id, &mut stage, i);
    }
    let name = spec.name.clone();
    let endpoint = Endpoint {
        meta: Meta {
            id,
            project: project.clone(),
            name: spec.name,
            description: spec.description,
            tags: spec.tags,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            request_id,
        },
        status: EndpointStatus::CreateRequested,
        status_reason: String::new(),
        default_stage: stage.name.clone(),
        stages: [(stage.name.clone(), stage)].into(),
        api_keys: Vec::new(),
        deleting: false,
    };
    state.projects.entry(project.clone()).or_default().endpoints.insert(name.clone(), endpoint);
    finish(state, index, &project, &name, now_ms)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn create_stage(
    state: &mut State,
    index: u64,
    project: &str,
    endpoint: &str,
    stage_id: String,
    request_id: String,
    spec: StageSpec,
    now_ms: u64,
) -> Outcome {
    spec.validate("stage")?;
    let e = super::endpoint_mut(state, project, endpoint)?;
    if e.deleting {
        return Err(Rejected::precondition(format!("endpoint '{endpoint}' is being deleted")));
    }
    if let Some(existing) = e.stages.get(&spec.name) {
        // The stage id is the proposer's fresh id: a retry carries the same request id.
        if !request_id.is_empty() && existing.id == stage_id {
            return finish(state, index, project, endpoint, now_ms);
        }
        return Err(Rejected::AlreadyExists { what: format!("stage '{}' of endpoint '{endpoint}'", spec.name) });
    }
    let endpoint_id = e.meta.id.clone();
    let served = build::resolve_all(state, project, &spec)?;
    let mut stage = build::new_stage(state, stage_id, &spec, served, now_ms)?;
    for i in 0..stage.instance_count {
        build::add_instance(state, index, project, &endpoint_id, &mut stage, i);
    }
    let e = super::endpoint_mut(state, project, endpoint)?;
    e.stages.insert(stage.name.clone(), stage);
    e.meta.updated_at_ms = now_ms;
    finish(state, index, project, endpoint, now_ms)
}

pub(super) fn add_resource(
    state: &mut State,
    index: u64,
    project: &str,
    endpoint: &str,
    stage: &str,
    spec: StageResourceSpec,
    now_ms: u64,
) -> Outcome {
    spec.validate("resource")?;
    let served = build::resolve_model(state, project, &spec.model, "resource.model")?;
    let mut used = build::used_ports(state);
    let range = state.pod_ports.unwrap_or(DEFAULT_POD_PORTS);
    let s = stage_mut(state, project, endpoint, stage)?;
    if s.deleting {
        return Err(Rejected::precondition(format!("stage '{stage}' is being deleted")));
    }
    let live: Vec<&str> = s.resources.iter().filter(|r| !r.deleting).map(|r| r.resource_path.as_str()).collect();
    if live.len() >= spec::RESOURCES_MAX {
        return Err(Rejected::invalid("resource", format!("a stage has at most {} resources", spec::RESOURCES_MAX)));
    }
    if live.contains(&spec.resource_path.as_str()) {
        return Err(Rejected::invalid(
            "resource.resource_path",
            format!("the stage already has a resource at '{}'", spec.resource_path),
        ));
    }
    build::new_resource(s, &spec, served, &mut used, range)?;
    s.updated_at_ms = now_ms;
    finish(state, index, project, endpoint, now_ms)
}
