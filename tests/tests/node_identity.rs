//! One node must never speak for another: the join token admits a new node name once,
//! a node certificate acts only for its node and the containers placed there, a revoked
//! certificate is refused on every agent call, an expired one at the TLS handshake, and
//! a renewal gives a later certificate without cutting off the current one.
//!
//! Each test plays the agents itself over the wire (their own keys, CSRs and mutual
//! TLS), so every refusal is checked together with its absence of effect.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gantry_pki::{NodeCertificate, TlsFiles};
use gantry_proto::v1::agent_service_client::AgentServiceClient;
use gantry_proto::v1::project_service_client::ProjectServiceClient;
use gantry_proto::v1::{self as pb, agent_message};
use gantry_tests::{
    ADMIN_TOKEN, DEADLINE, JOIN_TOKEN, Sandbox, TEAM_A, cpu_training, create_training, eventually, expect_code,
    expect_ok, gpu_node, wait_for_training,
};
use tempfile::TempDir;
use tonic::Code;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// An agent as the tests play it: its key and certificate on disk, and a client that
/// presents them.
struct FakeNode {
    name: String,
    files: TlsFiles,
    agent: AgentServiceClient<Channel>,
    _dir: TempDir,
}

impl FakeNode {
    /// Joins `name` with the join token and a CSR, as a new agent does.
    async fn join(sandbox: &Sandbox, name: &str) -> anyhow::Result<FakeNode> {
        let (key_pem, csr_pem) = gantry_pki::node_csr(name)?;
        let request = pb::RegisterNodeRequest { csr_pem, ..gpu_node(name, 0) };
        let resp = expect_ok(sandbox.anonymous().agent.register(request).await, &format!("{name} joins"));
        Self::with_cert(sandbox, name, &key_pem, &resp.cert_pem)
    }

    /// A node presenting `cert_pem` for `key_pem`.
    fn with_cert(sandbox: &Sandbox, name: &str, key_pem: &str, cert_pem: &str) -> anyhow::Result<FakeNode> {
        let dir = tempfile::Builder::new().prefix("gantry-node-id-").tempdir()?;
        let files = TlsFiles {
            ca_cert: sandbox.ca_cert().to_path_buf(),
            cert: dir.path().join("node.pem"),
            key: dir.path().join("node-key.pem"),
        };
        std::fs::write(&files.key, key_pem)?;
        std::fs::write(&files.cert, cert_pem)?;
        let agent = AgentServiceClient::new(mtls_channel(sandbox, &files)?);
        Ok(FakeNode { name: name.into(), files, agent, _dir: dir })
    }

    fn certificate(&self) -> anyhow::Result<NodeCertificate> {
        NodeCertificate::from_pem(&std::fs::read_to_string(&self.files.cert)?)
            .ok_or_else(|| anyhow::anyhow!("{}: unreadable certificate", self.name))
    }

    /// Re-registration with the node's own certificate (no join token).
    fn register_request(&self, address: &str) -> pb::RegisterNodeRequest {
        pb::RegisterNodeRequest {
            address: address.into(),
            join_token: String::new(),
            csr_pem: String::new(),
            ..gpu_node(&self.name, 0)
        }
    }

    fn report(&self, node_id: &str, workload_id: &str, rank: u32, phase: &str) -> pb::ReportContainerRequest {
        pb::ReportContainerRequest {
            node_id: node_id.into(),
            workload_id: workload_id.into(),
            rank,
            phase: phase.into(),
            reason: "forged".into(),
        }
    }

    /// Opens a session saying hello as `node_id`; returns the first message or the
    /// refusal, and the stream.
    async fn session(
        &self,
        node_id: &str,
    ) -> Result<(tonic::Streaming<pb::SchedulerMessage>, tokio::sync::mpsc::Sender<pb::AgentMessage>), tonic::Status>
    {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let hello = pb::AgentMessage { kind: Some(agent_message::Kind::Hello(pb::Hello { node_id: node_id.into() })) };
        let _ = tx.send(hello).await;
        let mut inbound = self.agent.clone().session(ReceiverStream::new(rx)).await?.into_inner();
        // The first message is the node's assignments (or the refusal).
        match tokio::time::timeout(DEADLINE, inbound.message()).await {
            Ok(Ok(Some(_))) => Ok((inbound, tx)),
            Ok(Ok(None)) => Err(tonic::Status::aborted("session ended before the first message")),
            Ok(Err(status)) => Err(status),
            Err(_) => Err(tonic::Status::deadline_exceeded("no first session message")),
        }
    }
}

