//! Statuses derived from what runs: pure functions of a record (and, for the gateway
//! status, of the gateways' reports and a time), recomputed after every change.

use super::record::{GatewayReport, Stage, StageResource};
use super::status::{EndpointStatus, GatewayStatus, StageResourceStatus, StageStatus};

/// A gateway that has not reported for longer than this is not counted.
pub const GATEWAY_LIVE_MS: u64 = 30_000;

/// A resource's status; `placed[i]` says whether instance `i` of its stage is placed.
pub fn resource_status(r: &StageResource, placed: &[bool]) -> (StageResourceStatus, String) {
    if r.deleting {
        return (StageResourceStatus::DeleteInProgress, String::new());
    }
    if let Some(why) = &r.failed {
        return (StageResourceStatus::CreateFailed, why.clone());
    }
    if r.routed_generation.is_some() {
        return (StageResourceStatus::Active, String::new());
    }
    let started = r.newest_pods().any(|p| placed.get(p.instance_index as usize).copied().unwrap_or(false));
    if started {
        (StageResourceStatus::CreateInProgress, String::new())
    } else {
        (StageResourceStatus::CreateRequested, "waiting for an instance to be placed".into())
    }
}

/// A stage's status from its resources (already derived) and instances.
pub fn stage_status(s: &Stage, placed: &[bool]) -> (StageStatus, String) {
    if s.deleting {
        return (StageStatus::DeleteInProgress, String::new());
    }
    if let Some(r) = s.resources.iter().find(|r| r.status == StageResourceStatus::CreateFailed) {
        let why = format!("resource {} ({}): {}", r.id, r.resource_path, r.status_reason);
        return if s.ever_active { (StageStatus::DeployFailed, why) } else { (StageStatus::CreateFailed, why) };
    }
    let all_placed = placed.len() == s.instance_count as usize && placed.iter().all(|p| *p);
    let settled = s.resources.iter().all(|r| {
        r.status == StageResourceStatus::Active
            && r.routed_generation == Some(r.generation)
            && r.pods.iter().all(|p| p.generation == r.generation)
    });
    if all_placed && settled {
        return (StageStatus::Active, String::new());
    }
    if s.ever_active {
        return (StageStatus::DeployInProgress, String::new());
    }
    if !placed.iter().any(|p| *p) {
        return (StageStatus::CreateRequested, "waiting for instances to be placed".into());
    }
    (StageStatus::CreateInProgress, String::new())
}

/// An endpoint's status from its default stage's and the other stages' statuses.
pub fn endpoint_status(deleting: bool, default: Option<StageStatus>, others: &[StageStatus]) -> EndpointStatus {
    use StageStatus as S;
    if deleting {
        return EndpointStatus::DeleteInProgress;
    }
    match default {
        Some(S::CreateRequested) => return EndpointStatus::CreateRequested,
        Some(S::CreateInProgress) => return EndpointStatus::CreateInProgress,
        Some(S::CreateFailed) => return EndpointStatus::CreateFailed,
        Some(S::DeployFailed) => return EndpointStatus::UpdateFailed,
        _ => {}
    }
    if others.iter().any(|s| matches!(s, S::CreateFailed | S::DeployFailed)) {
        return EndpointStatus::UpdateFailed;
    }
    let busy = |s: &S| !matches!(s, S::Active);
    if default.as_ref().is_some_and(busy) || others.iter().any(busy) {
        return EndpointStatus::UpdateInProgress;
    }
    EndpointStatus::Active
}

/// The gateways' state of a stage whose routes are at `config_version` (0: no route
/// was ever made), given every gateway's last report and the time now.
pub fn gateway_status<'a>(
    config_version: u64,
    reports: impl IntoIterator<Item = &'a GatewayReport>,
    now_ms: u64,
) -> GatewayStatus {
    let live: Vec<&GatewayReport> =
        reports.into_iter().filter(|r| now_ms.saturating_sub(r.reported_at_ms) <= GATEWAY_LIVE_MS).collect();
    if live.iter().any(|r| r.error.as_ref().is_some_and(|(v, _)| *v >= config_version)) {
        return GatewayStatus::StageDeployFail;
    }
    if config_version == 0 {
        return GatewayStatus::CreateInProgress;
    }
    if live.is_empty() {
        return GatewayStatus::NotFoundStageDeployResult;
    }
    if live.iter().any(|r| r.applied_version < config_version) {
        return GatewayStatus::StageDeploying;
    }
    GatewayStatus::Active
}

/// Whether every live gateway has applied a table at least as new as `version`
/// (vacuously true without live gateways: nobody routes to what is removed).
pub fn all_live_applied<'a>(version: u64, reports: impl IntoIterator<Item = &'a GatewayReport>, now_ms: u64) -> bool {
    reports
        .into_iter()
        .filter(|r| now_ms.saturating_sub(r.reported_at_ms) <= GATEWAY_LIVE_MS)
        .all(|r| r.applied_version >= version)
}

#[cfg(test)]
#[path = "derive_tests.rs"]
mod tests;
