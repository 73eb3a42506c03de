//! # hakmem-mid: the thread-cache policy of the slab classes from 1 KiB to 256 KiB
//!
//! **Owns** how many blocks of each mid class (size classes `NTINY..NCLASS`: above 1 KiB
//! up to [`MID_MAX`] = 256 KiB, four classes per doubling) a thread keeps cached: 256 KiB
//! of blocks per class and at most 64 blocks; 64 KiB and 32 in lean mode with decommit
//! on; never fewer than two blocks, so the largest class keeps up to 512 KiB. So a
//! thread never hoards much memory.
//!
//! The cache itself is not here: every class's bin, tiny and mid, lives in the one
//! thread cache of `hakmem-tiny-fast` (one TLS block, one state, one registry node and
//! one exit hook per thread), whose mid bins are its slower bins: the facade reaches
//! them with `hakmem_tiny_fast::cache_alloc(cls)` / `cache_free`, and that box asks this
//! one for their bounds ([`limits`] when a thread starts, [`limit_at`] on a refill or an
//! overflow, which restore a bin's normal bound).
//!
//! **Entry points**: [`limits`], [`limit_at`], [`limit_of`]. Requests are by class
//! ([`class_for`](hakmem_ss_allocation::class::class_for) picks it, honouring alignment
//! up to 64 KiB).
//!
//! **Gates**: none read here; lean mode and its bounds come from the release policy
//! (`hakmem_release_policy::lean::lean_mode`, `mid_bin_bound`: `HAKMEM_SS_MEM_LEAN`
//! with a decommit mode other than `OFF`).
//! **Features**: none.
//!
//! **Invariants**: every bound is between 2 and 64 blocks; a pure function of the class
//! and the process's lean mode (the release policy's rule); never
//! allocates or panics.
//!
//! ```
//! use hakmem_ss_allocation::class::{NCLASS, NTINY, class_for};
//! let cls = class_for(5000, 64).unwrap();
//! assert!((2..=64).contains(&hakmem_mid::limit_at(cls)));
//! assert_eq!(hakmem_mid::limit_at(NCLASS - 1), 2);
//! assert_eq!(hakmem_mid::limit_at(NTINY - 1), 0, "not a mid class");
//! ```
#![no_std]
#![deny(missing_docs)]

use hakmem_release_policy::lean;
use hakmem_ss_allocation::class::{NCLASS, NTINY, block_size};

/// Largest mid block.
pub const MID_MAX: usize = hakmem_ss_allocation::class::MAX_SLAB_BLOCK;
/// Number of mid classes.
pub const NMID: usize = NCLASS - NTINY;

/// A bin's bound normally and in lean mode: the release policy's rule
/// ([`lean::mid_bin_bound`]).
const NORMAL: lean::BinBound = lean::mid_bin_bound(false);
const LEAN: lean::BinBound = lean::mid_bin_bound(true);

/// [`limit_of`] for every mid class, computed at compile time.
const LIMITS: [u32; NMID] = {
    let mut t = [0u32; NMID];
    let mut i = 0;
    while i < NMID {
        t[i] = limit_of(NTINY + i, NORMAL.bytes, NORMAL.max);
        i += 1;
    }
    t
};

/// The bounds in lean mode with decommit on: a quarter of the bytes.
const LIMITS_LEAN: [u32; NMID] = {
    let mut t = [0u32; NMID];
    let mut i = 0;
    while i < NMID {
        t[i] = limit_of(NTINY + i, LEAN.bytes, LEAN.max);
        i += 1;
    }
    t
};

/// The bounds of this process's mid bins (lean mode or not): entry `i` is class
/// `NTINY + i`.
pub fn limits() -> &'static [u32; NMID] {
    if lean::lean_mode() {
        &LIMITS_LEAN
    } else {
        &LIMITS
    }
}

/// The normal bound of the bin of class `cls` (0 for a class that is not mid).
#[inline]
pub fn limit_at(cls: usize) -> u32 {
    limits().get(cls.wrapping_sub(NTINY)).copied().unwrap_or(0)
}

/// Most blocks a thread keeps of class `cls`: `bytes` of blocks, between 2 and `max`.
/// Measured (results/007): 256 KiB per class (at most 64 blocks) made `mixed-32k` 36%
/// faster than 64 KiB for 0.5 MiB more peak RSS; lean mode keeps 64 KiB.
pub const fn limit_of(cls: usize, bytes: usize, max: u32) -> u32 {
    let n = bytes / block_size(cls);
    if n < 2 {
        2
    } else if n > max as usize {
        max
    } else {
        n as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_shrink_with_the_block_size_between_2_and_64() {
        let mut prev = u32::MAX;
        for cls in NTINY..NCLASS {
            let l = LIMITS[cls - NTINY];
            let lean = LIMITS_LEAN[cls - NTINY];
            assert!((2..=64).contains(&l), "class {cls}: {l}");
            assert!((2..=32).contains(&lean) && lean <= l, "class {cls}: {lean}");
            assert!(l <= prev, "class {cls}: bounds grow with the block size");
            prev = l;
            // At most 256 KiB of blocks, except the two-block floor.
            assert!(l == 2 || l as usize * block_size(cls) <= 256 * 1024);
        }
        assert_eq!(LIMITS[0], 64, "the smallest mid class keeps 64 blocks");
        assert_eq!(LIMITS[NMID - 1], 2, "the largest keeps two");
        assert_eq!(limit_at(NTINY - 1), 0);
        assert_eq!(limit_at(NCLASS), 0);
        assert_eq!(limit_at(NTINY), limits()[0]);
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
