//! The EasyMaker container contract: how a training's settings reach the user's script,
//! so scripts written for EasyMaker run unchanged (console guide, appendix 3 and 4).
//!
//! [`training_launch`] is pure: spec, rank, peer hostnames and the host directories the
//! agent prepared in, argv, environment and mounts out.
//!
//! ```text
//!   TrainingSpec ─┐
//!   rank, peers  ─┼─► training_launch ─► TrainingLaunch { cmd, env, mounts, … }
//!   HostDirs     ─┘                          │
//!                                            ▼
//!        sh -c <launcher> gantry-launch --k1 v1 --k2 v2 …
//!          └─► (pip install -r requirements.txt, offline) ─► exec python3 <entry point> --k1 v1 …
//! ```
//!
//! | variable | value |
//! | --- | --- |
//! | `EM_SOURCE_DIR` | `/gantry/source` (the algorithm path, read-only) |
//! | `EM_ENTRY_POINT` | the entry point, relative to `EM_SOURCE_DIR` |
//! | `EM_DATASET_{NAME}` | `/gantry/datasets/{name}` (read-only), one per dataset |
//! | `EM_DATASETS` | JSON object `{name: directory}` of all datasets |
//! | `EM_MODEL_DIR` | `/gantry/model`: save the trained model here |
//! | `EM_CHECKPOINT_INPUT_DIR` | `/gantry/checkpoints/input` (read-only); only set when an input checkpoint was given, so `os.environ.get(…, None)` works |
//! | `EM_CHECKPOINT_DIR` | `/gantry/checkpoints/output`; always set (uploaded only if an output checkpoint path was given) |
//! | `EM_TENSORBOARD_LOG_DIR` | `/gantry/tensorboard` |
//! | `EM_HP_{KEY}` | one per hyperparameter |
//! | `EM_HPS` | JSON object `{key: value}` of all hyperparameters, original keys, string values |
//! | `EM_REGION`, `EM_APPKEY` | the cluster's region name and the training's project |
//! | `MASTER_ADDR`, `MASTER_PORT`, `WORLD_SIZE`, `RANK`, `LOCAL_RANK`, `TF_CONFIG` | only when `instance_count > 1` (see [`distributed`]) |
//! | `PYTHONUNBUFFERED` | `1`: output reaches the logs line by line, not at exit |
//! | `HOME` | `/gantry/home`, a tmpfs of the training's user (the root filesystem is read-only) |
//! | `PYTHONPATH` | `/gantry/packages`, only when `requirements.txt` was installed there |
//!
//! Hyperparameters are passed as `--{key} {value}` in the spec's order, the key as the
//! user wrote it. `{KEY}`/`{NAME}` follow [`env_name`]: ASCII letters upper-cased, any
//! other character outside `A-Z0-9_` becomes `_`; when two keys map to one name the
//! first keeps it (a warning is returned) while `EM_HPS`, `EM_DATASETS` and the command
//! line keep every key.

pub mod distributed;
pub mod env_name;
pub mod launcher;
pub mod network;
pub mod paths;
pub mod requirements;
pub mod security;

use std::collections::BTreeMap;

use gantry_domain::{Algorithm, TrainingSpec};
use serde::{Deserialize, Serialize};

use crate::runtime::BindMount;
pub use launcher::{EXIT_ENTRY_POINT_MISSING, EXIT_REQUIREMENTS_FAILED, launcher_script};

/// Host directories the agent prepared for one container (absolute paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDirs {
    /// The downloaded algorithm directory.
    pub source: String,
    /// By dataset name; one for every dataset of the spec.
    pub datasets: BTreeMap<String, String>,
    pub model: String,
    /// Required when the spec has an input checkpoint.
    pub checkpoint_input: Option<String>,
    pub checkpoint_output: String,
    pub tensorboard: String,
    /// Wheels for `requirements.txt`; `None` when the algorithm has none.
    pub wheels: Option<String>,
    /// Writable, empty: where they are installed. Set whenever `wheels` is.
    #[serde(default)]
    pub packages: Option<String>,
}

/// Everything [`training_launch`] needs for one container of a training.
#[derive(Debug, Clone, Copy)]
pub struct ContractInput<'a> {
    pub spec: &'a TrainingSpec,
    /// This container's rank, `0..instance_count`.
    pub rank: u32,
    /// Hostnames of all containers of the gang by rank (`instance_count` of them);
    /// rank 0's is the master's address.
    pub hostnames: &'a [String],
    /// Where the gang's ranks listen (see [`network::training_network`]).
    pub ports: &'a distributed::RendezvousPorts,
    pub dirs: &'a HostDirs,
    pub region: &'a str,
    pub appkey: &'a str,
}

/// How to run one container of a training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingLaunch {
    /// The full argv (the launcher, then the hyperparameter arguments).
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<BindMount>,
    pub working_dir: String,
    pub hostname: String,
    /// Things the user should know (keys that lost their `EM_*` variable).
    pub warnings: Vec<String>,
}

/// A training that cannot be launched as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("rank {rank} is outside the gang of {instance_count}")]
    RankOutOfRange { rank: u32, instance_count: u32 },
    #[error("expected {expected} hostnames (one per rank), got {got}")]
    HostnameCount { expected: u32, got: usize },
    #[error("no host directory was prepared for dataset '{0}'")]
    MissingDatasetDir(String),
    #[error("the spec has an input checkpoint but no host directory was prepared for it")]
    MissingCheckpointInputDir,
}

