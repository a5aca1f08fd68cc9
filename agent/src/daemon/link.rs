//! The agent's connections to the scheduler replicas: TLS with the node's certificate
//! (or plain TCP plus the join token in `insecure_dev`), one lazily connected channel
//! per replica, and calls that try the replicas in turn.
//!
//! A renewed certificate replaces the channels in place ([`Link::replace`]): every
//! holder of the link (reporters, sessions) uses the new identity from its next call,
//! and sessions reconnect with it when told through [`Link::renewed`].

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gantry_proto::JOIN_TOKEN_HEADER;
use gantry_proto::v1::agent_service_client::AgentServiceClient;
use tokio::sync::watch;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::config::AgentConfig;

/// Adds the join token to every call in `insecure_dev` mode (no certificates exist).
#[derive(Clone)]
pub struct TokenHeader(Option<AsciiMetadataValue>);

impl Interceptor for TokenHeader {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert(JOIN_TOKEN_HEADER, v.clone());
        }
        Ok(req)
    }
}

pub type Client = AgentServiceClient<InterceptedService<Channel, TokenHeader>>;

/// One client per scheduler replica, in configuration order; cheap to clone, and all
/// clones see a [`Link::replace`].
#[derive(Clone)]
pub struct Link {
    // std RwLock: held only to clone or swap the Arc, never across an await.
    clients: Arc<RwLock<Arc<Vec<Client>>>>,
    /// Counts identity changes; sessions watch it to reconnect.
    generation: Arc<watch::Sender<u64>>,
}

/// What TLS the link uses.
pub enum LinkTls<'a> {
    /// insecure_dev: no TLS; the join token goes along with every call.
    Plain { join_token: &'a str },
    /// Server authentication only (the first registration, before the node has a
    /// certificate).
    CaOnly { ca_cert: &'a Path },
    /// Mutual TLS with the node's certificate.
    Node { ca_cert: &'a Path, cert: &'a Path, key: &'a Path },
}

impl Link {
    pub fn new(config: &AgentConfig, tls: LinkTls<'_>) -> anyhow::Result<Link> {
        let server_name = config.tls.server_name.as_str();
        let (tls_config, token): (Option<ClientTlsConfig>, Option<&str>) = match tls {
            LinkTls::Plain { join_token } => (None, Some(join_token)),
            LinkTls::CaOnly { ca_cert } => (Some(gantry_pki::client_tls_ca_only(ca_cert, server_name)?), None),
            LinkTls::Node { ca_cert, cert, key } => {
                let files = gantry_pki::TlsFiles { ca_cert: ca_cert.into(), cert: cert.into(), key: key.into() };
                (Some(gantry_pki::client_tls(&files, server_name)?), None)
            }
        };
        let header = match token {
            Some(t) if !t.is_empty() => Some(t.parse::<AsciiMetadataValue>()?),
            _ => None,
        };
        let mut clients = Vec::new();
        for url in &config.schedulers {
            let mut endpoint = Endpoint::from_shared(url.clone())?
                .connect_timeout(Duration::from_secs(3))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(10));
            if let Some(tls) = &tls_config {
                endpoint = endpoint.tls_config(tls.clone())?;
            }
            let channel = endpoint.connect_lazy();
            clients.push(
                AgentServiceClient::with_interceptor(channel, TokenHeader(header.clone()))
                    .max_decoding_message_size(64 * 1024 * 1024),
            );
        }
        Ok(Link { clients: Arc::new(RwLock::new(Arc::new(clients))), generation: Arc::new(watch::channel(0).0) })
    }

    /// The current clients, one per replica.
    pub fn clients(&self) -> Arc<Vec<Client>> {
        match self.clients.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Switches every holder of this link to `other`'s channels (a renewed identity)
    /// and tells the sessions to reconnect with them.
    pub fn replace(&self, other: &Link) {
        let fresh = other.clients();
        match self.clients.write() {
            Ok(mut g) => *g = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        self.generation.send_modify(|g| *g += 1);
    }

    /// Changes whenever [`Link::replace`] installs a new identity.
    pub fn renewed(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Runs `call` against each replica in turn until one answers with something other
    /// than Unavailable (or a transport error), and returns that answer.
    pub async fn any<T, F, Fut>(&self, mut call: F) -> Result<T, Status>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut last = Status::unavailable("no scheduler configured");
        for client in self.clients().iter() {
            match call(client.clone()).await {
                Err(s) if retryable(&s) => last = s,
                other => return other,
            }
        }
        Err(last)
    }
}

/// Errors worth trying another replica (or again later) for.
pub fn retryable(s: &Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled | Code::Internal)
}
