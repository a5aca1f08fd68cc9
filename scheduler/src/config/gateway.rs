//! `[gateway]`: the HTTP gateway inside the scheduler process (the single-node default).
//! A cluster runs `gantry-gateway` daemons instead (deploy/config/gateway.toml).
//!
//! ```toml
//! [gateway]
//! embedded = true                      # the embedded default sets it
//! listen = "127.0.0.1:8480"
//! inference_log_dir = "/var/lib/gantry/inference-logs"   # default: beside the data dir
//! public_url = "https://serving.example.com"  # what endpoint URLs start with
//! ```
//!
//! `public_url` (`GANTRY_GATEWAY_PUBLIC_URL`) is where callers reach the gateways; by
//! default the embedded gateway's own address, else `http://127.0.0.1:8480`.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The embedded gateway's port: the scheduler's public URL default
/// (`GANTRY_GATEWAY_PUBLIC_URL`, `http://127.0.0.1:8480`) points at it.
pub const DEFAULT_LISTEN: ([u8; 4], u16) = ([127, 0, 0, 1], 8480);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedGatewayConfig {
    /// Off unless set (the embedded default sets it).
    pub embedded: bool,
    pub listen: SocketAddr,
    /// Where inference logs go (JSON lines, one file per endpoint); default:
    /// `inference-logs` beside the data directory.
    pub inference_log_dir: Option<PathBuf>,
    pub public_url: Option<String>,
}

impl Default for EmbeddedGatewayConfig {
    fn default() -> Self {
        EmbeddedGatewayConfig {
            embedded: false,
            listen: SocketAddr::from(DEFAULT_LISTEN),
            inference_log_dir: None,
            public_url: None,
        }
    }
}

impl EmbeddedGatewayConfig {
    /// The base of the endpoint and stage URLs the API shows.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None if self.embedded => format!("http://{}", self.listen),
            None => format!("http://{}", SocketAddr::from(DEFAULT_LISTEN)),
        }
    }
}
