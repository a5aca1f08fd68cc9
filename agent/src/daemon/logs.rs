//! Serving logs to the scheduler: the readers of live logs (registered by workers, so
//! followers wake on every flush) and of finished ones (opened from disk). A training
//! with log management off has only its live output, for followers, and nothing on disk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gantry_proto::v1::{AgentMessage, LogChunk, LogRequest, agent_message};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::live_log::LiveLog;
use super::reconcile::Key;
use crate::logstore::LogReader;

/// Bytes per chunk sent to the scheduler.
const CHUNK_BYTES: usize = 256 * 1024;
/// How long a follower lets output accumulate before sending it on.
const FOLLOW_COALESCE: std::time::Duration = std::time::Duration::from_millis(5);

/// Where a running worker's output can be read.
#[derive(Clone)]
pub enum LogSource {
    /// The log store (log management on).
    Stored(LogReader),
    /// Live only (log management off).
    Live(LiveLog),
}

/// Readers of the logs of running workers.
#[derive(Clone, Default)]
pub struct LogRegistry {
    live: Arc<Mutex<HashMap<Key, LogSource>>>,
}

impl LogRegistry {
    pub fn insert(&self, key: &Key, reader: LogSource) {
        if let Ok(mut live) = self.live.lock() {
            live.insert(key.clone(), reader);
        }
    }

    pub fn remove(&self, key: &Key) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(key);
        }
    }

    fn get(&self, key: &Key) -> Option<LogSource> {
        self.live.lock().ok()?.get(key).cloned()
    }
}

/// Streams the requested log into `out` until done, cancelled or the session closes.
pub async fn serve(
    registry: LogRegistry,
    log_dir: PathBuf,
    req: LogRequest,
    out: mpsc::Sender<AgentMessage>,
    cancel: CancellationToken,
) {
    let id = req.request_id;
    let send = |chunk: LogChunk| {
        let out = out.clone();
        async move { out.send(AgentMessage { kind: Some(agent_message::Kind::Log(chunk)) }).await.is_ok() }
    };
    let key = Key { workload_id: req.workload_id.clone(), rank: req.rank };
    let reader = match registry.get(&key) {
        Some(LogSource::Live(live)) => return serve_live(live, req, out, cancel).await,
        Some(LogSource::Stored(r)) => Ok(r),
        None if log_dir.is_dir() => LogReader::open(&log_dir),
        None => {
            let error = format!("no logs of workload {} rank {} on this node", req.workload_id, req.rank);
            send(LogChunk { request_id: id, eof: true, error, ..Default::default() }).await;
            return;
        }
    };
    let result = async {
        let mut cursor = reader?.cursor(req.tail_lines)?;
        loop {
            while let Some(data) = cursor.next_chunk(CHUNK_BYTES)? {
                if cancel.is_cancelled() || !send(LogChunk { request_id: id, data, ..Default::default() }).await {
                    return Ok(false);
                }
            }
            if !req.follow {
                return Ok(true);
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(false),
                more = cursor.wait_for_more() => if !more? { return Ok(true) },
            }
            // The writer flushes after every batch the engine hands it, often a line or
            // two: gather a few milliseconds' worth into one chunk, or a fast training
            // floods the session with tiny frames (which HTTP/2 servers treat as abuse).
            tokio::time::sleep(FOLLOW_COALESCE).await;
        }
    }
    .await;
    match result {
        Ok(true) => {
            send(LogChunk { request_id: id, eof: true, ..Default::default() }).await;
        }
        Ok(false) => {}
        Err::<_, crate::logstore::LogError>(e) => {
            send(LogChunk { request_id: id, eof: true, error: format!("reading logs: {e}"), ..Default::default() })
                .await;
        }
    }
}

/// Follows the live output of a container whose logs are not kept: from now on, until
/// it ends. There is no history to read, so anything but a follow is refused.
async fn serve_live(live: LiveLog, req: LogRequest, out: mpsc::Sender<AgentMessage>, cancel: CancellationToken) {
    let id = req.request_id;
    let send = |chunk: LogChunk| {
        let out = out.clone();
        async move { out.send(AgentMessage { kind: Some(agent_message::Kind::Log(chunk)) }).await.is_ok() }
    };
    if !req.follow {
        let error = format!("{NOT_KEPT}; follow its output live while it runs (logs -f)");
        send(LogChunk { request_id: id, eof: true, error, ..Default::default() }).await;
        return;
    }
    let Some(mut rx) = live.subscribe() else {
        send(LogChunk { request_id: id, eof: true, ..Default::default() }).await;
        return;
    };
    loop {
        let batch = tokio::select! {
            _ = cancel.cancelled() => return,
            batch = rx.recv() => batch,
        };
        let mut data = Vec::new();
        match batch {
            Ok(lines) => push_lines(&mut data, &lines),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                let note = format!("gantry: {n} batch(es) of output skipped: this reader fell behind ({NOT_KEPT})");
                push_lines(&mut data, &[note]);
            }
            Err(broadcast::error::RecvError::Closed) => {
                send(LogChunk { request_id: id, eof: true, ..Default::default() }).await;
                return;
            }
        }
        // Whatever else is ready goes in the same chunk.
        while data.len() < CHUNK_BYTES {
            match rx.try_recv() {
                Ok(lines) => push_lines(&mut data, &lines),
                Err(_) => break,
            }
        }
        if !send(LogChunk { request_id: id, data, ..Default::default() }).await {
            return;
        }
    }
}

fn push_lines(data: &mut Vec<u8>, lines: &[String]) {
    for line in lines {
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
    }
}

/// Why a training with log management off has no logs to read.
const NOT_KEPT: &str = "log management is off for this training (use_log = false): its output is not kept";
