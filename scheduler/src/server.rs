//! Wires one replica together: raft, the admin and agent APIs (with health and
//! reflection), the peer listener, and the leader's controllers.
//!
//! ```text
//!   listen_api  (TLS, bearer tokens) ── Cluster/Catalog/Node/Experiment/Training/Agent
//!   listen_peer (mutual TLS,        ── RaftService ──▶ ready loop ──▶ State
//!     replica certificates of members only: raft::PeerPolicy)
//! ```

use std::time::Duration;

use gantry_proto::v1::agent_service_server::AgentServiceServer;
use gantry_proto::v1::catalog_service_server::CatalogServiceServer;
use gantry_proto::v1::cluster_service_server::ClusterServiceServer;
use gantry_proto::v1::endpoint_service_server::EndpointServiceServer;
use gantry_proto::v1::experiment_service_server::ExperimentServiceServer;
use gantry_proto::v1::gateway_service_server::GatewayServiceServer;
use gantry_proto::v1::model_service_server::ModelServiceServer;
use gantry_proto::v1::node_service_server::NodeServiceServer;
use gantry_proto::v1::project_service_server::ProjectServiceServer;
use gantry_proto::v1::raft_service_server::RaftServiceServer;
use gantry_proto::v1::training_service_server::TrainingServiceServer;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::agents::AgentHub;
use crate::api::{
    AgentApi, ApiContext, CatalogApi, ClusterApi, EndpointApi, ExperimentApi, GatewayApi, ModelApi, NodeApi,
    ProjectApi, TrainingApi,
};
use crate::config::Config;
use crate::raft::{self, MAX_MESSAGE_BYTES, PeerPolicy, RaftHandle, RaftOptions, RaftPeerService};
use crate::state::{Command, CommandV1};
use crate::{bootstrap, controller};

/// How long shutdown waits for in-flight requests and streams.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(2);

