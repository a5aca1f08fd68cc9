//! [`ContainerSpec`]: everything needed to create one container, as plain data.
//!
//! Built by the agent's controllers (for trainings from [`crate::contract`]); turned
//! into an engine request by the runtime. Validation lives here so the real and the
//! fake runtime reject the same specs.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::error::RuntimeError;
use super::hardening::{self, Hardening};
use super::labels;

/// Docker refuses memory limits below 6 MiB.
pub const MEMORY_MIN_BYTES: i64 = 6 * 1024 * 1024;

/// The variable the NVIDIA container runtime reads to decide which GPUs to expose.
pub const NVIDIA_VISIBLE_DEVICES: &str = "NVIDIA_VISIBLE_DEVICES";

/// How GPUs reach a container; a property of the node, not of the workload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuMode {
    /// A Docker device request (driver `nvidia`, the exact GPU UUIDs): the NVIDIA
    /// container toolkit must be installed on the node.
    #[default]
    Nvidia,
    /// No device request; only the `NVIDIA_VISIBLE_DEVICES` variable and the
    /// `org.gantry.gpus` label record the assigned UUIDs. For nodes and CI machines
    /// without GPUs whose inventory is faked.
    FakeLabelsOnly,
}

/// A host directory bind-mounted into the container (Docker `Mounts`, type `bind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    pub host_path: String,
    pub container_path: String,
    pub read_only: bool,
}

/// The network a container joins. There is no variant for the engine's default
/// bridge: every container on it could reach every other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// Loopback only.
    #[default]
    None,
    /// The workload group's own bridge network, created with the group's first
    /// container and removed with its last (see [`workload_network_name`]). Its
    /// labels are the container's cluster, node and workload labels, which must be
    /// set. `aliases` are extra DNS names of this container on that network (the
    /// contract's rank hostnames, so the ranks of a gang find each other).
    Workload { name: String, aliases: Vec<String> },
    /// The host's network stack. Only for a gang whose ranks span several nodes: they
    /// reach each other at the node addresses on fixed ports until the scheduler
    /// allocates rendezvous ports (issue #9). A known limit (`docs/agent.md`).
    HostForMultiNodeGang,
    /// Like [`Network::Workload`] (the group's own bridge, never the engine's default
    /// one), with container ports published on the host: a serving pod the gateway
    /// reaches at `{node address}:{host_port}`.
    Published { name: String, ports: Vec<PublishedPort> },
}

/// A container port published on the host (TCP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// The host address the port is bound to; `0.0.0.0` is every address.
    pub host_ip: std::net::IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

impl Network {
    /// The name of the group's own bridge network, for the variants that have one.
    pub fn own_bridge(&self) -> Option<&str> {
        match self {
            Network::Workload { name, .. } | Network::Published { name, .. } => Some(name),
            Network::None | Network::HostForMultiNodeGang => None,
        }
    }

    /// The ports published on the host (none but for [`Network::Published`]).
    pub fn published(&self) -> &[PublishedPort] {
        match self {
            Network::Published { ports, .. } => ports,
            _ => &[],
        }
    }
}

/// The name of a workload group's own network on an engine shared by clusters.
pub fn workload_network_name(cluster: &str, workload_id: &str) -> String {
    format!("gantry-{cluster}-{workload_id}")
}

/// One container to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Unique on the engine; Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    pub name: String,
    /// Must already be present on the node (there is no registry).
    pub image: String,
    /// The full argv. It replaces both the image's entrypoint and its command, so what
    /// runs never depends on how the image was built.
    pub cmd: Vec<String>,
    /// In order; a later duplicate overrides an earlier one (engine behaviour).
    pub env: Vec<(String, String)>,
    /// Usually [`labels::GantryLabels::to_map`]; the GPU label is added from
    /// `gpu_uuids`.
    pub labels: BTreeMap<String, String>,
    /// CPU limit in 10⁻⁹ CPUs (see [`nano_cpus`]); 0 = unlimited.
    pub nano_cpus: i64,
    /// Memory limit; 0 = unlimited, otherwise at least [`MEMORY_MIN_BYTES`].
    pub memory_bytes: i64,
    /// GPUs the container owns exclusively, by UUID.
    pub gpu_uuids: Vec<String>,
    pub mounts: Vec<BindMount>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub network: Network,
    /// Size of `/dev/shm`; Docker's default of 64 MiB starves PyTorch data loaders and
    /// NCCL, so trainings set it.
    pub shm_bytes: Option<i64>,
    /// User, root filesystem, tmpfs, PID limit, capabilities (see
    /// [`hardening`] for what every container gets regardless).
    pub hardening: Hardening,
}

