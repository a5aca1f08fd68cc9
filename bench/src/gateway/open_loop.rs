//! Open-loop load: requests start on a fixed schedule (`rate` per second) whether or
//! not earlier ones finished, and each latency is measured from its *scheduled* start,
//! so a stall shows up in the percentiles instead of slowing the load down
//! (no coordinated omission). Bounded by a request count and a deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// Highest latency recorded; slower calls are clamped to it.
const MAX_TRACKED_US: u64 = 60_000_000;

/// One target's figures.
#[derive(Debug, Clone)]
pub struct OpenLoopReport {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// What to send.
pub struct Target {
    pub url: String,
    pub authorization: Option<String>,
    pub body: Bytes,
}

pub async fn run(target: Target, rate: u32, count: u64, max: Duration) -> anyhow::Result<OpenLoopReport> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let target = Arc::new(target);
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let start = Instant::now();
    let deadline = start + max;
    let mut tasks = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for i in 0..count {
        let scheduled = start + period.mul_f64(i as f64);
        if scheduled >= deadline {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let (client, target) = (client.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let ok = tokio::time::timeout_at(deadline + Duration::from_secs(5), one(&client, &target)).await;
            (matches!(ok, Ok(true)), scheduled.elapsed())
        }));
    }
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, MAX_TRACKED_US, 3)?;
    let (mut ok, mut failed) = (0u64, 0u64);
    let sent = tasks.len() as u64;
    for task in tasks {
        match task.await {
            Ok((true, elapsed)) => {
                ok += 1;
                let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                latency_us.saturating_record(us.clamp(1, MAX_TRACKED_US));
            }
            _ => failed += 1,
        }
    }
    Ok(OpenLoopReport {
        sent,
        ok,
        failed,
        p50_us: latency_us.value_at_quantile(0.50),
        p99_us: latency_us.value_at_quantile(0.99),
    })
}

/// One call; true when it answered 200 with a body.
async fn one(client: &Client<HttpConnector, Full<Bytes>>, target: &Target) -> bool {
    let mut request = hyper::Request::post(target.url.as_str()).header("content-type", "application/json");
    if let Some(a) = &target.authorization {
        request = request.header("authorization", a.as_str());
    }
    let Ok(request) = request.body(Full::new(target.body.clone())) else { return false };
    match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().collect().await;
            status == hyper::StatusCode::OK && body.is_ok_and(|b| !b.to_bytes().is_empty())
        }
        Err(_) => false,
    }
}
