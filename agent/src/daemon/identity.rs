//! The node's identity: a client certificate with CommonName `node-{name}`.
//!
//! Taken from the config if the operator issued one; else from the state directory;
//! else obtained once by registering with the join token and a CSR (the key is made
//! here and never leaves the node). Every later connection uses the certificate.

use std::path::{Path, PathBuf};

use gantry_proto::v1::{NodeInventory, RegisterNodeRequest};

use super::config::AgentConfig;
use super::link::{Link, LinkTls};

/// Where the issued certificate is kept, under the state directory.
fn identity_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("identity")
}

pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Registers the node (updating its inventory) and returns the link every later call
/// uses. Retries are the caller's: this fails if no replica accepts.
pub async fn join(config: &AgentConfig, inventory: NodeInventory) -> anyhow::Result<Link> {
    let register = |csr_pem: String| RegisterNodeRequest {
        hostname: config.node_name.clone(),
        address: config.address.clone(),
        inventory: Some(inventory.clone()),
        join_token: String::new(),
        csr_pem,
    };
    if config.tls.insecure_dev {
        let link = Link::new(config, LinkTls::Plain { join_token: &config.join_token })?;
        let req = RegisterNodeRequest { join_token: config.join_token.clone(), ..register(String::new()) };
        link.any(|mut c| {
            let req = req.clone();
            async move { c.register(req).await }
        })
        .await?;
        return Ok(link);
    }
    let ca_cert = config.tls.ca_cert.as_deref().ok_or_else(|| anyhow::anyhow!("tls.ca_cert is required"))?;
    let identity = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Identity { cert: cert.clone(), key: key.clone() },
        _ => stored_or_issued(config, ca_cert, &register(String::new())).await?,
    };
    let link = Link::new(config, LinkTls::Node { ca_cert, cert: &identity.cert, key: &identity.key })?;
    let req = register(String::new());
    link.any(|mut c| {
        let req = req.clone();
        async move { c.register(req).await }
    })
    .await?;
    Ok(link)
}

async fn stored_or_issued(
    config: &AgentConfig,
    ca_cert: &Path,
    base: &RegisterNodeRequest,
) -> anyhow::Result<Identity> {
    let dir = identity_dir(&config.state_dir);
    let identity = Identity { cert: dir.join("node.pem"), key: dir.join("node-key.pem") };
    if identity.cert.is_file() && identity.key.is_file() {
        return Ok(identity);
    }
    if config.join_token.is_empty() {
        anyhow::bail!("join_token: needed for the first registration (this node has no certificate yet)");
    }
    let (key_pem, csr_pem) = gantry_pki::node_csr(&config.node_name)?;
    let link = Link::new(config, LinkTls::CaOnly { ca_cert })?;
    let req = RegisterNodeRequest { join_token: config.join_token.clone(), csr_pem, ..base.clone() };
    let resp = link
        .any(|mut c| {
            let req = req.clone();
            async move { c.register(req).await }
        })
        .await?
        .into_inner();
    if resp.cert_pem.is_empty() {
        anyhow::bail!("the scheduler registered the node but issued no certificate");
    }
    write_private(&dir, &identity.key, &key_pem)?;
    // The certificate last: its presence marks a complete identity.
    std::fs::write(&identity.cert, resp.cert_pem)?;
    tracing::info!(cert = %identity.cert.display(), "node certificate issued");
    Ok(identity)
}

fn write_private(dir: &Path, path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}
