//! Workloads that benchmark hakmem against its peers.
//!
//! The same source is built into one binary per contender (`src/main.rs`), each with a
//! different `#[global_allocator]` chosen by an `alloc-*` feature; `cargo xtask bench`
//! builds them, runs them in interleaved rounds and reports. This library holds what they
//! share: the workloads ([`workloads`], with the realistic ones in [`real`] and the
//! producer/consumer, large-under-threads and burst-and-idle ones in [`patterns`]), the PRNG ([`rng`]), the measurements ([`measure`]),
//! the `floor` allocator ([`floor`]), the result line ([`report`]) and the soak mode
//! ([`soak`]: epochs of fixed work in one long process); and the stress test ([`stress`]).

pub mod floor;
pub mod measure;
pub mod patterns;
pub mod real;
pub mod report;
pub mod rng;
pub mod soak;
pub mod stress;
pub mod workloads;

pub use workloads::{Kind, Outcome, Params, Spec, WORKLOADS, run, spec};
