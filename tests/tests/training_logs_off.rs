//! Log management off (`use_log = false`) on a real node: the agent keeps none of the
//! training's output and the logs API says so, while following it live still works.

use std::time::{Duration, Instant};

use gantry_proto::v1::{self as pb, TrainingLogsRequest};
use gantry_tests::nodes::NodeKit;
use gantry_tests::{SandboxOptions, TEAM_A};

const RUN: Duration = Duration::from_secs(90);

/// Prints `tick N` until `release` appears in its `CTL` dataset, then `bye`.
const TICK_SCRIPT: &str = r#"
import os, sys, time
release = os.path.join(os.environ["EM_DATASET_CTL"], "release")
i = 0
while not os.path.exists(release):
    print(f"tick {i}", flush=True)
    i += 1
    time.sleep(0.05)
    if i > 20000:
        sys.exit(9)
print("bye", flush=True)
"#;

fn refused(result: anyhow::Result<String>, what: &str) -> tonic::Status {
    match result {
        Ok(logs) => panic!("{what}: logs were served ({} bytes) with log management off", logs.len()),
        Err(e) => match e.downcast_ref::<tonic::Status>() {
            Some(s) => s.clone(),
            None => panic!("{what}: not a gRPC status: {e:#}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_with_log_management_off_nothing_is_kept_but_follow_streams_live() -> anyhow::Result<()> {
    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    let agent = kit.add_agent("node-1", "").await?;
    let algo = kit.algorithm("quiet", &[("tick.py", TICK_SCRIPT)])?;
    let ctl = kit.dir("ctl/quiet");
    let mut spec = kit.training("quiet", &algo, "tick.py");
    spec.use_log = false;
    spec.datasets = vec![pb::Dataset { name: "ctl".into(), path: kit.url("ctl/quiet") }];
    let t = kit.create(spec).await?;
    kit.wait_status("quiet", "RUNNING", RUN).await?;

    // There is no history to read: the API says why instead of serving any.
    let status = refused(kit.logs("quiet", false).await, "reading the history");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("use_log = false") && status.message().contains("-f"), "{status:?}");

    // Following streams the live output to the end.
    let req =
        TrainingLogsRequest { project: TEAM_A.into(), name: "quiet".into(), rank: 0, follow: true, tail_lines: 0 };
    let mut stream = kit.admin().trainings.training_logs(req).await?.into_inner();
    let mut seen = String::new();
    let mut released = false;
    let deadline = Instant::now() + RUN;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, stream.message()).await.map_err(|_| {
            anyhow::anyhow!("the live stream did not end in time; got:\n{seen}\nagent log:\n{}", kit.agent(agent).log())
        })??;
        let Some(chunk) = chunk else { break };
        seen.push_str(&String::from_utf8_lossy(&chunk.data));
        if !released && seen.matches("tick ").count() >= 3 {
            std::fs::write(ctl.join("release"), "")?;
            released = true;
        }
    }
    assert!(released, "the live stream ended before any output: {seen}");
    assert!(seen.ends_with("bye\n"), "the live stream missed the end: {seen}");
    kit.wait_status("quiet", "COMPLETE", RUN).await?;

    // The node kept nothing, and an ended training has nothing to follow either.
    let logs_dir = kit.agent(agent).state_dir().join("logs").join(&t.id);
    assert!(!logs_dir.exists(), "the agent stored logs at {}", logs_dir.display());
    let status = refused(kit.logs("quiet", true).await, "following an ended training");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    kit.finish().await
}
