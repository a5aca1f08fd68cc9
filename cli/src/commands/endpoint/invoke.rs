//! `gantryctl endpoint invoke`: one inference call through the gateway, as any client
//! would make it (the endpoint's URL, a bearer key), printing the model's answer.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use gantry_proto::v1::{Endpoint, GetEndpointRequest, Stage};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::client;
use crate::commands::Context;
use crate::output::Format;

#[derive(Debug, Args)]
pub struct InvokeArgs {
    pub endpoint: String,
    /// Call this stage's URL instead of the endpoint's (which answers from the default stage)
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// The resource path; may be left out when the stage has one resource
    #[arg(long, value_name = "/PATH")]
    pub path: Option<String>,
    /// Call the Open Inference Protocol (V2) route `{path}/v2/models/{model}/infer`
    #[arg(long)]
    pub v2: bool,
    /// The JSON body, or @FILE to read it from a file
    #[arg(long, value_name = "JSON|@FILE")]
    pub data: String,
    /// API key of the endpoint (default: the CLI's own project token)
    #[arg(long, env = "GANTRY_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Give up after this long
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub timeout: Duration,
}

pub async fn run(ctx: &Context, args: InvokeArgs) -> anyhow::Result<()> {
    let request = GetEndpointRequest { project: ctx.project.clone(), name: args.endpoint.clone(), read: None };
    let endpoint = ctx
        .conn
        .call(|ch| {
            let request = request.clone();
            async move { client(ch).get_endpoint(request).await }
        })
        .await?;
    let url = target_url(&endpoint, args.stage.as_deref(), args.path.as_deref(), args.v2)?;
    let body = match args.data.strip_prefix('@') {
        Some(path) => std::fs::read(path).with_context(|| format!("reading the body from {path}"))?,
        None => args.data.clone().into_bytes(),
    };
    serde_json::from_slice::<serde_json::Value>(&body).context("--data must be JSON")?;
    let token = args.key.clone().or_else(|| ctx.token.clone());
    let (status, answer) = tokio::time::timeout(args.timeout, post(&url, token.as_deref(), body))
        .await
        .map_err(|_| anyhow!("no answer from {url} within {}", humantime::format_duration(args.timeout)))??;
    let text = String::from_utf8_lossy(&answer);
    match ctx.format {
        Format::Json => println!("{text}"),
        Format::Table => match serde_json::from_slice::<serde_json::Value>(&answer) {
            Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
            Err(_) => println!("{text}"),
        },
    }
    if !status.is_success() {
        bail!("{url} answered {status}");
    }
    Ok(())
}

/// The URL a caller posts to: `{endpoint or stage URL}{resource path}`, plus the V2
/// infer route when asked for.
fn target_url(endpoint: &Endpoint, stage: Option<&str>, path: Option<&str>, v2: bool) -> anyhow::Result<String> {
    let stage_name = stage.unwrap_or(&endpoint.default_stage);
    let s: &Stage = endpoint
        .stages
        .iter()
        .find(|s| s.name == stage_name)
        .ok_or_else(|| anyhow!("endpoint \"{}\" has no stage \"{stage_name}\"", endpoint.name))?;
    let base = if stage.is_some() { &s.url } else { &endpoint.url };
    if base.is_empty() {
        bail!("stage \"{}\" has no URL yet ({})", s.name, s.status);
    }
    let resource = match path {
        Some(p) => s
            .resources
            .iter()
            .find(|r| r.resource_path == p)
            .ok_or_else(|| anyhow!("stage \"{}\" has no resource at {p}", s.name))?,
        None => match s.resources.as_slice() {
            [only] => only,
            [] => bail!("stage \"{}\" has no resources", s.name),
            _ => bail!("stage \"{}\" has several resources: choose one with --path", s.name),
        },
    };
    let mut url = format!("{}{}", base.trim_end_matches('/'), resource.resource_path);
    if v2 {
        url.push_str(&format!("/v2/models/{}/infer", resource.model));
    }
    Ok(url)
}

async fn post(url: &str, token: Option<&str>, body: Vec<u8>) -> anyhow::Result<(hyper::StatusCode, Bytes)> {
    if !url.starts_with("http://") {
        bail!("{url}: only http:// gateway URLs can be called from the CLI");
    }
    let mut request = hyper::Request::post(url).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(Full::new(Bytes::from(body))).context("building the request")?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await.with_context(|| format!("calling {url}"))?;
    let status = response.status();
    let answer = response.into_body().collect().await.context("reading the answer")?.to_bytes();
    Ok((status, answer))
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1::StageResource;

    use super::*;

    fn endpoint() -> Endpoint {
        let resource =
            |path: &str| StageResource { model: "iris".into(), resource_path: path.into(), ..Default::default() };
        Endpoint {
            name: "e".into(),
            default_stage: "default".into(),
            url: "http://gw:8480/e/ep-1".into(),
            stages: vec![
                Stage {
                    name: "default".into(),
                    url: "http://gw:8480/s/st-1".into(),
                    resources: vec![resource("/inference")],
                    ..Default::default()
                },
                Stage {
                    name: "canary".into(),
                    url: "http://gw:8480/s/st-2".into(),
                    resources: vec![resource("/a"), resource("/b")],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn the_endpoint_url_is_used_unless_a_stage_is_named() {
        let e = endpoint();
        assert_eq!(target_url(&e, None, None, false).unwrap(), "http://gw:8480/e/ep-1/inference");
        assert_eq!(target_url(&e, Some("canary"), Some("/b"), false).unwrap(), "http://gw:8480/s/st-2/b");
        assert_eq!(target_url(&e, None, None, true).unwrap(), "http://gw:8480/e/ep-1/inference/v2/models/iris/infer");
    }

    #[test]
    fn ambiguous_or_unknown_targets_are_refused() {
        let e = endpoint();
        assert!(target_url(&e, Some("canary"), None, false).unwrap_err().to_string().contains("--path"));
        assert!(target_url(&e, Some("nope"), None, false).unwrap_err().to_string().contains("no stage"));
        assert!(target_url(&e, None, Some("/x"), false).unwrap_err().to_string().contains("no resource"));
    }
}
