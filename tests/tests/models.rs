//! Models through the API of a real single-node scheduler: external artifacts within
//! the project's grants, models from a real training that ran on a real agent (only
//! once it is COMPLETE), the guide's limits, the delete rules both ways, and another
//! project's token. Every refused call is checked to have changed nothing.

use std::time::Duration;

use gantry_proto::v1::{self as pb, Tag, model_source};
use gantry_tests::nodes::NodeKit;
use gantry_tests::*;
use tonic::Code;

fn external(name: &str, artifact_path: &str) -> pb::CreateModelRequest {
    pb::CreateModelRequest {
        project: TEAM_A.into(),
        name: name.into(),
        description: "iris classifier".into(),
        tags: vec![Tag { key: "team".into(), value: "a".into() }],
        framework: "onnx".into(),
        framework_version: "1.17".into(),
        artifact_path: artifact_path.into(),
        from_training: String::new(),
        request_id: String::new(),
    }
}

fn from_training(name: &str, training: &str) -> pb::CreateModelRequest {
    pb::CreateModelRequest {
        framework: "pytorch".into(),
        framework_version: "2.1".into(),
        artifact_path: String::new(),
        from_training: training.into(),
        ..external(name, "")
    }
}

fn get(project: &str, name: &str) -> pb::GetModelRequest {
    pb::GetModelRequest { project: project.into(), name: name.into(), read: None }
}

fn list(project: &str) -> pb::ListModelsRequest {
    pb::ListModelsRequest { project: project.into(), read: None }
}

fn update(name: &str) -> pb::UpdateModelRequest {
    pb::UpdateModelRequest { project: TEAM_A.into(), name: name.into(), ..Default::default() }
}

fn delete(project: &str, name: &str) -> pb::DeleteModelRequest {
    pb::DeleteModelRequest { project: project.into(), name: name.into() }
}

fn tags(n: usize) -> Vec<Tag> {
    (0..n).map(|i| Tag { key: format!("k{i}"), value: "v".into() }).collect()
}

