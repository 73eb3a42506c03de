//! # hakmem-tiny-fast: the thread cache, and its fast path for tiny blocks
//!
//! **Owns** each thread's one cache of free blocks, for every slab class: one bounded
//! LIFO [`Bin`] per class (the tiny classes `0..NTINY`, 16 B to 1 KiB, first, so that
//! the fast path's offsets stay small; then the mid classes `NTINY..NCLASS`, up to 256
//! KiB, its slower bins), each a stack of pointers in the thread's one mapping of block
//! arrays (mapped at its first call, passed on to a later thread at its exit: at most
//! 64 kept), the tiny bins' adaptive bounds ([`MAX_TINY_BOUND`], the release policy's
//! growth budget), a state ([`State`]: `Uninit`, `Active`, `Dead`) and the
//! thread's node in the process's one [`CacheRegistry`], all in one zero-initialized
//! thread-local without `Drop` (a `const`-initialized `thread_local!`; with the feature
//! `initial-exec-tls` on x86_64 Linux with glibc, a `.tbss` symbol reached by
//! hand-written initial-exec TLS, so that a shared object makes no TLS call); the bins'
//! refill from and flush to the slabs of `hakmem-ss-allocation`; the return of every cached block to the slabs when the thread
//! exits (one hook of the process's exit key); and the registry's fork handlers. One
//! thread: one TLS block, one state, one registry node, one exit hook.
//!
//! **Entry points**: [`tiny_alloc`] / [`tiny_free`] (complete operations on tiny
//! sizes), and for a facade that wants its own slow path: [`try_alloc`] / [`try_free`]
//! (the fast path alone; they miss on an empty or full bin and on a thread's first call),
//! then [`alloc_slow`] / [`free_slow`]. By class, for every class (tiny or mid):
//! [`cache_alloc`] / [`cache_free`], [`try_alloc_class`] / [`try_free_class`] (and
//! [`try_free_bin`], the class as its bin's byte offset, for the C `free`),
//! [`alloc_slow_class`] / [`free_slow_class`]. [`thread_init`], [`thread_state`],
//! [`thread_flush`], [`request_flush_all`] (every thread gives its cache back at its
//! next slow path: `hakmem::trim` and the background purge), [`prewarm`], [`cached`],
//! [`bin_limit`] and [`thread_grown_bytes`] (a bin's bound and the thread's growth);
//! the fork handlers [`fork_prepare`],
//! [`fork_release`], [`fork_child`] (unsafe: they must pair up around `fork`).
//!
//! **Gates**: none read here. The fast path reads no gate; the bounds are set per bin
//! when the thread's cache starts: the tiny base bounds are constants ([`limit_of`]) that
//! adapt on slow paths (a bin refilled after it overflowed grows, within the release
//! policy's `tiny_growth_budget`, smaller in lean mode; an idle one shrinks back), the mid
//! bounds are `hakmem-mid`'s policy (`hakmem_mid::limits`, smaller in lean mode). A bin
//! of a class that is giving slabs back in lean mode (`hakmem-ss-allocation` reads its
//! gates) caches at most two blocks until the class grows again or the bin refills.
//!
//! **Features**: `initial-exec-tls` (the thread cache by hand-written initial-exec TLS
//! on x86_64 Linux with glibc; for a shared object: `hakmem-preload` turns it on through
//! the facade). The facade compiles the whole box in (it is the tiny path).
//!
//! **Invariants**
//! - The fast path ([`try_alloc`], [`try_free`], [`try_free_bin`]) takes no lock, does
//!   no atomic read-modify-write, reads no gate and makes no call: one TLS access, one
//!   table lookup (`BIN_AT`, the bin's offset by size), the bin's count, a test, its
//!   array, and the block's pointer in (or out of) it; no load from the block handed out.
//! - A thread starts with empty bins whose limit is 0, so its first allocation and its
//!   first free (of any class) miss and go to the slow path, which initializes the
//!   thread (no "initialized?" test on the fast path).
//! - At thread exit (the one hook of the process's exit key, `bins::THREAD_EXIT`) every
//!   cached block goes straight back to its slab (never to the transfer cache: a dead
//!   thread's blocks are nobody's working set, and there each kept its slab in use;
//!   results/235), the thread leaves the registry, and the bins' limits drop to 0 (state
//!   `Dead`): later calls on that thread (other destructors) go straight to the central
//!   lists and cache nothing, so no block is ever stranded. The key has the highest
//!   pthread key index, so it is visited last in every destructor round: a thread whose
//!   first call comes from another key's destructor, in any round, is drained at the end
//!   of that same round. (In a process with `libhakmem.so`'s `pthread_create` wrapper,
//!   which sets each thread it starts up before the thread's own code runs, the key is
//!   one at the lowest index instead, and there is no sweep: a thread armed from its
//!   start is drained in round 1 and caches nothing afterwards.)
//! - A thread's registry node lives in the registry's own memory, never in the thread's
//!   TLS: registering or unregistering never touches a dead thread's memory.
//! - A block freed by another thread than its allocator goes into the freeing thread's
//!   bin, then back to its slab by a flush, where its owner's refill finds it.
//! - The slow paths (never the fast path) honour a flush request ([`request_flush_all`]):
//!   a thread that sees the flush epoch moved gives its whole cache back first.
//! - An allocation's slow path that sees the pool grew since it last looked
//!   (`hakmem_ss_allocation::pool_growth`) gives back, straight to their slabs, the bins
//!   of *idle* pool classes: a bin that holds every block of its class that is out, of a
//!   class with two slabs or more, that did not refill since the last look; then the
//!   class's transfer cache follows. Their slabs empty into the pool, for the class that
//!   grows (results/225).
//! - A bin's bound never exceeds its array (a tiny bin's base array holds its base
//!   bound, packed with the others; its big array, which it moves to, empty, when its
//!   bound first grows past the base, [`MAX_TINY_BOUND`] pointers; a mid bin's, the mid
//!   policy's largest bound); a thread that could not map its arrays caches nothing.
//! - Nothing here allocates through the global allocator or panics.
//!
//! ```
//! let p = hakmem_tiny_fast::tiny_alloc(100);
//! assert!(!p.is_null());
//! // SAFETY: `p` holds at least 100 bytes and came from `tiny_alloc(100)`.
//! unsafe {
//!     p.write_bytes(0xAB, 100);
//!     hakmem_tiny_fast::tiny_free(p, 100);
//! }
//! // A mid class (by class: `class_for` honours alignment up to 64 KiB).
//! let cls = hakmem_ss_allocation::class::class_for(5000, 64).unwrap();
//! let q = hakmem_tiny_fast::cache_alloc(cls);
//! assert!(!q.is_null() && q as usize % 64 == 0);
//! // SAFETY: `q` came from `cache_alloc(cls)`.
//! unsafe { hakmem_tiny_fast::cache_free(q, cls) };
//! ```
#![deny(missing_docs)]

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use hakmem_os_stats::lock::Locked;
use hakmem_ss_allocation::bins::{Bin, CacheNode, CacheRegistry, THREAD_EXIT, drain_all};
use hakmem_ss_allocation::class::{self, NCLASS, NTINY, block_size};

pub use hakmem_ss_allocation::class::TINY_MAX;

