//! The model rules of [`super::models`], each checked on apply: unique names (rename
//! too), idempotent creates, only COMPLETE trainings as sources, grants on the
//! artifact, and the delete rules both ways. Every rejection leaves the state as it was.

use gantry_domain::*;

use super::invariants::check;
use super::tests::{cpu_catalog, create_t};
use super::{Applied, Command, CommandV1, ContainerPhase, Rejected, State, apply};

fn run(state: &mut State, c: CommandV1) -> Result<Applied, Rejected> {
    let index = state.applied_index + 1;
    apply(state, index, Command::V1(c))
}

/// Applies `c`, expecting a rejection that changes nothing but the applied index.
fn rejected(state: &mut State, c: CommandV1) -> Rejected {
    let mut expected = state.clone();
    let err = run(state, c.clone()).expect_err("a rejection");
    expected.applied_index = state.applied_index;
    assert_eq!(*state, expected, "the rejected {c:?} changed the state");
    err
}

fn model_spec(name: &str) -> ModelSpec {
    ModelSpec {
        name: name.into(),
        description: "iris classifier".into(),
        tags: vec![Tag { key: "team".into(), value: "a".into() }],
        framework: ModelFramework::Onnx,
        framework_version: "1.17".into(),
        artifact_path: "file:///models/iris".into(),
    }
}

fn create(name: &str, request_id: &str) -> CommandV1 {
    CommandV1::CreateModel {
        project: "p".into(),
        id: format!("mdl-{name}-{request_id}"),
        request_id: request_id.into(),
        spec: model_spec(name),
        source: ModelSource::External,
        now_ms: 10,
    }
}

fn from_training(name: &str, training_id: &str) -> CommandV1 {
    CommandV1::CreateModel {
        project: "p".into(),
        id: format!("mdl-{name}"),
        request_id: String::new(),
        // The API sends no artifact path for a training's model: apply sets it.
        spec: ModelSpec { artifact_path: String::new(), ..model_spec(name) },
        source: ModelSource::Training { training_id: training_id.into(), training_name: "t".into() },
        now_ms: 11,
    }
}

fn update(name: &str, new_name: Option<&str>) -> CommandV1 {
    CommandV1::UpdateModel {
        project: "p".into(),
        name: name.into(),
        new_name: new_name.map(Into::into),
        description: None,
        tags: None,
        now_ms: 20,
    }
}

fn delete(name: &str) -> CommandV1 {
    CommandV1::DeleteModel { project: "p".into(), name: name.into() }
}

/// A state with training `t` (workload `w`, output `file:///o`) placed on node `n1`.
fn placed_training() -> State {
    let mut state = cpu_catalog();
    let inventory = NodeInventory { cpu_millis: 4000, memory_mib: 8192, disk_mib: 0, gpus: vec![] };
    run(&mut state, CommandV1::RegisterNode { hostname: "n1".into(), address: String::new(), inventory, now_ms: 1 })
        .unwrap();
    run(&mut state, create_t("w", 1)).unwrap();
    let placement = Placement { assignments: vec![Assignment { node_id: "n1".into(), gpu_uuids: vec![] }] };
    run(&mut state, CommandV1::Place { workload_id: "w".into(), placement, now_ms: 2, ports: None }).unwrap();
    state
}

fn report(state: &mut State, phase: ContainerPhase) {
    let c = CommandV1::ReportContainer {
        node_id: "n1".into(),
        workload_id: "w".into(),
        rank: 0,
        phase,
        reason: String::new(),
        now_ms: 3,
    };
    run(state, c).unwrap();
}

fn complete_training() -> State {
    let mut state = placed_training();
    report(&mut state, ContainerPhase::Succeeded);
    assert_eq!(state.training("p", "t").unwrap().status, TrainingStatus::Complete);
    state
}

