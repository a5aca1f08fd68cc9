//! EndpointService at the API boundary of a real single-node cluster: every limit is
//! accepted at its edge (the request then gets as far as resolving the model) and
//! rejected past it with InvalidArgument naming the field; nothing is created by a
//! rejected request; another project's token is refused and changes nothing.

use gantry_proto::v1::{self as pb, endpoint_service_client::EndpointServiceClient};
use gantry_tests::*;
use tonic::Code;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

type Client = EndpointServiceClient<InterceptedService<Channel, Authorization>>;

fn client(sandbox: &Sandbox, token: &str) -> anyhow::Result<Client> {
    Ok(EndpointServiceClient::with_interceptor(sandbox.channel(), Authorization::bearer(token)?))
}

fn resource(path: &str, pods: u32) -> pb::StageResourceSpec {
    pb::StageResourceSpec {
        model: "iris".into(),
        resource_path: path.into(),
        pod_count: pods,
        description: String::new(),
    }
}

fn create(name: &str, stage: pb::StageSpec) -> pb::CreateEndpointRequest {
    pb::CreateEndpointRequest {
        project: TEAM_A.into(),
        name: name.into(),
        description: String::new(),
        tags: vec![],
        stage: Some(stage),
        request_id: String::new(),
    }
}

fn stage(instances: u32, resources: Vec<pb::StageResourceSpec>) -> pb::StageSpec {
    pb::StageSpec {
        name: String::new(),
        description: String::new(),
        instance_type: CPU_INSTANCE_TYPE.into(),
        instance_count: instances,
        resources,
    }
}

