//! Workload networks on the engine: one bridge network per workload group, created
//! before its first container and removed after its last.
//!
//! ```text
//!   create_and_start ─► ensure(name, labels) ─► create container on it
//!   remove(container) ─► remove container ─► remove_if_unused(its networks)
//!   agent start ──────► remove_unused(selector)   (a crash between the two above)
//! ```
//!
//! Every step is idempotent: a network that already exists is used, one that is
//! gone counts as removed, and one that gained a container meanwhile is kept.

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
use tracing::{debug, warn};

use super::convert;
use crate::runtime::error::RuntimeError;
use crate::runtime::labels::{self, LabelSelector};
use crate::runtime::types::NetworkInfo;

/// True when `labels` mark a network as a Gantry workload network (only those are
/// ever removed: never `bridge`, `host` or an operator's network).
fn is_workload_network(labels: &HashMap<String, String>) -> bool {
    labels.contains_key(labels::CLUSTER) && labels.contains_key(labels::WORKLOAD)
}

/// Creates the bridge network `name` unless it exists. The caller serialises calls:
/// engines before API 1.44 happily create a second network of the same name, after
/// which the name is ambiguous.
pub(super) async fn ensure(docker: &Docker, name: &str, labels: BTreeMap<String, String>) -> Result<(), RuntimeError> {
    match docker.inspect_network(name, None).await {
        Ok(_) => return Ok(()),
        Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => return Err(convert::map_error("inspect network", name, e)),
    }
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        labels: Some(labels.into_iter().collect()),
        ..Default::default()
    };
    match docker.create_network(request).await {
        Ok(created) => {
            debug!(network = %name, id = %created.id, "workload network created");
            Ok(())
        }
        // Created concurrently by another rank of the group.
        Err(BollardError::DockerResponseServerError { status_code: 409, .. }) => Ok(()),
        Err(e) => Err(convert::map_error("create network", name, e)),
    }
}

/// How many containers (in any state) are attached to network `name`.
async fn attached(docker: &Docker, name: &str) -> Result<usize, RuntimeError> {
    let filters = HashMap::from([("network", vec![name.to_string()])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let listed =
        docker.list_containers(Some(options)).await.map_err(|e| convert::map_error("list containers", name, e))?;
    Ok(listed.len())
}

/// Removes network `name` if it is a workload network and no container uses it.
/// Returns whether it was removed now.
pub(super) async fn remove_if_unused(docker: &Docker, name: &str) -> Result<bool, RuntimeError> {
    let inspect = match docker.inspect_network(name, None).await {
        Ok(n) => n,
        Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Ok(false),
        Err(e) => return Err(convert::map_error("inspect network", name, e)),
    };
    if !is_workload_network(&inspect.labels.unwrap_or_default()) || attached(docker, name).await? > 0 {
        return Ok(false);
    }
    match docker.remove_network(name).await {
        Ok(()) => {
            debug!(network = %name, "workload network removed");
            Ok(true)
        }
        Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        // A container joined between the check and the removal: it is in use again.
        Err(BollardError::DockerResponseServerError { status_code: 403 | 409, message }) => {
            debug!(network = %name, %message, "network in use again; kept");
            Ok(false)
        }
        Err(e) => Err(convert::map_error("remove network", name, e)),
    }
}

/// Workload networks whose labels match `selector`.
pub(super) async fn list(docker: &Docker, selector: &LabelSelector) -> Result<Vec<NetworkInfo>, RuntimeError> {
    let mut builder = ListNetworksOptionsBuilder::new();
    if !selector.0.is_empty() {
        builder = builder.filters(&HashMap::from([("label", selector.to_docker_filters())]));
    }
    let listed =
        docker.list_networks(Some(builder.build())).await.map_err(|e| convert::map_error("list networks", "", e))?;
    let mut out = Vec::new();
    for n in listed {
        let labels = n.labels.unwrap_or_default();
        let Some(name) = n.name.filter(|_| is_workload_network(&labels)) else { continue };
        let containers = attached(docker, &name).await?;
        out.push(NetworkInfo { name, labels: labels.into_iter().collect(), containers });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes every unused workload network matching `selector`.
pub(super) async fn remove_unused(docker: &Docker, selector: &LabelSelector) -> Result<Vec<String>, RuntimeError> {
    let mut removed = Vec::new();
    for n in list(docker, selector).await?.into_iter().filter(|n| n.containers == 0) {
        match remove_if_unused(docker, &n.name).await {
            Ok(true) => removed.push(n.name),
            Ok(false) => {}
            Err(e) => warn!(network = %n.name, error = %e, "removing an unused workload network failed"),
        }
    }
    Ok(removed)
}

/// True when a create or start failed because the container's network is gone
/// (removed with the group's previous last container an instant before).
pub(super) fn network_missing(err: &BollardError) -> bool {
    matches!(err, BollardError::DockerResponseServerError { status_code: 404, message }
        if message.to_ascii_lowercase().contains("network"))
}
