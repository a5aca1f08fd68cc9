//! The benchmark's model server: a hyper HTTP/1.1 server on its own thread and
//! runtime, answering every request with the same small prediction, so the three
//! targets (direct, nginx, gateway) differ only in what sits in front of it.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// What every call answers (the guide's V1 response shape).
pub const PREDICTION: &str = r#"{"predictions":[[0.1,0.7,0.2]]}"#;

/// A running model server; stops with the process.
pub struct ModelServer {
    pub addr: SocketAddr,
}

impl ModelServer {
    /// Binds 127.0.0.1:0 and serves from a dedicated single-worker runtime.
    pub fn start() -> anyhow::Result<ModelServer> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        std::thread::Builder::new().name("model-server".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else { return };
                while let Ok((stream, _)) = listener.accept().await {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let service = service_fn(|request: hyper::Request<hyper::body::Incoming>| async move {
                            // Read the instances like a model would before answering.
                            let _ = request.into_body().collect().await;
                            let mut response =
                                hyper::Response::new(Full::new(Bytes::from_static(PREDICTION.as_bytes())));
                            response.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static("application/json"),
                            );
                            Ok::<_, Infallible>(response)
                        });
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
            });
        })?;
        Ok(ModelServer { addr })
    }
}
