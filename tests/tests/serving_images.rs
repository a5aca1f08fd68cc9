//! The serving images (issue 10, section 3) on the machine's real Docker engine: each
//! test makes its model inside the image (never downloaded), serves it from a
//! read-only mount in a container confined the way the agent confines workloads, and
//! checks the contract of docs/serving.md: readiness, V1 predict, V2 infer, JSON
//! errors, the missing-artifact exit code and a graceful stop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

const PYTORCH_IMAGE: &str = "gantry/serving-pytorch:cpu";
const SKLEARN_ONNX_IMAGE: &str = "gantry/serving-sklearn-onnx:cpu";
const TENSORFLOW_IMAGE: &str = "gantry/serving-tensorflow:cpu";
/// TensorFlow takes a while to import on a loaded 2-core CI machine.
const READY_DEADLINE: Duration = Duration::from_secs(240);
/// The runtime's exit code for a missing model artifact (docs/serving.md).
const EXIT_ARTIFACT_MISSING: i32 = 3;
/// Iris rows: a setosa (class 0) and a virginica (class 2).
const IRIS_ROWS: [[f64; 4]; 2] = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]];

const MAKE_SKLEARN: &str = r#"
import joblib, numpy, skl2onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=1000).fit(x, y)
joblib.dump(model, "/out/model.joblib")
onx = skl2onnx.to_onnx(model, x[:1].astype(numpy.float32), options={id(model): {"zipmap": False}})
with open("/out/model.onnx", "wb") as f:
    f.write(onx.SerializeToString())
print("made")
"#;

/// A tiny classifier ending in softmax, traced to TorchScript as `iris.pt` (scripting
/// needs the source file, which `python3 -c` has not).
const MAKE_TORCH: &str = r#"
import torch
class Iris(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
    def forward(self, x):
        return torch.softmax(self.linear(x), dim=1)
torch.manual_seed(0)
torch.jit.trace(Iris(), torch.zeros(1, 4)).save("/out/iris.pt")
print("made")
"#;

const MAKE_TENSORFLOW: &str = r#"
import tensorflow as tf
tf.random.set_seed(0)
model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(3, activation="softmax")])
tf.saved_model.save(model, "/out")
print("made")
"#;

fn docker(args: &[&str]) -> anyhow::Result<Output> {
    Command::new("docker").args(args).output().context("cannot run the docker CLI")
}

fn docker_ok(args: &[&str]) -> anyhow::Result<String> {
    let out = docker(args)?;
    ensure!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds the images with `deploy/images/build.sh` when one is missing (once per test
/// process; the script is idempotent and cached); CI builds them before the tests.
fn require_image(image: &str) -> anyhow::Result<()> {
    static BUILD: OnceLock<Result<(), String>> = OnceLock::new();
    if docker(&["image", "inspect", image])?.status.success() {
        return Ok(());
    }
    let built = BUILD.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/images/build.sh");
        match Command::new("bash").arg(&script).status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("{} failed ({s})", script.display())),
            Err(e) => Err(format!("cannot run {}: {e}", script.display())),
        }
    });
    built.clone().map_err(anyhow::Error::msg)?;
    ensure!(docker(&["image", "inspect", image])?.status.success(), "image {image} still missing");
    Ok(())
}

