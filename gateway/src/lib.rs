//! `gantry-gateway`: the HTTP gateway in front of serving pods.
//!
//! ```text
//!   caller ──/e/{endpoint}{path}, /s/{stage}{path}──▶ proxy ──round-robin──▶ pods
//!                                                     │ auth (API key / project token)
//!                                                     │ stats per stage and minute
//!                                                     └ inference logs (use_log)
//!   scheduler ──WatchRoutes──▶ watch ──apply──▶ Gateway (RouteTable)
//!             ◀─ReportGateway── applied version, deploy errors, finished minutes
//! ```
//! The routing rules are pure ([`routes`], [`auth`]); the I/O lives in [`server`],
//! [`forward`] and [`watch`]. Embedded in the single-node scheduler or run as the
//! `gantry-gateway` daemon ([`config`]).

pub mod auth;
pub mod config;
pub mod forward;
pub mod gateway;
pub mod inference_log;
mod proxy;
pub mod routes;
pub mod server;
pub mod stats;
pub mod watch;

pub use gateway::{DEFAULT_MAX_BODY_BYTES, Gateway, GatewayConfig, StaleTable};
pub use inference_log::{FileLogSink, InferenceLog, LogSink};
pub use server::tls_from_pem;
pub use watch::{WatchConfig, watch};
