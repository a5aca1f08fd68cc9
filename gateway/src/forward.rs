//! Calling a stage resource's pods: keep-alive connection pools, round-robin, and a
//! retry on another pod only when connecting failed, i.e. before any byte of the
//! request was sent. Once a request may have reached a pod it is never sent again:
//! inference calls are not known to be idempotent.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::routes::Resource;

/// Header carrying the call's inference id, to the pod and back to the caller.
pub const INFERENCE_ID_HEADER: &str = "x-inference-id";

/// The pooled HTTP/1 client to the pods.
pub type PodClient = Client<HttpConnector, Full<Bytes>>;

pub fn pod_client(connect_timeout: Duration, pool_idle_timeout: Duration) -> PodClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(pool_idle_timeout)
        .pool_timer(TokioTimer::new())
        // A pooled connection the pod closed while idle is retried on a new one by the
        // client itself only when the request was not written: the same rule as ours.
        .retry_canceled_requests(true)
        .build(connector)
}

/// What a forwarded call produced.
#[derive(Debug)]
pub enum Forwarded {
    /// The pod answered (any status), body read in full.
    Answer(Response<Bytes>),
    /// No pod could be connected to.
    Unreachable(String),
    /// The request may have been sent, and then the exchange failed.
    Failed(String),
}

/// The request to repeat on each attempt (the body is already read, so it can be
/// resent after a connect failure).
pub struct Outgoing<'a> {
    pub method: &'a Method,
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub inference_id: &'a str,
}

/// Calls the resource's pods in round-robin order until one accepts a connection.
pub async fn forward(client: &PodClient, resource: &Resource, out: &Outgoing<'_>) -> Forwarded {
    let mut last_connect_error = String::from("no backend");
    for backend in resource.backends_for_call() {
        let request = match build(backend, out) {
            Ok(r) => r,
            Err(e) => {
                last_connect_error = format!("backend {backend}: {e}");
                continue;
            }
        };
        match client.request(request).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                return match body.collect().await {
                    Ok(body) => Forwarded::Answer(Response::from_parts(parts, body.to_bytes())),
                    Err(e) => Forwarded::Failed(format!("backend {backend}: reading the answer failed: {e}")),
                };
            }
            Err(e) if e.is_connect() => {
                tracing::debug!(backend, error = %e, "connect failed, trying the next backend");
                last_connect_error = format!("backend {backend}: connect failed");
            }
            Err(e) => return Forwarded::Failed(format!("backend {backend}: {}", error_chain(&e))),
        }
    }
    Forwarded::Unreachable(last_connect_error)
}

fn build(backend: &str, out: &Outgoing<'_>) -> Result<Request<Full<Bytes>>, http::Error> {
    let uri: Uri = format!("http://{backend}{}", out.path_and_query).parse()?;
    let mut request = Request::builder().method(out.method.clone()).uri(uri).body(Full::new(out.body.clone()))?;
    let headers = request.headers_mut();
    for (name, value) in out.headers {
        if forwardable(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(INFERENCE_ID_HEADER, HeaderValue::from_str(out.inference_id)?);
    Ok(request)
}

/// Headers that describe one hop (RFC 9110 §7.6.1), the length hyper sets itself, and
/// the caller's credentials, which the pod has no use for.
pub fn forwardable(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::CONNECTION
            | header::HOST
            | header::PROXY_AUTHENTICATE
            | header::PROXY_AUTHORIZATION
            | header::TE
            | header::TRAILER
            | header::TRANSFER_ENCODING
            | header::UPGRADE
            | header::CONTENT_LENGTH
            | header::AUTHORIZATION
    ) && name.as_str() != "keep-alive"
        && name.as_str() != INFERENCE_ID_HEADER
}

/// An error with its sources, which is where hyper says what actually happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
