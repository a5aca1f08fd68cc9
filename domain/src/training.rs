//! Trainings: one run of a user's algorithm in N containers (a gang).

use serde::{Deserialize, Serialize};

use crate::meta::{Meta, Tag};
use crate::status::TrainingStatus;
use crate::storage_grant::Access;
use crate::storage_path::StoragePath;
use crate::validate::{self, Validated, ValidationError};

/// At most this many hyperparameters (guide: "파라미터는 최대 100개").
pub const HYPERPARAMETERS_MAX: usize = 100;
/// At most this many datasets (guide: "데이터 세트는 최대 10개").
pub const DATASETS_MAX: usize = 10;
pub const HYPERPARAMETER_KEY_MAX: usize = 64;
pub const HYPERPARAMETER_VALUE_MAX: usize = 1024;
pub const DATASET_NAME_MAX: usize = 36;
/// Largest gang of one training.
pub const INSTANCE_COUNT_MAX: u32 = 64;
pub const NPROC_PER_NODE_MAX: u32 = 64;
/// Maximum training time: 1 minute to 720 hours (EasyMaker's `timeout_hours` range).
pub const TIMEOUT_MINUTES_MAX: u32 = 720 * 60;
/// Data storage: 10 GB steps, at most 2,040 GB (0 means "not used").
pub const DATA_STORAGE_STEP_GB: u32 = 10;
pub const DATA_STORAGE_MAX_GB: u32 = 2040;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hyperparameter {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub path: StoragePath,
}

/// Where the algorithm comes from. Only the user's own algorithm exists so far; built-in
/// algorithms arrive with their catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    Own { path: StoragePath, entry_point: String },
}

/// Everything a user sets when creating a training (the guide's whole form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingSpec {
    pub name: String,
    pub description: String,
    pub tags: Vec<Tag>,
    pub experiment: String,
    /// Create the experiment in the same step when it does not exist yet.
    pub create_experiment: bool,
    pub algorithm: Algorithm,
    pub hyperparameters: Vec<Hyperparameter>,
    pub image: String,
    pub instance_type: String,
    /// The guide's "distributed count": containers started together, all or none.
    pub instance_count: u32,
    pub nproc_per_node: u32,
    pub use_torchrun: bool,
    pub datasets: Vec<Dataset>,
    pub checkpoint_input_path: Option<StoragePath>,
    pub output_path: StoragePath,
    pub checkpoint_output_path: Option<StoragePath>,
    pub data_storage_size_gb: u32,
    pub timeout_minutes: u32,
    pub use_log: bool,
}

impl TrainingSpec {
    /// Checks every rule that needs no cluster state. Catalog references (image,
    /// instance type, their core types) are checked by the state machine.
    pub fn validate(&self) -> Validated {
        validate::name("name", &self.name)?;
        validate::description("description", &self.description)?;
        validate::tags("tags", &self.tags)?;
        validate::name("experiment", &self.experiment)?;
        let Algorithm::Own { path: _, entry_point } = &self.algorithm;
        entry_point_rule(entry_point)?;
        hyperparameters(&self.hyperparameters)?;
        validate::non_empty_bounded("image", &self.image, validate::NAME_MAX)?;
        validate::non_empty_bounded("instance_type", &self.instance_type, validate::NAME_MAX)?;
        if !(1..=INSTANCE_COUNT_MAX).contains(&self.instance_count) {
            return Err(ValidationError::new("instance_count", format!("must be between 1 and {INSTANCE_COUNT_MAX}")));
        }
        if !(1..=NPROC_PER_NODE_MAX).contains(&self.nproc_per_node) {
            return Err(ValidationError::new("nproc_per_node", format!("must be between 1 and {NPROC_PER_NODE_MAX}")));
        }
        datasets(&self.datasets)?;
        if !self.data_storage_size_gb.is_multiple_of(DATA_STORAGE_STEP_GB)
            || self.data_storage_size_gb > DATA_STORAGE_MAX_GB
        {
            return Err(ValidationError::new(
                "data_storage_size_gb",
                format!("must be a multiple of {DATA_STORAGE_STEP_GB} GB and at most {DATA_STORAGE_MAX_GB} GB"),
            ));
        }
        if !(1..=TIMEOUT_MINUTES_MAX).contains(&self.timeout_minutes) {
            return Err(ValidationError::new(
                "timeout_minutes",
                format!("must be between 1 and {TIMEOUT_MINUTES_MAX} minutes (720 hours)"),
            ));
        }
        Ok(())
    }
}

