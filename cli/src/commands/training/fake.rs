//! A scripted `TrainingService` on `127.0.0.1:0`, for the tests of log streaming and
//! waiting: it answers `TrainingLogs` and `GetTraining` from a script and records the
//! requests it got. Every other RPC is unimplemented.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gantry_proto::v1::training_service_server::{TrainingService, TrainingServiceServer};
use gantry_proto::v1::{
    CreateTrainingRequest, DeleteTrainingRequest, DeleteTrainingResponse, GetTrainingRequest, ListTrainingsRequest,
    ListTrainingsResponse, StopTrainingRequest, Training, TrainingLogsChunk, TrainingLogsRequest,
};
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tonic::transport::Server;
use tonic::{Code, Request, Response, Status};

use crate::config::Config;
use crate::connect::Connector;

/// One step of a `TrainingLogs` answer: a chunk, or the error that ends the stream.
#[derive(Debug, Clone)]
pub enum Step {
    Chunk(&'static str),
    Fail(Code),
}

#[derive(Default)]
pub struct FakeTrainings {
    /// What each `TrainingLogs` call sends, in order; the last is repeated. A script that
    /// does not end in `Fail` ends the stream normally.
    pub logs: Mutex<VecDeque<Vec<Step>>>,
    /// Answers to `GetTraining`, in order; the last is repeated.
    pub trainings: Mutex<VecDeque<Result<Training, Code>>>,
    pub log_requests: Mutex<Vec<TrainingLogsRequest>>,
}

impl FakeTrainings {
    pub fn with_logs(scripts: impl IntoIterator<Item = Vec<Step>>) -> Arc<Self> {
        Arc::new(FakeTrainings { logs: Mutex::new(scripts.into_iter().collect()), ..Default::default() })
    }

    pub fn with_trainings(answers: impl IntoIterator<Item = Result<Training, Code>>) -> Arc<Self> {
        Arc::new(FakeTrainings { trainings: Mutex::new(answers.into_iter().collect()), ..Default::default() })
    }
}

fn next<T: Clone>(script: &Mutex<VecDeque<T>>) -> Option<T> {
    let mut script = script.lock().unwrap();
    if script.len() > 1 { script.pop_front() } else { script.front().cloned() }
}

/// The service as the server holds it, sharing the script with the test.
struct Served(Arc<FakeTrainings>);

type ChunkStream = Pin<Box<dyn Stream<Item = Result<TrainingLogsChunk, Status>> + Send>>;

#[tonic::async_trait]
impl TrainingService for Served {
    async fn create_training(&self, _: Request<CreateTrainingRequest>) -> Result<Response<Training>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list_trainings(
        &self,
        _: Request<ListTrainingsRequest>,
    ) -> Result<Response<ListTrainingsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_training(&self, _: Request<GetTrainingRequest>) -> Result<Response<Training>, Status> {
        match next(&self.0.trainings) {
            Some(Ok(training)) => Ok(Response::new(training)),
            Some(Err(code)) => Err(Status::new(code, "fake failure")),
            None => Err(Status::not_found("no such training")),
        }
    }

    async fn stop_training(&self, _: Request<StopTrainingRequest>) -> Result<Response<Training>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn delete_training(
        &self,
        _: Request<DeleteTrainingRequest>,
    ) -> Result<Response<DeleteTrainingResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    type TrainingLogsStream = ChunkStream;

    async fn training_logs(
        &self,
        request: Request<TrainingLogsRequest>,
    ) -> Result<Response<Self::TrainingLogsStream>, Status> {
        self.0.log_requests.lock().unwrap().push(request.into_inner());
        let items: Vec<_> = next(&self.0.logs)
            .unwrap_or_default()
            .into_iter()
            .map(|step| match step {
                Step::Chunk(data) => Ok(TrainingLogsChunk { data: data.into() }),
                Step::Fail(code) => Err(Status::new(code, "fake failure")),
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(items))))
    }
}

/// Starts `fake` on a free port and returns its `http://` URL.
pub async fn start(fake: Arc<FakeTrainings>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(TrainingServiceServer::new(Served(fake)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

pub fn connector(servers: Vec<String>) -> Connector {
    let config =
        Config { servers, token: None, ca_cert: None, project: "default".into(), timeout: Duration::from_secs(5) };
    Connector::new(&config).unwrap()
}