/// The state of the calling thread's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// No call yet on this thread.
    Uninit = 0,
    /// Caching.
    Active = 1,
    /// The thread is exiting (or could not get an exit hook or a registry node): its
    /// cache was flushed and caches nothing any more.
    Dead = 2,
}

/// A thread's cache. `repr(C)` with the bins first, tiny classes first: the fast path's
/// TLS offsets stay small.
#[repr(C)]
struct Cache {
    /// `bins[cls]` holds class `cls` (tiny `0..NTINY`, then mid `NTINY..NCLASS`).
    bins: [Bin; NCLASS],
    /// The thread's node in [`REGISTRY`] (null: not registered).
    node: *mut CacheNode,
    state: State,
    /// The last [`FLUSH_EPOCH`] this thread honoured.
    flush_seen: u32,
    /// The tiny bins' adaptive bounds (slow paths only).
    growth: Growth,
    /// The thread's block arrays (null: none mapped), [`SLOTS_BYTES`] long: bin `i`'s
    /// array at [`slots_offset`]`(i)`, and a tiny bin's big one, once it grew, at
    /// [`big_slots_offset`]`(i)`.
    slots: *mut u8,
    /// Bit `i`: tiny bin `i` uses its big array (it grew past its base bound once since
    /// the thread took its mapping). A bin whose bound is above its base always does.
    big: u32,
    /// The low 32 bits of the pool's growth (`hakmem_ss_allocation::pool_growth`) when
    /// this thread last looked for bins of idle classes ([`give_back_idle_bins`]).
    growth_seen: u32,
    /// Bit `i`: bin `i` has refilled on this thread (its first refill asks for at most
    /// [`FIRST_REFILL_BYTES`] of blocks).
    warm: u64,
    /// Bit `i`: bin `i` refilled since the thread last looked for bins of idle classes
    /// ([`give_back_idle_bins`]): a class in a burst of use, not a finished one.
    refilled: u64,
}

/// The most a bin's first refill on a thread asks for, in bytes of blocks (at least one
/// block): one page, against `bins::REFILL_BYTES` (16 KiB) for later refills, so that a
/// thread that uses a class a little carves (and makes resident) a page of it, not four
/// (`cbench thread`: peak RSS about 300 KiB lower, results/205).
pub const FIRST_REFILL_BYTES: usize = 4096;
const _: () = assert!(NCLASS <= 64, "a bit of `Cache::warm` per class");

/// Pointers each tiny bin's array holds: the most a tiny bin grows to.
const TINY_SLOTS: usize = MAX_TINY_BOUND as usize;
/// Pointers each mid bin's array holds: the release policy's bound on a mid bin.
const MID_SLOTS: usize = hakmem_release_policy::lean::mid_bin_bound(false).max as usize;
const _: () = assert!(
    hakmem_release_policy::lean::mid_bin_bound(true).max as usize <= MID_SLOTS,
    "a mid bin's bound must fit its array"
);
/// Bytes of a thread's block arrays: the mid bins' (`MID_SLOTS` pointers each), then the
/// tiny bins' base arrays (`LIMITS[i]` pointers each), packed, so that a thread that
/// uses every class touches a dozen pages of them (one page per tiny bin when each had
/// 32 KiB of its own: results/180), then a big array of `TINY_SLOTS` pointers per tiny
/// bin, which a bin moves to (empty, at a refill) when its bound first grows past its
/// base; only the pages it fills are touched.
const SLOTS_BYTES: usize = BIG_SLOTS_OFF + NTINY * TINY_SLOTS * 8;

/// Where the tiny bins' base arrays start in the mapping (after the mid bins').
const TINY_BASE_OFF: usize = (NCLASS - NTINY) * MID_SLOTS * 8;

/// Offset of each tiny bin's base array from [`TINY_BASE_OFF`], and their total length
/// (entry `NTINY`), in pointers.
const TINY_BASE_AT: [usize; NTINY + 1] = {
    let mut t = [0usize; NTINY + 1];
    let mut c = 0;
    while c < NTINY {
        t[c + 1] = t[c] + LIMITS[c] as usize;
        c += 1;
    }
    t
};

/// Where the tiny bins' big arrays start in the mapping (page-aligned).
const BIG_SLOTS_OFF: usize = (TINY_BASE_OFF + TINY_BASE_AT[NTINY] * 8).next_multiple_of(4096);

/// Block-array mappings of exited threads, kept for the next threads to start (a thread
/// churn makes no system call per thread); at most [`SPARE_MAPS`], the rest unmapped.
struct SpareMaps {
    n: usize,
    maps: [*mut u8; SPARE_MAPS],
}

/// Most block-array mappings kept for later threads.
const SPARE_MAPS: usize = 64;

// SAFETY: the mappings belong to whoever holds the lock around them.
unsafe impl Send for SpareMaps {}

static SPARES: Locked<SpareMaps> = Locked::new(SpareMaps {
    n: 0,
    maps: [core::ptr::null_mut(); SPARE_MAPS],
});

/// A block-array mapping for a starting thread: an exited thread's, else a new one
/// (null when the OS refuses it).
fn take_slots_map() -> *mut u8 {
    {
        let mut g = SPARES.lock();
        if g.n > 0 {
            g.n -= 1;
            let n = g.n;
            return g.maps[n];
        }
    }
    hakmem_os_stats::os::map(SLOTS_BYTES)
}