/// Runs the replica until `cancel` fires. Calls `ready` once both listeners accept.
pub async fn run(config: Config, cancel: CancellationToken, ready: impl FnOnce()) -> anyhow::Result<()> {
    let secrets = bootstrap::prepare(&config)?;
    // Peers are dialled with this replica's own (replica) certificate, and each peer's
    // certificate is checked against the host of its configured URL.
    let client_tls = match &secrets.tls {
        Some(files) => Some(gantry_pki::peer_client_tls(files)?),
        None => None,
    };
    let peer_policy = PeerPolicy::new(config.replica.id, config.peers.iter().map(|p| p.id), secrets.tls.is_some());
    let opts = RaftOptions {
        id: config.replica.id,
        peers: config.peers.iter().map(|p| (p.id, p.url.clone())).collect(),
        tick: config.raft.tick,
        election_ticks: config.raft.election_ticks,
        heartbeat_ticks: config.raft.heartbeat_ticks,
        snapshot_every: config.raft.snapshot_every,
        fault_file: config.raft.fault_file.clone(),
        client_tls,
    };
    let (handle, raft_task) = raft::start(opts, &config.replica.data_dir, cancel.child_token())?;
    // Node certificates are signed with the CA whose certificate the replica trusts,
    // when its key lies beside it (always so for the generated development PKI).
    let node_ca = secrets
        .tls
        .as_ref()
        .and_then(|t| t.ca_cert.parent().map(std::path::Path::to_path_buf))
        .filter(|dir| gantry_pki::can_sign(dir));
    let hub = AgentHub::default();
    let ctx = ApiContext {
        raft: handle.clone(),
        auth: secrets.auth.clone(),
        join_token: secrets.join_token.clone(),
        hub: hub.clone(),
        node_ca,
        tls: secrets.tls.is_some(),
        node_cert_lifetime: config.auth.node_cert_lifetime,
        gateway_url: config.gateway.public_url(),
    };

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ClusterServiceServer<ClusterApi>>().await;
    health_reporter.set_serving::<TrainingServiceServer<TrainingApi>>().await;
    health_reporter.set_serving::<EndpointServiceServer<EndpointApi>>().await;
    health_reporter.set_serving::<GatewayServiceServer<GatewayApi>>().await;
    health_reporter.set_serving::<ModelServiceServer<ModelApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(gantry_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let mut api = Server::builder().tcp_nodelay(true);
    // Raft streams carry every entry: HTTP/2's default 64 KiB windows would stall them
    // behind window updates under load.
    let mut peer = Server::builder()
        .tcp_nodelay(true)
        .initial_stream_window_size(crate::raft::PEER_STREAM_WINDOW)
        .initial_connection_window_size(crate::raft::PEER_CONNECTION_WINDOW);
    if let Some(files) = &secrets.tls {
        api = api.tls_config(gantry_pki::server_tls(files, false)?)?;
        peer = peer.tls_config(gantry_pki::server_tls(files, true)?)?;
    }
    let api_router = api
        .add_service(health_service)
        .add_service(reflection)
        .add_service(ClusterServiceServer::new(ClusterApi(ctx.clone())))
        .add_service(CatalogServiceServer::new(CatalogApi(ctx.clone())))
        .add_service(NodeServiceServer::new(NodeApi(ctx.clone())))
        .add_service(ProjectServiceServer::new(ProjectApi(ctx.clone())))
        .add_service(AgentServiceServer::new(AgentApi(ctx.clone())))
        .add_service(ExperimentServiceServer::new(ExperimentApi(ctx.clone())))
        .add_service(TrainingServiceServer::new(TrainingApi(ctx.clone())))
        .add_service(ModelServiceServer::new(ModelApi(ctx.clone())))
        .add_service(EndpointServiceServer::new(EndpointApi(ctx.clone())))
        .add_service(GatewayServiceServer::new(GatewayApi {
            ctx: ctx.clone(),
            project_token_sha256: ctx.auth.project_token_sha256(),
        }));
    let peer_router = peer.add_service(
        RaftServiceServer::new(RaftPeerService::new(handle.clone(), peer_policy))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    );

    let api_listener = tokio::net::TcpListener::bind(config.replica.listen_api).await?;
    let peer_listener = tokio::net::TcpListener::bind(config.replica.listen_peer).await?;
    tracing::info!(
        replica = config.replica.id,
        api = %config.replica.listen_api,
        peer = %config.replica.listen_peer,
        tls = secrets.tls.is_some(),
        "scheduler replica listening"
    );
    // TCP_NODELAY on accepted connections: without it Nagle's algorithm holds small
    // raft messages and replies back for up to 40 ms (delayed ACK) per round trip.
    let incoming = |l: tokio::net::TcpListener| TcpIncoming::from(l).with_nodelay(Some(true));
    let api_server =
        tokio::spawn(api_router.serve_with_incoming_shutdown(incoming(api_listener), cancel.clone().cancelled_owned()));
    let peer_server = tokio::spawn(
        peer_router.serve_with_incoming_shutdown(incoming(peer_listener), cancel.clone().cancelled_owned()),
    );
    let placement = tokio::spawn(controller::placement::run(
        handle.clone(),
        config.controllers.placement_interval,
        config.gangs.rendezvous_ports,
        cancel.clone(),
    ));
    let liveness = tokio::spawn(controller::liveness::run(
        handle.clone(),
        hub,
        config.controllers.node_down_after,
        cancel.clone(),
    ));
    let deadline = tokio::spawn(controller::deadline::run(handle.clone(), cancel.clone()));
    let seeding = tokio::spawn(seed_catalog(handle.clone(), config.clone(), cancel.clone()));
    let metrics =
        config.metrics.listen.map(|addr| tokio::spawn(crate::metrics::serve(addr, handle.clone(), cancel.clone())));
    let agent = config.agent.embedded.then(|| {
        let agent_config = crate::embedded_agent::agent_config(&config, &secrets);
        tokio::spawn(crate::embedded_agent::run(agent_config, cancel.child_token()))
    });
    let gateway = config.gateway.embedded.then(|| {
        let access = crate::embedded_gateway::Access::of(&secrets);
        tokio::spawn(crate::embedded_gateway::run(config.clone(), access, cancel.child_token()))
    });
    ready();

    let mut raft_task = raft_task;
    let raft_ended = tokio::select! {
        _ = cancel.cancelled() => None,
        ended = &mut raft_task => Some(ended),
    };
    // The ready loop only ends on cancellation; anything else (a panic inside raft-rs)
    // leaves a replica that cannot serve: exit non-zero so the supervisor restarts it.
    let unexpected = raft_ended.is_some() && !cancel.is_cancelled();
    cancel.cancel();
    // Graceful drain waits for open streams (peers' long-lived raft streams, followed
    // logs) to end; bound it so a replica always stops promptly.
    let drain = async {
        let _ = tokio::join!(api_server, peer_server, placement, liveness, deadline, seeding);
    };
    if tokio::time::timeout(SHUTDOWN_DRAIN, drain).await.is_err() {
        tracing::warn!("connections still open after {SHUTDOWN_DRAIN:?}; closing them");
    }
    match raft_ended {
        Some(ended) if unexpected => anyhow::bail!("raft ready loop stopped unexpectedly: {ended:?}"),
        Some(_) => {}
        None => {
            let _ = raft_task.await;
        }
    }
    if let Some(m) = metrics {
        let _ = m.await;
    }
    if let Some(a) = agent {
        let _ = tokio::time::timeout(SHUTDOWN_DRAIN, a).await;
    }
    if let Some(g) = gateway {
        let _ = tokio::time::timeout(SHUTDOWN_DRAIN, g).await;
    }
    Ok(())
}

/// Puts the configured catalog entries and storage grants that the replicated state
/// lacks, once this replica leads. Entries an operator changed through the API are left
/// alone.
async fn seed_catalog(raft: RaftHandle, config: Config, cancel: CancellationToken) {
    loop {
        if cancel.is_cancelled() {
            return;
        }
        if raft.is_leader() && raft.read_barrier().await.is_ok() {
            let missing: Vec<CommandV1> = {
                let state = raft.state();
                let its =
                    config.catalog.instance_types.iter().filter(|it| !state.instance_types.contains_key(&it.name));
                let imgs = config.catalog.images.iter().filter(|img| !state.images.contains_key(&img.name));
                // Validated by `Config::load`: a grant that fails to parse here is skipped.
                let grants = config.storage.grants.iter().enumerate().filter_map(|(i, g)| {
                    let absent = !state.storage_grants.contains_key(&g.project);
                    let grants = g.parse(i).ok()?;
                    absent.then(|| CommandV1::SetStorageGrants { project: g.project.clone(), grants })
                });
                its.map(|it| CommandV1::PutInstanceType { instance_type: it.clone() })
                    .chain(imgs.map(|img| CommandV1::PutImage { image: img.clone() }))
                    .chain(grants)
                    .collect()
            };
            let mut ok = true;
            for cmd in missing {
                ok &= raft.propose(&Command::V1(cmd)).await.is_ok();
            }
            if ok {
                return;
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}
