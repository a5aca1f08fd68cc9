//! Models: create (from a COMPLETE training or an external artifact), rename/describe/
//! tag, delete. The API checks the same rules first for good errors; these are the
//! authority, since the state may change between the API's check and the commit.
//!
//! ```text
//!   training ──(COMPLETE, its output path)──▶ model ──(stage resource)──▶ endpoint
//!   delete refused while a model from it ◀──┘          └──▶ delete refused while used
//! ```

use gantry_domain::validate;
use gantry_domain::{Access, Meta, Model, ModelSource, ModelSpec, StoragePath, Tag, TrainingStatus};

use super::{Applied, Outcome, Rejected, State};

/// What an update changes; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelChanges {
    pub new_name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

impl State {
    /// Names of the endpoints whose stage resources use model `model_id` of `project`,
    /// sorted (see [`super::endpoints::endpoint_names_using_model`]).
    pub fn endpoints_using_model(&self, project: &str, model_id: &str) -> Vec<String> {
        super::endpoints::endpoint_names_using_model(self, project, model_id)
    }

    /// Names of `project`'s models made from training `training_id`, sorted.
    pub fn models_from_training(&self, project: &str, training_id: &str) -> Vec<String> {
        self.projects
            .get(project)
            .into_iter()
            .flat_map(|p| p.models.values())
            .filter(|m| matches!(&m.source, ModelSource::Training { training_id: id, .. } if id == training_id))
            .map(|m| m.meta.name.clone())
            .collect()
    }
}

/// Refuses to delete training `name` (id `training_id`) while a model made from it
/// exists: the model's artifact is that training's output.
pub(super) fn check_no_model_from(state: &State, project: &str, training_id: &str, name: &str) -> Result<(), Rejected> {
    let models = state.models_from_training(project, training_id);
    if models.is_empty() {
        return Ok(());
    }
    Err(Rejected::precondition(format!(
        "training '{name}' has model(s) made from it: {}; delete them first",
        quoted(&models)
    )))
}

pub(super) fn create_model(
    state: &mut State,
    project: String,
    id: String,
    request_id: String,
    mut spec: ModelSpec,
    source: ModelSource,
    now_ms: u64,
) -> Outcome {
    validate::name("project", &project)?;
    if let Some(existing) = state.model(&project, &spec.name) {
        if !request_id.is_empty() && existing.meta.request_id == request_id {
            return Ok(Applied::Model(existing.clone()));
        }
        return Err(Rejected::AlreadyExists { what: format!("model '{}'", spec.name) });
    }
    let field = match &source {
        ModelSource::External => "artifact_path",
        ModelSource::Training { training_id, training_name } => {
            let t = state
                .training(&project, training_name)
                .filter(|t| &t.meta.id == training_id)
                .ok_or_else(|| Rejected::not_found(format!("training '{training_name}'")))?;
            if t.status != TrainingStatus::Complete {
                return Err(Rejected::precondition(format!(
                    "training '{training_name}' is {}: a model can only be made from a COMPLETE training",
                    t.status
                )));
            }
            spec.artifact_path = t.spec.output_path.to_string();
            "from_training"
        }
        ModelSource::Tuning { .. } => {
            return Err(Rejected::invalid("from_tuning", "models from tunings are not supported yet"));
        }
    };
    spec.validate()?;
    // Checked here too, not only by the API: a grant revoked between the API's check
    // and this entry's commit must still stop the model. Serving only reads it.
    let path = StoragePath::parse("artifact_path", &spec.artifact_path)?;
    state
        .grants(&project)
        .check(field, Access::Read, &path)
        .map_err(|e| Rejected::PermissionDenied { reason: e.to_string() })?;
    let meta = Meta {
        id,
        project: project.clone(),
        name: spec.name.clone(),
        description: spec.description,
        tags: spec.tags,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        request_id,
    };
    let model = Model {
        meta,
        framework: spec.framework,
        framework_version: spec.framework_version,
        artifact_path: spec.artifact_path,
        source,
    };
    state.projects.entry(project).or_default().models.insert(spec.name, model.clone());
    Ok(Applied::Model(model))
}

pub(super) fn update_model(
    state: &mut State,
    project: &str,
    name: &str,
    changes: ModelChanges,
    now_ms: u64,
) -> Outcome {
    if state.model(project, name).is_none() {
        return Err(Rejected::not_found(format!("model '{name}'")));
    }
    if let Some(new_name) = &changes.new_name {
        validate::name("new_name", new_name)?;
        if new_name != name && state.model(project, new_name).is_some() {
            return Err(Rejected::AlreadyExists { what: format!("model '{new_name}'") });
        }
    }
    if let Some(description) = &changes.description {
        validate::description("description", description)?;
    }
    if let Some(tags) = &changes.tags {
        validate::tags("tags", tags)?;
    }
    let Some(models) = state.projects.get_mut(project).map(|p| &mut p.models) else {
        return Err(Rejected::not_found(format!("model '{name}'")));
    };
    let Some(mut model) = models.remove(name) else {
        return Err(Rejected::not_found(format!("model '{name}'")));
    };
    if let Some(new_name) = changes.new_name {
        model.meta.name = new_name;
    }
    if let Some(description) = changes.description {
        model.meta.description = description;
    }
    if let Some(tags) = changes.tags {
        model.meta.tags = tags;
    }
    model.meta.updated_at_ms = now_ms;
    models.insert(model.meta.name.clone(), model.clone());
    Ok(Applied::Model(model))
}

pub(super) fn delete_model(state: &mut State, project: &str, name: &str) -> Outcome {
    let model = state.model(project, name).ok_or_else(|| Rejected::not_found(format!("model '{name}'")))?;
    let endpoints = state.endpoints_using_model(project, &model.meta.id);
    if !endpoints.is_empty() {
        return Err(Rejected::precondition(format!(
            "model '{name}' is used by endpoint(s) {}; delete them (or their stage resources) first",
            quoted(&endpoints)
        )));
    }
    if let Some(p) = state.projects.get_mut(project) {
        p.models.remove(name);
    }
    Ok(Applied::Done)
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}
