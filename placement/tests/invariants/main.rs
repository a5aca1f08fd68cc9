//! Post-conditions of `solve`, checked on random clusters and queues: one invariant per
//! file, all sharing the generators in `strategy.rs`.

mod check_fit_holds;
mod deterministic;
mod gang_all_or_none;
mod gpu_model_respected;
mod no_overcommit;
mod stable;
mod strategy;
