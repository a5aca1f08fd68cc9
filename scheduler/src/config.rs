//! `gantry-scheduler` configuration: TOML, unknown keys rejected, `GANTRY_*` environment
//! overrides, validated once in [`Config::load`].
//!
//! With no file at all, the defaults describe the embedded single-node cluster: one
//! replica on 127.0.0.1, state under `~/.local/share/gantry/scheduler`, generated TLS
//! certificates and admin token, and a small CPU catalog.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;

mod catalog;
mod gateway;
pub use catalog::CatalogConfig;
pub use gateway::EmbeddedGatewayConfig;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub replica: ReplicaConfig,
    /// The other replicas of a static cluster (empty: single node).
    pub peers: Vec<PeerConfig>,
    pub raft: RaftConfig,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub catalog: CatalogConfig,
    pub controllers: ControllerConfig,
    pub metrics: MetricsConfig,
    pub agent: EmbeddedAgentConfig,
    pub storage: StorageConfig,
    pub gangs: GangConfig,
    pub gateway: EmbeddedGatewayConfig,
}

/// Gangs whose ranks run on several nodes share the hosts' network.
///
/// ```toml
/// [gangs]
/// rendezvous_ports = { first = 29500, last = 29999 }
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GangConfig {
    /// Where each such gang gets its block of ports (its size plus one: rank 0's
    /// rendezvous and one worker port per rank), free on every node it runs on. Keep it
    /// clear of the nodes' other services; the firewall between nodes must let it pass.
    pub rendezvous_ports: gantry_domain::PortRange,
}

/// Storage the operator grants to projects. Seeded into the replicated state by the
/// first leader for each project that has no grants yet; `gantryctl project grant`
/// changes them afterwards.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub grants: Vec<GrantConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    pub project: String,
    /// `file:///…` or `nas://{id}:/…` roots the project may read.
    #[serde(default)]
    pub read: Vec<String>,
    /// Roots the project may write (and read).
    #[serde(default)]
    pub write: Vec<String>,
}

impl GrantConfig {
    /// The grants as domain values; errors name `storage.grants[i].…`.
    pub fn parse(&self, i: usize) -> Result<gantry_domain::StorageGrants, ConfigError> {
        let wire = gantry_proto::v1::StorageGrants { read: self.read.clone(), write: self.write.clone() };
        gantry_proto::convert::storage_grants_from_wire(&format!("storage.grants[{i}]"), &wire)
            .map_err(|e| invalid(&e.field, e.rule))
    }
}

