//! Switching an endpoint's default stage under a constant load: no call fails, every
//! call is counted in its stage's statistics and has a complete inference log line.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gantry_gateway::{FileLogSink, GatewayConfig, LogSink};
use support::*;

const REQUESTS: usize = 2_000;
const CONCURRENCY: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_stage_switch_under_load_fails_no_call() {
    let logs = tempfile::tempdir().unwrap();
    let sink: Arc<dyn LogSink> = Arc::new(FileLogSink::new(logs.path().to_path_buf()).unwrap());
    let gw = start_gateway(GatewayConfig { log_sink: Some(sink), ..GatewayConfig::default() }).await;
    let old = [Backend::start("old1", Behaviour::Echo).await, Backend::start("old2", Behaviour::Echo).await];
    let new = [Backend::start("new1", Behaviour::Echo).await, Backend::start("new2", Behaviour::Echo).await];
    let old_addrs: Vec<String> = old.iter().map(Backend::host_port).collect();
    let new_addrs: Vec<String> = new.iter().map(Backend::host_port).collect();
    let st1 = |default| stage("p1", "ep1", "st1", default, vec![resource("r1", "/inference", "iris", &old_addrs)]);
    let st2 = |default| stage("p1", "ep1", "st2", default, vec![resource("r2", "/inference", "iris", &new_addrs)]);
    gw.gateway.apply(&table(10, vec![st1(true), st2(false)])).unwrap();

    let next = Arc::new(AtomicUsize::new(0));
    let switched = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, switched, url) = (next.clone(), switched.clone(), format!("{}/e/ep1/inference", gw.base));
        workers.push(tokio::spawn(async move {
            let c = client();
            let mut results = Vec::new();
            while next.fetch_add(1, Ordering::SeqCst) < REQUESTS {
                // Read before sending: a call started after the switch must reach the new stage.
                let after_switch = switched.load(Ordering::SeqCst);
                let (status, id, body) = call(&c, "POST", &url, Some(KEY_EP1), r#"{"instances":[[1,2]]}"#).await;
                results.push((status, id, body["backend"].as_str().unwrap_or_default().to_string(), after_switch));
            }
            results
        }));
    }
    // Flip once a quarter of the calls are done, then drop the old stage from the table.
    assert!(wait_until(Duration::from_secs(30), || next.load(Ordering::SeqCst) >= REQUESTS / 4).await);
    gw.gateway.apply(&table(11, vec![st1(false), st2(true)])).unwrap();
    switched.store(true, Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(30), || next.load(Ordering::SeqCst) >= REQUESTS / 2).await);
    gw.gateway.apply(&table(12, vec![st2(true)])).unwrap();

    let mut results = Vec::new();
    for w in workers {
        results.extend(w.await.unwrap());
    }
    assert_eq!(results.len(), REQUESTS);
    let failed: Vec<_> = results.iter().filter(|r| r.0 != 200).collect();
    assert!(failed.is_empty(), "{} failed calls, first {:?}", failed.len(), failed.first());
    assert!(
        results.iter().filter(|r| r.3).all(|r| r.2.starts_with("new")),
        "a call after the switch reached the old stage"
    );
    let old_calls: usize = old.iter().map(Backend::count).sum();
    let new_calls: usize = new.iter().map(Backend::count).sum();
    assert_eq!(old_calls + new_calls, REQUESTS);
    // Up to CONCURRENCY calls claimed before the flip may be sent after it.
    assert!(old_calls >= REQUESTS / 4 - CONCURRENCY && new_calls >= REQUESTS / 2, "old {old_calls}, new {new_calls}");

    // Statistics: every call counted once, in the stage that served it, no errors.
    let minutes = gw.gateway.take_minutes_before(u64::MAX);
    let calls_of = |stage: &str| minutes.iter().filter(|m| m.stage_id == stage).map(|m| m.calls).sum::<u64>();
    assert_eq!(calls_of("st1"), old_calls as u64);
    assert_eq!(calls_of("st2"), new_calls as u64);
    assert_eq!(minutes.iter().map(|m| m.errors).sum::<u64>(), 0);
    assert!(minutes.iter().all(|m| m.latency_buckets.iter().sum::<u64>() == m.calls));

    // Inference logs: one complete line per call, ids as returned to the callers.
    let path = logs.path().join("ep1.jsonl");
    let lines = || std::fs::read_to_string(&path).map(|t| t.lines().count()).unwrap_or(0);
    assert!(wait_until(Duration::from_secs(10), || lines() == REQUESTS).await, "{} log lines", lines());
    let returned: HashSet<String> = results.iter().map(|r| r.1.clone().unwrap()).collect();
    assert_eq!(returned.len(), REQUESTS);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut logged = HashSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["easymakerAppKey"], "p1");
        assert_eq!(v["category"], "easymaker.inference");
        assert_eq!(v["logLevel"], "INFO");
        assert_eq!(v["logType"], "NHNCloud-AIEasyMaker");
        assert_eq!(v["endpointId"], "ep1");
        assert!(v["endpointStageId"] == "st1" || v["endpointStageId"] == "st2");
        assert_eq!(v["action"], "predict");
        assert_eq!(v["modelName"], "iris");
        assert!(v["body"].as_str().unwrap().starts_with("POST /e/ep1/inference -> 200"));
        assert!(humantime::parse_rfc3339(v["time"].as_str().unwrap()).is_ok());
        assert!(!line.contains("instances"), "a log line holds the request body");
        logged.insert(v["inferenceId"].as_str().unwrap().to_string());
    }
    assert_eq!(logged, returned);
}