#[test]
fn an_external_model_is_created_once_per_request_and_names_are_unique() {
    let mut state = cpu_catalog();
    let Applied::Model(m) = run(&mut state, create("iris", "r1")).unwrap() else { panic!("a model") };
    assert_eq!((m.meta.name.as_str(), m.meta.id.as_str()), ("iris", "mdl-iris-r1"));
    assert_eq!((m.artifact_path.as_str(), &m.source), ("file:///models/iris", &ModelSource::External));
    assert_eq!(m.meta.tags, model_spec("iris").tags);
    // A retry of the same create answers the first model.
    assert_eq!(run(&mut state, create("iris", "r1")).unwrap(), Applied::Model(m.clone()));
    // Another create of the same name is refused, with or without a key.
    assert!(matches!(rejected(&mut state, create("iris", "r2")), Rejected::AlreadyExists { .. }));
    assert!(matches!(rejected(&mut state, create("iris", "")), Rejected::AlreadyExists { .. }));
    // Names are per project.
    let mut other = create("iris", "r3");
    if let CommandV1::CreateModel { project, .. } = &mut other {
        *project = "p2".into();
    }
    run(&mut state, other).unwrap();
    assert_eq!(state.model("p", "iris"), Some(&m));
    check(&state).unwrap();
}

#[test]
fn apply_rechecks_the_spec_and_the_grants() {
    let mut state = cpu_catalog();
    let mut bad = create("iris", "");
    if let CommandV1::CreateModel { spec, .. } = &mut bad {
        spec.name = "a".repeat(51);
    }
    assert!(matches!(rejected(&mut state, bad), Rejected::InvalidArgument { field, .. } if field == "name"));
    let mut bad = create("iris", "");
    if let CommandV1::CreateModel { spec, .. } = &mut bad {
        spec.artifact_path = "/plain".into();
    }
    assert!(matches!(rejected(&mut state, bad), Rejected::InvalidArgument { field, .. } if field == "artifact_path"));
    // Grants revoked: the artifact can no longer be read.
    run(&mut state, CommandV1::SetStorageGrants { project: "p".into(), grants: StorageGrants::default() }).unwrap();
    let Rejected::PermissionDenied { reason } = rejected(&mut state, create("iris", "")) else { panic!("denied") };
    assert!(reason.starts_with("artifact_path:"), "{reason}");
    // A read grant is enough.
    let read = StorageGrants { read: vec![StoragePath::File { path: "/models".into() }], write: vec![] };
    run(&mut state, CommandV1::SetStorageGrants { project: "p".into(), grants: read }).unwrap();
    run(&mut state, create("iris", "")).unwrap();
}

#[test]
fn a_model_is_made_only_from_an_existing_complete_training_with_its_output() {
    let mut state = placed_training();
    // Missing, or replaced by another training of the same name.
    let mut missing = from_training("m", "w");
    if let CommandV1::CreateModel { source: ModelSource::Training { training_name, .. }, .. } = &mut missing {
        *training_name = "nope".into();
    }
    assert!(matches!(rejected(&mut state, missing), Rejected::NotFound { what } if what.contains("'nope'")));
    assert!(matches!(rejected(&mut state, from_training("m", "other-id")), Rejected::NotFound { .. }));
    // Placed, then running: not COMPLETE, and the refusal names the status.
    let Rejected::FailedPrecondition { reason } = rejected(&mut state, from_training("m", "w")) else { panic!() };
    assert!(reason.contains("CREATE IN PROGRESS") && reason.contains("COMPLETE"), "{reason}");
    report(&mut state, ContainerPhase::Running);
    let Rejected::FailedPrecondition { reason } = rejected(&mut state, from_training("m", "w")) else { panic!() };
    assert!(reason.contains("RUNNING"), "{reason}");
    report(&mut state, ContainerPhase::Succeeded);
    let Applied::Model(m) = run(&mut state, from_training("m", "w")).unwrap() else { panic!("a model") };
    assert_eq!(m.artifact_path, "file:///o", "the training's output path");
    assert_eq!(m.source, ModelSource::Training { training_id: "w".into(), training_name: "t".into() });
    assert_eq!(state.models_from_training("p", "w"), ["m"]);
    check(&state).unwrap();
}

#[test]
fn a_failed_or_stopped_training_is_no_source() {
    let mut state = placed_training();
    report(&mut state, ContainerPhase::Failed);
    let Rejected::FailedPrecondition { reason } = rejected(&mut state, from_training("m", "w")) else { panic!() };
    assert!(reason.contains("FAIL TRAIN"), "{reason}");
}

