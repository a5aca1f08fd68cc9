//! Variables a gang of N > 1 containers needs to find each other.
//!
//! PyTorch (`init_method="env://"`) reads `MASTER_ADDR`, `MASTER_PORT`, `WORLD_SIZE`
//! and `RANK`; TensorFlow's `MultiWorkerMirroredStrategy` reads `TF_CONFIG`. Both are
//! always set: the platform does not know the framework of the user's script. The
//! backend (gloo on CPU, nccl on GPU) is the script's choice, as in EasyMaker.
//!
//! Every container has its own network namespace, so the ports are fixed.

use serde_json::json;

/// Where rank 0 listens for `torch.distributed` rendezvous (PyTorch's default).
pub const MASTER_PORT: u16 = 29500;
/// Where each TensorFlow worker listens (TensorFlow's examples use it).
pub const TF_WORKER_PORT: u16 = 2222;

/// The variables for container `rank` of a gang whose containers have `hostnames`
/// (index = rank). Preconditions (checked by the caller): `hostnames.len() > 1`,
/// `rank < hostnames.len()`.
pub(super) fn distributed_env(rank: u32, hostnames: &[String]) -> Vec<(String, String)> {
    let tf_config = json!({
        "cluster": { "worker": hostnames.iter().map(|h| format!("{h}:{TF_WORKER_PORT}")).collect::<Vec<_>>() },
        "task": { "type": "worker", "index": rank },
    });
    vec![
        ("MASTER_ADDR".into(), hostnames[0].clone()),
        ("MASTER_PORT".into(), MASTER_PORT.to_string()),
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
            let env: std::collections::BTreeMap<_, _> = distributed_env(rank, &hosts).into_iter().collect();
            assert_eq!(env["MASTER_ADDR"], "t-0");
            assert_eq!(env["MASTER_PORT"], "29500");
            assert_eq!(env["WORLD_SIZE"], "3");
            assert_eq!(env["RANK"], rank.to_string());
            let tf: serde_json::Value = serde_json::from_str(&env["TF_CONFIG"]).unwrap();
            assert_eq!(tf["cluster"]["worker"], json!(["t-0:2222", "t-1:2222", "t-2:2222"]));
            assert_eq!(tf["task"], json!({"type": "worker", "index": rank}));
        }
    }
}