fn unique_name(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("gantry-serving-test-{what}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A host directory the model is written to (by the invoking user, so it can be
/// deleted) and then mounted read-only; world-readable for the non-root server.
fn model_dir(image: &str, script: &str) -> anyhow::Result<tempfile::TempDir> {
    let dir = readable_tempdir()?;
    let user = format!("{}:{}", docker_id("-u")?, docker_id("-g")?);
    let name = unique_name("make");
    let volume = format!("{}:/out", dir.path().display());
    let out = docker(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--network",
        "none",
        "--user",
        &user,
        "-e",
        "HOME=/tmp",
        "-w",
        "/tmp",
        "-v",
        &volume,
        image,
        "python3",
        "-c",
        script,
    ])?;
    let _ = docker(&["rm", "-f", &name]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.trim().ends_with("made"),
        "making the model failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(dir)
}

fn readable_tempdir() -> anyhow::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

fn docker_id(flag: &str) -> anyhow::Result<String> {
    let out = Command::new("id").arg(flag).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `docker run` arguments confining a serving pod as the agent does
/// (agent/src/runtime/hardening.rs): non-root, read-only root with a /tmp tmpfs, no
/// new privileges, every capability dropped, a PID limit.
fn hardened_run(name: &str, dir: &Path, model: &str, framework: &str, extra_env: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "--name",
        name,
        "--user",
        "1000:1000",
        "--read-only",
        "--tmpfs",
        "/tmp:rw,size=64m",
        "--security-opt",
        "no-new-privileges:true",
        "--cap-drop",
        "ALL",
        "--pids-limit",
        "512",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["-v".into(), format!("{}:/mnt/models:ro", dir.display())]);
    args.extend(["-e".into(), format!("GANTRY_MODEL_NAME={model}")]);
    args.extend(["-e".into(), format!("GANTRY_MODEL_FRAMEWORK={framework}")]);
    for env in extra_env {
        args.extend(["-e".into(), (*env).to_string()]);
    }
    args
}

/// A running serving container, removed on drop.
struct Server {
    name: String,
    port: u16,
    model: String,
}

impl Server {
    fn start(image: &str, dir: &Path, model: &str, framework: &str) -> anyhow::Result<Server> {
        let name = unique_name(&framework.to_lowercase());
        let mut args = hardened_run(&name, dir, model, framework, &["GANTRY_MAX_REQUEST_BYTES=65536"]);
        args.splice(1..1, ["-d".to_string(), "-p".into(), "127.0.0.1::8080".into()]);
        args.push(image.into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut server = Server { name: name.clone(), port: 0, model: model.into() };
        docker_ok(&refs)?;
        let mapped = docker_ok(&["port", &name, "8080/tcp"])?;
        let port = mapped
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("no published port in {mapped:?}"))?;
        server.port = port;
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Ok((200, _)) = http(self.port, "GET", "/v2/health/ready", None) {
                return Ok(());
            }
            let running = docker_ok(&["inspect", "--format", "{{.State.Running}}", &self.name])?;
            if running != "true" {
                bail!("{} exited before ready: {}", self.name, self.logs());
            }
            if start.elapsed() > READY_DEADLINE {
                bail!("{} not ready after {READY_DEADLINE:?}: {}", self.name, self.logs());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn logs(&self) -> String {
        docker(&["logs", &self.name])
            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
            .unwrap_or_default()
    }

    fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        http(self.port, "POST", path, Some(body.to_string().as_bytes()))
    }

    fn predict(&self, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.post(&format!("/v1/models/{}:predict", self.model), body)
    }

    fn infer(&self, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.post(&format!("/v2/models/{}/infer", self.model), body)
    }

    /// `docker stop` sends SIGTERM: the runtime drains and exits 0, well within the
    /// grace period.
    fn stop_gracefully(&self) -> anyhow::Result<()> {
        let start = Instant::now();
        docker_ok(&["stop", "-t", "20", &self.name])?;
        let elapsed = start.elapsed();
        let code = docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &self.name])?;
        ensure!(code == "0", "exit code {code} after SIGTERM: {}", self.logs());
        ensure!(elapsed < Duration::from_secs(10), "SIGTERM took {elapsed:?}");
        ensure!(self.logs().contains("gantry-serve: stopped"), "{}", self.logs());
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

/// An HTTP status and JSON body, or why there was none.
type Reply = anyhow::Result<(u16, Value)>;

/// One HTTP/1.1 request on a fresh connection; the status and the JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&[u8]>) -> anyhow::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    // A server refusing an oversized body may close before reading it all.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").with_context(|| format!("no header end in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    ensure!(head.to_ascii_lowercase().contains("content-type: application/json"), "not JSON: {head}");
    let json = serde_json::from_str(body).with_context(|| format!("body is not JSON: {body:?}"))?;
    Ok((status, json))
}

/// Two requests on one keep-alive connection, which is then left open and idle: a
/// graceful stop must close it rather than wait for the client.
fn keep_alive_connection(server: &Server) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = iris_v1().to_string();
    for _ in 0..2 {
        let request = format!(
            "POST /v1/models/{}:predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            server.model,
            body.len()
        );
        stream.write_all(request.as_bytes())?;
        // Read exactly one response: headers, then Content-Length bytes.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        ensure!(head.starts_with("http/1.1 200"), "{head}");
        ensure!(!head.contains("connection: close"), "the server closed a keep-alive connection: {head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no Content-Length in {head}"))?;
        let mut reply = vec![0u8; length];
        stream.read_exact(&mut reply)?;
        let reply: Value = serde_json::from_slice(&reply)?;
        ensure!(reply["predictions"].as_array().map(Vec::len) == Some(IRIS_ROWS.len()), "{reply}");
    }
    Ok(stream)
}

