//! Authorization coverage that cannot drift: the RPCs under test come from the
//! compiled descriptor set (`gantry_proto::FILE_DESCRIPTOR_SET`), not from a list kept by
//! hand. Every method of every service must have an expectation below — a new RPC
//! without one fails this test — and is called over the wire as a raw gRPC request
//! with no token, unknown tokens, a join token as bearer, and another project's token.
//!
//! Request bodies are built from the descriptor too: the `project` field, where the
//! request has one, names team-a, so a project-scoped check is what stands between a
//! team-b token and team-a's resources. Agent methods speak about node-1 and are called
//! once more over mutual TLS with node-2's own certificate.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf as _, BufMut as _};
use gantry_proto::v1 as pb;
use gantry_tests::*;
use prost::Message as _;
use prost_types::{FileDescriptorSet, MethodDescriptorProto, field_descriptor_proto::Type};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::InterceptedService;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// A cluster-wide token only.
    Cluster,
    /// Any valid token (catalog reads, cluster status, nodes filtered by project).
    AnyToken,
    /// A token of the project named in the request, or a cluster-wide one.
    Project,
    /// Agents: a node certificate or the join token; bearer tokens mean nothing here.
    /// (Another node's certificate is covered in `node_identity.rs`.)
    Agent,
    /// Replica-to-replica traffic: not served on the API port at all (the peer port's
    /// own checks are covered in `replica_identity.rs`).
    PeerOnly,
}