/// `--{key} {value}` for every hyperparameter, in the spec's order.
pub fn hyperparameter_args(spec: &TrainingSpec) -> Vec<String> {
    spec.hyperparameters.iter().flat_map(|hp| [format!("--{}", hp.key), hp.value.clone()]).collect()
}

/// The command the launcher finally runs (without torchrun): `python3 {entry point}
/// --{key} {value} …`.
pub fn python_argv(spec: &TrainingSpec) -> Vec<String> {
    let Algorithm::Own { entry_point, .. } = &spec.algorithm;
    let mut argv = vec!["python3".to_string(), entry_point.clone()];
    argv.extend(hyperparameter_args(spec));
    argv
}

/// Argv, environment and mounts of container `input.rank` of a training.
pub fn training_launch(input: ContractInput<'_>) -> Result<TrainingLaunch, ContractError> {
    let ContractInput { spec, rank, hostnames, ports, dirs, region, appkey } = input;
    if rank >= spec.instance_count {
        return Err(ContractError::RankOutOfRange { rank, instance_count: spec.instance_count });
    }
    if hostnames.len() != spec.instance_count as usize {
        return Err(ContractError::HostnameCount { expected: spec.instance_count, got: hostnames.len() });
    }
    let Algorithm::Own { entry_point, .. } = &spec.algorithm;
    let mut names = env_name::EnvNames::default();
    let mut warnings = Vec::new();
    let mut env: Vec<(String, String)> =
        vec![("EM_SOURCE_DIR".into(), paths::SOURCE_DIR.into()), ("EM_ENTRY_POINT".into(), entry_point.clone())];
    let mut mounts = vec![bind(&dirs.source, paths::SOURCE_DIR, true)];

    let mut datasets = serde_json::Map::new();
    for ds in &spec.datasets {
        let host = dirs.datasets.get(&ds.name).ok_or_else(|| ContractError::MissingDatasetDir(ds.name.clone()))?;
        let dir = paths::dataset_dir(&ds.name);
        match names.claim("EM_DATASET_", &ds.name) {
            Ok(var) => env.push((var, dir.clone())),
            Err(var) => {
                warnings.push(format!("dataset '{}' has no {var} variable: an earlier dataset took it", ds.name))
            }
        }
        mounts.push(bind(host, &dir, true));
        datasets.entry(ds.name.clone()).or_insert(serde_json::Value::String(dir));
    }
    env.push(("EM_DATASETS".into(), serde_json::Value::Object(datasets).to_string()));

    env.push(("EM_MODEL_DIR".into(), paths::MODEL_DIR.into()));
    mounts.push(bind(&dirs.model, paths::MODEL_DIR, false));
    if spec.checkpoint_input_path.is_some() {
        let host = dirs.checkpoint_input.as_ref().ok_or(ContractError::MissingCheckpointInputDir)?;
        env.push(("EM_CHECKPOINT_INPUT_DIR".into(), paths::CHECKPOINT_INPUT_DIR.into()));
        mounts.push(bind(host, paths::CHECKPOINT_INPUT_DIR, true));
    }
    env.push(("EM_CHECKPOINT_DIR".into(), paths::CHECKPOINT_OUTPUT_DIR.into()));
    mounts.push(bind(&dirs.checkpoint_output, paths::CHECKPOINT_OUTPUT_DIR, false));
    env.push(("EM_TENSORBOARD_LOG_DIR".into(), paths::TENSORBOARD_DIR.into()));
    mounts.push(bind(&dirs.tensorboard, paths::TENSORBOARD_DIR, false));
    if let Some(wheels) = &dirs.wheels {
        mounts.push(bind(wheels, paths::WHEELS_DIR, true));
    }
    if let Some(packages) = &dirs.packages {
        mounts.push(bind(packages, paths::PACKAGES_DIR, false));
        env.push(("PYTHONPATH".into(), paths::PACKAGES_DIR.into()));
    }
    env.push(("HOME".into(), paths::HOME_DIR.into()));
    env.push(("EM_REGION".into(), region.into()));
    env.push(("EM_APPKEY".into(), appkey.into()));

    let mut hps = serde_json::Map::new();
    for hp in &spec.hyperparameters {
        match names.claim("EM_HP_", &hp.key) {
            Ok(var) => env.push((var, hp.value.clone())),
            Err(var) => {
                warnings.push(format!("hyperparameter '{}' has no {var} variable: an earlier key took it", hp.key))
            }
        }
        hps.entry(hp.key.clone()).or_insert(serde_json::Value::String(hp.value.clone()));
    }
    env.push(("EM_HPS".into(), serde_json::Value::Object(hps).to_string()));

    if spec.instance_count > 1 {
        env.extend(distributed::distributed_env(rank, hostnames, ports));
    }
    if spec.use_torchrun {
        env.push((launcher::TORCHRUN_NPROC_VAR.into(), spec.nproc_per_node.to_string()));
    }
    env.push(("PYTHONUNBUFFERED".into(), "1".into()));

    Ok(TrainingLaunch {
        cmd: launcher::launcher_argv(&hyperparameter_args(spec)),
        env,
        mounts,
        working_dir: paths::SOURCE_DIR.into(),
        hostname: hostnames[rank as usize].clone(),
        warnings,
    })
}

fn bind(host: &str, container: &str, read_only: bool) -> BindMount {
    BindMount { host_path: host.to_string(), container_path: container.to_string(), read_only }
}

#[cfg(test)]
mod tests;