fn iris_v1() -> Value {
    json!({ "instances": IRIS_ROWS })
}

fn iris_v2(datatype: &str) -> Value {
    let data: Vec<f64> = IRIS_ROWS.iter().flatten().copied().collect();
    json!({ "id": "req-1", "inputs": [{ "name": "input", "shape": [2, 4], "datatype": datatype, "data": data }] })
}

/// Per-class probabilities, one row per instance, each summing to 1.
fn check_probabilities(rows: &Value, classes: usize) -> anyhow::Result<Vec<Vec<f64>>> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(rows.clone()).with_context(|| format!("{rows}"))?;
    ensure!(rows.len() == IRIS_ROWS.len(), "one row per instance: {rows:?}");
    for row in &rows {
        ensure!(row.len() == classes, "{classes} classes: {row:?}");
        let sum: f64 = row.iter().sum();
        ensure!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}: {row:?}");
        ensure!(row.iter().all(|p| (0.0..=1.0).contains(p)), "{row:?}");
    }
    Ok(rows)
}

fn argmax(row: &[f64]) -> usize {
    row.iter().enumerate().fold(0, |best, (i, p)| if *p > row[best] { i } else { best })
}

/// The contract's error answers, each a JSON `{"error": ...}`, and the server still
/// answering afterwards.
fn check_errors(server: &Server) -> anyhow::Result<()> {
    let port = server.port;
    let path = format!("/v1/models/{}:predict", server.model);
    let cases: Vec<(&str, u16, Reply)> = vec![
        ("bad JSON", 400, http(port, "POST", &path, Some(b"{\"instances\": [1,"))),
        ("no instances", 400, server.predict(&json!({ "rows": [] }))),
        ("ragged instances", 400, server.predict(&json!({ "instances": [[1.0, 2.0], [1.0]] }))),
        (
            "V2 data/shape mismatch",
            400,
            server
                .infer(&json!({ "inputs": [{ "name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1.0] }] })),
        ),
        (
            "V2 unknown datatype",
            400,
            server.infer(&json!({ "inputs": [{ "name": "input", "shape": [1], "datatype": "FP99", "data": [1.0] }] })),
        ),
        ("unknown model", 404, server.post("/v1/models/no-such-model:predict", &iris_v1())),
        ("unknown V2 model", 404, server.post("/v2/models/no-such-model/infer", &iris_v2("FP32"))),
        ("unknown path", 404, http(port, "GET", "/no/such/path", None)),
        ("over the size limit", 413, http(port, "POST", &path, Some(&vec![b' '; 70_000]))),
    ];
    for (what, want, got) in cases {
        let (status, body) = got.with_context(|| what.to_string())?;
        ensure!(status == want, "{what}: status {status}, wanted {want}: {body}");
        ensure!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {body}");
    }
    let (status, _) = server.predict(&iris_v1())?;
    ensure!(status == 200, "still serving after bad input");
    Ok(())
}

fn check_metadata(server: &Server, platform: &str) -> anyhow::Result<()> {
    let (status, meta) = http(server.port, "GET", &format!("/v2/models/{}", server.model), None)?;
    ensure!(status == 200 && meta["name"] == server.model.as_str(), "{meta}");
    ensure!(meta["platform"] == platform, "{meta}");
    let (status, live) = http(server.port, "GET", "/v2/health/live", None)?;
    ensure!(status == 200 && live["live"] == true, "{live}");
    Ok(())
}

/// Starting a server on a directory without the artifact: the container exits with the
/// contract's code and says why in one line on stderr.
fn check_missing_artifact(image: &str, model: &str, framework: &str, needle: &str) -> anyhow::Result<()> {
    let empty = readable_tempdir()?;
    let name = unique_name("missing");
    let mut args = hardened_run(&name, empty.path(), model, framework, &[]);
    args.insert(1, "--rm".into());
    args.push(image.into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&refs)?;
    let _ = docker(&["rm", "-f", &name]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(EXIT_ARTIFACT_MISSING), "exit {:?}: {stderr}", out.status.code());
    let last = stderr.trim().lines().last().unwrap_or_default();
    ensure!(last.starts_with("gantry-serve: model artifact missing:") && last.contains(needle), "{stderr}");
    Ok(())
}

#[test]
fn sklearn_and_onnx_serve_iris_probabilities_and_report_bad_input() -> anyhow::Result<()> {
    require_image(SKLEARN_ONNX_IMAGE)?;
    let dir = model_dir(SKLEARN_ONNX_IMAGE, MAKE_SKLEARN)?;
    for (framework, platform, v2_output) in
        [("SCIKIT_LEARN", "scikit-learn", "predictions"), ("ONNX", "onnxruntime", "probabilities")]
    {
        let server = Server::start(SKLEARN_ONNX_IMAGE, dir.path(), "iris", framework)?;
        check_metadata(&server, platform)?;
        let (status, reply) = server.predict(&iris_v1())?;
        ensure!(status == 200, "{framework}: {reply}");
        let rows = check_probabilities(&reply["predictions"], 3)?;
        ensure!(argmax(&rows[0]) == 0 && argmax(&rows[1]) == 2, "{framework}: iris classes wrong: {rows:?}");

        let (status, reply) = server.infer(&iris_v2("FP32"))?;
        ensure!(status == 200 && reply["id"] == "req-1", "{framework}: {reply}");
        let outputs = reply["outputs"].as_array().context("outputs")?;
        let probs = outputs.iter().find(|o| o["name"] == v2_output).with_context(|| format!("{reply}"))?;
        ensure!(probs["shape"] == json!([2, 3]), "{framework}: {probs}");
        let data: Vec<f64> = serde_json::from_value(probs["data"].clone())?;
        check_probabilities(&json!(data.chunks(3).collect::<Vec<_>>()), 3)?;

        check_errors(&server)?;
        let (status, body) = server.predict(&json!({ "instances": [[1.0, 2.0]] }))?;
        ensure!(status == 400, "{framework}: wrong feature count gave {status}: {body}");
        server.stop_gracefully()?;
        check_missing_artifact(SKLEARN_ONNX_IMAGE, "iris", framework, "/mnt/models")?;
    }
    Ok(())
}

#[test]
fn pytorch_serves_a_torchscript_model_named_after_the_model() -> anyhow::Result<()> {
    require_image(PYTORCH_IMAGE)?;
    let dir = model_dir(PYTORCH_IMAGE, MAKE_TORCH)?;
    let server = Server::start(PYTORCH_IMAGE, dir.path(), "iris", "PYTORCH")?;
    check_metadata(&server, "pytorch_torchscript")?;
    let (status, reply) = server.predict(&iris_v1())?;
    ensure!(status == 200, "{reply}");
    check_probabilities(&reply["predictions"], 3)?;
    let (status, reply) = server.infer(&iris_v2("FP32"))?;
    ensure!(status == 200, "{reply}");
    ensure!(reply["outputs"][0]["shape"] == json!([2, 3]) && reply["outputs"][0]["datatype"] == "FP32", "{reply}");
    check_errors(&server)?;
    let idle = keep_alive_connection(&server)?;
    server.stop_gracefully()?;
    drop(idle);
    // The artifact is `{name}.pt`: a model named differently has none.
    check_missing_artifact(PYTORCH_IMAGE, "other", "PYTORCH", "/mnt/models/other.pt")
}

#[test]
fn tensorflow_serves_a_saved_model_through_its_serving_signature() -> anyhow::Result<()> {
    require_image(TENSORFLOW_IMAGE)?;
    let dir = model_dir(TENSORFLOW_IMAGE, MAKE_TENSORFLOW)?;
    let server = Server::start(TENSORFLOW_IMAGE, dir.path(), "iris", "TENSORFLOW")?;
    check_metadata(&server, "tensorflow_savedmodel")?;
    let (status, reply) = server.predict(&iris_v1())?;
    ensure!(status == 200, "{reply}");
    check_probabilities(&reply["predictions"], 3)?;
    let (status, reply) = server.infer(&iris_v2("FP32"))?;
    ensure!(status == 200, "{reply}");
    ensure!(reply["outputs"][0]["shape"] == json!([2, 3]), "{reply}");
    check_errors(&server)?;
    let (status, body) = server.predict(&json!({ "instances": [[1.0, 2.0]] }))?;
    ensure!(status == 400, "wrong feature count gave {status}: {body}");
    server.stop_gracefully()?;
    check_missing_artifact(TENSORFLOW_IMAGE, "iris", "TENSORFLOW", "saved_model.pb")
}
