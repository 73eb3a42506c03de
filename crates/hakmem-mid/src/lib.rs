//! # hakmem-mid: thread-cached slab blocks from 1 KiB to 256 KiB
//!
//! **Owns** each thread's cache of mid-sized blocks (size classes `NTINY..NCLASS`: above
//! 1 KiB up to [`MID_MAX`] = 256 KiB, four classes per doubling): one bounded LIFO
//! [`Bin`] per class, refilled from and flushed to the slabs of `hakmem-ss-allocation`.
//! The bounds shrink with the block size (256 KiB of blocks per class and at most 64
//! blocks; 64 KiB and 32 in lean mode with decommit on; never fewer than two blocks, so
//! the largest class keeps up to 512 KiB), so a thread never hoards much memory.
//!
//! **Entry points**: [`mid_alloc`] / [`mid_free`]; [`try_alloc`] / [`try_free`] (fast
//! path alone) with [`alloc_slow`] / [`free_slow`]; [`thread_init`], [`thread_flush`].
//! Requests are by class ([`class_for`](hakmem_ss_allocation::class::class_for) picks it,
//! honouring alignment up to 64 KiB).
//!
//! **Gates**: none read. **Features**: none.
//!
//! **Invariants**: as in `hakmem-tiny-fast`: the fast path takes no lock, no atomic
//! read-modify-write, reads no gate; a thread's first call misses; at thread exit (the
//! hook of the process's one exit key, `bins::THREAD_EXIT`, visited last in every
//! destructor round) its blocks go back to their slabs, it leaves the registry, and
//! nothing more is cached, whenever its first call happened; its registry node is not
//! in its TLS; never allocates or panics.
//!
//! ```
//! use hakmem_ss_allocation::class::class_for;
//! let cls = class_for(5000, 64).unwrap();
//! let p = hakmem_mid::mid_alloc(cls);
//! assert!(!p.is_null() && p as usize % 64 == 0);
//! // SAFETY: `p` came from `mid_alloc(cls)`.
//! unsafe { hakmem_mid::mid_free(p, cls) };
//! ```
#![deny(missing_docs)]

use core::cell::UnsafeCell;
use hakmem_release_policy::lean;
use hakmem_ss_allocation::bins::{Bin, CacheNode, CacheRegistry, THREAD_EXIT, drain_all};
use hakmem_ss_allocation::class::{NCLASS, NTINY, block_size};

/// Largest mid block.
pub const MID_MAX: usize = hakmem_ss_allocation::class::MAX_SLAB_BLOCK;
/// Number of mid classes.
pub const NMID: usize = NCLASS - NTINY;

struct Cache {
    bins: [Bin; NMID],
    /// Set up (or exiting: set by the exit hook too, so that nothing starts a cache
    /// again).
    initialized: bool,
    /// The thread's node in [`REGISTRY`] (null: not registered).
    node: *mut CacheNode,
}

thread_local! {
    static CACHE: UnsafeCell<Cache> = const {
        UnsafeCell::new(Cache {
            bins: [const { Bin::EMPTY }; NMID],
            initialized: false,
            node: core::ptr::null_mut(),
        })
    };
}

static REGISTRY: CacheRegistry = CacheRegistry::new();

/// Blocks and bytes held by every thread's cache of this box now (for stats; takes the
/// registry lock, never touches a fast path).
pub fn cached() -> (u64, u64) {
    REGISTRY.cached()
}

/// Fork handler: take the registry lock.
pub fn fork_prepare() {
    REGISTRY.fork_prepare();
}

/// Fork handler for the parent.
pub fn fork_release() {
    REGISTRY.fork_release();
}

/// Fork handler for the child: the registry keeps only the calling (forking) thread's
/// cache; the other threads do not exist in the child.
pub fn fork_child() {
    let own = with_cache(|c| c.node);
    // SAFETY: called once in the child with the lock from `fork_prepare`; `own` is this
    // thread's registered node or null.
    unsafe { REGISTRY.fork_child(own) };
}

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

/// The bounds of this process's bins (lean mode or not).
fn limits() -> &'static [u32; NMID] {
    if lean::lean_mode() {
        &LIMITS_LEAN
    } else {
        &LIMITS
    }
}

/// The normal bound of the bin of class `cls` (0 for a class that is not mid).
#[inline]
fn limit_at(cls: usize) -> u32 {
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

#[inline(always)]
fn with_cache<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    // SAFETY: only the owning thread touches its cache; no reference escapes the call.
    CACHE.with(|c| f(unsafe { &mut *c.get() }))
}

/// The fast path: a block of mid class `cls` (in `NTINY..NCLASS`) from the thread's
/// bin, or null on a miss.
#[inline(always)]
pub fn try_alloc(cls: usize) -> *mut u8 {
    with_cache(|c| match c.bins.get_mut(cls.wrapping_sub(NTINY)) {
        Some(b) => b.pop(),
        None => core::ptr::null_mut(),
    })
}

/// The fast path of a free; false on a miss.
///
/// # Safety
/// `p` came from this box for class `cls` and is not used any more.
#[inline(always)]
pub unsafe fn try_free(p: *mut u8, cls: usize) -> bool {
    with_cache(|c| match c.bins.get_mut(cls.wrapping_sub(NTINY)) {
        // SAFETY: the caller gives `p` up.
        Some(b) => unsafe { b.push(p) },
        None => false,
    })
}

