//! Storage grants at the API: only operators change them, a project reads only its own,
//! and a training naming any path outside its project's grants is refused with
//! `PermissionDenied` naming the field — with nothing created.

use gantry_proto::v1::{self as pb};
use gantry_tests::*;
use tonic::Code;

/// The team's trainings and experiments, by name.
async fn records(c: &mut Clients, project: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let req = pb::ListExperimentsRequest { project: project.into(), read: None };
    let experiments = c.experiments.list_experiments(req).await?.into_inner().experiments;
    let req = pb::ListTrainingsRequest { project: project.into(), ..Default::default() };
    let trainings = c.trainings.list_trainings(req).await?.into_inner().trainings;
    Ok((
        experiments.into_iter().map(|e| e.name).collect(),
        trainings.into_iter().filter_map(|t| t.spec.map(|s| s.name)).collect(),
    ))
}

fn grants(project: &str, read: &[&str], write: &[&str]) -> pb::SetStorageGrantsRequest {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    pb::SetStorageGrantsRequest {
        project: project.into(),
        grants: Some(pb::StorageGrants { read: strings(read), write: strings(write) }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_outside_the_grants_are_refused_and_nothing_is_created() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut a = sandbox.team_a();
    let mut admin = sandbox.admin();
    let before = records(&mut admin, TEAM_A).await?;

    // Each attack: the field it targets and the path. `create_experiment` is set, so a
    // half-applied create would leave an experiment behind.
    type Set = fn(&mut pb::TrainingSpec, &str);
    let attacks: [(&str, &str, Set); 9] = [
        ("spec.algorithm_path", "file:///etc", |s, p| s.algorithm_path = p.into()),
        ("spec.algorithm_path", "file:///var/run", |s, p| s.algorithm_path = p.into()),
        ("spec.datasets[0].path", "file:///proc/self", |s, p| {
            s.datasets = vec![pb::Dataset { name: "d".into(), path: p.into() }]
        }),
        ("spec.checkpoint_input_path", "file:///root/.local/share/gantry", |s, p| s.checkpoint_input_path = p.into()),
        ("spec.output_path", "file:///etc/cron.d", |s, p| s.output_path = p.into()),
        // Read access does not give write access.
        ("spec.output_path", "file:///srv/algorithms", |s, p| s.output_path = p.into()),
        ("spec.checkpoint_output_path", "file:///srv", |s, p| s.checkpoint_output_path = p.into()),
        // A sibling that merely shares the prefix is not beneath the root.
        ("spec.datasets[0].path", "file:///srvx/data", |s, p| {
            s.datasets = vec![pb::Dataset { name: "d".into(), path: p.into() }]
        }),
        ("spec.algorithm_path", "nas://nas-01:/team-b", |s, p| s.algorithm_path = p.into()),
    ];
    for (i, (field, path, set)) in attacks.iter().enumerate() {
        let mut spec = cpu_training(&format!("attack-{i}"), "fresh-exp");
        spec.create_experiment = true;
        set(&mut spec, path);
        let status = expect_code(
            a.trainings.create_training(create_training(TEAM_A, spec)).await,
            Code::PermissionDenied,
            &format!("{field} = {path}"),
        );
        assert!(status.message().starts_with(&format!("{field}: {path} is outside")), "{}", status.message());
    }
    // `..` and percent-encoded escapes are not even valid paths.
    for (i, path) in ["file:///srv/output/../../etc", "file:///srv/output/%2e%2e/%2e%2e/etc"].iter().enumerate() {
        let spec = pb::TrainingSpec { output_path: path.to_string(), ..cpu_training(&format!("esc-{i}"), "fresh-exp") };
        expect_invalid(a.trainings.create_training(create_training(TEAM_A, spec)).await, "spec.output_path", path);
    }
    assert_eq!(records(&mut admin, TEAM_A).await?, before, "a refused create left something behind");

    // The same form inside the grants goes through.
    let ok = pb::TrainingSpec { create_experiment: true, ..cpu_training("fine", "fresh-exp") };
    expect_ok(a.trainings.create_training(create_training(TEAM_A, ok)).await, "granted paths");

    // Revoking takes effect for the next create at once.
    expect_ok(admin.projects.set_storage_grants(grants(TEAM_A, &[], &[])).await, "revoke all");
    let again = cpu_training("after-revoke", "fresh-exp");
    expect_code(a.trainings.create_training(create_training(TEAM_A, again)).await, Code::PermissionDenied, "revoked");
    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_operators_grant_and_a_project_sees_only_its_own() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let (mut a, mut admin) = (sandbox.team_a(), sandbox.admin());
    let before = admin.projects.list_storage_grants(pb::ListStorageGrantsRequest::default()).await?.into_inner();

    // A project token cannot grant itself (or anyone) anything, nor list every project.
    expect_code(
        a.projects.set_storage_grants(grants(TEAM_A, &["file:///"], &[])).await,
        Code::PermissionDenied,
        "self-grant",
    );
    expect_code(a.projects.set_storage_grants(grants(TEAM_B, &[], &[])).await, Code::PermissionDenied, "revoke other");
    let list = a.projects.list_storage_grants(pb::ListStorageGrantsRequest::default()).await;
    expect_code(list, Code::PermissionDenied, "list all");
    let other = pb::GetStorageGrantsRequest { project: TEAM_B.into(), read: None };
    expect_code(a.projects.get_storage_grants(other).await, Code::PermissionDenied, "read other");
    let own = pb::GetStorageGrantsRequest { project: TEAM_A.into(), read: None };
    let own = expect_ok(a.projects.get_storage_grants(own).await, "read own").grants.unwrap_or_default();
    assert_eq!((own.read, own.write), (vec!["file:///srv".to_string()], vec!["file:///srv/output".to_string()]));

    // Bad grants name the field and the rule; system directories cannot be granted.
    let bad = [
        ("grants.read[0]", grants(TEAM_A, &["/srv"], &[])),
        ("grants.read[0]", grants(TEAM_A, &["obs://s3.local/bucket"], &[])),
        ("grants.write[0]", grants(TEAM_A, &[], &["file:///"])),
        ("grants.write[0]", grants(TEAM_A, &[], &["file:///etc"])),
        ("grants.read[1]", grants(TEAM_A, &["file:///srv", "file:///var/run"], &[])),
        ("grants.read[0]", grants(TEAM_A, &["file:///srv/../etc"], &[])),
        ("project", grants("Not A Project", &["file:///srv"], &[])),
    ];
    for (field, request) in bad {
        expect_invalid(admin.projects.set_storage_grants(request.clone()).await, field, &format!("{request:?}"));
    }
    let after = admin.projects.list_storage_grants(pb::ListStorageGrantsRequest::default()).await?.into_inner();
    assert_eq!(after, before, "a refused grant changed something");

    // An operator's grant is replicated and read back.
    let set = grants("team-c", &["nas://nas-01:/shared"], &["file:///srv/team-c"]);
    expect_ok(admin.projects.set_storage_grants(set).await, "grant team-c");
    let got = pb::GetStorageGrantsRequest { project: "team-c".into(), read: None };
    let got = expect_ok(admin.projects.get_storage_grants(got).await, "get team-c").grants.unwrap_or_default();
    assert_eq!(
        (got.read, got.write),
        (vec!["nas://nas-01:/shared".to_string()], vec!["file:///srv/team-c".to_string()])
    );
    sandbox.shutdown().await
}