impl TrainingSpec {
    /// Every storage path of the form, with the field that names it (as the API
    /// spells it) and what the training does with it: what grants are checked against.
    pub fn storage_paths(&self) -> Vec<(String, Access, &StoragePath)> {
        let Algorithm::Own { path, .. } = &self.algorithm;
        let mut out = vec![("algorithm_path".to_string(), Access::Read, path)];
        for (i, ds) in self.datasets.iter().enumerate() {
            out.push((format!("datasets[{i}].path"), Access::Read, &ds.path));
        }
        if let Some(p) = &self.checkpoint_input_path {
            out.push(("checkpoint_input_path".to_string(), Access::Read, p));
        }
        out.push(("output_path".to_string(), Access::Write, &self.output_path));
        if let Some(p) = &self.checkpoint_output_path {
            out.push(("checkpoint_output_path".to_string(), Access::Write, p));
        }
        out
    }
}

fn entry_point_rule(entry_point: &str) -> Validated {
    validate::non_empty_bounded("entry_point", entry_point, 255)?;
    if entry_point.starts_with('/') || entry_point.split('/').any(|s| s == ".." || s.is_empty()) {
        return Err(ValidationError::new("entry_point", "must be a relative file path inside the algorithm path"));
    }
    if entry_point.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValidationError::new("entry_point", "must not contain whitespace"));
    }
    Ok(())
}

fn hyperparameters(hps: &[Hyperparameter]) -> Validated {
    if hps.len() > HYPERPARAMETERS_MAX {
        return Err(ValidationError::new(
            "hyperparameters",
            format!("at most {HYPERPARAMETERS_MAX} hyperparameters are allowed, got {}", hps.len()),
        ));
    }
    for (i, hp) in hps.iter().enumerate() {
        let field = format!("hyperparameters[{i}].key");
        validate::non_empty_bounded(&field, &hp.key, HYPERPARAMETER_KEY_MAX)?;
        // Keys become `--{key}` arguments: no whitespace, no '=', no leading '-'.
        if hp.key.starts_with('-') || hp.key.chars().any(|c| c.is_whitespace() || c.is_control() || c == '=') {
            return Err(ValidationError::new(field, "must not start with '-' or contain whitespace or '='"));
        }
        if hp.value.chars().count() > HYPERPARAMETER_VALUE_MAX || hp.value.chars().any(|c| c == '\0') {
            return Err(ValidationError::new(
                format!("hyperparameters[{i}].value"),
                format!("must be at most {HYPERPARAMETER_VALUE_MAX} characters without NUL"),
            ));
        }
    }
    validate::unique_keys("hyperparameters", hps.iter().map(|h| h.key.as_str()))
}

fn datasets(datasets: &[Dataset]) -> Validated {
    if datasets.len() > DATASETS_MAX {
        return Err(ValidationError::new(
            "datasets",
            format!("at most {DATASETS_MAX} datasets are allowed, got {}", datasets.len()),
        ));
    }
    for (i, ds) in datasets.iter().enumerate() {
        let field = format!("datasets[{i}].name");
        validate::non_empty_bounded(&field, &ds.name, DATASET_NAME_MAX)?;
        // The name becomes `EM_DATASET_{NAME}` and a directory name.
        if !ds.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(ValidationError::new(field, "must contain only letters, digits, '_' and '-'"));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, ds) in datasets.iter().enumerate() {
        if !seen.insert(ds.name.to_ascii_uppercase()) {
            return Err(ValidationError::new(
                format!("datasets[{i}].name"),
                format!("duplicate dataset name '{}'", ds.name),
            ));
        }
    }
    Ok(())
}

