//! Rules of endpoints in the replicated state, driven through `apply`.

use gantry_domain::endpoint::spec::{StageResourceSpec, StageSpec};
use gantry_domain::endpoint::{EndpointSpec, EndpointStatus, StageResourceStatus, StageStatus};
use gantry_domain::{
    Framework, Image, ImageCoreType, InstanceType, Meta, Model, ModelFramework, ModelSource, NodeInventory,
};

use super::command::{PodReport, StageMinute};
use super::{EndpointCommand as C, endpoint_names_using_model};
use crate::state::{CommandV1, Outcome, Rejected, State, WorkloadOwner, apply};

mod flows;

/// A state and the next log index.
pub(crate) struct World {
    pub state: State,
    pub index: u64,
    pub now: u64,
}

impl World {
    pub fn new() -> World {
        let mut w = World { state: State::default(), index: 0, now: 1_000_000 };
        let it = InstanceType { name: "m1".into(), cpu_millis: 1000, memory_mib: 1024, gpu_count: 0, gpu_model: None };
        w.run(CommandV1::PutInstanceType { instance_type: it }).expect("instance type");
        let image = Image {
            name: "serving-onnx".into(),
            reference: "gantry/serving-onnx:1".into(),
            core_type: ImageCoreType::Cpu,
            framework: Framework::Python,
            framework_version: String::new(),
            python_version: "3.11".into(),
        };
        w.run(CommandV1::PutImage { image }).expect("image");
        for (n, addr) in [("a", "10.0.0.1"), ("b", "10.0.0.2")] {
            let inventory = NodeInventory { cpu_millis: 4000, memory_mib: 8192, disk_mib: 0, gpus: vec![] };
            let c = CommandV1::RegisterNode { hostname: n.into(), address: addr.into(), inventory, now_ms: 1 };
            w.run(c).expect("node");
        }
        for (id, name) in [("mdl-1", "iris"), ("mdl-2", "iris2")] {
            let model = Model {
                meta: Meta {
                    id: id.into(),
                    project: "p".into(),
                    name: name.into(),
                    description: String::new(),
                    tags: vec![],
                    created_at_ms: 1,
                    updated_at_ms: 1,
                    request_id: String::new(),
                },
                framework: ModelFramework::Onnx,
                framework_version: "1".into(),
                artifact_path: format!("file:///models/{name}"),
                source: ModelSource::External,
            };
            w.state.projects.entry("p".into()).or_default().models.insert(name.into(), model);
        }
        w
    }

    pub fn run(&mut self, c: impl Into<CommandV1>) -> Outcome {
        self.index += 1;
        let c: CommandV1 = c.into();
        apply(&mut self.state, self.index, c.into())
    }

    pub fn ep(&mut self, c: C) -> Outcome {
        self.run(CommandV1::Endpoint(c))
    }

    /// Creates endpoint `name` (id `ep-{name}`, default stage id `st-{name}`).
    pub fn create(&mut self, name: &str, instances: u32, pods: u32) -> Outcome {
        let mut s = stage("default");
        s.instance_count = instances;
        s.resources = vec![resource("iris", "/inference", pods)];
        let spec = EndpointSpec { name: name.into(), description: String::new(), tags: vec![], stage: s };
        let now = self.now;
        self.ep(C::CreateEndpoint {
            project: "p".into(),
            id: format!("ep-{name}"),
            stage_id: format!("st-{name}"),
            request_id: String::new(),
            spec,
            now_ms: now,
        })
    }

    pub fn stage(&self, endpoint: &str, stage: &str) -> &gantry_domain::endpoint::Stage {
        &self.state.projects["p"].endpoints[endpoint].stages[stage]
    }

    pub fn endpoint(&self, endpoint: &str) -> &gantry_domain::endpoint::Endpoint {
        &self.state.projects["p"].endpoints[endpoint]
    }

    /// Places every pending instance with the placement solver, as the controller does.
    pub fn place_all(&mut self) {
        let pending: Vec<_> = self.state.workloads.pending().map(|(_, w)| w.demand.clone()).collect();
        let problem = gantry_placement::Problem { nodes: self.state.node_snapshots(), pending };
        for (id, placement) in gantry_placement::solve(&problem).placed {
            let now = self.now;
            self.run(CommandV1::Place { workload_id: id, placement, now_ms: now, ports: None }).expect("place");
        }
    }