/// Give back an exiting thread's block-array mapping (no bin uses it any more).
///
/// # Safety
/// `p` is a mapping from [`take_slots_map`] that nothing uses any more.
unsafe fn give_slots_map(p: *mut u8) {
    {
        let mut g = SPARES.lock();
        if g.n < SPARE_MAPS {
            let n = g.n;
            g.maps[n] = p;
            g.n += 1;
            return;
        }
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { hakmem_os_stats::os::unmap(p, SLOTS_BYTES) };
}

/// Byte offset of bin `cls`'s first array in the thread's mapping (a tiny bin's base
/// array holds `LIMITS[cls]` pointers, a mid bin's `MID_SLOTS`).
const fn slots_offset(cls: usize) -> usize {
    if cls >= NTINY {
        (cls - NTINY) * MID_SLOTS * 8
    } else {
        TINY_BASE_OFF + TINY_BASE_AT[cls] * 8
    }
}

/// Byte offset of tiny bin `cls`'s big array (`TINY_SLOTS` pointers) in the mapping.
const fn big_slots_offset(cls: usize) -> usize {
    BIG_SLOTS_OFF + cls * TINY_SLOTS * 8
}

/// The pointers bin `cls`'s array holds now (`big`: the cache's mask of tiny bins on
/// their big arrays).
#[inline]
fn slots_cap(big: u32, cls: usize) -> u32 {
    if cls >= NTINY {
        MID_SLOTS as u32
    } else if big & (1 << cls) != 0 {
        TINY_SLOTS as u32
    } else {
        LIMITS[cls]
    }
}

/// The adaptive bounds of a thread's tiny bins, read and changed on slow paths only (the
/// fast path reads the bin's `limit`, which follows `bound`). A bin starts at its base
/// bound ([`limit_of`]); when the thread refills it after it overflowed since its last
/// refill (the thread's working set of the class is bigger than the bin, so blocks would
/// keep crossing the central lists both ways), its bound grows by what it gave back, at
/// most doubling, up to [`MAX_TINY_BOUND`] blocks, while the release policy's budget for
/// the thread lasts ([`tiny_growth_budget`](hakmem_release_policy::lean::tiny_growth_budget)).
/// Every [`GROWTH_DECAY_TICKS`](hakmem_release_policy::lean::GROWTH_DECAY_TICKS) tiny
/// slow-path events the next tiny bin (round robin) is visited: if it grew and did not
/// refill since its last visit, it gives half its growth back (all of it once what is
/// left is no more than its base), and the blocks it holds past its new bound go back to
/// the slabs. A flush request and thread exit give every
/// grown bound back.
///
/// Invariants (checked by [`Growth::check`] in debug builds): `bound[i] >= limit_of(i)`
/// once the thread is initialized; `grown` is the sum of `(bound[i] - limit_of(i)) *
/// block_size(i)` and never exceeds the budget; a bin holds at most its bound once a
/// decay visit or a flush has passed.
#[repr(C)]
struct Growth {
    /// Each tiny bin's normal bound now (0 before the thread's initialization).
    bound: [u32; NTINY],
    /// Blocks each tiny bin gave back by overflowing since its last refill.
    flushed: [u32; NTINY],
    /// Bytes the tiny bins grew past their bases, all together.
    grown: usize,
    /// Bit `i`: bin `i` refilled since the decay last visited it.
    refilled: u32,
    /// Tiny slow-path events since the last decay visit.
    ticks: u32,
    /// The bin the next decay visit looks at.
    next: u32,
}

const _: () = assert!(NTINY <= 32, "Growth::refilled is a 32-bit mask");

/// Most blocks a tiny bin grows to.
pub const MAX_TINY_BOUND: u32 = 4096;

impl Growth {
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: Growth = Growth {
        bound: [0; NTINY],
        flushed: [0; NTINY],
        grown: 0,
        refilled: 0,
        ticks: 0,
        next: 0,
    };

    /// Every bound at its base, nothing grown.
    fn reset(&mut self) {
        *self = Growth::ZERO;
        self.bound = LIMITS;
    }

    #[cfg(debug_assertions)]
    fn check(&self) {
        let mut sum = 0usize;
        for (i, (&b, &base)) in self.bound.iter().zip(LIMITS.iter()).enumerate() {
            debug_assert!(
                b >= base && b <= MAX_TINY_BOUND.max(base),
                "bin {i}: bound {b}"
            );
            sum += (b - base) as usize * block_size(i);
        }
        debug_assert_eq!(sum, self.grown, "grown bytes disagree with the bounds");
        debug_assert!(
            self.grown <= hakmem_release_policy::lean::tiny_growth_budget(false),
            "grown past the budget"
        );
    }
}

/// Flush requests for every thread's cache ([`request_flush_all`]): each thread compares
/// it with the last one it honoured at its slow paths (never on the fast path) and, when
/// it moved, gives its whole cache back first. An epoch rather than a flag per thread:
/// a request is one atomic add, whatever the number of threads, and a thread that
/// registers later has nothing to honour.
static FLUSH_EPOCH: AtomicU32 = AtomicU32::new(0);

/// Ask every thread to give its cached blocks back to the slabs: each does at its next
/// slow path (a bin that misses or overflows); the calling thread too. A thread that
/// makes no more calls keeps its cache until it exits.
pub fn request_flush_all() {
    FLUSH_EPOCH.fetch_add(1, Relaxed);
}

/// At a slow path: honour a flush request made since this thread last looked.
#[inline]
fn honour_flush_request() {
    let epoch = FLUSH_EPOCH.load(Relaxed);
    with_cache(|c| {
        if c.flush_seen != epoch {
            c.flush_seen = epoch;
            if c.state == State::Active {
                // SAFETY: `bins[i]` holds class `i`.
                unsafe { drain_all(&mut c.bins, 0, false) };
                // Every grown bound back to its base.
                c.growth.reset();
                for (b, &limit) in c.bins.iter_mut().zip(LIMITS.iter()) {
                    if b.limit() > limit {
                        // SAFETY: a bound below the current one fits the array.
                        unsafe { b.set_limit(limit) };
                    }
                }
            }
        }
    })
}

/// The calling thread's cache, by the initial-exec TLS model: a zero-filled `.tbss`
/// symbol of the size of a [`Cache`] (an all-zero `Cache` is the `Uninit` one: null
/// heads, counts and limits 0, no node, state 0), reached with `mov
/// sym@GOTTPOFF(%rip), %reg; add %fs:0, %reg`. Rust's `thread_local!` in a shared
/// object uses descriptors or `__tls_get_addr` (a call per access, docs/c-abi.md "The
/// TLS model"); `-Z tls-model` is unstable, so the access is written by hand. In an
/// executable the linker turns the GOT load into a constant (local exec); in a shared
/// object it gets one `R_X86_64_TPOFF64` and the flag `DF_STATIC_TLS` (a late
/// `dlopen` takes the block from glibc's static TLS surplus, or fails cleanly). With
/// the feature `initial-exec-tls` only (`hakmem-preload` turns it on): in an executable
/// `thread_local!` is local exec, which the compiler folds into the accesses.
#[cfg(hakmem_ie_tls)]
mod tls {
    use super::{Cache, State};

    // The zero-filled image must be the `Uninit` cache (`Bin::EMPTY` is all zero too: a
    // new thread's first call misses, `tests::first_call_misses_then_hits`).
    const _: () = {
        assert!(State::Uninit as u8 == 0);
        assert!(core::mem::align_of::<Cache>() <= 64);
    };

    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 6",
        ".globl __hakmem_tiny_fast_cache",
        ".hidden __hakmem_tiny_fast_cache",
        ".type __hakmem_tiny_fast_cache,@object",
        ".size __hakmem_tiny_fast_cache, {size}",
        "__hakmem_tiny_fast_cache:",
        ".zero {size}",
        ".popsection",
        size = const core::mem::size_of::<Cache>(),
    );

    /// The calling thread's cache (two instructions; one in an executable).
    #[inline(always)]
    pub(super) fn cache() -> *mut Cache {
        let p: *mut Cache;
        // SAFETY: reads the thread pointer (`%fs:0`, the TCB's pointer to itself, as the
        // x86_64 TLS ABI defines it) and the GOT slot of a TLS offset the dynamic
        // linker (or the static linker) filled in; writes only the output register.
        // `pure, nomem`: the result is the same for every call on a thread.
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr [rip + __hakmem_tiny_fast_cache@GOTTPOFF]",
                "add {p}, qword ptr fs:[0]",
                p = out(reg) p,
                options(pure, nomem, nostack),
            );
        }
        p
    }
}

/// The portable variant: Rust's `thread_local!` (`const`-initialized, no `Drop`).
#[cfg(not(hakmem_ie_tls))]
mod tls {
    use super::{Bin, Cache, Growth, NCLASS, State};
    use core::cell::UnsafeCell;

    thread_local! {
        static CACHE: UnsafeCell<Cache> = const {
            UnsafeCell::new(Cache {
                bins: [const { Bin::EMPTY }; NCLASS],
                node: core::ptr::null_mut(),
                state: State::Uninit,
                flush_seen: 0,
                growth: Growth::ZERO,
                slots: core::ptr::null_mut(),
                big: 0,
                growth_seen: 0,
                warm: 0,
                refilled: 0,
            })
        };
    }

    /// The calling thread's cache.
    #[inline(always)]
    pub(super) fn cache() -> *mut Cache {
        CACHE.with(|c| c.get())
    }
}

