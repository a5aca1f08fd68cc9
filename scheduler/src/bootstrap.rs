//! First-start setup for the embedded default: TLS material, the admin and join tokens,
//! and a `gantryctl` client config, so a newcomer gets TLS and auth with no setup.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use gantry_pki::TlsFiles;

use crate::api::auth::{Auth, Caller, Scope};
use crate::config::{Config, default_client_config};

pub struct Secrets {
    pub auth: Auth,
    pub join_token: String,
    pub tls: Option<TlsFiles>,
}

/// Reads the secret at `path`, or creates it (mode 0600). Returns it and whether it is new.
fn ensure_secret(path: &Path, prefix: &str) -> anyhow::Result<(String, bool)> {
    if path.exists() {
        return Ok((std::fs::read_to_string(path)?.trim().to_string(), false));
    }
    let secret = format!("{prefix}_{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(secret.as_bytes())?;
    f.sync_all()?;
    Ok((secret, true))
}

pub fn prepare(config: &Config) -> anyhow::Result<Secrets> {
    let dir = &config.replica.data_dir;
    std::fs::create_dir_all(dir)?;
    if config.agent.embedded {
        create_granted_dirs(config)?;
    }
    let tls = if config.tls.insecure_dev {
        None
    } else if let (Some(ca_cert), Some(cert), Some(key)) = (&config.tls.ca_cert, &config.tls.cert, &config.tls.key) {
        Some(TlsFiles { ca_cert: ca_cert.clone(), cert: cert.clone(), key: key.clone() })
    } else {
        Some(gantry_pki::ensure_dev_pki(&dir.join("pki"), &config.tls.server_names)?)
    };

    let mut tokens: Vec<(String, Caller)> = config
        .auth
        .tokens
        .iter()
        .map(|t| {
            let scope = if t.project == "*" { Scope::Cluster } else { Scope::Project(t.project.clone()) };
            (t.token.clone(), Caller { name: t.name.clone(), scope })
        })
        .collect();
    if config.auth.bootstrap_admin {
        let (token, created) = ensure_secret(&dir.join("admin-token"), "gantry")?;
        tokens.push((token.clone(), Caller { name: "admin".into(), scope: Scope::Cluster }));
        if created {
            let client_path = config.auth.client_config.clone().unwrap_or_else(default_client_config);
            write_client_config(&client_path, config, &token, tls.as_ref().map(|t| &t.ca_cert))?;
            println!("gantry: admin token (shown once): {token}");
            println!("gantry: gantryctl config written to {}", client_path.display());
        }
    }
    let join_token = if config.auth.join_token.is_empty() {
        ensure_secret(&dir.join("join-token"), "join")?.0
    } else {
        config.auth.join_token.clone()
    };
    Ok(Secrets { auth: Auth::new(tokens), join_token, tls })
}

/// The single-node cluster's node is this machine: the directories it grants for
/// writing exist from the first start, so the quick start's output has a place to go.
fn create_granted_dirs(config: &Config) -> anyhow::Result<()> {
    for (i, g) in config.storage.grants.iter().enumerate() {
        for root in g.parse(i)?.write {
            if let gantry_domain::StoragePath::File { path } = root {
                std::fs::create_dir_all(&path)?;
            }
        }
    }
    Ok(())
}

fn write_client_config(path: &PathBuf, config: &Config, token: &str, ca_cert: Option<&PathBuf>) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let scheme = if ca_cert.is_some() { "https" } else { "http" };
    let addr = config.replica.listen_api;
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
    let mut text =
        format!("servers = [\"{scheme}://{host}:{}\"]\ntoken = \"{token}\"\nproject = \"default\"\n", addr.port());
    if let Some(ca) = ca_cert {
        text.push_str(&format!("ca_cert = \"{}\"\n", ca.display()));
    }
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
