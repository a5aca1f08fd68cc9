//! Fault injection against real `gantry-scheduler` processes: start a cluster, drive a
//! client workload while killing, stopping and wiping replicas, record what every client
//! saw, and check the replicas' final state against that record.
//!
//! ```text
//!   seed ──▶ workload tasks ──gRPC/TLS──▶ replica 0 ─┐
//!               │    (retry Unknown with     replica 1 ─┼─ raft (mutual TLS, 127.0.0.1)
//!               │     the same request id)   replica 2 ─┘
//!               ▼                               ▲   │
//!           Recorder ── History ──┐   faults ───┘   │ stale list per replica
//!                                 ▼                 ▼
//!                        checker::check_creates(history, observed) ─▶ CheckReport | [Violation]
//! ```
//!
//! The pieces, one per file:
//! - [`cluster`]: [`ProcessCluster`] runs N replicas as child processes on loopback
//!   ports, each with its own data dir and log file under one temporary base dir, sharing
//!   one development CA. Faults are methods on it: [`ProcessCluster::kill`] (SIGKILL),
//!   [`ProcessCluster::terminate`] (SIGTERM), [`ProcessCluster::restart`],
//!   [`ProcessCluster::wipe`] (lose the disk).
//! - [`history`]: the client-side record. An operation is `Ok`, a definite `Failed(code)`,
//!   or `Unknown` (the write may or may not have happened).
//! - [`checker`]: pure functions from a history and the observed state to a report or a
//!   list of violations. No I/O, unit-tested with hand-made histories.
//! - [`workload`]: concurrent clients issuing creates to random replicas, retrying unknown
//!   outcomes on another replica with the same request id.
//! - [`seed`]: the run's seed, from `GANTRY_CHAOS_SEED` or fresh, always printed.
//!
//! Replicas are addressed by index `0..n`; replica `i` has raft id `i + 1`.
//!
//! # Adding a fault suite
//!
//! A suite is an integration test (in `tests/tests/`) that combines the same four parts:
//! start a [`ProcessCluster`], run a workload that records into a [`history::Recorder`],
//! inject faults from a schedule drawn from the seeded RNG, then let the cluster converge
//! ([`ProcessCluster::wait_converged`]) and run a checker. New fault kinds are new methods
//! on the cluster (network partitions by routing peer traffic through a proxy that can
//! drop it; disk faults by pointing `data_dir` at a filesystem that can fail or fill up;
//! agent loss once agents run as processes beside the replicas); new invariants are new
//! `check_*` functions in their own file beside [`checker`], each with unit tests that
//! include a history that must fail.
//!
//! The nemesis suite ([`nemesis`]) builds on the same pieces with separate hosts
//! ([`hosts`]: a network namespace per replica and agent, fake clocks, small disks), a
//! richer journal and the linearizability checker [`lin`]; see the crate's README.
//!
//! Requirements: the scheduler binary must be built (`cargo build --bins`, or point
//! `GANTRY_SCHEDULER_BIN` at it). Set `GANTRY_KEEP_CHAOS_DIR=1` to keep the base dir (configs,
//! data, logs) of a failed run; the seed is printed on stderr to replay it.

pub mod agent;
pub mod binary;
pub mod checker;
pub mod clients;
pub mod cluster;
pub mod history;
pub mod hosts;
pub mod lin;
pub mod nemesis;
mod replica_config;
pub mod seed;
pub mod workload;

pub use agent::{AgentOptions, AgentProcess};
pub use checker::{CheckReport, Violation, check_creates};
pub use clients::{Authorization, Clients};
pub use cluster::{ADMIN_TOKEN, ClusterOptions, JOIN_TOKEN, ProcessCluster};
pub use history::{History, Op, OpKind, OpResult, Recorder};
pub use seed::chaos_seed;
pub use workload::{CreateWorkload, Progress, RunningWorkload};
