//! Models as JSON.

use gantry_proto::v1;
use serde_json::{Value, json};

use super::ToJson;

impl ToJson for v1::ModelSource {
    fn to_json(&self) -> Value {
        match &self.kind {
            Some(v1::model_source::Kind::Training(t)) => {
                json!({ "training": { "training_id": t.training_id, "training_name": t.training_name } })
            }
            Some(v1::model_source::Kind::Tuning(t)) => json!({
                "tuning": { "tuning_id": t.tuning_id, "tuning_name": t.tuning_name, "trial_id": t.trial_id }
            }),
            None => json!({}),
        }
    }
}

impl ToJson for v1::Model {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "project": self.project,
            "name": self.name,
            "description": self.description,
            "tags": self.tags.to_json(),
            "framework": self.framework,
            "framework_version": self.framework_version,
            "artifact_path": self.artifact_path,
            "source": self.source.to_json(),
            "created_at_ms": self.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
            "used_by_endpoints": self.used_by_endpoints,
        })
    }
}

impl ToJson for v1::ListModelsResponse {
    fn to_json(&self) -> Value {
        json!({ "models": self.models.to_json() })
    }
}

impl ToJson for v1::DeleteModelResponse {
    fn to_json(&self) -> Value {
        json!({})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_null_for_an_external_model_and_named_for_a_training() {
        let m = v1::Model { name: "iris".into(), ..Default::default() };
        assert_eq!(m.to_json()["source"], Value::Null);
        let source = v1::ModelSource {
            kind: Some(v1::model_source::Kind::Training(v1::TrainingSource {
                training_id: "trn-1".into(),
                training_name: "mnist".into(),
            })),
        };
        let m = v1::Model { source: Some(source), ..m };
        assert_eq!(m.to_json()["source"]["training"]["training_name"], "mnist");
        let list = v1::ListModelsResponse { models: vec![m] }.to_json();
        assert_eq!(list["models"][0]["name"], "iris");
    }
}
