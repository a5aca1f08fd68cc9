//! `docker inspect` → the security settings the engine applied ([`AppliedHardening`]).

use bollard::models::ContainerInspectResponse;

use crate::runtime::types::AppliedHardening;

/// Names of the networks the container is attached to, sorted; `host` and `none`
/// are modes, not networks, and are left out.
pub(super) fn networks(inspect: &ContainerInspectResponse) -> Vec<String> {
    let mut names: Vec<String> = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().filter(|k| !matches!(k.as_str(), "host" | "none")).cloned().collect())
        .unwrap_or_default();
    // A created container may not list its network yet: the mode names it.
    if let Some(mode) = inspect.host_config.as_ref().and_then(|h| h.network_mode.as_ref())
        && !matches!(mode.as_str(), "host" | "none" | "default" | "bridge" | "")
        && !mode.starts_with("container:")
        && !names.contains(mode)
    {
        names.push(mode.clone());
    }
    names.sort();
    names
}

pub(super) fn hardening(inspect: &ContainerInspectResponse) -> AppliedHardening {
    let hc = inspect.host_config.clone().unwrap_or_default();
    let mut tmpfs: Vec<String> = hc.tmpfs.unwrap_or_default().into_keys().collect();
    tmpfs.sort();
    let mount_sources = inspect
        .mounts
        .as_ref()
        .map(|ms| ms.iter().filter(|m| m.typ.as_deref() == Some("bind")).filter_map(|m| m.source.clone()).collect())
        .unwrap_or_default();
    AppliedHardening {
        init: hc.init.unwrap_or(false),
        security_opt: hc.security_opt.unwrap_or_default(),
        cap_drop: hc.cap_drop.unwrap_or_default(),
        cap_add: hc.cap_add.unwrap_or_default(),
        pids_limit: hc.pids_limit.filter(|&p| p > 0),
        user: inspect.config.as_ref().and_then(|c| c.user.clone()).unwrap_or_default(),
        read_only_rootfs: hc.readonly_rootfs.unwrap_or(false),
        privileged: hc.privileged.unwrap_or(false),
        network_mode: hc.network_mode.unwrap_or_default(),
        networks: networks(inspect),
        pid_mode: hc.pid_mode.unwrap_or_default(),
        ipc_mode: hc.ipc_mode.unwrap_or_default(),
        mount_sources,
        tmpfs,
    }
}
