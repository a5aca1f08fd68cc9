//! Reports a container's phase to the scheduler until it is durable there.

use std::time::Duration;

use gantry_proto::v1::ReportContainerRequest;
use tonic::Code;

use super::super::link::{Link, retryable};
use super::Control;

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// Durable in the scheduler's log.
    Acknowledged,
    /// The scheduler no longer has the workload (it ended, or was taken off this
    /// node): nothing is waiting for this report.
    Gone,
    /// The worker was told to abandon the workload meanwhile.
    Abandoned,
}

pub struct Reporter {
    pub link: Link,
    pub node_id: String,
}

impl Reporter {
    /// Retries (every replica, with backoff) until the report is acknowledged or moot.
    pub async fn report(
        &self,
        workload_id: &str,
        rank: u32,
        phase: &str,
        reason: String,
        control: &mut tokio::sync::watch::Receiver<Control>,
    ) -> Reported {
        let req = ReportContainerRequest {
            node_id: self.node_id.clone(),
            workload_id: workload_id.to_string(),
            rank,
            phase: phase.to_string(),
            reason,
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            if *control.borrow() == Control::Abandon {
                return Reported::Abandoned;
            }
            let result = self
                .link
                .any(|mut c| {
                    let req = req.clone();
                    async move { c.report_container(req).await }
                })
                .await;
            match result {
                Ok(_) => return Reported::Acknowledged,
                Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => {
                    tracing::info!(workload_id, rank, phase, status = %s.message(), "report no longer needed");
                    return Reported::Gone;
                }
                Err(s) if retryable(&s) => {
                    tracing::debug!(workload_id, rank, phase, error = %s, "report failed; retrying");
                }
                Err(s) => {
                    // A bug or a misconfiguration (e.g. a certificate of another node):
                    // keep trying, loudly, rather than lose the outcome.
                    tracing::error!(workload_id, rank, phase, error = %s, "report refused; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = control.changed() => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}