#[test]
fn a_training_cannot_be_deleted_while_a_model_from_it_exists() {
    let mut state = complete_training();
    run(&mut state, from_training("m1", "w")).unwrap();
    run(&mut state, from_training("m2", "w")).unwrap();
    let del = || CommandV1::DeleteTraining { project: "p".into(), name: "t".into() };
    let Rejected::FailedPrecondition { reason } = rejected(&mut state, del()) else { panic!("refused") };
    assert!(reason.contains("'m1'") && reason.contains("'m2'"), "{reason}");
    run(&mut state, delete("m1")).unwrap();
    // A rename keeps the link.
    run(&mut state, update("m2", Some("renamed"))).unwrap();
    let Rejected::FailedPrecondition { reason } = rejected(&mut state, del()) else { panic!("refused") };
    assert!(reason.contains("'renamed'"), "{reason}");
    run(&mut state, delete("renamed")).unwrap();
    run(&mut state, del()).unwrap();
    assert!(state.training("p", "t").is_none());
    check(&state).unwrap();
}

#[test]
fn updates_rename_describe_and_retag_within_the_rules() {
    let mut state = cpu_catalog();
    run(&mut state, create("a", "")).unwrap();
    run(&mut state, create("b", "")).unwrap();
    assert!(matches!(rejected(&mut state, update("a", Some("b"))), Rejected::AlreadyExists { .. }));
    assert!(matches!(rejected(&mut state, update("zz", None)), Rejected::NotFound { .. }));
    assert!(matches!(
        rejected(&mut state, update("a", Some("Bad Name"))),
        Rejected::InvalidArgument { field, .. } if field == "new_name"
    ));
    let too_many: Vec<Tag> = (0..11).map(|i| Tag { key: format!("k{i}"), value: String::new() }).collect();
    let c = CommandV1::UpdateModel {
        project: "p".into(),
        name: "a".into(),
        new_name: None,
        description: Some("x".repeat(256)),
        tags: None,
        now_ms: 20,
    };
    assert!(matches!(rejected(&mut state, c), Rejected::InvalidArgument { field, .. } if field == "description"));
    let c = CommandV1::UpdateModel {
        project: "p".into(),
        name: "a".into(),
        new_name: None,
        description: None,
        tags: Some(too_many),
        now_ms: 20,
    };
    assert!(matches!(rejected(&mut state, c), Rejected::InvalidArgument { field, .. } if field == "tags"));

    let before = state.model("p", "a").unwrap().clone();
    let c = CommandV1::UpdateModel {
        project: "p".into(),
        name: "a".into(),
        new_name: Some("c".into()),
        description: Some("new".into()),
        tags: Some(vec![]),
        now_ms: 30,
    };
    let Applied::Model(m) = run(&mut state, c).unwrap() else { panic!("a model") };
    assert!(state.model("p", "a").is_none());
    assert_eq!(state.model("p", "c"), Some(&m));
    assert_eq!((m.meta.id, m.meta.description.as_str(), m.meta.tags.len()), (before.meta.id, "new", 0));
    assert_eq!((m.meta.created_at_ms, m.meta.updated_at_ms), (10, 30));
    // Renaming to its own name changes nothing but the time.
    run(&mut state, update("c", Some("c"))).unwrap();
    assert!(state.model("p", "c").is_some());
    check(&state).unwrap();
}

#[test]
fn deleting_a_missing_model_is_not_found_and_a_deleted_name_is_free_again() {
    let mut state = cpu_catalog();
    assert!(matches!(rejected(&mut state, delete("iris")), Rejected::NotFound { .. }));
    run(&mut state, create("iris", "r1")).unwrap();
    assert!(state.endpoints_using_model("p", "mdl-iris-r1").is_empty());
    run(&mut state, delete("iris")).unwrap();
    assert!(state.model("p", "iris").is_none());
    run(&mut state, create("iris", "r2")).unwrap();
}

#[test]
fn models_from_tunings_are_refused_until_tunings_exist() {
    let mut state = cpu_catalog();
    let mut c = create("iris", "");
    if let CommandV1::CreateModel { source, .. } = &mut c {
        *source = ModelSource::Tuning { tuning_id: "x".into(), tuning_name: "x".into(), trial_id: "1".into() };
    }
    assert!(matches!(rejected(&mut state, c), Rejected::InvalidArgument { .. }));
}
