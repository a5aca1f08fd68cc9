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