/// Initialize the calling thread's cache; true if this call did it.
pub fn thread_init() -> bool {
    // Caching goes on before anything that may re-enter the allocator; no reference to
    // the cache is held across those calls.
    let first = with_cache(|c| {
        if c.initialized {
            return false;
        }
        c.initialized = true;
        for (i, (b, &limit)) in c.bins.iter_mut().zip(limits().iter()).enumerate() {
            b.set_limit(limit);
            // SAFETY: bin `i` holds class `NTINY + i`.
            unsafe { b.set_block_size(block_size(NTINY + i)) };
        }
        true
    });
    if !first {
        return false;
    }
    let ok = THREAD_EXIT.register_current_thread(on_thread_exit)
        && with_cache(|c| {
            // SAFETY: the thread-local bins do not move, and the exit hook (armed above)
            // unregisters the node before the thread's storage goes away.
            c.node = unsafe { REGISTRY.register(c.bins.as_ptr(), NMID, NTINY) };
            !c.node.is_null()
        });
    if !ok {
        // No exit hook or no registry node: cache nothing rather than lose blocks.
        with_cache(|c| {
            // SAFETY: `bins[i]` holds class `NTINY + i`.
            unsafe { drain_all(&mut c.bins, NTINY, true) };
        });
    }
    true
}

/// The slow path of an allocation. Null when out of memory or `cls` is not a mid class.
#[cold]
#[inline(never)]
pub fn alloc_slow(cls: usize) -> *mut u8 {
    thread_init();
    with_cache(|c| match c.bins.get_mut(cls.wrapping_sub(NTINY)) {
        // SAFETY: the bin of class `cls` holds class `cls`.
        Some(b) => unsafe { b.pop_or_refill(cls, limit_at(cls)) },
        None => core::ptr::null_mut(),
    })
}

/// The slow path of a free.
///
/// # Safety
/// As [`try_free`].
#[cold]
#[inline(never)]
pub unsafe fn free_slow(p: *mut u8, cls: usize) {
    thread_init();
    with_cache(|c| {
        if let Some(b) = c.bins.get_mut(cls.wrapping_sub(NTINY)) {
            // SAFETY: the caller gives `p` up.
            unsafe { b.push_or_overflow(cls, p, limit_at(cls)) }
        }
    })
}

/// Allocate a block of mid class `cls`. Null when out of memory.
#[inline(always)]
pub fn mid_alloc(cls: usize) -> *mut u8 {
    let p = try_alloc(cls);
    if !p.is_null() { p } else { alloc_slow(cls) }
}

/// Free a block from [`mid_alloc`].
///
/// # Safety
/// As [`try_free`].
#[inline(always)]
pub unsafe fn mid_free(p: *mut u8, cls: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe {
        if !try_free(p, cls) {
            free_slow(p, cls);
        }
    }
}

/// Give every block cached by the calling thread back to the slabs.
pub fn thread_flush() {
    with_cache(|c| {
        // SAFETY: `bins[i]` holds class `NTINY + i`.
        unsafe { drain_all(&mut c.bins, NTINY, false) };
    })
}

/// Blocks cached by the calling thread.
pub fn thread_cached_blocks() -> u64 {
    with_cache(|c| c.bins.iter().map(|b| b.count() as u64).sum())
}

/// The thread-exit hook (run by the process's exit key, also on threads that never used
/// this box): give every cached block back, leave the registry, and cache nothing from
/// now on (`initialized` stays set, so a later call does not start a cache again).
fn on_thread_exit() {
    with_cache(|c| {
        // SAFETY: `bins[i]` holds class `NTINY + i`.
        unsafe { drain_all(&mut c.bins, NTINY, true) };
        c.initialized = true;
        if !c.node.is_null() {
            // SAFETY: registered by `thread_init`, not unregistered since.
            unsafe { REGISTRY.unregister(c.node) };
            c.node = core::ptr::null_mut();
        }
    })
}

/// Thread caches of this box registered now (for tests).
pub fn registered_caches() -> usize {
    REGISTRY.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hakmem_ss_allocation::class::class_for;

    use std::vec::Vec;

    #[test]
    fn every_mid_class_round_trips() {
        let mut v = Vec::new();
        for cls in NTINY..NCLASS {
            for _ in 0..3 {
                let p = mid_alloc(cls);
                assert!(!p.is_null());
                // SAFETY: the block holds block_size(cls) bytes.
                unsafe { p.write_bytes(cls as u8, block_size(cls)) };
                v.push((p, cls));
            }
        }
        for &(p, cls) in &v {
            // SAFETY: as above.
            unsafe {
                assert_eq!(*p, cls as u8);
                assert_eq!(*p.add(block_size(cls) - 1), cls as u8);
            }
        }
        for (p, cls) in v {
            // SAFETY: from mid_alloc(cls).
            unsafe { mid_free(p, cls) };
        }
        thread_flush();
        assert_eq!(thread_cached_blocks(), 0);
    }

    #[test]
    fn alignment_up_to_64k() {
        for align in [32usize, 256, 4096, 65536] {
            let cls = class_for(3000, align).unwrap();
            let p = mid_alloc(cls);
            assert_eq!(p as usize % align, 0);
            // SAFETY: from mid_alloc(cls).
            unsafe { mid_free(p, cls) };
        }
        assert!(try_alloc(0).is_null());
        assert!(alloc_slow(NCLASS).is_null());
    }
}
