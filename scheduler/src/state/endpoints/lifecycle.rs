//! Updates and deletes of endpoints, stages and resources; default stage; API keys.

use gantry_domain::endpoint::ApiKey;
use gantry_domain::{Tag, validate};

use super::build::{self, DEFAULT_POD_PORTS};
use super::{endpoint_mut, finish, stage_mut};
use crate::state::release;
use crate::state::{Applied, Outcome, Rejected, State};

#[allow(clippy::too_many_arguments)]
pub(super) fn update_endpoint(
    state: &mut State,
    index: u64,
    project: &str,
    name: &str,
    new_name: Option<String>,
    description: Option<String>,
    tags: Option<Vec<Tag>>,
    now_ms: u64,
) -> Outcome {
    if let Some(n) = &new_name {
        validate::name("new_name", n)?;
    }
    if let Some(d) = &description {
        validate::description("description", d)?;
    }
    if let Some(t) = &tags {
        validate::tags("tags", t)?;
    }
    let taken = new_name
        .as_ref()
        .is_some_and(|n| n != name && state.project(project).is_some_and(|p| p.endpoints.contains_key(n)));
    if taken {
        return Err(Rejected::AlreadyExists { what: format!("endpoint '{}'", new_name.unwrap_or_default()) });
    }
    let e = endpoint_mut(state, project, name)?;
    if let Some(d) = description {
        e.meta.description = d;
    }
    if let Some(t) = tags {
        e.meta.tags = t;
    }
    e.meta.updated_at_ms = now_ms;
    let mut current = name.to_string();
    if let Some(n) = new_name.filter(|n| n != name) {
        // The endpoint's name is in its routes: every stage's version moves.
        for s in e.stages.values_mut() {
            s.config_version = index;
        }
        let p = state.projects.get_mut(project).ok_or_else(|| Rejected::not_found(format!("endpoint '{name}'")))?;
        if let Some(mut e) = p.endpoints.remove(name) {
            e.meta.name = n.clone();
            p.endpoints.insert(n.clone(), e);
        }
        current = n;
    }
    finish(state, index, project, &current, now_ms)
}

/// Only the default stage may remain: it goes with the endpoint.
pub(super) fn delete_endpoint(state: &mut State, index: u64, project: &str, name: &str, now_ms: u64) -> Outcome {
    let e = endpoint_mut(state, project, name)?;
    let others: Vec<String> = e.stages.keys().filter(|s| **s != e.default_stage).cloned().collect();
    if !others.is_empty() {
        return Err(Rejected::precondition(format!(
            "endpoint '{name}' has stages other than the default ({}): delete them first",
            others.join(", ")
        )));
    }
    e.deleting = true;
    e.meta.updated_at_ms = now_ms;
    let stages: Vec<String> = e.stages.keys().cloned().collect();
    for s in stages {
        begin_stage_delete(state, index, project, name, &s, now_ms)?;
    }
    finish(state, index, project, name, now_ms)
}

pub(super) fn delete_stage(
    state: &mut State,
    index: u64,
    project: &str,
    endpoint: &str,
    stage: &str,
    now_ms: u64,
) -> Outcome {
    let e = endpoint_mut(state, project, endpoint)?;
    if e.default_stage == stage {
        return Err(Rejected::precondition(format!(
            "stage '{stage}' is the default stage of endpoint '{endpoint}': it cannot be deleted"
        )));
    }
    stage_mut(state, project, endpoint, stage)?;
    begin_stage_delete(state, index, project, endpoint, stage, now_ms)?;
    finish(state, index, project, endpoint, now_ms)
}

/// Routes go at once (the route table skips a deleting stage); the instances end, and
/// the stage is removed once their containers are gone.
pub(super) fn begin_stage_delete(
    state: &mut State,
    index: u64,
    project: &str,
    endpoint: &str,
    stage: &str,
    now_ms: u64,
) -> Result<(), Rejected> {
    let s = stage_mut(state, project, endpoint, stage)?;
    s.deleting = true;
    s.retire_after = None;
    s.config_version = index;
    s.updated_at_ms = now_ms;
    let instances = s.instances.clone();
    for w in instances {
        release::end(state, &w);
    }
    Ok(())
}