fn mtls_channel(sandbox: &Sandbox, files: &TlsFiles) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("https://{}", sandbox.api_addr()))?
        .tls_config(gantry_pki::client_tls(files, "localhost")?)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(DEADLINE)
        .connect_lazy())
}

/// The CA directory of the sandbox (its key lies beside the certificate).
fn ca_dir(sandbox: &Sandbox) -> PathBuf {
    sandbox.ca_cert().parent().map(Path::to_path_buf).unwrap_or_default()
}

async fn get_node(sandbox: &Sandbox, id: &str) -> anyhow::Result<pb::Node> {
    Ok(sandbox.admin().nodes.get_node(pb::GetNodeRequest { id: id.into(), read: None }).await?.into_inner())
}

/// Grants team-a the paths of [`cpu_training`], so its trainings can be created.
async fn grant_team_a(sandbox: &Sandbox) -> anyhow::Result<()> {
    let channel = Endpoint::from_shared(format!("https://{}", sandbox.api_addr()))?
        .tls_config(gantry_pki::client_tls_ca_only(sandbox.ca_cert(), "localhost")?)?
        .connect_lazy();
    let auth = gantry_tests::Authorization::bearer(ADMIN_TOKEN)?;
    let mut projects = ProjectServiceClient::with_interceptor(channel, auth);
    let grants =
        pb::StorageGrants { read: vec!["file:///srv/algorithms".into()], write: vec!["file:///srv/output".into()] };
    projects.set_storage_grants(pb::SetStorageGrantsRequest { project: TEAM_A.into(), grants: Some(grants) }).await?;
    Ok(())
}

/// Creates a CPU training of team-a and waits until it is placed; returns its
/// workload id and the node of rank 0.
async fn placed_training(sandbox: &Sandbox, name: &str) -> anyhow::Result<(String, String)> {
    let admin = sandbox.admin();
    let spec = pb::TrainingSpec { create_experiment: true, ..cpu_training(name, "identity") };
    expect_ok(admin.trainings.clone().create_training(create_training(TEAM_A, spec)).await, "create training");
    let t = wait_for_training(&admin, TEAM_A, name, "placed", |t| t.status == "CREATE IN PROGRESS").await?;
    let node = t.assignments.first().map(|a| a.node_id.clone()).unwrap_or_default();
    Ok((t.id, node))
}

