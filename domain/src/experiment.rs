//! Experiments group related trainings (and tunings).

use serde::{Deserialize, Serialize};

use crate::meta::{Meta, Tag};
use crate::status::ExperimentStatus;
use crate::validate::{self, Validated};

/// What a user asks for when creating an experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentSpec {
    pub name: String,
    pub description: String,
    pub tags: Vec<Tag>,
}

impl ExperimentSpec {
    pub fn validate(&self) -> Validated {
        validate::name("name", &self.name)?;
        validate::description("description", &self.description)?;
        validate::tags("tags", &self.tags)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experiment {
    pub meta: Meta,
    pub status: ExperimentStatus,
    pub status_reason: String,
}
