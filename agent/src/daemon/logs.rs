//! Serving logs to the scheduler: the readers of live logs (registered by workers, so
//! followers wake on every flush) and of finished ones (opened from disk).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gantry_proto::v1::{AgentMessage, LogChunk, LogRequest, agent_message};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::reconcile::Key;
use crate::logstore::LogReader;

/// Bytes per chunk sent to the scheduler.
const CHUNK_BYTES: usize = 256 * 1024;
/// How long a follower lets output accumulate before sending it on.
const FOLLOW_COALESCE: std::time::Duration = std::time::Duration::from_millis(5);

/// Readers of the logs of running workers.
#[derive(Clone, Default)]
pub struct LogRegistry {
    live: Arc<Mutex<HashMap<Key, LogReader>>>,
}

impl LogRegistry {
    pub fn insert(&self, key: &Key, reader: LogReader) {
        if let Ok(mut live) = self.live.lock() {
            live.insert(key.clone(), reader);
        }
    }

    pub fn remove(&self, key: &Key) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(key);
        }
    }

    fn get(&self, key: &Key) -> Option<LogReader> {
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
        Some(r) => Ok(r),
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
