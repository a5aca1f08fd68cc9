//! First-start setup for the embedded default: TLS material, the admin and join tokens,
//! and a `gantryctl` client config, so a newcomer gets TLS and auth with no setup.
//!
//! Tokens are written only to owner-only files (`{data_dir}/admin-token`,
//! `{data_dir}/join-token`, the client config); what is printed names those files,
//! never their contents: stdout of a service ends up in journald, readable by more
//! people than the token should be.

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use gantry_pki::TlsFiles;

use crate::api::auth::{Auth, Caller, Scope};
use crate::config::{Config, default_client_config};
use crate::secret::Secret;

/// Owner read/write only: every file that holds a token.
const SECRET_MODE: u32 = 0o600;

pub struct Secrets {
    pub auth: Auth,
    /// The embedded gateway's cluster-wide token for `GatewayService` (`gateway-token`
    /// in the data directory), when the gateway is embedded.
    pub gateway_token: Option<Secret>,
    pub join_token: Secret,
    pub tls: Option<TlsFiles>,
}

/// Reads the secret at `path`, or creates it (mode 0600). Returns it and whether it is new.
fn ensure_secret(path: &Path, prefix: &str) -> anyhow::Result<(Secret, bool)> {
    if path.exists() {
        let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok((Secret::new(text.trim().to_string()), false));
    }
    let secret = Secret::new(format!("{prefix}_{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>()));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SECRET_MODE)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(secret.expose().as_bytes())?;
    f.sync_all()?;
    Ok((secret, true))
}

/// [`prepare_to`] with first-start notices on stdout.
pub fn prepare(config: &Config) -> anyhow::Result<Secrets> {
    prepare_to(config, &mut std::io::stdout())
}

/// Finds or creates the TLS files and tokens `config` asks for. First-start notices
/// (where the admin token and the client config were written) go to `notices`.
pub fn prepare_to(config: &Config, notices: &mut impl Write) -> anyhow::Result<Secrets> {
    let dir = &config.replica.data_dir;
    fs::create_dir_all(dir)?;
    if config.agent.embedded {
        create_granted_dirs(config)?;
    }
    let tls = if config.tls.insecure_dev {
        None
    } else if let (Some(ca_cert), Some(cert), Some(key)) = (&config.tls.ca_cert, &config.tls.cert, &config.tls.key) {
        Some(TlsFiles { ca_cert: ca_cert.clone(), cert: cert.clone(), key: key.clone() })
    } else {
        // This replica's own replica certificate: the peer port accepts nothing else.
        Some(gantry_pki::ensure_dev_replica(&dir.join("pki"), config.replica.id, &config.tls.server_names)?)
    };

    let mut tokens: Vec<(Secret, Caller)> = config
        .auth
        .tokens
        .iter()
        .map(|t| {
            let scope = if t.project == "*" { Scope::Cluster } else { Scope::Project(t.project.clone()) };
            (t.token.clone(), Caller { name: t.name.clone(), scope })
        })
        .collect();
    if config.auth.bootstrap_admin {
        let token_path = dir.join("admin-token");
        let (token, created) = ensure_secret(&token_path, "gantry")?;
        if created {
            let client_path = config.auth.client_config.clone().unwrap_or_else(default_client_config);
            write_client_config(&client_path, config, &token, tls.as_ref().map(|t| &t.ca_cert))?;
            writeln!(notices, "gantry: admin token written to {} (mode 0600)", token_path.display())?;
            writeln!(notices, "gantry: gantryctl config written to {}", client_path.display())?;
        }
        tokens.push((token, Caller { name: "admin".into(), scope: Scope::Cluster }));
    }
    // The embedded gateway follows this replica's routes like any gateway daemon: with a
    // token of its own, never printed, so revoking it does not touch the admin's.
    let gateway_token = if config.gateway.embedded {
        let (token, _) = ensure_secret(&dir.join("gateway-token"), "gateway")?;
        tokens.push((token.clone(), Caller { name: "embedded-gateway".into(), scope: Scope::Cluster }));
        Some(token)
    } else {
        None
    };
    let join_token = if config.auth.join_token.is_empty() {
        ensure_secret(&dir.join("join-token"), "join")?.0
    } else {
        config.auth.join_token.clone()
    };
    Ok(Secrets { auth: Auth::new(tokens), gateway_token, join_token, tls })
}

/// The single-node cluster's node is this machine: the directories it grants for
/// writing exist from the first start, so the quick start's output has a place to go.
fn create_granted_dirs(config: &Config) -> anyhow::Result<()> {
    for (i, g) in config.storage.grants.iter().enumerate() {
        for root in g.parse(i)?.write {
            if let gantry_domain::StoragePath::File { path } = root {
                fs::create_dir_all(&path)?;
            }
        }
    }
    Ok(())
}

fn write_client_config(
    path: &PathBuf,
    config: &Config,
    token: &Secret,
    ca_cert: Option<&PathBuf>,
) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let scheme = if ca_cert.is_some() { "https" } else { "http" };
    let addr = config.replica.listen_api;
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
    let mut text = format!(
        "servers = [\"{scheme}://{host}:{}\"]\ntoken = \"{}\"\nproject = \"default\"\n",
        addr.port(),
        token.expose()
    );
    if let Some(ca) = ca_cert {
        text.push_str(&format!("ca_cert = \"{}\"\n", ca.display()));
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(SECRET_MODE)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // `mode` applies only when the file is created: tighten one that already existed
    // before the token goes in.
    f.set_permissions(Permissions::from_mode(SECRET_MODE))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Everything the tracing subscriber of the test thread printed.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_admin_token_goes_to_owner_only_files_and_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let client = dir.path().join("home/client.toml");
        // A client config left world-readable by an older version must be tightened.
        fs::create_dir_all(client.parent().unwrap()).unwrap();
        fs::write(&client, "old").unwrap();
        fs::set_permissions(&client, Permissions::from_mode(0o644)).unwrap();
        let mut config = Config::default();
        config.replica.data_dir = dir.path().join("data");
        config.auth.client_config = Some(client.clone());

        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer({
                let logs = logs.clone();
                move || logs.clone()
            })
            .finish();
        let mut stdout = Vec::new();
        let secrets = tracing::subscriber::with_default(subscriber, || {
            // A callsite first seen here is always captured: proof the capture works,
            // whatever other test threads made of the shared callsites.
            tracing::info!("capture probe");
            prepare_to(&config, &mut stdout)
        })
        .unwrap();

        let token_path = config.replica.data_dir.join("admin-token");
        let token = fs::read_to_string(&token_path).unwrap();
        assert!(token.starts_with("gantry_") && token.len() > 60, "{token}");
        assert_eq!(mode(&token_path), 0o600);
        assert_eq!(mode(&client), 0o600);
        assert_eq!(mode(&config.replica.data_dir.join("join-token")), 0o600);
        assert!(fs::read_to_string(&client).unwrap().contains(&token), "the client config holds the token");

        let stdout = String::from_utf8(stdout).unwrap();
        let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(stdout.contains(&token_path.display().to_string()), "the notice names the file: {stdout}");
        assert!(logs.contains("capture probe"), "the capture works");
        let join = secrets.join_token.expose();
        for (what, text) in [("stdout", &stdout), ("logs", &logs)] {
            assert!(!text.contains(&token), "{what} shows the admin token: {text}");
            assert!(!text.contains(join), "{what} shows the join token: {text}");
        }
        assert!(!format!("{:?}", secrets.auth).contains(&token));

        // The second start finds the token and prints nothing.
        let mut again = Vec::new();
        let secrets = prepare_to(&config, &mut again).unwrap();
        assert!(again.is_empty());
        let mut req = tonic::Request::new(());
        req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        assert_eq!(secrets.auth.authenticate(&req).unwrap().name, "admin");
    }

    #[test]
    fn the_dev_pki_gives_this_replica_its_replica_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.replica.id = 3;
        config.replica.data_dir = dir.path().join("data");
        config.auth.bootstrap_admin = false;
        let tls = prepare_to(&config, &mut Vec::new()).unwrap().tls.unwrap();
        let pem = fs::read(&tls.cert).unwrap();
        use rustls::pki_types::pem::PemObject as _;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
        assert_eq!(gantry_pki::replica_id_of(&der), Some(3));
    }
}
