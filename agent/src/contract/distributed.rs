//! Variables a gang of N > 1 containers needs to find each other.
//!
//! PyTorch (`init_method="env://"`) reads `MASTER_ADDR`, `MASTER_PORT`, `WORLD_SIZE`
//! and `RANK`; TensorFlow's `MultiWorkerMirroredStrategy` reads `TF_CONFIG`. Both are
//! always set: the platform does not know the framework of the user's script. The
//! backend (gloo on CPU, nccl on GPU) is the script's choice, as in EasyMaker.
//!
//! A gang with its own network (all ranks on one node) uses the frameworks' default
//! ports: nobody else listens there. A gang on the hosts' network (ranks on several
//! nodes) uses the ports the scheduler allocated to it, so two gangs sharing a node
//! never collide ([`RendezvousPorts::from_assignment`]).

use serde_json::json;

/// Where rank 0 listens for `torch.distributed` rendezvous (PyTorch's default).
pub const MASTER_PORT: u16 = 29500;
/// Where each TensorFlow worker listens (TensorFlow's examples use it).
pub const TF_WORKER_PORT: u16 = 2222;

/// Where a gang's ranks listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RendezvousPorts {
    /// Rank 0's rendezvous (`MASTER_PORT`).
    pub master: u16,
    /// Each rank's worker port (`TF_CONFIG`), by rank.
    pub workers: Vec<u16>,
}

impl RendezvousPorts {
    /// The frameworks' defaults, for a gang of `ranks` on its own network.
    pub fn fixed(ranks: u32) -> Self {
        RendezvousPorts { master: MASTER_PORT, workers: vec![TF_WORKER_PORT; ranks as usize] }
    }

    /// The ports an assignment carries (`master` and one worker port per rank), or the
    /// defaults when it carries none or malformed ones (a scheduler from before
    /// allocated ports).
    pub fn from_assignment(master: u32, workers: &[u32], ranks: u32) -> Self {
        let master = u16::try_from(master).ok().filter(|p| *p != 0);
        let workers: Option<Vec<u16>> = workers.iter().map(|p| u16::try_from(*p).ok().filter(|p| *p != 0)).collect();
        match (master, workers) {
            (Some(master), Some(workers)) if workers.len() == ranks as usize => RendezvousPorts { master, workers },
            _ => RendezvousPorts::fixed(ranks),
        }
    }
}

/// The variables for container `rank` of a gang whose containers have `hostnames`
/// (index = rank) and listen on `ports`. Preconditions (checked by the caller):
/// `hostnames.len() > 1`, `rank < hostnames.len()`.
pub(super) fn distributed_env(rank: u32, hostnames: &[String], ports: &RendezvousPorts) -> Vec<(String, String)> {
    let worker = |i: usize| ports.workers.get(i).copied().unwrap_or(TF_WORKER_PORT);
    let tf_config = json!({
        "cluster": {
            "worker": hostnames.iter().enumerate().map(|(i, h)| format!("{h}:{}", worker(i))).collect::<Vec<_>>()
        },
        "task": { "type": "worker", "index": rank },
    });
    vec![
        ("MASTER_ADDR".into(), hostnames[0].clone()),
        ("MASTER_PORT".into(), ports.master.to_string()),
        ("WORLD_SIZE".into(), hostnames.len().to_string()),
        ("RANK".into(), rank.to_string()),
        // One process per container unless torchrun starts more (it then sets its own).
        ("LOCAL_RANK".into(), "0".into()),
        ("TF_CONFIG".into(), tf_config.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rank_agrees_on_the_master_and_the_cluster() {
        let hosts: Vec<String> = ["t-0", "t-1", "t-2"].map(String::from).to_vec();
        for rank in 0..3u32 {
            let env: std::collections::BTreeMap<_, _> =
                distributed_env(rank, &hosts, &RendezvousPorts::fixed(3)).into_iter().collect();
            assert_eq!(env["MASTER_ADDR"], "t-0");
            assert_eq!(env["MASTER_PORT"], "29500");
            assert_eq!(env["WORLD_SIZE"], "3");
            assert_eq!(env["RANK"], rank.to_string());
            let tf: serde_json::Value = serde_json::from_str(&env["TF_CONFIG"]).unwrap();
            assert_eq!(tf["cluster"]["worker"], json!(["t-0:2222", "t-1:2222", "t-2:2222"]));
            assert_eq!(tf["task"], json!({"type": "worker", "index": rank}));
        }
    }

    /// Regression (issue 9): ranks on the hosts' network always used 29500/2222, so a
    /// second gang on the same node collided with the first.
    #[test]
    fn regression_the_scheduler_ports_reach_every_rank() {
        let hosts: Vec<String> = ["10.0.0.1", "10.0.0.2"].map(String::from).to_vec();
        let ports = RendezvousPorts::from_assignment(29503, &[29504, 29505], 2);
        assert_eq!(ports, RendezvousPorts { master: 29503, workers: vec![29504, 29505] });
        for rank in 0..2u32 {
            let env: std::collections::BTreeMap<_, _> = distributed_env(rank, &hosts, &ports).into_iter().collect();
            assert_eq!(env["MASTER_PORT"], "29503");
            let tf: serde_json::Value = serde_json::from_str(&env["TF_CONFIG"]).unwrap();
            assert_eq!(tf["cluster"]["worker"], json!(["10.0.0.1:29504", "10.0.0.2:29505"]));
        }
        // Nothing (or nonsense) from the scheduler: the fixed defaults.
        for (master, workers) in [(0, vec![]), (29503, vec![29504]), (70000, vec![1, 2])] {
            assert_eq!(RendezvousPorts::from_assignment(master, &workers, 2), RendezvousPorts::fixed(2));
        }
    }
}
