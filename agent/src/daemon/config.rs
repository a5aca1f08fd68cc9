//! `gantry-agent` configuration: TOML, unknown keys rejected, `GANTRY_AGENT_*`
//! environment variables override.
//!
//! ```toml
//! node_name = "gpu-01"                      # default: the host name
//! address = "10.0.0.11"                     # where other nodes reach this one
//! cluster = "prod"                          # container label; two clusters may share an engine
//! region = "kr1"                            # EM_REGION
//! state_dir = "/var/lib/gantry/agent"
//! schedulers = ["https://10.0.0.1:7443", "https://10.0.0.2:7443"]
//! join_token_file = "/etc/gantry/join-token"
//! heartbeat_interval = "2s"
//!
//! [tls]
//! ca_cert = "/etc/gantry/ca.pem"            # trusted scheduler CA
//! server_name = "localhost"                 # name checked in the scheduler certificates
//! renew = true                              # renew the issued certificate at 2/3 of its life
//!
//! [docker]
//! gpu_mode = "nvidia"                       # or "fake_labels_only"
//!
//! [gpu]
//! source = "nvml"                           # "fake" (with a `fake` list) or "none"
//!
//! [storage]
//! deny = ["/var/lib/gantry/scheduler"]      # never mounted or written, even if granted
//!
//! [storage.nas]
//! "nas-01" = "/mnt/nas01"                   # nas://nas-01:/x → /mnt/nas01/x
//!
//! [requirements]                            # how pip downloads wheels on this host
//! python = "python3"                        # must be executable by uid
//! python_version = "3.11"                   # the workload image's Python and platforms
//! platforms = ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "any"]
//! uid = 65534                               # pip's user when the agent runs as root
//! gid = 65534
//!
//! [logs]
//! max_file_bytes = 16777216
//! max_files = 4
//!
//! [serving]                                 # endpoint stage instances' pods
//! command = ["python3", "-m", "gantry_serve"]  # the model server's argv in serving images
//! publish_address = "10.0.0.11"             # default: `address` (a name or 0.0.0.0: every address)
//! probe_interval = "1s"                     # readiness probe of each pod
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::gpu::GpuConfig;
use crate::inventory::ResourceOverrides;
use crate::logstore::LogLimits;
use crate::runtime::DockerConfig;

use super::wheels::PipConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub node_name: String,
    pub address: String,
    pub cluster: String,
    pub region: String,
    pub state_dir: PathBuf,
    pub schedulers: Vec<String>,
    pub join_token: String,
    pub join_token_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// How long a stopped container gets between SIGTERM and SIGKILL.
    #[serde(with = "humantime_serde")]
    pub stop_grace: Duration,
    pub tls: AgentTlsConfig,
    pub docker: DockerConfig,
    pub gpu: GpuConfig,
    pub resources: ResourceOverrides,
    pub storage: StorageConfig,
    pub logs: LogConfig,
    pub requirements: PipConfig,
    pub serving: ServingConfig,
}

/// `[serving]`: how the pods of endpoint stage instances run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServingConfig {
    /// The model server's argv; it replaces the serving image's entrypoint and command
    /// (docs/serving.md names the server every serving image carries).
    pub command: Vec<String>,
    /// The host address pods are published on, when it must differ from `address`
    /// (the gateway reaches pods at the address the node registers).
    pub publish_address: Option<String>,
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
}

impl Default for ServingConfig {
    fn default() -> Self {
        ServingConfig {
            command: vec!["python3".into(), "-m".into(), "gantry_serve".into()],
            publish_address: None,
            probe_interval: Duration::from_secs(1),
        }
    }
}

