//! The assignment of a placed endpoint stage instance: the pods its node runs, with
//! the instance's CPU and memory split evenly between them.

use gantry_proto::v1::{ServingInstance, ServingPod, WorkAssignment};

use crate::state::{State, Workload, WorkloadOwner};

/// `None` unless `w` is a placed stage instance on `node_id`. An ended instance (its
/// stage deleted, or its node lost) is listed with no pods and `release`.
pub fn instance_assignment(state: &State, node_id: &str, workload_id: &str, w: &Workload) -> Option<WorkAssignment> {
    let WorkloadOwner::StageInstance { project, endpoint_id, stage_id, index } = &w.owner else { return None };
    let a = w.held().find(|(_, a)| a.node_id == node_id)?.1;
    let stage = state
        .project(project)
        .and_then(|p| p.endpoints.values().find(|e| &e.meta.id == endpoint_id))
        .and_then(|e| e.stages.values().find(|s| &s.id == stage_id));
    let pods: Vec<_> = match stage {
        Some(s) if !w.ended => s
            .resources
            .iter()
            .filter(|r| !r.deleting)
            .flat_map(|r| r.pods.iter().filter(|p| p.instance_index == *index).map(move |p| (r, p)))
            .collect(),
        _ => Vec::new(),
    };
    let share = pods.len().max(1) as u64;
    let per = w.demand.per_container;
    let serving_pods = pods
        .iter()
        .map(|(r, p)| ServingPod {
            pod_id: p.id.clone(),
            resource_id: r.id.clone(),
            model: p.served.model.clone(),
            framework: p.served.framework.as_str().to_string(),
            artifact_path: p.served.artifact_path.clone(),
            image: p.served.image.clone(),
            host_port: u32::from(p.host_port),
            cpu_millis: per.cpu_millis / share,
            memory_mib: per.memory_mib / share,
        })
        .collect();
    Some(WorkAssignment {
        workload_id: workload_id.to_string(),
        rank: 0,
        project: project.clone(),
        image: w.image.clone(),
        cpu_millis: per.cpu_millis,
        memory_mib: per.memory_mib,
        gpu_uuids: a.gpu_uuids.clone(),
        grants: Some(gantry_proto::convert::storage_grants_to_wire(&state.grants(project))),
        release: w.ended,
        serving: Some(ServingInstance {
            endpoint_id: endpoint_id.clone(),
            stage_id: stage_id.clone(),
            pods: serving_pods,
        }),
        ..Default::default()
    })
}
