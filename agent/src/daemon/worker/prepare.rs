//! From an assignment to a container spec: every storage path checked against the
//! grants and the deny list before anything is touched, inputs opened without following
//! links (their real directories are what Docker mounts, read-only), outputs created
//! beneath their roots, the algorithm checked, wheels downloaded, the EasyMaker contract
//! applied.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;

use gantry_domain::{Algorithm, StorageGrants, TrainingSpec};
use gantry_proto::convert;
use gantry_proto::v1::WorkAssignment;

use super::super::storage::{Located, Opened, Storage};
use super::super::wheels::{self, PipConfig};
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
    pub storage: &'a Storage,
    pub pip: &'a PipConfig,
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

/// Where outputs are and go, for the upload after a successful run.
pub struct Outputs {
    pub model: PathBuf,
    pub output: Located,
    pub checkpoint: PathBuf,
    pub checkpoint_output: Option<Located>,
}

pub struct Prepared {
    pub spec: ContainerSpec,
    pub outputs: Outputs,
    pub warnings: Vec<String>,
}

fn mkdir(path: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))
}

fn training_spec(a: &WorkAssignment) -> Result<TrainingSpec, String> {
    let wire = a.spec.as_ref().ok_or("the assignment carries no training spec")?;
    convert::training_spec_from_wire(wire).map_err(|e| e.to_string())
}

/// The assignment's grants; none sent means nothing is granted.
fn grants(a: &WorkAssignment) -> Result<Option<StorageGrants>, String> {
    a.grants
        .as_ref()
        .map(|g| convert::storage_grants_parse("grants", g))
        .transpose()
        .map_err(|e| format!("the assignment's storage grants are malformed: {e}"))
}

/// Every storage path of the spec, by field, checked against the grants and the deny
/// list (no side effects). The first refusal is the reason.
fn locate(spec: &TrainingSpec, a: &WorkAssignment, storage: &Storage) -> Result<BTreeMap<String, Located>, String> {
    let grants = grants(a)?;
    spec.storage_paths()
        .into_iter()
        .map(|(field, access, path)| {
            let at = storage.locate(grants.as_ref(), &field, access, path).map_err(|e| e.to_string())?;
            Ok((field, at))
        })
        .collect()
}

fn take(located: &mut BTreeMap<String, Located>, field: &str) -> Result<Located, String> {
    located.remove(field).ok_or_else(|| format!("{field}: not among the training's storage paths"))
}

/// Where a container's outputs are and go (no side effects).
pub fn outputs(a: &WorkAssignment, site: &Site<'_>) -> Result<Outputs, String> {
    let spec = training_spec(a)?;
    let mut located = locate(&spec, a, site.storage)?;
    Ok(Outputs {
        model: site.work_dir.join("model"),
        output: take(&mut located, "output_path")?,
        checkpoint: site.work_dir.join("checkpoints"),
        checkpoint_output: located.remove("checkpoint_output_path"),
    })
}

fn real(o: &Opened) -> String {
    o.real.display().to_string()
}

/// Builds the container spec. The error is the user-facing FAIL TRAIN reason.
pub async fn prepare(a: &WorkAssignment, site: &Site<'_>) -> Result<Prepared, String> {
    let spec = training_spec(a)?;
    let storage = site.storage;
    let mut located = locate(&spec, a, storage)?;
    let open = |at: &Located| storage.open_dir(at).map_err(|e| format!("{e} (node {})", site.node_id));
    let Algorithm::Own { path, entry_point } = &spec.algorithm;
    let source = open(&take(&mut located, "algorithm_path")?)?;
    check_entry_point(&source, entry_point, path)?;
    let mut datasets = BTreeMap::new();
    for (i, ds) in spec.datasets.iter().enumerate() {
        let dir = open(&take(&mut located, &format!("datasets[{i}].path"))?)?;
        datasets.insert(ds.name.clone(), real(&dir));
    }
    let checkpoint_input = match located.remove("checkpoint_input_path") {
        Some(at) => Some(real(&open(&at)?)),
        None => None,
    };
    // Linted before anything is made: a refused file leaves no trace on the node.
    let wanted = wheels::collect(&source.fd)?;
    let outputs = Outputs {
        model: site.work_dir.join("model"),
        output: take(&mut located, "output_path")?,
        checkpoint: site.work_dir.join("checkpoints"),
        checkpoint_output: located.remove("checkpoint_output_path"),
    };
    // Made now, so an output path that cannot be written fails before the run.
    for at in std::iter::once(&outputs.output).chain(&outputs.checkpoint_output) {
        storage.create_dir(at).map_err(|e| e.to_string())?;
    }
    let (model, checkpoint) = (&outputs.model, &outputs.checkpoint);
    for dir in [model, checkpoint, &site.tensorboard_dir] {
        mkdir(dir)?;
    }
    let (wheels, packages) = match wanted {
        Some(wanted) => {
            let dest = site.work_dir.join("wheels");
            wheels::download(&wanted, &dest, site.pip).await?;
            let packages = site.work_dir.join("packages");
            mkdir(&packages)?;
            writable::hand_over(&[&packages], site.hardening.training_user)?;
            (Some(dest.display().to_string()), Some(packages.display().to_string()))
        }
        None => (None, None),
    };
    // The training runs as its own unprivileged user: it must be able to write these.
    writable::hand_over(&[model, checkpoint, &site.tensorboard_dir], site.hardening.training_user)?;
    let dirs = HostDirs {
        source: real(&source),
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
        master_port: a.master_port,
        worker_ports: &a.worker_ports,
    });
    let hostnames = net.hostnames;
    let launch = training_launch(ContractInput {
        spec: &spec,
        rank: a.rank,
        hostnames: &hostnames,
        ports: &net.ports,
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

/// The entry point must be in the algorithm directory, reached without following a
/// link on the host (the container resolves its own links, inside its own mounts).
fn check_entry_point(source: &Opened, entry_point: &str, path: &gantry_domain::StoragePath) -> Result<(), String> {
    use super::super::storage::{WalkError, walk};
    let not_found = || format!("entry point {entry_point} not found in {path}");
    let segs: Vec<&OsStr> = entry_point.split('/').filter(|s| !s.is_empty()).map(OsStr::new).collect();
    let Some((name, dirs)) = segs.split_last() else { return Err(not_found()) };
    let dir = match walk(&source.fd, std::path::Path::new(""), dirs, false) {
        Ok(d) => d,
        Err(WalkError::Missing(_)) => return Err(not_found()),
        Err(e) => return Err(format!("entry point {entry_point} in {path}: {e}")),
    };
    match rustix::fs::statat(&dir, *name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory => {
            Err(format!("entry point {entry_point} in {path} is a directory, not a script"))
        }
        Ok(_) => Ok(()),
        Err(_) => Err(not_found()),
    }
}

#[cfg(test)]
#[path = "prepare_tests.rs"]
mod tests;