/// Team-a's models as the API lists them (a linearizable read).
async fn models(clients: &Clients) -> Vec<pb::Model> {
    expect_ok(clients.models.clone().list_models(list(TEAM_A)).await, "list models").models
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_models_obey_the_guides_limits_and_the_projects_grants() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut a = sandbox.team_a();

    let iris = expect_ok(a.models.create_model(external("iris", "file:///srv/models/iris")).await, "create iris");
    assert_eq!((iris.framework.as_str(), iris.framework_version.as_str()), ("ONNX", "1.17"));
    assert_eq!((iris.artifact_path.as_str(), iris.source.as_ref()), ("file:///srv/models/iris", None));
    assert!(iris.used_by_endpoints.is_empty());
    // At the limits: a 50-character name and 10 tags.
    let long = "m".repeat(50);
    let at_limits = pb::CreateModelRequest { tags: tags(10), ..external(&long, "file:///srv/models/long") };
    let created = expect_ok(a.models.create_model(at_limits).await, "a 50-character name with 10 tags");
    assert_eq!((created.name.len(), created.tags.len()), (50, 10));
    let before = models(&a).await;
    assert_eq!(before.len(), 2);

    // Past them, and malformed: InvalidArgument naming the field, nothing created.
    let bad: Vec<(pb::CreateModelRequest, &str)> = vec![
        (external(&"m".repeat(51), "file:///srv/models/x"), "name"),
        (external("", "file:///srv/models/x"), "name"),
        (external("Bad Name", "file:///srv/models/x"), "name"),
        (pb::CreateModelRequest { tags: tags(11), ..external("x", "file:///srv/models/x") }, "tags"),
        (pb::CreateModelRequest { framework: "caffe".into(), ..external("x", "file:///srv/models/x") }, "framework"),
        (pb::CreateModelRequest { framework: String::new(), ..external("x", "file:///srv/models/x") }, "framework"),
        (
            pb::CreateModelRequest { framework_version: String::new(), ..external("x", "file:///srv/models/x") },
            "framework_version",
        ),
        (pb::CreateModelRequest { description: "d".repeat(256), ..external("x", "file:///srv/m") }, "description"),
        (external("x", ""), "artifact_path"),
        (external("x", "s3://bucket/model"), "artifact_path"),
        (external("x", "/srv/models/x"), "artifact_path"),
        (external("x", "file://srv/models/x"), "artifact_path"),
        (external("x", "file:///srv/models/../../etc"), "artifact_path"),
        (external("x", "file:///srv/%2e%2e/etc"), "artifact_path"),
        (external("x", "nas://:/export"), "artifact_path"),
        (
            pb::CreateModelRequest { from_training: "t".into(), ..external("x", "file:///srv/models/x") },
            "artifact_path",
        ),
    ];
    for (request, field) in bad {
        let what = format!("create {:?} / {:?}", request.name, request.artifact_path);
        expect_invalid(a.models.create_model(request).await, field, &what);
    }
    assert_eq!(models(&a).await, before, "a refused create changed the models");

    // Outside the grants (team-a may read file:///srv only): denied, nothing created.
    for path in ["file:///etc/models", "file:///srvx/models", "nas://nas-1:/models"] {
        let denied = expect_code(a.models.create_model(external("outside", path)).await, Code::PermissionDenied, path);
        assert!(denied.message().starts_with("artifact_path:"), "{}", denied.message());
    }
    assert_eq!(models(&a).await, before);

    // Names are unique; a retried create (same request id) answers the first model.
    let dup = expect_code(
        a.models.create_model(external("iris", "file:///srv/models/other")).await,
        Code::AlreadyExists,
        "a duplicate name",
    );
    assert!(dup.message().contains("iris"), "{}", dup.message());
    let keyed = pb::CreateModelRequest { request_id: "req-1".into(), ..external("keyed", "file:///srv/models/k") };
    let first = expect_ok(a.models.create_model(keyed.clone()).await, "create keyed");
    let retry = expect_ok(a.models.create_model(keyed).await, "retry keyed");
    assert_eq!(first, retry);
    let before = models(&a).await;
    assert_eq!(before.len(), 3);

    // A training that does not exist.
    let missing = expect_code(a.models.create_model(from_training("x", "nope")).await, Code::NotFound, "no training");
    assert!(missing.message().contains("'nope'"), "{}", missing.message());
    assert_eq!(models(&a).await, before);

    // Updates: name, description, tags; refused ones change nothing.
    let clash = pb::UpdateModelRequest { new_name: Some("keyed".into()), ..update("iris") };
    expect_code(a.models.update_model(clash).await, Code::AlreadyExists, "rename onto another model");
    let bad_name = pb::UpdateModelRequest { new_name: Some("m".repeat(51)), ..update("iris") };
    expect_invalid(a.models.update_model(bad_name).await, "new_name", "a 51-character new name");
    let bad_tags = pb::UpdateModelRequest { tags: tags(11), set_tags: true, ..update("iris") };
    expect_invalid(a.models.update_model(bad_tags).await, "tags", "11 tags");
    let bad_desc = pb::UpdateModelRequest { description: Some("d".repeat(256)), ..update("iris") };
    expect_invalid(a.models.update_model(bad_desc).await, "description", "a 256-character description");
    expect_code(a.models.update_model(update("nope")).await, Code::NotFound, "update a missing model");
    assert_eq!(models(&a).await, before, "a refused update changed the models");

    let change = pb::UpdateModelRequest {
        new_name: Some("iris-v2".into()),
        description: Some("retrained".into()),
        tags: vec![Tag { key: "stage".into(), value: "prod".into() }],
        set_tags: true,
        ..update("iris")
    };
    let changed = expect_ok(a.models.update_model(change).await, "update iris");
    assert_eq!((changed.id.as_str(), changed.name.as_str()), (iris.id.as_str(), "iris-v2"));
    assert_eq!(changed.description, "retrained");
    assert_eq!(changed.tags, [Tag { key: "stage".into(), value: "prod".into() }]);
    assert_eq!((changed.artifact_path.as_str(), changed.framework.as_str()), ("file:///srv/models/iris", "ONNX"));
    expect_code(a.models.get_model(get(TEAM_A, "iris")).await, Code::NotFound, "the old name");
    assert_eq!(expect_ok(a.models.get_model(get(TEAM_A, "iris-v2")).await, "get renamed"), changed);
    let stale_read = pb::GetModelRequest { read: stale(), ..get(TEAM_A, "iris-v2") };
    assert_eq!(expect_ok(a.models.get_model(stale_read).await, "stale get"), changed);
    let cleared = pb::UpdateModelRequest { set_tags: true, ..update("iris-v2") };
    assert!(expect_ok(a.models.update_model(cleared).await, "clear tags").tags.is_empty());

    // Another project's token: no access to team-a's models, and team-a's name means
    // nothing in team-b.
    let mut b = sandbox.team_b();
    let before = models(&a).await;
    expect_code(b.models.get_model(get(TEAM_A, "iris-v2")).await, Code::PermissionDenied, "team-b gets");
    expect_code(b.models.list_models(list(TEAM_A)).await, Code::PermissionDenied, "team-b lists");
    expect_code(b.models.delete_model(delete(TEAM_A, "iris-v2")).await, Code::PermissionDenied, "team-b deletes");
    let rename = pb::UpdateModelRequest { new_name: Some("stolen".into()), ..update("iris-v2") };
    expect_code(b.models.update_model(rename).await, Code::PermissionDenied, "team-b renames");
    let into_a = external("planted", "file:///srv/models/p");
    expect_code(b.models.create_model(into_a).await, Code::PermissionDenied, "team-b creates in team-a");
    expect_code(b.models.get_model(get(TEAM_B, "iris-v2")).await, Code::NotFound, "team-a's name in team-b");
    expect_code(b.models.delete_model(delete(TEAM_B, "iris-v2")).await, Code::NotFound, "delete it in team-b");
    assert!(expect_ok(b.models.list_models(list(TEAM_B)).await, "team-b lists its own").models.is_empty());
    assert_eq!(models(&a).await, before, "another project's calls changed team-a's models");

    // Delete: gone, and the name is free again.
    expect_ok(a.models.delete_model(delete(TEAM_A, "iris-v2")).await, "delete");
    expect_code(a.models.get_model(get(TEAM_A, "iris-v2")).await, Code::NotFound, "get deleted");
    expect_code(a.models.delete_model(delete(TEAM_A, "iris-v2")).await, Code::NotFound, "delete again");
    expect_ok(a.models.create_model(external("iris-v2", "file:///srv/models/iris")).await, "reuse the name");

    sandbox.shutdown().await
}

