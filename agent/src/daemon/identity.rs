//! The node's identity: a client certificate with CommonName `node-{name}`.
//!
//! Taken from the config if the operator issued one; else from the state directory;
//! else obtained once by registering with the join token and a CSR (the key is made
//! here and never leaves the node). Every later connection uses the certificate, and
//! [`super::renewal`] replaces a stored one before it expires.
//!
//! ```text
//!   state_dir/identity/
//!     node-key.pem (0600)  node.pem            the identity in use
//!     node-key.pem.new     node.pem.new        a renewal being written (see `store`)
//! ```

use std::path::{Path, PathBuf};

use gantry_pki::NodeCertificate;
use gantry_proto::v1::{NodeInventory, RegisterNodeRequest};

use super::config::AgentConfig;
use super::link::{Link, LinkTls};

/// Where the issued certificate is kept, under the state directory.
fn identity_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("identity")
}

/// A certificate and its key on disk.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Identity {
    fn stored(state_dir: &Path) -> Identity {
        let dir = identity_dir(state_dir);
        Identity { cert: dir.join("node.pem"), key: dir.join("node-key.pem") }
    }

    fn pending(&self) -> (PathBuf, PathBuf) {
        (with_suffix(&self.cert, ".new"), with_suffix(&self.key, ".new"))
    }

    /// The certificate as Gantry reads it (`None` if missing or unreadable).
    pub fn certificate(&self) -> Option<NodeCertificate> {
        NodeCertificate::from_pem(&std::fs::read_to_string(&self.cert).ok()?)
    }

    /// Replaces the identity with `key_pem`/`cert_pem` so that a crash at any point
    /// leaves a matching pair: both are written beside the old ones first (the
    /// certificate last, as the commit mark), then renamed over them, key first.
    /// [`Identity::recover`] finishes an interrupted switch.
    pub fn store(&self, key_pem: &str, cert_pem: &str) -> std::io::Result<()> {
        let (cert_new, key_new) = self.pending();
        let dir = self.cert.parent().unwrap_or(Path::new("."));
        write_file(dir, &key_new, key_pem, 0o600)?;
        write_file(dir, &cert_new, cert_pem, 0o644)?;
        self.recover()
    }

    /// Completes a switch that a crash interrupted, or drops a half-written one.
    pub fn recover(&self) -> std::io::Result<()> {
        let (cert_new, key_new) = self.pending();
        if cert_new.is_file() {
            if key_new.is_file() {
                std::fs::rename(&key_new, &self.key)?;
            }
            std::fs::rename(&cert_new, &self.cert)?;
            sync_dir(&self.cert)?;
        } else if key_new.is_file() {
            std::fs::remove_file(&key_new)?;
        }
        Ok(())
    }
}

/// Registers the node (updating its inventory) and returns the link every later call
/// uses, with the stored identity when it is one the agent renews itself. Retries are
/// the caller's: this fails if no replica accepts.
pub async fn join(config: &AgentConfig, inventory: NodeInventory) -> anyhow::Result<(Link, Option<Identity>)> {
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
        return Ok((link, None));
    }
    let ca_cert = config.tls.ca_cert.as_deref().ok_or_else(|| anyhow::anyhow!("tls.ca_cert is required"))?;
    let (identity, renewable) = match (&config.tls.cert, &config.tls.key) {
        // Issued out of band: the operator renews it.
        (Some(cert), Some(key)) => (Identity { cert: cert.clone(), key: key.clone() }, false),
        _ => (stored_or_issued(config, ca_cert, &register(String::new())).await?, true),
    };
    let link = Link::new(config, LinkTls::Node { ca_cert, cert: &identity.cert, key: &identity.key })?;
    let req = register(String::new());
    link.any(|mut c| {
        let req = req.clone();
        async move { c.register(req).await }
    })
    .await?;
    Ok((link, renewable.then_some(identity)))
}

