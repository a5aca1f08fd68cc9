//! `AgentService/ReportPods`' effect: the readiness and failures of an endpoint stage
//! instance's serving pods, replicated so the gateways' routes follow them (ADR 0003).
//!
//! The caller was authenticated and checked by `AgentApi::report_pods` (its own node,
//! an instance placed there); this is only what the report does to the state.

use gantry_proto::v1::ReportPodsRequest;
use tonic::Status;

use super::context::ApiContext;

/// Replicates the pods' states of `req.workload_id`.
pub async fn apply_pod_report(_ctx: &ApiContext, _req: ReportPodsRequest) -> Result<(), Status> {
    Err(Status::unimplemented("serving pods' state is replicated with endpoints (issue 10)"))
}
