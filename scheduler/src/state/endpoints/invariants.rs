//! What must hold of endpoints after any sequence of commands (checked by the fuzzer).

use std::collections::BTreeSet;

use crate::state::{State, WorkloadOwner};

pub(crate) fn check(state: &State) -> Result<(), String> {
    let mut ports = BTreeSet::new();
    let mut current_instances = BTreeSet::new();
    for (project, p) in &state.projects {
        for e in p.endpoints.values() {
            if !e.deleting && !e.stages.contains_key(&e.default_stage) {
                return Err(format!("{project}/{}: default stage '{}' is missing", e.meta.name, e.default_stage));
            }
            for s in e.stages.values() {
                for pod in s.pods() {
                    if !ports.insert(pod.host_port) {
                        return Err(format!("{}: port {} is held twice", pod.id, pod.host_port));
                    }
                    if pod.instance_index >= s.instance_count {
                        return Err(format!("{}: on instance {} of {}", pod.id, pod.instance_index, s.instance_count));
                    }
                }
                if s.deleting {
                    continue;
                }
                if s.instances.len() != s.instance_count as usize {
                    return Err(format!(
                        "{}: {} instances for a count of {}",
                        s.id,
                        s.instances.len(),
                        s.instance_count
                    ));
                }
                for (i, id) in s.instances.iter().enumerate() {
                    let w =
                        state.workloads.get(id).ok_or_else(|| format!("{}: instance {id} has no workload", s.id))?;
                    if w.ended {
                        return Err(format!("{}: its current instance {id} has ended", s.id));
                    }
                    let owner_ok = matches!(&w.owner, WorkloadOwner::StageInstance { stage_id, index, .. }
                        if *stage_id == s.id && *index as usize == i);
                    if !owner_ok {
                        return Err(format!("{}: instance {id} is owned by {:?}", s.id, w.owner));
                    }
                    current_instances.insert(id.clone());
                }
            }
        }
    }
    // A live instance workload is always some live stage's current instance.
    for (id, w) in &state.workloads {
        if matches!(w.owner, WorkloadOwner::StageInstance { .. }) && !w.ended && !current_instances.contains(id) {
            return Err(format!("{id}: a live instance of no live stage"));
        }
    }
    Ok(())
}
