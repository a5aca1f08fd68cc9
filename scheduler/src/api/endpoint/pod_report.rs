//! The agent's pod report (`AgentService/ReportPods`, wired by the agent side): the
//! node's instance `workload_id` runs these pods in these states. Replicated only when
//! it changes something, so a steady report every few seconds costs no log entries.

use tonic::Status;

use crate::api::context::{ApiContext, now_ms};
use crate::state::endpoints::{EndpointCommand, PodReport};
use crate::state::{CommandV1, State, WorkloadOwner};

/// Replicates the report if it changes the state (`Ok` either way).
pub async fn apply_pod_report(
    ctx: &ApiContext,
    node_id: String,
    workload_id: String,
    pods: Vec<PodReport>,
) -> Result<(), Status> {
    if !pod_report_changes(&ctx.raft.state(), &node_id, &workload_id, &pods) {
        return Ok(());
    }
    let cmd = EndpointCommand::ReportPods { node_id, workload_id, pods, now_ms: now_ms() };
    ctx.write(CommandV1::Endpoint(cmd)).await.map(|_| ())
}

/// Whether applying the report would change anything: a failure, a readiness flip, or
/// a pod the stage is waiting to see gone. Unknown workloads answer `true`, so the
/// state machine gives the caller its precise rejection.
pub fn pod_report_changes(state: &State, node_id: &str, workload_id: &str, pods: &[PodReport]) -> bool {
    let Some(w) = state.workloads.get(workload_id) else { return true };
    let WorkloadOwner::StageInstance { stage_id, index, .. } = &w.owner else { return true };
    let on_node = w.placement.as_ref().and_then(|p| p.assignments.first()).is_some_and(|a| a.node_id == node_id);
    if !on_node || w.ended || pods.iter().any(|p| !p.failed.is_empty()) {
        return true;
    }
    let stage = state
        .projects
        .values()
        .flat_map(|p| p.endpoints.values())
        .flat_map(|e| e.stages.values())
        .find(|s| &s.id == stage_id);
    let Some(stage) = stage else { return true };
    for r in &stage.resources {
        for p in r.pods.iter().filter(|p| p.instance_index == *index) {
            let reported = pods.iter().find(|x| x.pod_id == p.id);
            let ready = reported.is_some_and(|x| x.ready);
            let waiting_gone =
                r.deleting || (p.generation != r.generation && Some(p.generation) != r.routed_generation);
            if ready != p.ready || (waiting_gone && reported.is_none()) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::endpoints::tests::{World, ready};

    #[test]
    fn a_steady_report_changes_nothing() {
        let mut w = World::new();
        w.create("ep", 1, 2).expect("create");
        w.place_all();
        let s = w.stage("ep", "default").clone();
        let id = &s.instances[0];
        let node = w.state.workloads[id].placement.clone().expect("placed").assignments[0].node_id.clone();
        let all_ready: Vec<PodReport> = s.pods().map(|p| ready(&p.id)).collect();
        assert!(pod_report_changes(&w.state, &node, id, &all_ready));
        w.report_all("ep", "default", ready);
        assert!(!pod_report_changes(&w.state, &node, id, &all_ready), "the same report again");
        assert!(pod_report_changes(&w.state, &node, id, &all_ready[..1]), "a pod no longer ready");
        assert!(pod_report_changes(&w.state, "elsewhere", id, &all_ready), "the wrong node is for apply to refuse");
    }
}
