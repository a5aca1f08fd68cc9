//! The nemesis clients: each task issues one operation at a time against a random
//! replica through the real API and journals it. Keys come from small pools so that
//! operations on one key overlap (which is what a linearizability check needs).

use std::time::Duration;

use gantry_proto::v1::{self as pb, ReadOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tonic::Status;

use super::record::{Action, Journal, Outcome, Record};
use crate::clients::Clients;
use crate::history::OpResult;

/// The project every nemesis resource lives in.
pub const PROJECT: &str = "nemesis";
/// Instance types used as registers: `{REGISTER_PREFIX}{k}`.
pub const REGISTER_PREFIX: &str = "reg-";
/// A client gives up on one attempt after this long (the outcome is then unknown).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// How the clients behave.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    pub clients: usize,
    pub experiment_keys: usize,
    pub register_keys: usize,
    /// Share of reads answered with `stale: true`.
    pub stale_reads: f64,
    /// Pause between two operations of one client.
    pub think: Duration,
}

impl Default for ClientPlan {
    fn default() -> Self {
        ClientPlan {
            clients: 4,
            experiment_keys: 3,
            register_keys: 2,
            stale_reads: 0.2,
            think: Duration::from_millis(20),
        }
    }
}

/// One client: until `until`, pick an operation and a replica, run it, journal it.
pub async fn run_client(
    client: usize,
    seed: u64,
    plan: ClientPlan,
    replicas: Vec<Clients>,
    journal: Journal,
    until: Instant,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ (client as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut next_value = (client as u64) << 32;
    while Instant::now() < until {
        let replica = rng.random_range(0..replicas.len());
        let mut api = replicas[replica].clone();
        let stale = rng.random_bool(plan.stale_reads);
        let (key, action) = if rng.random_bool(0.6) {
            let key = format!("exp-{}", rng.random_range(0..plan.experiment_keys));
            let action = match rng.random_range(0..10) {
                0..4 => Action::GetExperiment,
                4..7 => Action::CreateExperiment,
                _ => Action::DeleteExperiment,
            };
            (key, action)
        } else {
            let key = format!("{REGISTER_PREFIX}{}", rng.random_range(0..plan.register_keys));
            if rng.random_bool(0.5) {
                next_value += 1;
                (key, Action::PutRegister { value: next_value })
            } else {
                (key, Action::ReadRegister)
            }
        };
        let call_ns = journal.now_ns();
        let read = Some(ReadOptions { stale });
        let result = tokio::time::timeout(ATTEMPT_TIMEOUT, perform(&mut api, &key, &action, read, &mut rng)).await;
        let outcome = match result {
            Ok(Ok(o)) => o,
            Ok(Err(status)) => classify(&status),
            Err(_) => Outcome::Unknown { error: format!("no answer within {ATTEMPT_TIMEOUT:?}") },
        };
        let ret_ns = (!matches!(outcome, Outcome::Unknown { .. })).then(|| journal.now_ns());
        let is_read = matches!(action, Action::GetExperiment | Action::ReadRegister);
        journal.push(Record { id: 0, client, replica, key, action, stale: stale && is_read, call_ns, ret_ns, outcome });
        tokio::time::sleep(plan.think).await;
    }
}

async fn perform(
    api: &mut Clients,
    key: &str,
    action: &Action,
    read: Option<ReadOptions>,
    rng: &mut StdRng,
) -> Result<Outcome, Status> {
    let project = PROJECT.to_string();
    match action {
        Action::CreateExperiment => {
            let request_id = format!("{:016x}", rng.random::<u64>());
            let req = pb::CreateExperimentRequest { project, name: key.into(), request_id, ..Default::default() };
            api.experiments.create_experiment(req).await.map(|_| Outcome::Ok)
        }
        Action::DeleteExperiment => {
            let req = pb::DeleteExperimentRequest { project, name: key.into() };
            api.experiments.delete_experiment(req).await.map(|_| Outcome::Ok)
        }
        Action::GetExperiment => {
            let req = pb::GetExperimentRequest { project, name: key.into(), read };
            api.experiments.get_experiment(req).await.map(|_| Outcome::Ok)
        }
        Action::PutRegister { value } => {
            let it = register_type(key, *value);
            api.catalog
                .put_instance_type(pb::PutInstanceTypeRequest { instance_type: Some(it) })
                .await
                .map(|_| Outcome::Ok)
        }
        Action::ReadRegister => {
            let list = api.catalog.list_instance_types(pb::ListInstanceTypesRequest { read }).await?.into_inner();
            let value = list.instance_types.iter().find(|t| t.name == key).map(|t| t.memory_mib);
            Ok(Outcome::Read { value })
        }
        Action::CreateTraining => Err(Status::internal("trainings are created by the training client")),
    }
}

/// The instance type that stands for register `key` holding `value` (its memory).
pub fn register_type(key: &str, value: u64) -> pb::InstanceType {
    pb::InstanceType { name: key.into(), cpu_millis: 100, memory_mib: value, ..Default::default() }
}

/// A gRPC error as the journal records it; which codes are definite is
/// [`OpResult::from_status`]'s one list.
pub fn classify(status: &Status) -> Outcome {
    match OpResult::from_status(status) {
        OpResult::Failed(code) => Outcome::Failed { code: format!("{code:?}") },
        OpResult::Unknown(error) => Outcome::Unknown { error },
        OpResult::Ok => Outcome::Ok,
    }
}
