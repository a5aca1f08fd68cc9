//! Models: an artifact registered for serving, made from a COMPLETE training or given
//! as an external path (the guide's "모델").

use serde::{Deserialize, Serialize};

use crate::meta::{Meta, Tag};
use crate::storage_path::StoragePath;
use crate::validate::{self, Validated, ValidationError};

/// The frameworks a model can be served with. The guide has TensorFlow and PyTorch;
/// ONNX and scikit-learn are Gantry's additions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModelFramework {
    TensorFlow,
    PyTorch,
    Onnx,
    ScikitLearn,
}

impl ModelFramework {
    pub const ALL: &'static [ModelFramework] = &[Self::TensorFlow, Self::PyTorch, Self::Onnx, Self::ScikitLearn];

    /// The wire and CLI spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::TensorFlow => "TENSORFLOW",
            Self::PyTorch => "PYTORCH",
            Self::Onnx => "ONNX",
            Self::ScikitLearn => "SCIKIT_LEARN",
        }
    }

    /// Accepts any case and `-` for `_` (`pytorch`, `scikit-learn`).
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        let wanted = s.trim().replace('-', "_").to_ascii_uppercase();
        Self::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == wanted)
            .ok_or_else(|| ValidationError::new(field, "must be one of TENSORFLOW, PYTORCH, ONNX, SCIKIT_LEARN"))
    }
}

impl std::fmt::Display for ModelFramework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a model's artifact came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelSource {
    /// A path the user gave.
    External,
    /// The output path of a COMPLETE training. The training cannot be deleted while
    /// the model exists.
    Training { training_id: String, training_name: String },
    /// The best trial of a COMPLETE tuning (issue 11).
    Tuning { tuning_id: String, tuning_name: String, trial_id: String },
}

/// What a user asks for when creating a model (the artifact path already resolved:
/// for a model from a training it is the training's output path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub name: String,
    pub description: String,
    pub tags: Vec<Tag>,
    pub framework: ModelFramework,
    pub framework_version: String,
    pub artifact_path: String,
}

impl ModelSpec {
    pub fn validate(&self) -> Validated {
        validate::name("name", &self.name)?;
        validate::description("description", &self.description)?;
        validate::tags("tags", &self.tags)?;
        validate::non_empty_bounded("framework_version", &self.framework_version, 32)?;
        if !self.framework_version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+')) {
            return Err(ValidationError::new("framework_version", "must be letters, digits, '.', '-', '_' or '+'"));
        }
        StoragePath::parse("artifact_path", &self.artifact_path)?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub meta: Meta,
    pub framework: ModelFramework,
    pub framework_version: String,
    pub artifact_path: String,
    pub source: ModelSource,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ModelSpec {
        ModelSpec {
            name: "iris".into(),
            description: String::new(),
            tags: vec![],
            framework: ModelFramework::PyTorch,
            framework_version: "2.1.0".into(),
            artifact_path: "file:///srv/models/iris".into(),
        }
    }

    #[test]
    fn frameworks_parse_in_any_case() {
        assert_eq!(ModelFramework::parse("framework", "pytorch"), Ok(ModelFramework::PyTorch));
        assert_eq!(ModelFramework::parse("framework", "scikit-learn"), Ok(ModelFramework::ScikitLearn));
        let err = ModelFramework::parse("framework", "caffe").unwrap_err();
        assert_eq!(err.field, "framework");
    }

    #[test]
    fn a_spec_names_the_bad_field() {
        assert_eq!(spec().validate(), Ok(()));
        let bad = ModelSpec { framework_version: String::new(), ..spec() };
        assert_eq!(bad.validate().unwrap_err().field, "framework_version");
        let bad = ModelSpec { artifact_path: "s3://x/y".into(), ..spec() };
        assert_eq!(bad.validate().unwrap_err().field, "artifact_path");
        let bad = ModelSpec { framework_version: "1 2".into(), ..spec() };
        assert_eq!(bad.validate().unwrap_err().field, "framework_version");
    }
}