/// The process's one registry of thread caches (one node per thread).
static REGISTRY: CacheRegistry = CacheRegistry::new();

/// Blocks and bytes held by every thread's cache now, all classes (for stats; takes the
/// registry lock, never touches a fast path).
pub fn cached() -> (u64, u64) {
    REGISTRY.cached()
}

/// Blocks cached in every thread's cache, per class, added into `out[class]`.
pub fn cached_by_class(out: &mut [u64]) {
    REGISTRY.cached_by_class(out)
}

/// Fork handler (`pthread_atfork` prepare): take the registry lock.
///
/// # Safety
/// Only in a fork-prepare handler, paired with [`fork_release`] in the parent's handler
/// and [`fork_child`] in the child's; the calling thread is not inside this box (it is
/// in `fork`).
pub unsafe fn fork_prepare() {
    // SAFETY: forwarded caller guarantee.
    unsafe {
        REGISTRY.fork_prepare();
        SPARES.fork_lock();
    }
}

/// Fork handler for the parent: release the registry lock.
///
/// # Safety
/// The calling thread took the lock with [`fork_prepare`] (in the same `fork`) and has
/// not released it since.
pub unsafe fn fork_release() {
    // SAFETY: forwarded caller guarantee.
    unsafe {
        SPARES.fork_unlock();
        REGISTRY.fork_release();
    }
}

/// Fork handler for the child: the registry keeps only the calling (forking) thread's
/// cache; the other threads do not exist in the child. Then the lock is released.
///
/// # Safety
/// Called once in the child of a `fork`, by its only thread, which took the lock with
/// [`fork_prepare`] before the fork and has not released it since.
pub unsafe fn fork_child() {
    let own = with_cache(|c| c.node);
    // SAFETY: forwarded caller guarantee; `own` is this thread's registered node or
    // null.
    unsafe {
        SPARES.fork_unlock();
        REGISTRY.fork_child(own);
    }
}

/// [`limit_of`] for every tiny class, computed at compile time (no division at run time).
const LIMITS: [u32; NTINY] = {
    let mut t = [0u32; NTINY];
    let mut c = 0;
    while c < NTINY {
        t[c] = limit_of(c);
        c += 1;
    }
    t
};

/// Most blocks a thread keeps per tiny class: 32 KiB of blocks, between 32 and 256 (a
/// refill or flush moves half of it, so a burst of 16 frees or allocations never locks
/// twice). (Lean mode keeps the same bounds: a smaller cache was measured to save
/// nothing once a shrinking class shrinks the bins, results/002, and cost threaded
/// workloads.) The mid classes' bounds are `hakmem-mid`'s.
pub const fn limit_of(cls: usize) -> u32 {
    let n = (32 * 1024) / block_size(cls);
    if n < 32 {
        32
    } else if n > 256 {
        256
    } else {
        n as u32
    }
}

/// The normal bound of the bin of class `cls` (0 for a class that is not a slab class).
#[inline]
fn limit_at(cls: usize) -> u32 {
    match LIMITS.get(cls) {
        Some(&l) => l,
        None => hakmem_mid::limit_at(cls),
    }
}

#[inline(always)]
fn with_cache<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    // SAFETY: the cache is only touched by its own thread, and no reference to it
    // outlives this call or is created re-entrantly (nothing inside calls back here).
    f(unsafe { &mut *tls::cache() })
}

/// The fast path of an allocation of `size <= TINY_MAX` bytes: a block from the
/// thread's bin, or null on a miss (then call [`alloc_slow`]).
#[inline(always)]
pub fn try_alloc(size: usize) -> *mut u8 {
    with_cache(|c| match bin_of_size(c, size) {
        // SAFETY: `bin_of_size` gives a bin of `c`.
        Some(b) => unsafe { (*b).pop() },
        None => core::ptr::null_mut(),
    })
}

/// `BIN_AT[size]` (`size <= TINY_MAX`): the byte offset in a [`Cache`] of the bin of
/// `size`'s class. Indexed by the size itself, so the fast path spends no instruction
/// on rounding it or on scaling a class number (2 KiB, read-only).
static BIN_AT: [u16; TINY_MAX + 1] = {
    let mut t = [0u16; TINY_MAX + 1];
    let mut size = 0;
    while size <= TINY_MAX {
        let off = core::mem::offset_of!(Cache, bins)
            + class::class_of(size) * core::mem::size_of::<Bin>();
        assert!(off <= u16::MAX as usize);
        t[size] = off as u16;
        size += 1;
    }
    t
};

/// The bin of the class of `size` in `c` (None above `TINY_MAX`).
#[inline(always)]
fn bin_of_size(c: &mut Cache, size: usize) -> Option<*mut Bin> {
    let off = *BIN_AT.get(size)?;
    // SAFETY: `off` is the offset of an element of `c.bins` (the table's construction).
    Some(unsafe {
        core::ptr::from_mut(c)
            .cast::<u8>()
            .add(off as usize)
            .cast::<Bin>()
    })
}

/// [`try_alloc`] by class (any class below `NCLASS`; other values miss).
#[inline(always)]
pub fn try_alloc_class(cls: usize) -> *mut u8 {
    with_cache(|c| match c.bins.get_mut(cls) {
        Some(b) => b.pop(),
        None => core::ptr::null_mut(),
    })
}

/// The fast path of a free: keep `p` in the thread's bin of the class of `size`; false
/// on a miss (then call [`free_slow`]).
///
/// # Safety
/// `p` was returned by this box for a request of `size <= TINY_MAX` bytes (any size of
/// the same class) and is not used any more.
#[inline(always)]
pub unsafe fn try_free(p: *mut u8, size: usize) -> bool {
    with_cache(|c| match bin_of_size(c, size) {
        // SAFETY: a bin of `c`, of `p`'s class; the caller gives `p` up.
        Some(b) => unsafe { (*b).push(p) },
        None => false,
    })
}

/// [`try_free`] by class (any class below `NCLASS`; other values miss).
///
/// # Safety
/// `p` was returned by this box for class `cls` and is not used any more.
#[inline(always)]
pub unsafe fn try_free_class(p: *mut u8, cls: usize) -> bool {
    with_cache(|c| match c.bins.get_mut(cls) {
        // SAFETY: the caller gives `p` up.
        Some(b) => unsafe { b.push(p) },
        None => false,
    })
}

/// [`try_free_class`] with the class given as the byte offset of its bin in an array of
/// bins indexed by class (`cls * size_of::<Bin>()`, as
/// `hakmem_ss_allocation::validate_bin_in_superslab` gives it): the C `free`'s push,
/// without scaling the class. Offsets past the last class miss.
///
/// # Safety
/// `p` was returned by this box for the class of that bin and is not used any more.
#[inline(always)]
pub unsafe fn try_free_bin(p: *mut u8, bin_offset: usize) -> bool {
    with_cache(|c| {
        if bin_offset >= NCLASS * core::mem::size_of::<Bin>() {
            return false;
        }
        // SAFETY: `bin_offset` is the offset of an element of `c.bins` (checked above; the
        // offsets of `bins` are multiples of its element size by the caller's contract).
        let b = unsafe {
            core::ptr::from_mut(c)
                .cast::<u8>()
                .add(core::mem::offset_of!(Cache, bins) + bin_offset)
                .cast::<Bin>()
        };
        // SAFETY: the caller gives `p`, a block of this bin's class, up.
        unsafe { (*b).push(p) }
    })
}

