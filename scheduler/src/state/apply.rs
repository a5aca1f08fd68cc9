//! `apply`: the deterministic transition function of the replicated state.

use std::collections::BTreeSet;

use gantry_domain::training::StatusChange;
use gantry_domain::{Experiment, ExperimentStatus, Meta, Training, TrainingStatus, WorkloadDemand};

use super::containers::{self, ContainerPhase};
use super::{Applied, Command, CommandV1, Outcome, Project, Rejected, State, Workload, WorkloadOwner};
use super::{endpoints, gpu_health, models, nodes, ownership, release, rendezvous, revocations};

/// Applies the entry at `index`. Must be called with strictly increasing indexes; the
/// outcome depends only on `state` and `command`.
pub fn apply(state: &mut State, index: u64, command: Command) -> Outcome {
    state.applied_index = index;
    let Command::V1(command) = command;
    match command {
        CommandV1::PutInstanceType { instance_type } => {
            instance_type.validate()?;
            state.instance_types.insert(instance_type.name.clone(), instance_type.clone());
            Ok(Applied::InstanceType(instance_type))
        }
        CommandV1::DeleteInstanceType { name } => {
            state.instance_types.remove(&name).ok_or_else(|| Rejected::not_found(format!("instance type '{name}'")))?;
            Ok(Applied::Done)
        }
        CommandV1::PutImage { image } => {
            image.validate()?;
            state.images.insert(image.name.clone(), image.clone());
            Ok(Applied::Image(image))
        }
        CommandV1::DeleteImage { name } => {
            state.images.remove(&name).ok_or_else(|| Rejected::not_found(format!("image '{name}'")))?;
            Ok(Applied::Done)
        }
        CommandV1::RegisterNode { hostname, address, inventory, now_ms } => {
            nodes::register_node(state, hostname, address, inventory, now_ms)
        }
        CommandV1::SetNodeStatus { node_id, status, now_ms, reason } => {
            nodes::set_node_status(state, &node_id, status, &reason, now_ms)
        }
        CommandV1::CreateExperiment { project, id, request_id, spec, now_ms } => {
            let p = state.projects.entry(project.clone()).or_default();
            if let Some(existing) = p.experiments.get(&spec.name) {
                if !request_id.is_empty() && existing.meta.request_id == request_id {
                    return Ok(Applied::Experiment(existing.clone()));
                }
                return Err(Rejected::AlreadyExists { what: format!("experiment '{}'", spec.name) });
            }
            let meta = Meta {
                id,
                project,
                name: spec.name.clone(),
                description: spec.description,
                tags: spec.tags,
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
                request_id,
            };
            // Nothing needs provisioning for an experiment on bare metal: it is ACTIVE
            // as soon as it is committed.
            let e = Experiment { meta, status: ExperimentStatus::Active, status_reason: String::new() };
            p.experiments.insert(spec.name, e.clone());
            Ok(Applied::Experiment(e))
        }
        CommandV1::DeleteExperiment { project, name } => {
            let e =
                state.experiment(&project, &name).ok_or_else(|| Rejected::not_found(format!("experiment '{name}'")))?;
            let trainings = state.trainings_of_experiment(&project, &e.meta.id).count();
            if trainings > 0 {
                return Err(Rejected::precondition(format!(
                    "experiment '{name}' has {trainings} training(s): delete them first"
                )));
            }
            if let Some(p) = state.projects.get_mut(&project) {
                p.experiments.remove(&name);
            }
            Ok(Applied::Done)
        }
        CommandV1::CreateTraining { project, id, experiment_id, request_id, spec, now_ms } => {
            create_training(state, index, project, id, experiment_id, request_id, spec, now_ms)
        }
        CommandV1::StopTraining { project, name, now_ms, reason } => {
            stop_training(state, &project, &name, reason, now_ms)
        }
        CommandV1::DeleteTraining { project, name } => {
            let t = state.training(&project, &name).ok_or_else(|| Rejected::not_found(format!("training '{name}'")))?;
            if !t.status.is_terminal() {
                return Err(Rejected::precondition(format!(
                    "training '{name}' is {}: stop it before deleting",
                    t.status
                )));
            }
            models::check_no_model_from(state, &project, &t.meta.id, &name)?;
            if let Some(p) = state.projects.get_mut(&project) {
                p.trainings.remove(&name);
            }
            Ok(Applied::Done)
        }
        CommandV1::Place { workload_id, placement, now_ms, ports } => {
            place(state, index, &workload_id, placement, ports, now_ms)
        }
        CommandV1::SetPendingReasons { reasons, now_ms } => {
            for (workload_id, reason) in reasons {
                let unchanged = state
                    .workloads
                    .get(&workload_id)
                    .is_none_or(|w| w.placement.is_some() || w.pending_reason == reason);
                if unchanged {
                    continue;
                }
                let Some(mut w) = state.workloads.get_mut(&workload_id) else { continue };
                w.pending_reason = reason.clone();
                let owner = w.owner.clone();
                drop(w);
                match &owner {
                    WorkloadOwner::Training { project, name } => {
                        if let Some(t) = state.projects.get_mut(project).and_then(|p| p.trainings.get_mut(name)) {
                            t.status_reason = reason;
                            t.meta.updated_at_ms = now_ms;
                        }
                    }
                    WorkloadOwner::StageInstance { .. } => endpoints::refresh_instance_owner(state, index, &owner),
                }
            }
            Ok(Applied::Done)
        }
        CommandV1::ReportContainer { node_id, workload_id, rank, phase, reason, now_ms } => {
            report_container(state, &node_id, &workload_id, rank, phase, reason, now_ms)
        }
        CommandV1::ContainerGone { node_id, workload_id, rank } => {
            let owner = state.workloads.get(&workload_id).map(|w| w.owner.clone());
            let out = release::container_gone(state, &node_id, &workload_id, rank)?;
            if let Some(owner) = owner {
                endpoints::refresh_instance_owner(state, index, &owner);
            }
            Ok(out)
        }
        CommandV1::SetTrainingStatus { project, name, status, reason, now_ms } => {
            set_training_status(state, &project, &name, status, reason, now_ms)
        }
        CommandV1::SetStorageGrants { project, grants } => {
            gantry_domain::validate::name("project", &project)?;
            if grants.is_empty() {
                state.storage_grants.remove(&project);
            } else {
                state.storage_grants.insert(project, grants);
            }
            Ok(Applied::Done)
        }
        CommandV1::Noop => Ok(Applied::Done),
        CommandV1::JoinNode { hostname, address, inventory, now_ms, key } => {
            revocations::join_node(state, hostname, address, inventory, now_ms, key)
        }
        CommandV1::RevokeNode { node_id, reason, now_ms } => revocations::revoke_node(state, &node_id, &reason, now_ms),
        CommandV1::AdmitNode { node_id } => revocations::admit_node(state, &node_id),
        CommandV1::SetGpuHealth { node_id, unhealthy, now_ms } => {
            gpu_health::set_gpu_health(state, &node_id, unhealthy, now_ms)
        }
        CommandV1::CreateModel { project, id, request_id, spec, source, now_ms } => {
            models::create_model(state, project, id, request_id, spec, source, now_ms)
        }
        CommandV1::UpdateModel { project, name, new_name, description, tags, now_ms } => {
            models::update_model(state, &project, &name, models::ModelChanges { new_name, description, tags }, now_ms)
        }
        CommandV1::DeleteModel { project, name } => models::delete_model(state, &project, &name),
        CommandV1::Endpoint(c) => endpoints::apply(state, index, c),
    }
}