/// `cpu_millis` (1000 = one core) as Docker's `NanoCpus`.
pub fn nano_cpus(cpu_millis: u64) -> i64 {
    i64::try_from(cpu_millis.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}

/// `memory_mib` as bytes.
pub fn memory_bytes(memory_mib: u64) -> i64 {
    i64::try_from(memory_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX)
}

impl ContainerSpec {
    /// A spec with no limits, labels, mounts or GPUs.
    pub fn new(name: impl Into<String>, image: impl Into<String>, cmd: Vec<String>) -> Self {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            cmd,
            env: Vec::new(),
            labels: BTreeMap::new(),
            nano_cpus: 0,
            memory_bytes: 0,
            gpu_uuids: Vec::new(),
            mounts: Vec::new(),
            working_dir: None,
            hostname: None,
            network: Network::None,
            shm_bytes: None,
            hardening: Hardening::default(),
        }
    }

    /// Sets the CPU and memory limits from the domain's units.
    pub fn with_resources(mut self, cpu_millis: u64, memory_mib: u64) -> Self {
        self.nano_cpus = nano_cpus(cpu_millis);
        self.memory_bytes = memory_bytes(memory_mib);
        self
    }

    /// `env` plus `NVIDIA_VISIBLE_DEVICES`, which always reflects `gpu_uuids`: the
    /// spec's own value for it is dropped, and a container without GPUs gets `void`
    /// so an image's `NVIDIA_VISIBLE_DEVICES=all` (CUDA base images set it) cannot
    /// expose every GPU of the node when nvidia is the engine's default runtime.
    pub fn effective_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> =
            self.env.iter().filter(|(k, _)| k != NVIDIA_VISIBLE_DEVICES).cloned().collect();
        let visible = if self.gpu_uuids.is_empty() { "void".to_string() } else { self.gpu_uuids.join(",") };
        env.push((NVIDIA_VISIBLE_DEVICES.to_string(), visible));
        env
    }

    /// `labels` plus [`labels::GPUS`] when the container has GPUs.
    pub fn effective_labels(&self) -> BTreeMap<String, String> {
        let mut out = self.labels.clone();
        if !self.gpu_uuids.is_empty() {
            out.insert(labels::GPUS.to_string(), self.gpu_uuids.join(","));
        }
        out
    }

    /// The labels of the workload network: the group's cluster, node and workload
    /// (not the rank: the network is shared by the group).
    pub fn network_labels(&self) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .filter(|(k, _)| [labels::CLUSTER, labels::NODE, labels::WORKLOAD].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Checks what the engine would reject or misread, and what no workload may have
    /// (see [`hardening`]).
    pub fn validate(&self) -> Result<(), RuntimeError> {
        let bad = |msg: String| Err(RuntimeError::InvalidSpec(msg));
        if !valid_name(&self.name) {
            return bad(format!("name '{}' must match [a-zA-Z0-9][a-zA-Z0-9_.-]+", self.name));
        }
        if self.image.is_empty() || self.image.chars().any(char::is_whitespace) {
            return bad(format!("image '{}' must be a non-empty reference without whitespace", self.image));
        }
        if self.cmd.is_empty() || self.cmd[0].is_empty() {
            return bad("cmd must name a program".into());
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return bad(format!("environment variable '{k}' must be non-empty without '=' or NUL"));
            }
        }
        if self.nano_cpus < 0 {
            return bad("nano_cpus must not be negative".into());
        }
        if self.memory_bytes != 0 && self.memory_bytes < MEMORY_MIN_BYTES {
            return bad(format!("memory limit must be 0 (unlimited) or at least {MEMORY_MIN_BYTES} bytes"));
        }
        if let Some(gpu) =
            self.gpu_uuids.iter().find(|g| g.is_empty() || g.contains(',') || g.contains(char::is_whitespace))
        {
            return bad(format!("gpu uuid '{gpu}' must be non-empty without ',' or whitespace"));
        }
        let mut targets = BTreeSet::new();
        for m in &self.mounts {
            if !m.host_path.starts_with('/') || !m.container_path.starts_with('/') {
                return bad(format!("mount {} -> {} must use absolute paths", m.host_path, m.container_path));
            }
            if !targets.insert(m.container_path.as_str()) {
                return bad(format!("two mounts target {}", m.container_path));
            }
            if let Some(why) = hardening::forbidden_mount(&m.host_path) {
                return bad(why);
            }
        }
        self.validate_hardening(&mut targets)?;
        self.validate_network()
    }

    fn validate_hardening<'a>(&'a self, targets: &mut BTreeSet<&'a str>) -> Result<(), RuntimeError> {
        let bad = |msg: String| Err(RuntimeError::InvalidSpec(msg));
        let h = &self.hardening;
        if h.pids_limit < 1 {
            return bad(format!(
                "pids_limit {} must be at least 1 (the engine reads 0 and -1 as unlimited)",
                h.pids_limit
            ));
        }
        for t in &h.tmpfs {
            if !t.container_path.starts_with('/') || t.container_path.contains(',') || t.container_path.contains(':') {
                return bad(format!("tmpfs {} must be an absolute path without ',' or ':'", t.container_path));
            }
            if t.size_bytes < 0 || t.mode > 0o7777 {
                return bad(format!("tmpfs {} needs a size of at least 0 and a mode up to 0o7777", t.container_path));
            }
            if !targets.insert(t.container_path.as_str()) {
                return bad(format!("two mounts target {}", t.container_path));
            }
        }
        Ok(())
    }

    fn validate_network(&self) -> Result<(), RuntimeError> {
        let bad = |msg: String| Err(RuntimeError::InvalidSpec(msg));
        match &self.network {
            Network::None => Ok(()),
            Network::HostForMultiNodeGang if self.hostname.is_some() => {
                bad("a container on the host's network keeps the host's name: hostname must be unset".into())
            }
            Network::HostForMultiNodeGang => Ok(()),
            Network::Published { name, ports } => {
                self.validate_bridge(name)?;
                let mut seen = BTreeSet::new();
                for p in ports {
                    if p.host_port == 0 || p.container_port == 0 {
                        return bad(format!(
                            "published port {}:{} -> {} needs non-zero ports",
                            p.host_ip, p.host_port, p.container_port
                        ));
                    }
                    if !seen.insert((p.host_ip, p.host_port)) {
                        return bad(format!("host port {}:{} is published twice", p.host_ip, p.host_port));
                    }
                }
                Ok(())
            }
            Network::Workload { name, aliases } => {
                self.validate_bridge(name)?;
                if let Some(alias) = aliases.iter().find(|a| !valid_alias(a)) {
                    return bad(format!("network alias '{alias}' must be letters, digits, '-' and '.'"));
                }
                Ok(())
            }
        }
    }

    /// The rules of a group's own bridge network.
    fn validate_bridge(&self, name: &str) -> Result<(), RuntimeError> {
        if !valid_name(name) {
            return Err(RuntimeError::InvalidSpec(format!("network '{name}' must match [a-zA-Z0-9][a-zA-Z0-9_.-]+")));
        }
        if !self.labels.contains_key(labels::CLUSTER) || !self.labels.contains_key(labels::WORKLOAD) {
            return Err(RuntimeError::InvalidSpec(format!(
                "network '{name}' needs the container's {} and {} labels (they mark the network as the workload's, \
                 for its removal)",
                labels::CLUSTER,
                labels::WORKLOAD
            )));
        }
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias.len() <= 253
        && alias.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::hardening::TmpfsMount;
    use crate::runtime::labels::GantryLabels;

    fn spec() -> ContainerSpec {
        ContainerSpec::new("gantry-w-0", "img:1", vec!["sh".into()])
    }

    #[test]
    fn resources_convert_to_engine_units() {
        let s = spec().with_resources(1500, 512);
        assert_eq!(s.nano_cpus, 1_500_000_000);
        assert_eq!(s.memory_bytes, 512 * 1024 * 1024);
    }

    #[test]
    fn gpus_show_in_env_and_labels_and_cannot_be_overridden() {
        let mut s = spec();
        s.env.push((NVIDIA_VISIBLE_DEVICES.into(), "all".into()));
        assert_eq!(s.effective_env(), [(NVIDIA_VISIBLE_DEVICES.to_string(), "void".to_string())]);
        assert!(!s.effective_labels().contains_key(labels::GPUS));

        s.gpu_uuids = vec!["GPU-a".into(), "GPU-b".into()];
        assert_eq!(s.effective_env(), [(NVIDIA_VISIBLE_DEVICES.to_string(), "GPU-a,GPU-b".to_string())]);
        assert_eq!(s.effective_labels()[labels::GPUS], "GPU-a,GPU-b");
    }

    type Mutation = Box<dyn Fn(&mut ContainerSpec)>;

    #[test]
    fn validation_rejects_what_the_engine_would() {
        assert_eq!(spec().validate(), Ok(()));
        let cases: Vec<Mutation> = vec![
            Box::new(|s| s.name = "-x".into()),
            Box::new(|s| s.name = "a b".into()),
            Box::new(|s| s.name = "a".into()),
            Box::new(|s| s.image = String::new()),
            Box::new(|s| s.cmd = vec![]),
            Box::new(|s| s.env = vec![("A=B".into(), "v".into())]),
            Box::new(|s| s.memory_bytes = 1024),
            Box::new(|s| s.nano_cpus = -1),
            Box::new(|s| s.gpu_uuids = vec!["a,b".into()]),
            Box::new(|s| {
                s.mounts = vec![BindMount { host_path: "rel".into(), container_path: "/x".into(), read_only: true }]
            }),
            Box::new(|s| {
                let m = BindMount { host_path: "/a".into(), container_path: "/x".into(), read_only: true };
                s.mounts = vec![m.clone(), m];
            }),
        ];
        for (i, mutate) in cases.iter().enumerate() {
            let mut s = spec();
            mutate(&mut s);
            assert!(matches!(s.validate(), Err(RuntimeError::InvalidSpec(_))), "case {i}");
        }
    }

    fn workload_spec() -> ContainerSpec {
        let mut s = spec();
        s.labels = GantryLabels { cluster: "c".into(), node: "n".into(), workload: "w".into(), rank: 0 }.to_map();
        s.network = Network::Workload { name: workload_network_name("c", "w"), aliases: vec!["t-0".into()] };
        s
    }

    #[test]
    fn a_mount_of_the_docker_socket_or_its_directory_is_refused() {
        for host in ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/"] {
            let mut s = spec();
            s.mounts = vec![BindMount { host_path: host.into(), container_path: "/x".into(), read_only: true }];
            match s.validate() {
                Err(RuntimeError::InvalidSpec(msg)) => assert!(msg.contains(host), "{host}: {msg}"),
                other => panic!("{host}: {other:?}"),
            }
        }
    }

    fn port(host_port: u16, container_port: u16) -> PublishedPort {
        PublishedPort { host_ip: std::net::Ipv4Addr::LOCALHOST.into(), host_port, container_port }
    }

    #[test]
    fn a_published_port_sits_on_the_groups_own_bridge() {
        let mut s = workload_spec();
        s.network = Network::Published { name: "gantry-c-w".into(), ports: vec![port(31000, 8080)] };
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.network.own_bridge(), Some("gantry-c-w"));
        assert_eq!(s.network.published(), [port(31000, 8080)]);
        assert_eq!(Network::None.own_bridge(), None);
        assert!(Network::HostForMultiNodeGang.published().is_empty());
    }

    #[test]
    fn hardening_and_network_rules() {
        assert_eq!(workload_spec().validate(), Ok(()));
        assert_eq!(workload_spec().network_labels().len(), 3, "cluster, node, workload; not the rank");
        let tmp = |p: &str| TmpfsMount { container_path: p.into(), size_bytes: 0, mode: 0o1777, owner: None };
        let cases: Vec<Mutation> = vec![
            Box::new(|s| s.hardening.pids_limit = 0),
            Box::new(|s| s.hardening.pids_limit = -1),
            Box::new(move |s| s.hardening.tmpfs = vec![tmp("rel")]),
            Box::new(move |s| s.hardening.tmpfs = vec![tmp("/tmp"), tmp("/tmp")]),
            Box::new(move |s| s.hardening.tmpfs = vec![tmp("/a,b")]),
            Box::new(move |s| {
                s.mounts = vec![BindMount { host_path: "/h".into(), container_path: "/tmp".into(), read_only: true }];
                s.hardening.tmpfs = vec![tmp("/tmp")];
            }),
            Box::new(|s| s.labels.remove(labels::WORKLOAD).map(drop).unwrap_or(())),
            Box::new(|s| s.network = Network::Workload { name: "-bad".into(), aliases: vec![] }),
            Box::new(|s| s.network = Network::Workload { name: "gantry-c-w".into(), aliases: vec!["a b".into()] }),
            Box::new(|s| {
                s.network = Network::HostForMultiNodeGang;
                s.hostname = Some("t-0".into());
            }),
            Box::new(|s| s.network = Network::Published { name: "gantry-c-w".into(), ports: vec![port(0, 8080)] }),
            Box::new(|s| s.network = Network::Published { name: "gantry-c-w".into(), ports: vec![port(31000, 0)] }),
            Box::new(|s| {
                s.network =
                    Network::Published { name: "gantry-c-w".into(), ports: vec![port(31000, 8080), port(31000, 9090)] }
            }),
            Box::new(|s| {
                s.labels.remove(labels::CLUSTER);
                s.network = Network::Published { name: "gantry-c-w".into(), ports: vec![port(31000, 8080)] };
            }),
        ];
        for (i, mutate) in cases.iter().enumerate() {
            let mut s = workload_spec();
            mutate(&mut s);
            assert!(matches!(s.validate(), Err(RuntimeError::InvalidSpec(_))), "case {i}: {:?}", s.validate());
        }
    }
}