/// The thread's state.
pub fn thread_state() -> State {
    with_cache(|c| c.state)
}

hakmem_os_stats::weak_symbol_address! {
    /// The address of `hakmem_wraps_pthread_create`, which `libhakmem.so` defines beside
    /// its `pthread_create` wrapper; null in a process without it.
    fn hakmem_tiny_fast_wrapper_marker_v0() = "hakmem_wraps_pthread_create";
}

/// Whether the process has `libhakmem.so`'s `pthread_create` wrapper, which sets every
/// thread it starts up (this box's [`thread_init`]) before the thread runs its own code:
/// then threads are armed on an exit key at the lowest free index
/// (`bins::ExitKey::use_low_key`), and no process pays the 1,024 `pthread_key_create`
/// calls of finding the highest. Read by each thread's set-up (a GOT load), so that it
/// holds from the process's first allocation whatever constructor makes it
/// (libstdc++'s allocates before `libhakmem.so`'s runs).
fn exit_key_low() -> bool {
    !hakmem_tiny_fast_wrapper_marker_v0().is_null()
}

/// Initialize the calling thread's cache (limits on, exit hook armed, registry node).
/// Returns true if this call did it (false if the thread was already initialized or is
/// exiting).
pub fn thread_init() -> bool {
    // Turn caching on before anything that may re-enter the allocator (arming the exit
    // key makes glibc calloc 512 bytes: the key's index is above 31): a re-entrant
    // call then sees an initialized thread. No reference to the cache is held across
    // those calls.
    let first = with_cache(|c| {
        if c.state != State::Uninit {
            return false;
        }
        // The block arrays first: no bin caches before it has one (and a thread the OS
        // gives no memory for them caches nothing).
        let slots = take_slots_map();
        if slots.is_null() {
            c.state = State::Dead;
            return true;
        }
        c.slots = slots;
        c.big = 0;
        for (cls, b) in c.bins.iter_mut().enumerate() {
            // SAFETY: bin `cls`'s own part of the thread's mapping, `slots_cap(0, cls)`
            // pointers long, unmapped only at thread exit after the bins stop caching.
            unsafe { b.set_slots(slots.add(slots_offset(cls)).cast()) };
        }
        let (tiny, mid) = c.bins.split_at_mut(NTINY);
        for (b, &limit) in tiny.iter_mut().zip(LIMITS.iter()) {
            // SAFETY: a tiny bin's base array holds exactly its base bound.
            unsafe { b.set_limit(limit) };
        }
        c.growth.reset();
        for (b, &limit) in mid.iter_mut().zip(hakmem_mid::limits().iter()) {
            debug_assert!(limit as usize <= MID_SLOTS);
            // SAFETY: a mid bin's array holds `MID_SLOTS` pointers (clamped: the mid
            // policy's bounds are at most that, const-asserted above).
            unsafe { b.set_limit(limit.min(MID_SLOTS as u32)) };
        }
        for (cls, b) in c.bins.iter_mut().enumerate() {
            // SAFETY: bin `cls` holds class `cls`.
            unsafe { b.set_block_size(block_size(cls)) };
        }
        c.state = State::Active;
        c.flush_seen = FLUSH_EPOCH.load(Relaxed);
        true
    });
    if !first {
        return false;
    }
    // The exit hook first (it may allocate, see above), then the registry node: the
    // hook unregisters whatever node the thread has when it runs.
    if exit_key_low() {
        THREAD_EXIT.use_low_key();
    }
    let ok = THREAD_EXIT.register_current_thread(on_thread_exit)
        && with_cache(|c| {
            // SAFETY: the thread-local bins do not move, and the exit hook (armed above)
            // unregisters the node before the thread's storage goes away.
            c.node = unsafe { REGISTRY.register(c.bins.as_ptr(), NCLASS, 0) };
            !c.node.is_null()
        });
    if !ok {
        // No exit hook (the key could not be created or set) or no registry node: a
        // cache would outlive the thread, or escape the stats. Cache nothing instead.
        with_cache(|c| {
            stop_caching(c);
            c.state = State::Dead;
        });
    }
    true
}

/// Give every cached block back, cache nothing from now on (limits 0), and unmap the
/// block arrays.
fn stop_caching(c: &mut Cache) {
    // SAFETY: `bins[i]` holds class `i`.
    unsafe { drain_all(&mut c.bins, 0, true) };
    if !c.slots.is_null() {
        // (With the registry's lock: the cache may be registered, and stats must not
        // read a bin halfway through.)
        REGISTRY.exclusive(|| {
            for b in c.bins.iter_mut() {
                // SAFETY: the bin is empty with limit 0: it never touches an array again.
                unsafe { b.set_slots(core::ptr::null_mut()) };
            }
        });
        // SAFETY: our mapping, which no bin uses any more.
        unsafe { give_slots_map(c.slots) };
        c.slots = core::ptr::null_mut();
    }
}

/// The slow path of an allocation of `size <= TINY_MAX` bytes: initializes the thread
/// if needed, then refills. Null when out of memory.
#[cold]
#[inline(never)]
pub fn alloc_slow(size: usize) -> *mut u8 {
    alloc_slow_class(class::tiny_class(size))
}

/// [`alloc_slow`] by class, any class (null for a value that is not a slab class).
#[cold]
#[inline(never)]
pub fn alloc_slow_class(cls: usize) -> *mut u8 {
    if thread_state() == State::Uninit {
        thread_init();
    }
    honour_flush_request();
    with_cache(|c| {
        if cls < NTINY && c.bins[cls].is_empty() {
            grow_on_refill(c, cls);
            decay_tick(c);
        }
        let bound = bound_of(c, cls);
        let warm = &mut c.warm;
        let p = match c.bins.get_mut(cls) {
            Some(b) => {
                let mut most = usize::MAX;
                if b.is_empty() && *warm & (1 << cls) == 0 {
                    *warm |= 1 << cls;
                    most = FIRST_REFILL_BYTES / block_size(cls);
                }
                // SAFETY: the bin of class `cls` holds class `cls`.
                unsafe { b.pop_or_refill_upto(cls, bound, most) }
            }
            None => return core::ptr::null_mut(),
        };
        c.refilled |= 1 << cls;
        if c.growth_seen != hakmem_ss_allocation::pool_growth() as u32 {
            give_back_idle_bins(c);
        }
        p
    })
}

/// The pool grew since this thread last looked (`hakmem_ss_allocation::pool_growth`: a
/// slab used for the first time, past the pool's high-water mark, by some class of some
/// thread): every bin of a pool class that holds all the blocks of its class that are
/// out (none in use, none in another thread's cache; a class of two slabs or more, whose
/// bin did not refill since the last look) gives them straight back to their slabs (not
/// to the transfer cache), and the class's transfer cache follows: the class's slabs
/// then empty into the pool, for the class that grows, instead of fresh pages
/// (results/225: a program that moves from one size of blocks to the next held every
/// size's peak). A class with a block in use anywhere keeps its bin: the look costs a
/// busy class nothing. Looks follow the pool's growth (one 64 KiB slab each at most); a
/// steady program makes none.
#[cold]
#[inline(never)]
fn give_back_idle_bins(c: &mut Cache) {
    c.growth_seen = hakmem_ss_allocation::pool_growth() as u32;
    let refilled = core::mem::take(&mut c.refilled);
    if c.state != State::Active {
        return;
    }
    for (cls, b) in c.bins.iter_mut().enumerate() {
        let n = u64::from(b.count());
        if n != 0
            && refilled & (1 << cls) == 0
            && hakmem_ss_allocation::is_pool_class(cls)
            && hakmem_ss_allocation::class_counts(cls).0 == n
            && hakmem_ss_allocation::class_slabs(cls) >= hakmem_ss_allocation::IDLE_MIN_SLABS
        {
            // SAFETY: bin `cls` holds class `cls`.
            unsafe { b.drain_to_slabs(cls) };
            hakmem_ss_allocation::give_back_idle_class(cls);
        }
    }
}

