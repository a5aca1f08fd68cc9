//! The gateway's library API: configure, feed route tables, serve.
//!
//! ```text
//!   watch (scheduler) ──apply(RouteTable)──▶ Gateway ◀── serve(listener) ── callers
//!                      ◀─deploy errors, take_finished_minutes()─┘
//! ```

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use gantry_proto::v1;

use crate::forward::{PodClient, pod_client};
use crate::inference_log::LogSink;
use crate::routes::RouteTable;
use crate::stats::StageStats;

/// Default request body limit: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// How the gateway serves.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Limit of a whole call (reading the body, connecting, the pod's answer).
    pub request_timeout: Duration,
    /// Limit of connecting to one pod; a pod that does not accept in time is skipped.
    pub connect_timeout: Duration,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Idle keep-alive connections to pods are closed after this.
    pub pool_idle_timeout: Duration,
    /// Where inference logs of stages with `use_log` go; none: not kept.
    pub log_sink: Option<Arc<dyn LogSink>>,
    /// TLS for callers; none: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(2),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            pool_idle_timeout: Duration::from_secs(90),
            log_sink: None,
            tls: None,
        }
    }
}

/// A route table that is not newer than the applied one; it was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("route table version {offered} is not newer than the applied version {applied}")]
pub struct StaleTable {
    pub offered: u64,
    pub applied: u64,
}

/// A cloneable handle to one gateway: every clone routes with the same table and counts
/// into the same statistics.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: GatewayConfig,
    pub(crate) client: PodClient,
    pub(crate) stats: StageStats,
    // std locks: held to swap or clone an Arc, never across an await.
    table: RwLock<Arc<RouteTable>>,
    applied: Mutex<Applied>,
}

#[derive(Default)]
struct Applied {
    version: Option<u64>,
    errors: Vec<v1::StageDeployError>,
}

impl Inner {
    /// The current table; a request keeps the one it started with.
    pub(crate) fn table(&self) -> Arc<RouteTable> {
        Arc::clone(&self.table.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn applied_version(&self) -> Option<u64> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner()).version
    }
}

impl Gateway {
    /// A gateway with no routes yet: every path answers 404 until a table is applied.
    pub fn new(config: GatewayConfig) -> Gateway {
        let client = pod_client(config.connect_timeout, config.pool_idle_timeout);
        Gateway {
            inner: Arc::new(Inner {
                config,
                client,
                stats: StageStats::default(),
                table: RwLock::new(Arc::new(RouteTable::default())),
                applied: Mutex::new(Applied::default()),
            }),
        }
    }

    /// Applies a route table newer than the current one; returns the stages that failed
    /// to deploy (they keep their previous configuration, every other stage applies).
    /// Calls in flight finish with the table they started with.
    pub fn apply(&self, wire: &v1::RouteTable) -> Result<Vec<v1::StageDeployError>, StaleTable> {
        let mut applied = self.inner.applied.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = applied.version
            && wire.version <= current
        {
            return Err(StaleTable { offered: wire.version, applied: current });
        }
        let previous = self.inner.table();
        let (table, errors) = RouteTable::compile(wire, Some(&previous));
        *self.inner.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        for e in &errors {
            tracing::warn!(stage = %e.stage_id, config_version = e.config_version, error = %e.error, "stage deploy failed");
        }
        applied.version = Some(wire.version);
        applied.errors = errors.clone();
        Ok(errors)
    }

    /// The version of the applied table, if any.
    pub fn applied_version(&self) -> Option<u64> {
        self.inner.applied_version()
    }

    /// The deploy errors of the applied table.
    pub fn deploy_errors(&self) -> Vec<v1::StageDeployError> {
        self.inner.applied.lock().unwrap_or_else(|p| p.into_inner()).errors.clone()
    }

    /// Takes the statistics of every finished minute for a report.
    pub fn take_finished_minutes(&self) -> Vec<v1::StageMinute> {
        self.inner.stats.take_finished_minutes()
    }

    /// Takes the statistics of every minute starting before `before_ms` (ms since the
    /// epoch), finished or not: for tests and for a final report at shutdown.
    pub fn take_minutes_before(&self, before_ms: u64) -> Vec<v1::StageMinute> {
        self.inner.stats.take_minutes_before(before_ms)
    }

    /// The per-stage statistics this gateway keeps until reported.
    pub fn stats(&self) -> &StageStats {
        &self.inner.stats
    }

    /// Puts back minutes a report failed to deliver.
    pub fn restore_minutes(&self, minutes: Vec<v1::StageMinute>) {
        self.inner.stats.restore(minutes, crate::stats::now_ms());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(version: u64) -> v1::RouteTable {
        v1::RouteTable { version, ..Default::default() }
    }

    #[test]
    fn newer_tables_replace_older_and_older_are_ignored() {
        let gw = Gateway::new(GatewayConfig::default());
        assert_eq!(gw.applied_version(), None);
        assert_eq!(gw.apply(&table(5)), Ok(vec![]));
        assert_eq!(gw.apply(&table(4)), Err(StaleTable { offered: 4, applied: 5 }));
        assert_eq!(gw.apply(&table(5)), Err(StaleTable { offered: 5, applied: 5 }));
        assert_eq!(gw.apply(&table(9)), Ok(vec![]));
        assert_eq!(gw.applied_version(), Some(9));
    }
}
