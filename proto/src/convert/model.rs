//! Models on the wire: the create form, and the model with where it came from.

use gantry_domain as d;
use gantry_domain::ValidationError;

use super::{tags_from_wire, tags_to_wire};
use crate::v1;

/// A checked create form: the spec, and the training it is made from, if any (its
/// `artifact_path` is then empty: the state machine takes the training's output path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCreate {
    pub spec: d::ModelSpec,
    pub from_training: Option<String>,
}

/// Parses and validates a create request. Errors name the request's own fields.
pub fn model_create_from_wire(req: &v1::CreateModelRequest) -> Result<ModelCreate, ValidationError> {
    let framework = d::ModelFramework::parse("framework", &req.framework)?;
    let from_training = (!req.from_training.is_empty()).then(|| req.from_training.clone());
    let spec = d::ModelSpec {
        name: req.name.clone(),
        description: req.description.clone(),
        tags: tags_from_wire(&req.tags),
        framework,
        framework_version: req.framework_version.clone(),
        artifact_path: req.artifact_path.clone(),
    };
    match &from_training {
        Some(training) => {
            if !req.artifact_path.is_empty() {
                return Err(ValidationError::new(
                    "artifact_path",
                    "must be empty when from_training is set (the training's output path is used)",
                ));
            }
            // Every other field is checked as for an external model; the training's
            // output path, checked when the training was created, stands in for the
            // artifact path.
            let stand_in = d::ModelSpec { artifact_path: "file:///".into(), ..spec.clone() };
            stand_in.validate()?;
            d::validate::name("from_training", training)?;
        }
        None => {
            if req.artifact_path.is_empty() {
                return Err(ValidationError::new("artifact_path", "must not be empty (or set from_training)"));
            }
            spec.validate()?;
        }
    }
    Ok(ModelCreate { spec, from_training })
}

pub fn model_source_to_wire(s: &d::ModelSource) -> Option<v1::ModelSource> {
    use v1::model_source::Kind;
    let kind = match s {
        d::ModelSource::External => return None,
        d::ModelSource::Training { training_id, training_name } => Kind::Training(v1::TrainingSource {
            training_id: training_id.clone(),
            training_name: training_name.clone(),
        }),
        d::ModelSource::Tuning { tuning_id, tuning_name, trial_id } => Kind::Tuning(v1::TuningSource {
            tuning_id: tuning_id.clone(),
            tuning_name: tuning_name.clone(),
            trial_id: trial_id.clone(),
        }),
    };
    Some(v1::ModelSource { kind: Some(kind) })
}

/// `used_by_endpoints`: names of the endpoints whose stage resources use the model.
pub fn model_to_wire(m: &d::Model, used_by_endpoints: Vec<String>) -> v1::Model {
    v1::Model {
        id: m.meta.id.clone(),
        project: m.meta.project.clone(),
        name: m.meta.name.clone(),
        description: m.meta.description.clone(),
        tags: tags_to_wire(&m.meta.tags),
        framework: m.framework.as_str().into(),
        framework_version: m.framework_version.clone(),
        artifact_path: m.artifact_path.clone(),
        source: model_source_to_wire(&m.source),
        created_at_ms: m.meta.created_at_ms,
        updated_at_ms: m.meta.updated_at_ms,
        used_by_endpoints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> v1::CreateModelRequest {
        v1::CreateModelRequest {
            project: "team-a".into(),
            name: "iris".into(),
            framework: "onnx".into(),
            framework_version: "1.17".into(),
            artifact_path: "file:///srv/models/iris".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_external_form_parses() {
        let c = model_create_from_wire(&req()).unwrap();
        assert_eq!((c.spec.framework, c.from_training), (d::ModelFramework::Onnx, None));
        assert_eq!(c.spec.artifact_path, "file:///srv/models/iris");
    }

    #[test]
    fn a_training_form_needs_no_artifact_path_and_refuses_one() {
        let from = v1::CreateModelRequest { artifact_path: String::new(), from_training: "mnist".into(), ..req() };
        let c = model_create_from_wire(&from).unwrap();
        assert_eq!((c.spec.artifact_path.as_str(), c.from_training.as_deref()), ("", Some("mnist")));
        let both = v1::CreateModelRequest { from_training: "mnist".into(), ..req() };
        assert_eq!(model_create_from_wire(&both).unwrap_err().field, "artifact_path");
        let bad = v1::CreateModelRequest { from_training: "Bad Name".into(), artifact_path: String::new(), ..req() };
        assert_eq!(model_create_from_wire(&bad).unwrap_err().field, "from_training");
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (v1::CreateModelRequest { framework: "caffe".into(), ..req() }, "framework"),
            (v1::CreateModelRequest { artifact_path: String::new(), ..req() }, "artifact_path"),
            (v1::CreateModelRequest { artifact_path: "s3://b/k".into(), ..req() }, "artifact_path"),
            (v1::CreateModelRequest { name: "a".repeat(51), ..req() }, "name"),
            (v1::CreateModelRequest { framework_version: String::new(), ..req() }, "framework_version"),
        ];
        for (r, field) in cases {
            assert_eq!(model_create_from_wire(&r).unwrap_err().field, field, "{r:?}");
        }
    }

    #[test]
    fn the_source_goes_on_the_wire() {
        let mut m = d::Model {
            meta: d::Meta {
                id: "mdl-1".into(),
                project: "p".into(),
                name: "iris".into(),
                description: String::new(),
                tags: vec![],
                created_at_ms: 1,
                updated_at_ms: 2,
                request_id: String::new(),
            },
            framework: d::ModelFramework::PyTorch,
            framework_version: "2.1".into(),
            artifact_path: "file:///o".into(),
            source: d::ModelSource::External,
        };
        assert_eq!(model_to_wire(&m, vec![]).source, None);
        m.source = d::ModelSource::Training { training_id: "trn-1".into(), training_name: "mnist".into() };
        let w = model_to_wire(&m, vec!["ep".into()]);
        let Some(v1::model_source::Kind::Training(t)) = w.source.and_then(|s| s.kind) else { panic!("training") };
        assert_eq!((t.training_id.as_str(), t.training_name.as_str()), ("trn-1", "mnist"));
        assert_eq!((w.framework.as_str(), w.used_by_endpoints), ("PYTORCH", vec!["ep".to_string()]));
    }
}
