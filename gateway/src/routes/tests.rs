use gantry_proto::v1;
use http::Method;

use super::*;

fn resource(id: &str, path: &str, model: &str, backends: &[&str]) -> v1::ResourceRoute {
    v1::ResourceRoute {
        resource_id: id.into(),
        resource_path: path.into(),
        model: model.into(),
        backends: backends.iter().map(|b| b.to_string()).collect(),
    }
}

fn stage(endpoint: &str, stage_id: &str, is_default: bool, resources: Vec<v1::ResourceRoute>) -> v1::StageRoutes {
    v1::StageRoutes {
        project: "p1".into(),
        endpoint_id: endpoint.into(),
        endpoint: format!("{endpoint}-name"),
        stage_id: stage_id.into(),
        stage: format!("{stage_id}-name"),
        is_default,
        resources,
        config_version: 7,
        use_log: false,
    }
}

fn wire(version: u64, stages: Vec<v1::StageRoutes>) -> v1::RouteTable {
    v1::RouteTable { version, stages, ..Default::default() }
}

fn sample() -> RouteTable {
    let (t, errors) = RouteTable::compile(
        &wire(
            1,
            vec![
                stage(
                    "ep1",
                    "st1",
                    true,
                    vec![
                        resource("r1", "/inference", "iris", &["a:1"]),
                        resource("r2", "/inference/big", "big", &["b:1"]),
                        resource("r3", "/other", "other", &[]),
                    ],
                ),
                stage("ep1", "st2", false, vec![resource("r4", "/inference", "iris2", &["c:1"])]),
            ],
        ),
        None,
    );
    assert!(errors.is_empty(), "{errors:?}");
    t
}

fn upstream(t: &RouteTable, method: Method, path: &str) -> Result<(String, String, String), RouteError> {
    t.route(&method, path).map(|r| (r.stage.stage_id.clone(), r.resource().resource_id.clone(), r.upstream_path))
}

#[test]
fn endpoint_url_goes_to_the_default_stage_as_v1_predict() {
    let t = sample();
    assert_eq!(
        upstream(&t, Method::POST, "/e/ep1/inference"),
        Ok(("st1".into(), "r1".into(), "/v1/models/iris:predict".into()))
    );
    // A trailing slash is the same resource.
    assert_eq!(upstream(&t, Method::POST, "/e/ep1/inference/").map(|u| u.2), Ok("/v1/models/iris:predict".into()));
}

#[test]
fn stage_url_goes_to_that_stage() {
    let t = sample();
    assert_eq!(
        upstream(&t, Method::POST, "/s/st2/inference"),
        Ok(("st2".into(), "r4".into(), "/v1/models/iris2:predict".into()))
    );
    assert_eq!(upstream(&t, Method::POST, "/s/st1/inference").map(|u| u.1), Ok("r1".into()));
}

#[test]
fn longest_resource_path_wins_on_segment_boundaries() {
    let t = sample();
    assert_eq!(upstream(&t, Method::POST, "/e/ep1/inference/big").map(|u| u.1), Ok("r2".into()));
    assert_eq!(
        upstream(&t, Method::POST, "/e/ep1/inference/big/v2/models/big/infer").map(|u| (u.1, u.2)),
        Ok(("r2".into(), "/v2/models/big/infer".into()))
    );
    // "/inferencex" is not under "/inference"; "/inference/bigger" is not under "/inference/big".
    assert_eq!(upstream(&t, Method::POST, "/e/ep1/inferencex"), Err(RouteError::NotFound));
    assert_eq!(upstream(&t, Method::POST, "/e/ep1/inference/bigger"), Err(RouteError::NotFound));
}

#[test]
fn v2_paths_are_forwarded_as_is_with_any_method() {
    let t = sample();
    let r = t.route(&Method::GET, "/e/ep1/inference/v2/health/ready").unwrap();
    assert_eq!((r.upstream_path.as_str(), r.action), ("/v2/health/ready", "health"));
    let r = t.route(&Method::POST, "/s/st2/inference/v2/models/iris2/infer").unwrap();
    assert_eq!((r.upstream_path.as_str(), r.action), ("/v2/models/iris2/infer", "infer"));
    let r = t.route(&Method::GET, "/s/st2/inference/v2/models/iris2").unwrap();
    assert_eq!(r.action, "metadata");
}

#[test]
fn other_paths_are_not_found() {
    let t = sample();
    for path in [
        "/",
        "",
        "/e",
        "/e/",
        "/e/ep1",
        "/e/ep1/",
        "/e/nope/inference",
        "/s/nope/inference",
        "/x/ep1/inference",
        "/e/ep1/inference/v1/models/iris:predict",
        "/e/ep1/inference/v2",
        "/e/ep1/inference/v2/../../admin",
        "/e/ep1/inference//v2/x",
        "/E/ep1/inference",
    ] {
        assert_eq!(upstream(&t, Method::POST, path), Err(RouteError::NotFound), "{path:?}");
    }
}

