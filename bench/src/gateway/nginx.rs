//! nginx (Debian's package) as the reference proxy: a child process with a generated
//! configuration in a temporary directory, one process (`master_process off`: killing
//! the child on drop then leaves no worker behind), a keep-alive upstream to the model
//! server, listening on loopback only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};

/// A running nginx; killed when dropped.
pub struct Nginx {
    pub addr: SocketAddr,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// The nginx binary: `$PATH` first, then Debian's location.
fn binary() -> Option<PathBuf> {
    let on_path =
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).find(|p| p.is_file()));
    on_path.or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file()))
}

/// The configuration: what a typical reverse-proxy setup uses (HTTP/1.1 keep-alive to
/// the upstream, no access log so disk writes do not count against it).
pub fn config(dir: &Path, listen: SocketAddr, upstream: SocketAddr) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         client_max_body_size 10m;\n\
         upstream model {{ server {upstream}; keepalive 128; }}\n\
         server {{\n    listen {listen};\n    location / {{\n      proxy_pass http://model;\n\
         proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }}\n  }}\n}}\n"
    )
}

impl Nginx {
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Nginx> {
        let bin = binary().context("nginx not found: run bench/scripts/install-peers.sh")?;
        let dir = tempfile::tempdir()?;
        // A free loopback port: bind, read, release (nginx binds it a moment later).
        let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), listen, upstream))?;
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("start nginx")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(listen).await.is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                anyhow::bail!("nginx did not listen on {listen} within 10 s: {log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Nginx { addr: listen, _child: child, _dir: dir })
    }
}
