//! The training client: creates short GPU trainings at a steady pace, each one
//! idempotent (retried on another replica with the same request id until the outcome is
//! known or it gives up), so that the agents keep starting and removing containers
//! while the faults happen.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gantry_proto::v1 as pb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::clients::{PROJECT, classify};
use super::record::{Action, Journal, Outcome, Record};
use crate::clients::Clients;

pub const GPU_MODEL: &str = "NEMESIS-GPU";
pub const GPU_INSTANCE_TYPE: &str = "nemesis-gpu1";
pub const IMAGE: &str = "nemesis-python";
/// The image the agents run (built by deploy/images/build.sh).
pub const IMAGE_REFERENCE: &str = "gantry/python:3.11";
const EXPERIMENT: &str = "trainings";
const ATTEMPTS: usize = 6;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// Sleeps as long as its first argument says, then writes a result.
const SCRIPT: &str = "import sys, time\n\
seconds = float(sys.argv[sys.argv.index('--seconds') + 1]) if '--seconds' in sys.argv else 1.0\n\
print('sleeping', seconds, flush=True)\n\
time.sleep(seconds)\n\
print('done', flush=True)\n";

/// Where the trainings' algorithm and outputs live (granted to [`PROJECT`]).
pub struct TrainingStorage {
    pub root: PathBuf,
}

impl TrainingStorage {
    pub fn prepare(root: &Path) -> anyhow::Result<TrainingStorage> {
        let algo = root.join("algo");
        std::fs::create_dir_all(&algo)?;
        std::fs::create_dir_all(root.join("out"))?;
        std::fs::write(algo.join("sleep.py"), SCRIPT)?;
        Ok(TrainingStorage { root: root.to_path_buf() })
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn spec(&self, name: &str, seconds: f64) -> pb::TrainingSpec {
        pb::TrainingSpec {
            name: name.into(),
            experiment: EXPERIMENT.into(),
            create_experiment: true,
            algorithm_path: format!("file://{}/algo", self.root.display()),
            entry_point: "sleep.py".into(),
            hyperparameters: vec![pb::KeyValue { key: "seconds".into(), value: format!("{seconds:.1}") }],
            image: IMAGE.into(),
            instance_type: GPU_INSTANCE_TYPE.into(),
            instance_count: 1,
            nproc_per_node: 1,
            output_path: format!("file://{}/out/{name}", self.root.display()),
            timeout_minutes: 30,
            use_log: true,
            ..Default::default()
        }
    }
}

/// Creates one training every `every` until `until`, journaling each create.
pub async fn run_training_client(
    seed: u64,
    storage: TrainingStorage,
    replicas: Vec<Clients>,
    journal: Journal,
    every: Duration,
    until: Instant,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7a11);
    let mut n = 0u32;
    while Instant::now() < until {
        n += 1;
        let name = format!("t-{n}");
        let spec = storage.spec(&name, rng.random_range(0.5..3.0));
        let request_id = format!("{:016x}", rng.random::<u64>());
        let call_ns = journal.now_ns();
        let mut replica = rng.random_range(0..replicas.len());
        let mut outcome = Outcome::Unknown { error: "not sent".into() };
        let mut saw_unknown = false;
        for _ in 0..ATTEMPTS {
            let req = pb::CreateTrainingRequest {
                project: PROJECT.into(),
                spec: Some(spec.clone()),
                request_id: request_id.clone(),
            };
            let mut api = replicas[replica].clone();
            outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, api.trainings.create_training(req)).await {
                Ok(Ok(_)) => Outcome::Ok,
                Ok(Err(status)) => classify(&status),
                Err(_) => Outcome::Unknown { error: format!("no answer within {ATTEMPT_TIMEOUT:?}") },
            };
            if !matches!(outcome, Outcome::Unknown { .. }) {
                break;
            }
            saw_unknown = true;
            replica = (replica + 1) % replicas.len();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // After an attempt that may have applied, a definite refusal may be the echo
        // of that attempt: the outcome is not known.
        if saw_unknown && matches!(outcome, Outcome::Failed { .. }) {
            outcome = Outcome::Unknown { error: format!("refused after an unknown attempt: {outcome:?}") };
        }
        let ret_ns = (!matches!(outcome, Outcome::Unknown { .. })).then(|| journal.now_ns());
        journal.push(Record {
            id: 0,
            client: usize::MAX,
            replica,
            key: name,
            action: Action::CreateTraining,
            stale: false,
            call_ns,
            ret_ns,
            outcome,
        });
        tokio::time::sleep(every).await;
    }
}

/// The catalog, grants and experiment the trainings need; `admin` talks to any replica.
pub async fn prepare_catalog(admin: &mut Clients, storage: &TrainingStorage) -> anyhow::Result<()> {
    let it = pb::InstanceType {
        name: GPU_INSTANCE_TYPE.into(),
        cpu_millis: 100,
        memory_mib: 128,
        gpu_count: 1,
        gpu_model: GPU_MODEL.into(),
        core_type: String::new(),
    };
    admin.catalog.put_instance_type(pb::PutInstanceTypeRequest { instance_type: Some(it) }).await?;
    let image = pb::Image {
        name: IMAGE.into(),
        reference: IMAGE_REFERENCE.into(),
        core_type: "GPU".into(),
        framework: "PYTHON".into(),
        framework_version: String::new(),
        python_version: "3.11".into(),
    };
    admin.catalog.put_image(pb::PutImageRequest { image: Some(image) }).await?;
    let grants = pb::SetStorageGrantsRequest {
        project: PROJECT.into(),
        grants: Some(pb::StorageGrants { read: vec![], write: vec![storage.url()] }),
    };
    admin.projects.set_storage_grants(grants).await?;
    Ok(())
}

/// The agent config section of a node with `n` fake GPUs of [`GPU_MODEL`].
pub fn fake_gpu_toml(node: &str, n: usize) -> String {
    let gpus: Vec<String> = (0..n)
        .map(|i| format!("{{ uuid = \"GPU-{node}-{i}\", model = \"{GPU_MODEL}\", memory_mib = 16384 }}"))
        .collect();
    format!("[docker]\ngpu_mode = \"fake_labels_only\"\n\n[gpu]\nsource = \"fake\"\nfake = [{}]\n", gpus.join(", "))
}
