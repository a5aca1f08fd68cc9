//! `[gateway]`: the HTTP gateway inside the scheduler process (the single-node default).
//! A cluster runs `gantry-gateway` daemons instead (deploy/config/gateway.toml).
//!
//! ```toml
//! [gateway]
//! embedded = true                      # the embedded default sets it
//! listen = "127.0.0.1:8480"
//! inference_log_dir = "/var/lib/gantry/inference-logs"   # default: beside the data dir
//! ```

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
}

impl Default for EmbeddedGatewayConfig {
    fn default() -> Self {
        EmbeddedGatewayConfig { embedded: false, listen: SocketAddr::from(DEFAULT_LISTEN), inference_log_dir: None }
    }
}
