use std::collections::BTreeMap;

use super::*;
use crate::endpoint::record::{Pod, ServedModel};
use crate::model::ModelFramework;
use crate::resources::Resources;

fn served() -> ServedModel {
    ServedModel {
        model_id: "m1".into(),
        model: "iris".into(),
        framework: ModelFramework::Onnx,
        artifact_path: "file:///m".into(),
        image: "img".into(),
    }
}

fn pod(generation: u32, index: u32, ready: bool) -> Pod {
    Pod {
        id: Pod::pod_id("r1", generation, index),
        generation,
        index,
        instance_index: 0,
        host_port: 31000 + index as u16,
        ready,
        served: served(),
    }
}

fn resource(pods: Vec<Pod>) -> StageResource {
    StageResource {
        id: "r1".into(),
        model_id: "m1".into(),
        model: "iris".into(),
        resource_path: "/inference".into(),
        pod_count: pods.len() as u32,
        description: String::new(),
        status: StageResourceStatus::CreateRequested,
        status_reason: String::new(),
        generation: 1,
        routed_generation: None,
        switched_at: 0,
        failed: None,
        deleting: false,
        pods,
        next_pod: 0,
    }
}

fn stage(resources: Vec<StageResource>) -> Stage {
    Stage {
        id: "s1".into(),
        name: "default".into(),
        description: String::new(),
        instance_type: "m1".into(),
        shape: Resources::new(1000, 1024, 0),
        gpu_model: None,
        instance_count: 1,
        status: StageStatus::CreateRequested,
        status_reason: String::new(),
        resources,
        instances: vec!["w1".into()],
        config_version: 0,
        gateways: BTreeMap::new(),
        stats: BTreeMap::new(),
        ever_active: false,
        deleting: false,
        retire_after: None,
        next_resource: 1,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

#[test]
fn a_resource_goes_requested_in_progress_active() {
    let mut r = resource(vec![pod(1, 0, false)]);
    assert_eq!(resource_status(&r, &[false]).0, StageResourceStatus::CreateRequested);
    assert_eq!(resource_status(&r, &[true]).0, StageResourceStatus::CreateInProgress);
    r.routed_generation = Some(1);
    assert_eq!(resource_status(&r, &[true]).0, StageResourceStatus::Active);
    r.failed = Some("artifact missing".into());
    assert_eq!(resource_status(&r, &[true]), (StageResourceStatus::CreateFailed, "artifact missing".into()));
    r.deleting = true;
    assert_eq!(resource_status(&r, &[true]).0, StageResourceStatus::DeleteInProgress);
}

#[test]
fn a_stage_follows_its_instances_and_resources() {
    let mut s = stage(vec![resource(vec![pod(1, 0, false)])]);
    assert_eq!(stage_status(&s, &[false]).0, StageStatus::CreateRequested);
    assert_eq!(stage_status(&s, &[true]).0, StageStatus::CreateInProgress);
    s.resources[0].status = StageResourceStatus::Active;
    s.resources[0].routed_generation = Some(1);
    assert_eq!(stage_status(&s, &[true]).0, StageStatus::Active);
    // A surge in flight: routed is the old generation.
    s.ever_active = true;
    s.resources[0].generation = 2;
    assert_eq!(stage_status(&s, &[true]).0, StageStatus::DeployInProgress);
    s.resources[0].status = StageResourceStatus::CreateFailed;
    s.resources[0].status_reason = "no artifact".into();
    let (status, why) = stage_status(&s, &[true]);
    assert_eq!(status, StageStatus::DeployFailed);
    assert!(why.contains("no artifact"), "{why}");
    s.ever_active = false;
    assert_eq!(stage_status(&s, &[true]).0, StageStatus::CreateFailed);
    s.deleting = true;
    assert_eq!(stage_status(&s, &[true]).0, StageStatus::DeleteInProgress);
}

#[test]
fn an_endpoint_follows_its_default_stage_then_the_others() {
    use StageStatus as S;
    assert_eq!(endpoint_status(false, Some(S::CreateRequested), &[]), EndpointStatus::CreateRequested);
    assert_eq!(endpoint_status(false, Some(S::CreateInProgress), &[]), EndpointStatus::CreateInProgress);
    assert_eq!(endpoint_status(false, Some(S::CreateFailed), &[]), EndpointStatus::CreateFailed);
    assert_eq!(endpoint_status(false, Some(S::Active), &[]), EndpointStatus::Active);
    assert_eq!(endpoint_status(false, Some(S::Active), &[S::CreateInProgress]), EndpointStatus::UpdateInProgress);
    assert_eq!(endpoint_status(false, Some(S::Active), &[S::CreateFailed]), EndpointStatus::UpdateFailed);
    assert_eq!(endpoint_status(false, Some(S::DeployInProgress), &[]), EndpointStatus::UpdateInProgress);
    assert_eq!(endpoint_status(true, Some(S::Active), &[]), EndpointStatus::DeleteInProgress);
}

#[test]
fn gateway_status_compares_versions_with_live_reports() {
    let report = |applied, at, error: Option<(u64, &str)>| GatewayReport {
        applied_version: applied,
        error: error.map(|(v, e)| (v, e.to_string())),
        reported_at_ms: at,
    };
    let now = 100_000;
    assert_eq!(gateway_status(0, &[], now), GatewayStatus::CreateInProgress);
    assert_eq!(gateway_status(10, &[], now), GatewayStatus::NotFoundStageDeployResult);
    // A gateway silent for more than 30 s does not count.
    let stale = [report(10, now - GATEWAY_LIVE_MS - 1, None)];
    assert_eq!(gateway_status(10, &stale, now), GatewayStatus::NotFoundStageDeployResult);
    let reports = [report(12, now - GATEWAY_LIVE_MS, None), report(9, now, None)];
    assert_eq!(gateway_status(10, &reports, now), GatewayStatus::StageDeploying);
    assert!(!all_live_applied(10, &reports, now));
    let reports = [report(12, now, None), report(10, now, None)];
    assert_eq!(gateway_status(10, &reports, now), GatewayStatus::Active);
    assert!(all_live_applied(10, &reports, now));
    // An error for the current version fails the deploy; one for an older version
    // (before a redeploy) does not.
    let reports = [report(10, now, Some((10, "bad route")))];
    assert_eq!(gateway_status(10, &reports, now), GatewayStatus::StageDeployFail);
    assert_eq!(gateway_status(11, &reports, now), GatewayStatus::StageDeploying);
}
