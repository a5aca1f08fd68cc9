//! Watching the Docker engine itself: which running containers of the cluster hold
//! which GPUs, sampled over the whole run. Double booking is judged from these samples,
//! not from the scheduler's state, so a scheduler that believes a GPU free while its old
//! container still runs is caught.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;

/// One running container as `docker ps` showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub id: String,
    pub workload: String,
    pub rank: String,
    pub node: String,
    pub gpus: Vec<String>,
}

/// Every sample of the run: (nanoseconds since start, running containers).
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub samples: Vec<(u64, Vec<Seen>)>,
    /// Sampling errors (the engine not answering): a run with many is suspect.
    pub errors: usize,
}

const FORMAT: &str = "{{.ID}}|{{.Label \"org.gantry.workload\"}}|{{.Label \"org.gantry.rank\"}}|\
{{.Label \"org.gantry.node\"}}|{{.Label \"org.gantry.gpus\"}}";

/// The running containers labelled with `cluster`.
pub async fn running(cluster: &str) -> anyhow::Result<Vec<Seen>> {
    let out = Command::new("docker")
        .args(["ps", "--no-trunc", "--filter", &format!("label=org.gantry.cluster={cluster}")])
        .args(["--filter", "status=running", "--format", FORMAT])
        .output()
        .await?;
    anyhow::ensure!(out.status.success(), "docker ps: {}", String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter_map(parse).collect())
}

fn parse(line: &str) -> Option<Seen> {
    let mut f = line.split('|');
    let (id, workload, rank, node, gpus) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    Some(Seen {
        id: id.into(),
        workload: workload.into(),
        rank: rank.into(),
        node: node.into(),
        gpus: gpus.split(',').filter(|g| !g.is_empty()).map(String::from).collect(),
    })
}

/// Samples every `every` until `stop` turns true; `now_ns` stamps each sample.
pub async fn watch(
    cluster: String,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    now_ns: impl Fn() -> u64,
) -> Samples {
    let mut samples = Samples::default();
    loop {
        match running(&cluster).await {
            Ok(seen) => samples.samples.push((now_ns(), seen)),
            Err(_) => samples.errors += 1,
        }
        if *stop.borrow() {
            return samples;
        }
        let _ = tokio::time::timeout(every, stop.changed()).await;
    }
}

/// A GPU held by two running containers in one sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleBooking {
    pub at_ns: u64,
    pub gpu: String,
    pub containers: Vec<(String, String)>,
}

/// Every (sample, GPU) where more than one running container held the GPU.
pub fn double_bookings(samples: &Samples) -> Vec<DoubleBooking> {
    let mut found = Vec::new();
    for (at_ns, seen) in &samples.samples {
        let mut holders: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
        for c in seen {
            for g in &c.gpus {
                holders.entry(g).or_default().push((c.workload.clone(), c.id.clone()));
            }
        }
        for (gpu, containers) in holders {
            if containers.len() > 1 {
                found.push(DoubleBooking { at_ns: *at_ns, gpu: gpu.into(), containers });
            }
        }
    }
    found
}

/// Ownership breaks: a running container with no workload label, one whose workload
/// the final state does not know, or two running containers for one (workload, rank).
pub fn ownership_violations(samples: &Samples, known_workloads: &BTreeSet<String>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for (at_ns, seen) in &samples.samples {
        let mut ranks: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        for c in seen {
            if c.workload.is_empty() {
                found.insert(format!("container {} has no workload label", c.id));
            } else if !known_workloads.contains(&c.workload) {
                found.insert(format!("container {} belongs to unknown workload {}", c.id, c.workload));
            }
            if let Some(other) = ranks.insert((&c.workload, &c.rank), &c.id) {
                found.insert(format!(
                    "at {at_ns} ns workload {} rank {} ran twice: containers {other} and {}",
                    c.workload, c.rank, c.id
                ));
            }
        }
    }
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, workload: &str, rank: &str, gpus: &[&str]) -> Seen {
        Seen {
            id: id.into(),
            workload: workload.into(),
            rank: rank.into(),
            node: "n".into(),
            gpus: gpus.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn parses_docker_ps_lines() {
        assert_eq!(
            parse("abc|w1|0|node-a|GPU-1,GPU-2"),
            Some(seen("abc", "w1", "0", &["GPU-1", "GPU-2"])).map(|mut s| {
                s.node = "node-a".into();
                s
            })
        );
        assert_eq!(parse("abc|w1|0|node-a|").map(|s| s.gpus.len()), Some(0));
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn a_gpu_held_twice_in_one_sample_is_double_booked() {
        let samples = Samples {
            samples: vec![
                (1, vec![seen("a", "w1", "0", &["G0"]), seen("b", "w2", "0", &["G1"])]),
                (2, vec![seen("a", "w1", "0", &["G0"]), seen("c", "w3", "0", &["G0", "G1"])]),
            ],
            errors: 0,
        };
        let found = double_bookings(&samples);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].at_ns, found[0].gpu.as_str()), (2, "G0"));
    }

    #[test]
    fn ownership_breaks_are_reported() {
        let known: BTreeSet<String> = ["w1".to_string()].into();
        let samples = Samples {
            samples: vec![(
                1,
                vec![seen("a", "w1", "0", &[]), seen("b", "w1", "0", &[]), seen("c", "ghost", "0", &[])],
            )],
            errors: 0,
        };
        let v = ownership_violations(&samples, &known);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().any(|s| s.contains("ran twice")));
        assert!(v.iter().any(|s| s.contains("unknown workload ghost")));
        assert!(
            ownership_violations(&Samples { samples: vec![(1, vec![seen("a", "w1", "0", &[])])], errors: 0 }, &known)
                .is_empty()
        );
    }
}
