//! The cluster's own identities, black-box: a CA and replica certificates made with
//! `gantryctl pki` exactly as the README's "Running a replicated cluster" does, three
//! TLS replicas started from them, and the Raft peer port attacked with every other
//! kind of certificate.
//!
//! Invariant: only the replica certificate of a configured member is served on the peer
//! port, and a member speaks only for itself. A node certificate, another leaf of the
//! same CA, a replica certificate of a non-member and a client without a certificate are
//! refused on Step, StepStream and Rejoin, and nothing they sent reaches raft: the term,
//! the leader and the replicated data are the same afterwards.
//!
//! Needs the scheduler and gantryctl binaries (built on demand under cargo).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use anyhow::Context as _;
use gantry_chaos::{ClusterOptions, ProcessCluster};
use gantry_pki::TlsFiles;
use gantry_proto::v1::raft_service_client::RaftServiceClient;
use gantry_proto::v1::{
    ClusterStatus, CreateExperimentRequest, ListExperimentsRequest, ListImagesRequest, ListInstanceTypesRequest,
    ReadOptions, RejoinRequest, StepRequest,
};
use protobuf::Message as _;
use raft::eraftpb::{Message, MessageType};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

const PROJECT: &str = "ids";
const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_member_replica_certificates_are_served_on_the_peer_port() -> anyhow::Result<()> {
    gantry_pki::install_crypto_provider();
    let dir = tempfile::Builder::new().prefix("gantry-replica-identity-").tempdir()?;
    let ca_dir = dir.path().join("ca");
    let out = dir.path().join("replicas");

    // The README's steps: a CA, then one certificate per replica.
    let init = gantryctl(&["pki", "init", "--dir", path(&ca_dir), "-o", "json"])?;
    let init: serde_json::Value = serde_json::from_slice(&init.stdout)?;
    assert_eq!(init["ca_key"].as_str(), Some(path(&ca_dir.join("ca-key.pem"))));
    assert_eq!(mode(&ca_dir.join("ca-key.pem")), 0o600);
    let again = run_gantryctl(&["pki", "init", "--dir", path(&ca_dir)])?;
    assert!(!again.status.success(), "a second init must not replace the CA");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"), "{again:?}");

    let mut replica_tls = Vec::new();
    for id in 1..=4u64 {
        // Replica 4 is never started: its certificate is a real replica certificate of
        // this CA whose id is not in the membership.
        let written = gantryctl(&[
            "pki",
            "issue",
            "replica",
            "--id",
            &id.to_string(),
            "--host",
            "localhost",
            "--host",
            "127.0.0.1",
            "--dir",
            path(&ca_dir),
            "--out",
            path(&out),
            "-o",
            "json",
        ])?;
        let written: serde_json::Value = serde_json::from_slice(&written.stdout)?;
        let field = |k: &str| written[k].as_str().map(PathBuf::from).context(format!("{k} missing: {written}"));
        let files = TlsFiles { ca_cert: field("ca_cert")?, cert: field("cert")?, key: field("key")? };
        assert_eq!(mode(&files.key), 0o600, "replica {id}'s key");
        replica_tls.push(files);
    }
    let outsider = replica_tls.pop().context("replica 4's files")?;

    let options = ClusterOptions { replicas: 3, replica_tls: Some(replica_tls.clone()), ..Default::default() };
    let cluster = ProcessCluster::start(options).await?;
    let leader = cluster.wait_for_leader(DEADLINE).await?;
    // The leader seeds the default catalog after its election: let it finish, so that
    // the entry count below is only ours.
    let default = gantry_scheduler::config::CatalogConfig::default();
    let want = (default.instance_types.len(), default.images.len());
    let admin = cluster.client(leader);
    gantry_tests::eventually("the seeded catalog", || {
        let mut admin = admin.clone();
        async move {
            let types = admin.catalog.list_instance_types(ListInstanceTypesRequest::default()).await?.into_inner();
            let images = admin.catalog.list_images(ListImagesRequest::default()).await?.into_inner();
            let seeded = (types.instance_types.len(), images.images.len());
            anyhow::ensure!(seeded == want, "instance types and images so far: {seeded:?}, want {want:?}");
            Ok(())
        }
    })
    .await?;
    create(&cluster, leader, "before").await?;
    cluster.wait_converged(DEADLINE).await?;
    let before = statuses(&cluster).await?;
    assert_eq!(names(&cluster).await?, [["before"]; 3]);

    // Every identity that is not a member's replica certificate.
    let node = node_identity(&ca_dir)?;
    let leaf = gantry_pki::issue_leaf(&ca_dir, &dir.path().join("admin"), "admin", &["localhost".to_owned()])?;
    let strangers = [
        ("a node certificate", Some(node), "certificate 'node-gpu-01', which is not a replica certificate"),
        ("another leaf of the CA", Some(identity(&leaf)?), "certificate 'admin', which is not a replica certificate"),
        ("a replica certificate of a non-member", Some(identity(&outsider)?), "replica 4, which is not in"),
        ("no client certificate", None, ""),
    ];
    let leader_id = cluster.replica_id(leader);
    let member = if leader_id == 1 { 2 } else { 1 };
    let term = before[leader].term;
    for i in 0..cluster.len() {
        for (what, identity, says) in &strangers {
            let client = peer_client(&cluster, i, &replica_tls[0].ca_cert, identity.clone())?;
            // A vote request from a member at a far higher term: served, it would depose
            // the leader (the term would jump).
            let vote = vote_request(member, cluster.replica_id(i), term + 100);
            for (rpc, result) in attack(client, vote, member).await {
                let status = result.err().with_context(|| format!("{rpc} with {what} on replica {i} succeeded"))?;
                if identity.is_some() {
                    assert_eq!(status.code(), Code::PermissionDenied, "{rpc} with {what}: {status:?}");
                    assert!(status.message().contains(says), "{rpc} with {what}: {}", status.message());
                } else {
                    // Refused in the handshake: no RPC runs at all.
                    assert!(
                        !matches!(status.code(), Code::Ok | Code::PermissionDenied | Code::InvalidArgument),
                        "{rpc} with {what}: {status:?}"
                    );
                }
            }
        }
    }

    // A member may speak only for itself: replica `member`'s own certificate claiming
    // to be the third replica, or asking to re-admit it.
    let third = (1..=3).find(|id| *id != member && *id != leader_id).context("a third replica")?;
    let insider = identity(&replica_tls[member as usize - 1])?;
    let client = peer_client(&cluster, leader, &replica_tls[0].ca_cert, Some(insider))?;
    for (rpc, result) in attack(client, vote_request(third, leader_id, term + 100), third).await {
        let status = result.err().with_context(|| format!("{rpc} as replica {member} speaking for {third}"))?;
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc}: {status:?}");
        assert!(status.message().contains("speaks only for itself"), "{rpc}: {}", status.message());
    }

    // Nothing happened: one more write goes through the same leader at the same term,
    // and every replica holds exactly the two experiments and the entries before plus it.
    create(&cluster, leader, "after").await?;
    cluster.wait_converged(DEADLINE).await?;
    let after = statuses(&cluster).await?;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((a.term, a.leader_id), (b.term, b.leader_id), "replica {}: {b:?} → {a:?}", b.replica_id);
        assert_eq!(a.applied_index, b.applied_index + 1, "replica {}: {b:?} → {a:?}", b.replica_id);
    }
    assert_eq!(names(&cluster).await?, [["after", "before"]; 3]);
    cluster.check_no_panics()?;
    cluster.shutdown().await
}