/// The normal bound of bin `cls` now: a tiny bin's grown bound, else its base.
#[inline]
fn bound_of(c: &Cache, cls: usize) -> u32 {
    // (Never past the bin's array: a bound above the base is a big array's, which stops
    // at `TINY_SLOTS`, and a mid bound is at most `MID_SLOTS`, const-asserted; clamped
    // all the same.)
    let cap = slots_cap(c.big, cls);
    match c.growth.bound.get(cls) {
        Some(&b) if b != 0 => b.min(cap),
        _ => limit_at(cls).min(cap),
    }
}

/// The tiny bin `cls` is empty and about to refill: if it overflowed since its last
/// refill, grow its bound (see [`Growth`]).
fn grow_on_refill(c: &mut Cache, cls: usize) {
    let g = &mut c.growth;
    let flushed = core::mem::take(&mut g.flushed[cls]);
    g.refilled |= 1 << cls;
    let cur = g.bound[cls];
    if flushed == 0 || c.state != State::Active || cur == 0 {
        return;
    }
    let bs = block_size(cls);
    let budget = hakmem_release_policy::lean::tiny_growth_budget_now();
    let add = flushed
        .min(cur)
        .min(MAX_TINY_BOUND.saturating_sub(cur))
        .min((budget.saturating_sub(g.grown) / bs) as u32);
    if add > 0 {
        g.bound[cls] = cur + add;
        g.grown += add as usize * bs;
        let b = &mut c.bins[cls];
        if c.big & (1 << cls) == 0 {
            // The first growth past the base: the bin (empty, about to refill) moves to
            // its big array, for good (until the thread's mapping goes to another).
            debug_assert!(b.is_empty(), "a bin moved to its big array with blocks");
            // SAFETY: the bin's big array, `TINY_SLOTS` pointers of the thread's
            // mapping that nothing else uses, unmapped only after the bins stop caching.
            // (With the registry's lock: stats must not read the bin halfway through.)
            let big = unsafe { c.slots.add(big_slots_offset(cls)).cast() };
            // SAFETY: as above.
            REGISTRY.exclusive(|| unsafe { b.set_slots(big) });
            c.big |= 1 << cls;
        }
        // (A bin shrunk by lean mode gets its bound back at its refill.)
        if b.limit() == cur {
            // SAFETY: at most `MAX_TINY_BOUND`, the size of a tiny bin's big array, on
            // which the bin is now.
            unsafe { b.set_limit(cur + add) };
        }
    }
    #[cfg(debug_assertions)]
    c.growth.check();
}

/// A tiny slow-path event: every `GROWTH_DECAY_TICKS`, visit the next tiny bin; if it
/// grew and did not refill since the last visit, it gives half its growth back and
/// its blocks past the new bound (see [`Growth`]).
fn decay_tick(c: &mut Cache) {
    let g = &mut c.growth;
    g.ticks += 1;
    if g.ticks < hakmem_release_policy::lean::GROWTH_DECAY_TICKS {
        return;
    }
    g.ticks = 0;
    let j = g.next as usize % NTINY;
    g.next = ((j + 1) % NTINY) as u32;
    let used = g.refilled & (1 << j) != 0;
    g.refilled &= !(1 << j);
    let (cur, base) = (g.bound[j], LIMITS[j]);
    if used || cur <= base || c.state != State::Active {
        return;
    }
    // Half the growth back; the last of it (no more than the base) all at once.
    let new = if cur - base <= base {
        base
    } else {
        base + (cur - base) / 2
    };
    g.grown -= (cur - new) as usize * block_size(j);
    g.bound[j] = new;
    let b = &mut c.bins[j];
    if b.limit() > new {
        // SAFETY: a lower bound fits the array.
        unsafe { b.set_limit(new) };
    }
    // SAFETY: bin `j` holds class `j`.
    unsafe { b.trim_to(j, new) };
    #[cfg(debug_assertions)]
    c.growth.check();
}

/// The slow path of a free: initializes the thread if needed, then keeps `p` and gives
/// half of a full bin back to the slabs.
///
/// # Safety
/// As [`try_free`].
#[cold]
#[inline(never)]
pub unsafe fn free_slow(p: *mut u8, size: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_slow_class(p, class::tiny_class(size)) }
}

/// [`free_slow`] by class, any class.
///
/// # Safety
/// As [`try_free_class`].
#[cold]
#[inline(never)]
pub unsafe fn free_slow_class(p: *mut u8, cls: usize) {
    if thread_state() == State::Uninit {
        thread_init();
    }
    honour_flush_request();
    with_cache(|c| {
        let bound = bound_of(c, cls);
        if let Some(b) = c.bins.get_mut(cls) {
            let before = b.count();
            // SAFETY: the caller gives `p` up.
            unsafe { b.push_or_overflow(cls, p, bound) }
            let after = b.count();
            if after <= before && cls < NTINY {
                // It overflowed: `before + 1 - after` blocks went back.
                let f = &mut c.growth.flushed[cls];
                *f = f.saturating_add(before + 1 - after);
                decay_tick(c);
            }
        }
    })
}

/// Allocate a tiny block of `size <= TINY_MAX` bytes (16-byte aligned; blocks of
/// power-of-two size are aligned to their size). Null when out of memory.
#[inline(always)]
pub fn tiny_alloc(size: usize) -> *mut u8 {
    let p = try_alloc(size);
    if !p.is_null() { p } else { alloc_slow(size) }
}

/// Free a block from [`tiny_alloc`].
///
/// # Safety
/// As [`try_free`].
#[inline(always)]
pub unsafe fn tiny_free(p: *mut u8, size: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe {
        if !try_free(p, size) {
            free_slow(p, size);
        }
    }
}

/// Allocate a block of class `cls` (any slab class; the facade uses it for the mid
/// classes). Null when out of memory or `cls` is not a slab class.
#[inline]
pub fn cache_alloc(cls: usize) -> *mut u8 {
    let p = try_alloc_class(cls);
    if !p.is_null() {
        p
    } else {
        alloc_slow_class(cls)
    }
}

/// Free a block from [`cache_alloc`] (or any block of class `cls` from this box).
///
/// # Safety
/// As [`try_free_class`].
#[inline]
pub unsafe fn cache_free(p: *mut u8, cls: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe {
        if !try_free_class(p, cls) {
            free_slow_class(p, cls);
        }
    }
}

/// Give every block cached by the calling thread (all classes) back to the slabs.
pub fn thread_flush() {
    with_cache(|c| {
        // SAFETY: `bins[i]` holds class `i`.
        unsafe { drain_all(&mut c.bins, 0, false) };
    })
}