#[allow(clippy::too_many_arguments)]
fn create_training(
    state: &mut State,
    index: u64,
    project: String,
    id: String,
    experiment_id: String,
    request_id: String,
    spec: gantry_domain::TrainingSpec,
    now_ms: u64,
) -> Outcome {
    if let Some(existing) = state.training(&project, &spec.name) {
        if !request_id.is_empty() && existing.meta.request_id == request_id {
            return training_applied(state, &project, &spec.name);
        }
        return Err(Rejected::AlreadyExists { what: format!("training '{}'", spec.name) });
    }
    // Checked again here, not only by the API: a grant revoked between the API's check
    // and this entry's commit must still stop the training.
    state
        .grants(&project)
        .check_all(spec.storage_paths())
        .map_err(|e| Rejected::PermissionDenied { reason: format!("spec.{e}") })?;
    let instance_type = state.instance_types.get(&spec.instance_type).ok_or_else(|| {
        Rejected::invalid("spec.instance_type", format!("unknown instance type '{}'", spec.instance_type))
    })?;
    let image = state
        .images
        .get(&spec.image)
        .ok_or_else(|| Rejected::invalid("spec.image", format!("unknown image '{}'", spec.image)))?;
    if image.core_type != instance_type.image_core_type() {
        return Err(Rejected::invalid(
            "spec.image",
            format!(
                "image '{}' is for {} but instance type '{}' has core type {}",
                image.name,
                image.core_type.as_str(),
                instance_type.name,
                instance_type.core_type()
            ),
        ));
    }
    let demand = WorkloadDemand {
        id: id.clone(),
        per_container: instance_type.resources(),
        gpu_model: instance_type.gpu_model.clone(),
        count: spec.instance_count,
        spread_group: None,
    };
    let image_ref = image.reference.clone();
    let experiment_id = match state.experiment(&project, &spec.experiment) {
        Some(e) => e.meta.id.clone(),
        None if spec.create_experiment => {
            let e = Experiment {
                meta: Meta {
                    id: experiment_id.clone(),
                    project: project.clone(),
                    name: spec.experiment.clone(),
                    description: String::new(),
                    tags: Vec::new(),
                    created_at_ms: now_ms,
                    updated_at_ms: now_ms,
                    request_id: request_id.clone(),
                },
                status: ExperimentStatus::Active,
                status_reason: String::new(),
            };
            state.projects.entry(project.clone()).or_default().experiments.insert(spec.experiment.clone(), e);
            experiment_id
        }
        None => {
            return Err(Rejected::invalid(
                "spec.experiment",
                format!("experiment '{}' does not exist (set create_experiment to create it)", spec.experiment),
            ));
        }
    };
    let reason = "waiting for placement".to_string();
    let training = Training {
        meta: Meta {
            id: id.clone(),
            project: project.clone(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            tags: spec.tags.clone(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            request_id,
        },
        experiment_id,
        status: TrainingStatus::CreateRequested,
        status_reason: reason.clone(),
        history: vec![StatusChange { status: TrainingStatus::CreateRequested, at_ms: now_ms, reason: String::new() }],
        workload_id: id.clone(),
        started_at_ms: None,
        ended_at_ms: None,
        placement: None,
        spec,
    };
    let name = training.meta.name.clone();
    state.workloads.insert(
        id,
        Workload {
            owner: WorkloadOwner::Training { project: project.clone(), name: name.clone() },
            demand,
            image: image_ref,
            placement: None,
            pending_reason: reason,
            created_index: index,
            phases: Vec::new(),
            ports: None,
            ended: false,
            gone: Vec::new(),
        },
    );
    state.projects.entry(project.clone()).or_default().trainings.insert(name.clone(), training);
    training_applied(state, &project, &name)
}

/// A status set directly (not derived from container reports). The status of a training
/// waiting for placement follows its placement: only an end is accepted there, so a
/// training never shows a running status while its workload holds nothing.
fn set_training_status(
    state: &mut State,
    project: &str,
    name: &str,
    status: TrainingStatus,
    reason: String,
    now_ms: u64,
) -> Outcome {
    let t = training_mut(state, project, name)?;
    if !t.status.can_transition(status) {
        return Err(Rejected::precondition(format!("training '{name}' cannot go from {} to {status}", t.status)));
    }
    if t.status == TrainingStatus::CreateRequested && !status.is_terminal() {
        return Err(Rejected::precondition(format!(
            "training '{name}' is waiting for placement: it cannot be set to {status}"
        )));
    }
    transition(t, status, reason, now_ms);
    let (done, workload_id) = (t.status.is_terminal(), t.workload_id.clone());
    if done {
        release::end(state, &workload_id);
    }
    training_applied(state, project, name)
}

fn stop_training(state: &mut State, project: &str, name: &str, reason: String, now_ms: u64) -> Outcome {
    let placed = {
        let t = state.training(project, name).ok_or_else(|| Rejected::not_found(format!("training '{name}'")))?;
        if t.status.is_terminal() {
            return Err(Rejected::precondition(format!("training '{name}' has already ended ({})", t.status)));
        }
        if t.status == TrainingStatus::StopInProgress {
            return training_applied(state, project, name);
        }
        if !t.status.can_transition(TrainingStatus::StopInProgress) {
            return Err(Rejected::precondition(format!("training '{name}' is {}: it is already ending", t.status)));
        }
        state.workloads.get(&t.workload_id).is_some_and(|w| w.placement.is_some())
    };
    let t = training_mut(state, project, name)?;
    let reason = if reason.is_empty() { "stop requested".to_string() } else { reason };
    transition(t, TrainingStatus::StopInProgress, reason.clone(), now_ms);
    if !placed {
        // Nothing runs anywhere: the stop is complete at once.
        transition(t, TrainingStatus::Stopped, format!("{reason} (before it was placed)"), now_ms);
        let workload_id = t.workload_id.clone();
        release::end(state, &workload_id);
    }
    training_applied(state, project, name)
}

fn place(
    state: &mut State,
    index: u64,
    workload_id: &str,
    placement: gantry_domain::Placement,
    ports: Option<gantry_domain::GangPorts>,
    now_ms: u64,
) -> Outcome {
    let w = state.workloads.get(workload_id).ok_or_else(|| Rejected::not_found(format!("workload '{workload_id}'")))?;
    if w.placement.is_some() {
        return Err(Rejected::precondition(format!("workload '{workload_id}' is already placed")));
    }
    // Only the nodes the placement names matter to the check: looking up those keeps a
    // placement's cost independent of the cluster's size.
    let named: BTreeSet<&str> = placement.assignments.iter().map(|a| a.node_id.as_str()).collect();
    let nodes: Vec<_> =
        named.into_iter().filter_map(|id| state.nodes.get(id)).filter_map(|n| state.node_snapshot(n)).collect();
    gantry_placement::check_fit(&nodes, &w.demand, &placement)
        .map_err(|e| Rejected::precondition(format!("placement no longer fits: {e}")))?;
    rendezvous::check(state, &placement, ports.as_ref())?;
    let (project, name) = match w.owner.clone() {
        WorkloadOwner::Training { project, name } => (project, name),
        owner @ WorkloadOwner::StageInstance { .. } => {
            if w.ended {
                return Err(Rejected::precondition(format!("workload '{workload_id}' has ended")));
            }
            if let Some(mut w) = state.workloads.get_mut(workload_id) {
                w.phases = vec![ContainerPhase::Pending; placement.assignments.len()];
                w.placement = Some(placement);
                w.pending_reason.clear();
            }
            endpoints::refresh_instance_owner(state, index, &owner);
            return Ok(Applied::Done);
        }
    };
    let t = training_mut(state, &project, &name)?;
    if t.status != TrainingStatus::CreateRequested {
        return Err(Rejected::precondition(format!("training '{name}' is {}, not waiting for placement", t.status)));
    }
    transition(t, TrainingStatus::CreateInProgress, String::new(), now_ms);
    t.placement = Some(placement.clone());
    if let Some(mut w) = state.workloads.get_mut(workload_id) {
        w.phases = vec![ContainerPhase::Pending; placement.assignments.len()];
        w.placement = Some(placement);
        w.ports = ports;
        w.pending_reason.clear();
    }
    training_applied(state, &project, &name)
}

pub(super) fn training_mut<'a>(state: &'a mut State, project: &str, name: &str) -> Result<&'a mut Training, Rejected> {
    state
        .projects
        .get_mut(project)
        .and_then(|p: &mut Project| p.trainings.get_mut(name))
        .ok_or_else(|| Rejected::not_found(format!("training '{name}'")))
}