/// Step, StepStream and Rejoin (for `rejoin_id`) with `vote`; each result by RPC name.
async fn attack(
    mut client: RaftServiceClient<tonic::transport::Channel>,
    vote: StepRequest,
    rejoin_id: u64,
) -> Vec<(&'static str, Result<(), Status>)> {
    let step = bounded(client.step(vote.clone())).await.map(drop);
    let stream = tonic::codegen::tokio_stream::iter([vote.clone(), vote]);
    let step_stream = bounded(client.step_stream(stream)).await.map(drop);
    let rejoin = bounded(client.rejoin(RejoinRequest { id: rejoin_id })).await.map(drop);
    vec![("Step", step), ("StepStream", step_stream), ("Rejoin", rejoin)]
}

/// `call`'s result, or DeadlineExceeded after 10 s: an attack must be answered.
async fn bounded<T>(call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer within 10s")))
}

fn vote_request(from: u64, to: u64, term: u64) -> StepRequest {
    let mut m = Message::default();
    m.set_msg_type(MessageType::MsgRequestVote);
    m.from = from;
    m.to = to;
    m.term = term;
    m.log_term = term;
    m.index = 1 << 40;
    let bytes = m.write_to_bytes().unwrap_or_default();
    StepRequest { from, messages: vec![bytes] }
}