async fn stored_or_issued(
    config: &AgentConfig,
    ca_cert: &Path,
    base: &RegisterNodeRequest,
) -> anyhow::Result<Identity> {
    let identity = Identity::stored(&config.state_dir);
    identity.recover()?;
    if identity.cert.is_file() && identity.key.is_file() {
        match identity.certificate() {
            Some(cert) if cert.not_after_ms > now_ms() => return Ok(identity),
            // Renewal needs a valid certificate; an expired one can only be replaced
            // by joining again, which the scheduler allows once an operator admitted
            // the node again (`gantryctl node revoke`, then `node admit`).
            _ => tracing::warn!(cert = %identity.cert.display(), "stored node certificate expired; joining again"),
        }
    }
    if config.join_token.is_empty() {
        anyhow::bail!("join_token: needed for the first registration (this node has no valid certificate)");
    }
    let key_pem = join_key(&identity)?;
    let csr_pem = gantry_pki::node_csr_for_key(&config.node_name, &key_pem)?;
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
    identity.store(&key_pem, &resp.cert_pem)?;
    std::fs::remove_file(join_key_path(&identity))?;
    tracing::info!(cert = %identity.cert.display(), "node certificate issued");
    Ok(identity)
}

fn join_key_path(identity: &Identity) -> PathBuf {
    identity.key.with_file_name("join-key.pem")
}

/// The key this node joins with, made once and kept (0600) until the join succeeds: a
/// join whose answer was lost (the node is registered, the certificate never arrived)
/// is retried with the same key, which the scheduler recognises as the same join.
fn join_key(identity: &Identity) -> anyhow::Result<String> {
    let path = join_key_path(identity);
    match std::fs::read_to_string(&path) {
        Ok(key) => return Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
    let (key, _) = gantry_pki::node_csr("join")?;
    let dir = path.parent().unwrap_or(Path::new("."));
    write_file(dir, &path, &key, 0o600)?;
    Ok(key)
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Creates `dir` (0700) and writes `path` with `mode` from creation on, synced.
fn write_file(dir: &Path, path: &Path, contents: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

/// Makes the renames in the directory of `path` durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn the_join_key_is_made_once_kept_private_and_reused_until_the_join_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::stored(dir.path());
        let first = join_key(&id).unwrap();
        let path = join_key_path(&id);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // A retry after a lost answer asks for the same key.
        assert_eq!(join_key(&id).unwrap(), first);
        let csr = |key: &str| gantry_pki::csr_public_key(&gantry_pki::node_csr_for_key("n", key).unwrap()).unwrap();
        assert_eq!(csr(&first), csr(&join_key(&id).unwrap()));
        std::fs::remove_file(&path).unwrap();
        assert_ne!(join_key(&id).unwrap(), first, "a new join makes a new key");
    }

    #[test]
    fn a_stored_identity_is_replaced_whole_and_an_interrupted_switch_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::stored(dir.path());
        id.store("key-1", "cert-1").unwrap();
        assert_eq!(std::fs::read_to_string(&id.key).unwrap(), "key-1");
        assert_eq!(std::fs::metadata(&id.key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&id.cert).unwrap(), "cert-1");

        // A crash after the new key was renamed, before the certificate was.
        let (cert_new, key_new) = id.pending();
        std::fs::write(&cert_new, "cert-2").unwrap();
        std::fs::write(&id.key, "key-2").unwrap();
        id.recover().unwrap();
        assert_eq!(std::fs::read_to_string(&id.cert).unwrap(), "cert-2");
        assert!(!cert_new.exists());

        // A crash while the new key was written: the old pair stays.
        std::fs::write(&key_new, "key-3").unwrap();
        id.recover().unwrap();
        assert!(!key_new.exists());
        assert_eq!(
            (std::fs::read_to_string(&id.key).unwrap(), std::fs::read_to_string(&id.cert).unwrap()),
            ("key-2".to_string(), "cert-2".to_string())
        );
    }
}
