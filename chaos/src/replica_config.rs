//! The TOML config file of one replica of a [`crate::ProcessCluster`]: everything
//! explicit (no generated TLS, no generated tokens), so every replica of a cluster
//! agrees on peers, CA and tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gantry_pki::TlsFiles;
use toml::{Table, Value};

/// Where one replica lives.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaAddrs {
    pub id: u64,
    pub data_dir: PathBuf,
    pub api: SocketAddr,
    pub peer: SocketAddr,
}

/// Settings every replica of one cluster shares.
pub(crate) struct SharedSettings<'a> {
    pub join_token: &'a str,
    /// (name, token, project)
    pub tokens: &'a [(String, String, String)],
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    pub snapshot_every: u64,
}

/// The disk fault file (`[raft] fault_file`) of the replica whose data dir is
/// `data_dir`: beside it, so that wiping the data dir keeps the fault.
pub(crate) fn fault_file(data_dir: &std::path::Path) -> PathBuf {
    data_dir.with_file_name("disk-fault")
}

/// The config of `all[me]`, with every other entry of `all` as a peer, serving and
/// dialling with `tls` (its own replica certificate).
pub(crate) fn render(
    all: &[ReplicaAddrs],
    me: usize,
    shared: &SharedSettings<'_>,
    tls: &TlsFiles,
) -> anyhow::Result<String> {
    let this = all.get(me).ok_or_else(|| anyhow::anyhow!("replica index {me} out of range"))?;
    let path = |p: &PathBuf| Value::String(p.display().to_string());
    let int = |n: u64| -> anyhow::Result<Value> { Ok(Value::Integer(i64::try_from(n)?)) };

    let mut replica = Table::new();
    replica.insert("id".into(), int(this.id)?);
    replica.insert("data_dir".into(), path(&this.data_dir));
    replica.insert("listen_api".into(), Value::String(this.api.to_string()));
    replica.insert("listen_peer".into(), Value::String(this.peer.to_string()));

    let mut peers = Vec::new();
    for (i, other) in all.iter().enumerate() {
        if i == me {
            continue;
        }
        let mut peer = Table::new();
        peer.insert("id".into(), int(other.id)?);
        peer.insert("url".into(), Value::String(format!("https://{}", other.peer)));
        peers.push(Value::Table(peer));
    }

    let mut raft = Table::new();
    raft.insert("tick".into(), Value::String(format!("{}ms", shared.tick.as_millis())));
    raft.insert("election_ticks".into(), int(shared.election_ticks as u64)?);
    raft.insert("heartbeat_ticks".into(), int(shared.heartbeat_ticks as u64)?);
    raft.insert("snapshot_every".into(), int(shared.snapshot_every)?);
    raft.insert("fault_file".into(), path(&fault_file(&this.data_dir)));

    let files = tls;
    let mut tls = Table::new();
    tls.insert("ca_cert".into(), path(&files.ca_cert));
    tls.insert("cert".into(), path(&files.cert));
    tls.insert("key".into(), path(&files.key));

    let tokens = shared
        .tokens
        .iter()
        .map(|(name, token, project)| {
            let mut t = Table::new();
            t.insert("name".into(), Value::String(name.clone()));
            t.insert("token".into(), Value::String(token.clone()));
            t.insert("project".into(), Value::String(project.clone()));
            Value::Table(t)
        })
        .collect();
    let mut auth = Table::new();
    auth.insert("bootstrap_admin".into(), Value::Boolean(false));
    auth.insert("join_token".into(), Value::String(shared.join_token.into()));
    auth.insert("tokens".into(), Value::Array(tokens));

    let mut root = Table::new();
    root.insert("replica".into(), Value::Table(replica));
    root.insert("peers".into(), Value::Array(peers));
    root.insert("raft".into(), Value::Table(raft));
    root.insert("tls".into(), Value::Table(tls));
    root.insert("auth".into(), Value::Table(auth));
    Ok(toml::to_string(&root)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_peers_tokens_and_raft_settings() -> anyhow::Result<()> {
        let addrs = |id: u64, port: u16| ReplicaAddrs {
            id,
            data_dir: PathBuf::from(format!("/tmp/x \"{id}\"/data")),
            api: SocketAddr::from(([127, 0, 0, 1], port)),
            peer: SocketAddr::from(([127, 0, 0, 1], port + 1)),
        };
        let all = [addrs(1, 1000), addrs(2, 2000), addrs(3, 3000)];
        let tls = TlsFiles {
            ca_cert: "/p/ca.pem".into(),
            cert: "/p/replica-2.pem".into(),
            key: "/p/replica-2-key.pem".into(),
        };
        let tokens = [("admin".to_string(), "t".repeat(20), "*".to_string())];
        let shared = SharedSettings {
            join_token: "join-0123456789abcdef",
            tokens: &tokens,
            tick: Duration::from_millis(50),
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_every: 50,
        };
        let text = render(&all, 1, &shared, &tls)?;
        let parsed: Table = toml::from_str(&text)?;
        assert_eq!(parsed["replica"]["id"].as_integer(), Some(2));
        assert_eq!(parsed["replica"]["data_dir"].as_str(), Some("/tmp/x \"2\"/data"));
        let peers = parsed["peers"].as_array().map(Vec::len);
        assert_eq!(peers, Some(2));
        assert_eq!(parsed["peers"][1]["url"].as_str(), Some("https://127.0.0.1:3001"));
        assert_eq!(parsed["raft"]["snapshot_every"].as_integer(), Some(50));
        assert_eq!(parsed["raft"]["fault_file"].as_str(), Some("/tmp/x \"2\"/disk-fault"));
        assert_eq!(parsed["auth"]["tokens"][0]["project"].as_str(), Some("*"));
        assert_eq!(parsed["tls"]["cert"].as_str(), Some("/p/replica-2.pem"));
        Ok(())
    }
}