/// One status change, kept for the record's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: TrainingStatus,
    pub at_ms: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Training {
    pub meta: Meta,
    pub spec: TrainingSpec,
    pub experiment_id: String,
    pub status: TrainingStatus,
    /// Why the training is in its status: the pending reason while it waits for
    /// resources, the failure reason after a failure.
    pub status_reason: String,
    pub history: Vec<StatusChange>,
    /// The schedulable unit that runs this training (same id as the training).
    pub workload_id: String,
    pub started_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    /// Where its containers ran (kept after the end, so the logs can still be found).
    #[serde(default)]
    pub placement: Option<crate::Placement>,
}

impl Training {
    /// Training time so far: from RUNNING until the end (or `now_ms` while it runs).
    pub fn elapsed_ms(&self, now_ms: u64) -> u64 {
        match (self.started_at_ms, self.ended_at_ms) {
            (Some(start), Some(end)) => end.saturating_sub(start),
            (Some(start), None) => now_ms.saturating_sub(start),
            _ => 0,
        }
    }
}

#[cfg(test)]
pub mod fixtures {
    use super::*;

    pub fn spec() -> TrainingSpec {
        TrainingSpec {
            name: "mnist".into(),
            description: String::new(),
            tags: vec![],
            experiment: "exp".into(),
            create_experiment: false,
            algorithm: Algorithm::Own {
                path: StoragePath::File { path: "/algo".into() },
                entry_point: "train.py".into(),
            },
            hyperparameters: vec![],
            image: "python-cpu".into(),
            instance_type: "m1".into(),
            instance_count: 1,
            nproc_per_node: 1,
            use_torchrun: false,
            datasets: vec![],
            checkpoint_input_path: None,
            output_path: StoragePath::File { path: "/out".into() },
            checkpoint_output_path: None,
            data_storage_size_gb: 0,
            timeout_minutes: 60,
            use_log: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::spec;
    use super::*;

    fn hp(n: usize) -> Vec<Hyperparameter> {
        (0..n).map(|i| Hyperparameter { key: format!("k{i}"), value: "1".into() }).collect()
    }

    fn ds(n: usize) -> Vec<Dataset> {
        (0..n).map(|i| Dataset { name: format!("d{i}"), path: StoragePath::File { path: "/d".into() } }).collect()
    }

    #[test]
    fn limits_at_and_past_their_edges() {
        let mut s = spec();
        s.hyperparameters = hp(100);
        s.datasets = ds(10);
        s.data_storage_size_gb = 2040;
        s.timeout_minutes = TIMEOUT_MINUTES_MAX;
        assert_eq!(s.validate(), Ok(()));

        type Case = (&'static str, Box<dyn Fn(&mut TrainingSpec)>);
        let cases: Vec<Case> = vec![
            ("hyperparameters", Box::new(|s| s.hyperparameters = hp(101))),
            ("datasets", Box::new(|s| s.datasets = ds(11))),
            ("data_storage_size_gb", Box::new(|s| s.data_storage_size_gb = 2050)),
            ("data_storage_size_gb", Box::new(|s| s.data_storage_size_gb = 15)),
            ("timeout_minutes", Box::new(|s| s.timeout_minutes = 0)),
            ("timeout_minutes", Box::new(|s| s.timeout_minutes = TIMEOUT_MINUTES_MAX + 1)),
            ("instance_count", Box::new(|s| s.instance_count = 0)),
            ("name", Box::new(|s| s.name = "a".repeat(51))),
            (
                "entry_point",
                Box::new(|s| {
                    s.algorithm =
                        Algorithm::Own { path: StoragePath::File { path: "/a".into() }, entry_point: "../x.py".into() }
                }),
            ),
            ("hyperparameters[1].key", Box::new(|s| s.hyperparameters = vec![hp(1)[0].clone(), hp(1)[0].clone()])),
            (
                "datasets[0].name",
                Box::new(|s| {
                    s.datasets = vec![Dataset { name: "a b".into(), path: StoragePath::File { path: "/d".into() } }]
                }),
            ),
        ];
        for (field, mutate) in cases {
            let mut s = spec();
            mutate(&mut s);
            assert_eq!(s.validate().unwrap_err().field, field);
        }
    }
}
