//! Wire <-> domain conversions.

use gantry_domain as d;
use gantry_domain::ValidationError;

use crate::v1;

pub mod model;

pub use model::{ModelCreate, model_create_from_wire, model_to_wire};

/// Prefixes a validation error's field with the message it sits in, so the caller
/// sees the request's own path (`spec.datasets[3].path`).
fn under(prefix: &str, e: ValidationError) -> ValidationError {
    ValidationError::new(format!("{prefix}.{}", e.field), e.rule)
}

pub fn tags_from_wire(tags: &[v1::Tag]) -> Vec<d::Tag> {
    tags.iter().map(|t| d::Tag { key: t.key.clone(), value: t.value.clone() }).collect()
}

pub fn tags_to_wire(tags: &[d::Tag]) -> Vec<v1::Tag> {
    tags.iter().map(|t| v1::Tag { key: t.key.clone(), value: t.value.clone() }).collect()
}

pub fn instance_type_from_wire(it: &v1::InstanceType) -> Result<d::InstanceType, ValidationError> {
    let it = d::InstanceType {
        name: it.name.clone(),
        cpu_millis: it.cpu_millis,
        memory_mib: it.memory_mib,
        gpu_count: it.gpu_count,
        gpu_model: (!it.gpu_model.is_empty()).then(|| it.gpu_model.clone()),
    };
    it.validate().map_err(|e| under("instance_type", e))?;
    Ok(it)
}

pub fn instance_type_to_wire(it: &d::InstanceType) -> v1::InstanceType {
    v1::InstanceType {
        name: it.name.clone(),
        cpu_millis: it.cpu_millis,
        memory_mib: it.memory_mib,
        gpu_count: it.gpu_count,
        gpu_model: it.gpu_model.clone().unwrap_or_default(),
        core_type: it.core_type().to_string(),
    }
}

pub fn image_from_wire(img: &v1::Image) -> Result<d::Image, ValidationError> {
    let core_type = d::ImageCoreType::parse(&img.core_type)
        .ok_or_else(|| ValidationError::new("image.core_type", "must be CPU or GPU"))?;
    let framework = d::Framework::parse(&img.framework)
        .ok_or_else(|| ValidationError::new("image.framework", "must be TENSORFLOW, PYTORCH or PYTHON"))?;
    let img = d::Image {
        name: img.name.clone(),
        reference: img.reference.clone(),
        core_type,
        framework,
        framework_version: img.framework_version.clone(),
        python_version: img.python_version.clone(),
    };
    img.validate().map_err(|e| under("image", e))?;
    Ok(img)
}

pub fn image_to_wire(img: &d::Image) -> v1::Image {
    v1::Image {
        name: img.name.clone(),
        reference: img.reference.clone(),
        core_type: img.core_type.as_str().into(),
        framework: img.framework.as_str().into(),
        framework_version: img.framework_version.clone(),
        python_version: img.python_version.clone(),
    }
}