/// The expectation for every RPC Gantry defines, by `package.Service/Method`.
const EXPECTATIONS: &[(&str, Rule)] = &[
    ("gantry.v1.ClusterService/GetStatus", Rule::AnyToken),
    ("gantry.v1.ProjectService/SetStorageGrants", Rule::Cluster),
    ("gantry.v1.ProjectService/GetStorageGrants", Rule::Project),
    ("gantry.v1.ProjectService/ListStorageGrants", Rule::Cluster),
    ("gantry.v1.CatalogService/PutInstanceType", Rule::Cluster),
    ("gantry.v1.CatalogService/ListInstanceTypes", Rule::AnyToken),
    ("gantry.v1.CatalogService/DeleteInstanceType", Rule::Cluster),
    ("gantry.v1.CatalogService/PutImage", Rule::Cluster),
    ("gantry.v1.CatalogService/ListImages", Rule::AnyToken),
    ("gantry.v1.CatalogService/DeleteImage", Rule::Cluster),
    ("gantry.v1.NodeService/ListNodes", Rule::AnyToken),
    ("gantry.v1.NodeService/GetNode", Rule::AnyToken),
    ("gantry.v1.NodeService/RevokeNode", Rule::Cluster),
    ("gantry.v1.NodeService/AdmitNode", Rule::Cluster),
    ("gantry.v1.ExperimentService/CreateExperiment", Rule::Project),
    ("gantry.v1.ExperimentService/GetExperiment", Rule::Project),
    ("gantry.v1.ExperimentService/ListExperiments", Rule::Project),
    ("gantry.v1.ExperimentService/DeleteExperiment", Rule::Project),
    ("gantry.v1.TrainingService/CreateTraining", Rule::Project),
    ("gantry.v1.TrainingService/GetTraining", Rule::Project),
    ("gantry.v1.TrainingService/ListTrainings", Rule::Project),
    ("gantry.v1.TrainingService/StopTraining", Rule::Project),
    ("gantry.v1.TrainingService/DeleteTraining", Rule::Project),
    ("gantry.v1.TrainingService/TrainingLogs", Rule::Project),
    ("gantry.v1.ModelService/CreateModel", Rule::Project),
    ("gantry.v1.ModelService/GetModel", Rule::Project),
    ("gantry.v1.ModelService/ListModels", Rule::Project),
    ("gantry.v1.ModelService/UpdateModel", Rule::Project),
    ("gantry.v1.ModelService/DeleteModel", Rule::Project),
    ("gantry.v1.AgentService/Register", Rule::Agent),
    ("gantry.v1.AgentService/Session", Rule::Agent),
    ("gantry.v1.AgentService/ReportContainer", Rule::Agent),
    ("gantry.v1.AgentService/ReportPods", Rule::Agent),
    ("gantry.v1.AgentService/Assignments", Rule::Agent),
    ("gantry.v1.AgentService/RenewCertificate", Rule::Agent),
    ("gantry.v1.EndpointService/CreateEndpoint", Rule::Project),
    ("gantry.v1.EndpointService/GetEndpoint", Rule::Project),
    ("gantry.v1.EndpointService/ListEndpoints", Rule::Project),
    ("gantry.v1.EndpointService/UpdateEndpoint", Rule::Project),
    ("gantry.v1.EndpointService/DeleteEndpoint", Rule::Project),
    ("gantry.v1.EndpointService/CreateStage", Rule::Project),
    ("gantry.v1.EndpointService/GetStage", Rule::Project),
    ("gantry.v1.EndpointService/ListStages", Rule::Project),
    ("gantry.v1.EndpointService/DeleteStage", Rule::Project),
    ("gantry.v1.EndpointService/SetDefaultStage", Rule::Project),
    ("gantry.v1.EndpointService/RedeployStage", Rule::Project),
    ("gantry.v1.EndpointService/GetGatewayConfig", Rule::Project),
    ("gantry.v1.EndpointService/GetStageStats", Rule::Project),
    ("gantry.v1.EndpointService/AddStageResource", Rule::Project),
    ("gantry.v1.EndpointService/DeleteStageResource", Rule::Project),
    ("gantry.v1.EndpointService/UpdateStageResource", Rule::Project),
    ("gantry.v1.EndpointService/CreateApiKey", Rule::Project),
    ("gantry.v1.EndpointService/ListApiKeys", Rule::Project),
    ("gantry.v1.EndpointService/DeleteApiKey", Rule::Project),
    // Gateways present a cluster-wide token (docs/serving.md).
    ("gantry.v1.GatewayService/WatchRoutes", Rule::Cluster),
    ("gantry.v1.GatewayService/ReportGateway", Rule::Cluster),
    ("gantry.v1.RaftService/Step", Rule::PeerOnly),
    ("gantry.v1.RaftService/StepStream", Rule::PeerOnly),
    ("gantry.v1.RaftService/Rejoin", Rule::PeerOnly),
];

/// The node agent calls speak about, and the one whose certificate tries to.
const VICTIM: &str = "node-1";
const OTHER: &str = "node-2";

/// One RPC as the descriptor set describes it.
struct Rpc {
    path: String,
    /// The request body: the input message with `project` = team-a where it has one.
    body: Vec<u8>,
}

/// Every RPC of every `gantry.*` service, with a request body for it.
fn rpcs() -> anyhow::Result<Vec<Rpc>> {
    let set = FileDescriptorSet::decode(gantry_proto::FILE_DESCRIPTOR_SET)?;
    let mut messages = BTreeMap::new();
    for file in &set.file {
        for m in &file.message_type {
            messages.insert(format!(".{}.{}", file.package(), m.name()), m.clone());
        }
    }
    let mut out = Vec::new();
    for file in set.file.iter().filter(|f| f.package().starts_with("gantry.")) {
        for service in &file.service {
            for method in &service.method {
                let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                out.push(Rpc { body: body(&path, method, &messages)?, path });
            }
        }
    }
    Ok(out)
}

