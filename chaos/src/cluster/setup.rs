//! Building a cluster before its first start: PKI, addresses (loopback ports or one
//! namespace per replica), configs, and the optional fake clocks and small disks.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use gantry_pki::TlsFiles;
use tempfile::TempDir;

use super::{ADMIN_TOKEN, ClusterOptions, JOIN_TOKEN, Process, ProcessCluster, Replica, channel};
use crate::hosts::{FakeClock, HostNetwork, SmallDisk};
use crate::replica_config::{self, ReplicaAddrs, SharedSettings};

/// The ports every replica uses on its own host (namespaces only).
const HOST_API_PORT: u16 = 7443;
const HOST_PEER_PORT: u16 = 7444;

impl ProcessCluster {
    pub(super) fn prepare(dir: TempDir, binary: PathBuf, options: &ClusterOptions) -> anyhow::Result<ProcessCluster> {
        let base = dir.path().to_path_buf();
        let net =
            if options.namespaces { Some(HostNetwork::create(options.replicas + options.agent_hosts)?) } else { None };
        let host_ip = |i: usize| net.as_ref().map(|n| n.ip(i));
        let tls: Vec<TlsFiles> = match &options.replica_tls {
            Some(files) => {
                anyhow::ensure!(
                    files.len() == options.replicas,
                    "replica_tls has {} entries for {} replicas",
                    files.len(),
                    options.replicas
                );
                files.clone()
            }
            None => (0..options.replicas)
                .map(|i| {
                    // Peers dial each other by address: the certificate must name it.
                    let names: Vec<String> = host_ip(i).map(|ip| ip.to_string()).into_iter().collect();
                    gantry_pki::ensure_dev_replica(&base.join("pki"), i as u64 + 1, &names)
                })
                .collect::<Result<_, _>>()
                .context("cannot create the dev PKI")?,
        };
        // The API does not require client certificates: the admin client trusts the CA
        // and presents a token, like gantryctl.
        let client_tls = gantry_pki::client_tls_ca_only(&tls[0].ca_cert, "localhost")
            .context("cannot build the client TLS config")?;

        let mut disks = Vec::new();
        let mut addrs = Vec::new();
        let data_dir = |id: u64, disks: &mut Vec<SmallDisk>| -> anyhow::Result<PathBuf> {
            let rdir = base.join(format!("replica-{id}"));
            std::fs::create_dir_all(&rdir)?;
            Ok(match options.small_disk_mib {
                Some(mib) => {
                    let disk = SmallDisk::create(&rdir.join("disk.img"), &rdir.join("disk"), mib)?;
                    let data = disk.mount_point().join("data");
                    disks.push(disk);
                    data
                }
                None => rdir.join("data"),
            })
        };
        match &net {
            Some(net) => {
                for i in 0..options.replicas {
                    let id = i as u64 + 1;
                    addrs.push(ReplicaAddrs {
                        id,
                        data_dir: data_dir(id, &mut disks)?,
                        api: SocketAddr::from((net.ip(i), HOST_API_PORT)),
                        peer: SocketAddr::from((net.ip(i), HOST_PEER_PORT)),
                    });
                }
            }
            None => {
                // Hold every listener until all ports are picked, so that no two
                // coincide; the replicas bind them right after (a small race with other
                // processes, accepted).
                let mut listeners = Vec::new();
                for i in 0..options.replicas {
                    let api = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
                    let peer = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
                    let id = i as u64 + 1;
                    addrs.push(ReplicaAddrs {
                        id,
                        data_dir: data_dir(id, &mut disks)?,
                        api: api.local_addr()?,
                        peer: peer.local_addr()?,
                    });
                    listeners.push((api, peer));
                }
            }
        }

        let mut tokens = vec![("chaos-admin".to_string(), ADMIN_TOKEN.to_string(), "*".to_string())];
        tokens.extend(options.tokens.iter().cloned());
        let shared = SharedSettings {
            join_token: JOIN_TOKEN,
            tokens: &tokens,
            tick: options.tick,
            election_ticks: options.election_ticks,
            heartbeat_ticks: options.heartbeat_ticks,
            snapshot_every: options.snapshot_every,
        };
        let mut replicas = Vec::new();
        for (i, a) in addrs.iter().enumerate() {
            let rdir = base.join(format!("replica-{}", a.id));
            let config = rdir.join("scheduler.toml");
            std::fs::write(&config, replica_config::render(&addrs, i, &shared, &tls[i])?)
                .with_context(|| format!("cannot write {}", config.display()))?;
            let clock = if options.fake_clocks { Some(FakeClock::new(&rdir.join("faketime"))?) } else { None };
            replicas.push(Replica {
                id: a.id,
                api: a.api,
                peer: a.peer,
                tls: tls[i].clone(),
                data_dir: a.data_dir.clone(),
                log: rdir.join("scheduler.log"),
                config,
                dir: rdir,
                channel: channel(a.api, &client_tls)?,
                process: Mutex::new(Process::default()),
                clock: Mutex::new(clock),
            });
        }
        Ok(ProcessCluster {
            disks: Mutex::new(disks),
            net,
            dir,
            failed: AtomicBool::new(false),
            binary,
            log_filter: options.log_filter.clone(),
            seed: options.seed,
            replicas,
        })
    }

    /// The command that starts replica `i`'s binary: on its own host and clock if the
    /// cluster has them.
    pub(super) fn command(&self, i: usize) -> Command {
        let mut cmd = match &self.net {
            Some(net) => net.command(i, &self.binary),
            None => Command::new(&self.binary),
        };
        if let Some(clock) = self.clock(i).as_ref() {
            cmd.envs(clock.env());
        }
        cmd
    }

    /// The hosts of a cluster started with [`ClusterOptions::namespaces`].
    pub fn network(&self) -> Option<&HostNetwork> {
        self.net.as_ref()
    }

    pub(super) fn clock(&self, i: usize) -> std::sync::MutexGuard<'_, Option<FakeClock>> {
        match self.replicas[i].clock.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