    /// Reports every pod of every placed instance of the stage ready (or as `f` says).
    pub fn report_all(&mut self, endpoint: &str, stage: &str, f: impl Fn(&str) -> PodReport) {
        let s = self.stage(endpoint, stage).clone();
        for (i, w) in s.instances.iter().enumerate() {
            let Some(node) = self.state.workloads.get(w).and_then(|w| w.placement.clone()) else { continue };
            let pods = s.pods().filter(|p| p.instance_index == i as u32).map(|p| f(&p.id)).collect();
            let now = self.now;
            let node_id = node.assignments[0].node_id.clone();
            self.ep(C::ReportPods { node_id, workload_id: w.clone(), pods, now_ms: now }).expect("report pods");
        }
    }

    pub fn gateway(&mut self, id: &str, applied: u64, minutes: Vec<StageMinute>) {
        let now = self.now;
        let c =
            C::ReportGateway { gateway_id: id.into(), applied_version: applied, errors: vec![], minutes, now_ms: now };
        self.ep(c).expect("gateway report");
    }
}

pub(super) fn resource(model: &str, path: &str, pods: u32) -> StageResourceSpec {
    StageResourceSpec { model: model.into(), resource_path: path.into(), pod_count: pods, description: String::new() }
}

pub(super) fn stage(name: &str) -> StageSpec {
    StageSpec {
        name: name.into(),
        description: String::new(),
        instance_type: "m1".into(),
        instance_count: 1,
        resources: vec![resource("iris", "/inference", 1)],
    }
}

pub(crate) fn ready(id: &str) -> PodReport {
    PodReport { pod_id: id.into(), ready: true, failed: String::new() }
}

#[test]
fn an_endpoint_goes_from_requested_to_active_with_instances_on_distinct_nodes() {
    let mut w = World::new();
    w.create("ep", 2, 3).expect("create");
    assert_eq!(w.endpoint("ep").status, EndpointStatus::CreateRequested);
    let s = w.stage("ep", "default");
    assert_eq!(s.status, StageStatus::CreateRequested);
    assert_eq!(s.instances.len(), 2);
    // Pods spread round-robin over the instances, each with its own port.
    let per_instance: Vec<usize> = (0..2).map(|i| s.pods().filter(|p| p.instance_index == i).count()).collect();
    assert_eq!(per_instance, [2, 1]);
    w.place_all();
    let s = w.stage("ep", "default").clone();
    let nodes: Vec<String> = s
        .instances
        .iter()
        .map(|id| w.state.workloads[id].placement.clone().expect("placed").assignments[0].node_id.clone())
        .collect();
    assert_ne!(nodes[0], nodes[1], "two instances of one stage on one node");
    assert_eq!(s.status, StageStatus::CreateInProgress);
    assert_eq!(w.endpoint("ep").status, EndpointStatus::CreateInProgress);
    w.report_all("ep", "default", ready);
    let s = w.stage("ep", "default");
    assert_eq!(s.status, StageStatus::Active, "{}", s.status_reason);
    assert_eq!(s.resources[0].status, StageResourceStatus::Active);
    assert_eq!(s.resources[0].routed_generation, Some(1));
    assert!(s.config_version > 0);
    assert_eq!(w.endpoint("ep").status, EndpointStatus::Active);
    // The agents get the pods of their instance, the instance's CPU split between them.
    let a = crate::agents::assignments::node_assignments(&w.state, &nodes[0]);
    let serving = a[0].serving.as_ref().expect("serving");
    assert_eq!(serving.pods.len(), 2);
    assert_eq!(serving.pods[0].cpu_millis, 500);
    assert_eq!(serving.pods[0].image, "gantry/serving-onnx:1");
    assert_eq!(serving.pods[0].framework, "ONNX");
}

#[test]
fn a_failed_pod_fails_the_create_and_frees_its_pods() {
    let mut w = World::new();
    w.create("ep", 1, 2).expect("create");
    w.place_all();
    w.report_all("ep", "default", |id| PodReport {
        pod_id: id.into(),
        ready: false,
        failed: "artifact file:///models/iris is missing".into(),
    });
    let s = w.stage("ep", "default");
    assert_eq!(s.resources[0].status, StageResourceStatus::CreateFailed);
    assert!(s.resources[0].status_reason.contains("missing"), "{}", s.resources[0].status_reason);
    assert!(s.resources[0].pods.is_empty(), "nothing half-made");
    assert_eq!(s.status, StageStatus::CreateFailed);
    assert_eq!(w.endpoint("ep").status, EndpointStatus::CreateFailed);
    assert!(super::build::used_ports(&w.state).is_empty(), "ports released");
}