/// A node agent inside the scheduler process: the single-node default runs trainings on
/// the local Docker engine with no second daemon to start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedAgentConfig {
    /// Off unless set (the embedded default sets it).
    pub embedded: bool,
    /// The agent's state directory; default: `agent` beside the data directory.
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Plain-HTTP `/metrics` listener; off unless set (the embedded default sets
    /// 127.0.0.1:7445).
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicaConfig {
    pub id: u64,
    pub data_dir: PathBuf,
    /// Admin API and agent-facing API.
    pub listen_api: SocketAddr,
    /// Replica-to-replica traffic (mutual TLS).
    pub listen_peer: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub id: u64,
    /// URL of the peer's `listen_peer`, e.g. `https://sched-2:7444`.
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// Election timeout in ticks (randomised between this and twice this).
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Take a snapshot and compact the log every this many applied entries (up to 4×
    /// that while the state is large and little was written; see `snapshot_policy`).
    pub snapshot_every: u64,
    /// Testing aid: a file whose contents (`delay_ms=N`, `fail=fsync`, `fail=snapshot`)
    /// delay or fail the raft log's writes, re-checked before each one; unset or absent
    /// means no fault. See docs/faults.md. Never set it in production.
    pub fault_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Plain TCP everywhere. For local experiments only; never on a network.
    pub insecure_dev: bool,
    /// When all three are empty, a CA and a certificate are generated in
    /// `{data_dir}/pki` on first start.
    pub ca_cert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Extra names for the generated certificate (the host's DNS names).
    pub server_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Agents present this once to join. Generated into `{data_dir}/join-token` if empty.
    pub join_token: Secret,
    pub tokens: Vec<TokenConfig>,
    /// Generate an admin token into `{data_dir}/admin-token` and a client config for
    /// `gantryctl` on first start (the embedded default).
    pub bootstrap_admin: bool,
    /// Where the bootstrap writes the client config (default `~/.config/gantry/client.toml`).
    pub client_config: Option<PathBuf>,
    /// How long a node certificate signed by this cluster is valid; agents renew theirs
    /// when two thirds of it have passed.
    #[serde(with = "humantime_serde")]
    pub node_cert_lifetime: Duration,
}

/// Node certificates live a day unless configured: short enough that a stolen key is
/// soon useless, long enough to ride out a scheduler outage of hours.
const NODE_CERT_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub token: Secret,
    /// A project name, or `*` for a cluster-wide token.
    pub project: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// Placement runs on every state change; this is its fallback period.
    #[serde(with = "humantime_serde")]
    pub placement_interval: Duration,
    /// A node whose agent is silent this long is declared DOWN and its trainings end.
    #[serde(with = "humantime_serde")]
    pub node_down_after: Duration,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            id: 1,
            data_dir: default_data_dir(),
            listen_api: SocketAddr::from(([127, 0, 0, 1], 7443)),
            listen_peer: SocketAddr::from(([127, 0, 0, 1], 7444)),
        }
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        // 50 ms ticks, elections after 0.5–1 s of silence, heartbeats every 100 ms:
        // fail over within a second while tolerating a loaded 2-core machine.
        RaftConfig {
            tick: Duration::from_millis(50),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_every: 10_000,
            fault_file: None,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            join_token: Secret::default(),
            tokens: Vec::new(),
            bootstrap_admin: true,
            client_config: None,
            node_cert_lifetime: NODE_CERT_LIFETIME,
        }
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig { placement_interval: Duration::from_millis(200), node_down_after: Duration::from_secs(30) }
    }
}

/// The single-node default grants project `default` one directory beside the state
/// (`~/.local/share/gantry/storage/default`, read and write) and, when started from a
/// checkout, read access to its `examples/` (the README's quick start).
fn embedded_grant(data_dir: &Path) -> GrantConfig {
    let root = data_dir.parent().unwrap_or(data_dir).join("storage/default");
    let mut read = Vec::new();
    if let Ok(examples) = std::env::current_dir().map(|d| d.join("examples"))
        && examples.is_dir()
    {
        read.push(format!("file://{}", examples.display()));
    }
    GrantConfig { project: "default".into(), read, write: vec![format!("file://{}", root.display())] }
}

/// An environment variable as a path; empty counts as unset (as the XDG spec says).
fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn home() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/root"))
}

fn default_data_dir() -> PathBuf {
    env_path("XDG_DATA_HOME").unwrap_or_else(|| home().join(".local/share")).join("gantry/scheduler")
}

pub fn default_client_config() -> PathBuf {
    env_path("XDG_CONFIG_HOME").unwrap_or_else(|| home().join(".config")).join("gantry/client.toml")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    #[error("environment variable {var}: {rule}")]
    Env { var: &'static str, rule: String },
    #[error("{field}: {rule}")]
    Invalid { field: String, rule: String },
}

fn invalid(field: &str, rule: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.into(), rule: rule.into() }
}

