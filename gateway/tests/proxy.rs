//! The gateway against real local HTTP backends: routing, rewriting, balancing,
//! retries, authentication and every error answer.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use gantry_gateway::GatewayConfig;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// ep1 (p1): default stage st1 → backend a, stage st2 → backend b.
async fn two_stages() -> (RunningGateway, Backend, Backend) {
    let a = Backend::start("a", Behaviour::Echo).await;
    let b = Backend::start("b", Behaviour::Echo).await;
    let gw = start_gateway(GatewayConfig::default()).await;
    gw.gateway
        .apply(&table(
            1,
            vec![
                stage("p1", "ep1", "st1", true, vec![resource("r1", "/inference", "iris", &[a.host_port()])]),
                stage("p1", "ep1", "st2", false, vec![resource("r2", "/inference", "iris2", &[b.host_port()])]),
            ],
        ))
        .unwrap();
    (gw, a, b)
}

#[tokio::test]
async fn endpoint_url_reaches_the_default_stage_and_stage_url_its_stage() {
    let (gw, a, b) = two_stages().await;
    let c = client();
    let (status, id, body) = call(&c, "POST", &format!("{}/e/ep1/inference", gw.base), Some(KEY_EP1), "{}").await;
    assert_eq!((status, body["backend"].as_str()), (200, Some("a")));
    assert_eq!(body["path"], "/v1/models/iris:predict");
    let (status, _, body) = call(&c, "POST", &format!("{}/s/st2/inference", gw.base), Some(KEY_EP1), "{}").await;
    assert_eq!((status, body["backend"].as_str()), (200, Some("b")));
    assert_eq!(body["path"], "/v1/models/iris2:predict");
    // The pod sees the call's inference id, and never the caller's credentials.
    let seen = a.requests();
    assert_eq!(seen[0].inference_id, id);
    assert_eq!(seen[0].authorization, None);
    assert_eq!(seen[0].body, "{}");
    assert_eq!(b.count(), 1);
}

