//! Every invariant the replicated state keeps after any command, as one check the
//! fuzzer (`fuzz`) and the regression tests run after each step.

use std::collections::BTreeMap;

use gantry_domain::{ModelSource, Resources, TrainingStatus};

use super::State;

/// Every invariant the state must keep after any command; `Err` names the first broken.
pub(crate) fn check(state: &State) -> Result<(), String> {
    if !state.workloads.index_is_consistent() {
        return Err("the workload index differs from one computed from scratch".into());
    }
    // GPUs: one holder each, on the node that has them (an ended workload may still
    // hold one its node no longer lists: held until its container is reported gone).
    let mut holders: BTreeMap<&str, &str> = BTreeMap::new();
    // Per node: (cpu, memory) held by all, and by workloads whose training still runs.
    type CpuMem = (u64, u64);
    let mut used: BTreeMap<&str, (CpuMem, CpuMem)> = BTreeMap::new();
    for (id, w) in &state.workloads {
        for (_, a) in w.held() {
            let u = used.entry(a.node_id.as_str()).or_default();
            u.0.0 += w.demand.per_container.cpu_millis;
            u.0.1 += w.demand.per_container.memory_mib;
            if !w.ended {
                u.1.0 += w.demand.per_container.cpu_millis;
                u.1.1 += w.demand.per_container.memory_mib;
            }
            for g in &a.gpu_uuids {
                if let Some(other) = holders.insert(g.as_str(), id.as_str()) {
                    return Err(format!("GPU {g} is held by {other} and {id}"));
                }
                let node = state
                    .nodes
                    .get(&a.node_id)
                    .ok_or_else(|| format!("{id} is placed on unknown node {}", a.node_id))?;
                if !w.ended && !node.inventory.gpus.iter().any(|ng| &ng.uuid == g) {
                    return Err(format!("{id} holds GPU {g}, which node {} does not have", a.node_id));
                }
            }
        }
    }
    // Nodes: what running trainings hold fits what they have, and placement sees exactly
    // the rest of what is held.
    for n in state.nodes.values() {
        let ((cpu, mem), (live_cpu, live_mem)) = used.get(n.id.as_str()).copied().unwrap_or_default();
        if live_cpu > n.inventory.cpu_millis || live_mem > n.inventory.memory_mib {
            return Err(format!("node {} holds {live_cpu}m/{live_mem}MiB of {:?}", n.id, n.inventory.capacity()));
        }
        let (alloc, gpus) = state.allocated_on(&n.id);
        if (alloc.cpu_millis, alloc.memory_mib) != (cpu, mem) {
            return Err(format!("allocated_on({}) = {alloc:?}, expected {cpu}m/{mem}MiB", n.id));
        }
        if let Some(s) = state.node_snapshot(n) {
            let free_gpus = n.inventory.gpus.iter().filter(|g| !gpus.contains(&g.uuid)).count();
            let expected = Resources::new(
                n.inventory.cpu_millis.saturating_sub(cpu),
                n.inventory.memory_mib.saturating_sub(mem),
                free_gpus as u32,
            );
            if s.free != expected || s.free_gpus.len() != free_gpus {
                return Err(format!("snapshot of {}: free {:?}, expected {expected:?}", n.id, s.free));
            }
        }
    }
    // Workloads: gang-shaped, owned by a live training that agrees with them, or ended
    // (their training ended or deleted) and waiting for their containers to be gone.
    for (id, w) in &state.workloads {
        match &w.placement {
            Some(p) => {
                if p.assignments.len() != w.demand.count as usize || w.phases.len() != p.assignments.len() {
                    return Err(format!(
                        "{id}: gang of {} has {} ranks and {} phases",
                        w.demand.count,
                        p.assignments.len(),
                        w.phases.len()
                    ));
                }
                if p.assignments.iter().any(|a| a.gpu_uuids.len() != w.demand.per_container.gpus as usize) {
                    return Err(format!("{id}: a rank has the wrong number of GPUs"));
                }
            }
            None if w.ended => return Err(format!("{id}: ended while unplaced, yet kept")),
            None if !w.phases.is_empty() => return Err(format!("{id}: pending with phases {:?}", w.phases)),
            None => {}
        }
        if w.ended && w.held().next().is_none() {
            return Err(format!("{id}: ended with every container gone, yet kept"));
        }
        let super::WorkloadOwner::Training { project, name } = &w.owner else {
            continue;
        };
        let training = state.training(project, name).filter(|t| t.workload_id == *id);
        let Some(t) = training else {
            if w.ended {
                continue;
            }
            return Err(format!("{id}: its training {project}/{name} is gone"));
        };
        if t.status.is_terminal() != w.ended {
            return Err(format!("{id}: ended is {} but its training is {}", w.ended, t.status));
        }
        if !w.ended && (t.status == TrainingStatus::CreateRequested) != w.placement.is_none() {
            return Err(format!("{id}: placed is {} but its training is {}", w.placement.is_some(), t.status));
        }
        if t.placement != w.placement {
            return Err(format!("{id}: the training's placement differs from the workload's"));
        }
    }
    // Trainings: a live one has its workload; its history walks allowed edges only.
    for (project, p) in &state.projects {
        for t in p.trainings.values() {
            if !t.status.is_terminal() && !state.workloads.contains_key(&t.workload_id) {
                return Err(format!("{project}/{}: {} without a workload", t.meta.name, t.status));
            }
            let first = t.history.first().map(|c| c.status);
            if first != Some(TrainingStatus::CreateRequested) || t.history.last().map(|c| c.status) != Some(t.status) {
                return Err(format!("{project}/{}: history {:?} does not end in {}", t.meta.name, t.history, t.status));
            }
            if let Some(w) = t.history.windows(2).find(|w| !w[0].status.can_transition(w[1].status)) {
                return Err(format!(
                    "{project}/{}: {} -> {} is not an allowed edge",
                    t.meta.name, w[0].status, w[1].status
                ));
            }
        }
    }
    // Models: filed under their own name and project; one made from a training keeps
    // that (COMPLETE) training alive.
    for (project, p) in &state.projects {
        for (key, m) in &p.models {
            if key != &m.meta.name || project != &m.meta.project {
                return Err(format!("model {project}/{key} is filed as {}/{}", m.meta.project, m.meta.name));
            }
            if let ModelSource::Training { training_id, training_name } = &m.source {
                let t = p.trainings.values().find(|t| &t.meta.id == training_id);
                match t {
                    Some(t) if t.status == TrainingStatus::Complete && &t.meta.name == training_name => {}
                    Some(t) => return Err(format!("model {project}/{key} comes from {} ({})", t.meta.name, t.status)),
                    None => return Err(format!("model {project}/{key}: its training {training_name} is gone")),
                }
            }
        }
    }
    super::endpoints::invariants::check(state)?;
    // A snapshot restores to the same state, index included.
    let restored: State =
        serde_json::from_slice(&serde_json::to_vec(state).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if &restored != state || !restored.workloads.index_is_consistent() {
        return Err("a snapshot does not restore to the same state".into());
    }
    Ok(())
}
