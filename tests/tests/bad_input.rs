//! Bad input at the API boundary: every limit of the guide is accepted at its edge and
//! rejected just past it with `InvalidArgument` whose message starts with the request's
//! field path; a rejected create leaves nothing behind; duplicate names and retried
//! requests behave.

use std::collections::BTreeSet;

use gantry_proto::v1::{self as pb, Tag};
use gantry_tests::*;
use tonic::Code;

/// What a half-applied create would change: names and ids of a project's records.
#[derive(Debug, PartialEq)]
struct Records {
    experiments: BTreeSet<(String, String)>,
    trainings: BTreeSet<(String, String)>,
}

async fn records(c: &mut Clients, project: &str) -> anyhow::Result<Records> {
    let experiments = c
        .experiments
        .list_experiments(pb::ListExperimentsRequest { project: project.into(), read: None })
        .await?
        .into_inner()
        .experiments;
    let trainings = c
        .trainings
        .list_trainings(pb::ListTrainingsRequest { project: project.into(), ..Default::default() })
        .await?
        .into_inner()
        .trainings;
    Ok(Records {
        experiments: experiments.into_iter().map(|e| (e.name, e.id)).collect(),
        trainings: trainings.into_iter().map(|t| (t.spec.map(|s| s.name).unwrap_or_default(), t.id)).collect(),
    })
}

/// Creates the training and checks it is stored exactly as sent.
async fn accepts(c: &mut Clients, spec: pb::TrainingSpec, what: &str) -> anyhow::Result<()> {
    let t = expect_ok(c.trainings.create_training(create_training(TEAM_A, spec.clone())).await, what);
    assert_eq!(t.spec.as_ref(), Some(&spec), "{what}: stored spec differs");
    let listed = records(c, TEAM_A).await?;
    assert!(listed.trainings.contains(&(spec.name.clone(), t.id)), "{what}: not listed");
    Ok(())
}

/// Expects `InvalidArgument` naming `field`, and no record created or removed.
async fn rejects(c: &mut Clients, request: pb::CreateTrainingRequest, field: &str, what: &str) -> anyhow::Result<()> {
    let before = records(c, TEAM_A).await?;
    expect_invalid(c.trainings.create_training(request).await, field, what);
    assert_eq!(records(c, TEAM_A).await?, before, "{what}: a rejected create left something behind");
    Ok(())
}

async fn rejects_spec(c: &mut Clients, spec: pb::TrainingSpec, field: &str, what: &str) -> anyhow::Result<()> {
    rejects(c, create_training(TEAM_A, spec), field, what).await
}

fn tags(n: usize) -> Vec<Tag> {
    (0..n).map(|i| Tag { key: format!("key-{i}"), value: format!("value-{i}") }).collect()
}

fn hyperparameters(n: usize) -> Vec<pb::KeyValue> {
    (0..n).map(|i| pb::KeyValue { key: format!("hp_{i}"), value: i.to_string() }).collect()
}

fn datasets(n: usize) -> Vec<pb::Dataset> {
    (0..n).map(|i| pb::Dataset { name: format!("ds_{i}"), path: format!("file:///srv/data/{i}") }).collect()
}

/// A valid name of exactly `len` characters.
fn name_of(len: usize) -> String {
    format!("n{}", "a".repeat(len - 1))
}

