//! # hakmem-hot-prewarm: warm caches before first use
//!
//! **Owns** filling a new thread's tiny bins ahead of first use (which maps the tiny
//! classes' superslabs as a side effect), so that a thread's first allocations hit the
//! fast path.
//!
//! **Entry point**: [`prewarm_thread`] (the facade calls it once per thread, on the
//! thread's first slow path), and [`enabled`] (the gate decision, which is
//! `hakmem_env_gates::Gates::prewarm_effective`: decided there, not re-derived here).
//!
//! **Gates**: `HAKMEM_PREWARM` (0/1), `HAKMEM_PREWARM_DEPTH` (blocks per class; 0 turns
//! prewarm off), and `HAKMEM_SS_MEM_LEAN` (lean mode suppresses prewarm: no memory is
//! touched ahead), all three through `Gates::prewarm_effective`.
//!
//! **Features**: the facade's `hot-prewarm` feature compiles this box in; without it
//! there is no call, no branch and no code.
//!
//! **Invariants**: prewarm never takes more than a bin's limit; it only moves blocks
//! from slabs into the calling thread's cache (they go back at thread exit like any
//! cached block); it never allocates through the global allocator.
//!
//! ```
//! std::thread::spawn(|| {
//!     hakmem_hot_prewarm::prewarm_thread(4);
//!     assert!(hakmem_tiny_fast::thread_cached_blocks() >= 4);
//! }).join().unwrap();
//! ```
#![deny(missing_docs)]

use hakmem_env_gates::gates;
use hakmem_ss_allocation::class::NTINY;

/// Whether the gates ask for prewarm: [`Gates::prewarm_effective`] of the process's gates
/// (`HAKMEM_PREWARM=1`, lean mode off, a depth above 0).
///
/// [`Gates::prewarm_effective`]: hakmem_env_gates::Gates::prewarm_effective
pub fn enabled() -> bool {
    gates().prewarm_effective()
}

/// Fill every tiny class of the calling thread's cache with up to `depth` blocks (its
/// bin limit at most). Returns the blocks the thread's cache holds now (all classes: on a
/// new thread, the prewarmed ones). Stops early when out of memory.
pub fn prewarm_thread(depth: u32) -> u64 {
    for cls in 0..NTINY {
        if !hakmem_tiny_fast::prewarm(cls, depth) {
            break;
        }
    }
    hakmem_tiny_fast::thread_cached_blocks()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_each_class() {
        std::thread::spawn(|| {
            let n = prewarm_thread(2);
            assert_eq!(n, 2 * NTINY as u64);
            hakmem_tiny_fast::thread_flush();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn depth_zero_caches_nothing() {
        std::thread::spawn(|| {
            assert_eq!(prewarm_thread(0), 0);
        })
        .join()
        .unwrap();
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