async fn training_status(sandbox: &Sandbox, name: &str) -> anyhow::Result<String> {
    let req = pb::GetTrainingRequest { project: TEAM_A.into(), name: name.into(), read: None };
    Ok(sandbox.admin().trainings.get_training(req).await?.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_token_admits_a_node_name_once() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let node = FakeNode::join(&sandbox, "gpu-1").await?;
    let before = get_node(&sandbox, "gpu-1").await?;

    // Someone else with the join token claims the name: with and without a CSR, with
    // another address and inventory.
    let (_key, csr_pem) = gantry_pki::node_csr("gpu-1")?;
    for (what, csr_pem) in [("re-join without a CSR", String::new()), ("re-join with a CSR", csr_pem)] {
        let request = pb::RegisterNodeRequest { address: "10.6.6.6".into(), csr_pem, ..gpu_node("gpu-1", 8) };
        let status = expect_code(sandbox.anonymous().agent.register(request).await, Code::PermissionDenied, what);
        assert!(status.message().contains("own certificate"), "{what}: {}", status.message());
        let after = get_node(&sandbox, "gpu-1").await?;
        assert_eq!((&after.address, &after.inventory), (&before.address, &before.inventory), "{what}: node changed");
    }
    // The join token cannot open the node's session or report for it either.
    let mut joiner = sandbox.anonymous().agent;
    let report = node.report("gpu-1", "any", 0, "RUNNING");
    let mut request = tonic::Request::new(report);
    request.metadata_mut().insert(gantry_proto::JOIN_TOKEN_HEADER, JOIN_TOKEN.parse()?);
    expect_code(joiner.report_container(request).await, Code::PermissionDenied, "report with the join token");

    // The node itself re-registers with its certificate and may change its address.
    expect_ok(node.agent.clone().register(node.register_request("10.0.0.7")).await, "re-register with the cert");
    assert_eq!(get_node(&sandbox, "gpu-1").await?.address, "10.0.0.7");

    // Another node's certificate cannot re-register it.
    let other = FakeNode::join(&sandbox, "gpu-2").await?;
    let request = pb::RegisterNodeRequest { hostname: "gpu-1".into(), ..other.register_request("10.6.6.6") };
    expect_code(other.agent.clone().register(request).await, Code::PermissionDenied, "gpu-2 re-registers gpu-1");
    assert_eq!(get_node(&sandbox, "gpu-1").await?.address, "10.0.0.7");

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_join_whose_answer_was_lost_is_retried_with_the_same_key() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let (key, csr_pem) = gantry_pki::node_csr("gpu-9")?;
    let join = |csr_pem: String| {
        let mut request = tonic::Request::new(pb::RegisterNodeRequest { csr_pem, ..gpu_node("gpu-9", 2) });
        request.metadata_mut().insert(gantry_proto::JOIN_TOKEN_HEADER, JOIN_TOKEN.parse().expect("header"));
        request
    };
    let first = expect_ok(sandbox.anonymous().agent.register(join(csr_pem)).await, "first join");
    // Its answer is lost; the agent retries with a new CSR for the same key.
    let retry_csr = gantry_pki::node_csr_for_key("gpu-9", &key)?;
    let retry = expect_ok(sandbox.anonymous().agent.register(join(retry_csr)).await, "the same join again");
    assert!(!retry.cert_pem.is_empty() && retry.node_id == first.node_id);
    let before = get_node(&sandbox, "gpu-9").await?;
    // Someone else with the join token but another key is still refused.
    let (_, other_csr) = gantry_pki::node_csr("gpu-9")?;
    expect_code(sandbox.anonymous().agent.register(join(other_csr)).await, Code::PermissionDenied, "another key");
    assert_eq!(get_node(&sandbox, "gpu-9").await?.inventory, before.inventory);
    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reports_only_the_containers_placed_on_it() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    grant_team_a(&sandbox).await?;
    // B joins first, so the training lands on B; A joins afterwards.
    let b = FakeNode::join(&sandbox, "node-b").await?;
    let (workload, placed_on) = placed_training(&sandbox, "t1").await?;
    assert_eq!(placed_on, "node-b");
    let a = FakeNode::join(&sandbox, "node-a").await?;

    let cases = [
        ("A's certificate naming node B", a.report("node-b", &workload, 0, "FAILED"), "not 'node-b'"),
        ("A's certificate naming itself for B's rank", a.report("node-a", &workload, 0, "FAILED"), "rank 0"),
        ("A reporting a rank that does not exist", a.report("node-a", &workload, 3, "FAILED"), "rank 3"),
    ];
    for (what, request, expected) in cases {
        let status = expect_code(a.agent.clone().report_container(request).await, Code::PermissionDenied, what);
        assert!(status.message().contains(expected), "{what}: {}", status.message());
        if expected.starts_with("rank") {
            assert!(status.message().contains(&workload), "{what}: the workload is not named: {}", status.message());
        }
        assert_eq!(training_status(&sandbox, "t1").await?, "CREATE IN PROGRESS", "{what}: the training changed");
    }
    // A cannot open B's session.
    let refused = a.session("node-b").await.map(|_| ());
    assert_eq!(refused.map_err(|s| s.code()), Err(Code::PermissionDenied), "A opens B's session");
    // Nor read B's assignments; B reads its own, linearizably.
    let read = |node: &str| pb::AssignmentsRequest { node_id: node.into() };
    expect_code(a.agent.clone().assignments(read("node-b")).await, Code::PermissionDenied, "A reads B's assignments");
    let own = b.agent.clone().assignments(read("node-b")).await?.into_inner();
    assert!(own.items.iter().any(|w| w.workload_id == workload), "B's assignments: {own:?}");
    assert!(own.applied_index > 0);

    // B's own report is accepted: the refusals above were about ownership, not format.
    expect_ok(b.agent.clone().report_container(b.report("node-b", &workload, 0, "RUNNING")).await, "B reports");
    wait_for_training(&sandbox.admin(), TEAM_A, "t1", "running", |t| t.status == "RUNNING").await?;

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_node_is_refused_everywhere_until_admitted_again() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    grant_team_a(&sandbox).await?;
    let node = FakeNode::join(&sandbox, "node-r").await?;
    let (workload, _) = placed_training(&sandbox, "on-r").await?;
    let (mut session, _keep_open) = node.session("node-r").await?;

    // Only a cluster token revokes.
    let revoke = pb::RevokeNodeRequest { id: "node-r".into(), reason: "key leaked".into() };
    expect_code(sandbox.team_a().nodes.revoke_node(revoke.clone()).await, Code::PermissionDenied, "team-a revokes");
    expect_code(sandbox.anonymous().nodes.revoke_node(revoke.clone()).await, Code::Unauthenticated, "no token");
    assert_eq!(get_node(&sandbox, "node-r").await?.status, "READY");

    let revoked = expect_ok(sandbox.admin().nodes.revoke_node(revoke).await, "admin revokes");
    assert_eq!(revoked.status, "DOWN");
    // The open session ends at once, with the reason.
    let ended = tokio::time::timeout(DEADLINE, async {
        loop {
            match session.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await?;
    assert_eq!(ended.map(|s| s.code()), Some(Code::PermissionDenied), "the session was not closed as revoked");
    // Its training ended as on a lost node.
    let t = wait_for_training(&sandbox.admin(), TEAM_A, "on-r", "ended", |t| t.status == "FAIL TRAIN").await?;
    assert_eq!(t.status_reason, "key leaked");

    // Every agent RPC refuses the certificate.
    let mut agent = node.agent.clone();
    let what = "register with a revoked certificate";
    expect_code(agent.register(node.register_request("10.0.0.9")).await, Code::PermissionDenied, what);
    let what = "report with a revoked certificate";
    expect_code(
        agent.report_container(node.report("node-r", &workload, 0, "RUNNING")).await,
        Code::PermissionDenied,
        what,
    );
    let (_key, csr_pem) = gantry_pki::node_csr("node-r")?;
    let renew = pb::RenewCertificateRequest { csr_pem: csr_pem.clone() };
    expect_code(agent.renew_certificate(renew).await, Code::PermissionDenied, "renew with a revoked certificate");
    let session = node.session("node-r").await.map(|_| ());
    assert_eq!(session.map_err(|s| s.code()), Err(Code::PermissionDenied), "session with a revoked certificate");
    let after = get_node(&sandbox, "node-r").await?;
    assert_eq!((after.status.as_str(), after.address.as_str()), ("DOWN", "127.0.0.1"), "a refused call changed it");

    // The join token cannot take the name back until an operator admits it.
    let rejoin = pb::RegisterNodeRequest { csr_pem: csr_pem.clone(), ..gpu_node("node-r", 0) };
    expect_code(sandbox.anonymous().agent.register(rejoin.clone()).await, Code::PermissionDenied, "rejoin unadmitted");
    let admit = pb::AdmitNodeRequest { id: "node-r".into() };
    expect_code(sandbox.team_a().nodes.admit_node(admit.clone()).await, Code::PermissionDenied, "team-a admits");
    expect_ok(sandbox.admin().nodes.admit_node(admit).await, "admin admits");
    let fresh = FakeNode::join(&sandbox, "node-r").await?;
    assert_eq!(get_node(&sandbox, "node-r").await?.status, "READY");
    expect_ok(fresh.agent.clone().register(fresh.register_request("10.0.0.9")).await, "the new certificate works");
    // The old certificate stays refused, and the admission was for one join.
    expect_code(agent.register(node.register_request("10.6.6.6")).await, Code::PermissionDenied, "old cert after");
    expect_code(sandbox.anonymous().agent.register(rejoin).await, Code::PermissionDenied, "a second rejoin");
    assert_eq!(get_node(&sandbox, "node-r").await?.address, "10.0.0.9");

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused_at_the_handshake() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let node = FakeNode::join(&sandbox, "node-x").await?;
    // Certified by the same CA for the same node, but valid only in the past.
    let (expired_key, csr_pem) = gantry_pki::node_csr("node-x")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let day = Duration::from_secs(86_400);
    let expired_pem =
        gantry_pki::sign_node_csr_with_validity(&ca_dir(&sandbox), &csr_pem, "node-x", now - 2 * day, now - day)?;
    let expired = FakeNode::with_cert(&sandbox, "node-x", &expired_key, &expired_pem)?;
    assert!(expired.certificate()?.not_after_ms < now.as_millis() as u64);

    let result = expired.agent.clone().register(expired.register_request("10.6.6.6")).await;
    let status = match result {
        Ok(_) => panic!("an expired certificate was accepted"),
        Err(status) => status,
    };
    // Refused by TLS itself: the call never reached the service. With TLS 1.3 the
    // client learns of the refused certificate after its side of the handshake, so the
    // failure surfaces as whichever transport error the call hit first.
    assert!(
        matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled),
        "expected a transport failure, got {:?}: {}",
        status.code(),
        status.message()
    );
    assert_eq!(get_node(&sandbox, "node-x").await?.address, "127.0.0.1", "the expired certificate changed the node");
    // The node's valid certificate still works, and so does one made the same way as
    // the expired one but valid now: the refusal above was the expiry.
    expect_ok(node.agent.clone().register(node.register_request("10.0.0.8")).await, "the valid certificate");
    let (current_key, csr_pem) = gantry_pki::node_csr("node-x")?;
    let hour = Duration::from_secs(3600);
    let current_pem =
        gantry_pki::sign_node_csr_with_validity(&ca_dir(&sandbox), &csr_pem, "node-x", now - hour, now + hour)?;
    let current = FakeNode::with_cert(&sandbox, "node-x", &current_key, &current_pem)?;
    expect_ok(current.agent.clone().register(current.register_request("10.0.0.9")).await, "a current certificate");

    sandbox.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_gives_a_later_certificate_and_the_old_one_keeps_working() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let node = FakeNode::join(&sandbox, "node-n").await?;
    let old = node.certificate()?;
    let lifetime = old.not_after_ms - old.issued_at_ms;
    assert!(
        lifetime <= 24 * 3600 * 1000 && old.not_before_ms < old.issued_at_ms,
        "default lifetime with skew: {old:?}"
    );

    // Validity is in whole seconds: renew until the clock has moved past the old one's.
    let (key_pem, cert_pem) = eventually("a renewed certificate with a later expiry", || {
        let mut agent = node.agent.clone();
        async move {
            // Asking for another node's name changes nothing: the signer sets it.
            let (key_pem, csr_pem) = gantry_pki::node_csr("someone-else")?;
            let cert_pem =
                agent.renew_certificate(pb::RenewCertificateRequest { csr_pem }).await?.into_inner().cert_pem;
            let cert = NodeCertificate::from_pem(&cert_pem).ok_or_else(|| anyhow::anyhow!("unreadable"))?;
            anyhow::ensure!(cert.node_id == "node-n", "renewed for {}", cert.node_id);
            anyhow::ensure!(
                cert.not_after_ms > old.not_after_ms,
                "expiry {} not after {}",
                cert.not_after_ms,
                old.not_after_ms
            );
            Ok((key_pem, cert_pem))
        }
    })
    .await?;
    let renewed = FakeNode::with_cert(&sandbox, "node-n", &key_pem, &cert_pem)?;
    expect_ok(renewed.agent.clone().register(renewed.register_request("10.0.0.5")).await, "the renewed certificate");
    expect_ok(node.agent.clone().register(node.register_request("10.0.0.6")).await, "the old certificate");
    assert_eq!(get_node(&sandbox, "node-n").await?.address, "10.0.0.6");

    // Renewal needs a node certificate: the join token and anonymous callers get none.
    let (_, csr_pem) = gantry_pki::node_csr("node-n")?;
    let mut request = tonic::Request::new(pb::RenewCertificateRequest { csr_pem: csr_pem.clone() });
    request.metadata_mut().insert(gantry_proto::JOIN_TOKEN_HEADER, JOIN_TOKEN.parse()?);
    expect_code(sandbox.anonymous().agent.renew_certificate(request).await, Code::PermissionDenied, "join token");
    let request = pb::RenewCertificateRequest { csr_pem };
    expect_code(sandbox.admin().agent.renew_certificate(request).await, Code::Unauthenticated, "admin token");

    sandbox.shutdown().await
}

/// The real agent: a restart re-registers with the stored certificate (the join token
/// alone would be refused), and a second agent claiming the same name with only the
/// join token is refused and stops, leaving the node to its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_keeps_its_name_and_an_impostor_with_the_join_token_is_refused() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;

    use gantry_chaos::{AgentOptions, AgentProcess};
    use gantry_tests::SandboxOptions;
    use gantry_tests::nodes::{NodeKit, wait_for};

    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    let i = kit.add_agent("node-1", "").await?;
    let identity = kit.agent(i).state_dir().join("identity");
    let key_mode = std::fs::metadata(identity.join("node-key.pem"))?.permissions().mode() & 0o777;
    assert_eq!(key_mode, 0o600, "the node key is readable by others");
    let cert = NodeCertificate::from_pem(&std::fs::read_to_string(identity.join("node.pem"))?)
        .ok_or_else(|| anyhow::anyhow!("the agent stored no node certificate"))?;
    assert_eq!(cert.node_id, "node-1");

    kit.agent(i).kill()?;
    kit.agent(i).restart()?;
    kit.wait_node_connected("node-1", i).await?;

    let impostor = AgentProcess::start(&AgentOptions {
        node_name: "node-1".into(),
        cluster: kit.cluster.clone(),
        schedulers: vec![format!("https://{}", kit.sandbox().api_addr())],
        join_token: JOIN_TOKEN.into(),
        ca_cert: kit.sandbox().ca_cert().to_path_buf(),
        extra_toml: String::new(),
        heartbeat_interval: Duration::from_millis(500),
        env: vec![("GANTRY_AGENT_ADDRESS".into(), "10.6.6.6".into())],
        netns: None,
    })?;
    wait_for(Duration::from_secs(60), "the impostor agent to give up", || {
        let running = impostor.is_running();
        async move {
            anyhow::ensure!(!running, "still running");
            Ok(())
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\nimpostor log:\n{}", impostor.log()))?;
    assert!(impostor.log().contains("own certificate"), "impostor log:\n{}", impostor.log());
    assert!(!impostor.state_dir().join("identity/node.pem").exists(), "the impostor got a certificate");
    let node = kit.wait_node_connected("node-1", i).await?;
    assert_eq!(node.address, "127.0.0.1", "the impostor changed the node");

    kit.finish().await
}

/// The real agent renews on start when less than a third of its certificate's life
/// remains, stores the new pair, and keeps its session with the new identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_agent_renews_a_certificate_near_its_end() -> anyhow::Result<()> {
    use gantry_tests::SandboxOptions;
    use gantry_tests::nodes::{NodeKit, wait_for};

    let mut kit = NodeKit::start(SandboxOptions::default()).await?;
    let i = kit.add_agent("node-1", "").await?;
    kit.agent(i).kill()?;

    // Swap in a valid certificate with 10 of its 70 minutes left.
    let identity = kit.agent(i).state_dir().join("identity");
    let (key_pem, csr_pem) = gantry_pki::node_csr("node-1")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let (start, end) = (now - Duration::from_secs(3600), now + Duration::from_secs(600));
    let short = gantry_pki::sign_node_csr_with_validity(&ca_dir(kit.sandbox()), &csr_pem, "node-1", start, end)?;
    std::fs::write(identity.join("node-key.pem"), key_pem)?;
    std::fs::write(identity.join("node.pem"), &short)?;
    let short_not_after = NodeCertificate::from_pem(&short).map(|c| c.not_after_ms).unwrap_or_default();

    kit.agent(i).restart()?;
    let cert_path = identity.join("node.pem");
    let log = || kit.agent(i).log();
    let renewed = wait_for(Duration::from_secs(60), "the agent to store a renewed certificate", || {
        let pem = std::fs::read_to_string(&cert_path).unwrap_or_default();
        async move {
            let cert = NodeCertificate::from_pem(&pem).ok_or_else(|| anyhow::anyhow!("no certificate"))?;
            anyhow::ensure!(cert.not_after_ms > short_not_after + 3_600_000, "still the short one: {cert:?}");
            Ok(cert)
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\nagent log:\n{}", log()))?;
    assert_eq!(renewed.node_id, "node-1");
    // The session is (re-)established on the new identity, and the node stays READY.
    kit.wait_node_connected("node-1", i).await?;
    assert!(log().contains("node certificate renewed"), "agent log:\n{}", log());

    kit.finish().await
}
