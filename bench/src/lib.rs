//! `gantry-bench` as a library: the benchmark drivers behind the `gantry-bench`
//! binary, reusable from other crates' tests and tools.
//!
//! ```text
//!   main.rs ──▶ etcd::{EtcdCluster, bench_writes, bench_failover} ──▶ load::run_closed_loop ──▶ LoadReport
//!          └──▶ placement::run ──▶ gantry_placement::solve
//!          └──▶ node::{start_overhead, logs, footprint} ──▶ NodeKit (sandbox + gantry-agent + Docker)
//! ```
//!
//! - [`etcd`]: a local etcd cluster of real processes and the write/failover benchmarks
//!   Gantry is compared against.
//! - [`load`]: the closed-loop load driver and report every write benchmark shares.
//! - [`placement`]: placement throughput and latency on a synthetic fleet.
//! - [`gantry`]: replicated writes and failover of a 3-replica Gantry cluster.
//! - [`raft_loaded`]: the same writes on a state holding many workloads vs an empty one.
//! - [`node`]: one real agent on the machine's Docker engine: start overhead, log
//!   throughput, the agent's own footprint.

pub mod etcd;
pub mod gantry;
pub mod load;
pub mod node;
pub mod placement;
pub mod raft_loaded;