/// Writes a model file, then waits until `release` appears in its `CTL` dataset.
const HELD_TRAINING: &str = r#"
import os, time
with open(os.path.join(os.environ["EM_MODEL_DIR"], "ranker.pt"), "w") as f:
    f.write("weights")
release = os.path.join(os.environ["EM_DATASET_CTL"], "release")
deadline = time.time() + 120
while not os.path.exists(release) and time.time() < deadline:
    time.sleep(0.05)
print("done", flush=True)
"#;

const RUN: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_is_made_only_from_a_complete_training_which_it_then_keeps() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    kit.add_agent("node-1", "").await?;
    let mut a = kit.sandbox().team_a();

    let algo = kit.algorithm("ranker", &[("train.py", HELD_TRAINING)])?;
    let ctl = kit.dir("ctl/ranker");
    let mut spec = kit.training("ranker", &algo, "train.py");
    spec.datasets = vec![pb::Dataset { name: "ctl".into(), path: kit.url("ctl/ranker") }];
    let output = spec.output_path.clone();
    kit.create(spec).await?;

    // Running: not a source yet, and the refusal names the status.
    let running = kit.wait_status("ranker", "RUNNING", RUN).await?;
    let refused = expect_code(
        a.models.create_model(from_training("ranker", "ranker")).await,
        Code::FailedPrecondition,
        "a model from a RUNNING training",
    );
    assert!(refused.message().contains("RUNNING"), "{}", refused.message());
    assert!(models(&a).await.is_empty(), "a refused create made a model");

    std::fs::write(ctl.join("release"), "")?;
    let complete = kit.wait_status("ranker", "COMPLETE", RUN).await?;
    assert_eq!(complete.id, running.id);
    assert!(kit.storage_root().join("out/ranker/ranker.pt").exists(), "the training saved its model");

    let model = expect_ok(a.models.create_model(from_training("ranker", "ranker")).await, "model from COMPLETE");
    assert_eq!(model.artifact_path, output, "the artifact is the training's output path");
    assert_eq!(model.framework, "PYTORCH");
    let listed = models(&a).await;
    assert_eq!(listed, std::slice::from_ref(&model));
    let Some(model_source::Kind::Training(source)) = listed[0].source.as_ref().and_then(|s| s.kind.clone()) else {
        panic!("the list shows no source training: {:?}", listed[0].source)
    };
    assert_eq!((source.training_name.as_str(), source.training_id.as_str()), ("ranker", complete.id.as_str()));

    // The training cannot go while the model exists; the refusal names the model.
    let del = || pb::DeleteTrainingRequest { project: TEAM_A.into(), name: "ranker".into() };
    let blocked = expect_code(a.trainings.delete_training(del()).await, Code::FailedPrecondition, "delete training");
    assert!(blocked.message().contains("'ranker'"), "{}", blocked.message());
    assert_eq!(kit.get("ranker").await?.status, "COMPLETE", "the refused delete removed the training");
    // Renamed, the model still holds it.
    let renamed = pb::UpdateModelRequest { new_name: Some("ranker-v1".into()), ..update("ranker") };
    expect_ok(a.models.update_model(renamed).await, "rename the model");
    let blocked = expect_code(a.trainings.delete_training(del()).await, Code::FailedPrecondition, "delete again");
    assert!(blocked.message().contains("'ranker-v1'"), "{}", blocked.message());

    expect_ok(a.models.delete_model(delete(TEAM_A, "ranker-v1")).await, "delete the model");
    expect_ok(a.trainings.delete_training(del()).await, "delete the training once its model is gone");
    expect_code(
        a.models.create_model(from_training("again", "ranker")).await,
        Code::NotFound,
        "a model from the deleted training",
    );
    assert!(models(&a).await.is_empty());

    kit.finish().await
}