/// Records a status change with its time and reason, and the run's start/end times.
pub(super) fn transition(t: &mut Training, status: TrainingStatus, reason: String, now_ms: u64) {
    t.status = status;
    t.status_reason = reason.clone();
    t.meta.updated_at_ms = now_ms;
    t.history.push(StatusChange { status, at_ms: now_ms, reason });
    if status == TrainingStatus::Running && t.started_at_ms.is_none() {
        t.started_at_ms = Some(now_ms);
    }
    if status.is_terminal() && t.ended_at_ms.is_none() {
        t.ended_at_ms = Some(now_ms);
    }
}

fn training_applied(state: &State, project: &str, name: &str) -> Outcome {
    let training = state.training(project, name).ok_or_else(|| Rejected::not_found(format!("training '{name}'")))?;
    let placement = state.workloads.get(&training.workload_id).and_then(|w| w.placement.clone());
    Ok(Applied::Training { training: training.clone(), placement })
}

fn report_container(
    state: &mut State,
    node_id: &str,
    workload_id: &str,
    rank: u32,
    phase: ContainerPhase,
    reason: String,
    now_ms: u64,
) -> Outcome {
    ownership::check_container_owner(state, node_id, workload_id, rank)?;
    let Some(mut w) = state.workloads.get_mut(workload_id) else {
        return Err(Rejected::not_found(format!("workload '{workload_id}'")));
    };
    // Its training has ended (and may be deleted, its name taken by another): a late
    // report changes nothing.
    if w.ended {
        return Err(Rejected::not_found(format!("workload '{workload_id}' (it has ended)")));
    }
    // One phase per placed rank. A state restored from an older snapshot may lack them:
    // fill in rather than index past the end (apply must never panic).
    let ranks = w.placement.as_ref().map_or(0, |p| p.assignments.len());
    if w.phases.len() != ranks {
        w.phases.resize(ranks, ContainerPhase::Pending);
    }
    let owner = w.owner.clone();
    let Some(slot) = w.phases.get_mut(rank as usize) else {
        return Err(Rejected::precondition(format!("workload '{workload_id}' has no rank {rank}")));
    };
    if slot.may_become(phase) {
        *slot = phase;
    }
    // A serving instance's health comes from its pods (ReportPods): its container
    // phase is kept for the record only.
    let WorkloadOwner::Training { project, name } = owner else {
        return Ok(Applied::Done);
    };
    let phases = w.phases.clone();
    drop(w);
    let t = training_mut(state, &project, &name)?;
    if let Some(target) = containers::training_target(t.status, &phases) {
        let steps = containers::path(t.status, target);
        let last = steps.len() - 1;
        for (i, status) in steps.into_iter().enumerate() {
            if !t.status.can_transition(status) {
                break;
            }
            // Only the final step carries the report's reason (a failure's exit code
            // and log tail); intermediate steps are bookkeeping.
            let why = if i == last { reason.clone() } else { String::new() };
            transition(t, status, why, now_ms);
        }
        if t.status.is_terminal() {
            let workload_id = t.workload_id.clone();
            release::end(state, &workload_id);
        }
    }
    training_applied(state, &project, &name)
}
