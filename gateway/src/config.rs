//! `gantry-gateway` daemon configuration: TOML, unknown keys rejected, `GANTRY_GATEWAY_*`
//! environment overrides, validated once in [`Config::load`].
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! gateway_id = "gw-1"                 # default: the host name
//! request_timeout = "60s"
//! connect_timeout = "2s"
//! pool_idle_timeout = "90s"
//! max_body_bytes = 10485760
//! log_json = true
//! [tls]                               # absent: plain HTTP
//! cert = "/etc/gantry/gateway.crt"
//! key = "/etc/gantry/gateway.key"
//! [scheduler]
//! endpoints = ["https://10.0.0.1:7443", "https://10.0.0.2:7443"]
//! ca = "/etc/gantry/ca.crt"           # absent: plain gRPC
//! domain = "gantry-scheduler"         # name in the replicas' certificates
//! token_file = "/etc/gantry/gateway.token"
//! report_every = "10s"
//! [inference_logs]
//! dir = "/var/lib/gantry/inference-logs"   # absent: no inference logs
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::gateway::DEFAULT_MAX_BODY_BYTES;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: SocketAddr,
    pub gateway_id: Option<String>,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    pub max_body_bytes: usize,
    /// JSON logs (for journald and log shippers) instead of text.
    pub log_json: bool,
    pub tls: Option<TlsConfig>,
    pub scheduler: SchedulerConfig,
    pub inference_logs: InferenceLogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            gateway_id: None,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(2),
            pool_idle_timeout: Duration::from_secs(90),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            log_json: false,
            tls: None,
            scheduler: SchedulerConfig::default(),
            inference_logs: InferenceLogConfig::default(),
        }
    }
}

/// The certificate callers see (the cluster's PKI or an operator certificate).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Every scheduler replica's API URL; the gateway follows any one of them.
    pub endpoints: Vec<String>,
    /// CA certificate the replicas' certificates chain to; absent: plain gRPC.
    pub ca: Option<PathBuf>,
    /// Server name to verify in the replicas' certificates.
    pub domain: String,
    /// File holding the cluster's gateway token.
    pub token_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub report_every: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            endpoints: Vec::new(),
            ca: None,
            domain: "gantry-scheduler".into(),
            token_file: None,
            report_every: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceLogConfig {
    /// Directory of the JSON-lines files, one per endpoint; absent: no inference logs.
    pub dir: Option<PathBuf>,
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// the file could not be read
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// the file is not valid TOML for this configuration
    #[error("invalid configuration {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    /// an environment override could not be parsed
    #[error("environment variable {var}: {rule}")]
    Env { var: &'static str, rule: String },
    /// a value breaks a rule
    #[error("{field}: {rule}")]
    Invalid { field: &'static str, rule: String },
}

impl Config {
    /// Reads the file (or the defaults without one), applies the environment overrides
    /// and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.into(), source })?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))?;
        config.validate()?;
        Ok(config)
    }

    /// `GANTRY_GATEWAY_LISTEN`, `GANTRY_GATEWAY_ID`, `GANTRY_GATEWAY_SCHEDULERS`
    /// (comma-separated URLs), `GANTRY_GATEWAY_TOKEN_FILE`, `GANTRY_GATEWAY_LOG_DIR`.
    fn apply_env(&mut self, var: impl Fn(&'static str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = var("GANTRY_GATEWAY_LISTEN") {
            self.listen = v.parse().map_err(|e: std::net::AddrParseError| ConfigError::Env {
                var: "GANTRY_GATEWAY_LISTEN",
                rule: e.to_string(),
            })?;
        }
        if let Some(v) = var("GANTRY_GATEWAY_ID") {
            self.gateway_id = Some(v);
        }
        if let Some(v) = var("GANTRY_GATEWAY_SCHEDULERS") {
            self.scheduler.endpoints =
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        }
        if let Some(v) = var("GANTRY_GATEWAY_TOKEN_FILE") {
            self.scheduler.token_file = Some(PathBuf::from(v));
        }
        if let Some(v) = var("GANTRY_GATEWAY_LOG_DIR") {
            self.inference_logs.dir = Some(PathBuf::from(v));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, rule: &str| Err(ConfigError::Invalid { field, rule: rule.to_string() });
        if self.max_body_bytes == 0 {
            return invalid("max_body_bytes", "must be at least 1");
        }
        for (field, d) in [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("scheduler.report_every", self.scheduler.report_every),
        ] {
            if d.is_zero() {
                return invalid(field, "must be longer than 0s");
            }
        }
        if self.gateway_id.as_deref().is_some_and(|id| !crate::routes::is_valid_id(id)) {
            return invalid("gateway_id", "must be 1-128 letters, digits, '-' or '_'");
        }
        for e in &self.scheduler.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return invalid("scheduler.endpoints", "each must be an http:// or https:// URL");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let text = "listen = \"0.0.0.0:9000\"\nrequest_timeout = \"5s\"\n[tls]\ncert = \"/c\"\nkey = \"/k\"\n\
                    [scheduler]\nendpoints = [\"https://a:1\"]\nreport_every = \"2s\"\n[inference_logs]\ndir = \"/l\"\n";
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert_eq!(c.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(c.scheduler.report_every, Duration::from_secs(2));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn the_deployed_example_is_valid() {
        let c: Config = toml::from_str(include_str!("../../deploy/config/gateway.toml")).unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(c.scheduler.endpoints.len(), 3);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("listn = \"0.0.0.0:1\"").is_err());
    }

    #[test]
    fn environment_overrides_and_validation() {
        let mut c = Config::default();
        c.apply_env(|name| match name {
            "GANTRY_GATEWAY_LISTEN" => Some("127.0.0.1:7000".into()),
            "GANTRY_GATEWAY_SCHEDULERS" => Some("https://a:1, https://b:2".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.scheduler.endpoints, ["https://a:1", "https://b:2"]);
        assert!(c.apply_env(|_| Some("nope".into())).is_err());
        let bad = Config { max_body_bytes: 0, ..Config::default() };
        assert!(matches!(bad.validate(), Err(ConfigError::Invalid { field: "max_body_bytes", .. })));
        let mut bad = Config::default();
        bad.scheduler.endpoints = vec!["a:1".into()];
        assert!(bad.validate().is_err());
    }
}
