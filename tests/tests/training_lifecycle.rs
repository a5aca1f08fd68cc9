//! A training's life as the API shows it, with agents registering nodes but no agent
//! running containers: waiting with an explicit reason, gang placement on the GPUs of a
//! fitting node, node accounting, stop and delete rules, and every create field read back.

use std::collections::BTreeSet;

use gantry_proto::v1::{self as pb, Tag};
use gantry_tests::*;
use tonic::Code;

const WAITING: &str = "CREATE REQUESTED";
const PLACED: &str = "CREATE IN PROGRESS";

fn get_training(project: &str, name: &str) -> pb::GetTrainingRequest {
    pb::GetTrainingRequest { project: project.into(), name: name.into(), read: None }
}

fn get_node(id: &str) -> pb::GetNodeRequest {
    pb::GetNodeRequest { id: id.into(), read: None }
}

fn statuses(t: &pb::Training) -> Vec<&str> {
    t.history.iter().map(|h| h.status.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_training_waits_with_a_reason_until_a_node_fits_it() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut a = sandbox.team_a();
    let mut admin = sandbox.admin();
    // Agents authenticate with the join token, not a bearer token.
    let mut agent = sandbox.anonymous();

    expect_ok(a.experiments.create_experiment(create_experiment(TEAM_A, "vision")).await, "create experiment");
    let created = expect_ok(
        a.trainings.create_training(create_training(TEAM_A, gpu_training("resnet", "vision", 1))).await,
        "create GPU training",
    );
    assert_eq!(created.status, WAITING);
    assert!(created.assignments.is_empty());
    assert_eq!((created.elapsed_ms, created.started_at_ms, created.ended_at_ms), (0, 0, 0));

    let no_node = wait_for_training(&a, TEAM_A, "resnet", "a reason while no node exists", |t| {
        t.status == WAITING && (t.status_reason.contains("no node") || t.status_reason.contains(GPU_MODEL))
    })
    .await?;
    assert!(no_node.assignments.is_empty());

    // One GPU where two are needed per container: still waiting, with a new reason.
    let small = expect_ok(agent.agent.register(gpu_node("gpu-small", 1)).await, "register 1-GPU node").node_id;
    let too_small = wait_for_training(&a, TEAM_A, "resnet", "a reason naming the GPUs it lacks", |t| {
        t.status_reason != no_node.status_reason && t.status_reason.contains("GPU")
    })
    .await?;
    assert_eq!(too_small.status, WAITING, "{}", too_small.status_reason);
    assert!(too_small.assignments.is_empty());

    // Four GPUs: it fits there, on two of them.
    let big = expect_ok(agent.agent.register(gpu_node("gpu-big", 4)).await, "register 4-GPU node").node_id;
    assert_ne!(big, small);
    let placed = wait_for_training(&a, TEAM_A, "resnet", "placed", |t| t.status == PLACED).await?;
    assert_eq!(placed.assignments.len(), 1, "{:?}", placed.assignments);
    let assignment = &placed.assignments[0];
    assert_eq!((assignment.rank, assignment.node_id.as_str()), (0, big.as_str()));
    let gpus: BTreeSet<&str> = assignment.gpu_uuids.iter().map(String::as_str).collect();
    assert_eq!(gpus.len(), 2, "two distinct GPUs: {:?}", assignment.gpu_uuids);
    let big_node = expect_ok(admin.nodes.get_node(get_node(&big)).await, "get big node");
    let inventory: BTreeSet<&str> = big_node.inventory.iter().flat_map(|i| &i.gpus).map(|g| g.uuid.as_str()).collect();
    assert!(gpus.is_subset(&inventory), "{gpus:?} not all GPUs of {big}: {inventory:?}");
    assert_eq!(statuses(&placed), [WAITING, PLACED]);
    assert_eq!((placed.elapsed_ms, placed.started_at_ms), (0, 0), "not RUNNING yet");

    // The node accounts for it.
    for node in [
        big_node,
        expect_ok(admin.nodes.get_node(pb::GetNodeRequest { id: big.clone(), read: stale() }).await, "stale get node"),
    ] {
        let allocated: BTreeSet<&str> = node.allocated_gpus.iter().map(String::as_str).collect();
        assert_eq!(allocated, gpus);
        assert_eq!(
            node.allocated,
            Some(pb::NodeResources { cpu_millis: GPU_CPU_MILLIS, memory_mib: GPU_MEMORY_MIB, gpus: 2 })
        );
        assert_eq!(
            node.free,
            Some(pb::NodeResources {
                cpu_millis: 32_000 - GPU_CPU_MILLIS,
                memory_mib: 128 * 1024 - GPU_MEMORY_MIB,
                gpus: 2
            })
        );
        assert_eq!(node.workloads, std::slice::from_ref(&placed.id));
        assert_eq!(node.status, "READY");
    }
    let small_node = expect_ok(admin.nodes.get_node(get_node(&small)).await, "get small node");
    assert!(small_node.allocated_gpus.is_empty() && small_node.workloads.is_empty());
    assert_eq!(small_node.free.map(|f| f.gpus), Some(1));
    let listed = expect_ok(admin.nodes.list_nodes(pb::ListNodesRequest::default()).await, "list nodes").nodes;
    assert_eq!(
        listed.iter().map(|n| n.id.as_str()).collect::<BTreeSet<_>>(),
        BTreeSet::from([big.as_str(), small.as_str()])
    );

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_is_placed_whole_or_not_at_all() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut a = sandbox.team_a();
    let mut admin = sandbox.admin();
    let mut agent = sandbox.anonymous();

    // Room for two containers of 2 GPUs; the gang needs three.
    let big = expect_ok(agent.agent.register(gpu_node("gpu-big", 4)).await, "register 4-GPU node").node_id;
    expect_ok(a.experiments.create_experiment(create_experiment(TEAM_A, "ddp")).await, "create experiment");
    expect_ok(
        a.trainings.create_training(create_training(TEAM_A, gpu_training("gang", "ddp", 3))).await,
        "create gang",
    );
    let waiting = wait_for_training(&a, TEAM_A, "gang", "a reason the gang does not fit", |t| {
        !t.status_reason.is_empty() && t.status_reason != "waiting for placement"
    })
    .await?;
    assert_eq!(waiting.status, WAITING, "{}", waiting.status_reason);
    assert!(waiting.assignments.is_empty(), "partial placement: {:?}", waiting.assignments);
    let node = expect_ok(admin.nodes.get_node(get_node(&big)).await, "get node");
    assert!(node.allocated_gpus.is_empty(), "GPUs held by a gang that is not placed: {:?}", node.allocated_gpus);
    assert_eq!(node.free.map(|f| f.gpus), Some(4));

    // Two more GPUs elsewhere: all three containers are placed together.
    let extra = expect_ok(agent.agent.register(gpu_node("gpu-extra", 2)).await, "register 2-GPU node").node_id;
    let placed = wait_for_training(&a, TEAM_A, "gang", "placed", |t| t.status == PLACED).await?;
    assert_eq!(placed.assignments.iter().map(|a| a.rank).collect::<Vec<_>>(), [0, 1, 2]);
    let all: BTreeSet<&str> = placed.assignments.iter().flat_map(|a| &a.gpu_uuids).map(String::as_str).collect();
    assert_eq!(all.len(), 6, "six distinct GPUs: {:?}", placed.assignments);
    for a in &placed.assignments {
        assert_eq!(a.gpu_uuids.len(), 2);
        assert!(a.gpu_uuids.iter().all(|g| g.starts_with(&format!("GPU-{}-", a.node_id))), "{a:?}");
    }
    let on = |id: &str| placed.assignments.iter().filter(|a| a.node_id == id).count();
    assert_eq!((on(&big), on(&extra)), (2, 1));
    for id in [&big, &extra] {
        let node = expect_ok(admin.nodes.get_node(get_node(id)).await, "get node");
        assert_eq!(node.free.map(|f| f.gpus), Some(0), "{id}");
        assert_eq!(node.workloads, std::slice::from_ref(&placed.id));
    }

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_delete_follow_the_lifecycle() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let mut a = sandbox.team_a();
    let mut admin = sandbox.admin();
    let big = expect_ok(sandbox.anonymous().agent.register(gpu_node("gpu-big", 4)).await, "register node").node_id;
    expect_ok(a.experiments.create_experiment(create_experiment(TEAM_A, "exp")).await, "create experiment");
    expect_ok(
        a.trainings.create_training(create_training(TEAM_A, gpu_training("placed", "exp", 1))).await,
        "create placed",
    );
    let placed = wait_for_training(&a, TEAM_A, "placed", "placed", |t| t.status == PLACED).await?;
    // Three containers of 2 GPUs never fit in the 2 GPUs left.
    let queued = expect_ok(
        a.trainings.create_training(create_training(TEAM_A, gpu_training("queued", "exp", 3))).await,
        "create queued",
    );
    assert_eq!(queued.status, WAITING);

    let delete = |name: &str| pb::DeleteTrainingRequest { project: TEAM_A.into(), name: name.into() };
    let stop = |name: &str| pb::StopTrainingRequest { project: TEAM_A.into(), name: name.into() };
    expect_code(
        a.trainings.delete_training(delete("queued")).await,
        Code::FailedPrecondition,
        "delete CREATE REQUESTED",
    );
    expect_code(
        a.trainings.delete_training(delete("placed")).await,
        Code::FailedPrecondition,
        "delete CREATE IN PROGRESS",
    );

    // A placed training stops asynchronously and keeps its GPUs until it has stopped.
    let stopping = expect_ok(a.trainings.stop_training(stop("placed")).await, "stop placed");
    assert_eq!(stopping.status, "STOP IN PROGRESS");
    let again = expect_ok(a.trainings.stop_training(stop("placed")).await, "stop placed again");
    assert_eq!(again.status, "STOP IN PROGRESS");
    let got = expect_ok(a.trainings.get_training(get_training(TEAM_A, "placed")).await, "get placed");
    assert_eq!(got.status, "STOP IN PROGRESS");
    assert_eq!(got.assignments, placed.assignments);
    let node = expect_ok(admin.nodes.get_node(get_node(&big)).await, "get node");
    assert_eq!(node.allocated_gpus.len(), 2, "GPUs released before the containers stopped");
    expect_code(
        a.trainings.delete_training(delete("placed")).await,
        Code::FailedPrecondition,
        "delete STOP IN PROGRESS",
    );

    // A pending training has nothing running: it is STOPPED at once.
    let stopped = expect_ok(a.trainings.stop_training(stop("queued")).await, "stop queued");
    assert_eq!(stopped.status, "STOPPED");
    assert_eq!(statuses(&stopped), [WAITING, "STOP IN PROGRESS", "STOPPED"]);
    assert!(stopped.ended_at_ms >= stopped.created_at_ms && stopped.ended_at_ms > 0);
    assert_eq!((stopped.elapsed_ms, stopped.started_at_ms), (0, 0), "never ran");
    assert!(stopped.assignments.is_empty());
    let got = expect_ok(a.trainings.get_training(get_training(TEAM_A, "queued")).await, "get queued");
    assert_eq!(got.status, "STOPPED");
    expect_code(a.trainings.stop_training(stop("queued")).await, Code::FailedPrecondition, "stop STOPPED");

    let delete_exp = |name: &str| pb::DeleteExperimentRequest { project: TEAM_A.into(), name: name.into() };
    let get_exp = |name: &str| pb::GetExperimentRequest { project: TEAM_A.into(), name: name.into(), read: None };
    expect_code(
        a.experiments.delete_experiment(delete_exp("exp")).await,
        Code::FailedPrecondition,
        "delete experiment with trainings",
    );
    assert_eq!(expect_ok(a.experiments.get_experiment(get_exp("exp")).await, "get experiment").training_count, 2);

    expect_ok(a.trainings.delete_training(delete("queued")).await, "delete STOPPED");
    expect_code(a.trainings.get_training(get_training(TEAM_A, "queued")).await, Code::NotFound, "get deleted");
    expect_code(a.trainings.delete_training(delete("queued")).await, Code::NotFound, "delete deleted");
    let left = expect_ok(
        a.trainings.list_trainings(pb::ListTrainingsRequest { project: TEAM_A.into(), ..Default::default() }).await,
        "list",
    );
    assert_eq!(
        left.trainings.iter().map(|t| t.spec.as_ref().map(|s| s.name.as_str())).collect::<Vec<_>>(),
        [Some("placed")]
    );
    assert_eq!(expect_ok(a.experiments.get_experiment(get_exp("exp")).await, "get experiment").training_count, 1);
    expect_code(
        a.experiments.delete_experiment(delete_exp("exp")).await,
        Code::FailedPrecondition,
        "delete experiment with a training",
    );
    let node = expect_ok(admin.nodes.get_node(get_node(&big)).await, "get node");
    assert_eq!(node.allocated_gpus.len(), 2, "only the stopping training holds GPUs");

    // An experiment without trainings goes.
    expect_ok(a.experiments.create_experiment(create_experiment(TEAM_A, "empty")).await, "create empty experiment");
    expect_ok(a.experiments.delete_experiment(delete_exp("empty")).await, "delete empty experiment");
    expect_code(a.experiments.get_experiment(get_exp("empty")).await, Code::NotFound, "get deleted experiment");

    sandbox.shutdown().await
}

fn tag(key: &str, value: &str) -> Tag {
    Tag { key: key.into(), value: value.into() }
}

fn full_spec() -> pb::TrainingSpec {
    let kv = |key: &str, value: &str| pb::KeyValue { key: key.into(), value: value.into() };
    let ds = |name: &str, path: &str| pb::Dataset { name: name.into(), path: path.into() };
    pb::TrainingSpec {
        name: "resnet50".into(),
        description: "resnet-50 on an imagenet subset".into(),
        tags: vec![tag("team", "vision"), tag("cost-center", "42")],
        experiment: "vision".into(),
        create_experiment: false,
        algorithm_path: "obs://s3.local:9000/algorithms/resnet".into(),
        entry_point: "src/train.py".into(),
        hyperparameters: vec![kv("lr", "0.01"), kv("epochs", "10"), kv("optimizer", "adam")],
        image: CPU_IMAGE.into(),
        instance_type: "cpu-medium".into(),
        instance_count: 2,
        nproc_per_node: 2,
        use_torchrun: true,
        datasets: vec![
            ds("train", "nas://nas-01:/datasets/imagenet/train"),
            ds("val", "obs://s3.local:9000/datasets/imagenet-val"),
            ds("test", "file:///srv/datasets/test"),
        ],
        checkpoint_input_path: "file:///srv/checkpoints/resnet-in".into(),
        output_path: "nas://nas-01:/outputs/resnet".into(),
        checkpoint_output_path: "obs://s3.local:9000/checkpoints/resnet".into(),
        data_storage_size_gb: 100,
        timeout_minutes: 720,
        use_log: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_list_return_every_field_given_at_create() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    sandbox
        .grant(TEAM_A, &["nas://nas-01:/datasets", "file:///srv"], &["nas://nas-01:/outputs", "file:///srv/output"])
        .await?;
    let mut a = sandbox.team_a();

    let exp_request = pb::CreateExperimentRequest {
        project: TEAM_A.into(),
        name: "vision".into(),
        description: "image models".into(),
        tags: vec![tag("owner", "alice"), tag("tier", "")],
        request_id: String::new(),
    };
    let exp = expect_ok(a.experiments.create_experiment(exp_request.clone()).await, "create experiment");
    let check_exp = |e: &pb::Experiment, trainings: u32, what: &str| {
        assert_eq!(
            (e.project.as_str(), e.name.as_str(), e.description.as_str(), &e.tags),
            (TEAM_A, "vision", "image models", &exp_request.tags),
            "{what}"
        );
        assert_eq!(
            (e.id.as_str(), e.status.as_str(), e.training_count),
            (exp.id.as_str(), "ACTIVE", trainings),
            "{what}"
        );
        assert!(e.created_at_ms > 0 && e.updated_at_ms >= e.created_at_ms, "{what}");
    };
    check_exp(&exp, 0, "create response");
    assert!(exp.id.starts_with("exp-"));

    let spec = full_spec();
    let created =
        expect_ok(a.trainings.create_training(create_training(TEAM_A, spec.clone())).await, "create training");
    assert!(created.id.starts_with("trn-"));
    let check = |t: &pb::Training, what: &str| {
        assert_eq!(t.spec.as_ref(), Some(&spec), "{what}: spec");
        assert_eq!(
            (t.id.as_str(), t.project.as_str(), t.experiment_id.as_str(), t.created_at_ms),
            (created.id.as_str(), TEAM_A, exp.id.as_str(), created.created_at_ms),
            "{what}"
        );
        assert_eq!(t.status, WAITING, "{what}");
        assert_eq!((t.elapsed_ms, t.started_at_ms, t.ended_at_ms), (0, 0, 0), "{what}: not RUNNING yet");
        assert_eq!(t.history.first().map(|h| h.status.as_str()), Some(WAITING), "{what}");
        assert!(t.assignments.is_empty(), "{what}");
    };
    check(&created, "create response");
    assert!(created.created_at_ms > 0 && created.updated_at_ms >= created.created_at_ms);

    for read in [None, stale()] {
        let what = if read.is_some() { "stale" } else { "linearizable" };
        let got = a
            .trainings
            .get_training(pb::GetTrainingRequest { project: TEAM_A.into(), name: "resnet50".into(), read })
            .await;
        check(&expect_ok(got, what), &format!("{what} get"));
        for experiment in ["", "vision"] {
            let list = a
                .trainings
                .list_trainings(pb::ListTrainingsRequest {
                    project: TEAM_A.into(),
                    experiment: experiment.into(),
                    read,
                })
                .await;
            let list = expect_ok(list, what).trainings;
            assert_eq!(list.len(), 1, "{what} list {experiment:?}");
            check(&list[0], &format!("{what} list {experiment:?}"));
        }
        let got = a
            .experiments
            .get_experiment(pb::GetExperimentRequest { project: TEAM_A.into(), name: "vision".into(), read })
            .await;
        check_exp(&expect_ok(got, what), 1, &format!("{what} get experiment"));
        let list = a.experiments.list_experiments(pb::ListExperimentsRequest { project: TEAM_A.into(), read }).await;
        let list = expect_ok(list, what).experiments;
        assert_eq!(list.len(), 1, "{what} list experiments");
        check_exp(&list[0], 1, &format!("{what} list experiments"));
    }

    // The experiment filter: another experiment lists nothing, an unknown one is NotFound.
    expect_ok(a.experiments.create_experiment(create_experiment(TEAM_A, "other")).await, "create other");
    let other = a
        .trainings
        .list_trainings(pb::ListTrainingsRequest { project: TEAM_A.into(), experiment: "other".into(), read: None })
        .await;
    assert!(expect_ok(other, "list other").trainings.is_empty());
    let unknown = a
        .trainings
        .list_trainings(pb::ListTrainingsRequest { project: TEAM_A.into(), experiment: "nope".into(), read: None })
        .await;
    expect_code(unknown, Code::NotFound, "list by unknown experiment");

    // An experiment created inline is a real, ACTIVE experiment the training belongs to.
    let inline = pb::TrainingSpec { create_experiment: true, ..cpu_training("inline", "inline-exp") };
    let t = expect_ok(a.trainings.create_training(create_training(TEAM_A, inline.clone())).await, "create inline");
    assert_eq!(t.spec.as_ref(), Some(&inline));
    let e = a
        .experiments
        .get_experiment(pb::GetExperimentRequest { project: TEAM_A.into(), name: "inline-exp".into(), read: stale() })
        .await;
    let e = expect_ok(e, "get inline experiment");
    assert_eq!((e.status.as_str(), e.training_count, e.id.as_str()), ("ACTIVE", 1, t.experiment_id.as_str()));

    sandbox.shutdown().await
}