fn body(
    path: &str,
    method: &MethodDescriptorProto,
    messages: &BTreeMap<String, prost_types::DescriptorProto>,
) -> anyhow::Result<Vec<u8>> {
    // Agent calls about node-1, complete enough that only the caller's identity can
    // stop them (a session opens with Hello).
    match path {
        "/gantry.v1.AgentService/Session" => {
            let hello = pb::Hello { node_id: VICTIM.into() };
            return Ok(pb::AgentMessage { kind: Some(pb::agent_message::Kind::Hello(hello)) }.encode_to_vec());
        }
        "/gantry.v1.AgentService/Register" => {
            // Without the join token: the callers under test bring their own credentials.
            let register = pb::RegisterNodeRequest { join_token: String::new(), ..gpu_node(VICTIM, 0) };
            return Ok(register.encode_to_vec());
        }
        "/gantry.v1.AgentService/ReportContainer" => {
            let report = pb::ReportContainerRequest {
                node_id: VICTIM.into(),
                workload_id: "any".into(),
                rank: 0,
                phase: "FAILED".into(),
                reason: "forged".into(),
            };
            return Ok(report.encode_to_vec());
        }
        "/gantry.v1.AgentService/ReportPods" => {
            let pod = pb::PodState { pod_id: "p".into(), ready: true, failed: false, reason: String::new() };
            let report = pb::ReportPodsRequest { node_id: VICTIM.into(), workload_id: "any".into(), pods: vec![pod] };
            return Ok(report.encode_to_vec());
        }
        "/gantry.v1.AgentService/Assignments" => {
            return Ok(pb::AssignmentsRequest { node_id: VICTIM.into() }.encode_to_vec());
        }
        _ => {}
    }
    let input = messages
        .get(method.input_type())
        .ok_or_else(|| anyhow::anyhow!("{path}: input type {} not in the descriptor set", method.input_type()))?;
    let mut buf = Vec::new();
    if let Some(field) = input.field.iter().find(|f| f.name() == "project" && f.r#type() == Type::String) {
        // Wire type 2 (length-delimited) for a string field.
        prost::encoding::encode_key(field.number() as u32, prost::encoding::WireType::LengthDelimited, &mut buf);
        prost::encoding::encode_varint(TEAM_A.len() as u64, &mut buf);
        buf.extend_from_slice(TEAM_A.as_bytes());
    }
    Ok(buf)
}

