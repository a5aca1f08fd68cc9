//! Making stages, resources, pods and instances: model resolution, the serving image,
//! host ports and the round-robin spread of pods over instances.

use std::collections::BTreeSet;

use gantry_domain::endpoint::{
    Pod, ServedModel, Stage, StageResource, StageResourceSpec, StageResourceStatus, StageSpec,
};
use gantry_domain::{ModelFramework, WorkloadDemand};

use crate::state::{Rejected, State, Workload, WorkloadOwner};

/// Host ports pods are published on, unless the state says otherwise.
pub const DEFAULT_POD_PORTS: (u16, u16) = (31000, 32999);

/// The catalog name an operator gives the image that serves `framework`
/// (`serving-pytorch`, `serving-scikit-learn`, …; docs/serving.md).
pub fn serving_image_name(framework: ModelFramework) -> String {
    format!("serving-{}", framework.as_str().to_ascii_lowercase().replace('_', "-"))
}

/// The repository of Gantry's own serving image for `framework`
/// (deploy/images: one image serves scikit-learn and ONNX).
fn builtin_repository(framework: ModelFramework) -> &'static str {
    match framework {
        ModelFramework::TensorFlow => "serving-tensorflow",
        ModelFramework::PyTorch => "serving-pytorch",
        ModelFramework::Onnx | ModelFramework::ScikitLearn => "serving-sklearn-onnx",
    }
}

/// The image that serves `framework`: the catalog image named
/// [`serving_image_name`] if there is one, else the first (by name) whose reference is
/// one of Gantry's serving images for it (`…/serving-pytorch:cpu`).
pub fn serving_image(state: &State, framework: ModelFramework) -> Option<&gantry_domain::Image> {
    if let Some(image) = state.images.get(&serving_image_name(framework)) {
        return Some(image);
    }
    let wanted = builtin_repository(framework);
    state.images.values().find(|i| {
        let repository = i.reference.split(':').next().unwrap_or_default();
        repository.rsplit('/').next() == Some(wanted)
    })
}

/// The project's model `name` and how to serve it.
pub fn resolve_model(state: &State, project: &str, name: &str, field: &str) -> Result<ServedModel, Rejected> {
    let m = state.model(project, name).ok_or_else(|| Rejected::not_found(format!("model '{name}' ({field})")))?;
    let image = serving_image(state, m.framework).ok_or_else(|| {
        Rejected::precondition(format!(
            "{field}: no serving image for {} models: add image '{}' (or one of gantry/{}) to the catalog",
            m.framework,
            serving_image_name(m.framework),
            builtin_repository(m.framework)
        ))
    })?;
    Ok(ServedModel {
        model_id: m.meta.id.clone(),
        model: m.meta.name.clone(),
        framework: m.framework,
        artifact_path: m.artifact_path.clone(),
        image: image.reference.clone(),
    })
}

/// Every host port a pod holds, cluster-wide.
pub fn used_ports(state: &State) -> BTreeSet<u16> {
    state
        .projects
        .values()
        .flat_map(|p| p.endpoints.values())
        .flat_map(|e| e.stages.values())
        .flat_map(|s| s.pods())
        .map(|p| p.host_port)
        .collect()
}

/// The lowest free port of the range, taken.
pub fn take_port(used: &mut BTreeSet<u16>, range: (u16, u16)) -> Result<u16, Rejected> {
    let port = (range.0..=range.1)
        .find(|p| !used.contains(p))
        .ok_or_else(|| Rejected::precondition(format!("no free pod port left in {}-{}", range.0, range.1)))?;
    used.insert(port);
    Ok(port)
}

/// Adds the pods of `r`'s newest generation up to its pod count, spread round-robin
/// over `instances` (offset by the resource's position so small resources do not all
/// land on instance 0).
pub fn fill_pods(
    r: &mut StageResource,
    served: &ServedModel,
    instances: u32,
    offset: u32,
    used: &mut BTreeSet<u16>,
    range: (u16, u16),
) -> Result<(), Rejected> {
    let have = r.newest_pods().count() as u32;
    for k in have..r.pod_count {
        let index = r.next_pod;
        r.next_pod += 1;
        r.pods.push(Pod {
            id: Pod::pod_id(&r.id, r.generation, index),
            generation: r.generation,
            index,
            instance_index: (offset + k) % instances.max(1),
            host_port: take_port(used, range)?,
            ready: false,
            served: served.clone(),
        });
    }
    Ok(())
}