async fn names(c: &mut Client) -> anyhow::Result<Vec<String>> {
    let list = c.list_endpoints(pb::ListEndpointsRequest { project: TEAM_A.into(), read: None }).await?.into_inner();
    Ok(list.endpoints.into_iter().map(|e| e.name).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_limits_not_found_models_and_foreign_tokens() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut a = client(&sandbox, TEAM_A_TOKEN)?;

    // At every edge: valid, so the request reaches the model, which does not exist.
    let paths: Vec<pb::StageResourceSpec> =
        (0..10).map(|i| resource(&format!("/{}{i}", "a".repeat(250)), 20)).collect();
    let err = expect_code(a.create_endpoint(create("ep", stage(10, paths))).await, Code::NotFound, "at the limits");
    assert!(err.message().contains("'iris'"), "NotFound names the model: {}", err.message());

    let cases: Vec<(&str, pb::CreateEndpointRequest)> = vec![
        ("name", create("Bad Name", stage(1, vec![resource("/x", 1)]))),
        ("stage.instance_count", create("ep", stage(0, vec![resource("/x", 1)]))),
        ("stage.instance_count", create("ep", stage(11, vec![resource("/x", 1)]))),
        ("stage.resources", create("ep", stage(1, vec![]))),
        ("stage.resources", create("ep", stage(1, (0..11).map(|i| resource(&format!("/r{i}"), 1)).collect()))),
        ("stage.resources[0].pod_count", create("ep", stage(1, vec![resource("/x", 0)]))),
        ("stage.resources[0].pod_count", create("ep", stage(1, vec![resource("/x", 21)]))),
        ("stage.resources[0].resource_path", create("ep", stage(1, vec![resource("x", 1)]))),
        ("stage.resources[0].resource_path", create("ep", stage(1, vec![resource("/v2/models", 1)]))),
        (
            "stage.resources[0].resource_path",
            create("ep", stage(1, vec![resource(&format!("/{}", "a".repeat(255)), 1)])),
        ),
        ("stage.resources[1].resource_path", create("ep", stage(1, vec![resource("/x", 1), resource("/x", 1)]))),
        ("stage", pb::CreateEndpointRequest { stage: None, ..create("ep", stage(1, vec![])) }),
    ];
    for (field, request) in cases {
        expect_invalid(a.create_endpoint(request).await, field, field);
    }
    let mut tagged = create("ep", stage(1, vec![resource("/x", 1)]));
    tagged.tags = (0..11).map(|i| pb::Tag { key: format!("k{i}"), value: String::new() }).collect();
    expect_invalid(a.create_endpoint(tagged).await, "tags", "11 tags");
    assert!(names(&mut a).await?.is_empty(), "a rejected create left an endpoint behind");

    // Unknown records, and the statistics window.
    let del = pb::DeleteEndpointRequest { project: TEAM_A.into(), name: "nope".into() };
    expect_code(a.delete_endpoint(del).await, Code::NotFound, "delete unknown endpoint");
    let del = pb::DeleteStageRequest { project: TEAM_A.into(), endpoint: "nope".into(), stage: "default".into() };
    expect_code(a.delete_stage(del).await, Code::NotFound, "delete unknown stage");
    let stats = pb::GetStageStatsRequest {
        project: TEAM_A.into(),
        endpoint: "nope".into(),
        stage: "default".into(),
        minutes: 1441,
    };
    expect_invalid(a.get_stage_stats(stats).await, "minutes", "more than a day of statistics");

    // Another project's token: refused before anything is looked at, nothing changes.
    let mut b = client(&sandbox, TEAM_B_TOKEN)?;
    expect_code(
        b.create_endpoint(create("ep", stage(1, vec![resource("/x", 1)]))).await,
        Code::PermissionDenied,
        "team-b creating in team-a",
    );
    let list = pb::ListEndpointsRequest { project: TEAM_A.into(), read: None };
    expect_code(b.list_endpoints(list).await, Code::PermissionDenied, "team-b listing team-a");
    assert!(names(&mut a).await?.is_empty());
    sandbox.shutdown().await
}

async fn stage_names(c: &mut Client, endpoint: &str) -> anyhow::Result<Vec<String>> {
    let req = pb::ListStagesRequest { project: TEAM_A.into(), endpoint: endpoint.into(), read: None };
    Ok(c.list_stages(req).await?.into_inner().stages.into_iter().map(|s| s.name).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_rules_and_a_model_in_use() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let image = pb::Image {
        name: "serving-onnx".into(),
        reference: "gantry/serving-sklearn-onnx:cpu".into(),
        core_type: "CPU".into(),
        framework: "PYTHON".into(),
        framework_version: String::new(),
        python_version: "3.11".into(),
    };
    expect_ok(sandbox.admin().catalog.put_image(pb::PutImageRequest { image: Some(image) }).await, "serving image");
    let mut models = sandbox.team_a().models;
    let model = pb::CreateModelRequest {
        project: TEAM_A.into(),
        name: "iris".into(),
        description: String::new(),
        tags: vec![],
        framework: "onnx".into(),
        framework_version: "1.17".into(),
        artifact_path: "file:///srv/models/iris".into(),
        from_training: String::new(),
        request_id: String::new(),
    };
    expect_ok(models.create_model(model).await, "model");
    let mut a = client(&sandbox, TEAM_A_TOKEN)?;
    let ep = expect_ok(a.create_endpoint(create("ep", stage(1, vec![resource("/inference", 1)]))).await, "create");
    assert_eq!(ep.default_stage, "default");
    assert!(ep.url.ends_with(&format!("/e/{}", ep.id)), "{}", ep.url);
    assert_eq!(ep.stages[0].resources[0].url, format!("{}/inference", ep.stages[0].url));

    let delete_model = pb::DeleteModelRequest { project: TEAM_A.into(), name: "iris".into() };
    let err = expect_code(models.delete_model(delete_model.clone()).await, Code::FailedPrecondition, "model in use");
    assert!(err.message().contains("ep"), "names the endpoint: {}", err.message());

    let canary = pb::CreateStageRequest {
        project: TEAM_A.into(),
        endpoint: "ep".into(),
        stage: Some(pb::StageSpec { name: "canary".into(), ..stage(1, vec![resource("/inference", 1)]) }),
        request_id: String::new(),
    };
    expect_ok(a.create_stage(canary).await, "canary");
    let del_ep = pb::DeleteEndpointRequest { project: TEAM_A.into(), name: "ep".into() };
    let err = expect_code(a.delete_endpoint(del_ep.clone()).await, Code::FailedPrecondition, "other stage remains");
    assert!(err.message().contains("canary"), "{}", err.message());
    let del_stage = |s: &str| pb::DeleteStageRequest { project: TEAM_A.into(), endpoint: "ep".into(), stage: s.into() };
    expect_code(a.delete_stage(del_stage("default")).await, Code::FailedPrecondition, "the default stage");

    // Another project's token cannot delete anything here.
    let mut b = client(&sandbox, TEAM_B_TOKEN)?;
    expect_code(b.delete_stage(del_stage("canary")).await, Code::PermissionDenied, "team-b deleting");
    assert_eq!(stage_names(&mut a, "ep").await?, ["canary", "default"]);

    expect_ok(a.delete_stage(del_stage("canary")).await, "delete canary");
    let probe = a.clone();
    eventually("the canary stage to go", || {
        let mut c = probe.clone();
        async move {
            let names = stage_names(&mut c, "ep").await?;
            anyhow::ensure!(names == ["default"], "stages {names:?}");
            Ok(())
        }
    })
    .await?;
    expect_ok(a.delete_endpoint(del_ep).await, "delete endpoint");
    eventually("the endpoint to go", || {
        let mut c = probe.clone();
        async move {
            let left = names(&mut c).await?;
            anyhow::ensure!(left.is_empty(), "endpoints {left:?}");
            Ok(())
        }
    })
    .await?;
    expect_ok(models.delete_model(delete_model).await, "the model is free again");
    sandbox.shutdown().await
}
