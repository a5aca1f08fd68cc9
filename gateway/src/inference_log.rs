//! Inference logs of stages with log management on: one JSON record per call, with the
//! guide's field names, written to a [`LogSink`].
//!
//! The record summarises the call (method, path, status, latency); it never holds the
//! request or response body, nor any credential.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::SystemTime;

use serde::Serialize;

use crate::routes::is_valid_id;

/// One call, as the guide's log fields.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InferenceLog {
    /// The project (the guide's app key).
    pub easymaker_app_key: String,
    pub category: String,
    /// INFO for 2xx, WARNING for 4xx, ERROR for 5xx and transport failures.
    pub log_level: String,
    pub body: String,
    pub log_type: String,
    /// UTC, RFC 3339.
    pub time: String,
    pub endpoint_id: String,
    pub endpoint_stage_id: String,
    pub inference_id: String,
    pub action: String,
    pub model_name: String,
}

/// What the gateway knows about a finished call.
#[derive(Debug, Clone)]
pub struct CallSummary<'a> {
    pub project: &'a str,
    pub endpoint_id: &'a str,
    pub stage_id: &'a str,
    pub inference_id: &'a str,
    pub action: &'a str,
    pub model: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    /// What the caller got: the pod's status, or the gateway's 502/503/504 when the
    /// pod gave no answer.
    pub status: u16,
    pub latency_us: u64,
    pub at: SystemTime,
}

impl InferenceLog {
    pub fn of_call(c: &CallSummary<'_>) -> InferenceLog {
        let log_level = match c.status {
            200..=399 => "INFO",
            400..=499 => "WARNING",
            _ => "ERROR",
        };
        InferenceLog {
            easymaker_app_key: c.project.to_string(),
            category: "easymaker.inference".to_string(),
            log_level: log_level.to_string(),
            body: format!("{} {} -> {} in {} us", c.method, c.path, c.status, c.latency_us),
            log_type: "NHNCloud-AIEasyMaker".to_string(),
            time: humantime::format_rfc3339_millis(c.at).to_string(),
            endpoint_id: c.endpoint_id.to_string(),
            endpoint_stage_id: c.stage_id.to_string(),
            inference_id: c.inference_id.to_string(),
            action: c.action.to_string(),
            model_name: c.model.to_string(),
        }
    }
}

/// A fresh random id in the UUID v4 text form.
pub fn new_inference_id() -> String {
    let mut n: u128 = rand::random();
    // Version 4 and the RFC 4122 variant, so the id reads as a UUID.
    n = (n & !(0xf << 76)) | (0x4 << 76);
    n = (n & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Where inference logs go. `write` must not block the caller for long: it runs on the
/// request path.
pub trait LogSink: Send + Sync + 'static {
    fn write(&self, record: InferenceLog);
}

/// Appends JSON lines to `{dir}/{endpoint_id}.jsonl`, one file per endpoint, from a
/// dedicated thread (file writes block). Records beyond a bounded backlog are dropped
/// with a warning rather than slowing calls down.
pub struct FileLogSink {
    tx: mpsc::SyncSender<InferenceLog>,
}

/// Records queued for the writer thread before new ones are dropped.
const BACKLOG: usize = 16_384;

impl FileLogSink {
    /// Creates `dir` if needed and starts the writer thread.
    pub fn new(dir: PathBuf) -> std::io::Result<FileLogSink> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = mpsc::sync_channel(BACKLOG);
        std::thread::Builder::new().name("inference-log".into()).spawn(move || write_loop(&dir, &rx))?;
        Ok(FileLogSink { tx })
    }
}

impl LogSink for FileLogSink {
    fn write(&self, record: InferenceLog) {
        if let Err(mpsc::TrySendError::Full(r)) = self.tx.try_send(record) {
            tracing::warn!(endpoint = %r.endpoint_id, "inference log backlog full, record dropped");
        }
    }
}

/// Ends when every sender is gone.
fn write_loop(dir: &std::path::Path, rx: &mpsc::Receiver<InferenceLog>) {
    let mut files: HashMap<String, BufWriter<File>> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(record) = next {
            append(dir, &mut files, &record);
            next = rx.try_recv().ok();
        }
        // Flush once the backlog is drained: lines reach the file promptly without a
        // write call per record under load.
        for (endpoint, f) in &mut files {
            if let Err(e) = f.flush() {
                tracing::warn!(endpoint = %endpoint, error = %e, "inference log flush failed");
            }
        }
    }
}

fn append(dir: &std::path::Path, files: &mut HashMap<String, BufWriter<File>>, record: &InferenceLog) {
    // The id names a file: anything but a plain id could escape the directory.
    if !is_valid_id(&record.endpoint_id) {
        tracing::warn!("inference log of an endpoint with an unusable id dropped");
        return;
    }
    if !files.contains_key(&record.endpoint_id) {
        let path = dir.join(format!("{}.jsonl", record.endpoint_id));
        match OpenOptions::new().create(true).append(true).open(&path) {
            Ok(f) => {
                files.insert(record.endpoint_id.clone(), BufWriter::new(f));
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open inference log");
                return;
            }
        }
    }
    let Some(f) = files.get_mut(&record.endpoint_id) else { return };
    let line = match serde_json::to_string(record) {
        Ok(line) => line,
        Err(e) => {
            tracing::warn!(error = %e, "inference log record not serialisable");
            return;
        }
    };
    if let Err(e) = writeln!(f, "{line}") {
        tracing::warn!(endpoint = %record.endpoint_id, error = %e, "inference log write failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_the_guides_fields_and_levels() {
        let call = CallSummary {
            project: "p",
            endpoint_id: "ep",
            stage_id: "st",
            inference_id: "id",
            action: "predict",
            model: "iris",
            method: "POST",
            path: "/e/ep/inference",
            status: 200,
            latency_us: 1234,
            at: SystemTime::UNIX_EPOCH,
        };
        let v = serde_json::to_value(InferenceLog::of_call(&call)).unwrap();
        assert_eq!(v["easymakerAppKey"], "p");
        assert_eq!(v["category"], "easymaker.inference");
        assert_eq!(v["logLevel"], "INFO");
        assert_eq!(v["logType"], "NHNCloud-AIEasyMaker");
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["endpointStageId"], "st");
        assert_eq!(v["modelName"], "iris");
        assert_eq!(v["body"], "POST /e/ep/inference -> 200 in 1234 us");
        assert_eq!(InferenceLog::of_call(&CallSummary { status: 404, ..call.clone() }).log_level, "WARNING");
        assert_eq!(InferenceLog::of_call(&CallSummary { status: 502, ..call }).log_level, "ERROR");
    }

    #[test]
    fn inference_ids_are_uuid_shaped_and_fresh() {
        let a = new_inference_id();
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert_ne!(a, new_inference_id());
    }
}
