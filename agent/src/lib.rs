//! The Gantry node agent: what runs on every GPU/CPU server and turns the scheduler's
//! assignments into containers.
//!
//! This crate holds the agent's foundations; the daemon's `main`, the scheduler
//! connection and the controllers come on top of them. Pure logic is kept apart from
//! I/O, and every I/O edge is a small trait with a real and a fake implementation:
//!
//! ```text
//!                      scheduler (later)
//!                            │ assignments
//!                            ▼
//!   TrainingSpec ──► contract (pure) ──► ContainerSpec ──► runtime::ContainerRuntime
//!                                                         ├─ DockerRuntime (bollard)
//!                                                         └─ FakeRuntime  (in memory)
//!
//!   gpu::GpuSource  (NvmlGpus | FakeGpus)   ─┐
//!   inventory::HostProbe (SysinfoHost)      ─┴─► NodeInventory + NodeMetrics ──► scheduler
//! ```
//!
//! | module | role |
//! | --- | --- |
//! | [`gpu`] | GPU inventory and health: NVML on real hosts, a configured list elsewhere |
//! | [`inventory`] | CPU, memory and disk of the host, and its load, as the scheduler sees them |
//! | [`contract`] | the EasyMaker container contract: command line, `EM_*` variables, mounts |
//! | [`runtime`] | containers: the operations an agent needs, over Docker or in memory |
//! | [`logstore`] | a container's output on disk: rotated segments, tail and live follow |
//! | [`serving`] | the serving pod contract: a pod of an endpoint stage instance → its container |

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod contract;
pub mod daemon;
pub mod gpu;
pub mod inventory;
pub mod logstore;
pub mod runtime;
pub mod serving;
