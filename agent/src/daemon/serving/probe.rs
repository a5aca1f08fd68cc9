//! The readiness probe of the serving contract: `GET /v2/health/ready` over a fresh
//! connection (HTTP/1.1, `Connection: close`); ready means status 200. A tiny request
//! by hand: it needs no HTTP client, and only the status line is read.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::serving::HEALTH_PATH;

/// The status line is within the first bytes of any answer.
const HEAD_BYTES: usize = 256;

/// Whether the pod at `ip:port` answers ready within `timeout`.
pub async fn ready(ip: IpAddr, port: u16, timeout: Duration) -> bool {
    matches!(tokio::time::timeout(timeout, status(SocketAddr::new(ip, port))).await, Ok(Ok(200)))
}

async fn status(addr: SocketAddr) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {HEALTH_PATH} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    let mut buf = [0u8; HEAD_BYTES];
    while !head.contains(&b'\n') && head.len() < HEAD_BYTES {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status(&head).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer"))
}

/// The code of an `HTTP/1.x NNN …` status line.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn status_lines_are_read_strictly() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }

    async fn serve_once(answer: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET /v2/health/ready HTTP/1.1\r\n"));
            s.write_all(answer).await.unwrap();
        });
        port
    }

    #[tokio::test]
    async fn ready_only_on_200() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let t = Duration::from_secs(5);
        assert!(ready(local, serve_once(b"HTTP/1.1 200 OK\r\n\r\n").await, t).await);
        assert!(!ready(local, serve_once(b"HTTP/1.1 503 Unavailable\r\n\r\n").await, t).await);
        // Nothing listens on a port just released.
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        assert!(!ready(local, port, t).await);
    }
}