#[test]
fn a_missing_model_is_not_found_and_creates_nothing() {
    let mut w = World::new();
    let mut s = stage("default");
    s.resources = vec![resource("nope", "/x", 1)];
    let spec = EndpointSpec { name: "ep".into(), description: String::new(), tags: vec![], stage: s };
    let c = C::CreateEndpoint {
        project: "p".into(),
        id: "e".into(),
        stage_id: "s".into(),
        request_id: String::new(),
        spec,
        now_ms: 1,
    };
    let err = w.ep(c).expect_err("missing model");
    assert!(matches!(&err, Rejected::NotFound { what } if what.contains("'nope'")), "{err:?}");
    assert!(w.state.projects["p"].endpoints.is_empty());
    assert_eq!(w.state.workloads.len(), 0);
}

#[test]
fn ports_are_unique_across_the_cluster_and_exhaustion_creates_nothing() {
    let mut w = World::new();
    w.create("one", 1, 3).expect("one");
    w.create("two", 2, 4).expect("two");
    let ports: Vec<u16> = w.state.projects["p"]
        .endpoints
        .values()
        .flat_map(|e| e.stages.values())
        .flat_map(|s| s.pods())
        .map(|p| p.host_port)
        .collect();
    let unique: std::collections::BTreeSet<_> = ports.iter().collect();
    assert_eq!(unique.len(), ports.len());
    assert_eq!(ports.len(), 7);
    w.state.pod_ports = Some((31000, 31008));
    let before = w.state.clone();
    let err = w.create("three", 1, 3).expect_err("out of ports");
    assert!(matches!(err, Rejected::FailedPrecondition { .. }), "{err:?}");
    assert_eq!(w.state.projects, before.projects);
}

#[test]
fn the_model_in_use_is_reported_and_api_keys_keep_only_hashes() {
    let mut w = World::new();
    w.create("ep", 1, 1).expect("create");
    assert_eq!(endpoint_names_using_model(&w.state, "p", "mdl-1"), ["ep"]);
    assert!(endpoint_names_using_model(&w.state, "p", "mdl-2").is_empty());
    assert!(endpoint_names_using_model(&w.state, "q", "mdl-1").is_empty());
    let key = |sha: &str| C::CreateApiKey {
        project: "p".into(),
        endpoint: "ep".into(),
        id: "k1".into(),
        description: String::new(),
        secret_sha256: sha.into(),
        now_ms: 1,
    };
    assert!(matches!(w.ep(key("secret")), Err(Rejected::InvalidArgument { .. })));
    w.ep(key(&"a".repeat(64))).expect("key");
    assert_eq!(w.endpoint("ep").api_keys[0].secret_sha256, "a".repeat(64));
    let del = |id: &str| C::DeleteApiKey { project: "p".into(), endpoint: "ep".into(), id: id.into() };
    assert!(matches!(w.ep(del("k2")), Err(Rejected::NotFound { .. })));
    w.ep(del("k1")).expect("delete key");
    assert!(w.endpoint("ep").api_keys.is_empty());
}

#[test]
fn the_serving_image_is_found_by_name_or_by_gantrys_image_reference() {
    let mut w = World::new();
    let by_name = super::build::serving_image(&w.state, ModelFramework::Onnx).map(|i| i.name.clone());
    assert_eq!(by_name.as_deref(), Some("serving-onnx"));
    assert!(super::build::serving_image(&w.state, ModelFramework::PyTorch).is_none());
    let image = Image {
        name: "pytorch-cpu".into(),
        reference: "gantry/serving-pytorch:cpu".into(),
        core_type: ImageCoreType::Cpu,
        framework: Framework::Pytorch,
        framework_version: "1.13.1".into(),
        python_version: "3.11".into(),
    };
    w.run(CommandV1::PutImage { image }).expect("image");
    let found = super::build::serving_image(&w.state, ModelFramework::PyTorch).map(|i| i.reference.clone());
    assert_eq!(found.as_deref(), Some("gantry/serving-pytorch:cpu"));
    assert!(super::build::serving_image(&w.state, ModelFramework::TensorFlow).is_none());
}

#[test]
fn instances_are_owned_by_ids() {
    let mut w = World::new();
    w.create("ep", 1, 1).expect("create");
    let id = w.stage("ep", "default").instances[0].clone();
    let owner = &w.state.workloads[&id].owner;
    assert_eq!(
        owner,
        &WorkloadOwner::StageInstance {
            project: "p".into(),
            endpoint_id: "ep-ep".into(),
            stage_id: "st-ep".into(),
            index: 0
        }
    );
    assert_eq!(w.state.workloads[&id].demand.spread_group.as_deref(), Some("st-ep"));
}