#[tokio::test]
async fn v2_paths_and_queries_pass_through() {
    let (gw, a, _b) = two_stages().await;
    let c = client();
    let url = format!("{}/e/ep1/inference/v2/models/iris/infer?x=1", gw.base);
    let (status, _, body) = call(&c, "POST", &url, Some(TOKEN_P1), r#"{"inputs":[]}"#).await;
    assert_eq!((status, body["path"].as_str()), (200, Some("/v2/models/iris/infer?x=1")));
    let (status, _, body) =
        call(&c, "GET", &format!("{}/e/ep1/inference/v2/health/ready", gw.base), Some(KEY_EP1), "").await;
    assert_eq!((status, body["path"].as_str()), (200, Some("/v2/health/ready")));
    assert_eq!(a.requests()[1].method, "GET");
}

#[tokio::test]
async fn calls_are_spread_round_robin() {
    let backends = [
        Backend::start("x", Behaviour::Echo).await,
        Backend::start("y", Behaviour::Echo).await,
        Backend::start("z", Behaviour::Echo).await,
    ];
    let gw = start_gateway(GatewayConfig::default()).await;
    let addrs: Vec<String> = backends.iter().map(Backend::host_port).collect();
    gw.gateway.apply(&table(1, vec![stage("p1", "ep1", "st1", true, vec![resource("r", "/p", "m", &addrs)])])).unwrap();
    let c = client();
    for _ in 0..30 {
        assert_eq!(call(&c, "POST", &format!("{}/e/ep1/p", gw.base), Some(KEY_EP1), "{}").await.0, 200);
    }
    assert_eq!(backends.iter().map(Backend::count).collect::<Vec<_>>(), [10, 10, 10]);
}

#[tokio::test]
async fn a_refused_connection_is_retried_on_another_backend() {
    let live = Backend::start("live", Behaviour::Echo).await;
    let gw = start_gateway(GatewayConfig::default()).await;
    let backends = [dead_address().await, live.host_port()];
    gw.gateway
        .apply(&table(1, vec![stage("p1", "ep1", "st1", true, vec![resource("r", "/p", "m", &backends)])]))
        .unwrap();
    let c = client();
    for _ in 0..6 {
        let (status, _, body) = call(&c, "POST", &format!("{}/e/ep1/p", gw.base), Some(KEY_EP1), "{}").await;
        assert_eq!((status, body["backend"].as_str()), (200, Some("live")));
    }
    assert_eq!(live.count(), 6);
    let minutes = gw.gateway.take_minutes_before(u64::MAX);
    assert_eq!((minutes[0].calls, minutes[0].errors), (6, 0));
}

#[tokio::test]
async fn a_request_that_reached_a_backend_is_never_sent_again() {
    let dropper = Backend::start("dropper", Behaviour::DropAfterRead).await;
    let other = Backend::start("other", Behaviour::Echo).await;
    let gw = start_gateway(GatewayConfig::default()).await;
    let backends = [dropper.host_port(), other.host_port()];
    gw.gateway
        .apply(&table(1, vec![stage("p1", "ep1", "st1", true, vec![resource("r", "/p", "m", &backends)])]))
        .unwrap();
    let (status, id, body) = call(&client(), "POST", &format!("{}/e/ep1/p", gw.base), Some(KEY_EP1), "{\"a\":1}").await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"].is_string());
    assert!(id.is_some());
    assert_eq!(dropper.count(), 1);
    assert_eq!(other.count(), 0);
    assert_eq!(dropper.requests()[0].body, "{\"a\":1}");
    let minutes = gw.gateway.take_minutes_before(u64::MAX);
    assert_eq!((minutes[0].calls, minutes[0].errors), (1, 1));
}

#[tokio::test]
async fn credentials_are_checked() {
    let (gw, a, _b) = two_stages().await;
    let c = client();
    let url = format!("{}/e/ep1/inference", gw.base);
    let (status, _, body) = call(&c, "POST", &url, None, "{}").await;
    assert_eq!(status, 401);
    assert!(body["error"].is_string());
    assert_eq!(call(&c, "POST", &url, Some("not-a-key"), "{}").await.0, 401);
    assert_eq!(call(&c, "POST", &url, Some(KEY_EP2), "{}").await.0, 403);
    assert_eq!(call(&c, "POST", &url, Some(TOKEN_P2), "{}").await.0, 403);
    assert_eq!(call(&c, "POST", &url, Some(TOKEN_P1), "{}").await.0, 200);
    assert_eq!(a.count(), 1);
    // Refused calls are not stage calls.
    let minutes = gw.gateway.take_minutes_before(u64::MAX);
    assert_eq!(minutes.iter().map(|m| m.calls).sum::<u64>(), 1);
}

#[tokio::test]
async fn unknown_paths_are_404_and_get_on_predict_is_405() {
    let (gw, a, _b) = two_stages().await;
    let c = client();
    for path in ["/", "/e/nope/inference", "/s/st1/other", "/e/ep1/inference/v1/x", "/x"] {
        let (status, _, body) = call(&c, "POST", &format!("{}{path}", gw.base), Some(KEY_EP1), "{}").await;
        assert_eq!(status, 404, "{path}");
        assert!(body["error"].is_string(), "{path}");
    }
    assert_eq!(call(&c, "GET", &format!("{}/e/ep1/inference", gw.base), Some(KEY_EP1), "").await.0, 405);
    assert_eq!(a.count(), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let a = Backend::start("a", Behaviour::Echo).await;
    let gw = start_gateway(GatewayConfig { max_body_bytes: 1024, ..GatewayConfig::default() }).await;
    gw.gateway
        .apply(&table(1, vec![stage("p1", "ep1", "st1", true, vec![resource("r", "/p", "m", &[a.host_port()])])]))
        .unwrap();
    let c = client();
    let url = format!("{}/e/ep1/p", gw.base);
    assert_eq!(call(&c, "POST", &url, Some(KEY_EP1), &"x".repeat(1024)).await.0, 200);
    let (status, _, body) = call(&c, "POST", &url, Some(KEY_EP1), &"x".repeat(1025)).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("1024"));
    // Chunked (no declared length) is limited too.
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /e/ep1/p HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY_EP1}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..3 {
        s.write_all(format!("200\r\n{}\r\n", "y".repeat(0x200)).as_bytes()).await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 64];
    let n = s.read(&mut answer).await.unwrap();
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    assert_eq!(a.count(), 1);
}