/// A raft client of replica `i`'s peer port presenting `identity` (or no certificate).
fn peer_client(
    cluster: &ProcessCluster,
    i: usize,
    ca_cert: &Path,
    identity: Option<Identity>,
) -> anyhow::Result<RaftServiceClient<tonic::transport::Channel>> {
    let ca = Certificate::from_pem(std::fs::read(ca_cert)?);
    let mut tls = ClientTlsConfig::new().ca_certificate(ca).domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    let channel = Endpoint::from_shared(cluster.peer_url(i))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect_lazy();
    Ok(RaftServiceClient::new(channel))
}

fn identity(files: &TlsFiles) -> anyhow::Result<Identity> {
    Ok(Identity::from_pem(std::fs::read(&files.cert)?, std::fs::read(&files.key)?))
}

/// An agent's node certificate as the scheduler signs it after a join.
fn node_identity(ca_dir: &Path) -> anyhow::Result<Identity> {
    let (key, csr) = gantry_pki::node_csr("gpu-01")?;
    let cert = gantry_pki::sign_node_csr(
        ca_dir,
        &csr,
        "gpu-01",
        gantry_scheduler::api::now_ms(),
        std::time::Duration::from_secs(3600),
    )?;
    Ok(Identity::from_pem(cert, key))
}

async fn create(cluster: &ProcessCluster, i: usize, name: &str) -> anyhow::Result<()> {
    let request = CreateExperimentRequest { project: PROJECT.into(), name: name.into(), ..Default::default() };
    cluster.client(i).experiments.create_experiment(request).await.with_context(|| format!("creating {name}"))?;
    Ok(())
}

/// Each replica's own (stale) list of experiment names, sorted.
async fn names(cluster: &ProcessCluster) -> anyhow::Result<Vec<Vec<String>>> {
    let mut all = Vec::new();
    for i in 0..cluster.len() {
        let request = ListExperimentsRequest { project: PROJECT.into(), read: Some(ReadOptions { stale: true }) };
        let list = cluster.client(i).experiments.list_experiments(request).await?.into_inner();
        let mut names: Vec<String> = list.experiments.into_iter().map(|e| e.name).collect();
        names.sort();
        all.push(names);
    }
    Ok(all)
}

async fn statuses(cluster: &ProcessCluster) -> anyhow::Result<Vec<ClusterStatus>> {
    let mut all = Vec::new();
    for i in 0..cluster.len() {
        all.push(cluster.status(i).await?);
    }
    Ok(all)
}

fn run_gantryctl(args: &[&str]) -> anyhow::Result<Output> {
    let bin = gantry_chaos::binary::gantryctl_binary()?;
    std::process::Command::new(&bin)
        .args(args)
        // Local files only: no client config or server may be needed.
        .env_remove("GANTRY_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {}", bin.display()))
}

fn gantryctl(args: &[&str]) -> anyhow::Result<Output> {
    let output = run_gantryctl(args)?;
    anyhow::ensure!(output.status.success(), "gantryctl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(output)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0)
}