/// The chosen stage becomes the default in one table version; the former default is
/// deleted once every live gateway applied that version (see `refresh`).
pub(super) fn set_default_stage(
    state: &mut State,
    index: u64,
    project: &str,
    endpoint: &str,
    stage: &str,
    now_ms: u64,
) -> Outcome {
    let e = endpoint_mut(state, project, endpoint)?;
    let target =
        e.stages.get(stage).ok_or_else(|| Rejected::not_found(format!("stage '{stage}' of endpoint '{endpoint}'")))?;
    if target.deleting {
        return Err(Rejected::precondition(format!("stage '{stage}' is being deleted")));
    }
    if e.default_stage == stage {
        return finish(state, index, project, endpoint, now_ms);
    }
    let old = std::mem::replace(&mut e.default_stage, stage.to_string());
    e.meta.updated_at_ms = now_ms;
    if let Some(s) = e.stages.get_mut(stage) {
        s.config_version = index;
        s.retire_after = None;
    }
    if let Some(s) = e.stages.get_mut(&old) {
        s.config_version = index;
        s.retire_after = Some(index);
    }
    finish(state, index, project, endpoint, now_ms)
}

pub(super) fn delete_resource(
    state: &mut State,
    index: u64,
    project: &str,
    endpoint: &str,
    stage: &str,
    resource_id: &str,
    now_ms: u64,
) -> Outcome {
    let placed = {
        let s = state.project(project).and_then(|p| p.endpoints.get(endpoint)).and_then(|e| e.stages.get(stage));
        s.map(|s| super::refresh::placed(state, s)).unwrap_or_default()
    };
    let s = stage_mut(state, project, endpoint, stage)?;
    let live = s.resources.iter().filter(|r| !r.deleting).count();
    let r = s
        .resources
        .iter_mut()
        .find(|r| r.id == resource_id)
        .ok_or_else(|| Rejected::not_found(format!("resource '{resource_id}' of stage '{stage}'")))?;
    if r.deleting {
        return finish(state, index, project, endpoint, now_ms);
    }
    if live <= 1 {
        return Err(Rejected::precondition(format!(
            "resource '{resource_id}' is the last of stage '{stage}': delete the stage instead"
        )));
    }
    r.deleting = true;
    // Pods on an instance that is not placed run nowhere: nothing to wait for.
    r.pods.retain(|p| placed.get(p.instance_index as usize).copied().unwrap_or(false));
    s.config_version = index;
    s.updated_at_ms = now_ms;
    finish(state, index, project, endpoint, now_ms)
}

/// A surge to `model`: a new generation of pods; the routes switch when it is ready.
#[allow(clippy::too_many_arguments)]
pub(super) fn update_resource(
    state: &mut State,
    index: u64,
    project: &str,
    endpoint: &str,
    stage: &str,
    resource_id: &str,
    model: &str,
    now_ms: u64,
) -> Outcome {
    validate::name("model", model)?;
    let served = build::resolve_model(state, project, model, "model")?;
    let mut used = build::used_ports(state);
    let range = state.pod_ports.unwrap_or(DEFAULT_POD_PORTS);
    let s = stage_mut(state, project, endpoint, stage)?;
    let instances = s.instance_count;
    let offset = s.resources.iter().position(|r| r.id == resource_id).unwrap_or(0) as u32;
    let slot = s
        .resources
        .iter_mut()
        .find(|r| r.id == resource_id && !r.deleting)
        .ok_or_else(|| Rejected::not_found(format!("resource '{resource_id}' of stage '{stage}'")))?;
    // Worked on a copy: running out of ports leaves the resource as it was.
    let mut r = slot.clone();
    // A generation that never became ready is replaced outright; its ports are free.
    let routed = r.routed_generation;
    for p in r.pods.iter().filter(|p| Some(p.generation) != routed) {
        used.remove(&p.host_port);
    }
    r.pods.retain(|p| Some(p.generation) == routed);
    r.generation += 1;
    r.failed = None;
    r.model_id = served.model_id.clone();
    r.model = served.model.clone();
    build::fill_pods(&mut r, &served, instances, offset, &mut used, range)?;
    *slot = r;
    s.updated_at_ms = now_ms;
    finish(state, index, project, endpoint, now_ms)
}

pub(super) fn create_api_key(
    state: &mut State,
    project: &str,
    endpoint: &str,
    id: String,
    description: String,
    secret_sha256: String,
    now_ms: u64,
) -> Outcome {
    validate::description("description", &description)?;
    let hex = secret_sha256.len() == 64 && secret_sha256.chars().all(|c| c.is_ascii_hexdigit());
    if !hex {
        return Err(Rejected::invalid("secret_sha256", "must be 64 hex digits"));
    }
    let e = endpoint_mut(state, project, endpoint)?;
    if e.api_keys.len() >= MAX_API_KEYS {
        return Err(Rejected::precondition(format!("endpoint '{endpoint}' has {MAX_API_KEYS} API keys already")));
    }
    let key = ApiKey { id, description, secret_sha256, created_at_ms: now_ms };
    e.api_keys.push(key.clone());
    Ok(Applied::ApiKey(key))
}

/// Keys per endpoint: every one is checked on each call, so the list stays short.
pub const MAX_API_KEYS: usize = 20;