#[tokio::test]
async fn no_ready_backend_is_503_and_model_errors_pass_through() {
    let bad_input = Backend::start("m400", Behaviour::Fixed(400, r#"{"error":"bad instances"}"#)).await;
    let broken = Backend::start("m500", Behaviour::Fixed(500, r#"{"error":"model crashed"}"#)).await;
    let gw = start_gateway(GatewayConfig::default()).await;
    gw.gateway
        .apply(&table(
            1,
            vec![stage(
                "p1",
                "ep1",
                "st1",
                true,
                vec![
                    resource("r0", "/none", "m", &[]),
                    resource("r1", "/four", "m", &[bad_input.host_port()]),
                    resource("r2", "/five", "m", &[broken.host_port()]),
                ],
            )],
        ))
        .unwrap();
    let c = client();
    let (status, _, body) = call(&c, "POST", &format!("{}/e/ep1/none", gw.base), Some(KEY_EP1), "{}").await;
    assert_eq!(status, 503);
    assert!(body["error"].is_string());
    let (status, _, body) = call(&c, "POST", &format!("{}/e/ep1/four", gw.base), Some(KEY_EP1), "{}").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad instances")));
    let (status, _, body) = call(&c, "POST", &format!("{}/e/ep1/five", gw.base), Some(KEY_EP1), "{}").await;
    assert_eq!((status, body["error"].as_str()), (500, Some("model crashed")));
    let m = gw.gateway.take_minutes_before(u64::MAX);
    // 503 and 500 are errors, the model's 400 is a call but not an error.
    assert_eq!((m[0].calls, m[0].errors), (3, 2));
}

#[tokio::test]
async fn a_slow_model_times_out_with_504() {
    // Accepts connections but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s);
        }
    });
    let gw =
        start_gateway(GatewayConfig { request_timeout: Duration::from_millis(300), ..GatewayConfig::default() }).await;
    gw.gateway
        .apply(&table(1, vec![stage("p1", "ep1", "st1", true, vec![resource("r", "/p", "m", &[addr])])]))
        .unwrap();
    let (status, _, body) = call(&client(), "POST", &format!("{}/e/ep1/p", gw.base), Some(KEY_EP1), "{}").await;
    assert_eq!(status, 504);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn garbage_from_a_caller_does_not_hurt_the_gateway() {
    let (gw, a, _b) = two_stages().await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    for garbage in [
        &b"\x00\x01\x02 not http at all\r\n\r\n"[..],
        b"POST /e/ep1/inference HTTP/1.1\r\ncontent-length: nope\r\n\r\n",
        b"GET /e/ep1/inference/v2/%ff%fe HTTP/1.1\r\nhost: x\r\nauthorization: Bearer \xff\xfe\r\n\r\n",
        b"POST /e/ep1/inference HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nshort",
    ] {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(garbage).await.unwrap();
        s.shutdown().await.unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    }
    let (status, _, _) = call(&client(), "POST", &format!("{}/e/ep1/inference", gw.base), Some(KEY_EP1), "{}").await;
    assert_eq!(status, 200);
    assert_eq!(a.count(), 1);
}

#[tokio::test]
async fn healthz_answers_on_the_same_port() {
    let (gw, _a, _b) = two_stages().await;
    let (status, _, body) = call(&client(), "GET", &format!("{}/healthz", gw.base), None, "").await;
    assert_eq!((status, body["routes_version"].as_u64()), (200, Some(1)));
}
