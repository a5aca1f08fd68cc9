//! `AgentService/ReportPods`' effect: the readiness and failures of an endpoint stage
//! instance's serving pods, replicated so the gateways' routes follow them (ADR 0003).
//!
//! The caller was authenticated and checked by `AgentApi::report_pods` (its own node,
//! an instance placed there); this is only what the report does to the state.

use gantry_proto::v1::ReportPodsRequest;
use tonic::Status;

use super::context::ApiContext;
use crate::state::endpoints::PodReport;

/// Replicates the pods' states of `req.workload_id` when they change anything
/// (`endpoint::pod_report`).
pub async fn apply_pod_report(ctx: &ApiContext, req: ReportPodsRequest) -> Result<(), Status> {
    let pods = req
        .pods
        .into_iter()
        .map(|p| PodReport {
            pod_id: p.pod_id,
            ready: p.ready && !p.failed,
            // A failure always carries a reason, so the resource says why.
            failed: if p.failed {
                if p.reason.is_empty() { "the pod failed".into() } else { p.reason }
            } else {
                String::new()
            },
        })
        .collect();
    super::endpoint::pod_report::apply_pod_report(ctx, req.node_id, req.workload_id, pods).await
}
