//! Separate "hosts" on one machine: one network namespace per host, each with its own
//! address on a private bridge, so that faults can cut the network between hosts.
//!
//! ```text
//!   root namespace (the test and its clients)
//!     bridge gtb{tag} 10.213.N.1/24 ── veth ── netns gtn{tag}-0  eth0 10.213.N.2
//!                                   ├─ veth ── netns gtn{tag}-1  eth0 10.213.N.3
//!                                   └─ …
//! ```
//!
//! A process runs on host `i` when it is started through [`HostNetwork::command`]
//! (`ip netns exec`, which execs the program: its pid is the program's). Partitions are
//! iptables rules inside the receiving host's namespace (`INPUT -s peer -j DROP`), so a
//! one-way drop is one rule and healing flushes them. The subnet `N` is claimed with an
//! advisory lock file, so concurrent test processes never share one; everything made
//! here is removed on drop (and a namespace left by a crashed run is replaced).
//!
//! Needs root (or CAP_NET_ADMIN), iproute2 and iptables.

mod clock;
mod cmd;
mod disk;

pub use clock::FakeClock;
pub use disk::SmallDisk;

use std::fs::File;
use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::Context as _;
use nix::fcntl::{Flock, FlockArg};

use cmd::run;

const LOCK_DIR: &str = "/run/gantry-chaos";

/// The namespaces, their addresses and the bridge joining them.
pub struct HostNetwork {
    tag: String,
    subnet: u8,
    hosts: usize,
    /// Held for the network's lifetime: the subnet's claim.
    _lock: Flock<File>,
}

impl HostNetwork {
    /// Creates `hosts` namespaces on a fresh bridge.
    pub fn create(hosts: usize) -> anyhow::Result<HostNetwork> {
        let (subnet, lock) = claim_subnet()?;
        let tag = format!("{:02x}{:04x}", subnet, std::process::id() & 0xffff);
        let net = HostNetwork { tag, subnet, hosts, _lock: lock };
        net.teardown();
        net.build().with_context(|| format!("cannot build the host network 10.213.{subnet}.0/24"))?;
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("gtb{}", self.tag)
    }

    /// The namespace of host `i`.
    pub fn namespace(&self, i: usize) -> String {
        format!("gtn{}-{i}", self.tag)
    }

    fn veth(&self, i: usize) -> String {
        format!("gtv{}{i}", self.tag)
    }

    /// Host `i`'s address.
    pub fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, 2 + i as u8)
    }

    /// The root namespace's address on the bridge (where the test's clients come from).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, 1)
    }

    pub fn len(&self) -> usize {
        self.hosts
    }

    pub fn is_empty(&self) -> bool {
        self.hosts == 0
    }

    fn build(&self) -> anyhow::Result<()> {
        let br = self.bridge();
        run("ip", &["link", "add", &br, "type", "bridge"])?;
        run("ip", &["addr", "add", &format!("{}/24", self.gateway()), "dev", &br])?;
        run("ip", &["link", "set", &br, "up"])?;
        // With br_netfilter loaded (Docker loads it) bridged frames cross the root
        // FORWARD chain, whose policy Docker sets to DROP.
        for dir in ["-i", "-o"] {
            run("iptables", &["-I", "FORWARD", dir, &br, "-j", "ACCEPT"])?;
        }
        for i in 0..self.hosts {
            let (ns, veth) = (self.namespace(i), self.veth(i));
            run("ip", &["netns", "add", &ns])?;
            run("ip", &["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            run("ip", &["link", "set", &veth, "master", &br])?;
            run("ip", &["link", "set", &veth, "up"])?;
            let addr = format!("{}/24", self.ip(i));
            for args in [
                vec!["addr", "add", addr.as_str(), "dev", "eth0"],
                vec!["link", "set", "eth0", "up"],
                vec!["link", "set", "lo", "up"],
            ] {
                let mut full = vec!["netns", "exec", ns.as_str(), "ip"];
                full.extend(args);
                run("ip", &full)?;
            }
        }
        Ok(())
    }

    /// Removes whatever of this network exists (best effort; also what a crashed run
    /// with the same tag left behind).
    fn teardown(&self) {
        let br = self.bridge();
        for i in 0..self.hosts {
            let _ = run("ip", &["netns", "del", &self.namespace(i)]);
        }
        let _ = run("ip", &["link", "del", &br]);
        for dir in ["-i", "-o"] {
            while run("iptables", &["-D", "FORWARD", dir, &br, "-j", "ACCEPT"]).is_ok() {}
        }
    }

    /// A command that runs `program` on host `i`.
    pub fn command(&self, i: usize, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.arg("netns").arg("exec").arg(self.namespace(i)).arg(program);
        c
    }

    fn iptables(&self, host: usize, args: &[&str]) -> anyhow::Result<()> {
        let ns = self.namespace(host);
        let mut full = vec!["netns", "exec", ns.as_str(), "iptables"];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Host `to` stops receiving from host `from` (one way: `to` can still send).
    pub fn drop_from(&self, to: usize, from: usize) -> anyhow::Result<()> {
        let src = self.ip(from).to_string();
        self.iptables(to, &["-A", "INPUT", "-s", &src, "-j", "DROP"])
    }

    /// No traffic between any host of `a` and any host of `b`.
    pub fn partition(&self, a: &[usize], b: &[usize]) -> anyhow::Result<()> {
        for &x in a {
            for &y in b {
                self.drop_from(x, y)?;
                self.drop_from(y, x)?;
            }
        }
        Ok(())
    }

    /// Cuts host `i` off from every other host; the test's clients still reach it.
    pub fn isolate(&self, i: usize) -> anyhow::Result<()> {
        let others: Vec<usize> = (0..self.hosts).filter(|&h| h != i).collect();
        self.partition(&[i], &others)
    }

    /// Removes every drop rule on every host.
    pub fn heal(&self) -> anyhow::Result<()> {
        for i in 0..self.hosts {
            self.iptables(i, &["-F", "INPUT"])?;
        }
        Ok(())
    }
}

impl Drop for HostNetwork {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Claims a free `10.213.N.0/24` (N in 1..=250) by locking `{LOCK_DIR}/subnet-N.lock`.
fn claim_subnet() -> anyhow::Result<(u8, Flock<File>)> {
    std::fs::create_dir_all(LOCK_DIR).with_context(|| format!("cannot create {LOCK_DIR}"))?;
    let start = (std::process::id() % 250) as u8;
    for k in 0..250u8 {
        let n = 1 + (start.wrapping_add(k) % 250);
        let path = format!("{LOCK_DIR}/subnet-{n}.lock");
        let file = File::options().create(true).truncate(false).write(true).open(&path)?;
        if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            return Ok((n, lock));
        }
    }
    anyhow::bail!("no free 10.213.N.0/24 subnet: every lock under {LOCK_DIR} is held")
}
