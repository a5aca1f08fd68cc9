//! The serving pod contract (pure): one [`ServingPod`] of an endpoint stage instance →
//! the [`ContainerSpec`] of its container, and what the agent decides about its pods
//! ([`plan`]).
//!
//! ```text
//!   ServingPod + the instance (workload, GPUs) + the artifact's real directory
//!        │ pod_spec
//!        ▼
//!   ContainerSpec: {MODEL_DIR} read-only, port {PORT} published on {node address}:{host_port},
//!                  on the instance's own bridge network, hardened as trainings are
//! ```
//!
//! | variable | value |
//! | --- | --- |
//! | `GANTRY_MODEL_NAME` | the model's name (the V1/V2 paths name it) |
//! | `GANTRY_MODEL_FRAMEWORK` | `TENSORFLOW`, `PYTORCH`, `ONNX` or `SCIKIT_LEARN` |
//! | `GANTRY_MODEL_DIR` | `/mnt/models`: the artifact directory, read-only |
//! | `GANTRY_PORT` | `8080`: where the server listens (published on the pod's host port) |
//! | `HOME` | `/gantry/home`, a tmpfs of the pod's user (the root filesystem is read-only) |
//!
//! The artifact directory is resolved by the agent with the same grant checks and
//! link-free walk as a training's inputs (`daemon::storage`); this module only takes
//! the real directory that walk opened.

pub mod plan;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gantry_proto::v1::ServingPod;

use crate::contract::paths;
use crate::contract::security::training_hardening;
use crate::runtime::{
    BindMount, ContainerSpec, GantryLabels, HardeningConfig, Network, PublishedPort, labels, workload_network_name,
};

/// Where the artifact directory is mounted, read-only.
pub const MODEL_DIR: &str = "/mnt/models";
/// The port the model server listens on inside its container.
pub const PORT: u16 = 8080;
/// The readiness path of the serving runtime contract (docs/serving.md).
pub const HEALTH_PATH: &str = "/v2/health/ready";
/// The exit code of a model server whose artifact is missing or unreadable; its last
/// line on stderr is the reason. Retrying will not fix it: the pod is failed.
pub const EXIT_ARTIFACT_MISSING: i64 = 3;

/// The container name of pod `pod_id`: unique per cluster and pod, and a valid engine
/// name whatever the id holds (characters outside `[a-zA-Z0-9_.-]` become `-`, and a
/// hash of the id keeps two such ids apart).
pub fn pod_container_name(cluster: &str, pod_id: &str) -> String {
    let safe: String = pod_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' })
        .collect();
    if safe == pod_id && !pod_id.is_empty() {
        format!("gantry-{cluster}-pod-{pod_id}")
    } else {
        format!("gantry-{cluster}-pod-{safe}-{:016x}", fnv1a(pod_id.as_bytes()))
    }
}

/// FNV-1a (64 bit): stable across builds, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The host address pods are published on, from the address this node registers
/// (`address` in the agent's configuration): that address when it is an IP, every
/// address (`0.0.0.0`) when it is unspecified or a DNS name (the engine binds IPs
/// only, and a name may resolve to any of the host's addresses).
pub fn publish_ip(address: &str) -> IpAddr {
    let bare = address.trim().trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) if !ip.is_unspecified() => ip,
        Ok(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// Where the agent itself reaches a pod published on `ip`: the address itself, or
/// loopback for a wildcard binding.
pub fn probe_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// Everything a pod's container needs besides the pod itself.
#[derive(Debug, Clone)]
pub struct PodSite<'a> {
    pub cluster: &'a str,
    pub node_id: &'a str,
    /// The instance's workload and rank: its pods carry them, so the reconciler counts
    /// them as the instance's containers (and removes them with it).
    pub workload_id: &'a str,
    pub rank: u32,
    /// The instance's GPUs, visible to each of its pods.
    pub gpu_uuids: &'a [String],
    pub publish_ip: IpAddr,
    /// The model server's argv (the serving image's server, docs/serving.md).
    pub command: &'a [String],
    pub hardening: &'a HardeningConfig,
}

/// The container of `pod`, its artifact at `model_dir` on the host (the real directory
/// the storage walk opened).
pub fn pod_spec(pod: &ServingPod, model_dir: &str, site: &PodSite<'_>) -> ContainerSpec {
    let mut spec = ContainerSpec::new(pod_container_name(site.cluster, &pod.pod_id), &pod.image, site.command.to_vec())
        .with_resources(pod.cpu_millis, pod.memory_mib);
    spec.labels = GantryLabels {
        cluster: site.cluster.to_string(),
        node: site.node_id.to_string(),
        workload: site.workload_id.to_string(),
        rank: site.rank,
    }
    .to_map();
    spec.labels.insert(labels::POD.to_string(), pod.pod_id.clone());
    spec.env = vec![
        ("GANTRY_MODEL_NAME".into(), pod.model.clone()),
        ("GANTRY_MODEL_FRAMEWORK".into(), pod.framework.clone()),
        ("GANTRY_MODEL_DIR".into(), MODEL_DIR.into()),
        ("GANTRY_PORT".into(), PORT.to_string()),
        ("HOME".into(), paths::HOME_DIR.into()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    spec.mounts =
        vec![BindMount { host_path: model_dir.to_string(), container_path: MODEL_DIR.into(), read_only: true }];
    spec.gpu_uuids = site.gpu_uuids.to_vec();
    spec.network = Network::Published {
        name: workload_network_name(site.cluster, site.workload_id),
        ports: vec![PublishedPort {
            host_ip: site.publish_ip,
            host_port: u16::try_from(pod.host_port).unwrap_or(0),
            container_port: PORT,
        }],
    };
    spec.hardening = training_hardening(site.hardening);
    spec
}

#[cfg(test)]
mod tests;
