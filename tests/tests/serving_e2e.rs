//! Serving end to end (issue 10, section 5) on the machine's real Docker engine: a model
//! made in the test → a model resource → an endpoint whose pods a real agent runs from
//! the sklearn/ONNX serving image → calls through the scheduler's embedded gateway.
//! Then a second stage, a default switch under a constant load (no call may fail), a
//! killed pod replaced while calls keep succeeding, the auth answers, and the delete
//! rules down to the routes being gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use gantry_proto::v1 as pb;
use gantry_tests::nodes::{NodeKit, wait_for};
use gantry_tests::{SandboxOptions, TEAM_A, TEAM_A_TOKEN, TEAM_B_TOKEN};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tonic::Code;

const SKLEARN_IMAGE: &str = "gantry/serving-sklearn-onnx:cpu";
/// Importing scikit-learn and loading a model on a loaded 2-core machine.
const ACTIVE_WITHIN: Duration = Duration::from_secs(240);

const MAKE_MODELS: &str = r#"
import joblib, numpy, skl2onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=1000).fit(x, y)
joblib.dump(model, "/out/sk/model.joblib")
onx = skl2onnx.to_onnx(model, x[:1].astype(numpy.float32), options={id(model): {"zipmap": False}})
with open("/out/onnx/model.onnx", "wb") as f:
    f.write(onx.SerializeToString())
"#;

type Http = Client<HttpConnector, Full<Bytes>>;