impl ServingConfig {
    /// The address pods are published on ([`crate::serving::publish_ip`]).
    pub fn publish_ip(&self, node_address: &str) -> std::net::IpAddr {
        crate::serving::publish_ip(self.publish_address.as_deref().unwrap_or(node_address))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentTlsConfig {
    /// CA that signed the schedulers' certificates (and signs this node's).
    pub ca_cert: Option<PathBuf>,
    /// Name the scheduler certificates must carry.
    pub server_name: String,
    /// A certificate and key issued out of band; without them the agent asks the
    /// scheduler to sign one at its first registration.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Plain TCP; the join token then identifies the agent on every call.
    pub insecure_dev: bool,
    /// Renew the certificate the scheduler issued (kept in the state directory) when
    /// two thirds of its validity have passed. A `cert` given here is the operator's to
    /// renew.
    pub renew: bool,
}

impl Default for AgentTlsConfig {
    fn default() -> Self {
        AgentTlsConfig {
            ca_cert: None,
            server_name: "localhost".into(),
            cert: None,
            key: None,
            insecure_dev: false,
            renew: true,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// NAS id → where that NAS is mounted on this host.
    pub nas: BTreeMap<String, PathBuf>,
    /// Directories never mounted or written, whatever a project was granted, on top of
    /// the built-in list (`storage::deny`): e.g. the scheduler's data directory.
    pub deny: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub max_file_bytes: u64,
    pub max_files: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        let d = LogLimits::default();
        LogConfig { max_file_bytes: d.max_file_bytes, max_files: d.max_files }
    }
}

impl LogConfig {
    pub fn limits(&self) -> LogLimits {
        LogLimits { max_file_bytes: self.max_file_bytes, max_files: self.max_files }
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            node_name: host_name(),
            address: "127.0.0.1".into(),
            cluster: "gantry".into(),
            region: "local".into(),
            state_dir: default_state_dir(),
            schedulers: vec!["https://127.0.0.1:7443".into()],
            join_token: String::new(),
            join_token_file: None,
            heartbeat_interval: Duration::from_secs(2),
            stop_grace: Duration::from_secs(10),
            tls: AgentTlsConfig::default(),
            docker: DockerConfig::default(),
            gpu: GpuConfig::None,
            resources: ResourceOverrides::default(),
            storage: StorageConfig::default(),
            logs: LogConfig::default(),
            requirements: PipConfig::default(),
            serving: ServingConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parsing {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("{var}: {rule}")]
    Env { var: &'static str, rule: String },
    #[error("{field}: {rule}")]
    Invalid { field: String, rule: String },
}

fn invalid(field: &str, rule: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.into(), rule: rule.into() }
}

impl AgentConfig {
    /// Reads `path` (or the defaults), applies `GANTRY_AGENT_*` overrides, reads the
    /// join token file, validates.
    pub fn load(path: Option<&Path>) -> Result<AgentConfig, ConfigError> {
        let mut config: AgentConfig = match path {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })?
            }
            None => AgentConfig::default(),
        };
        config.apply_env()?;
        if config.join_token.is_empty()
            && let Some(file) = &config.join_token_file
        {
            let token =
                std::fs::read_to_string(file).map_err(|source| ConfigError::Read { path: file.clone(), source })?;
            config.join_token = token.trim().to_string();
        }
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self) -> Result<(), ConfigError> {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        }
        if let Some(v) = var("GANTRY_AGENT_NODE_NAME") {
            self.node_name = v;
        }
        if let Some(v) = var("GANTRY_AGENT_ADDRESS") {
            self.address = v;
        }
        if let Some(v) = var("GANTRY_AGENT_CLUSTER") {
            self.cluster = v;
        }
        if let Some(v) = var("GANTRY_AGENT_STATE_DIR") {
            self.state_dir = v.into();
        }
        if let Some(v) = var("GANTRY_AGENT_SCHEDULERS") {
            self.schedulers = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(v) = var("GANTRY_AGENT_JOIN_TOKEN") {
            self.join_token = v;
        }
        if let Some(v) = var("GANTRY_AGENT_CA_CERT") {
            self.tls.ca_cert = Some(v.into());
        }
        if let Some(v) = var("GANTRY_AGENT_INSECURE_DEV") {
            self.tls.insecure_dev = v
                .parse()
                .map_err(|_| ConfigError::Env { var: "GANTRY_AGENT_INSECURE_DEV", rule: "true or false".into() })?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        gantry_domain::validate::node_name("node_name", &self.node_name)
            .map_err(|e| ConfigError::Invalid { field: e.field.clone(), rule: e.rule.clone() })?;
        if self.cluster.is_empty() || !self.cluster.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            return Err(invalid("cluster", "must be non-empty letters, digits, '_' and '-'"));
        }
        if self.schedulers.is_empty() {
            return Err(invalid("schedulers", "list at least one scheduler address"));
        }
        let scheme = if self.tls.insecure_dev { "http://" } else { "https://" };
        if let Some(bad) = self.schedulers.iter().find(|s| !s.starts_with(scheme)) {
            return Err(invalid("schedulers", format!("'{bad}' must start with {scheme}")));
        }
        if self.heartbeat_interval < Duration::from_millis(100) {
            return Err(invalid("heartbeat_interval", "must be at least 100ms"));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(invalid("tls", "set both cert and key, or neither"));
        }
        if !self.tls.insecure_dev && self.tls.ca_cert.is_none() {
            return Err(invalid("tls.ca_cert", "is required unless tls.insecure_dev is set"));
        }
        if self.logs.max_files == 0 || self.logs.max_file_bytes < 4096 {
            return Err(invalid("logs", "max_files must be at least 1 and max_file_bytes at least 4096"));
        }
        if let Some(bad) = self.storage.deny.iter().find(|p| !p.is_absolute()) {
            return Err(invalid("storage.deny", format!("'{}' must be an absolute path", bad.display())));
        }
        if self.requirements.python_version.is_empty() || self.requirements.platforms.is_empty() {
            return Err(invalid("requirements", "python_version and platforms must be set"));
        }
        if self.serving.command.first().is_none_or(String::is_empty) {
            return Err(invalid("serving.command", "must name the model server program"));
        }
        if self.serving.probe_interval < Duration::from_millis(100) {
            return Err(invalid("serving.probe_interval", "must be at least 100ms"));
        }
        if let Some(a) = &self.serving.publish_address
            && a.trim().trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_err()
        {
            return Err(invalid("serving.publish_address", format!("'{a}' must be an IP address")));
        }
        for (id, dir) in &self.storage.nas {
            if !dir.is_absolute() {
                return Err(invalid(&format!("storage.nas.{id}"), "must be an absolute path"));
            }
        }
        Ok(())
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn default_state_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/gantry/agent"),
        None => PathBuf::from("/var/lib/gantry/agent"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, String> {
        let c: AgentConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn a_full_config_parses() {
        let c = parse(
            r#"
            node_name = "gpu-01"
            schedulers = ["https://10.0.0.1:7443"]
            heartbeat_interval = "500ms"
            [tls]
            ca_cert = "/etc/gantry/ca.pem"
            [gpu]
            source = "fake"
            fake = [{ uuid = "GPU-1", model = "A100-80GB", memory_mib = 81920 }]
            [storage]
            deny = ["/srv/gantry/scheduler"]
            [storage.nas]
            "nas-01" = "/mnt/nas01"
            [requirements]
            uid = 1000
            gid = 1000
            "#,
        )
        .unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_millis(500));
        assert_eq!(c.storage.nas["nas-01"], PathBuf::from("/mnt/nas01"));
        assert_eq!(c.storage.deny, [PathBuf::from("/srv/gantry/scheduler")]);
        assert_eq!((c.requirements.uid, c.requirements.python_version.as_str()), (1000, "3.11"));
        assert_eq!(c.serving.command, ["python3", "-m", "gantry_serve"]);
        assert_eq!(c.serving.publish_ip("10.0.0.11"), "10.0.0.11".parse::<std::net::IpAddr>().unwrap());
        let over = ServingConfig { publish_address: Some("10.0.0.12".into()), ..ServingConfig::default() };
        assert_eq!(over.publish_ip("0.0.0.0"), "10.0.0.12".parse::<std::net::IpAddr>().unwrap());
    }

    #[test]
    fn bad_configs_name_the_field() {
        let cases = [
            ("node_name = \"a b\"\n[tls]\nca_cert = \"/x\"", "node_name"),
            ("schedulers = [\"http://x\"]\n[tls]\nca_cert = \"/x\"", "schedulers"),
            ("schedulers = []\n[tls]\nca_cert = \"/x\"", "schedulers"),
            ("", "tls.ca_cert"),
            ("[tls]\nca_cert = \"/x\"\n[storage.nas]\nn = \"rel\"", "storage.nas.n"),
            ("bogus = 1", "unknown field"),
            ("[tls]\nca_cert = \"/x\"\n[storage]\ndeny = [\"rel\"]", "storage.deny"),
            ("[tls]\nca_cert = \"/x\"\n[serving]\ncommand = []", "serving.command"),
            ("[tls]\nca_cert = \"/x\"\n[serving]\nprobe_interval = \"1ms\"", "serving.probe_interval"),
            ("[tls]\nca_cert = \"/x\"\n[serving]\npublish_address = \"gpu-01\"", "serving.publish_address"),
        ];
        for (text, field) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(field), "{text:?}: {err}");
        }
    }
}
