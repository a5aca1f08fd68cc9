//! Copies a container's output from the engine into its [`Output`], batch by batch,
//! until the container's output ends.

use std::sync::Arc;

use futures::StreamExt as _;

use super::output::Output;
use crate::runtime::{ContainerId, ContainerRuntime};

/// Lines taken from the engine per store write; the store is flushed (made visible to
/// followers) after every batch, which is whatever the engine had ready.
const BATCH: usize = 4096;

/// Pumps until the engine ends the stream (the container exited), skipping the first
/// `skip` lines (already stored before an agent restart). Returns the output.
pub async fn pump(runtime: Arc<dyn ContainerRuntime>, id: ContainerId, mut output: Output, mut skip: u64) -> Output {
    let mut lines = runtime.logs(&id, true).ready_chunks(BATCH);
    while let Some(batch) = lines.next().await {
        let mut texts = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Ok(_) if skip > 0 => skip -= 1,
                Ok(line) => texts.push(line.line),
                Err(e) => tracing::warn!(container = %id, error = %e, "log stream error"),
            }
        }
        // Stored appends only reach the page cache: cheap enough inline per batch.
        if let Err(e) = output.append(texts) {
            tracing::warn!(container = %id, error = %e, "storing logs failed");
        }
    }
    output
}