impl Config {
    /// Reads `path` (or the defaults), applies `GANTRY_*` overrides, validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })?
            }
            None => {
                let mut c = Config::default();
                c.metrics.listen = Some(SocketAddr::from(([127, 0, 0, 1], 7445)));
                c.agent.embedded = true;
                c.gateway.embedded = true;
                c.storage.grants = vec![embedded_grant(&c.replica.data_dir)];
                c
            }
        };
        config.apply_env()?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self) -> Result<(), ConfigError> {
        fn var(name: &'static str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        }
        fn parse<T: std::str::FromStr>(name: &'static str, v: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e: T::Err| ConfigError::Env { var: name, rule: e.to_string() })
        }
        if let Some(v) = var("GANTRY_REPLICA_ID") {
            self.replica.id = parse("GANTRY_REPLICA_ID", v)?;
        }
        if let Some(v) = var("GANTRY_DATA_DIR") {
            self.replica.data_dir = PathBuf::from(v);
        }
        if let Some(v) = var("GANTRY_LISTEN_API") {
            self.replica.listen_api = parse("GANTRY_LISTEN_API", v)?;
        }
        if let Some(v) = var("GANTRY_LISTEN_PEER") {
            self.replica.listen_peer = parse("GANTRY_LISTEN_PEER", v)?;
        }
        if let Some(v) = var("GANTRY_INSECURE_DEV") {
            self.tls.insecure_dev = parse("GANTRY_INSECURE_DEV", v)?;
        }
        if let Some(v) = var("GANTRY_JOIN_TOKEN") {
            self.auth.join_token = v.into();
        }
        if let Some(v) = var("GANTRY_CLIENT_CONFIG") {
            self.auth.client_config = Some(PathBuf::from(v));
        }
        if let Some(v) = var("GANTRY_RAFT_FAULT_FILE") {
            self.raft.fault_file = Some(PathBuf::from(v));
        }
        if let Some(v) = var("GANTRY_EMBEDDED_AGENT") {
            self.agent.embedded = parse("GANTRY_EMBEDDED_AGENT", v)?;
        }
        if let Some(v) = var("GANTRY_EMBEDDED_GATEWAY") {
            self.gateway.embedded = parse("GANTRY_EMBEDDED_GATEWAY", v)?;
        }
        if let Some(v) = var("GANTRY_GATEWAY_PUBLIC_URL") {
            self.gateway.public_url = Some(v);
        }
        if let Some(v) = var("GANTRY_EMBEDDED_GATEWAY_LISTEN") {
            self.gateway.listen = parse("GANTRY_EMBEDDED_GATEWAY_LISTEN", v)?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.replica.id == 0 {
            return Err(invalid("replica.id", "must be greater than 0"));
        }
        let mut ids = std::collections::BTreeSet::from([self.replica.id]);
        for (i, p) in self.peers.iter().enumerate() {
            if !ids.insert(p.id) {
                return Err(invalid(&format!("peers[{i}].id"), format!("duplicate replica id {}", p.id)));
            }
            let scheme_ok =
                if self.tls.insecure_dev { p.url.starts_with("http://") } else { p.url.starts_with("https://") };
            if !scheme_ok {
                return Err(invalid(
                    &format!("peers[{i}].url"),
                    if self.tls.insecure_dev {
                        "must start with http:// (tls.insecure_dev is set)"
                    } else {
                        "must start with https://"
                    },
                ));
            }
        }
        if self.raft.tick.is_zero() {
            return Err(invalid("raft.tick", "must be greater than 0"));
        }
        if self.raft.heartbeat_ticks == 0 || self.raft.election_ticks <= self.raft.heartbeat_ticks {
            return Err(invalid("raft.election_ticks", "must be greater than raft.heartbeat_ticks (> 0)"));
        }
        if self.raft.snapshot_every == 0 {
            return Err(invalid("raft.snapshot_every", "must be greater than 0"));
        }
        let given = [&self.tls.ca_cert, &self.tls.cert, &self.tls.key].iter().filter(|p| p.is_some()).count();
        if given != 0 && given != 3 {
            return Err(invalid("tls", "set all of ca_cert, cert and key, or none to generate them"));
        }
        // Below a few minutes the agents' renewals (at two thirds) would race the clock
        // skew allowance of the certificates themselves.
        if self.auth.node_cert_lifetime < Duration::from_secs(5 * 60) {
            return Err(invalid("auth.node_cert_lifetime", "must be at least 5m"));
        }
        for (i, t) in self.auth.tokens.iter().enumerate() {
            if t.token.len() < 16 {
                return Err(invalid(&format!("auth.tokens[{i}].token"), "must be at least 16 characters"));
            }
            if t.project != "*" {
                gantry_domain::validate::name(&format!("auth.tokens[{i}].project"), &t.project)
                    .map_err(|e| invalid(&e.field, e.rule))?;
            }
        }
        for (i, it) in self.catalog.instance_types.iter().enumerate() {
            it.validate().map_err(|e| invalid(&format!("catalog.instance_types[{i}].{}", e.field), e.rule))?;
        }
        for (i, img) in self.catalog.images.iter().enumerate() {
            img.validate().map_err(|e| invalid(&format!("catalog.images[{i}].{}", e.field), e.rule))?;
        }
        let mut projects = std::collections::BTreeSet::new();
        for (i, g) in self.storage.grants.iter().enumerate() {
            let field = format!("storage.grants[{i}].project");
            gantry_domain::validate::name(&field, &g.project).map_err(|e| invalid(&e.field, e.rule))?;
            if !projects.insert(&g.project) {
                return Err(invalid(&field, format!("project '{}' is granted twice", g.project)));
            }
            g.parse(i)?;
        }
        self.gangs.rendezvous_ports.validate("gangs.rendezvous_ports").map_err(|e| invalid(&e.field, e.rule))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_ports_are_configurable_and_checked() {
        let c: Config = toml::from_str("[gangs]\nrendezvous_ports = { first = 40000, last = 40099 }\n").unwrap();
        assert_eq!(c.gangs.rendezvous_ports, gantry_domain::PortRange { first: 40000, last: 40099 });
        c.validate().unwrap();
        let low: Config = toml::from_str("[gangs]\nrendezvous_ports = { first = 80, last = 90 }\n").unwrap();
        let err = low.validate().unwrap_err().to_string();
        assert!(err.contains("gangs.rendezvous_ports.first"), "{err}");
    }

    #[test]
    fn defaults_are_valid_and_unknown_keys_are_rejected() {
        Config::default().validate().unwrap();
        let err = toml::from_str::<Config>("[replica]\nid = 1\nbogus = 2\n").unwrap_err();
        assert!(err.to_string().contains("bogus"));
    }

    #[test]
    fn a_three_replica_config_parses() {
        let text = r#"
            [replica]
            id = 2
            data_dir = "/tmp/x"
            listen_api = "0.0.0.0:7443"
            listen_peer = "0.0.0.0:7444"
            [[peers]]
            id = 1
            url = "https://s1:7444"
            [[peers]]
            id = 3
            url = "https://s3:7444"
            [raft]
            tick = "100ms"
            fault_file = "/tmp/x-fault"
            [[auth.tokens]]
            name = "team-a"
            token = "0123456789abcdef0123"
            project = "team-a"
        "#;
        let c: Config = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.raft.tick, Duration::from_millis(100));
        assert_eq!(c.raft.fault_file.as_deref(), Some(Path::new("/tmp/x-fault")));
        assert_eq!(Config::default().raft.fault_file, None, "the disk fault hook is off unless configured");
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.auth.tokens[0].token.expose(), "0123456789abcdef0123");
    }

    #[test]
    fn debug_of_the_config_redacts_tokens() {
        let c: Config = toml::from_str(
            "[auth]\njoin_token = \"join-secret-value-1234\"\n\
             [[auth.tokens]]\nname = \"a\"\ntoken = \"token-secret-value-1234\"\nproject = \"a\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("join_token: [redacted]"), "{shown}");
        assert!(shown.contains("token: [redacted]"), "{shown}");
        assert!(!shown.contains("secret-value"), "{shown}");
    }

    #[test]
    fn the_shipped_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/scheduler-single.toml");
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.catalog.instance_types[0].gpu_model.as_deref(), Some("A100-80GB"));
    }

    #[test]
    fn node_certificates_live_a_day_unless_configured() {
        assert_eq!(Config::default().auth.node_cert_lifetime, Duration::from_secs(86_400));
        let c: Config = toml::from_str("[auth]\nnode_cert_lifetime = \"6h\"\n").expect("parses");
        assert_eq!(c.auth.node_cert_lifetime, Duration::from_secs(6 * 3600));
        let c: Config = toml::from_str("[auth]\nnode_cert_lifetime = \"1m\"\n").expect("parses");
        assert!(c.validate().expect_err("too short").to_string().starts_with("auth.node_cert_lifetime"));
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut c = Config::default();
        c.peers.push(PeerConfig { id: 1, url: "https://x:1".into() });
        assert!(c.validate().unwrap_err().to_string().starts_with("peers[0].id"));
        let mut c = Config::default();
        c.peers.push(PeerConfig { id: 2, url: "http://x:1".into() });
        assert!(c.validate().unwrap_err().to_string().starts_with("peers[0].url"));
    }
}