/// Fill the calling thread's bin of class `cls` (below `NCLASS`) with up to `n` blocks
/// (at most its limit); initializes the thread first. False when out of memory or `cls`
/// is not a slab class.
pub fn prewarm(cls: usize, n: u32) -> bool {
    if cls >= NCLASS {
        return false;
    }
    thread_init();
    // SAFETY: the bin of class `cls` holds class `cls`.
    with_cache(|c| unsafe { c.bins[cls].fill_to(cls, n) })
}

/// The calling thread's bound on the bin of class `cls` now (its `limit`: 0 before the
/// thread's first call, after its exit, or for a value that is not a slab class): a
/// tiny bin's bound adapts (see the crate docs, "adaptive bounds").
pub fn bin_limit(cls: usize) -> u32 {
    with_cache(|c| c.bins.get(cls).map_or(0, Bin::limit))
}

/// Bytes by which the calling thread's tiny bins grew past their base bounds, all
/// together (at most the release policy's `tiny_growth_budget`).
pub fn thread_grown_bytes() -> usize {
    with_cache(|c| c.growth.grown)
}

/// Blocks cached by the calling thread (all classes).
pub fn thread_cached_blocks() -> u64 {
    with_cache(|c| c.bins.iter().map(|b| b.count() as u64).sum())
}

/// The thread-exit hook (run by the process's exit key, `THREAD_EXIT`, also on threads
/// that never used this box): give every cached block back, leave the registry, and
/// cache nothing from now on (state `Dead`, also for a thread that was `Uninit`: a later
/// call on this thread, from another destructor, must not start a cache).
fn on_thread_exit() {
    with_cache(|c| {
        stop_caching(c);
        if !c.node.is_null() {
            // SAFETY: registered by `thread_init`, not unregistered since.
            unsafe { REGISTRY.unregister(c.node) };
            c.node = core::ptr::null_mut();
        }
        c.state = State::Dead;
    })
}

