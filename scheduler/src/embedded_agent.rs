//! The node agent inside the scheduler process (single-node default): it joins this
//! replica over loopback exactly as a remote agent would (join token, CSR, mutual TLS),
//! so there is one code path for one node and for a fleet.

use gantry_agent::daemon::{self, AgentConfig};
use tokio_util::sync::CancellationToken;

use crate::bootstrap::Secrets;
use crate::config::Config;

/// The agent's configuration, derived from the replica's.
pub fn agent_config(config: &Config, secrets: &Secrets) -> AgentConfig {
    let mut agent = AgentConfig::default();
    let insecure = secrets.tls.is_none();
    let scheme = if insecure { "http" } else { "https" };
    agent.schedulers = vec![format!("{scheme}://{}", config.replica.listen_api)];
    agent.join_token = secrets.join_token.expose().to_owned();
    agent.tls.insecure_dev = insecure;
    agent.tls.ca_cert = secrets.tls.as_ref().map(|t| t.ca_cert.clone());
    agent.storage.deny = vec![config.replica.data_dir.clone()];
    agent.state_dir = config.agent.state_dir.clone().unwrap_or_else(|| {
        config
            .replica
            .data_dir
            .parent()
            .map(|p| p.join("agent"))
            .unwrap_or_else(|| config.replica.data_dir.join("agent"))
    });
    agent
}

/// The script that builds the default workload images, relative to a checkout.
const IMAGE_SCRIPT: &str = "deploy/images/build.sh";
/// The image a first training needs; the serving images (GBs of frameworks, minutes to
/// build) are built on demand with the same script, as docs/serving.md says.
const FIRST_IMAGE: &str = "gantry/python:3.11";

/// Runs the embedded agent until `cancel`. Without a usable Docker engine the
/// scheduler keeps serving; the node just does not join.
pub async fn run(agent: AgentConfig, cancel: CancellationToken) {
    if let Err(e) = agent.validate() {
        tracing::warn!(error = %e, "embedded agent not started");
        return;
    }
    tokio::spawn(build_images_if_missing());
    if let Err(e) = daemon::run(agent, cancel, || {}).await {
        tracing::warn!(error = format!("{e:#}"), "embedded agent stopped: this node runs no trainings");
    }
}

/// Started from a checkout (`cargo run`), the single-node cluster builds the default
/// workload images itself the first time, so a newcomer's first training finds them.
/// The script is idempotent: with the images present it returns at once.
async fn build_images_if_missing() {
    let script = std::path::Path::new(IMAGE_SCRIPT);
    if !script.is_file() {
        return;
    }
    tracing::info!("building the workload images ({IMAGE_SCRIPT}; about a minute the first time)");
    let status = tokio::process::Command::new("bash")
        .arg(script)
        .arg(FIRST_IMAGE)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(false)
        .status()
        .await;
    match status {
        Ok(s) if s.success() => tracing::info!("workload images ready"),
        Ok(s) => tracing::warn!("{IMAGE_SCRIPT} failed ({s}); trainings on this node will fail until it succeeds"),
        Err(e) => tracing::warn!("cannot run {IMAGE_SCRIPT}: {e}"),
    }
}
