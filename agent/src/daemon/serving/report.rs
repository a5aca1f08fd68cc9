//! Where an instance's news goes: its pods' states (`ReportPods`) and its container's
//! end (`ReportContainer` STOPPED or GONE). A trait, so the controller runs against
//! the real engine in tests without a scheduler.

use async_trait::async_trait;
use gantry_proto::v1::{PodState, ReportContainerRequest, ReportPodsRequest};

use super::super::link::Link;

/// One attempt each; the controller retries.
#[async_trait]
pub trait InstanceReports: Send + Sync {
    /// The states of every pod of the instance `workload_id`.
    async fn pods(&self, workload_id: &str, pods: Vec<PodState>) -> Result<(), tonic::Status>;
    /// The instance's container phase: `STOPPED` or `GONE`.
    async fn phase(&self, workload_id: &str, rank: u32, phase: &str) -> Result<(), tonic::Status>;
}

/// The scheduler replicas, through the link.
pub struct LinkReports {
    pub link: Link,
    pub node_id: String,
}

#[async_trait]
impl InstanceReports for LinkReports {
    async fn pods(&self, workload_id: &str, pods: Vec<PodState>) -> Result<(), tonic::Status> {
        let req = ReportPodsRequest { node_id: self.node_id.clone(), workload_id: workload_id.to_string(), pods };
        self.link
            .any(|mut c| {
                let req = req.clone();
                async move { c.report_pods(req).await }
            })
            .await
            .map(drop)
    }

    async fn phase(&self, workload_id: &str, rank: u32, phase: &str) -> Result<(), tonic::Status> {
        let req = ReportContainerRequest {
            node_id: self.node_id.clone(),
            workload_id: workload_id.to_string(),
            rank,
            phase: phase.to_string(),
            reason: String::new(),
        };
        self.link
            .any(|mut c| {
                let req = req.clone();
                async move { c.report_container(req).await }
            })
            .await
            .map(drop)
    }
}
