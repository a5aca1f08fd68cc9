//! `gantry-bench` as a library: the benchmark drivers behind the `gantry-bench`
//! binary, reusable from other crates' tests and tools.
//!
//! ```text
//!   main.rs ──▶ {gantry, etcd}::bench_writes ──▶ load::run_closed_loop ──▶ LoadReport
//!          │      (raft_setup::verify first: real disk, fsync seen per member)
//!          └──▶ failover::run ──▶ 4 configurations × rounds ──▶ failover::round::measure
//!          └──▶ placement::run ──▶ gantry_placement::solve
//!          └──▶ node::{start_overhead, logs, footprint} ──▶ NodeKit (sandbox + gantry-agent + Docker)
//! ```
//!
//! - [`etcd`]: a local etcd cluster of real processes and the write benchmark Gantry
//!   is compared against.
//! - [`failover`]: leader kill to the next acknowledged write, both systems with the
//!   same election settings and with their defaults.
//! - [`durability`] and [`raft_setup`]: what makes write figures durable, checked
//!   before measuring (mounts of the data dirs, fsync syscalls of every member).
//! - [`load`]: the closed-loop load driver and report every write benchmark shares.
//! - [`placement`]: placement throughput and latency on a synthetic fleet.
//! - [`gantry`]: replicated writes to a real Gantry cluster.
//! - [`raft_loaded`]: the same writes on a state holding many workloads vs an empty one.
//! - [`gateway`]: the HTTP gateway's added latency next to nginx, open loop.
//! - [`node`]: one real agent on the machine's Docker engine: start overhead, log
//!   throughput, the agent's own footprint.

pub mod durability;
pub mod etcd;
pub mod failover;
pub mod gantry;
pub mod gateway;
pub mod load;
pub mod node;
pub mod placement;
pub mod raft_loaded;
pub mod raft_setup;
