//! Critical XID errors: the driver's way of saying a GPU misbehaved (79 = fell off the
//! bus, 48 = double-bit ECC, …). NVML delivers them as events, not as a counter, so a
//! thread waits for them and keeps them until the next health sample.

use std::sync::{Arc, Mutex};
use std::thread;

use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;

use super::nvml::init_error;
use super::{GpuError, Xid};

/// Kept when nobody takes them, so a flood cannot grow memory (the oldest go first).
const MAX_KEPT: usize = 256;
/// How long one wait on a GPU's event set blocks; bounds how late the thread stops.
const WAIT_MS: u32 = 250;

/// What the watcher thread collected. The thread holds only a weak reference:
/// dropping the last handle stops it after its current round of waits.
#[derive(Debug, Default)]
pub(super) struct XidWatcher {
    seen: Mutex<std::collections::VecDeque<Xid>>,
}

impl XidWatcher {
    /// Starts the thread; fails if no GPU supports XID events.
    pub(super) fn start() -> Result<Arc<Self>, GpuError> {
        let watcher = Arc::new(XidWatcher::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let weak = Arc::downgrade(&watcher);
        thread::Builder::new()
            .name("gantry-xid".into())
            .spawn(move || {
                // The thread has its own NVML handle: event sets borrow it, and NVML
                // counts initialisations, so this is independent of the caller's.
                let nvml = match Nvml::init() {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = ready_tx.send(Err(init_error(e)));
                        return;
                    }
                };
                let sets = match register(&nvml) {
                    Ok(sets) if !sets.is_empty() => sets,
                    Ok(_) => {
                        let message = "no GPU supports xid events".to_string();
                        let _ = ready_tx.send(Err(GpuError::Nvml { call: "register_events", message }));
                        return;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while weak.strong_count() > 0 {
                    for set in &sets {
                        match set.wait(WAIT_MS) {
                            Ok(event) => {
                                let (Some(XidError::Value(code)), Ok(uuid)) = (event.event_data, event.device.uuid())
                                else {
                                    continue;
                                };
                                tracing::warn!(gpu = %uuid, xid = code, "gpu reported a critical xid error");
                                if let Some(w) = weak.upgrade() {
                                    w.record(uuid, code);
                                }
                            }
                            Err(NvmlError::Timeout) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "waiting for gpu xid events failed");
                                thread::sleep(std::time::Duration::from_millis(u64::from(WAIT_MS)));
                            }
                        }
                    }
                }
            })
            .map_err(|e| GpuError::Nvml { call: "spawn xid watcher", message: e.to_string() })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(watcher),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(GpuError::Nvml { call: "register_events", message: "xid watcher exited".into() }),
        }
    }

    fn record(&self, uuid: String, code: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() == MAX_KEPT {
            seen.pop_front();
        }
        seen.push_back(Xid { uuid, code });
    }

    /// The XIDs seen since the previous call, oldest first.
    pub(super) fn drain(&self) -> Vec<Xid> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner())).into()
    }
}

/// One event set per GPU: a failed registration consumes its set, so GPUs that do not
/// support events (or cannot be read at all) cannot spoil the others'.
fn register(nvml: &Nvml) -> Result<Vec<nvml_wrapper::EventSet<'_>>, GpuError> {
    let count = nvml.device_count().map_err(|e| GpuError::Nvml { call: "device_count", message: e.to_string() })?;
    let mut sets = Vec::new();
    for i in 0..count {
        let device = match nvml.device_by_index(i) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(gpu_index = i, error = %e, "gpu cannot be read: its xid events are not watched");
                continue;
            }
        };
        let set =
            nvml.create_event_set().map_err(|e| GpuError::Nvml { call: "create_event_set", message: e.to_string() })?;
        match device.register_events(EventTypes::CRITICAL_XID_ERROR, set) {
            Ok(set) => sets.push(set),
            Err(e) => tracing::warn!(gpu_index = i, error = %e.error, "gpu does not report xid events"),
        }
    }
    Ok(sets)
}
