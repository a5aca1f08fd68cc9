//! One caller request, end to end:
//!
//! ```text
//!   route (404/405) → auth (401/403) → read body (413) → pods (503 none ready)
//!     → forward (502 failed, 504 timeout, else the pod's answer)
//!     → stage statistics + inference log
//! ```
//! Every answer the gateway makes itself is `{"error": "..."}` JSON. Only requests that
//! reach the forwarding step are stage calls (counted and logged).

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::auth::{AuthDecision, authorize};
use crate::forward::{Forwarded, INFERENCE_ID_HEADER, Outgoing, forward, forwardable};
use crate::gateway::Inner;
use crate::inference_log::{CallSummary, InferenceLog, new_inference_id};
use crate::routes::{Route, RouteError};
use crate::stats::now_ms;

pub type GatewayResponse = Response<Full<Bytes>>;

/// A JSON error answer made by the gateway.
pub fn json_error(status: StatusCode, message: &str) -> GatewayResponse {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub async fn handle(gw: &Inner, request: Request<Incoming>) -> GatewayResponse {
    if request.uri().path() == "/healthz" {
        let body = serde_json::json!({ "status": "ok", "routes_version": gw.applied_version() }).to_string();
        return Response::new(Full::new(Bytes::from(body)));
    }
    let table = gw.table();
    let route = match table.route(request.method(), request.uri().path()) {
        Ok(route) => route,
        Err(RouteError::NotFound) => return json_error(StatusCode::NOT_FOUND, "no endpoint or stage at this path"),
        Err(RouteError::MethodNotAllowed) => {
            let mut r = json_error(StatusCode::METHOD_NOT_ALLOWED, "the predict URL takes POST only");
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
    };
    let authorization = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
    match authorize(&table, &route.stage, authorization) {
        AuthDecision::Allowed => {}
        AuthDecision::Unauthenticated => {
            let mut r = json_error(StatusCode::UNAUTHORIZED, "a valid API key or project token is required");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
        AuthDecision::Forbidden => {
            return json_error(StatusCode::FORBIDDEN, "this key may not call this endpoint");
        }
    }
    drop(table);
    let (parts, body) = request.into_parts();
    let body = match read_body(gw, &parts.headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    call(gw, &route, &parts, body).await
}

/// The request body, at most the configured limit (413 beyond it).
async fn read_body(gw: &Inner, headers: &http::HeaderMap, body: Incoming) -> Result<Bytes, GatewayResponse> {
    let limit = gw.config.max_body_bytes;
    let too_large = || json_error(StatusCode::PAYLOAD_TOO_LARGE, &format!("request body exceeds {limit} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = Limited::new(body, limit).collect();
    match tokio::time::timeout(gw.config.request_timeout, read).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(_)) => Err(json_error(StatusCode::BAD_REQUEST, "the request body could not be read")),
        Err(_) => Err(json_error(StatusCode::REQUEST_TIMEOUT, "the request body was not sent in time")),
    }
}

/// A stage call: forwarded, counted, logged.
async fn call(gw: &Inner, route: &Route, parts: &http::request::Parts, body: Bytes) -> GatewayResponse {
    let started = Instant::now();
    let inference_id = new_inference_id();
    let resource = route.resource();
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{}?{q}", route.upstream_path),
        None => route.upstream_path.clone(),
    };
    let mut response = if resource.backends.is_empty() {
        json_error(StatusCode::SERVICE_UNAVAILABLE, "no ready backend for this resource")
    } else {
        let out = Outgoing {
            method: &parts.method,
            path_and_query: &path_and_query,
            headers: &parts.headers,
            body,
            inference_id: &inference_id,
        };
        match tokio::time::timeout(gw.config.request_timeout, forward(&gw.client, resource, &out)).await {
            Ok(Forwarded::Answer(answer)) => pass_through(answer),
            Ok(Forwarded::Unreachable(why)) => {
                tracing::warn!(stage = %route.stage.stage_id, error = %why, "no backend reachable");
                json_error(StatusCode::BAD_GATEWAY, "no backend of this resource could be reached")
            }
            Ok(Forwarded::Failed(why)) => {
                tracing::warn!(stage = %route.stage.stage_id, error = %why, "forwarding failed");
                json_error(StatusCode::BAD_GATEWAY, "the model server failed to answer")
            }
            Err(_) => json_error(StatusCode::GATEWAY_TIMEOUT, "the model server did not answer in time"),
        }
    };
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let status = response.status();
    gw.stats.record(&route.stage.stage_id, now_ms(), latency_us, status.is_server_error());
    if let Ok(v) = HeaderValue::from_str(&inference_id) {
        response.headers_mut().insert(INFERENCE_ID_HEADER, v);
    }
    if route.stage.use_log
        && let Some(sink) = &gw.config.log_sink
    {
        sink.write(InferenceLog::of_call(&CallSummary {
            project: &route.stage.project,
            endpoint_id: &route.stage.endpoint_id,
            stage_id: &route.stage.stage_id,
            inference_id: &inference_id,
            action: route.action,
            model: &resource.model,
            method: parts.method.as_str(),
            path: parts.uri.path(),
            status: status.as_u16(),
            latency_us,
            at: SystemTime::now(),
        }));
    }
    response
}

/// The pod's answer with its status and body; hop-by-hop headers dropped.
fn pass_through(answer: Response<Bytes>) -> GatewayResponse {
    let (parts, body) = answer.into_parts();
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if forwardable(name) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}