/// Sends and receives message bodies as they are: the body is already encoded.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// What a call came to: the status code of its answer (or of its first streamed
/// message), `Ok` if it was served, or `Ok` too if a stream stayed open (served).
async fn call(channel: &Channel, auth: Authorization, rpc: &Rpc) -> anyhow::Result<Code> {
    let channel = InterceptedService::new(channel.clone(), auth);
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| anyhow::anyhow!("channel not ready: {e}"))?;
    let path = PathAndQuery::try_from(rpc.path.clone())?;
    let request = tonic::Request::new(tokio_stream::iter(vec![rpc.body.clone()]));
    let answer = async {
        match grpc.streaming(request, path, RawCodec).await {
            Err(status) => status.code(),
            Ok(response) => match response.into_inner().message().await {
                Err(status) => status.code(),
                Ok(_) => Code::Ok,
            },
        }
    };
    // A long-lived stream that was let in does not answer at once: that is "served".
    Ok(tokio::time::timeout(Duration::from_secs(3), answer).await.unwrap_or(Code::Ok))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_in_the_descriptor_set_has_an_expectation_and_meets_it() -> anyhow::Result<()> {
    let rpcs = rpcs()?;
    let expected: BTreeMap<String, Rule> = EXPECTATIONS.iter().map(|(m, r)| (format!("/{m}"), *r)).collect();
    let missing: Vec<&str> = rpcs.iter().map(|r| r.path.as_str()).filter(|p| !expected.contains_key(*p)).collect();
    assert!(missing.is_empty(), "RPCs without an authorization expectation in this test: {missing:?}");
    let stale: Vec<&String> = expected.keys().filter(|p| !rpcs.iter().any(|r| &r.path == *p)).collect();
    assert!(stale.is_empty(), "expectations for RPCs that no longer exist: {stale:?}");

    let sandbox = Sandbox::start().await?;
    let api = sandbox.channel();
    // node-1 and node-2 join; node-2's certificate then tries to act for node-1.
    let mut joined = Vec::new();
    for name in [VICTIM, OTHER] {
        let (key_pem, csr_pem) = gantry_pki::node_csr(name)?;
        let request = pb::RegisterNodeRequest { csr_pem, ..gpu_node(name, 0) };
        let answer = expect_ok(sandbox.anonymous().agent.register(request).await, &format!("{name} joins"));
        joined.push((key_pem, answer.cert_pem));
    }
    let dir = tempfile::tempdir()?;
    let files = gantry_pki::TlsFiles {
        ca_cert: sandbox.ca_cert().to_path_buf(),
        cert: dir.path().join("node.pem"),
        key: dir.path().join("node-key.pem"),
    };
    std::fs::write(&files.key, &joined[1].0)?;
    std::fs::write(&files.cert, &joined[1].1)?;
    let as_other = Endpoint::from_shared(format!("https://{}", sandbox.api_addr()))?
        .tls_config(gantry_pki::client_tls(&files, "localhost")?)?
        .connect_lazy();
    let bearer = |t: &str| Authorization::bearer(t).map_err(|e| anyhow::anyhow!("{e}"));
    let strangers = [
        ("no token", Authorization::none()),
        ("unknown token", bearer("not-a-known-token-0123456789")?),
        ("admin token with a suffix", bearer(&format!("{ADMIN_TOKEN}x"))?),
        ("join token as bearer", bearer(JOIN_TOKEN)?),
    ];
    let mut failures = Vec::new();
    for rpc in &rpcs {
        let rule = expected[&rpc.path];
        let mut check = |who: &str, got: Code, ok: &dyn Fn(Code) -> bool, want: &str| {
            if !ok(got) {
                failures.push(format!("{} as {who}: got {got:?}, want {want}", rpc.path));
            }
        };
        if rule == Rule::PeerOnly {
            let got = call(&api, bearer(ADMIN_TOKEN)?, rpc).await?;
            check("admin", got, &|c| c == Code::Unimplemented, "Unimplemented (not served on the API port)");
            continue;
        }
        for (who, auth) in &strangers {
            let got = call(&api, auth.clone(), rpc).await?;
            check(who, got, &|c| c == Code::Unauthenticated, "Unauthenticated");
        }
        // team-b's token, aimed at team-a (the body names team-a where it names a project).
        let got = call(&api, bearer(TEAM_B_TOKEN)?, rpc).await?;
        match rule {
            Rule::Cluster | Rule::Project => check("team-b", got, &|c| c == Code::PermissionDenied, "PermissionDenied"),
            Rule::Agent => check("team-b", got, &|c| c == Code::Unauthenticated, "Unauthenticated"),
            Rule::AnyToken => {
                check("team-b", got, &|c| !matches!(c, Code::Unauthenticated | Code::PermissionDenied), "served")
            }
            Rule::PeerOnly => {}
        }
        // Another node's certificate cannot act for node-1 (renewing only ever renews
        // the caller's own certificate).
        if rule == Rule::Agent {
            let got = call(&as_other, Authorization::none(), rpc).await?;
            if rpc.path.ends_with("/RenewCertificate") {
                check("node-2", got, &|c| !matches!(c, Code::Unauthenticated | Code::PermissionDenied), "served");
            } else {
                check("node-2", got, &|c| c == Code::PermissionDenied, "PermissionDenied");
            }
        }
        // team-a's own token passes the project check of its own project's methods.
        if rule == Rule::Project {
            let got = call(&api, bearer(TEAM_A_TOKEN)?, rpc).await?;
            check("team-a", got, &|c| !matches!(c, Code::Unauthenticated | Code::PermissionDenied), "served");
        }
    }
    assert!(failures.is_empty(), "authorization gaps:\n{}", failures.join("\n"));
    sandbox.shutdown().await
}
