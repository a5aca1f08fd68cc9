//! From an assignment to a container spec: host directories resolved and created, the
//! algorithm checked, wheels downloaded, the EasyMaker contract applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gantry_domain::{Algorithm, TrainingSpec};
use gantry_proto::convert;
use gantry_proto::v1::WorkAssignment;

use super::super::storage::StorageRoots;
use super::super::wheels;
use super::writable;
use crate::contract::network::{GangPlacement, training_network};
use crate::contract::security::training_hardening;
use crate::contract::{ContractInput, HostDirs, training_launch};
use crate::runtime::{ContainerSpec, GantryLabels, HardeningConfig};

/// Everything the worker needs that is not in the assignment.
pub struct Site<'a> {
    pub cluster: &'a str,
    pub node_id: &'a str,
    pub region: &'a str,
    pub roots: &'a StorageRoots,
    /// This container's working directories (model, checkpoints, wheels).
    pub work_dir: PathBuf,
    pub tensorboard_dir: PathBuf,
    /// How training containers are confined on this node.
    pub hardening: &'a HardeningConfig,
}

/// The container's engine name: unique per cluster, workload and rank.
pub fn container_name(cluster: &str, workload_id: &str, rank: u32) -> String {
    format!("gantry-{cluster}-{workload_id}-{rank}")
}

/// The host directories of outputs, for the upload after a successful run.
pub struct Outputs {
    pub model: PathBuf,
    pub output: PathBuf,
    pub checkpoint: PathBuf,
    pub checkpoint_output: Option<PathBuf>,
}

pub struct Prepared {
    pub spec: ContainerSpec,
    pub outputs: Outputs,
    pub warnings: Vec<String>,
}

fn mkdir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))
}

fn training_spec(a: &WorkAssignment) -> Result<TrainingSpec, String> {
    let wire = a.spec.as_ref().ok_or("the assignment carries no training spec")?;
    convert::training_spec_from_wire(wire).map_err(|e| e.to_string())
}

/// Where a container's outputs are and go (no side effects).
pub fn outputs(a: &WorkAssignment, site: &Site<'_>) -> Result<Outputs, String> {
    let spec = training_spec(a)?;
    let output = site.roots.resolve("output_path", &spec.output_path).map_err(|e| e.to_string())?;
    let checkpoint_output = match &spec.checkpoint_output_path {
        Some(p) => Some(site.roots.resolve("checkpoint_output_path", p).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(Outputs {
        model: site.work_dir.join("model"),
        output,
        checkpoint: site.work_dir.join("checkpoints"),
        checkpoint_output,
    })
}

/// Builds the container spec. The error is the user-facing FAIL TRAIN reason.
pub async fn prepare(a: &WorkAssignment, site: &Site<'_>) -> Result<Prepared, String> {
    let spec = training_spec(a)?;
    let outputs = outputs(a, site)?;
    let roots = site.roots;
    let Algorithm::Own { path, entry_point } = &spec.algorithm;
    let source = roots.resolve("algorithm.path", path).map_err(|e| e.to_string())?;
    if !source.is_dir() {
        return Err(format!("algorithm.path: {path} does not exist on node {}", site.node_id));
    }
    if !source.join(entry_point).is_file() {
        return Err(format!("entry point {entry_point} not found in {path}"));
    }
    let mut datasets = BTreeMap::new();
    for (i, ds) in spec.datasets.iter().enumerate() {
        let dir = roots.resolve(&format!("datasets[{i}].path"), &ds.path).map_err(|e| e.to_string())?;
        if !dir.is_dir() {
            return Err(format!("datasets[{i}] ({}): {} does not exist on node {}", ds.name, ds.path, site.node_id));
        }
        datasets.insert(ds.name.clone(), dir.display().to_string());
    }
    let checkpoint_input = match &spec.checkpoint_input_path {
        Some(p) => {
            let dir = roots.resolve("checkpoint_input_path", p).map_err(|e| e.to_string())?;
            if !dir.is_dir() {
                return Err(format!("checkpoint_input_path: {p} does not exist on node {}", site.node_id));
            }
            Some(dir.display().to_string())
        }
        None => None,
    };
    let (model, checkpoint) = (&outputs.model, &outputs.checkpoint);
    for dir in [model, checkpoint, &site.tensorboard_dir] {
        mkdir(dir)?;
    }
    let requirements = source.join("requirements.txt");
    let (wheels, packages) = if requirements.is_file() {
        let dest = site.work_dir.join("wheels");
        wheels::download(&requirements, &dest).await?;
        let packages = site.work_dir.join("packages");
        mkdir(&packages)?;
        writable::hand_over(&[&packages], site.hardening.training_user)?;
        (Some(dest.display().to_string()), Some(packages.display().to_string()))
    } else {
        (None, None)
    };
    // The training runs as its own unprivileged user: it must be able to write these.
    writable::hand_over(&[model, checkpoint, &site.tensorboard_dir], site.hardening.training_user)?;
    let dirs = HostDirs {
        source: source.display().to_string(),
        datasets,
        model: model.display().to_string(),
        checkpoint_input,
        checkpoint_output: checkpoint.display().to_string(),
        tensorboard: site.tensorboard_dir.display().to_string(),
        wheels,
        packages,
    };
    // The workload's own network; the host's only for a gang spanning nodes.
    let net = training_network(&GangPlacement {
        cluster: site.cluster,
        node_id: site.node_id,
        workload_id: &a.workload_id,
        training_name: &a.training_name,
        rank: a.rank,
        instance_count: spec.instance_count,
        rank_node_ids: &a.rank_node_ids,
        rank_addresses: &a.rank_addresses,
    });
    let hostnames = net.hostnames;
    let launch = training_launch(ContractInput {
        spec: &spec,
        rank: a.rank,
        hostnames: &hostnames,
        dirs: &dirs,
        region: site.region,
        appkey: &a.project,
    })
    .map_err(|e| e.to_string())?;
    let labels = GantryLabels {
        cluster: site.cluster.into(),
        node: site.node_id.into(),
        workload: a.workload_id.clone(),
        rank: a.rank,
    };
    let mut c = ContainerSpec::new(container_name(site.cluster, &a.workload_id, a.rank), &a.image, launch.cmd)
        .with_resources(a.cpu_millis, a.memory_mib);
    c.env = launch.env;
    c.labels = labels.to_map();
    c.gpu_uuids = a.gpu_uuids.clone();
    c.mounts = launch.mounts;
    c.working_dir = Some(launch.working_dir);
    c.network = net.network;
    c.hostname = net.hostname;
    c.hardening = training_hardening(site.hardening);
    // Half the memory limit for /dev/shm (data loaders, NCCL), within Docker's bounds.
    let memory = i64::try_from(a.memory_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
    c.shm_bytes = Some((memory / 2).clamp(64 * 1024 * 1024, 16 * 1024 * 1024 * 1024));
    Ok(Prepared { spec: c, outputs, warnings: launch.warnings })
}
