//! `gantryctl pki`: the cluster's certificates, made with the project's own code instead
//! of by hand with openssl. Local files only: no server is contacted.
//!
//! ```text
//!   pki init --dir D                       ──▶ D/ca.pem, D/ca-key.pem (0600)
//!   pki issue replica --id N --host H… \
//!       --dir D [--out O]                  ──▶ O/replica-N.pem, O/replica-N-key.pem (0600)
//! ```
//!
//! A replica certificate is the only kind the Raft peer port accepts (CommonName
//! `replica-N` plus the SAN URI `urn:gantry:replica:N`); it also serves the replica's
//! API, so `--host` lists every name agents, the CLI and the other replicas dial it by.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::output::json::ToJson;
use crate::output::table::fields;
use crate::output::{Format, emit};

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create the cluster's certificate authority (ca.pem, ca-key.pem)
    Init(InitArgs),
    /// Issue a certificate signed by the CA
    #[command(subcommand)]
    Issue(IssueCommand),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory for ca.pem and ca-key.pem (created if missing)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Replace an existing CA: every certificate the old one signed stops being trusted
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum IssueCommand {
    /// A scheduler replica's certificate: the only kind the Raft peer port accepts; it
    /// also serves the replica's API
    Replica(ReplicaArgs),
}

#[derive(Debug, Args)]
pub struct ReplicaArgs {
    /// The replica's raft id (`replica.id` in its config)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub id: u64,
    /// A DNS name or IP address the replica is reached by; repeat for each (peers'
    /// `url` hosts, agents' `tls.server_name`, CLI servers)
    #[arg(long = "host", value_name = "HOST", required = true)]
    pub hosts: Vec<String>,
    /// Directory of the CA (ca.pem, ca-key.pem) made by `pki init`
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Where to write replica-<id>.pem and replica-<id>-key.pem [default: --dir]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// What `pki init` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaWritten {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
}

/// What `pki issue replica` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaWritten {
    pub id: u64,
    pub hosts: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_cert: PathBuf,
}

/// `pki init`: refuses to replace an existing CA unless `args.force`.
pub fn init(args: &InitArgs) -> anyhow::Result<CaWritten> {
    let files = gantry_pki::init_ca(&args.dir, args.force)?;
    Ok(CaWritten { ca_cert: files.cert, ca_key: files.key })
}

/// `pki issue replica`.
pub fn issue_replica(args: &ReplicaArgs) -> anyhow::Result<ReplicaWritten> {
    for (i, host) in args.hosts.iter().enumerate() {
        anyhow::ensure!(!host.trim().is_empty(), "--host[{i}]: must not be empty");
    }
    let out = args.out.as_deref().unwrap_or(&args.dir);
    let files = gantry_pki::issue_replica(&args.dir, out, args.id, &args.hosts)?;
    Ok(ReplicaWritten {
        id: args.id,
        hosts: args.hosts.clone(),
        cert: files.cert,
        key: files.key,
        ca_cert: files.ca_cert,
    })
}

pub fn run(format: Format, cmd: PkiCommand) -> anyhow::Result<()> {
    match cmd {
        PkiCommand::Init(args) => emit(format, &init(&args)?, init_view),
        PkiCommand::Issue(IssueCommand::Replica(args)) => emit(format, &issue_replica(&args)?, replica_view),
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

impl ToJson for CaWritten {
    fn to_json(&self) -> Value {
        json!({ "ca_cert": shown(&self.ca_cert), "ca_key": shown(&self.ca_key) })
    }
}

impl ToJson for ReplicaWritten {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "hosts": self.hosts,
            "cert": shown(&self.cert),
            "key": shown(&self.key),
            "ca_cert": shown(&self.ca_cert),
        })
    }
}

fn init_view(w: &CaWritten) -> String {
    let mut out = fields(&[
        ("CA certificate", shown(&w.ca_cert)),
        ("CA key", format!("{} (mode 0600; keep it where certificates are issued)", shown(&w.ca_key))),
    ]);
    out.push_str("\nNext: gantryctl pki issue replica --id 1 --host <name> --dir <this dir>, once per replica.\n");
    out
}

fn replica_view(w: &ReplicaWritten) -> String {
    let mut out = fields(&[
        ("Replica", w.id.to_string()),
        ("Hosts", w.hosts.join(", ")),
        ("Certificate", shown(&w.cert)),
        ("Key", format!("{} (mode 0600)", shown(&w.key))),
        ("CA certificate", shown(&w.ca_cert)),
    ]);
    out.push_str(&format!(
        "\nIn replica {}'s config:\n[tls]\nca_cert = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        w.id,
        shown(&w.ca_cert),
        shown(&w.cert),
        shown(&w.key)
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> PkiCommand {
        match Cli::try_parse_from(args).unwrap().command {
            Command::Pki(cmd) => cmd,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn init_then_issue_writes_owner_only_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        let out = dir.path().join("out");
        let ca_arg = ca.display().to_string();
        let out_arg = out.display().to_string();
        let PkiCommand::Init(args) = parse(&["gantryctl", "pki", "init", "--dir", &ca_arg]) else { panic!() };
        let written = init(&args).unwrap();
        assert_eq!(std::fs::metadata(&written.ca_key).unwrap().permissions().mode() & 0o777, 0o600);
        let err = init(&args).unwrap_err();
        assert!(format!("{err:#}").contains("--force"), "{err:#}");

        let cmd = parse(&[
            "gantryctl",
            "pki",
            "issue",
            "replica",
            "--id",
            "2",
            "--host",
            "sched-2",
            "--host",
            "10.0.0.12",
            "--dir",
            &ca_arg,
            "--out",
            &out_arg,
        ]);
        let PkiCommand::Issue(IssueCommand::Replica(args)) = cmd else { panic!() };
        let w = issue_replica(&args).unwrap();
        assert_eq!(w.cert, out.join("replica-2.pem"));
        assert_eq!(w.ca_cert, ca.join("ca.pem"));
        assert_eq!(std::fs::metadata(&w.key).unwrap().permissions().mode() & 0o777, 0o600);
        use rustls::pki_types::pem::PemObject as _;
        let der = rustls::pki_types::CertificateDer::from_pem_file(&w.cert).unwrap();
        assert_eq!(gantry_pki::replica_id_of(&der), Some(2));
        assert_eq!(w.to_json()["cert"], json!(out.join("replica-2.pem").display().to_string()));
        assert!(replica_view(&w).contains("cert = \""));
    }

    #[test]
    fn bad_arguments_are_refused() {
        for args in [
            &["gantryctl", "pki", "issue", "replica", "--id", "0", "--host", "h", "--dir", "d"][..],
            &["gantryctl", "pki", "issue", "replica", "--id", "1", "--dir", "d"],
            &["gantryctl", "pki", "init"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let args = ReplicaArgs { id: 1, hosts: vec!["h".into()], dir: dir.path().into(), out: None };
        let err = issue_replica(&args).unwrap_err();
        assert!(format!("{err:#}").contains("ca-key.pem"), "no CA: {err:#}");
        assert!(!dir.path().join("replica-1.pem").exists());
    }
}