/// A new resource of `stage` (its pods made, ports taken).
pub fn new_resource(
    stage: &mut Stage,
    spec: &StageResourceSpec,
    served: ServedModel,
    used: &mut BTreeSet<u16>,
    range: (u16, u16),
) -> Result<(), Rejected> {
    let id = format!("{}-r{}", stage.id, stage.next_resource);
    let mut r = StageResource {
        id,
        model_id: served.model_id.clone(),
        model: served.model.clone(),
        resource_path: spec.resource_path.clone(),
        pod_count: spec.pod_count,
        description: spec.description.clone(),
        status: StageResourceStatus::CreateRequested,
        status_reason: String::new(),
        generation: 1,
        routed_generation: None,
        switched_at: 0,
        failed: None,
        deleting: false,
        pods: Vec::new(),
        next_pod: 0,
    };
    let offset = stage.resources.len() as u32;
    fill_pods(&mut r, &served, stage.instance_count, offset, used, range)?;
    // Only once nothing can fail: a rejected command leaves the stage as it was.
    stage.next_resource += 1;
    stage.resources.push(r);
    Ok(())
}

/// A stage with its resources; `served[i]` is resource `i`'s model.
pub fn new_stage(
    state: &State,
    id: String,
    spec: &StageSpec,
    served: Vec<ServedModel>,
    now_ms: u64,
) -> Result<Stage, Rejected> {
    let it = state.instance_types.get(&spec.instance_type).ok_or_else(|| {
        Rejected::invalid("stage.instance_type", format!("unknown instance type '{}'", spec.instance_type))
    })?;
    let mut stage = Stage {
        id,
        name: spec.name.clone(),
        description: spec.description.clone(),
        instance_type: spec.instance_type.clone(),
        shape: it.resources(),
        gpu_model: it.gpu_model.clone(),
        instance_count: spec.instance_count,
        status: gantry_domain::endpoint::StageStatus::CreateRequested,
        status_reason: String::new(),
        resources: Vec::new(),
        instances: Vec::new(),
        config_version: 0,
        gateways: Default::default(),
        stats: Default::default(),
        ever_active: false,
        deleting: false,
        retire_after: None,
        next_resource: 1,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    };
    let mut used = used_ports(state);
    let range = state.pod_ports.unwrap_or(DEFAULT_POD_PORTS);
    for (r, m) in spec.resources.iter().zip(served) {
        new_resource(&mut stage, r, m, &mut used, range)?;
    }
    Ok(stage)
}

/// Resolves every resource's model of `spec` (NotFound naming the model).
pub fn resolve_all(state: &State, project: &str, spec: &StageSpec) -> Result<Vec<ServedModel>, Rejected> {
    spec.resources
        .iter()
        .enumerate()
        .map(|(i, r)| resolve_model(state, project, &r.model, &format!("stage.resources[{i}].model")))
        .collect()
}

/// Inserts the workload of instance `i` of `stage` (a fresh id each time, so a
/// replacement never collides with the ended one it replaces).
pub fn add_instance(state: &mut State, index: u64, project: &str, endpoint_id: &str, stage: &mut Stage, i: u32) {
    let id = format!("{}-i{i}-x{index}", stage.id);
    let demand = WorkloadDemand {
        id: id.clone(),
        per_container: stage.shape,
        gpu_model: stage.gpu_model.clone(),
        count: 1,
        spread_group: Some(stage.id.clone()),
    };
    let owner = WorkloadOwner::StageInstance {
        project: project.to_string(),
        endpoint_id: endpoint_id.to_string(),
        stage_id: stage.id.clone(),
        index: i,
    };
    state.workloads.insert(
        id.clone(),
        Workload {
            owner,
            demand,
            image: String::new(),
            placement: None,
            pending_reason: "waiting for placement".into(),
            created_index: index,
            phases: Vec::new(),
            ports: None,
            ended: false,
            gone: Vec::new(),
        },
    );
    match stage.instances.get_mut(i as usize) {
        Some(slot) => *slot = id,
        None => stage.instances.push(id),
    }
}