/// Thread caches registered now (one per live thread that used this box; for tests).
pub fn registered_caches() -> usize {
    REGISTRY.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::vec::Vec;

    /// `n` blocks of class `cls` allocated, then all freed, `rounds` times.
    fn churn(cls: usize, n: usize, rounds: usize) {
        let mut v = Vec::with_capacity(n);
        for _ in 0..rounds {
            for _ in 0..n {
                let p = cache_alloc(cls);
                assert!(!p.is_null());
                v.push(p);
            }
            for p in v.drain(..) {
                // SAFETY: from cache_alloc(cls).
                unsafe { cache_free(p, cls) };
            }
        }
    }

    /// Pages of the calling thread's block-array mapping that are resident (`mincore`).
    fn resident_slot_pages() -> usize {
        resident_slot_pages_in(0, SLOTS_BYTES)
    }

    /// Resident pages of `len` bytes from byte `off` (page-aligned) of the calling
    /// thread's block-array mapping.
    fn resident_slot_pages_in(off: usize, len: usize) -> usize {
        let base = with_cache(|c| c.slots);
        assert!(!base.is_null());
        assert!(off.is_multiple_of(4096) && off + len <= SLOTS_BYTES);
        let mut vec = std::vec![0u8; len.div_ceil(4096)];
        // SAFETY: `base + off` is page-aligned inside the thread's mapping of
        // `SLOTS_BYTES`; `vec` has a byte per page of the range.
        let r = unsafe { libc::mincore(base.add(off).cast(), len, vec.as_mut_ptr()) };
        assert_eq!(r, 0);
        vec.iter().filter(|&&v| v & 1 != 0).count()
    }

    /// A thread that uses every tiny class, each within its base bound, touches the
    /// packed base arrays only: a few pages, not one per class (with 32 KiB of array per
    /// tiny bin it touched 20). A bin that grows moves to its big array, keeping its
    /// blocks' order and bound.
    #[test]
    fn base_arrays_are_packed_and_a_grown_bin_moves_to_its_big_array() {
        std::thread::spawn(|| {
            // The thread's mapping may be an exited thread's (pages of it resident):
            // start from none (every bin is empty, so the arrays hold nothing).
            assert!(thread_init());
            let (base, empty) = with_cache(|c| (c.slots, c.bins.iter().all(|b| b.count() == 0)));
            assert!(empty);
            // SAFETY: the thread's own mapping, which holds no block now.
            let r = unsafe { libc::madvise(base.cast(), SLOTS_BYTES, libc::MADV_DONTNEED) };
            assert_eq!(r, 0);
            assert_eq!(resident_slot_pages(), 0);
            for cls in 0..NTINY {
                // Half the base bound: one refill's worth, never an overflow.
                churn(cls, limit_of(cls) as usize / 2, 2);
            }
            let pages = resident_slot_pages();
            // The base arrays' bytes, packed, and a page for their misalignment.
            let base_bytes: usize = LIMITS.iter().map(|&l| l as usize * 8).sum();
            let packed = base_bytes.div_ceil(4096) + 1;
            assert!(
                pages <= packed,
                "{pages} pages of block arrays resident for {NTINY} tiny bins (packed: {packed})"
            );
            assert_eq!(with_cache(|c| c.big), 0, "no bin grew");
            // Growth moves the bin to its big array.
            let cls = class::class_of(48);
            churn(cls, 1500, 8);
            assert_ne!(with_cache(|c| c.big) & (1 << cls), 0);
            assert!(bin_limit(cls) > limit_of(cls));
            assert!(
                resident_slot_pages_in(big_slots_offset(cls), TINY_SLOTS * 8) >= 2,
                "a grown bin's blocks are not in its big array"
            );
            assert!(with_cache(|c| c.bins[cls].count()) >= 1500);
        })
        .join()
        .unwrap();
    }

    /// A tiny bin whose class's working set is bigger than its bound overflows, then
    /// refills: it grows (at most doubling per refill) until the working set fits, so the
    /// blocks stop crossing the central lists; the growth is counted against the
    /// thread's budget.
    #[test]
    fn a_bin_that_overflows_then_refills_grows_to_its_working_set() {
        std::thread::spawn(|| {
            let cls = class::class_of(64);
            let base = limit_of(cls);
            churn(cls, 1, 1);
            assert_eq!(bin_limit(cls), base);
            churn(cls, 1500, 8);
            let grown = bin_limit(cls);
            assert!(
                grown >= 1500,
                "bound {grown} (base {base}) after 8 rounds of 1500"
            );
            assert_eq!(
                thread_grown_bytes(),
                (grown - base) as usize * block_size(cls)
            );
            // The whole working set now stays in the bin.
            assert!(with_cache(|c| c.bins[cls].count()) >= 1500);
        })
        .join()
        .unwrap();
    }

    /// A thread that only allocates a class (a producer) or only frees it (a consumer)
    /// does not grow its bin: growth needs an overflow followed by a refill.
    #[test]
    fn one_way_traffic_does_not_grow_a_bin() {
        let cls = class::class_of(128);
        let base = limit_of(cls);
        let (tx, rx) = std::sync::mpsc::channel::<usize>();
        let producer = std::thread::spawn(move || {
            for _ in 0..4000 {
                tx.send(cache_alloc(cls) as usize).unwrap();
            }
            assert_eq!(bin_limit(cls), base, "a producer's bin grew");
        });
        let consumer = std::thread::spawn(move || {
            churn(cls, 1, 1);
            for p in rx {
                // SAFETY: a block of class `cls` from the producer.
                unsafe { cache_free(p as *mut u8, cls) };
            }
            assert_eq!(bin_limit(cls), base, "a consumer's bin grew");
            assert_eq!(thread_grown_bytes(), 0);
        });
        producer.join().unwrap();
        consumer.join().unwrap();
    }

    /// The thread's budget caps the growth of all tiny bins together, and a flush request
    /// gives every grown bound back.
    #[test]
    fn growth_stays_within_the_budget_and_a_flush_request_resets_it() {
        std::thread::spawn(|| {
            let budget = hakmem_release_policy::lean::tiny_growth_budget_now();
            // 1 KiB and 512 B working sets of 3000 blocks: 4.5 MiB, more than 4 MiB.
            for size in [1024, 512, 1024, 512] {
                churn(class::class_of(size), 3000, 6);
                assert!(thread_grown_bytes() <= budget);
            }
            assert!(thread_grown_bytes() > budget / 2, "little growth");
            request_flush_all();
            churn(class::class_of(16), 1, 1); // a slow path honours it
            let c16 = class::class_of(16);
            let _ = cache_alloc(c16); // may hit; the next line makes sure of a slow path
            alloc_slow_class(class::class_of(1024));
            assert_eq!(thread_grown_bytes(), 0);
            for cls in 0..NTINY {
                assert_eq!(bin_limit(cls), limit_of(cls), "class {cls}");
            }
        })
        .join()
        .unwrap();
    }

    /// A grown bin that stops refilling gives its growth back, half per decay visit, and
    /// its blocks past the new bound go back to the slabs, while another class's slow
    /// paths tick the decay.
    #[test]
    fn a_grown_bin_left_alone_decays_to_its_base() {
        std::thread::spawn(|| {
            let cls = class::class_of(256);
            let base = limit_of(cls);
            churn(cls, 1200, 8);
            let grown = bin_limit(cls);
            assert!(grown >= 1200);
            assert_eq!(
                with_cache(|c| c.growth.bound[cls]),
                grown,
                "the bin follows its bound"
            );
            // Slow-path events of other classes (as their refills and overflows make them):
            // the first round of visits finds the bin refilled since the last one and
            // leaves it; the second halves its growth; a few more bring it to its base.
            let ticks = hakmem_release_policy::lean::GROWTH_DECAY_TICKS as usize;
            let round = ticks * NTINY;
            for _ in 0..round {
                with_cache(decay_tick);
            }
            assert_eq!(
                bin_limit(cls),
                grown,
                "a bin that refilled lately keeps its growth"
            );
            for _ in 0..round {
                with_cache(decay_tick);
            }
            let half = bin_limit(cls);
            assert_eq!(
                half,
                base + (grown - base) / 2,
                "one idle visit halves the growth"
            );
            assert!(with_cache(|c| c.bins[cls].count()) <= half);
            // Each idle visit halves what is left (log2 of the growth visits at most).
            for _ in 0..16 {
                for _ in 0..round {
                    with_cache(decay_tick);
                }
                assert!(with_cache(|c| c.bins[cls].count()) <= bin_limit(cls));
            }
            assert_eq!(bin_limit(cls), base, "the idle bin kept its growth");
            assert_eq!(thread_grown_bytes(), 0);
            let held = with_cache(|c| c.bins[cls].count());
            assert!(
                held <= base,
                "the idle bin holds {held} blocks past its bound {base}"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn first_call_misses_then_hits() {
        std::thread::spawn(|| {
            assert_eq!(thread_state(), State::Uninit);
            assert!(try_alloc(64).is_null());
            let p = tiny_alloc(64);
            assert!(!p.is_null());
            assert_eq!(thread_state(), State::Active);
            // SAFETY: p came from tiny_alloc(64).
            unsafe { tiny_free(p, 64) };
            let q = try_alloc(64);
            assert_eq!(p, q, "LIFO reuse on the fast path");
            // SAFETY: q came from this box.
            unsafe { assert!(try_free(q, 64)) };
        })
        .join()
        .unwrap();
    }

    #[test]
    fn many_blocks_every_size_distinct_and_writable() {
        let mut v = Vec::new();
        for round in 0..4 {
            for size in 0..=TINY_MAX {
                let p = tiny_alloc(size);
                assert!(!p.is_null());
                assert_eq!(p as usize % 16, 0);
                // SAFETY: p holds `size` bytes.
                unsafe { p.write_bytes((size + round) as u8, size) };
                v.push((p, size, round));
            }
        }
        for &(p, size, round) in &v {
            for i in 0..size {
                // SAFETY: p holds `size` bytes.
                assert_eq!(unsafe { *p.add(i) }, (size + round) as u8);
            }
        }
        for (p, size, _) in v {
            // SAFETY: from tiny_alloc(size).
            unsafe { tiny_free(p, size) };
        }
        for cls in 0..NTINY {
            assert!(with_cache(|c| c.bins[cls].count() <= c.bins[cls].limit()));
        }
    }

    #[test]
    fn every_mid_class_round_trips_through_the_same_cache() {
        std::thread::spawn(|| {
            let mut v = Vec::new();
            for cls in NTINY..NCLASS {
                for _ in 0..3 {
                    let p = cache_alloc(cls);
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
                // SAFETY: from cache_alloc(cls).
                unsafe { cache_free(p, cls) };
            }
            assert!(thread_cached_blocks() > 0);
            // The mid bins have the mid policy's bounds.
            for cls in NTINY..NCLASS {
                assert_eq!(
                    with_cache(|c| c.bins[cls].limit()),
                    hakmem_mid::limit_at(cls)
                );
            }
            thread_flush();
            assert_eq!(thread_cached_blocks(), 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn mid_alignment_up_to_64k() {
        for align in [32usize, 256, 4096, 65536] {
            let cls = hakmem_ss_allocation::class::class_for(3000, align).unwrap();
            let p = cache_alloc(cls);
            assert_eq!(p as usize % align, 0);
            // SAFETY: from cache_alloc(cls).
            unsafe { cache_free(p, cls) };
        }
        assert!(try_alloc_class(NCLASS).is_null());
        assert!(alloc_slow_class(NCLASS).is_null());
        assert!(cache_alloc(usize::MAX).is_null());
    }

    #[test]
    fn cross_thread_free_and_thread_exit_return_blocks() {
        let ptrs: Vec<usize> = std::thread::spawn(|| {
            (0..1000)
                .map(|i| tiny_alloc(1 + i % TINY_MAX) as usize)
                .collect()
        })
        .join()
        .unwrap();
        std::thread::spawn(move || {
            for (i, p) in ptrs.into_iter().enumerate() {
                // SAFETY: allocated above with this size, freed once.
                unsafe { tiny_free(p as *mut u8, 1 + i % TINY_MAX) };
            }
            assert!(thread_cached_blocks() > 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn prewarm_fills_up_to_limit() {
        std::thread::spawn(|| {
            assert!(prewarm(3, 1000));
            assert_eq!(thread_cached_blocks(), limit_of(3) as u64);
            thread_flush();
            assert_eq!(thread_cached_blocks(), 0);
            assert!(!prewarm(NCLASS, 1));
        })
        .join()
        .unwrap();
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
