//! Multi-step rules: deletes, the default switch, the surge, node loss, gateway reports.

use gantry_domain::NodeStatus;
use gantry_domain::api_stats::MinuteStats;
use gantry_domain::endpoint::{GatewayStatus, StageStatus, derive};

use super::super::command::StageMinute;
use super::{C, World, ready, stage};
use crate::state::{CommandV1, Rejected};

fn add_stage(w: &mut World, name: &str) {
    let now = w.now;
    let c = C::CreateStage {
        project: "p".into(),
        endpoint: "ep".into(),
        stage_id: format!("st-{name}"),
        request_id: String::new(),
        spec: stage(name),
        now_ms: now,
    };
    w.ep(c).expect("stage");
}

/// Every placed instance of `stage` reports its container gone (after an end).
fn all_gone(w: &mut World, stage_instances: &[String]) {
    for id in stage_instances {
        let Some(node) = w.state.workloads.get(id).and_then(|x| x.placement.clone()) else { continue };
        let c =
            CommandV1::ContainerGone { node_id: node.assignments[0].node_id.clone(), workload_id: id.clone(), rank: 0 };
        w.run(c).expect("gone");
    }
}

#[test]
fn delete_rules_for_stages_and_endpoints() {
    let mut w = World::new();
    w.create("ep", 1, 1).expect("create");
    add_stage(&mut w, "canary");
    w.place_all();
    let del_ep = C::DeleteEndpoint { project: "p".into(), name: "ep".into(), now_ms: 1 };
    let err = w.ep(del_ep.clone()).expect_err("other stage remains");
    assert!(matches!(&err, Rejected::FailedPrecondition { reason } if reason.contains("canary")), "{err:?}");
    let del = |s: &str| C::DeleteStage { project: "p".into(), endpoint: "ep".into(), stage: s.into(), now_ms: 1 };
    assert!(matches!(w.ep(del("default")), Err(Rejected::FailedPrecondition { .. })));
    assert!(matches!(w.ep(del("nope")), Err(Rejected::NotFound { .. })));
    let instances = w.stage("ep", "canary").instances.clone();
    w.ep(del("canary")).expect("delete canary");
    assert_eq!(w.stage("ep", "canary").status, StageStatus::DeleteInProgress);
    assert!(w.state.workloads[&instances[0]].ended, "its instance ends, held until its container is gone");
    all_gone(&mut w, &instances);
    assert!(!w.endpoint("ep").stages.contains_key("canary"));
    let instances = w.stage("ep", "default").instances.clone();
    w.ep(del_ep).expect("delete endpoint");
    assert_eq!(w.endpoint("ep").status, gantry_domain::endpoint::EndpointStatus::DeleteInProgress);
    all_gone(&mut w, &instances);
    assert!(w.state.projects["p"].endpoints.is_empty());
    assert_eq!(w.state.workloads.len(), 0);
    assert!(super::super::build::used_ports(&w.state).is_empty());
}

#[test]
fn the_old_default_stage_goes_after_every_live_gateway_applied_the_switch() {
    let mut w = World::new();
    w.create("ep", 1, 1).expect("create");
    add_stage(&mut w, "next");
    w.place_all();
    w.gateway("g1", 1, vec![]);
    let set = C::SetDefaultStage { project: "p".into(), endpoint: "ep".into(), stage: "next".into(), now_ms: w.now };
    w.ep(set).expect("switch");
    assert_eq!(w.endpoint("ep").default_stage, "next");
    let switch = w.stage("ep", "default").retire_after.expect("retiring");
    w.gateway("g1", switch - 1, vec![]);
    assert!(!w.stage("ep", "default").deleting, "a live gateway still routes to it");
    w.gateway("g1", switch, vec![]);
    assert!(w.stage("ep", "default").deleting);
    let err = w.ep(C::DeleteStage { project: "p".into(), endpoint: "ep".into(), stage: "next".into(), now_ms: 1 });
    assert!(matches!(err, Err(Rejected::FailedPrecondition { .. })), "the new default cannot be deleted");
}

#[test]
fn a_model_update_surges_switches_when_ready_and_drops_the_old_pods_after_the_gateways() {
    let mut w = World::new();
    w.create("ep", 1, 2).expect("create");
    w.place_all();
    w.report_all("ep", "default", ready);
    w.gateway("g1", w.index, vec![]);
    let rid = w.stage("ep", "default").resources[0].id.clone();
    let update = C::UpdateStageResource {
        project: "p".into(),
        endpoint: "ep".into(),
        stage: "default".into(),
        resource_id: rid,
        model: "iris2".into(),
        now_ms: w.now,
    };
    w.ep(update).expect("update");
    let r = &w.stage("ep", "default").resources[0];
    assert_eq!((r.generation, r.routed_generation, r.pods.len()), (2, Some(1), 4), "new pods beside the old");
    assert_eq!(w.stage("ep", "default").status, StageStatus::DeployInProgress);
    // One new pod ready is not enough: routes stay on generation 1.
    let first_new = r.pods.iter().find(|p| p.generation == 2).expect("gen 2").id.clone();
    w.report_all("ep", "default", |id| super::PodReport {
        pod_id: id.into(),
        ready: !id.contains("-g2-") || id == first_new,
        failed: String::new(),
    });
    assert_eq!(w.stage("ep", "default").resources[0].routed_generation, Some(1));
    w.report_all("ep", "default", ready);
    let r = &w.stage("ep", "default").resources[0];
    assert_eq!(r.routed_generation, Some(2));
    assert_eq!(r.pods.len(), 4, "old pods stay until the gateways applied the switch");
    let switched = r.switched_at;
    w.gateway("g1", switched - 1, vec![]);
    assert_eq!(w.stage("ep", "default").resources[0].pods.len(), 4);
    w.gateway("g1", switched, vec![]);
    let r = &w.stage("ep", "default").resources[0];
    assert!(r.pods.iter().all(|p| p.generation == 2 && p.served.model == "iris2"));
    assert_eq!(w.stage("ep", "default").status, StageStatus::Active);
    assert_eq!(super::endpoint_names_using_model(&w.state, "p", "mdl-1"), Vec::<String>::new());
}

