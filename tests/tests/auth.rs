//! Who may call what: every admin method refuses callers without a valid bearer token,
//! project tokens stay inside their project and cannot write the catalogs, and agents
//! join only with the cluster's join token.

use std::collections::BTreeSet;

use gantry_proto::v1::{self as pb, GetClusterStatusRequest};
use gantry_tests::*;
use tonic::metadata::AsciiMetadataValue;
use tonic::{Code, Status};

fn python_image() -> pb::Image {
    pb::Image {
        name: "python".into(),
        reference: "gantry/python:3.11".into(),
        core_type: "CPU".into(),
        framework: "PYTHON".into(),
        framework_version: String::new(),
        python_version: "3.11".into(),
    }
}

/// Calls every admin method once, aimed at resources that exist (so a skipped check
/// would do something visible), and returns each method's result.
async fn call_every_admin_method(c: &mut Clients, node_id: &str) -> Vec<(&'static str, Result<(), Status>)> {
    let mut results = Vec::new();
    macro_rules! call {
        ($method:literal, $rpc:expr) => {
            results.push(($method, $rpc.await.map(|_| ())))
        };
    }
    let project = || TEAM_A.to_string();
    call!("ClusterService/GetStatus", c.cluster.get_status(GetClusterStatusRequest {}));
    call!(
        "CatalogService/PutInstanceType",
        c.catalog.put_instance_type(pb::PutInstanceTypeRequest {
            instance_type: Some(pb::InstanceType {
                name: "sneaky".into(),
                cpu_millis: 1000,
                memory_mib: 1024,
                ..Default::default()
            }),
        })
    );
    call!("CatalogService/ListInstanceTypes", c.catalog.list_instance_types(pb::ListInstanceTypesRequest::default()));
    call!(
        "CatalogService/DeleteInstanceType",
        c.catalog.delete_instance_type(pb::DeleteInstanceTypeRequest { name: "doomed".into() })
    );
    call!(
        "CatalogService/PutImage",
        c.catalog.put_image(pb::PutImageRequest { image: Some(pb::Image { name: "sneaky".into(), ..python_image() }) })
    );
    call!("CatalogService/ListImages", c.catalog.list_images(pb::ListImagesRequest::default()));
    call!("CatalogService/DeleteImage", c.catalog.delete_image(pb::DeleteImageRequest { name: "doomed".into() }));
    call!("NodeService/ListNodes", c.nodes.list_nodes(pb::ListNodesRequest::default()));
    call!("NodeService/GetNode", c.nodes.get_node(pb::GetNodeRequest { id: node_id.into(), read: None }));
    call!("ExperimentService/CreateExperiment", c.experiments.create_experiment(create_experiment(TEAM_A, "sneaky")));
    call!(
        "ExperimentService/GetExperiment",
        c.experiments.get_experiment(pb::GetExperimentRequest { project: project(), name: "a-exp".into(), read: None })
    );
    call!(
        "ExperimentService/ListExperiments",
        c.experiments.list_experiments(pb::ListExperimentsRequest { project: project(), read: None })
    );
    call!(
        "ExperimentService/DeleteExperiment",
        c.experiments.delete_experiment(pb::DeleteExperimentRequest { project: project(), name: "a-empty".into() })
    );
    call!(
        "TrainingService/CreateTraining",
        c.trainings.create_training(create_training(TEAM_A, cpu_training("sneaky", "a-exp")))
    );
    call!(
        "TrainingService/GetTraining",
        c.trainings.get_training(pb::GetTrainingRequest { project: project(), name: "a-train".into(), read: None })
    );
    call!(
        "TrainingService/ListTrainings",
        c.trainings.list_trainings(pb::ListTrainingsRequest { project: project(), ..Default::default() })
    );
    call!(
        "TrainingService/StopTraining",
        c.trainings.stop_training(pb::StopTrainingRequest { project: project(), name: "a-train".into() })
    );
    call!(
        "TrainingService/DeleteTraining",
        c.trainings.delete_training(pb::DeleteTrainingRequest { project: project(), name: "a-stopped".into() })
    );
    results
}

/// Everything an unauthenticated call could have changed, as the admin sees it.
#[derive(Debug, PartialEq)]
struct Observed {
    instance_types: Vec<pb::InstanceType>,
    images: Vec<pb::Image>,
    nodes: BTreeSet<String>,
    experiments: BTreeSet<String>,
    trainings: Vec<(String, String)>,
}