/// Pod host ports are allocated per cluster from one range (31000..=32999), so two
/// sandboxes serving at once on this machine would publish the same port: the tests of
/// this file take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// POSTs `body` with an optional bearer token; the status and the JSON answer (or Null).
async fn post(client: &Http, url: &str, token: Option<&str>, body: &Value) -> anyhow::Result<(u16, Value)> {
    let mut req = hyper::Request::post(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
    let res = tokio::time::timeout(Duration::from_secs(30), client.request(req)).await.context("no answer")??;
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

fn iris() -> Value {
    json!({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})
}

/// Two rows of three class probabilities each summing to 1, setosa then virginica.
fn check_predictions(answer: &Value) -> anyhow::Result<()> {
    let rows = answer["predictions"].as_array().with_context(|| format!("no predictions in {answer}"))?;
    ensure!(rows.len() == 2, "two rows expected: {answer}");
    for (row, class) in rows.iter().zip([0usize, 2]) {
        let p: Vec<f64> = row.as_array().context("a row")?.iter().filter_map(Value::as_f64).collect();
        ensure!(p.len() == 3, "three probabilities expected: {answer}");
        ensure!((p.iter().sum::<f64>() - 1.0).abs() < 1e-3, "probabilities must sum to 1: {answer}");
        let best = (0..3).max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap_or(0);
        ensure!(best == class, "row should be class {class}: {answer}");
    }
    Ok(())
}

/// Makes both models inside the serving image (never downloaded), readable by the pods.
fn make_models(kit: &NodeKit) -> anyhow::Result<()> {
    let root = kit.dir("models");
    for sub in ["sk", "onnx"] {
        std::fs::create_dir_all(root.join(sub))?;
    }
    let out = std::process::Command::new("docker")
        .args(["run", "--rm", "--network", "none", "-v"])
        .arg(format!("{}:/out", root.display()))
        .args([SKLEARN_IMAGE, "python3", "-c", MAKE_MODELS])
        .output()?;
    ensure!(out.status.success(), "making the models failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

fn resource(model: &str, pods: u32) -> pb::StageResourceSpec {
    pb::StageResourceSpec {
        model: model.into(),
        resource_path: "/inference".into(),
        pod_count: pods,
        description: String::new(),
    }
}

fn stage(name: &str, model: &str, pods: u32) -> pb::StageSpec {
    pb::StageSpec {
        name: name.into(),
        description: String::new(),
        instance_type: gantry_tests::CPU_INSTANCE_TYPE.into(),
        instance_count: 1,
        resources: vec![resource(model, pods)],
    }
}

async fn get_stage(kit: &NodeKit, stage: &str) -> anyhow::Result<pb::Stage> {
    let req = pb::GetStageRequest { project: TEAM_A.into(), endpoint: "iris".into(), stage: stage.into(), read: None };
    Ok(kit.admin().endpoints.get_stage(req).await?.into_inner())
}

/// Waits for the stage to be ACTIVE with every pod healthy and the gateway ACTIVE.
async fn wait_active(kit: &NodeKit, stage: &str) -> anyhow::Result<pb::Stage> {
    wait_for(ACTIVE_WITHIN, &format!("stage {stage} ACTIVE with healthy pods and gateway"), || async {
        let s = get_stage(kit, stage).await?;
        ensure!(
            s.status == "ACTIVE" && s.gateway_status == "ACTIVE" && s.total_pods > 0 && s.healthy_pods == s.total_pods,
            "stage {}: {} ({}), gateway {}, pods {}/{}",
            s.name,
            s.status,
            s.status_reason,
            s.gateway_status,
            s.healthy_pods,
            s.total_pods
        );
        Ok(s)
    })
    .await
    .with_context(|| format!("agent log:\n{}", kit.agent(0).log()))
}

/// Controls of the load loop: `stop` ends it; while `pause` is set it sends nothing and
/// says so in `paused` (a crash kills the call in flight on that pod: the gateway never
/// resends a call a pod may have acted on, docs/gateway.md).
#[derive(Clone, Default)]
struct Load {
    stop: Arc<AtomicBool>,
    pause: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

/// Calls `url` in a loop (bounded in count) until `load.stop`; each failure is kept
/// with its call number.
fn load_loop(url: String, key: String, load: Load) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let client = http();
        let mut errors = Vec::new();
        for _ in 0..20_000 {
            if load.stop.load(Ordering::Relaxed) {
                break;
            }
            if load.pause.load(Ordering::Relaxed) {
                load.paused.store(true, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            load.paused.store(false, Ordering::Relaxed);
            let n = load.calls.fetch_add(1, Ordering::Relaxed);
            match post(&client, &url, Some(&key), &iris()).await {
                Ok((200, answer)) if check_predictions(&answer).is_ok() => {}
                other => {
                    load.failed.fetch_add(1, Ordering::Relaxed);
                    errors.push(format!("call {n}: {other:?}"));
                }
            }
        }
        errors
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_served_through_two_stages_and_a_default_switch_fails_no_call() -> anyhow::Result<()> {
    let _turn = SERIAL.lock().await;
    let mut kit = NodeKit::start(SandboxOptions { gateway: true, ..SandboxOptions::default() }).await?;
    kit.add_agent("serve-1", "").await?;
    make_models(&kit)?;
    let gateway = kit.sandbox().gateway_url().context("the sandbox runs a gateway")?;
    let admin = kit.admin();

    for (name, dir, framework) in [("iris-sk", "models/sk", "SCIKIT_LEARN"), ("iris-onnx", "models/onnx", "ONNX")] {
        let req = pb::CreateModelRequest {
            project: TEAM_A.into(),
            name: name.into(),
            framework: framework.into(),
            framework_version: "1.5.2".into(),
            artifact_path: kit.url(dir),
            request_id: format!("model-{name}"),
            ..Default::default()
        };
        admin.models.clone().create_model(req).await?;
    }
    let created = admin
        .endpoints
        .clone()
        .create_endpoint(pb::CreateEndpointRequest {
            project: TEAM_A.into(),
            name: "iris".into(),
            stage: Some(stage("default", "iris-sk", 1)),
            request_id: "endpoint-iris".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    ensure!(created.url.starts_with(&gateway), "endpoint URL {} is not on the gateway {gateway}", created.url);
    wait_active(&kit, "default").await?;

    let key = admin
        .endpoints
        .clone()
        .create_api_key(pb::CreateApiKeyRequest {
            project: TEAM_A.into(),
            endpoint: "iris".into(),
            description: "t".into(),
        })
        .await?
        .into_inner()
        .secret;
    let client = http();
    let url = format!("{}/inference", created.url);

    // V1 and V2 through the endpoint URL, with the endpoint's key (valid once the
    // gateways have the route table that lists it) and the project's token.
    let answer = wait_for(Duration::from_secs(30), "the new API key accepted", || async {
        let (status, answer) = post(&client, &url, Some(&key), &iris()).await?;
        ensure!(status == 200, "V1 answered {status}: {answer}");
        Ok(answer)
    })
    .await?;
    check_predictions(&answer)?;
    let (status, _) = post(&client, &url, Some(TEAM_A_TOKEN), &iris()).await?;
    ensure!(status == 200, "the project's token answered {status}");
    let v2 = json!({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]});
    let (status, answer) = post(&client, &format!("{url}/v2/models/iris-sk/infer"), Some(&key), &v2).await?;
    ensure!(status == 200 && answer["outputs"].is_array(), "V2 answered {status}: {answer}");

    // Auth: none → 401, another project's token → 403; unknown path → 404.
    let (status, _) = post(&client, &url, None, &iris()).await?;
    ensure!(status == 401, "no key answered {status}");
    let (status, _) = post(&client, &url, Some(TEAM_B_TOKEN), &iris()).await?;
    ensure!(status == 403, "team-b's token answered {status}");
    let (status, _) = post(&client, &format!("{}/nope", created.url), Some(&key), &iris()).await?;
    ensure!(status == 404, "an unknown path answered {status}");

    // A second stage (ONNX, two pods), then the default switch under a constant load.
    admin
        .endpoints
        .clone()
        .create_stage(pb::CreateStageRequest {
            project: TEAM_A.into(),
            endpoint: "iris".into(),
            stage: Some(stage("canary", "iris-onnx", 2)),
            request_id: "stage-canary".into(),
        })
        .await?;
    let canary = wait_active(&kit, "canary").await?;
    let (status, answer) = post(&client, &format!("{}/inference", canary.url), Some(&key), &iris()).await?;
    ensure!(status == 200, "the canary stage URL answered {status}: {answer}");
    check_predictions(&answer)?;

    // The model in use and an endpoint with a second stage cannot be deleted.
    let refused = admin
        .models
        .clone()
        .delete_model(pb::DeleteModelRequest { project: TEAM_A.into(), name: "iris-onnx".into() })
        .await;
    ensure!(refused.as_ref().err().map(|s| s.code()) == Some(Code::FailedPrecondition), "delete model: {refused:?}");
    let refused = admin
        .endpoints
        .clone()
        .delete_endpoint(pb::DeleteEndpointRequest { project: TEAM_A.into(), name: "iris".into() })
        .await;
    ensure!(refused.as_ref().err().map(|s| s.code()) == Some(Code::FailedPrecondition), "delete endpoint: {refused:?}");

    let load = Load::default();
    let (calls, failed) = (load.calls.clone(), load.failed.clone());
    let looping = load_loop(url.clone(), key.clone(), load.clone());
    wait_for(Duration::from_secs(30), "calls flowing", || async {
        ensure!(calls.load(Ordering::Relaxed) >= 20, "{} calls so far", calls.load(Ordering::Relaxed));
        Ok(())
    })
    .await?;
    let switched_at = calls.load(Ordering::Relaxed);
    admin
        .endpoints
        .clone()
        .set_default_stage(pb::SetDefaultStageRequest {
            project: TEAM_A.into(),
            endpoint: "iris".into(),
            stage: "canary".into(),
        })
        .await?;
    // The old default goes once every gateway has the new routes.
    wait_for(ACTIVE_WITHIN, "the old default stage removed", || async {
        let e = admin
            .endpoints
            .clone()
            .get_endpoint(pb::GetEndpointRequest { project: TEAM_A.into(), name: "iris".into(), read: None })
            .await?
            .into_inner();
        let names: Vec<&str> = e.stages.iter().map(|s| s.name.as_str()).collect();
        ensure!(e.default_stage == "canary" && names == ["canary"], "default {}, stages {names:?}", e.default_stage);
        Ok(())
    })
    .await?;
    let sk_pods_gone = || async {
        let left = kit.containers().await?.into_iter().filter(|c| c.name.contains("pod")).count();
        ensure!(left == 2, "{left} pod containers left (the canary's 2 expected)");
        Ok(())
    };
    wait_for(Duration::from_secs(120), "the old stage's pod removed", sk_pods_gone).await?;

    // A killed pod: calls go on to the other one at once (the dead one refuses
    // connections until its agent reports it), and it is replaced. No call is in flight
    // at the kill itself.
    load.pause.store(true, Ordering::Relaxed);
    wait_for(Duration::from_secs(30), "the load loop paused", || async {
        ensure!(load.paused.load(Ordering::Relaxed), "still calling");
        Ok(())
    })
    .await?;
    let before = calls.load(Ordering::Relaxed);
    let pod = kit.containers().await?.into_iter().find(|c| c.name.contains("pod")).context("a pod container")?;
    let killed = std::process::Command::new("docker").args(["kill", pod.id.as_str()]).output()?;
    ensure!(killed.status.success(), "docker kill: {}", String::from_utf8_lossy(&killed.stderr));
    load.pause.store(false, Ordering::Relaxed);
    wait_for(ACTIVE_WITHIN, "the killed pod replaced and healthy", || async {
        let s = get_stage(&kit, "canary").await?;
        let running = kit.containers().await?.into_iter().filter(|c| c.name.contains("pod") && c.id != pod.id).count();
        ensure!(
            s.healthy_pods == 2 && running >= 1 && calls.load(Ordering::Relaxed) > before + 20,
            "pods {}/{}",
            s.healthy_pods,
            s.total_pods
        );
        Ok(())
    })
    .await?;
    load.stop.store(true, Ordering::Relaxed);
    let errors = looping.await?;
    println!("the switch happened within calls {switched_at}..{before}, the kill at call {before}");
    let (total, failures) = (calls.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("bench: stage_switch failed={failures} requests={total}");
    ensure!(
        failures == 0,
        "{failures} of {total} calls failed across the switch and the kill: {:?}",
        &errors[..errors.len().min(5)]
    );

    // Deleting the endpoint removes its routes.
    admin
        .endpoints
        .clone()
        .delete_endpoint(pb::DeleteEndpointRequest { project: TEAM_A.into(), name: "iris".into() })
        .await?;
    wait_for(Duration::from_secs(60), "routes removed", || async {
        let (status, _) = post(&client, &url, Some(&key), &iris()).await?;
        ensure!(status == 404 || status == 401, "the deleted endpoint still answers {status}");
        Ok(())
    })
    .await?;
    kit.finish().await
}

/// The guide's inference example against a PyTorch model from a real Gantry training:
/// `examples/serving` trained in the PyTorch serving image, registered with
/// `--from-training`, served by an endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pytorch_model_from_a_real_training_answers_the_guides_example() -> anyhow::Result<()> {
    let _turn = SERIAL.lock().await;
    let mut kit = NodeKit::start(SandboxOptions { gateway: true, ..SandboxOptions::default() }).await?;
    kit.add_agent("serve-2", "").await?;
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/serving");
    let algorithm =
        kit.algorithm("iris", &[("train.py", &std::fs::read_to_string(example.join("algorithm/train.py"))?)])?;
    std::fs::copy(example.join("data/iris.csv"), kit.dir("data/iris").join("iris.csv"))?;
    let mut spec = kit.training("iris", &algorithm, "train.py");
    spec.image = "serving-pytorch".into();
    spec.datasets = vec![pb::Dataset { name: "train".into(), path: kit.url("data/iris") }];
    spec.hyperparameters = vec![pb::KeyValue { key: "epochs".into(), value: "200".into() }];
    kit.create(spec).await?;
    kit.wait_status("iris", "COMPLETE", ACTIVE_WITHIN).await?;

    let admin = kit.admin();
    let model = admin
        .models
        .clone()
        .create_model(pb::CreateModelRequest {
            project: TEAM_A.into(),
            name: "iris".into(),
            framework: "PYTORCH".into(),
            framework_version: "1.13".into(),
            from_training: "iris".into(),
            request_id: "model-iris".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    ensure!(model.artifact_path == kit.url("out/iris"), "the model is the training's output: {model:?}");
    let endpoint = admin
        .endpoints
        .clone()
        .create_endpoint(pb::CreateEndpointRequest {
            project: TEAM_A.into(),
            name: "iris".into(),
            stage: Some(stage("default", "iris", 1)),
            request_id: "endpoint-iris".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    wait_active(&kit, "default").await?;
    let guide = json!({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]});
    let (status, answer) = post(&http(), &format!("{}/inference", endpoint.url), Some(TEAM_A_TOKEN), &guide).await?;
    ensure!(status == 200, "the endpoint answered {status}: {answer}");
    let rows = answer["predictions"].as_array().with_context(|| format!("no predictions: {answer}"))?;
    ensure!(rows.len() == 2, "two rows expected: {answer}");
    for row in rows {
        let p: Vec<f64> = row.as_array().context("a row")?.iter().filter_map(Value::as_f64).collect();
        ensure!(p.len() == 3 && (p.iter().sum::<f64>() - 1.0).abs() < 1e-3, "three probabilities: {answer}");
    }
    kit.finish().await
}

/// An artifact gone from storage: the endpoint ends CREATE FAILED naming it, and nothing
/// is left running (no pod container, no route).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_artifact_fails_the_create_clearly_and_leaves_nothing() -> anyhow::Result<()> {
    let _turn = SERIAL.lock().await;
    let mut kit = NodeKit::start(SandboxOptions { gateway: true, ..SandboxOptions::default() }).await?;
    kit.add_agent("serve-3", "").await?;
    kit.dir("models/ghost");
    let admin = kit.admin();
    admin
        .models
        .clone()
        .create_model(pb::CreateModelRequest {
            project: TEAM_A.into(),
            name: "ghost".into(),
            framework: "SCIKIT_LEARN".into(),
            framework_version: "1.5.2".into(),
            artifact_path: kit.url("models/ghost"),
            request_id: "model-ghost".into(),
            ..Default::default()
        })
        .await?;
    admin
        .endpoints
        .clone()
        .create_endpoint(pb::CreateEndpointRequest {
            project: TEAM_A.into(),
            name: "ghost".into(),
            stage: Some(stage("default", "ghost", 1)),
            request_id: "endpoint-ghost".into(),
            ..Default::default()
        })
        .await?;
    let failed = wait_for(ACTIVE_WITHIN, "the endpoint CREATE FAILED", || async {
        let e = admin
            .endpoints
            .clone()
            .get_endpoint(pb::GetEndpointRequest { project: TEAM_A.into(), name: "ghost".into(), read: None })
            .await?
            .into_inner();
        ensure!(e.status == "CREATE FAILED", "endpoint {} ({})", e.status, e.status_reason);
        Ok(e)
    })
    .await
    .with_context(|| format!("agent log:\n{}", kit.agent(0).log()))?;
    let resource = &failed.stages[0].resources[0];
    ensure!(
        resource.status == "CREATE FAILED" && resource.status_reason.contains("artifact"),
        "the resource names the artifact: {resource:?}"
    );
    wait_for(Duration::from_secs(60), "no pod container left", || async {
        let pods = kit.containers().await?.into_iter().filter(|c| c.name.contains("pod")).count();
        ensure!(pods == 0, "{pods} pod containers left");
        Ok(())
    })
    .await?;
    kit.finish().await
}