#[test]
fn a_lost_nodes_instance_is_replaced_and_its_pods_get_new_ids() {
    let mut w = World::new();
    w.create("ep", 1, 2).expect("create");
    w.place_all();
    w.report_all("ep", "default", ready);
    let old = w.stage("ep", "default").instances[0].clone();
    let old_pods: Vec<String> = w.stage("ep", "default").pods().map(|p| p.id.clone()).collect();
    let node = w.state.workloads[&old].placement.clone().expect("placed").assignments[0].node_id.clone();
    let down = CommandV1::SetNodeStatus {
        node_id: node.clone(),
        status: NodeStatus::Down,
        now_ms: w.now,
        reason: String::new(),
    };
    w.run(down).expect("down");
    let s = w.stage("ep", "default");
    assert_ne!(s.instances[0], old);
    assert!(w.state.workloads[&old].ended, "the lost instance holds until its container is gone");
    assert!(w.state.workloads[&s.instances[0]].placement.is_none());
    let new_pods: Vec<String> = s.pods().map(|p| p.id.clone()).collect();
    assert!(new_pods.iter().all(|p| !old_pods.contains(p)), "{new_pods:?} vs {old_pods:?}");
    assert!(s.pods().all(|p| !p.ready));
    w.place_all();
    let new = w.stage("ep", "default").instances[0].clone();
    let placed_on = &w.state.workloads[&new].placement.clone().expect("replacement placed").assignments[0].node_id;
    assert_ne!(placed_on, &node);
}

#[test]
fn gateway_minutes_are_idempotent_and_pruned_after_a_day() {
    let mut w = World::new();
    w.create("ep", 1, 1).expect("create");
    let mut stats = MinuteStats::default();
    for i in 0..5 {
        stats.record(1_000, i == 0);
    }
    let minute = |m: u64| StageMinute { stage_id: "st-ep".into(), minute_ms: m, stats: stats.clone() };
    let start = w.now - w.now % 60_000;
    w.gateway("g1", 1, vec![minute(start)]);
    w.gateway("g1", 1, vec![minute(start)]);
    w.gateway("g2", 1, vec![minute(start)]);
    let s = w.stage("ep", "default");
    assert_eq!(s.stats[&start].len(), 2, "one entry per gateway, a resend replaces it");
    let total: u64 = s.stats[&start].values().map(|m| m.calls).sum();
    assert_eq!(total, 10);
    let bad = C::ReportGateway {
        gateway_id: "g1".into(),
        applied_version: 1,
        errors: vec![],
        minutes: vec![minute(start + 1)],
        now_ms: w.now,
    };
    assert!(matches!(w.ep(bad), Err(Rejected::InvalidArgument { .. })));
    w.now += super::super::gateway::STATS_KEEP_MS + 60_000;
    w.gateway("g1", 1, vec![minute(start)]);
    assert!(w.stage("ep", "default").stats.is_empty(), "older than 24 h");
}

#[test]
fn gateway_status_follows_the_reports() {
    let mut w = World::new();
    w.create("ep", 1, 1).expect("create");
    let status = |w: &World| {
        let s = w.stage("ep", "default");
        derive::gateway_status(s.config_version, s.gateways.values(), w.now)
    };
    assert_eq!(status(&w), GatewayStatus::CreateInProgress);
    w.place_all();
    w.report_all("ep", "default", ready);
    assert_eq!(status(&w), GatewayStatus::NotFoundStageDeployResult);
    w.gateway("g1", 1, vec![]);
    assert_eq!(status(&w), GatewayStatus::StageDeploying);
    let v = w.stage("ep", "default").config_version;
    let err = super::super::command::StageError { stage_id: "st-ep".into(), config_version: v, error: "bad".into() };
    let c = C::ReportGateway {
        gateway_id: "g1".into(),
        applied_version: v,
        errors: vec![err],
        minutes: vec![],
        now_ms: w.now,
    };
    w.ep(c).expect("report");
    assert_eq!(status(&w), GatewayStatus::StageDeployFail);
    let redeploy =
        C::RedeployStage { project: "p".into(), endpoint: "ep".into(), stage: "default".into(), now_ms: w.now };
    w.ep(redeploy).expect("redeploy");
    assert_eq!(status(&w), GatewayStatus::StageDeploying);
    w.gateway("g1", w.index, vec![]);
    assert_eq!(status(&w), GatewayStatus::Active);
}