async fn observe(admin: &mut Clients) -> anyhow::Result<Observed> {
    let experiments = admin
        .experiments
        .list_experiments(pb::ListExperimentsRequest { project: TEAM_A.into(), read: None })
        .await?
        .into_inner();
    let trainings = admin
        .trainings
        .list_trainings(pb::ListTrainingsRequest { project: TEAM_A.into(), ..Default::default() })
        .await?
        .into_inner();
    Ok(Observed {
        instance_types: admin
            .catalog
            .list_instance_types(pb::ListInstanceTypesRequest::default())
            .await?
            .into_inner()
            .instance_types,
        images: admin.catalog.list_images(pb::ListImagesRequest::default()).await?.into_inner().images,
        nodes: admin
            .nodes
            .list_nodes(pb::ListNodesRequest::default())
            .await?
            .into_inner()
            .nodes
            .into_iter()
            .map(|n| n.id)
            .collect(),
        experiments: experiments.experiments.into_iter().map(|e| e.name).collect(),
        trainings: trainings
            .trainings
            .into_iter()
            .map(|t| (t.spec.map(|s| s.name).unwrap_or_default(), t.status))
            .collect(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_method_needs_a_valid_bearer_token() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut admin = sandbox.admin();
    // Targets for every method: a node, experiments (one empty), a pending and a stopped training.
    let node_id = expect_ok(admin.agent.register(gpu_node("node-1", 0)).await, "register node").node_id;
    let doomed_type =
        pb::InstanceType { name: "doomed".into(), cpu_millis: 1000, memory_mib: 1024, ..Default::default() };
    expect_ok(
        admin.catalog.put_instance_type(pb::PutInstanceTypeRequest { instance_type: Some(doomed_type) }).await,
        "put type",
    );
    let doomed_image = pb::Image { name: "doomed".into(), ..python_image() };
    expect_ok(admin.catalog.put_image(pb::PutImageRequest { image: Some(doomed_image) }).await, "put image");
    for name in ["a-exp", "a-empty"] {
        expect_ok(admin.experiments.create_experiment(create_experiment(TEAM_A, name)).await, "create experiment");
    }
    for name in ["a-train", "a-stopped"] {
        // Too large for the node: stays pending.
        let spec =
            pb::TrainingSpec { instance_count: 64, instance_type: "cpu-large".into(), ..cpu_training(name, "a-exp") };
        expect_ok(admin.trainings.create_training(create_training(TEAM_A, spec)).await, "create training");
    }
    expect_ok(
        admin
            .trainings
            .stop_training(pb::StopTrainingRequest { project: TEAM_A.into(), name: "a-stopped".into() })
            .await,
        "stop training",
    );
    let before = observe(&mut admin).await?;

    let header = |v: &str| -> AsciiMetadataValue {
        match v.parse() {
            Ok(v) => v,
            Err(e) => panic!("header {v:?}: {e}"),
        }
    };
    let callers: Vec<(&str, Clients)> = vec![
        ("no authorization header", sandbox.anonymous()),
        ("unknown token", sandbox.clients("not-a-known-token-0123456789")),
        ("admin token with a suffix", sandbox.clients(&format!("{ADMIN_TOKEN}x"))),
        ("admin token with a prefix", sandbox.clients(&format!("x{ADMIN_TOKEN}"))),
        ("join token as bearer", sandbox.clients(JOIN_TOKEN)),
        ("empty bearer", sandbox.with_authorization(header("Bearer"))),
        ("token without scheme", sandbox.with_authorization(header(ADMIN_TOKEN))),
        ("basic scheme", sandbox.with_authorization(header("Basic YWRtaW46YWRtaW4="))),
        ("token scheme", sandbox.with_authorization(header(&format!("Token {ADMIN_TOKEN}")))),
        ("two tokens", sandbox.with_authorization(header(&format!("Bearer {ADMIN_TOKEN} {TEAM_A_TOKEN}")))),
        ("non-UTF-8 header", sandbox.with_authorization(non_ascii_header())),
    ];
    for (who, mut clients) in callers {
        let results = call_every_admin_method(&mut clients, &node_id).await;
        assert_eq!(results.len(), 18);
        for (method, result) in results {
            match result {
                Err(status) if status.code() == Code::Unauthenticated => {}
                Err(status) => {
                    panic!("{who}: {method}: expected Unauthenticated, got {:?}: {}", status.code(), status.message())
                }
                Ok(()) => panic!("{who}: {method}: expected Unauthenticated, got success"),
            }
        }
    }
    assert_eq!(observe(&mut admin).await?, before, "an unauthenticated call changed something");

    // The same calls with the admin token go through (the targets were real).
    let results = call_every_admin_method(&mut admin, &node_id).await;
    for (method, result) in &results {
        if let Err(status) = result {
            panic!("admin: {method}: {:?}: {}", status.code(), status.message());
        }
    }

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_token_stays_inside_its_project() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut admin = sandbox.admin();
    let mut a = sandbox.team_a();
    let mut b = sandbox.team_b();

    expect_ok(b.experiments.create_experiment(create_experiment(TEAM_B, "b-exp")).await, "b creates experiment");
    let b_train = expect_ok(
        b.trainings.create_training(create_training(TEAM_B, cpu_training("b-train", "b-exp"))).await,
        "b creates training",
    );
    expect_ok(a.experiments.create_experiment(create_experiment(TEAM_A, "a-exp")).await, "a creates experiment");

    let denied = |r: Result<(), Status>, what: &str| match r {
        Err(s) if s.code() == Code::PermissionDenied => {}
        Err(s) => panic!("team-a {what}: expected PermissionDenied, got {:?}: {}", s.code(), s.message()),
        Ok(()) => panic!("team-a {what}: expected PermissionDenied, got success"),
    };
    let b_proj = || TEAM_B.to_string();
    denied(
        a.experiments
            .get_experiment(pb::GetExperimentRequest { project: b_proj(), name: "b-exp".into(), read: None })
            .await
            .map(|_| ()),
        "GetExperiment",
    );
    denied(
        a.experiments
            .get_experiment(pb::GetExperimentRequest { project: b_proj(), name: "b-exp".into(), read: stale() })
            .await
            .map(|_| ()),
        "stale GetExperiment",
    );
    denied(
        a.experiments.list_experiments(pb::ListExperimentsRequest { project: b_proj(), read: None }).await.map(|_| ()),
        "ListExperiments",
    );
    denied(
        a.experiments
            .list_experiments(pb::ListExperimentsRequest { project: b_proj(), read: stale() })
            .await
            .map(|_| ()),
        "stale ListExperiments",
    );
    denied(a.experiments.create_experiment(create_experiment(TEAM_B, "planted")).await.map(|_| ()), "CreateExperiment");
    denied(
        a.experiments
            .delete_experiment(pb::DeleteExperimentRequest { project: b_proj(), name: "b-exp".into() })
            .await
            .map(|_| ()),
        "DeleteExperiment",
    );
    denied(
        a.trainings.create_training(create_training(TEAM_B, cpu_training("planted", "b-exp"))).await.map(|_| ()),
        "CreateTraining",
    );
    denied(
        a.trainings
            .get_training(pb::GetTrainingRequest { project: b_proj(), name: "b-train".into(), read: None })
            .await
            .map(|_| ()),
        "GetTraining",
    );
    denied(
        a.trainings
            .get_training(pb::GetTrainingRequest { project: b_proj(), name: "b-train".into(), read: stale() })
            .await
            .map(|_| ()),
        "stale GetTraining",
    );
    denied(
        a.trainings
            .list_trainings(pb::ListTrainingsRequest { project: b_proj(), ..Default::default() })
            .await
            .map(|_| ()),
        "ListTrainings",
    );
    denied(
        a.trainings
            .stop_training(pb::StopTrainingRequest { project: b_proj(), name: "b-train".into() })
            .await
            .map(|_| ()),
        "StopTraining",
    );
    denied(
        a.trainings
            .delete_training(pb::DeleteTrainingRequest { project: b_proj(), name: "b-train".into() })
            .await
            .map(|_| ()),
        "DeleteTraining",
    );
    // The denial does not depend on whether the resource exists.
    denied(
        a.trainings
            .get_training(pb::GetTrainingRequest { project: b_proj(), name: "no-such".into(), read: None })
            .await
            .map(|_| ()),
        "GetTraining of a missing training",
    );

    // team-b's resources do not show up in team-a's own project either.
    let own = expect_ok(
        a.experiments.list_experiments(pb::ListExperimentsRequest { project: TEAM_A.into(), read: None }).await,
        "list own",
    );
    assert_eq!(own.experiments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["a-exp"]);
    let own = expect_ok(
        a.trainings.list_trainings(pb::ListTrainingsRequest { project: TEAM_A.into(), ..Default::default() }).await,
        "list own trainings",
    );
    assert!(own.trainings.is_empty(), "{:?}", own.trainings);
    expect_code(
        a.experiments
            .get_experiment(pb::GetExperimentRequest { project: TEAM_A.into(), name: "b-exp".into(), read: None })
            .await,
        Code::NotFound,
        "team-a gets b-exp in its own project",
    );
    expect_code(
        a.trainings
            .get_training(pb::GetTrainingRequest { project: TEAM_A.into(), name: "b-train".into(), read: None })
            .await,
        Code::NotFound,
        "team-a gets b-train in its own project",
    );
    // Nor can team-a attach a training to team-b's experiment by name.
    expect_invalid(
        a.trainings.create_training(create_training(TEAM_A, cpu_training("a-train", "b-exp"))).await,
        "spec.experiment",
        "team-a training in b-exp",
    );
    // Names are per project: team-a may use team-b's names.
    let a_b_exp =
        expect_ok(a.experiments.create_experiment(create_experiment(TEAM_A, "b-exp")).await, "same name in team-a");

    // team-b's records are untouched and still its own.
    let b_exp = expect_ok(
        b.experiments
            .get_experiment(pb::GetExperimentRequest { project: TEAM_B.into(), name: "b-exp".into(), read: None })
            .await,
        "b gets its experiment",
    );
    assert_ne!(b_exp.id, a_b_exp.id);
    assert_eq!(b_exp.training_count, 1);
    let listed = expect_ok(
        b.experiments.list_experiments(pb::ListExperimentsRequest { project: TEAM_B.into(), read: None }).await,
        "b lists",
    );
    assert_eq!(listed.experiments.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["b-exp"]);
    let t = expect_ok(
        admin
            .trainings
            .get_training(pb::GetTrainingRequest { project: TEAM_B.into(), name: "b-train".into(), read: None })
            .await,
        "admin gets b-train",
    );
    assert_eq!((t.id.as_str(), t.status.as_str()), (b_train.id.as_str(), "CREATE REQUESTED"));
    // And team-b is as confined as team-a.
    expect_code(
        b.experiments.list_experiments(pb::ListExperimentsRequest { project: TEAM_A.into(), read: None }).await,
        Code::PermissionDenied,
        "team-b lists team-a",
    );

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_token_reads_but_cannot_write_the_catalogs() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut admin = sandbox.admin();
    let mut a = sandbox.team_a();
    let types_before =
        expect_ok(admin.catalog.list_instance_types(pb::ListInstanceTypesRequest::default()).await, "list")
            .instance_types;
    let images_before = expect_ok(admin.catalog.list_images(pb::ListImagesRequest::default()).await, "list").images;

    let instance_type =
        pb::InstanceType { name: "team-a-big".into(), cpu_millis: 64_000, memory_mib: 1 << 20, ..Default::default() };
    expect_code(
        a.catalog.put_instance_type(pb::PutInstanceTypeRequest { instance_type: Some(instance_type.clone()) }).await,
        Code::PermissionDenied,
        "put new instance type",
    );
    let overwrite = pb::InstanceType { name: CPU_INSTANCE_TYPE.into(), ..instance_type };
    expect_code(
        a.catalog.put_instance_type(pb::PutInstanceTypeRequest { instance_type: Some(overwrite) }).await,
        Code::PermissionDenied,
        "overwrite instance type",
    );
    expect_code(
        a.catalog.delete_instance_type(pb::DeleteInstanceTypeRequest { name: CPU_INSTANCE_TYPE.into() }).await,
        Code::PermissionDenied,
        "delete instance type",
    );
    let image = pb::Image { name: "team-a-image".into(), ..python_image() };
    expect_code(
        a.catalog.put_image(pb::PutImageRequest { image: Some(image) }).await,
        Code::PermissionDenied,
        "put image",
    );
    expect_code(
        a.catalog.delete_image(pb::DeleteImageRequest { name: CPU_IMAGE.into() }).await,
        Code::PermissionDenied,
        "delete image",
    );

    // Reads work, linearizable and stale, and show the unchanged catalogs.
    for read in [None, stale()] {
        let types =
            expect_ok(a.catalog.list_instance_types(pb::ListInstanceTypesRequest { read }).await, "team-a lists types");
        assert_eq!(types.instance_types, types_before);
        let images = expect_ok(a.catalog.list_images(pb::ListImagesRequest { read }).await, "team-a lists images");
        assert_eq!(images.images, images_before);
    }
    let gpu = types_before.iter().find(|t| t.name == GPU_INSTANCE_TYPE);
    assert_eq!(gpu.map(|t| (t.gpu_count, t.core_type.as_str())), Some((2, GPU_MODEL)));
    let cpu = types_before.iter().find(|t| t.name == CPU_INSTANCE_TYPE);
    assert_eq!(cpu.map(|t| t.core_type.as_str()), Some("CPU"));

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_join_only_with_the_join_token() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut admin = sandbox.admin();
    let list = |admin: &mut Clients| {
        let mut nodes = admin.nodes.clone();
        async move { anyhow::Ok(nodes.list_nodes(pb::ListNodesRequest::default()).await?.into_inner().nodes) }
    };

    for (what, join_token) in [
        ("wrong join token", "join-wrong-0123456789abcdef".to_string()),
        ("empty join token", String::new()),
        ("join token with a suffix", format!("{JOIN_TOKEN}x")),
        ("admin token as join token", ADMIN_TOKEN.to_string()),
    ] {
        let request = pb::RegisterNodeRequest { join_token, ..gpu_node("intruder", 8) };
        // A valid admin bearer token does not stand in for the join token.
        for mut clients in [sandbox.anonymous(), sandbox.admin()] {
            expect_code(clients.agent.register(request.clone()).await, Code::Unauthenticated, what);
        }
    }
    assert!(list(&mut admin).await?.is_empty(), "a refused agent was registered");

    let id = expect_ok(sandbox.anonymous().agent.register(gpu_node("gpu-1", 2)).await, "register with the join token")
        .node_id;
    let nodes = list(&mut admin).await?;
    assert_eq!(nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);

    sandbox.shutdown().await
}

/// Nodes list the workloads placed on them. A project token may be refused the node
/// view, or given it without other projects' workloads, but must never see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_token_does_not_see_other_projects_workloads_on_nodes() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut admin = sandbox.admin();
    let mut a = sandbox.team_a();
    let b = sandbox.team_b();
    let node_id = expect_ok(sandbox.anonymous().agent.register(gpu_node("node-1", 0)).await, "register node").node_id;
    expect_ok(
        b.experiments.clone().create_experiment(create_experiment(TEAM_B, "b-exp")).await,
        "b creates experiment",
    );
    let spec = cpu_training("b-train", "b-exp");
    expect_ok(b.trainings.clone().create_training(create_training(TEAM_B, spec)).await, "b creates training");
    let placed = wait_for_training(&b, TEAM_B, "b-train", "placed", |t| t.status == "CREATE IN PROGRESS").await?;
    let node = expect_ok(admin.nodes.get_node(pb::GetNodeRequest { id: node_id.clone(), read: None }).await, "admin");
    assert_eq!(node.workloads, std::slice::from_ref(&placed.id), "the admin sees the workload");

    let check = |who: &str, result: Result<Vec<pb::Node>, Status>| match result {
        Err(s) => assert_eq!(s.code(), Code::PermissionDenied, "{who}: {}", s.message()),
        Ok(nodes) => {
            for n in nodes {
                assert!(
                    !n.workloads.contains(&placed.id),
                    "{who}: team-a sees team-b's workload {} on {}",
                    placed.id,
                    n.id
                );
            }
        }
    };
    check("ListNodes", a.nodes.list_nodes(pb::ListNodesRequest::default()).await.map(|r| r.into_inner().nodes));
    check(
        "GetNode",
        a.nodes.get_node(pb::GetNodeRequest { id: node_id, read: None }).await.map(|r| vec![r.into_inner()]),
    );

    sandbox.shutdown().await
}