pub fn inventory_from_wire(inv: &v1::NodeInventory) -> Result<d::NodeInventory, ValidationError> {
    if inv.cpu_millis == 0 {
        return Err(ValidationError::new("inventory.cpu_millis", "must be greater than 0"));
    }
    if inv.memory_mib == 0 {
        return Err(ValidationError::new("inventory.memory_mib", "must be greater than 0"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, g) in inv.gpus.iter().enumerate() {
        d::validate::non_empty_bounded(&format!("inventory.gpus[{i}].uuid"), &g.uuid, 128)?;
        d::validate::non_empty_bounded(&format!("inventory.gpus[{i}].model"), &g.model, 64)?;
        if !seen.insert(g.uuid.as_str()) {
            return Err(ValidationError::new(format!("inventory.gpus[{i}].uuid"), "duplicate GPU uuid"));
        }
    }
    Ok(d::NodeInventory {
        cpu_millis: inv.cpu_millis,
        memory_mib: inv.memory_mib,
        disk_mib: inv.disk_mib,
        gpus: inv
            .gpus
            .iter()
            .map(|g| d::Gpu { uuid: g.uuid.clone(), model: g.model.clone(), memory_mib: g.memory_mib })
            .collect(),
    })
}

pub fn inventory_to_wire(inv: &d::NodeInventory) -> v1::NodeInventory {
    v1::NodeInventory {
        cpu_millis: inv.cpu_millis,
        memory_mib: inv.memory_mib,
        disk_mib: inv.disk_mib,
        gpus: inv
            .gpus
            .iter()
            .map(|g| v1::Gpu { uuid: g.uuid.clone(), model: g.model.clone(), memory_mib: g.memory_mib })
            .collect(),
    }
}

pub fn resources_to_wire(r: &d::Resources) -> v1::NodeResources {
    v1::NodeResources { cpu_millis: r.cpu_millis, memory_mib: r.memory_mib, gpus: r.gpus }
}

pub fn experiment_spec_from_wire(req: &v1::CreateExperimentRequest) -> Result<d::ExperimentSpec, ValidationError> {
    let spec = d::ExperimentSpec {
        name: req.name.clone(),
        description: req.description.clone(),
        tags: tags_from_wire(&req.tags),
    };
    spec.validate()?;
    Ok(spec)
}

pub fn experiment_to_wire(e: &d::Experiment, training_count: u32) -> v1::Experiment {
    v1::Experiment {
        id: e.meta.id.clone(),
        project: e.meta.project.clone(),
        name: e.meta.name.clone(),
        description: e.meta.description.clone(),
        tags: tags_to_wire(&e.meta.tags),
        status: e.status.as_str().into(),
        status_reason: e.status_reason.clone(),
        created_at_ms: e.meta.created_at_ms,
        updated_at_ms: e.meta.updated_at_ms,
        training_count,
    }
}

/// Parses and validates a whole training form. Errors name `spec.<field>`.
pub fn training_spec_from_wire(s: &v1::TrainingSpec) -> Result<d::TrainingSpec, ValidationError> {
    let parse = |field: &str, v: &str| d::StoragePath::parse(field, v).map_err(|e| under("spec", e));
    let parse_opt = |field: &str, v: &str| d::StoragePath::parse_optional(field, v).map_err(|e| under("spec", e));
    let datasets = s
        .datasets
        .iter()
        .enumerate()
        .map(|(i, ds)| Ok(d::Dataset { name: ds.name.clone(), path: parse(&format!("datasets[{i}].path"), &ds.path)? }))
        .collect::<Result<Vec<_>, ValidationError>>()?;
    let spec = d::TrainingSpec {
        name: s.name.clone(),
        description: s.description.clone(),
        tags: tags_from_wire(&s.tags),
        experiment: s.experiment.clone(),
        create_experiment: s.create_experiment,
        algorithm: d::Algorithm::Own {
            path: parse("algorithm_path", &s.algorithm_path)?,
            entry_point: s.entry_point.clone(),
        },
        hyperparameters: s
            .hyperparameters
            .iter()
            .map(|kv| d::Hyperparameter { key: kv.key.clone(), value: kv.value.clone() })
            .collect(),
        image: s.image.clone(),
        instance_type: s.instance_type.clone(),
        instance_count: s.instance_count,
        nproc_per_node: s.nproc_per_node,
        use_torchrun: s.use_torchrun,
        datasets,
        checkpoint_input_path: parse_opt("checkpoint_input_path", &s.checkpoint_input_path)?,
        output_path: parse("output_path", &s.output_path)?,
        checkpoint_output_path: parse_opt("checkpoint_output_path", &s.checkpoint_output_path)?,
        data_storage_size_gb: s.data_storage_size_gb,
        timeout_minutes: s.timeout_minutes,
        use_log: s.use_log,
    };
    spec.validate().map_err(|e| under("spec", e))?;
    Ok(spec)
}

/// Parses storage grants; each root must be a `file://` or `nas://` path outside the
/// system directories. Errors name
/// `{prefix}.read[i]` / `{prefix}.write[i]`.
pub fn storage_grants_from_wire(prefix: &str, g: &v1::StorageGrants) -> Result<d::StorageGrants, ValidationError> {
    let grants = storage_grants_parse(prefix, g)?;
    grants.validate(prefix)?;
    Ok(grants)
}

/// Parses grants as sent, without the rules on what may be granted: the agent reads
/// its assignments' grants this way and applies its own deny list, so a grant a
/// scheduler should never have sent is refused with the deny list's reason.
pub fn storage_grants_parse(prefix: &str, g: &v1::StorageGrants) -> Result<d::StorageGrants, ValidationError> {
    let parse = |kind: &str, roots: &[String]| {
        roots
            .iter()
            .enumerate()
            .map(|(i, r)| d::StoragePath::parse(&format!("{prefix}.{kind}[{i}]"), r))
            .collect::<Result<Vec<_>, ValidationError>>()
    };
    Ok(d::StorageGrants { read: parse("read", &g.read)?, write: parse("write", &g.write)? })
}

pub fn storage_grants_to_wire(g: &d::StorageGrants) -> v1::StorageGrants {
    let strings = |v: &[d::StoragePath]| v.iter().map(ToString::to_string).collect();
    v1::StorageGrants { read: strings(&g.read), write: strings(&g.write) }
}

pub fn training_spec_to_wire(s: &d::TrainingSpec) -> v1::TrainingSpec {
    let d::Algorithm::Own { path, entry_point } = &s.algorithm;
    let opt = |p: &Option<d::StoragePath>| p.as_ref().map(ToString::to_string).unwrap_or_default();
    v1::TrainingSpec {
        name: s.name.clone(),
        description: s.description.clone(),
        tags: tags_to_wire(&s.tags),
        experiment: s.experiment.clone(),
        create_experiment: s.create_experiment,
        algorithm_path: path.to_string(),
        entry_point: entry_point.clone(),
        hyperparameters: s
            .hyperparameters
            .iter()
            .map(|h| v1::KeyValue { key: h.key.clone(), value: h.value.clone() })
            .collect(),
        image: s.image.clone(),
        instance_type: s.instance_type.clone(),
        instance_count: s.instance_count,
        nproc_per_node: s.nproc_per_node,
        use_torchrun: s.use_torchrun,
        datasets: s
            .datasets
            .iter()
            .map(|ds| v1::Dataset { name: ds.name.clone(), path: ds.path.to_string() })
            .collect(),
        checkpoint_input_path: opt(&s.checkpoint_input_path),
        output_path: s.output_path.to_string(),
        checkpoint_output_path: opt(&s.checkpoint_output_path),
        data_storage_size_gb: s.data_storage_size_gb,
        timeout_minutes: s.timeout_minutes,
        use_log: s.use_log,
    }
}

/// `placement` is the training's workload placement, if it has one.
pub fn training_to_wire(t: &d::Training, placement: Option<&d::Placement>, now_ms: u64) -> v1::Training {
    v1::Training {
        id: t.meta.id.clone(),
        project: t.meta.project.clone(),
        spec: Some(training_spec_to_wire(&t.spec)),
        experiment_id: t.experiment_id.clone(),
        status: t.status.as_str().into(),
        status_reason: t.status_reason.clone(),
        assignments: placement
            .into_iter()
            .flat_map(|p| p.assignments.iter().enumerate())
            .map(|(rank, a)| v1::Assignment {
                rank: rank as u32,
                node_id: a.node_id.clone(),
                gpu_uuids: a.gpu_uuids.clone(),
            })
            .collect(),
        history: t
            .history
            .iter()
            .map(|h| v1::StatusChange { status: h.status.as_str().into(), at_ms: h.at_ms, reason: h.reason.clone() })
            .collect(),
        created_at_ms: t.meta.created_at_ms,
        updated_at_ms: t.meta.updated_at_ms,
        started_at_ms: t.started_at_ms.unwrap_or(0),
        ended_at_ms: t.ended_at_ms.unwrap_or(0),
        elapsed_ms: t.elapsed_ms(now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_spec() -> v1::TrainingSpec {
        v1::TrainingSpec {
            name: "mnist".into(),
            experiment: "exp".into(),
            algorithm_path: "file:///algo".into(),
            entry_point: "train.py".into(),
            image: "python-cpu".into(),
            instance_type: "m1".into(),
            instance_count: 1,
            nproc_per_node: 1,
            output_path: "nas://nas1:/out".into(),
            timeout_minutes: 60,
            ..Default::default()
        }
    }

    #[test]
    fn training_spec_round_trips() {
        let spec = training_spec_from_wire(&wire_spec()).unwrap();
        assert_eq!(training_spec_to_wire(&spec), wire_spec());
    }

    #[test]
    fn bad_paths_name_the_request_field() {
        let mut w = wire_spec();
        w.datasets = vec![v1::Dataset { name: "train".into(), path: "s3://x".into() }];
        assert_eq!(training_spec_from_wire(&w).unwrap_err().field, "spec.datasets[0].path");
        let mut w = wire_spec();
        w.output_path = String::new();
        assert_eq!(training_spec_from_wire(&w).unwrap_err().field, "spec.output_path");
        let mut w = wire_spec();
        w.tags = (0..11).map(|i| v1::Tag { key: format!("k{i}"), value: String::new() }).collect();
        assert_eq!(training_spec_from_wire(&w).unwrap_err().field, "spec.tags");
    }
}