async fn sandbox_with_experiment() -> anyhow::Result<(Sandbox, Clients)> {
    let sandbox = Sandbox::start().await?;
    let mut a = sandbox.team_a();
    expect_ok(a.experiments.create_experiment(create_experiment(TEAM_A, "exp")).await, "create experiment");
    Ok((sandbox, a))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_limits_at_and_past_their_edges() -> anyhow::Result<()> {
    let (sandbox, mut a) = sandbox_with_experiment().await?;
    let base = |name: &str| cpu_training(name, "exp");
    type Edit = fn(&mut pb::TrainingSpec);

    let at_the_edge: Vec<(&str, Edit)> = vec![
        ("100 hyperparameters", |s| s.hyperparameters = hyperparameters(100)),
        ("10 tags", |s| s.tags = tags(10)),
        ("10 datasets", |s| s.datasets = datasets(10)),
        ("data storage 0 (not used)", |s| s.data_storage_size_gb = 0),
        ("data storage 10 GB", |s| s.data_storage_size_gb = 10),
        ("data storage 2040 GB", |s| s.data_storage_size_gb = 2040),
        ("timeout 1 minute", |s| s.timeout_minutes = 1),
        ("timeout 43200 minutes", |s| s.timeout_minutes = 43_200),
        ("instance count 64", |s| s.instance_count = 64),
        ("description of 255", |s| s.description = "d".repeat(255)),
        ("hyperparameter key of 64", |s| {
            s.hyperparameters = vec![pb::KeyValue { key: "k".repeat(64), value: "1".into() }]
        }),
        ("hyperparameter value of 1024", |s| {
            s.hyperparameters = vec![pb::KeyValue { key: "k".into(), value: "v".repeat(1024) }]
        }),
        ("tag key of 64, value of 255", |s| s.tags = vec![Tag { key: "k".repeat(64), value: "v".repeat(255) }]),
        ("dataset name of 36", |s| {
            s.datasets = vec![pb::Dataset { name: "d".repeat(36), path: "file:///srv/d".into() }]
        }),
    ];
    for (i, (what, edit)) in at_the_edge.into_iter().enumerate() {
        let mut spec = base(&format!("edge-{i}"));
        edit(&mut spec);
        accepts(&mut a, spec, what).await?;
    }
    accepts(&mut a, base(&name_of(50)), "name of 50").await?;
    let long_experiment = pb::TrainingSpec { create_experiment: true, ..cpu_training("edge-exp", &name_of(50)) };
    accepts(&mut a, long_experiment, "experiment name of 50").await?;

    let past_the_edge: Vec<(&str, &str, Edit)> = vec![
        ("101 hyperparameters", "spec.hyperparameters", |s| s.hyperparameters = hyperparameters(101)),
        ("11 tags", "spec.tags", |s| s.tags = tags(11)),
        ("11 datasets", "spec.datasets", |s| s.datasets = datasets(11)),
        ("data storage 2050 GB", "spec.data_storage_size_gb", |s| s.data_storage_size_gb = 2050),
        ("data storage 2041 GB", "spec.data_storage_size_gb", |s| s.data_storage_size_gb = 2041),
        ("data storage 15 GB", "spec.data_storage_size_gb", |s| s.data_storage_size_gb = 15),
        ("timeout 0", "spec.timeout_minutes", |s| s.timeout_minutes = 0),
        ("timeout 43201", "spec.timeout_minutes", |s| s.timeout_minutes = 43_201),
        ("instance count 0", "spec.instance_count", |s| s.instance_count = 0),
        ("instance count 65", "spec.instance_count", |s| s.instance_count = 65),
        ("nproc_per_node 0", "spec.nproc_per_node", |s| s.nproc_per_node = 0),
        ("name of 51", "spec.name", |s| s.name = name_of(51)),
        ("empty name", "spec.name", |s| s.name = String::new()),
        ("upper-case name", "spec.name", |s| s.name = "Mnist".into()),
        ("name starting with a digit", "spec.name", |s| s.name = "1mnist".into()),
        ("name with a space", "spec.name", |s| s.name = "mn ist".into()),
        ("name with a slash", "spec.name", |s| s.name = "mn/ist".into()),
        ("description of 256", "spec.description", |s| s.description = "d".repeat(256)),
        ("empty experiment", "spec.experiment", |s| s.experiment = String::new()),
        ("experiment of 51", "spec.experiment", |s| s.experiment = name_of(51)),
        ("empty image", "spec.image", |s| s.image = String::new()),
        ("empty instance type", "spec.instance_type", |s| s.instance_type = String::new()),
        ("empty entry point", "spec.entry_point", |s| s.entry_point = String::new()),
        ("entry point escaping", "spec.entry_point", |s| s.entry_point = "../train.py".into()),
        ("absolute entry point", "spec.entry_point", |s| s.entry_point = "/train.py".into()),
        ("hyperparameter key of 65", "spec.hyperparameters[0].key", |s| {
            s.hyperparameters = vec![pb::KeyValue { key: "k".repeat(65), value: "1".into() }]
        }),
        ("empty hyperparameter key", "spec.hyperparameters[0].key", |s| {
            s.hyperparameters = vec![pb::KeyValue { key: String::new(), value: "1".into() }]
        }),
        ("hyperparameter key like a flag", "spec.hyperparameters[0].key", |s| {
            s.hyperparameters = vec![pb::KeyValue { key: "--lr".into(), value: "1".into() }]
        }),
        ("hyperparameter value of 1025", "spec.hyperparameters[0].value", |s| {
            s.hyperparameters = vec![pb::KeyValue { key: "k".into(), value: "v".repeat(1025) }]
        }),
        ("duplicate hyperparameter", "spec.hyperparameters[1].key", |s| {
            s.hyperparameters = vec![
                pb::KeyValue { key: "lr".into(), value: "1".into() },
                pb::KeyValue { key: "lr".into(), value: "2".into() },
            ]
        }),
        ("tag key of 65", "spec.tags[0].key", |s| s.tags = vec![Tag { key: "k".repeat(65), value: String::new() }]),
        ("empty tag key", "spec.tags[0].key", |s| s.tags = vec![Tag { key: String::new(), value: "v".into() }]),
        ("tag value of 256", "spec.tags[0].value", |s| s.tags = vec![Tag { key: "k".into(), value: "v".repeat(256) }]),
        ("duplicate tag", "spec.tags[1].key", |s| {
            s.tags = vec![Tag { key: "k".into(), value: "1".into() }, Tag { key: "k".into(), value: "2".into() }]
        }),
        ("dataset name of 37", "spec.datasets[0].name", |s| {
            s.datasets = vec![pb::Dataset { name: "d".repeat(37), path: "file:///srv/d".into() }]
        }),
        ("dataset name with a space", "spec.datasets[0].name", |s| {
            s.datasets = vec![pb::Dataset { name: "my data".into(), path: "file:///srv/d".into() }]
        }),
        ("duplicate dataset name", "spec.datasets[1].name", |s| {
            s.datasets = vec![
                pb::Dataset { name: "train".into(), path: "file:///srv/a".into() },
                pb::Dataset { name: "train".into(), path: "file:///srv/b".into() },
            ]
        }),
    ];
    for (i, (what, field, edit)) in past_the_edge.into_iter().enumerate() {
        let mut spec = base(&format!("past-{i}"));
        edit(&mut spec);
        rejects_spec(&mut a, spec.clone(), field, what).await?;
        // Asking for the experiment inline must not leave it behind either.
        if spec.experiment.is_empty() || spec.experiment.len() > 50 {
            continue;
        }
        spec.experiment = format!("inline-{i}");
        spec.create_experiment = true;
        rejects_spec(&mut a, spec, field, &format!("{what} (create_experiment)")).await?;
    }
    rejects(
        &mut a,
        pb::CreateTrainingRequest { project: TEAM_A.into(), spec: None, request_id: String::new() },
        "spec",
        "no spec",
    )
    .await?;
    let mut admin = sandbox.admin();
    expect_invalid(
        admin.trainings.create_training(create_training("", base("no-project"))).await,
        "project",
        "empty project",
    );

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_paths_take_the_three_forms_and_name_the_field() -> anyhow::Result<()> {
    let (sandbox, mut a) = sandbox_with_experiment().await?;
    // The forms are what is tested here: every field may use every granted root.
    let roots = ["nas://nas-01:/exports", "nas://NAS_ID.2:/x", "file:///srv"];
    sandbox.grant(TEAM_A, &[], &roots).await?;
    type SetPath = fn(&mut pb::TrainingSpec, &str);
    let fields: [(&str, bool, SetPath); 5] = [
        ("spec.algorithm_path", true, |s, p| s.algorithm_path = p.into()),
        ("spec.output_path", true, |s, p| s.output_path = p.into()),
        ("spec.datasets[0].path", true, |s, p| s.datasets = vec![pb::Dataset { name: "train".into(), path: p.into() }]),
        ("spec.checkpoint_input_path", false, |s, p| s.checkpoint_input_path = p.into()),
        ("spec.checkpoint_output_path", false, |s, p| s.checkpoint_output_path = p.into()),
    ];

    let good = [
        "obs://objectstorage.example.com/container/path",
        "obs://s3.local:9000/bucket/algorithms/mnist",
        "obs://s3.local/bucket",
        "nas://nas-01:/exports/data",
        "nas://NAS_ID.2:/x/y",
        "file:///srv/gantry/data",
    ];
    for (i, path) in good.iter().enumerate() {
        let mut spec = cpu_training(&format!("good-{i}"), "exp");
        for (_, _, set) in &fields {
            set(&mut spec, path);
        }
        accepts(&mut a, spec, &format!("every path {path}")).await?;
    }

    let bad = [
        "s3://bucket/x",
        "https://s3.local/bucket/x",
        "obs://",
        "obs://host",
        "obs:///container/path",
        "obs://ho st/b/p",
        "obs://h/b/../../x",
        "nas://nas-01/data",
        "nas://:/data",
        "nas://nas 01:/data",
        "file://relative/path",
        "file:///a/../etc",
        "/plain/absolute/path",
        "relative/dir",
    ];
    for (field, required, set) in &fields {
        for (i, path) in bad.iter().chain(required.then_some(&"")).enumerate() {
            let mut spec = cpu_training(&format!("bad-{i}"), "exp");
            set(&mut spec, path);
            rejects_spec(&mut a, spec, field, &format!("{field} = {path:?}")).await?;
        }
    }
    // The error points at the offending dataset, not the first one.
    let mut spec = cpu_training("bad-third", "exp");
    spec.datasets = datasets(3);
    spec.datasets[2].path = "s3://x/y".into();
    rejects_spec(&mut a, spec, "spec.datasets[2].path", "third dataset").await?;

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_references_are_checked_and_leave_nothing_behind() -> anyhow::Result<()> {
    let (sandbox, mut a) = sandbox_with_experiment().await?;
    let cases: [(&str, &str, &str, &str); 4] = [
        ("unknown instance type", "spec.instance_type", CPU_IMAGE, "gpu-h100x8"),
        ("unknown image", "spec.image", "tensorflow-9", CPU_INSTANCE_TYPE),
        ("CPU image on a GPU instance type", "spec.image", CPU_IMAGE, GPU_INSTANCE_TYPE),
        ("GPU image on a CPU instance type", "spec.image", GPU_IMAGE, CPU_INSTANCE_TYPE),
    ];
    for (what, field, image, instance_type) in cases {
        let spec =
            pb::TrainingSpec { image: image.into(), instance_type: instance_type.into(), ..cpu_training("t", "exp") };
        rejects_spec(&mut a, spec.clone(), field, what).await?;
        let inline = pb::TrainingSpec { experiment: "fresh".into(), create_experiment: true, ..spec };
        rejects_spec(&mut a, inline, field, &format!("{what} (create_experiment)")).await?;
    }
    rejects_spec(&mut a, cpu_training("t", "missing"), "spec.experiment", "missing experiment").await?;
    expect_code(
        a.experiments
            .get_experiment(pb::GetExperimentRequest { project: TEAM_A.into(), name: "fresh".into(), read: None })
            .await,
        Code::NotFound,
        "inline experiment of a rejected training",
    );

    // The matching pairs are accepted, and create_experiment creates the experiment.
    accepts(&mut a, gpu_training("gpu", "exp", 1), "GPU image on GPU type").await?;
    accepts(&mut a, pb::TrainingSpec { create_experiment: true, ..cpu_training("cpu", "fresh") }, "inline experiment")
        .await?;
    let fresh = records(&mut a, TEAM_A).await?;
    assert!(fresh.experiments.iter().any(|(name, _)| name == "fresh"), "{fresh:?}");

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_limits_at_and_past_their_edges() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut a = sandbox.team_a();
    let request = |name: &str| create_experiment(TEAM_A, name);
    type Edit = fn(&mut pb::CreateExperimentRequest);

    let at_the_edge: Vec<(&str, Edit)> = vec![
        ("name of 50", |r| r.name = name_of(50)),
        ("name with digits, '-' and '_'", |r| r.name = "exp-2_b".into()),
        ("10 tags", |r| r.tags = tags(10)),
        ("description of 255", |r| r.description = "d".repeat(255)),
        ("tag key of 64, value of 255", |r| r.tags = vec![Tag { key: "k".repeat(64), value: "v".repeat(255) }]),
    ];
    for (i, (what, edit)) in at_the_edge.into_iter().enumerate() {
        let mut r = request(&format!("edge-{i}"));
        edit(&mut r);
        let e = expect_ok(a.experiments.create_experiment(r.clone()).await, what);
        assert_eq!((e.name, e.description, e.tags), (r.name, r.description, r.tags), "{what}");
    }

    let past_the_edge: Vec<(&str, &str, Edit)> = vec![
        ("name of 51", "name", |r| r.name = name_of(51)),
        ("empty name", "name", |r| r.name = String::new()),
        ("upper-case name", "name", |r| r.name = "Exp".into()),
        ("name starting with '-'", "name", |r| r.name = "-exp".into()),
        ("name with a dot", "name", |r| r.name = "exp.1".into()),
        ("11 tags", "tags", |r| r.tags = tags(11)),
        ("description of 256", "description", |r| r.description = "d".repeat(256)),
        ("tag key of 65", "tags[0].key", |r| r.tags = vec![Tag { key: "k".repeat(65), value: String::new() }]),
        ("blank tag key", "tags[0].key", |r| r.tags = vec![Tag { key: "  ".into(), value: String::new() }]),
        ("tag value of 256", "tags[0].value", |r| r.tags = vec![Tag { key: "k".into(), value: "v".repeat(256) }]),
        ("duplicate tag key", "tags[1].key", |r| {
            r.tags = vec![Tag { key: "k".into(), value: "1".into() }, Tag { key: "k".into(), value: "2".into() }]
        }),
        ("empty project", "project", |r| r.project = String::new()),
    ];
    let mut admin = sandbox.admin();
    for (i, (what, field, edit)) in past_the_edge.into_iter().enumerate() {
        let mut r = request(&format!("past-{i}"));
        edit(&mut r);
        let before = records(&mut a, TEAM_A).await?;
        expect_invalid(admin.experiments.create_experiment(r.clone()).await, field, &format!("admin: {what}"));
        if !r.project.is_empty() {
            expect_invalid(a.experiments.create_experiment(r).await, field, &format!("team-a: {what}"));
        }
        assert_eq!(records(&mut a, TEAM_A).await?, before, "{what}: a rejected create left something behind");
    }

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_names_and_retried_requests() -> anyhow::Result<()> {
    let (sandbox, mut a) = sandbox_with_experiment().await?;

    // Experiments.
    let with_id = |name: &str, request_id: &str| pb::CreateExperimentRequest {
        request_id: request_id.into(),
        ..create_experiment(TEAM_A, name)
    };
    let first = expect_ok(a.experiments.create_experiment(with_id("vision", "req-e1")).await, "create");
    let retry = expect_ok(a.experiments.create_experiment(with_id("vision", "req-e1")).await, "retry");
    assert_eq!(retry, first, "a retry returns the first record");
    expect_code(
        a.experiments.create_experiment(with_id("vision", "")).await,
        Code::AlreadyExists,
        "same name, no request id",
    );
    expect_code(
        a.experiments.create_experiment(with_id("vision", "req-e2")).await,
        Code::AlreadyExists,
        "same name, new request id",
    );
    expect_code(a.experiments.create_experiment(with_id("exp", "")).await, Code::AlreadyExists, "existing experiment");
    let after = records(&mut a, TEAM_A).await?;
    assert_eq!(after.experiments.iter().filter(|(n, _)| n == "vision").count(), 1);
    // Names are unique per project only.
    let other =
        expect_ok(sandbox.team_b().experiments.create_experiment(create_experiment(TEAM_B, "vision")).await, "team-b");
    assert_ne!(other.id, first.id);

    // Trainings.
    let with_id = |spec: pb::TrainingSpec, request_id: &str| pb::CreateTrainingRequest {
        request_id: request_id.into(),
        ..create_training(TEAM_A, spec)
    };
    let first = expect_ok(a.trainings.create_training(with_id(cpu_training("mnist", "exp"), "req-t1")).await, "create");
    let retry = expect_ok(a.trainings.create_training(with_id(cpu_training("mnist", "exp"), "req-t1")).await, "retry");
    assert_eq!((&retry.id, &retry.spec, retry.created_at_ms), (&first.id, &first.spec, first.created_at_ms));
    let before = records(&mut a, TEAM_A).await?;
    expect_code(
        a.trainings.create_training(with_id(cpu_training("mnist", "exp"), "")).await,
        Code::AlreadyExists,
        "same name, no request id",
    );
    expect_code(
        a.trainings.create_training(with_id(cpu_training("mnist", "exp"), "req-t2")).await,
        Code::AlreadyExists,
        "same name, new request id",
    );
    expect_code(
        a.trainings.create_training(with_id(gpu_training("mnist", "vision", 2), "")).await,
        Code::AlreadyExists,
        "same name, different spec",
    );
    assert_eq!(records(&mut a, TEAM_A).await?, before);

    // A retried create that also created its experiment inline creates both once.
    let inline = || pb::TrainingSpec { create_experiment: true, ..cpu_training("inline", "inline-exp") };
    let first = expect_ok(a.trainings.create_training(with_id(inline(), "req-t3")).await, "create inline");
    let retry = expect_ok(a.trainings.create_training(with_id(inline(), "req-t3")).await, "retry inline");
    assert_eq!((&retry.id, &retry.experiment_id), (&first.id, &first.experiment_id));
    let after = records(&mut a, TEAM_A).await?;
    assert_eq!(after.trainings.iter().filter(|(n, _)| n == "inline").count(), 1);
    assert_eq!(
        after.experiments.iter().filter(|(n, _)| n == "inline-exp").collect::<Vec<_>>(),
        [&("inline-exp".to_string(), first.experiment_id.clone())]
    );

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_type_limits() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut admin = sandbox.admin();
    let list = |admin: &Clients| {
        let mut catalog = admin.catalog.clone();
        async move {
            anyhow::Ok(
                catalog.list_instance_types(pb::ListInstanceTypesRequest::default()).await?.into_inner().instance_types,
            )
        }
    };
    let cpu =
        |name: &str| pb::InstanceType { name: name.into(), cpu_millis: 2000, memory_mib: 4096, ..Default::default() };
    let gpu = |name: &str, model: &str| pb::InstanceType { gpu_count: 1, gpu_model: model.into(), ..cpu(name) };

    for (what, it, core_type) in [
        ("name of 50", cpu(&name_of(50)), "CPU".to_string()),
        ("GPU model of 64", gpu("gpu-long-model", &"M".repeat(64)), "M".repeat(64)),
        ("GPU type", gpu("gpu-h100", "H100-80GB"), "H100-80GB".to_string()),
    ] {
        let put = expect_ok(
            admin.catalog.put_instance_type(pb::PutInstanceTypeRequest { instance_type: Some(it.clone()) }).await,
            what,
        );
        assert_eq!(put, pb::InstanceType { core_type: core_type.clone(), ..it.clone() }, "{what}");
        assert!(list(&admin).await?.contains(&put), "{what}: not listed");
    }

    let cases: Vec<(&str, &str, Option<pb::InstanceType>)> = vec![
        ("missing", "instance_type", None),
        ("name of 51", "instance_type.name", Some(cpu(&name_of(51)))),
        ("upper-case name", "instance_type.name", Some(cpu("Big"))),
        ("empty name", "instance_type.name", Some(cpu(""))),
        ("no CPU", "instance_type.cpu_millis", Some(pb::InstanceType { cpu_millis: 0, ..cpu("no-cpu") })),
        ("no memory", "instance_type.memory_mib", Some(pb::InstanceType { memory_mib: 0, ..cpu("no-mem") })),
        ("GPUs without a model", "instance_type.gpu_model", Some(pb::InstanceType { gpu_count: 2, ..cpu("no-model") })),
        (
            "model without GPUs",
            "instance_type.gpu_count",
            Some(pb::InstanceType { gpu_model: "A100-80GB".into(), ..cpu("no-gpus") }),
        ),
        ("CPU as GPU model", "instance_type.gpu_model", Some(gpu("cpu-gpu", "CPU"))),
        ("GPU model of 65", "instance_type.gpu_model", Some(gpu("long-model", &"M".repeat(65)))),
    ];
    for (what, field, instance_type) in cases {
        let before = list(&admin).await?;
        expect_invalid(
            admin.catalog.put_instance_type(pb::PutInstanceTypeRequest { instance_type }).await,
            field,
            what,
        );
        assert_eq!(list(&admin).await?, before, "{what}: catalog changed");
    }

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_limits() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut admin = sandbox.admin();
    let list = |admin: &Clients| {
        let mut catalog = admin.catalog.clone();
        async move { anyhow::Ok(catalog.list_images(pb::ListImagesRequest::default()).await?.into_inner().images) }
    };
    let image = |name: &str| pb::Image {
        name: name.into(),
        reference: "gantry/tf:2.15-gpu".into(),
        core_type: "GPU".into(),
        framework: "TENSORFLOW".into(),
        framework_version: "2.15".into(),
        python_version: "3.11".into(),
    };

    for (what, img) in [
        ("name of 50", image(&name_of(50))),
        ("reference of 255", pb::Image { reference: "r".repeat(255), ..image("long-ref") }),
        (
            "versions of 32",
            pb::Image { framework_version: "1".repeat(32), python_version: "3".repeat(32), ..image("long-versions") },
        ),
        (
            "PYTHON without a framework version",
            pb::Image {
                core_type: "CPU".into(),
                framework: "PYTHON".into(),
                framework_version: String::new(),
                ..image("plain-python")
            },
        ),
    ] {
        let put = expect_ok(admin.catalog.put_image(pb::PutImageRequest { image: Some(img.clone()) }).await, what);
        assert_eq!(put, img, "{what}");
        assert!(list(&admin).await?.contains(&put), "{what}: not listed");
    }

    let cases: Vec<(&str, &str, Option<pb::Image>)> = vec![
        ("missing", "image", None),
        ("name of 51", "image.name", Some(image(&name_of(51)))),
        ("name with a space", "image.name", Some(image("my image"))),
        ("empty reference", "image.reference", Some(pb::Image { reference: String::new(), ..image("x") })),
        ("reference of 256", "image.reference", Some(pb::Image { reference: "r".repeat(256), ..image("x") })),
        (
            "reference with a space",
            "image.reference",
            Some(pb::Image { reference: "gantry/tf 2".into(), ..image("x") }),
        ),
        ("core type TPU", "image.core_type", Some(pb::Image { core_type: "TPU".into(), ..image("x") })),
        ("empty core type", "image.core_type", Some(pb::Image { core_type: String::new(), ..image("x") })),
        ("framework JAX", "image.framework", Some(pb::Image { framework: "JAX".into(), ..image("x") })),
        (
            "no framework version",
            "image.framework_version",
            Some(pb::Image { framework_version: String::new(), ..image("x") }),
        ),
        (
            "framework version of 33",
            "image.framework_version",
            Some(pb::Image { framework_version: "1".repeat(33), ..image("x") }),
        ),
        ("no python version", "image.python_version", Some(pb::Image { python_version: String::new(), ..image("x") })),
        (
            "python version of 33",
            "image.python_version",
            Some(pb::Image { python_version: "3".repeat(33), ..image("x") }),
        ),
    ];
    for (what, field, image) in cases {
        let before = list(&admin).await?;
        expect_invalid(admin.catalog.put_image(pb::PutImageRequest { image }).await, field, what);
        assert_eq!(list(&admin).await?, before, "{what}: catalog changed");
    }

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_node_limits() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let admin = sandbox.admin();
    let mut agent = sandbox.anonymous();
    let node_ids = || {
        let mut nodes = admin.nodes.clone();
        async move {
            let nodes = nodes.list_nodes(pb::ListNodesRequest::default()).await?.into_inner().nodes;
            anyhow::Ok(nodes.into_iter().map(|n| n.id).collect::<BTreeSet<_>>())
        }
    };
    let gpu = |uuid: &str, model: &str| pb::Gpu { uuid: uuid.into(), model: model.into(), memory_mib: 81_920 };
    let with_gpus = |hostname: &str, gpus: Vec<pb::Gpu>| {
        let mut r = gpu_node(hostname, 0);
        if let Some(inv) = r.inventory.as_mut() {
            inv.gpus = gpus;
        }
        r
    };

    // Node names become certificate names and container labels: a DNS label's 63.
    let long_host = "h".repeat(63);
    for (what, request) in [
        ("hostname of 63", gpu_node(&long_host, 0)),
        ("CPU-only node", gpu_node("cpu-node", 0)),
        ("GPU uuid of 128, model of 64", with_gpus("long-gpu", vec![gpu(&"u".repeat(128), &"M".repeat(64))])),
    ] {
        let id = expect_ok(agent.agent.register(request.clone()).await, what).node_id;
        assert!(node_ids().await?.contains(&id), "{what}: not listed");
        let node = expect_ok(admin.nodes.clone().get_node(pb::GetNodeRequest { id, read: None }).await, what);
        assert_eq!((node.hostname, node.inventory), (request.hostname, request.inventory), "{what}");
    }

    // The join token admits a name once: registering again under it adds nothing and
    // changes nothing (the node itself re-registers with its certificate; see
    // node_identity.rs).
    let before = node_ids().await?;
    expect_code(agent.agent.register(gpu_node("cpu-node", 2)).await, Code::PermissionDenied, "re-register");
    assert_eq!(node_ids().await?, before);
    let id = "cpu-node".to_string();
    let node = expect_ok(admin.nodes.clone().get_node(pb::GetNodeRequest { id, read: None }).await, "unchanged");
    assert_eq!(node.inventory.map(|i| i.gpus.len()), Some(0));

    let cases: Vec<(&str, &str, pb::RegisterNodeRequest)> = vec![
        ("empty hostname", "hostname", gpu_node("", 1)),
        ("blank hostname", "hostname", gpu_node("   ", 1)),
        ("hostname of 64", "hostname", gpu_node(&"h".repeat(64), 1)),
        ("hostname with a slash", "hostname", gpu_node("a/b", 1)),
        ("hostname starting with a dot", "hostname", gpu_node(".hidden", 1)),
        ("no inventory", "inventory", pb::RegisterNodeRequest { inventory: None, ..gpu_node("n", 1) }),
        ("no CPU", "inventory.cpu_millis", {
            let mut r = gpu_node("n", 1);
            if let Some(i) = r.inventory.as_mut() {
                i.cpu_millis = 0;
            }
            r
        }),
        ("no memory", "inventory.memory_mib", {
            let mut r = gpu_node("n", 1);
            if let Some(i) = r.inventory.as_mut() {
                i.memory_mib = 0;
            }
            r
        }),
        ("empty GPU uuid", "inventory.gpus[0].uuid", with_gpus("n", vec![gpu("", "A100-80GB")])),
        ("GPU uuid of 129", "inventory.gpus[0].uuid", with_gpus("n", vec![gpu(&"u".repeat(129), "A100-80GB")])),
        ("empty GPU model", "inventory.gpus[1].model", with_gpus("n", vec![gpu("g0", "A100-80GB"), gpu("g1", "")])),
        ("GPU model of 65", "inventory.gpus[0].model", with_gpus("n", vec![gpu("g0", &"M".repeat(65))])),
        (
            "duplicate GPU uuid",
            "inventory.gpus[1].uuid",
            with_gpus("n", vec![gpu("g0", "A100-80GB"), gpu("g0", "A100-80GB")]),
        ),
    ];
    for (what, field, request) in cases {
        let before = node_ids().await?;
        expect_invalid(agent.agent.register(request).await, field, what);
        assert_eq!(node_ids().await?, before, "{what}: a node was registered");
    }

    sandbox.shutdown().await
}

/// Project names obey the resource name rules, whoever creates in them: the config
/// already refuses a token for project `Bad Project`, and a cluster token must not be
/// able to create one through the API either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_names_follow_the_name_rules() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut admin = sandbox.admin();
    for project in ["Bad Project/..", "team a", "Team-A", &name_of(51)] {
        expect_invalid(
            admin.experiments.create_experiment(create_experiment(project, "exp")).await,
            "project",
            &format!("experiment in project {project:?}"),
        );
        let spec = pb::TrainingSpec { create_experiment: true, ..cpu_training("t", "exp") };
        expect_invalid(
            admin.trainings.create_training(create_training(project, spec)).await,
            "project",
            &format!("training in project {project:?}"),
        );
    }
    sandbox.shutdown().await
}