#[test]
fn predict_takes_post_only() {
    let t = sample();
    assert_eq!(upstream(&t, Method::GET, "/e/ep1/inference"), Err(RouteError::MethodNotAllowed));
}

#[test]
fn an_endpoint_without_default_stage_is_not_found() {
    let (t, _) =
        RouteTable::compile(&wire(1, vec![stage("ep9", "st9", false, vec![resource("r", "/a", "m", &[])])]), None);
    assert_eq!(upstream(&t, Method::POST, "/e/ep9/a"), Err(RouteError::NotFound));
    assert!(upstream(&t, Method::POST, "/s/st9/a").is_ok());
}

#[test]
fn a_bad_stage_fails_alone_and_keeps_its_previous_configuration() {
    let previous = sample();
    let bad = stage(
        "ep1",
        "st2",
        false,
        vec![resource("r4", "/inference", "iris2", &["c:1"]), resource("r5", "/inference", "x", &["d:1"])],
    );
    let new_stage = stage("ep3", "st3", true, vec![resource("r6", "/p", "m", &["e:1"])]);
    let (t, errors) = RouteTable::compile(&wire(2, vec![bad, new_stage]), Some(&previous));
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].stage_id.as_str(), errors[0].config_version), ("st2", 7));
    assert!(errors[0].error.contains("used by two resources"), "{}", errors[0].error);
    // st2 still serves its last good config; st3 applied; st1 is gone from the table.
    assert_eq!(upstream(&t, Method::POST, "/s/st2/inference").map(|u| u.1), Ok("r4".into()));
    assert_eq!(upstream(&t, Method::POST, "/e/ep3/p").map(|u| u.1), Ok("r6".into()));
    assert_eq!(upstream(&t, Method::POST, "/s/st1/inference"), Err(RouteError::NotFound));
}

#[test]
fn an_invalid_path_or_id_fails_the_stage() {
    for (s, needle) in [
        (stage("ep", "st", true, vec![resource("r", "inference", "m", &[])]), "must start with '/'"),
        (stage("ep", "st", true, vec![resource("r", "/a/../b", "m", &[])]), "'..'"),
        (stage("ep", "st/x", true, vec![]), "stage_id"),
        (stage("", "st", true, vec![]), "endpoint_id"),
        (stage("ep", "st", true, vec![resource("r", "/a", "m/x", &[])]), "model"),
    ] {
        let (t, errors) = RouteTable::compile(&wire(1, vec![s]), None);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].error.contains(needle), "{} lacks {needle}", errors[0].error);
        assert_eq!(t.stage_ids().count(), 0);
    }
}

#[test]
fn duplicate_stages_and_second_defaults_are_errors() {
    let (t, errors) = RouteTable::compile(
        &wire(
            1,
            vec![stage("ep", "st1", true, vec![]), stage("ep", "st1", true, vec![]), stage("ep", "st2", true, vec![])],
        ),
        None,
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(t.default_stage("ep").map(|s| s.stage_id.as_str()), Some("st1"));
}

#[test]
fn round_robin_visits_every_backend_and_then_the_others() {
    let (t, _) = RouteTable::compile(
        &wire(1, vec![stage("ep", "st", true, vec![resource("r", "/a", "m", &["x", "y", "z"])])]),
        None,
    );
    let r = &t.stage("st").unwrap().resources[0];
    let orders: Vec<Vec<&str>> = (0..4).map(|_| r.backends_for_call().collect()).collect();
    assert_eq!(orders[0], ["x", "y", "z"]);
    assert_eq!(orders[1], ["y", "z", "x"]);
    assert_eq!(orders[2], ["z", "x", "y"]);
    assert_eq!(orders[3], ["x", "y", "z"]);
    let (t, _) =
        RouteTable::compile(&wire(1, vec![stage("ep", "st", true, vec![resource("r", "/a", "m", &[])])]), None);
    assert_eq!(t.stage("st").unwrap().resources[0].backends_for_call().count(), 0);
}

#[test]
fn keys_and_project_tokens_are_indexed_by_lowercase_hash() {
    let mut w = wire(1, vec![]);
    w.keys.push(v1::EndpointKeys { endpoint_id: "ep".into(), project: "p".into(), key_sha256: vec!["ABC".into()] });
    w.project_token_sha256.insert("p".into(), "DEF".into());
    let (t, _) = RouteTable::compile(&w, None);
    assert_eq!(t.keys.get("abc").map(|k| k.endpoint_id.as_str()), Some("ep"));
    assert_eq!(t.project_tokens.get("def").map(String::as_str), Some("p"));
}
