//! The gateways' route table, built from the replicated state alone (pure).

use std::collections::BTreeMap;

use gantry_domain::endpoint::Stage;
use gantry_proto::v1 as pb;

use crate::state::State;

/// `{node address}:{host_port}` of each pod of `stage` the routes list.
fn backends(state: &State, stage: &Stage, r: &gantry_domain::endpoint::StageResource) -> Vec<String> {
    let mut out: Vec<String> = r
        .routed_pods()
        .filter_map(|p| {
            let w = state.workloads.get(stage.instances.get(p.instance_index as usize)?)?;
            let node = w.placement.as_ref()?.assignments.first()?;
            let address = &state.nodes.get(&node.node_id)?.address;
            (!w.ended && !address.is_empty()).then(|| format!("{address}:{}", p.host_port))
        })
        .collect();
    out.sort();
    out
}

/// The routes of one stage (`None` while it is being deleted: routes go at once).
pub fn stage_routes(state: &State, e: &gantry_domain::endpoint::Endpoint, s: &Stage) -> Option<pb::StageRoutes> {
    if s.deleting || e.deleting {
        return None;
    }
    let resources = s
        .resources
        .iter()
        .filter(|r| !r.deleting && r.failed.is_none())
        .map(|r| pb::ResourceRoute {
            resource_id: r.id.clone(),
            resource_path: r.resource_path.clone(),
            model: r.routed_pods().next().map_or_else(|| r.model.clone(), |p| p.served.model.clone()),
            backends: backends(state, s, r),
        })
        .collect();
    Some(pb::StageRoutes {
        project: e.meta.project.clone(),
        endpoint_id: e.meta.id.clone(),
        endpoint: e.meta.name.clone(),
        stage_id: s.id.clone(),
        stage: s.name.clone(),
        is_default: e.default_stage == s.name,
        resources,
        config_version: s.config_version,
        use_log: false,
    })
}

/// Every stage's routes, every endpoint's key hashes, and the project tokens' hashes
/// (`project_token_sha256`, from the API's token table: tokens are not replicated).
pub fn route_table(state: &State, project_token_sha256: BTreeMap<String, String>) -> pb::RouteTable {
    let mut stages = Vec::new();
    let mut keys = Vec::new();
    for (project, p) in &state.projects {
        for e in p.endpoints.values() {
            stages.extend(e.stages.values().filter_map(|s| stage_routes(state, e, s)));
            if !e.deleting {
                keys.push(pb::EndpointKeys {
                    endpoint_id: e.meta.id.clone(),
                    project: project.clone(),
                    key_sha256: e.api_keys.iter().map(|k| k.secret_sha256.clone()).collect(),
                });
            }
        }
    }
    pb::RouteTable {
        version: state.applied_index,
        stages,
        keys,
        project_token_sha256: project_token_sha256.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::endpoints::tests::{World, ready};

    #[test]
    fn only_ready_pods_of_the_routed_generation_are_backends() {
        let mut w = World::new();
        w.create("ep", 2, 2).expect("create");
        w.place_all();
        let table = route_table(&w.state, BTreeMap::new());
        assert!(table.stages[0].resources[0].backends.is_empty(), "nothing is ready yet");
        w.report_all("ep", "default", ready);
        let s = w.stage("ep", "default").clone();
        let mut ready_ports: Vec<(String, u16)> = s
            .pods()
            .map(|p| {
                let workload = &w.state.workloads[&s.instances[p.instance_index as usize]];
                let node = &workload.placement.as_ref().expect("placed").assignments[0].node_id;
                (w.state.nodes[node].address.clone(), p.host_port)
            })
            .collect();
        ready_ports.sort();
        let state = w.state.clone();
        let table = route_table(&state, [("p".to_string(), "ab".to_string())].into());
        assert_eq!(table.version, state.applied_index);
        assert_eq!(table.stages.len(), 1);
        let r = &table.stages[0].resources[0];
        assert_eq!(r.resource_path, "/inference");
        let want: Vec<String> = ready_ports.iter().map(|(addr, port)| format!("{addr}:{port}")).collect();
        assert_eq!(r.backends, want);
        assert!(table.stages[0].is_default);
        assert_eq!(table.project_token_sha256["p"], "ab");
    }
}
