//! # hakmem-ss-allocation: superslabs, slabs and size classes
//!
//! **Owns** the memory every slab-sized block lives in. A *superslab* is a 4 MiB region
//! aligned to 4 MiB, either one of the *pool*'s, whose 64 KiB slabs every class of 64 KiB
//! slabs and blocks up to a page takes one at a time ([`is_pool_class`]: 16 B to 4 KiB),
//! or dedicated to one bigger size class. Its first 64 KiB hold the header (its first two
//! pages, then the free bitmaps of the slabs in use, up to 40 KiB); the rest is cut into
//! *slabs* (64 KiB to 2 MiB, by class), each carved lazily into blocks. A
//! slab's free blocks are the set bits of its bitmap: nothing here links blocks or
//! reads their memory. Per class, a *central* list of slabs with free blocks is guarded
//! by one lock; thread caches (the boxes above) exchange batches of block pointers with
//! it: [`refill_into`] and [`flush_slice`]. For classes with 64 KiB slabs a *transfer
//! cache* keeps flushed blocks (arrays of pointers) and hands them to the next refill, so
//! a producer/consumer pair never touches slabs; it is split in [`XFER_SHARDS`] shards with
//! their own locks (the CPU's first), so it never takes the class lock (its code is the
//! private module `xfer`). It also owns the size-class table
//! ([`class`]), the thread-cache building blocks ([`bins`]: the bounded `Bin`, the
//! process's one thread-exit key at the highest pthread key index (or, for a library
//! that arms each thread as it starts it, a low one), the cache registry
//! for stats and fork with nodes outside threads' storage, double-free marks) and the
//! [`registry`] that tells whether an address is hakmem's.
//!
//! **Entry points**: [`refill_into`] (`ss_alloc_slab` of the design: blocks of a class,
//! from the transfer cache, a slab's bitmap, its uncarved rest or a new slab, into an
//! array of pointers), [`flush_slice`] (blocks back: to the transfer cache, or each to
//! its slab's bitmap); [`refill`] / [`refill_upto`] / [`flush`], the same for a chain
//! linked through the blocks (tests and examples); [`drain_transfer_caches`],
//! [`decay_idle_slabs`] (the decay of empty slabs left resident), [`pool_growth`] /
//! [`give_back_idle_class`] / [`flush_slice_to_slabs`] (what a thread cache gives back
//! of an idle class when the pool grows),
//! [`ss_lookup`] / [`validate_class`] (the superslab, slab and class of any block in
//! O(1)), [`class_counts`] (stats).
//!
//! **Gates**: none read directly. Every decision to give memory back is
//! `hakmem-release-policy`'s, which reads the lean-mode gates: empty superslabs go to it,
//! and its lean-mode rules ([`release::lean`]: which empty slab stays a committed spare,
//! when a class is shrinking, the transfer cache's bound) are asked here, with the
//! per-class state they need kept where it is cheapest to update (a
//! [`SlabSpares`](release::lean::SlabSpares) in the class's central state, a
//! [`ShrinkState`](release::lean::ShrinkState) beside its counters).
//!
//! **Features**: `double-free-check` (free marks, see [`bins`]) and `hardened` (a canary
//! and a keyed mark in each free block, derived from a per-process secret and checked as
//! the block is handed out; shuffled refills; guard pages after each superslab header's
//! pages). Both off: no code, no branch.
//! `cfg(hakmem_asan)` (set only by the AddressSanitizer build of `cargo xtask sanitize`):
//! free blocks are poisoned for ASan past their first words and unpoisoned as they are
//! handed out ([`asan`]); without it, no code.
//!
//! **Invariants**
//! - A block's superslab is `addr & !(SS_SIZE - 1)`; its slab index is
//!   `(addr - ss - SS_HEADER) >> slab_shift`. Both are O(1), without search.
//! - The layout does not depend on the OS page (4 to 64 KiB): superslabs, the header and
//!   slabs are multiples of 64 KiB at 64 KiB offsets (const-asserted), so nothing here
//!   reads the page size but the hardened guard set-up ([`header_guard`]) and the
//!   release policy's rounding of a decommit.
//! - `slab.used` counts the blocks handed out by a refill and not yet back in the slab's
//!   bitmap (in a user's hands, in a thread cache, or in the transfer cache); the set
//!   bits of a slab's bitmap are its `nfree` free carved blocks, none below word `scan`;
//!   a block returned while its bit is set aborts (a double free); a slab with `used == 0` is reset and returned to its superslab at
//!   once (lean mode decommits all but one spare of a class that churns: the release
//!   policy decides, see [`release::lean`]); a superslab with no slab in use is
//!   unregistered and handed to the release policy at once.
//! - An empty slab whose pages stay resident (every one outside lean mode's decommit,
//!   and a lean class's spares) is *idle*: its bit in `SuperSlab::idle_slabs`, the time
//!   it emptied in `idle_since` (under the class lock; idle slabs are free slabs). A new
//!   slab is a spare first, then an idle slab, then the lowest free one. The decay pass
//!   ([`decay_idle_slabs`]) decommits each slab idle past the release policy's interval
//!   ([`release::idle_slab_decay`]), after giving a transfer cache that no refill took
//!   from for that interval back to its slabs (its blocks would pin them: a finished
//!   thread pool's for good); the slabs that drain empties count as idle since the
//!   cache's last use.
//! - Every free bitmap of a superslab that is not in use (cached, or about to be set
//!   up) is zero: a slab clears its bits as it empties, a fresh mapping reads zero, and
//!   a superslab cut from a cached large mapping (`release::ss_take_cached`) has its
//!   header and every bitmap zeroed first.
//! - A live superslab is registered as `Kind::Superslab`; a cached one is not.
//! - A superslab is advised for transparent huge pages as it is set up for a class,
//!   before its header's first touch (`release::thp::advise_superslab`: its first 2 MiB
//!   sparse; its second half dense only for a class of blocks up to 4 KiB, whose slabs
//!   are carved in order; under `HAKMEM_THP=DENSE`, all of it when such a class has
//!   filled every superslab it has, 4 MiB of slabs in use), and the registry's table
//!   once mapped (sparse): on a host whose THP mode is `always`, no superslab makes
//!   2 MiB resident for a page used.
//! - Lock order: a class lock, then the pool lock, then the release-policy cache lock;
//!   a transfer-cache shard lock is a leaf (nothing is locked while it is held, and it is
//!   taken under a class lock or none). No class lock is held while another class lock is
//!   taken (except by [`fork_prepare`], in class order, then the pool lock).
//! - The pool: its superslabs' slab bits (`free_slabs`, `idle_slabs`, `idle_since`,
//!   `spare_slabs`) and avail list are the pool lock's; a pool slab in use is its class's
//!   (under that class's lock), and its class is written into its slab and its granule's
//!   validation-table entry as the class takes it, before its carved limit lets validation
//!   pass; an emptied pool slab goes back to the pool, idle (resident) like a class's.
//!   The pool hands out a spare or idle slab first, from any of its superslabs, before
//!   a fresh one. Each slab handed out for the first time counts in [`pool_growth`] (the
//!   pool's growth past its high-water mark); a refill that took one gives back the transfer cache of every *idle* pool class (no block out, in use or
//!   in a thread cache, and [`IDLE_MIN_SLABS`] slabs or more), whose slabs then empty
//!   into the pool before it grows again; a thread cache does the same for its bins
//!   ([`flush_slice_to_slabs`], [`give_back_idle_class`]).
//! - Every lock owns its data: a class's central state is a `Locked<Central>`
//!   (`CENTRAL[cls]`), a transfer-cache shard's block array a `Locked` beside its atomic `n`;
//!   the state is reached only through the lock's guard, never as `&mut` before the lock
//!   is held. Debug builds check the holder (`assert_held`) in every function that needs
//!   the class lock, and state the slab, bitmap, list and registry invariants above as
//!   `debug_assert!`s.
//! - The shared state is built from `hakmem_os_stats::sync` and declared with
//!   `sync_static!`, so under `--cfg loom` the model checks of `tests/loom_protocol.rs`
//!   run this very code (docs/concurrency.md).
//! - Nothing here allocates through the global allocator or panics.
//!
//! ```
//! use hakmem_ss_allocation::{class, refill, flush, ss_lookup};
//! let c = class::class_of(100); // 112-byte blocks
//! let chain = refill(c, 8);
//! assert_eq!(chain.count, 8);
//! let info = ss_lookup(chain.head).unwrap();
//! assert_eq!(info.class, c);
//! // SAFETY: the chain came from `refill` of class `c` and is given back whole.
//! unsafe { flush(c, chain.head, chain.count) };
//! ```
#![deny(missing_docs)]
#![no_std]

pub mod asan;
pub mod bins;
pub mod class;
pub mod registry;
mod xfer;

use class::{NCLASS, block_size, slab_shift};
use core::ptr;
use core::sync::atomic::AtomicU32;
use core::sync::atomic::AtomicU64 as HeaderU64;
use core::sync::atomic::AtomicUsize as HeaderUsize;
use hakmem_os_stats::lock::Locked;
use hakmem_os_stats::os;
use hakmem_os_stats::sync::Ordering::{self, Relaxed};
use hakmem_os_stats::sync::{AtomicBool, AtomicU64, AtomicUsize};
use hakmem_os_stats::{loom_const_fn, sync_array, sync_static};
use hakmem_release_policy as release;
use registry::Kind;
pub use xfer::{XFER_SHARDS, XFER_SLOTS};
use xfer::{xfer_drain_locked, xfer_put, xfer_take};

/// log2 of the superslab size.
pub const SS_SHIFT: u32 = 22;
/// Superslab size and alignment: 4 MiB.
pub const SS_SIZE: usize = 1 << SS_SHIFT;
/// Bytes reserved at the start of a superslab for its header.
pub const SS_HEADER: usize = 64 * 1024;

// The layout is the same for every supported OS page size (4 to 64 KiB, see
// `os::MAX_PAGE`): superslabs and the header are multiples of the largest page, and
// slabs (at least 64 KiB, `class::slab_shift`) start at 64 KiB multiples, so a slab
// decommitted (its touched bytes rounded up to a page) or a guard protected there covers
// whole pages of its own. The header itself is written in its first 4 KiB (the
// `SuperSlab` struct) and, once slabs get blocks back, in their free bitmaps after it
// (up to `BITMAP_END`, 36 KiB).
const _: () = {
    assert!(SS_SIZE.is_multiple_of(os::MAX_PAGE));
    assert!(SS_HEADER.is_multiple_of(os::MAX_PAGE));
    assert!(1usize << class::slab_shift(0) >= os::MAX_PAGE);
};

/// The guard pages of a hardened superslab with OS pages of `page` bytes: `(offset,
/// len)` of the range after the header's pages (the `SuperSlab` struct and the slabs'
/// free bitmaps) up to the first slab, made inaccessible; `None` when the header's pages
/// reach the first slab (64 KiB pages: no room for a guard).
pub const fn header_guard(page: usize) -> Option<(usize, usize)> {
    let end = BITMAP_END.div_ceil(page) * page;
    if end < SS_HEADER {
        Some((end, SS_HEADER - end))
    } else {
        None
    }
}
/// Most slabs one superslab can hold (64 KiB slabs).
pub const MAX_SLABS: usize = (SS_SIZE - SS_HEADER) >> 16;

/// Where the slabs' free bitmaps start in a superslab: after the header's first 8 KiB
/// (the `SuperSlab` struct). Slab `i` of class `c` has its [`bitmap_words`]`(c)` words
/// at `BITMAP_OFF + i * bitmap_words(c) * 8`, one after the other. In a pool superslab,
/// whose slabs change class, the slabs' bitmaps are interleaved instead: word `w` of
/// slab `i` at `BITMAP_OFF + (w * POOL_ROW + i) * 8` (`Slab::bitmap_shift`), so that
/// the first words of every slab share one 512-byte row, and a superslab of classes
/// with one word per slab (blocks of 1 KiB and up) touches one page of bitmaps, not
/// eight (`burst-4k`: 1.6 MB more with a 512-byte slot per slab, results/225). A bitmap
/// page is touched only once a slab whose bitmap lies there gets a block back.
const BITMAP_OFF: usize = 8192;
/// The byte offset, in its superslab, of word `w` of slab `i`'s free bitmap: in a pool
/// superslab (`pool`), interleaved rows of [`POOL_ROW`] words; else `words` words per
/// slab, one after the other (see [`BITMAP_OFF`]).
const fn bitmap_word_offset(pool: bool, i: usize, w: usize, words: usize) -> usize {
    if pool {
        BITMAP_OFF + (w * POOL_ROW + i) * 8
    } else {
        BITMAP_OFF + (i * words + w) * 8
    }
}

/// Words of one row of a pool superslab's interleaved bitmaps (one per slab, rounded up
/// to a power of two: `Slab::bitmap_shift` is its log2).
const POOL_ROW: usize = MAX_SLABS.next_power_of_two();
/// The end of the largest bitmap area (64 words for each of `MAX_SLABS` slabs, or
/// [`MAX_BITMAP_WORDS`] rows of a pool superslab's interleaved bitmaps).
const BITMAP_END: usize = BITMAP_OFF + POOL_ROW * MAX_BITMAP_WORDS * 8;
/// The most words a slab's bitmap takes (64 KiB slabs of 16-byte blocks: 4096 blocks).
const MAX_BITMAP_WORDS: usize = 64;

/// Words of the free bitmap of a slab of class `cls` (one bit per block of a whole
/// slab).
pub const fn bitmap_words(cls: usize) -> usize {
    ((1usize << slab_shift(cls)) / block_size(cls)).div_ceil(64)
}

/// Whether class `cls` takes its slabs from the *pool*: the superslabs that every class
/// of 64 KiB slabs and blocks up to a page (4 KiB) shares, a slab at a time, so that the
/// pages one class emptied serve the next class that grows (a superslab per class kept
/// each class's peak resident). The other classes have superslabs of their own.
pub const fn is_pool_class(cls: usize) -> bool {
    slab_shift(cls) == 16 && block_size(cls) <= os::PAGE
}

/// `SuperSlab::class` of a pool superslab (its slabs' classes are their own).
const POOL_CLASS: u32 = u32::MAX;

/// The pool classes: the most spare slabs the pool keeps committed in lean mode (one per
/// class, as a class with superslabs of its own keeps, `release::lean::spares_for`).
const POOL_SPARES: u32 = {
    let (mut c, mut n) = (0, 0);
    while c < NCLASS {
        if is_pool_class(c) {
            n += 1;
        }
        c += 1;
    }
    n
};

const _: () = {
    let mut c = 0;
    while c < NCLASS {
        assert!(bitmap_words(c) <= MAX_BITMAP_WORDS);
        c += 1;
    }
    assert!(BITMAP_END <= SS_HEADER);
};
const MAGIC: usize = 0x4841_4B4D_5353_4C42; // "HAKMSSLB"

/// A free block's first word: the next free block.
#[repr(C)]
struct FreeBlock {
    next: *mut FreeBlock,
}

/// Per-slab metadata, inside its superslab's header.
///
/// The slab's free blocks (carved, returned by [`flush`]) are the set bits of its *free
/// bitmap* (bit `i`: block `i`), in the superslab header at byte offset `bitmap`, not a
/// list through the blocks: a flush sets a bit and a refill takes the lowest set bits,
/// so neither reads a block's memory (a list would make every refill a chain of
/// dependent loads from blocks last touched long ago), a refill hands blocks out in
/// address order, and a block flushed twice is caught (its bit is set already).
#[repr(C)]
struct Slab {
    /// Links in the class's partial list (slabs with a free or uncarved block).
    next: *mut Slab,
    prev: *mut Slab,
    /// First block.
    start: *mut u8,
    /// Blocks handed out and not returned.
    used: u32,
    /// Blocks carved so far (blocks past it were never handed out). Written under the
    /// class lock; read without it by pointer validation (hence atomic, relaxed).
    carved: AtomicU32,
    /// Blocks this slab holds.
    capacity: u32,
    /// Set bits of its free bitmap (free blocks returned by [`flush`]).
    nfree: u32,
    /// Byte offset of its free bitmap in the superslab (constant while it lives).
    bitmap: u32,
    /// Words of the bitmap below this one are all zero (where a refill starts looking).
    scan: u16,
    in_partial: bool,
    /// Log2 of the distance, in words, between consecutive words of its bitmap: 0 in a
    /// class's own superslab (one after the other), that of [`POOL_ROW`] in a pool
    /// superslab (interleaved with the other slabs', see [`BITMAP_OFF`]). Constant while
    /// the superslab lives.
    bitmap_shift: u8,
    /// Its class while in use (in a pool superslab, set as a class takes it; in a class's
    /// own superslab, that class all along).
    class: u32,
    /// Its class's block size (as `class`).
    block_size: u32,
}

/// The header at the start of every superslab.
#[repr(C)]
struct SuperSlab {
    /// `MAGIC` while live (read without the lock by validation).
    magic: HeaderUsize,
    class: u32,
    block_size: u32,
    slab_shift: u32,
    n_slabs: u32,
    /// Bit i set: slab i is not in use. Written under the class lock; read without it by
    /// validation.
    free_slabs: HeaderU64,
    /// Links in the class's list of superslabs with a free slab.
    next: *mut SuperSlab,
    prev: *mut SuperSlab,
    in_avail: bool,
    /// Bit i set: slab i is free but its pages were not decommitted (a class spare).
    spare_slabs: u64,
    /// Bit i set: slab i is free and its pages may still be resident: it emptied and
    /// was neither decommitted nor taken since (the spares among them). The decay pass
    /// ([`decay_idle_slabs`]) gives their pages back once idle past the release policy's
    /// interval. Under the class lock.
    idle_slabs: u64,
    /// Bit i set: slab i was handed to a class since the superslab was set up (a pool
    /// superslab's, under the pool lock: a slab taken for the first time is the pool's
    /// growth past its high-water mark, [`pool_growth`]).
    ever_used: u64,
    /// When each idle slab emptied: the low 32 bits of `os::now_ms()`. Under the class
    /// lock.
    idle_since: [u32; MAX_SLABS],
    /// The validation table: one entry per 64 KiB granule of the superslab (see
    /// [`Granule`]).
    granules: [Granule; GRANULES],
    slabs: [Slab; MAX_SLABS],
}

/// 64 KiB granules per superslab (slabs start on granule boundaries and span whole
/// granules, except the last one, cut at the superslab's end).
const GRANULES: usize = SS_SIZE >> GRANULE_SHIFT;
const GRANULE_SHIFT: u32 = 16;

/// What validation needs about the granule of a pointer, in one 32-byte entry (one
/// index for every field, the same instructions as an 8-byte one): `p` is a
/// carved block start of this granule's slab iff, with `rel = (p as u32) - start`
/// (32-bit, wrapping: the exact distance, which is below 4 MiB),
/// `(rel as u64).wrapping_mul(M) < limit` (unsigned), where `M` is the class's
/// [`DIV_MAGIC`] and `limit` is the slab's carved blocks times `M`'s excess
/// `e = M * block_size - 2^64` (see [`div_excess`]). One multiply and one compare cover
/// "in a slab in use", "carved" and "a block start": `limit` is 0 for the header's
/// granule, the granules past the last slab and those of a slab not in use.
///
/// Why one compare suffices (`bs` the block size, at most 2^18; `rel = p - start`
/// below the slab's length, at most 4 MiB, since a granule lies inside its slab; `e`
/// in `1..=bs`): write `rel = k * bs + r` with `0 <= r < bs`. Then
/// `rel * M = k * e + r * M` modulo 2^64. For `r = 0` that is `k * e`, increasing in
/// `k`, so it is below `K * e` (K carved blocks) iff `k < K`. For `r >= 1` it is at least
/// `M > 2^46` and, as `k * e + r * M < 2^64 - 2^64 / bs + e + rel < 2^64`, it does
/// not wrap, so it stays above any `limit` (at most the slab's length, 2^22).
/// The unit test `merged_block_start_check_is_exact` checks it for every class.
#[repr(C)]
struct Granule {
    /// The low 32 bits of the address of the first block of the slab this granule
    /// belongs to, negated (so that `rel` is one add: the load goes into the register
    /// that receives the sum); constant while the superslab lives; 0 for the header's
    /// granule and those past the last slab, whose `limit` is 0.
    neg_start: u32,
    /// `carved blocks * div_excess(class)` of that slab, at most the slab's length
    /// (0 for a free slab). Written under the class lock with `Slab::carved`; read
    /// without it by validation (hence atomic, relaxed).
    limit: AtomicU32,
    /// The slab's class, as validation needs it: its [`DIV_MAGIC`], its bin's byte offset
    /// in an array of bins indexed by class (a thread cache: `class * size_of::<Bin>()`,
    /// so that `free` does not scale the class), and the class. Set with the slab's class
    /// (a class's own superslab: once, before it is published; a pool slab: as a class
    /// takes it, before its `limit` lets validation pass), hence atomics (relaxed).
    magic: HeaderU64,
    bin: AtomicU32,
    class: AtomicU32,
    _pad: u64,
}

static_assertions::const_assert!(core::mem::size_of::<SuperSlab>() <= SS_HEADER);
static_assertions::const_assert!(core::mem::size_of::<Granule>() == 32);
static_assertions::const_assert!(SS_HEADER == 1 << GRANULE_SHIFT);
static_assertions::const_assert!(core::mem::size_of::<SuperSlab>() <= BITMAP_OFF);
static_assertions::const_assert!(MAX_SLABS <= 64);

/// One class's central state (behind the class lock: `CENTRAL[cls]`).
struct Central {
    /// Slabs with a free or uncarved block (doubly linked through `Slab::next/prev`).
    partial: *mut Slab,
    /// Superslabs with a slab not in use.
    avail: *mut SuperSlab,
    /// Its spare slabs (free slabs kept committed, marked in `SuperSlab::spare_slabs`)
    /// and churn: the release policy's rules decide (`release::lean::SlabSpares`).
    spares: release::lean::SlabSpares,
    /// xorshift state for shuffling refills (hardened builds).
    rng: u64,
    /// While the decay pass drains a transfer cache that no refill used for an interval:
    /// the time of that last use (`os::now_ms`, low 32 bits), stamped on the slabs the
    /// drain empties as the time they went idle. `None` otherwise.
    idle_stamp: Option<u32>,
}

// SAFETY: the pointers name slabs and superslabs of the class, reached only with the
// class lock held (the `Locked` around it).
unsafe impl Send for Central {}

/// A class lock and the central state it guards, on a cache line of its own.
#[repr(align(64))]
struct Padded(Locked<Central>);

impl Padded {
    loom_const_fn! {
        fn new() -> Self {
            Padded(Locked::new(Central {
                partial: ptr::null_mut(),
                avail: ptr::null_mut(),
                spares: release::lean::SlabSpares::new(),
                rng: 0,
                idle_stamp: None,
            }))
        }
    }
}

sync_static! {
    static CENTRAL: [Padded; NCLASS] = sync_array!(Padded::new(); NCLASS);
}

/// The pool's state (behind the pool lock, `POOL`): the superslabs every pool class
/// ([`is_pool_class`]) takes its slabs from. Their fields that say which slabs are free,
/// idle or spare (`free_slabs`, `idle_slabs`, `idle_since`, `spare_slabs`) and their
/// avail-list links are the pool's, under this lock; a slab in use is its class's, under
/// that class's lock.
struct Pool {
    /// Pool superslabs with a free slab.
    avail: *mut SuperSlab,
    /// Its spare slabs and churn, as a class's (lean mode).
    spares: release::lean::SlabSpares,
    /// Pool slabs in use (every class together).
    slabs: u64,
    /// Its idle slabs (also counted in [`IDLE_SLABS`]).
    idle: u64,
}

// SAFETY: the pointers name pool superslabs, reached only with the pool lock held.
unsafe impl Send for Pool {}

/// The pool lock and its state, on a cache line of its own.
#[repr(align(64))]
struct PaddedPool(Locked<Pool>);

impl PaddedPool {
    loom_const_fn! {
        fn new() -> Self {
            PaddedPool(Locked::new(Pool {
                avail: ptr::null_mut(),
                spares: release::lean::SlabSpares::new(),
                slabs: 0,
                idle: 0,
            }))
        }
    }
}

sync_static! {
    static POOL: PaddedPool = PaddedPool::new();
    /// Pool slabs handed out for the first time since their superslab was set up: the
    /// pool's growth past its high-water mark, the clock of the idle-class rule
    /// ([`pool_growth`]). Written under the pool lock, read anywhere.
    static POOL_GROWTH: AtomicU64 = AtomicU64::new(0);
}

/// How many slabs the pool has handed out for the first time (in a superslab set up
/// since): it moves only while the process's small-block memory grows past its
/// high-water mark, never in a steady program (not even one whose idle slabs the decay
/// pass gives back and takes again: `cbench simple` lost 5% to giving back at those,
/// results/225); a thread cache compares it with the value it last saw, on its slow
/// paths, to give back what it holds of idle classes (`hakmem-tiny-fast`; see
/// [`give_back_idle_class`]).
#[inline]
pub fn pool_growth() -> u64 {
    POOL_GROWTH.load(Relaxed)
}

/// Whether pool class `cls` is *idle* with blocks to give back: no block of it is out
/// (in use or in a thread cache), yet its transfer cache holds some, each pinning a slab
/// that would otherwise be empty, and it has [`IDLE_MIN_SLABS`] slabs or more. (A hint
/// read without the class lock: draining a cache is always correct.)
#[inline]
fn is_idle(cls: usize) -> bool {
    let st = stats_of(cls);
    is_pool_class(cls)
        && st.out.load(Relaxed) == 0
        && st.xfer.load(Relaxed) != 0
        && st.slabs.load(Relaxed) >= IDLE_MIN_SLABS
}

/// The fewest slabs an idle class must hold for its cached blocks to go back when the
/// pool grows ([`give_back_idle_class`], and the thread caches' rule in
/// `hakmem-tiny-fast`). A class with one slab has usually carved a refill or two of it
/// (a class that served one block, as a growing vector passes through it): its slab
/// would give the class that grows a few resident pages, and the idle class, used
/// again, would fault fresh ones in (`cargo xtask bench` `text`: 1 MiB more at its peak
/// with every idle class given back, results/225).
pub const IDLE_MIN_SLABS: u64 = 2;

/// The pool grew (a slab used for the first time) while class `grower` refilled: the
/// transfer cache of every other idle pool class ([`is_idle`]) goes back to its slabs,
/// which empty into the pool, where `grower`'s next slabs come from, their pages still
/// resident, before the pool grows again. A program that moves from one size of blocks
/// to the next holds about one size's peak then, not the sum of them (results/225).
/// Event-driven, no clock read: the decay pass gives a cache unused for its interval
/// back too, later. Takes each drained class's lock in turn; the caller holds none.
fn give_back_idle(grower: usize) {
    for cls in 0..NCLASS {
        if cls != grower {
            give_back_idle_class(cls);
        }
    }
}

/// Give the transfer cache of class `cls` back to its slabs if the class is idle: no
/// block of it out, in use or in a thread cache, and [`IDLE_MIN_SLABS`] slabs or more. A
/// thread cache calls it after it gave back every block of the class it held
/// ([`pool_growth`]); a no-op for a class with blocks out, outside the pool, with fewer
/// slabs, or with nothing in its transfer cache.
pub fn give_back_idle_class(cls: usize) {
    if !is_idle(cls) {
        return;
    }
    let Some(pc) = CENTRAL.get(cls) else {
        return;
    };
    let mut g = pc.0.lock();
    // SAFETY: `g` is the locked central state of `cls`.
    unsafe { xfer_drain_locked(&mut g, cls) };
}

/// The smallest peak of blocks out of class `cls` from which it may shrink (the release
/// policy's rule, [`release::lean::shrink_floor`], for this class's slab and block size).
#[inline]
const fn shrink_floor(cls: usize) -> u64 {
    release::lean::shrink_floor(slab_shift(cls), block_size(cls))
}

/// A refill of the class: its shrink signal's peak follows its blocks out.
#[inline]
fn note_refill(st: &ClassStats) {
    st.shrink.note_refill(st.out.load(Relaxed));
}

/// Whether class `cls` should start shrinking now (the release policy's rule, see
/// [`release::lean::ShrinkState::due`]).
#[inline]
fn should_shrink(cls: usize) -> bool {
    let st = stats_of(cls);
    st.shrink.due(st.out.load(Relaxed), shrink_floor(cls))
}

/// Per-class counters (for stats, and lean mode's shrink signal). `out` and `xfer` change
/// under the class lock and under the transfer-cache shard locks, so they are updated
/// with atomic adds (slow paths only). One cache line per class: the classes' locks are
/// independent, and so must be the lines their holders write.
#[repr(align(64))]
struct ClassStats {
    /// Blocks handed out by `refill` and not flushed back (live or in thread caches).
    out: AtomicU64,
    /// Blocks in slab free lists.
    free: AtomicU64,
    /// Blocks in the transfer cache.
    xfer: AtomicU64,
    /// Slabs of the class in use (carved from a superslab and not yet empty), for stats.
    slabs: AtomicU64,
    /// Idle slabs (`SuperSlab::idle_slabs`) of the class: written under the class lock
    /// (with [`IDLE_SLABS`], by [`idle_add`]); read without it by the decay pass, to skip
    /// a class with none.
    idle: AtomicU64,
    /// When a refill last took blocks from the class's transfer cache (`os::now_ms`):
    /// the decay pass gives the blocks of a cache unused for an interval back to their
    /// slabs, which they would otherwise pin.
    xfer_used: AtomicU64,
    /// Lean mode's shrink signal (the recent peak of `out`, the shrinking flag), whose
    /// rules are the release policy's: set and cleared under the class lock; shrinking
    /// ends when the class takes a new slab.
    shrink: release::lean::ShrinkState,
}

impl ClassStats {
    loom_const_fn! {
        fn new() -> Self {
            ClassStats {
                out: AtomicU64::new(0),
                free: AtomicU64::new(0),
                xfer: AtomicU64::new(0),
                slabs: AtomicU64::new(0),
                idle: AtomicU64::new(0),
                xfer_used: AtomicU64::new(0),
                shrink: release::lean::ShrinkState::new(),
            }
        }
    }
}

sync_static! {
    static CLASS_STATS: [ClassStats; NCLASS] = sync_array!(ClassStats::new(); NCLASS);
    /// A dummy for an impossible class, so no path can panic.
    static NO_STATS: ClassStats = ClassStats::new();
}

/// The stats of class `cls` (a dummy for an impossible class, so no path can panic).
#[inline]
fn stats_of(cls: usize) -> &'static ClassStats {
    CLASS_STATS.get(cls).unwrap_or(&NO_STATS)
}

#[inline]
fn stat_add(a: &AtomicU64, d: i64) {
    a.fetch_add(d as u64, Relaxed);
}

/// `stat_add` of a counter written only under the class lock (`free`): a load and a
/// store, no locked instruction. (A locked add after a refill's link writes to cold
/// blocks waited for all of them to reach the cache: measured as most of the refill's
/// time on `cbench simple`.)
#[inline]
fn stat_add_locked(a: &AtomicU64, d: i64) {
    let old = a.load(Relaxed);
    // Stats readers take no lock, so the count must stay at or above zero at every
    // store, not only when the lock is dropped: debug builds check it.
    debug_assert!(
        d >= 0 || old >= d.unsigned_abs(),
        "a class counter went below zero ({old} {d})"
    );
    a.store(old.wrapping_add(d as u64), Relaxed);
}

/// `stat_add` of a counter that never goes below zero (`out`, `xfer`: a block is
/// counted in before it is counted out, and the adds of one counter are totally
/// ordered): debug builds check it.
#[inline]
fn stat_add_nonneg(a: &AtomicU64, d: i64) {
    let old = a.fetch_add(d as u64, Relaxed);
    debug_assert!(
        d >= 0 || old >= d.unsigned_abs(),
        "a class counter went below zero ({old} {d})"
    );
}

sync_static! {
    /// Idle slabs of every class (the sum of `ClassStats::idle`): with [`XFER_HELD`],
    /// what lets a decay pass with nothing to do return before reading the clock.
    static IDLE_SLABS: AtomicU64 = AtomicU64::new(0);
    /// Set by a put into any transfer cache, cleared by a decay pass that starts: a pass
    /// may have transfer-cache blocks to give back.
    static XFER_HELD: AtomicBool = AtomicBool::new(false);
}

/// Count `d` idle slabs of the class whose stats are `st` (under its class lock), in its
/// count and in [`IDLE_SLABS`].
#[inline]
fn idle_add(st: &ClassStats, d: i64) {
    stat_add_locked(&st.idle, d);
    idle_global_add(d);
}

/// Count `d` idle slabs in [`IDLE_SLABS`] only (the pool's, counted in `Pool::idle`).
#[inline]
fn idle_global_add(d: i64) {
    let old = IDLE_SLABS.fetch_add(d as u64, Relaxed);
    debug_assert!(
        d >= 0 || old >= d.unsigned_abs(),
        "the idle slab count went below zero ({old} {d})"
    );
}

/// Debug builds: the calling thread holds the class lock of `cls`.
#[inline(always)]
#[track_caller]
fn assert_class_locked(cls: usize) {
    if let Some(pc) = CENTRAL.get(cls) {
        pc.0.assert_held();
    }
}

/// Debug builds: `ss` is a live superslab of class `cls` (its magic, class and registry
/// mark agree).
///
/// # Safety
/// `ss` is the header of a superslab of this crate, mapped.
#[inline(always)]
#[track_caller]
unsafe fn debug_check_superslab(ss: *mut SuperSlab, cls: usize) {
    // SAFETY: the caller guarantees a mapped header.
    unsafe {
        debug_assert_eq!((*ss).magic.load(Relaxed), MAGIC, "not a live superslab");
        debug_assert!(
            (*ss).class as usize == cls || ((*ss).class == POOL_CLASS && is_pool_class(cls)),
            "a superslab of another class"
        );
        debug_assert!((*ss).n_slabs as usize >= 1 && (*ss).n_slabs as usize <= MAX_SLABS);
    }
    debug_assert_eq!(
        registry::kind_of(ss.cast()),
        Kind::Superslab,
        "a live superslab not registered"
    );
}

sync_static! {
    /// Bytes of the slabs in use, every class together (each slab's whole length): the
    /// superslab memory in use that the release policy's decaying peak follows
    /// ([`release::ss_note_live`]), so that its idle target is a share of what the
    /// program used, not of the superslabs a few slabs keep mapped.
    static SLAB_BYTES: AtomicUsize = AtomicUsize::new(0);
}

/// Count `d` bytes of slabs taken (`d > 0`) or emptied, and tell the release policy.
#[inline]
fn slab_bytes_add(d: isize) {
    let old = SLAB_BYTES.fetch_add(d as usize, Relaxed);
    debug_assert!(
        d >= 0 || old >= d.unsigned_abs(),
        "the slab bytes in use went below zero ({old} {d})"
    );
    release::ss_note_live(old.wrapping_add(d as usize));
}

/// The length of slab `s` of superslab `ss`: its class's slab size, cut at the
/// superslab's end.
///
/// # Safety
/// `s` is a slab of the live superslab `ss`.
#[inline]
unsafe fn slab_len(ss: *mut SuperSlab, s: *mut Slab) -> usize {
    // SAFETY: the caller's guarantee: both are in the live superslab's header.
    unsafe {
        let end = ss.cast::<u8>().add(SS_SIZE);
        (1usize << (*ss).slab_shift).min(end.offset_from((*s).start) as usize)
    }
}

/// Blocks of class `cls` handed out and not returned (in use or in thread caches), and
/// free blocks of it held centrally (slab free lists and the transfer cache).
pub fn class_counts(cls: usize) -> (u64, u64) {
    match CLASS_STATS.get(cls) {
        Some(st) => (
            st.out.load(Relaxed),
            st.free.load(Relaxed).wrapping_add(st.xfer.load(Relaxed)),
        ),
        None => (0, 0),
    }
}

/// Slabs of class `cls` in use now (carved from a superslab and not empty), for stats.
pub fn class_slabs(cls: usize) -> u64 {
    CLASS_STATS.get(cls).map_or(0, |st| st.slabs.load(Relaxed))
}

sync_static! {
    /// Live superslabs (for stats).
    static SS_LIVE: AtomicUsize = AtomicUsize::new(0);
    /// The most superslabs live at once so far (for stats).
    static SS_LIVE_PEAK: AtomicUsize = AtomicUsize::new(0);
}

/// A singly linked chain of free blocks (through their first word), `count` long; the
/// last block's link is null.
#[derive(Clone, Copy, Debug)]
pub struct Chain {
    /// First block (null when `count == 0`).
    pub head: *mut u8,
    /// Last block.
    pub tail: *mut u8,
    /// Blocks in the chain.
    pub count: u32,
}

impl Chain {
    const EMPTY: Chain = Chain {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        count: 0,
    };

    #[inline]
    fn push_back(&mut self, b: *mut u8) {
        if self.head.is_null() {
            self.head = b;
        } else {
            // SAFETY: `tail` is a free block of at least 16 bytes that we own.
            unsafe { set_next(self.tail, b) };
        }
        self.tail = b;
        self.count += 1;
    }
}

/// Whether the `hardened` mitigations are compiled in (encoded and checked free-list
/// links, shuffled allocation order, guard pages after superslab headers).
pub const HARDENED: bool = cfg!(feature = "hardened");

sync_static! {
    /// The process's secret for encoding free-list links (hardened builds); never 0 once
    /// read through [`link_secret`].
    static LINK_SECRET: AtomicUsize = AtomicUsize::new(0);
}

#[cold]
fn init_link_secret() -> usize {
    let mut v: usize = 0;
    // SAFETY: getrandom writes at most size_of::<usize>() bytes into `v`.
    let r = unsafe {
        libc::getrandom(
            (&mut v as *mut usize).cast(),
            core::mem::size_of::<usize>(),
            0,
        )
    };
    if r != core::mem::size_of::<usize>() as isize {
        // No entropy source: fall back to addresses and the time stamp counter.
        v = (&v as *const usize as usize).rotate_left(29) ^ init_link_secret as *const () as usize;
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: rdtsc has no preconditions on x86_64.
            v ^= unsafe { core::arch::x86_64::_rdtsc() } as usize;
        }
    }
    v |= 1;
    match LINK_SECRET.compare_exchange(0, v, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => v,
        Err(winner) => winner,
    }
}

/// The link-encoding secret (initialized on first use, then constant).
#[inline(always)]
fn link_secret() -> usize {
    let v = LINK_SECRET.load(Relaxed);
    if v != 0 { v } else { init_link_secret() }
}

/// The key for the link stored in `slot`. The secret is read without the "initialized?"
/// test: every block comes from [`refill_upto`], which initializes the secret before it
/// hands out the first block, so no link is ever encoded or decoded before the secret
/// exists (and it never changes afterwards).
///
/// The key is `secret ^ slot`: a link overwritten without the secret decodes to a
/// misaligned address 15 times in 16 (the secret's low bit is set, so a plain pointer
/// written over a link always does). (A rotation of `slot` was measured to add an
/// instruction to every pop and push for no extra detection: results/004.)
#[inline(always)]
pub(crate) fn link_key(slot: *mut u8) -> usize {
    LINK_SECRET.load(Relaxed) ^ slot as usize
}

/// Read the link of a free block. Hardened builds decode it and abort with a report if
/// the result cannot be a free block (a write after free or an overflow into it).
///
/// # Safety
/// `b` must be a free block (at least 8 bytes, 8-aligned) owned by the caller.
#[inline(always)]
pub unsafe fn next_of(b: *mut u8) -> *mut u8 {
    // SAFETY: the caller guarantees `b` is a free block it owns.
    let raw = unsafe { (*b.cast::<FreeBlock>()).next.cast::<u8>() };
    if !HARDENED {
        return raw;
    }
    let next = (raw as usize ^ link_key(b)) as *mut u8;
    // A link overwritten without the secret decodes to a random address: misaligned 15
    // times in 16, or outside the user address space (the registry check costs a load
    // per allocation and was measured too dear for the fast path: results/004).
    if next as usize & (15 | !((1usize << 47) - 1)) != 0 {
        hakmem_os_stats::report::fatal(
            "corrupted free list (write after free?) in block",
            b as usize,
        );
    }
    next
}

/// Write the link of a free block (encoded in hardened builds).
///
/// # Safety
/// As [`next_of`].
#[inline(always)]
pub unsafe fn set_next(b: *mut u8, next: *mut u8) {
    let v = if HARDENED {
        (next as usize ^ link_key(b)) as *mut u8
    } else {
        next
    };
    // SAFETY: the caller guarantees `b` is a free block it owns.
    unsafe { (*b.cast::<FreeBlock>()).next = v.cast() }
}

#[inline]
fn ss_of(p: *const u8) -> *mut SuperSlab {
    (p as usize & !(SS_SIZE - 1)) as *mut SuperSlab
}

/// # Safety
/// `p` lies in a live superslab's slab area.
#[inline]
unsafe fn slab_of(p: *const u8) -> *mut Slab {
    let ss = ss_of(p);
    // SAFETY: the caller guarantees `ss` is a live superslab header.
    unsafe {
        let idx = (p as usize - ss as usize - SS_HEADER) >> (*ss).slab_shift;
        ptr::addr_of_mut!((*ss).slabs).cast::<Slab>().add(idx)
    }
}

/// Word `w` of slab `s`'s free bitmap (see [`Slab`] and [`BITMAP_OFF`]).
///
/// # Safety
/// `s` is a slab of a live superslab, `w` below its class's [`bitmap_words`].
#[inline(always)]
unsafe fn bitmap_word(s: *mut Slab, w: usize) -> *mut u64 {
    // SAFETY: as `bitmap_of`; word `w` of the bitmap (the caller keeps `w` below the
    // class's `bitmap_words`) lies `w << bitmap_shift` words past its first.
    unsafe { bitmap_of(s).add(w << (*s).bitmap_shift) }
}

/// The first word of the free bitmap of slab `s` (see [`bitmap_word`] for the others).
///
/// # Safety
/// `s` is a slab of a live superslab.
#[inline(always)]
unsafe fn bitmap_of(s: *mut Slab) -> *mut u64 {
    // SAFETY: the caller guarantees `s` lies in a live superslab's header (a `Slab` is
    // inside its superslab's first granule, so `ss_of` finds the header), and `bitmap`
    // is the offset of the slab's bitmap inside that header.
    unsafe {
        ss_of(s.cast())
            .cast::<u8>()
            .add((*s).bitmap as usize)
            .cast()
    }
}

/// `rel / block_size(cls)` for `rel < 2^32` by one multiply (Lemire: `DIV_MAGIC[cls]`
/// is `ceil(2^64 / bs)` (plus one for a power of two), and the high half of the product
/// is the quotient).
#[inline(always)]
fn div_block(rel: usize, magic: u64) -> usize {
    debug_assert!(rel < 1 << 32);
    ((rel as u128 * magic as u128) >> 64) as usize
}

/// Set slab `s`'s carve count, and the validation table's `limit` of each of its
/// granules with it (`carved * div_excess`, see [`Granule`]).
///
/// # Safety
/// `s` is a slab of a live superslab; the class lock is held.
#[inline]
unsafe fn set_carved(s: *mut Slab, carved: u32) {
    // SAFETY: the caller guarantees `s` lies in a live superslab's header (a `Slab` is
    // inside its superslab's first granule, so `ss_of` finds the header).
    unsafe {
        (*s).carved.store(carved, Relaxed);
        let ss = ss_of(s.cast());
        let slabs = ptr::addr_of_mut!((*ss).slabs).cast::<Slab>();
        let idx = s.offset_from(slabs) as usize;
        let shift = (*ss).slab_shift;
        let cls = (*s).class as usize;
        debug_assert!(cls < NCLASS, "carving a slab without a class");
        let limit = carved as u64 * div_excess(DIV_MAGIC[cls], (*s).block_size as usize);
        debug_assert!(limit <= u64::from((*s).capacity) * u64::from((*s).block_size));
        let limit = limit as u32;
        let g0 = (SS_HEADER + (idx << shift)) >> GRANULE_SHIFT;
        let g1 = (g0 + (1 << (shift - GRANULE_SHIFT))).min(GRANULES);
        let granules = ptr::addr_of!((*ss).granules).cast::<Granule>();
        for g in g0..g1 {
            (*granules.add(g)).limit.store(limit, Relaxed);
        }
    }
}

/// What [`ss_lookup`] finds about a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// Its superslab's base address.
    pub superslab: usize,
    /// Index of its slab in the superslab.
    pub slab: usize,
    /// Its size class.
    pub class: usize,
    /// The start of the block holding `p` (equals `p` for a block pointer).
    pub block_start: usize,
    /// Its block size.
    pub block_size: usize,
}

/// The superslab, slab and class of the block holding `p`, in O(1); `None` when `p` is
/// not inside a carved block of a live superslab.
// Safe on purpose: validating arbitrary pointers is the job; memory is read only after
// the registry says the address lies in a live superslab.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn ss_lookup(p: *const u8) -> Option<BlockInfo> {
    if registry::kind_of(p) != Kind::Superslab {
        return None;
    }
    let ss = ss_of(p);
    // SAFETY: the registry says the unit holding `p` is a live superslab, whose header is
    // mapped and initialized.
    unsafe {
        if (*ss).magic.load(Relaxed) != MAGIC {
            return None;
        }
        let off = p as usize - ss as usize;
        if off < SS_HEADER {
            return None;
        }
        let idx = (off - SS_HEADER) >> (*ss).slab_shift;
        if idx >= (*ss).n_slabs as usize {
            return None;
        }
        let slab = &*slab_of(p);
        // (The class from the granule's atomics: a pool slab's changes as classes take it.)
        let cls = (*ss).granules[(p as usize >> GRANULE_SHIFT) & (GRANULES - 1)]
            .class
            .load(Relaxed) as usize;
        if cls >= NCLASS {
            return None;
        }
        let bs = block_size(cls);
        let rel = p as usize - slab.start as usize;
        if (*ss).free_slabs.load(Relaxed) & (1 << idx) != 0
            || rel / bs >= slab.carved.load(Relaxed) as usize
        {
            return None;
        }
        Some(BlockInfo {
            superslab: ss as usize,
            slab: idx,
            class: cls,
            block_start: slab.start as usize + rel / bs * bs,
            block_size: bs,
        })
    }
}

/// `ss_lookup(p)` when `p` is the start of a block.
pub fn validate(p: *const u8) -> Option<BlockInfo> {
    ss_lookup(p).filter(|i| i.block_start == p as usize)
}

/// `DIV_MAGIC[c]`: the least `M` with `M * block_size(c) > 2^64`, that is
/// `ceil(2^64 / bs)`, plus one when `bs` is a power of two (where the ceiling divides
/// exactly). So its excess `e = M * bs - 2^64` ([`div_excess`]) is in `1..=bs`, never 0,
/// which the validation table's one-compare check needs (see [`Granule`]); and the high
/// half of `n * M` is still `n / bs` for `n < 2^32` ([`div_block`]: the error term
/// `n * e / (bs * 2^64)` is below `2^-32`, less than the `1 / bs` gap to the next
/// integer). No division anywhere on the free path.
static DIV_MAGIC: [u64; NCLASS] = {
    let mut t = [0u64; NCLASS];
    let mut c = 0;
    while c < NCLASS {
        let bs = block_size(c) as u64;
        t[c] = u64::MAX / bs + 1 + if bs.is_power_of_two() { 1 } else { 0 };
        c += 1;
    }
    t
};

/// The validation table's test (see [`Granule`]): `rel` bytes past a slab's first block
/// is the start of one of its first `limit / div_excess` blocks. `magic` is the class's
/// [`DIV_MAGIC`]; `rel` is below the slab's length.
#[inline(always)]
const fn is_carved_block_start(rel: u32, magic: u64, limit: u32) -> bool {
    (rel as u64).wrapping_mul(magic) < limit as u64
}

/// The excess `M * bs - 2^64` of a [`DIV_MAGIC`] `M` for block size `bs` (in `1..=bs`).
#[inline]
const fn div_excess(magic: u64, bs: usize) -> u64 {
    magic.wrapping_mul(bs as u64)
}

/// The class of `p` if it is the start of a block handed out from a live superslab's
/// slab (carved, in a slab in use), else `None`. O(1), no division: a registry load,
/// then the superslab's validation table (the entry of `p`'s 64 KiB granule: its slab's
/// first block and carved limit) and one multiply. It cannot tell a live block from a
/// free one (that is the hardening layer's job).
#[inline]
// Safe on purpose: validating arbitrary pointers is the job; memory is read only after
// the registry says the address lies in a live superslab.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn validate_class(p: *const u8) -> Option<usize> {
    if registry::kind_of(p) != Kind::Superslab {
        return None;
    }
    // SAFETY: the registry says `p`'s unit is a live superslab.
    unsafe { validate_class_in_superslab(p) }
}

/// [`validate_class`] for a caller that already found `p`'s unit registered as
/// `Kind::Superslab` (saves the second registry lookup).
///
/// # Safety
/// `registry::kind_of(p)` said `Kind::Superslab` (it reads `p`'s superslab header
/// without checking the registry again); as for [`validate_class`], the superslab may
/// be released meanwhile only by a free of one of its blocks racing with this call,
/// which the caller's use of `p` rules out.
#[inline(always)]
pub unsafe fn validate_class_in_superslab(p: *const u8) -> Option<usize> {
    // SAFETY: forwarded caller guarantee.
    unsafe { validate_bin_in_superslab(p) }.map(|off| off / core::mem::size_of::<bins::Bin>())
}

/// [`validate_class_in_superslab`], giving the class as the byte offset of its bin in an
/// array of [`Bin`](bins::Bin)s indexed by class (`class * size_of::<Bin>()`, below
/// `NCLASS * size_of::<Bin>()`): what a thread cache's `free` needs, read from the
/// header as it is.
///
/// # Safety
/// As [`validate_class_in_superslab`].
#[inline(always)]
pub unsafe fn validate_bin_in_superslab(p: *const u8) -> Option<usize> {
    let ss = ss_of(p);
    // The validation table (see `Granule`): the granule's slab start and limit, one
    // multiply and one compare. No magic check: a released superslab has every `limit`
    // at 0.
    // SAFETY: the caller says the registry marks the unit holding `p` as a live
    // superslab: its header is mapped and initialized (racy fields are atomics).
    unsafe {
        let gi = (p as usize >> GRANULE_SHIFT) & (GRANULES - 1);
        let g = ptr::addr_of!((*ss).granules).cast::<Granule>().add(gi);
        let rel = (*g).neg_start.wrapping_add(p as u32);
        let (magic, limit) = ((*g).magic.load(Relaxed), (*g).limit.load(Relaxed));
        // (Read with the check, from the same entry: a pool slab's changes as classes
        // take it, and this one was the class's when its limit let `p` pass.)
        let bin = (*g).bin.load(Relaxed) as usize;
        if !is_carved_block_start(rel, magic, limit) {
            return None;
        }
        debug_assert!(
            validate(p).is_some(),
            "the validation table passed {p:p}, which is not a carved block start"
        );
        // A carved slab's class is a slab class (set with it, from `class_for`).
        core::hint::assert_unchecked(bin < NCLASS * core::mem::size_of::<bins::Bin>());
        Some(bin)
    }
}

/// The class of a block handed out by [`refill`], from its superslab header (one load).
///
/// # Safety
/// `p` must be a block handed out by [`refill`] and not yet flushed.
#[inline(always)]
pub unsafe fn class_of_block(p: *const u8) -> usize {
    // SAFETY: the caller guarantees `p` is in a live superslab, in a slab in use, whose
    // class stays while the block is out.
    unsafe {
        (*ss_of(p)).granules[(p as usize >> GRANULE_SHIFT) & (GRANULES - 1)]
            .class
            .load(Relaxed) as usize
    }
}

// ---------------------------------------------------------------------------------------
// Central lists (all functions below require the class lock).

unsafe fn partial_push(c: &mut Central, s: *mut Slab) {
    // SAFETY: `s` is a slab of this class, not in the list; the lock is held.
    unsafe {
        debug_assert!(!(*s).in_partial, "a slab pushed twice on the partial list");
        debug_assert!(
            (*s).nfree > 0 || (*s).carved.load(Relaxed) < (*s).capacity,
            "a slab with no free or uncarved block on the partial list"
        );
        debug_assert!(
            (*s).used <= (*s).capacity,
            "a slab's used above its capacity"
        );
        (*s).prev = ptr::null_mut();
        (*s).next = c.partial;
        if !c.partial.is_null() {
            (*c.partial).prev = s;
        }
        c.partial = s;
        (*s).in_partial = true;
    }
}

unsafe fn partial_remove(c: &mut Central, s: *mut Slab) {
    // SAFETY: `s` is in this class's partial list; the lock is held.
    unsafe {
        debug_assert!((*s).in_partial, "a slab removed from a list it is not on");
        debug_assert!(
            !(*s).prev.is_null() || c.partial == s,
            "a broken partial list"
        );
        debug_assert!(
            (*s).next.is_null() || (*(*s).next).prev == s,
            "a broken partial list"
        );
        if (*s).prev.is_null() {
            c.partial = (*s).next;
        } else {
            (*(*s).prev).next = (*s).next;
        }
        if !(*s).next.is_null() {
            (*(*s).next).prev = (*s).prev;
        }
        (*s).next = ptr::null_mut();
        (*s).prev = ptr::null_mut();
        (*s).in_partial = false;
    }
}

unsafe fn avail_push(c: &mut Central, ss: *mut SuperSlab) {
    // SAFETY: forwarded caller guarantee.
    unsafe { list_push(&mut c.avail, ss) }
}

unsafe fn avail_remove(c: &mut Central, ss: *mut SuperSlab) {
    // SAFETY: forwarded caller guarantee.
    unsafe { list_remove(&mut c.avail, ss) }
}

/// Push `ss` on the avail list at `head` (a class's, or the pool's).
///
/// # Safety
/// `ss` is a live superslab with a free slab, not on a list; the lock that guards the
/// list is held.
unsafe fn list_push(head: &mut *mut SuperSlab, ss: *mut SuperSlab) {
    // SAFETY: `ss` is a live superslab of this list's owner not in the list; lock held.
    unsafe {
        debug_assert!(
            !(*ss).in_avail,
            "a superslab pushed twice on the avail list"
        );
        debug_assert_ne!(
            (*ss).free_slabs.load(Relaxed),
            0,
            "a full superslab on avail"
        );
        (*ss).prev = ptr::null_mut();
        (*ss).next = *head;
        if !head.is_null() {
            (**head).prev = ss;
        }
        *head = ss;
        (*ss).in_avail = true;
    }
}

/// Remove `ss` from the avail list at `head`.
///
/// # Safety
/// `ss` is on that list; the lock that guards the list is held.
unsafe fn list_remove(head: &mut *mut SuperSlab, ss: *mut SuperSlab) {
    // SAFETY: `ss` is in this list; lock held.
    unsafe {
        debug_assert!(
            (*ss).in_avail,
            "a superslab removed from a list it is not on"
        );
        debug_assert!(!(*ss).prev.is_null() || *head == ss, "a broken avail list");
        if (*ss).prev.is_null() {
            *head = (*ss).next;
        } else {
            (*(*ss).prev).next = (*ss).next;
        }
        if !(*ss).next.is_null() {
            (*(*ss).next).prev = (*ss).prev;
        }
        (*ss).next = ptr::null_mut();
        (*ss).prev = ptr::null_mut();
        (*ss).in_avail = false;
    }
}

/// Map (or take from the cache) a superslab for class `cls`, or for the pool when `cls`
/// is [`POOL_CLASS`], and initialize its header. `filling`: the class (or the pool) has
/// slabs in use, all in full superslabs.
fn new_superslab(cls: usize, filling: bool) -> *mut SuperSlab {
    let pool = cls == POOL_CLASS as usize;
    let mut from_large = false;
    // A class with slabs in use, all in full superslabs, fills them: it may take the
    // pages of a freed large mapping (`ss_take_cached`).
    let base = match release::ss_take_cached(SS_SIZE, filling) {
        Some((b, release::SsOrigin::Superslab)) => b,
        Some((b, release::SsOrigin::Large)) => {
            // The first unit of a freed large mapping: its header bytes are a large
            // block's, its bitmaps whatever the block wrote there (zeroed below: a new
            // slab expects zero bits). The hardened guard is set up as for a fresh
            // mapping.
            from_large = true;
            if HARDENED
                && let Some((off, len)) = header_guard(os::page_size())
                // SAFETY: as for a fresh mapping below.
                && unsafe { !os::protect(b.add(off), len, libc::PROT_NONE) }
            {
                // SAFETY: unpublished region of ours.
                unsafe { os::unmap(b, SS_SIZE) };
                return ptr::null_mut();
            }
            b
        }
        None => {
            let b = os::map_aligned(SS_SIZE, SS_SIZE);
            // Hardened: the header's page is followed by inaccessible pages up to the
            // first slab, so an underflow from a block never reaches the metadata (with
            // 64 KiB pages there are none: `header_guard`). (A cached superslab keeps
            // the protection it got here.)
            if HARDENED
                && !b.is_null()
                && let Some((off, len)) = header_guard(os::page_size())
                // SAFETY: `b` is our fresh mapping; the header fits in its first page,
                // and `off..off + len` lies inside the header's 64 KiB, on whole pages.
                && unsafe { !os::protect(b.add(off), len, libc::PROT_NONE) }
            {
                // SAFETY: unpublished fresh mapping.
                unsafe { os::unmap(b, SS_SIZE) };
                return ptr::null_mut();
            }
            b
        }
    };
    if base.is_null() {
        return ptr::null_mut();
    }
    debug_assert!(
        (base as usize).is_multiple_of(SS_SIZE),
        "a misaligned superslab"
    );
    debug_assert_eq!(
        registry::kind_of(base),
        Kind::None,
        "a new superslab's unit is registered already"
    );
    // (A pool superslab's slabs are 64 KiB, of blocks up to a page: set when a class
    // takes one.)
    let bs = if pool { os::PAGE } else { block_size(cls) };
    // Before this class's first touch: huge pages only where the class fills them (on a
    // host whose THP mode is `always`, the header's first touch would make 2 MiB
    // resident). A class of blocks up to a page carves, and so touches, its 64 KiB slabs
    // in order, lowest first: its second half is dense, and under `DENSE` the whole
    // superslab when the class fills every superslab it has (`filling`: slabs in use and
    // none free, since only a class without a superslab on its avail list gets here):
    // it has 4 MiB of them in use already.
    // SAFETY: our superslab mapping, not touched for this class yet.
    unsafe { release::thp::advise_superslab(base, SS_SIZE, bs <= os::PAGE, filling) };
    let ss = base.cast::<SuperSlab>();
    let shift = if pool { 16 } else { slab_shift(cls) };
    let slab_size = 1usize << shift;
    let words = if pool {
        MAX_BITMAP_WORDS
    } else {
        bitmap_words(cls)
    };
    let mut n = 0usize;
    while n < MAX_SLABS {
        let start = SS_HEADER + (n << shift);
        if start + bs > SS_SIZE {
            break;
        }
        n += 1;
    }
    // SAFETY: `base` is a fresh (or cached, unused) SS_SIZE mapping we own; the header
    // fits in SS_HEADER bytes (const-asserted).
    unsafe {
        ptr::write_bytes(base, 0, core::mem::size_of::<SuperSlab>());
        if from_large {
            // Every bitmap, not only this class's: a cached superslab's bitmaps are all
            // zero (`new_slab` relies on it), and this one may serve a class with more
            // or longer bitmaps after it empties. (At most 9 pages, in a unit a block
            // of over 256 KiB wrote from its start: most are resident already.)
            ptr::write_bytes(base.add(BITMAP_OFF), 0, BITMAP_END - BITMAP_OFF);
        }
        (*ss).class = cls as u32;
        (*ss).block_size = if pool { 0 } else { bs as u32 };
        (*ss).slab_shift = shift;
        (*ss).n_slabs = n as u32;
        (*ss)
            .free_slabs
            .store(if n == 64 { u64::MAX } else { (1u64 << n) - 1 }, Relaxed);
        let slabs = ptr::addr_of_mut!((*ss).slabs).cast::<Slab>();
        for i in 0..n {
            let start = SS_HEADER + (i << shift);
            let len = slab_size.min(SS_SIZE - start);
            let s = slabs.add(i);
            (*s).start = base.add(start);
            (*s).bitmap = bitmap_word_offset(pool, i, 0, words) as u32;
            // (Word `w` is `w << bitmap_shift` words past word 0, as `bitmap_word_offset`
            // lays them out.)
            (*s).bitmap_shift = if pool {
                POOL_ROW.trailing_zeros() as u8
            } else {
                0
            };
            // The slab's granules point at its first block (their `limit` stays 0, as
            // zeroed above, until the slab is carved).
            let g0 = start >> GRANULE_SHIFT;
            let g1 = (g0 + (slab_size >> GRANULE_SHIFT)).min(GRANULES);
            for g in g0..g1 {
                (*ss).granules[g].neg_start = (base.add(start) as usize as u32).wrapping_neg();
            }
            if pool {
                // No class yet (and no capacity): set as a class takes the slab.
                (*s).class = POOL_CLASS;
            } else {
                (*s).capacity = (len / bs) as u32;
                set_slab_class(ss, s, cls);
            }
        }
    }
    // SAFETY: the header is initialized; publish it (the registry store is a release
    // store, so a validator that sees the unit as a superslab sees the header).
    unsafe { (*ss).magic.store(MAGIC, Relaxed) };
    // SAFETY: `base` is our superslab with its header initialized.
    if unsafe { !registry::mark(base, 1, Kind::Superslab) } {
        // SAFETY: `base` is our fresh superslab, never published.
        unsafe { os::unmap(base, SS_SIZE) };
        return ptr::null_mut();
    }
    let live = SS_LIVE.fetch_add(1, Relaxed) + 1;
    if live > SS_LIVE_PEAK.load(Relaxed) {
        SS_LIVE_PEAK.fetch_max(live, Relaxed);
    }
    // SAFETY: just initialized and registered.
    unsafe { debug_check_superslab(ss, cls) };
    ss
}

/// Give slab `s` of superslab `ss` the class `cls`: the slab's class fields, and those of
/// its granules that validation reads (before its `limit` lets a block pass).
///
/// # Safety
/// `s` is a slab of `ss`, not in use (its granules' `limit` 0); the caller owns it (the
/// class's superslab being set up, or the pool lock held as a class takes it).
unsafe fn set_slab_class(ss: *mut SuperSlab, s: *mut Slab, cls: usize) {
    // SAFETY: the caller's guarantee.
    unsafe {
        (*s).class = cls as u32;
        (*s).block_size = block_size(cls) as u32;
        let slabs = ptr::addr_of_mut!((*ss).slabs).cast::<Slab>();
        let idx = s.offset_from(slabs) as usize;
        let shift = (*ss).slab_shift;
        let g0 = (SS_HEADER + (idx << shift)) >> GRANULE_SHIFT;
        let g1 = (g0 + (1 << (shift - GRANULE_SHIFT))).min(GRANULES);
        for g in g0..g1 {
            let gc = &(*ss).granules[g];
            debug_assert_eq!(
                (*ss).granules[g].limit.load(Relaxed),
                0,
                "a class set on a slab in use"
            );
            gc.magic.store(DIV_MAGIC[cls], Relaxed);
            gc.bin
                .store((cls * core::mem::size_of::<bins::Bin>()) as u32, Relaxed);
            gc.class.store(cls as u32, Relaxed);
        }
    }
}

/// A slab of class `cls` with room, new in the partial list; null when out of memory.
unsafe fn new_slab(c: &mut Central, cls: usize) -> *mut Slab {
    assert_class_locked(cls);
    let s = if is_pool_class(cls) {
        // SAFETY: the class lock is held (the pool lock comes after it).
        unsafe { pool_take_slab(cls) }
    } else {
        // SAFETY: the class lock is held.
        unsafe { class_take_slab(c, cls) }
    };
    if s.is_null() {
        return s;
    }
    // SAFETY: `s` is a free slab of a live superslab, now this class's; lock held.
    unsafe {
        // Growing again: a phase of frees is over.
        let st = stats_of(cls);
        st.shrink.on_new_slab(st.out.load(Relaxed));
        stat_add(&st.slabs, 1);
        let ss = ss_of(s.cast());
        debug_check_superslab(ss, cls);
        debug_assert_eq!((*s).class as usize, cls, "a new slab of another class");
        (*s).nfree = 0;
        (*s).scan = 0;
        (*s).used = 0;
        set_carved(s, 0);
        slab_bytes_add(slab_len(ss, s) as isize);
        // Every bitmap is zero here: a fresh header is zero, and a slab is cleared when
        // it empties (a superslab is released only with every slab empty).
        #[cfg(debug_assertions)]
        for w in 0..bitmap_words(cls) {
            debug_assert_eq!(*bitmap_word(s, w), 0, "a new slab with a stale free bitmap");
        }
        if asan::ENABLED {
            asan::slab_issued((*s).start, slab_len(ss, s));
        }
        partial_push(c, s);
        s
    }
}

/// Which free slab of `ss` to take: a spare first (its pages are still committed), then
/// an idle slab (its pages may be resident: no fault), then the lowest free one. Clears
/// its free, spare and idle bits; returns its index and whether it was a spare and idle.
///
/// # Safety
/// `ss` is a live superslab with a free slab; the lock that guards its slab bits (its
/// class's, or the pool's) is held.
unsafe fn take_free_slab(ss: *mut SuperSlab) -> (usize, bool, bool) {
    // SAFETY: the caller's guarantee.
    unsafe {
        let free = (*ss).free_slabs.load(Relaxed);
        debug_assert_ne!(free, 0, "a superslab on the avail list with no free slab");
        debug_assert_eq!(
            (*ss).spare_slabs & !free,
            0,
            "a spare slab that is not free"
        );
        debug_assert_eq!((*ss).idle_slabs & !free, 0, "an idle slab that is not free");
        let took_spare = (*ss).spare_slabs != 0;
        let idx = if took_spare {
            (*ss).spare_slabs.trailing_zeros() as usize
        } else if (*ss).idle_slabs != 0 {
            (*ss).idle_slabs.trailing_zeros() as usize
        } else {
            free.trailing_zeros() as usize
        };
        debug_assert!(
            idx < (*ss).n_slabs as usize,
            "a free bit past the last slab"
        );
        let bit = 1u64 << idx;
        let was_idle = (*ss).idle_slabs & bit != 0;
        (*ss).idle_slabs &= !bit;
        (*ss).spare_slabs &= !bit;
        (*ss).free_slabs.store(free & !bit, Relaxed);
        (idx, took_spare, was_idle)
    }
}

/// A free slab of a superslab of class `cls` (not a pool class), taken from its avail
/// list (a new superslab when none); null when out of memory.
///
/// # Safety
/// The class lock of `cls` is held, with `c` its state.
unsafe fn class_take_slab(c: &mut Central, cls: usize) -> *mut Slab {
    let mut ss = c.avail;
    if ss.is_null() {
        ss = new_superslab(cls, stats_of(cls).slabs.load(Relaxed) > 0);
        if ss.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: fresh superslab of this class; lock held.
        unsafe { avail_push(c, ss) };
    }
    // SAFETY: `ss` is a live superslab of this class with a free slab; lock held.
    unsafe {
        debug_check_superslab(ss, cls);
        let (idx, took_spare, was_idle) = take_free_slab(ss);
        c.spares.on_new_slab(took_spare);
        if was_idle {
            idle_add(stats_of(cls), -1);
        }
        if (*ss).free_slabs.load(Relaxed) == 0 {
            avail_remove(c, ss);
        }
        ptr::addr_of_mut!((*ss).slabs).cast::<Slab>().add(idx)
    }
}

/// A free slab of a pool superslab, given class `cls` (a pool class); null when out of
/// memory.
///
/// # Safety
/// The class lock of `cls` is held (the pool lock is taken here, after it).
unsafe fn pool_take_slab(cls: usize) -> *mut Slab {
    let mut g = POOL.0.lock();
    let p = &mut *g;
    // SAFETY: the pool's avail list; the pool lock is held.
    let mut ss = unsafe { resident_first(p.avail) };
    if ss.is_null() {
        ss = new_superslab(POOL_CLASS as usize, p.slabs > 0);
        if ss.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: a fresh pool superslab; the pool lock is held.
        unsafe { list_push(&mut p.avail, ss) };
    }
    // SAFETY: `ss` is a live pool superslab with a free slab; the pool lock is held.
    unsafe {
        debug_check_superslab(ss, POOL_CLASS as usize);
        let (idx, took_spare, was_idle) = take_free_slab(ss);
        p.spares.on_new_slab(took_spare);
        if was_idle {
            p.idle -= 1;
            idle_global_add(-1);
        }
        if (*ss).ever_used & (1u64 << idx) == 0 {
            // A slab never used before: the pool grows past its high-water mark. (A slab
            // the decay pass gave back and a class takes again is not growth: the
            // process held its pages before, at its peak.) Under the pool lock: a load
            // and a store.
            (*ss).ever_used |= 1u64 << idx;
            POOL_GROWTH.store(POOL_GROWTH.load(Relaxed) + 1, Relaxed);
        }
        p.slabs += 1;
        if (*ss).free_slabs.load(Relaxed) == 0 {
            list_remove(&mut p.avail, ss);
        }
        let s = ptr::addr_of_mut!((*ss).slabs).cast::<Slab>().add(idx);
        debug_assert_eq!((*s).class, POOL_CLASS, "a free pool slab with a class");
        (*s).capacity = ((1u32 << 16) / block_size(cls) as u32).max(1);
        set_slab_class(ss, s, cls);
        s
    }
}

/// The superslab of the avail list `head` to take a free slab from: among its first
/// [`RESIDENT_SCAN`], the first with a spare or idle slab (its pages still resident: no
/// fault, no growth), else the head (null for an empty list). A superslab joins the
/// list at its head when a slab of it empties (resident, until the decay pass), so
/// resident free slabs tend to sit near the head; the bound keeps a long list (a big
/// heap whose free slabs were all decommitted) from costing a walk per slab taken.
///
/// # Safety
/// `head` is an avail list whose lock (its class's, or the pool's) is held.
unsafe fn resident_first(head: *mut SuperSlab) -> *mut SuperSlab {
    let mut ss = head;
    // SAFETY: the caller's guarantee: live superslabs, linked through `next`.
    unsafe {
        for _ in 0..RESIDENT_SCAN {
            if ss.is_null() {
                break;
            }
            if (*ss).spare_slabs | (*ss).idle_slabs != 0 {
                return ss;
            }
            ss = (*ss).next;
        }
    }
    head
}

/// Superslabs of an avail list [`resident_first`] visits at most.
const RESIDENT_SCAN: usize = 8;

/// A slab's blocks are all back: return it to its superslab (a pool slab to the pool);
/// release an empty superslab.
unsafe fn slab_empty(c: &mut Central, s: *mut Slab) {
    // SAFETY: `s` is a slab of this class with used == 0; lock held.
    unsafe {
        debug_assert_eq!((*s).used, 0, "slab_empty of a slab in use");
        let cls = (*s).class as usize;
        let ss = ss_of((*s).start);
        debug_check_superslab(ss, cls);
        assert_class_locked(cls);
        if (*s).in_partial {
            partial_remove(c, s);
        }
        let carved = (*s).carved.load(Relaxed);
        debug_assert_eq!((*s).nfree, carved, "an empty slab with blocks not free");
        // Every carved block was free (its bit set): clear them for the slab's next use.
        for w in 0..(carved as usize).div_ceil(64) {
            *bitmap_word(s, w) = 0;
        }
        (*s).nfree = 0;
        (*s).scan = 0;
        // Every carved block of an empty slab was in its free list: they go with the reset.
        let st = stats_of(cls);
        stat_add_locked(&st.free, -(carved as i64));
        stat_add_nonneg(&st.slabs, -1);
        let touched = carved as usize * (*s).block_size as usize;
        set_carved(s, 0);
        slab_bytes_add(-(slab_len(ss, s) as isize));
        let shrinking = st.shrink.is_shrinking();
        if (*ss).class == POOL_CLASS {
            let mut g = POOL.0.lock();
            let p = &mut *g;
            (*s).class = POOL_CLASS;
            p.slabs -= 1;
            let stamp = c.idle_stamp;
            let mut idle = 0i64;
            slab_free(
                ss,
                s,
                touched,
                shrinking,
                stamp,
                &mut p.avail,
                &mut p.spares,
                &mut idle,
            );
            p.idle = (p.idle as i64 + idle) as u64;
            idle_global_add(idle);
        } else {
            let stamp = c.idle_stamp;
            let mut idle = 0i64;
            let (avail, spares) = (&mut c.avail, &mut c.spares);
            slab_free(ss, s, touched, shrinking, stamp, avail, spares, &mut idle);
            idle_add(st, idle);
        }
    }
}

/// The superslab side of an emptied slab `s` of `ss` (reset already): its free bit; the
/// superslab unregistered and handed to the release policy when no slab is in use, else
/// back on the avail list at `avail` (a class's or the pool's, with its `spares`) and the
/// slab kept committed as a spare, decommitted, or left resident as an idle slab (stamped
/// `stamp`, or now). `idle` gets the change in idle slabs. Returns whether the superslab
/// was released.
///
/// # Safety
/// `s` is a slab of the live superslab `ss`, just emptied; the lock that guards `ss`'s
/// slab bits and `avail` (its class's, or the pool's) is held.
#[allow(clippy::too_many_arguments)]
unsafe fn slab_free(
    ss: *mut SuperSlab,
    s: *mut Slab,
    touched: usize,
    shrinking: bool,
    stamp: Option<u32>,
    avail: &mut *mut SuperSlab,
    spares: &mut release::lean::SlabSpares,
    idle: &mut i64,
) -> bool {
    // SAFETY: the caller's guarantee.
    unsafe {
        let slabs = ptr::addr_of_mut!((*ss).slabs).cast::<Slab>();
        let idx = s.offset_from(slabs) as usize;
        debug_assert_eq!(
            (*ss).free_slabs.load(Relaxed) & (1u64 << idx),
            0,
            "an empty slab that was not in use"
        );
        let free = (*ss).free_slabs.load(Relaxed) | (1u64 << idx);
        (*ss).free_slabs.store(free, Relaxed);
        let n = (*ss).n_slabs;
        let all = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
        if free == all {
            spares.forget((*ss).spare_slabs.count_ones());
            (*ss).spare_slabs = 0;
            *idle -= i64::from((*ss).idle_slabs.count_ones());
            (*ss).idle_slabs = 0;
            if (*ss).in_avail {
                list_remove(avail, ss);
            }
            (*ss).magic.store(0, Relaxed);
            #[cfg(loom)]
            let late =
                hakmem_os_stats::sync::mutation::on(hakmem_os_stats::sync::mutation::LATE_UNMARK);
            #[cfg(not(loom))]
            let late = false;
            // The ordering rule: unmarked before the release policy may reuse or unmap it.
            if !late {
                registry::mark(ss.cast(), 1, Kind::None);
            }
            SS_LIVE.fetch_sub(1, Relaxed);
            asan::superslab_released(ss.cast(), SS_SIZE);
            release::ss_maybe_decommit_superslab(ss.cast(), SS_SIZE);
            if late {
                registry::mark(ss.cast(), 1, Kind::None);
            }
            true
        } else {
            if !(*ss).in_avail {
                list_push(avail, ss);
            }
            // The release policy decides: a spare kept committed (so a class that
            // empties and refills a slab repeatedly makes no syscall), or decommitted
            // (lean mode). The slab's blocks were all free and it is reset: its pages
            // hold no data.
            let max = if (*ss).class == POOL_CLASS {
                POOL_SPARES
            } else {
                release::lean::spares_for((*ss).slab_shift)
            };
            let fate = spares.empty_slab_max((*s).start, touched, max, shrinking);
            if fate == release::lean::EmptySlab::Spare {
                (*ss).spare_slabs |= 1u64 << idx;
            }
            // Pages left resident: idle from now on, given back by the decay pass if the
            // slab stays free past the interval.
            if fate != release::lean::EmptySlab::Decommitted && release::idle_slab_decay().is_some()
            {
                debug_assert_eq!((*ss).idle_slabs & (1u64 << idx), 0, "an idle slab emptied");
                (*ss).idle_slabs |= 1u64 << idx;
                // Idle from now, or, emptied by the decay pass's drain of a transfer
                // cache no refill used for an interval, since that cache's last use.
                (*ss).idle_since[idx] = stamp.unwrap_or_else(|| os::now_ms() as u32);
                *idle += 1;
            }
            false
        }
    }
}

/// Decommit every spare slab of the class (their pages hold no data).
unsafe fn decommit_spares(c: &mut Central) {
    let mut ss = c.avail;
    // SAFETY: the avail list holds live superslabs of this class; lock held. A spare is
    // a free slab (never handed out since it emptied), so its pages hold no block.
    unsafe {
        while !ss.is_null() && c.spares.count() > 0 {
            let mut bits = (*ss).spare_slabs;
            while bits != 0 {
                let idx = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let s = ptr::addr_of_mut!((*ss).slabs).cast::<Slab>().add(idx);
                let len = (*s).capacity as usize * (*ss).block_size as usize;
                c.spares.give_back_spare((*s).start, len);
                if (*ss).idle_slabs & (1u64 << idx) != 0 {
                    (*ss).idle_slabs &= !(1u64 << idx);
                    idle_add(stats_of((*ss).class as usize), -1);
                }
            }
            (*ss).spare_slabs = 0;
            ss = (*ss).next;
        }
    }
    // Every spare is a free slab, so its superslab is on the avail list.
    debug_assert_eq!(c.spares.count(), 0, "a spare slab outside the avail list");
}

/// Take up to `want` blocks of class `cls` (`want >= 1`), linked into a chain with its
/// tail. The chain is shorter only when the OS refuses memory (empty chain: out of
/// memory). (A thread cache takes blocks as pointers, [`refill_into`]; this links them,
/// for callers that want a chain.)
pub fn refill(cls: usize, want: u32) -> Chain {
    refill_upto(cls, want, want)
}

/// Like [`refill`], but up to `max` blocks may come from the transfer cache (see
/// [`refill_into`]).
pub fn refill_upto(cls: usize, want: u32, max: u32) -> Chain {
    let mut chain = Chain::EMPTY;
    let mut buf = [ptr::null_mut::<u8>(); 256];
    let max = max.max(want);
    while chain.count < want {
        let room = ((max - chain.count) as usize).min(buf.len());
        let need = ((want - chain.count) as usize).min(room);
        let n = refill_into(cls, &mut buf[..room], need);
        for &b in &buf[..n] {
            chain.push_back(b);
        }
        if n < need {
            break;
        }
    }
    if !chain.tail.is_null() {
        // SAFETY: the chain's blocks are ours; the tail's link ends it.
        unsafe { set_next(chain.tail, ptr::null_mut()) };
    }
    chain
}

/// Take blocks of class `cls` into `out`: those of the transfer cache first (up to
/// `out.len()`), then, if they were fewer than `want`, blocks of the slabs (free blocks
/// from a slab's bitmap, lowest address first, then fresh ones carved) up to `want` in
/// all. Returns how many were written to `out[..n]`; fewer than `want` (`want <=
/// out.len()`) only when the OS refuses memory. No block's memory is read: the caller
/// gets addresses, not a list through the blocks (fresh blocks get their free mark
/// written).
pub fn refill_into(cls: usize, out: &mut [*mut u8], want: usize) -> usize {
    debug_assert!(
        want >= 1 && want <= out.len(),
        "refill_into {want} of {}",
        out.len()
    );
    let want = want.min(out.len());
    if HARDENED {
        // Before any block exists, the link secret must (see `link_key`).
        link_secret();
    }
    let Some(pc) = CENTRAL.get(cls) else {
        return 0;
    };
    let st = stats_of(cls);
    let growth = pool_growth();
    let mut n = 0;
    if slab_shift(cls) == 16 {
        n = xfer_take(cls, out);
        if n >= want {
            return n;
        }
    }
    let bs = block_size(cls);
    let mut g = pc.0.lock();
    let c = &mut *g;
    let from_xfer = n;
    let mut grew = false;
    // SAFETY: the class lock (held by `g`) serializes all access to this class's
    // central state and its slabs' metadata.
    unsafe {
        let mut from_free = 0i64;
        while n < want {
            let mut s = c.partial;
            if s.is_null() {
                s = new_slab(c, cls);
                if s.is_null() {
                    break;
                }
                grew = true;
            }
            let sl = &mut *s;
            debug_check_superslab(ss_of(sl.start), cls);
            debug_assert!(sl.in_partial, "a slab with room not on the partial list");
            // Free blocks first, lowest address first, from the bitmap (the blocks' memory
            // is not touched).
            if sl.nfree > 0 {
                let mut w = sl.scan as usize;
                while n < want && sl.nfree > 0 {
                    debug_assert!(w < bitmap_words(cls), "free blocks counted past the bitmap");
                    let mut word = *bitmap_word(s, w);
                    if word == 0 {
                        w += 1;
                        continue;
                    }
                    while word != 0 && n < want {
                        let i = w * 64 + word.trailing_zeros() as usize;
                        word &= word - 1;
                        debug_assert!(
                            i < sl.carved.load(Relaxed) as usize,
                            "a free bit past the carved blocks"
                        );
                        out[n] = sl.start.add(i * bs);
                        n += 1;
                        sl.nfree -= 1;
                        sl.used += 1;
                        from_free += 1;
                    }
                    *bitmap_word(s, w) = word;
                }
                sl.scan = w as u16;
            }
            let mut carved = sl.carved.load(Relaxed);
            while n < want && carved < sl.capacity {
                let b = sl.start.add(carved as usize * bs);
                asan::block_carving(b, bs);
                // A fresh block is free: mark it, so that freeing it before it was ever
                // handed out is caught like a double free (double-free-check builds).
                bins::set_free_mark(b);
                bins::scrub_fresh(b, bs);
                asan::block_carved(b, bs);
                out[n] = b;
                n += 1;
                carved += 1;
                sl.used += 1;
            }
            set_carved(ptr::from_mut(sl), carved);
            debug_assert!(carved <= sl.capacity && sl.used <= carved, "slab counts");
            if sl.nfree == 0 && carved == sl.capacity {
                partial_remove(c, s);
            }
        }
        debug_assert!(n <= want, "a refill of more than asked");
        stat_add_nonneg(&st.out, (n - from_xfer) as i64);
        stat_add_locked(&st.free, -from_free);
        note_refill(st);
        if HARDENED && n - from_xfer > 1 {
            if c.rng == 0 {
                c.rng =
                    (link_secret() as u64 ^ (cls as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
            }
            shuffle(&mut out[from_xfer..n], &mut c.rng);
        }
    }
    // The class grew: a moment for the decay pass (rate-limited), so that the empty
    // slabs other classes left resident go back as this one takes new memory.
    drop(g);
    if grew {
        if is_pool_class(cls) && pool_growth() != growth {
            give_back_idle(cls);
        }
        decay_idle_slabs(false);
    }
    n
}

/// Return `count` blocks of class `cls`, linked from `head`, to the central lists (see
/// [`flush_slice`], which this calls with the chain's blocks).
///
/// # Safety
/// The chain holds exactly `count` distinct blocks of class `cls`, each handed out by
/// a refill and not flushed since, linked through their first word, the last link
/// null; the caller gives up all of them.
pub unsafe fn flush(cls: usize, head: *mut u8, count: u32) -> bool {
    debug_assert!(count > 0 && !head.is_null(), "a flush of an empty chain");
    let mut buf = [ptr::null_mut::<u8>(); 256];
    let mut b = head;
    let mut left = count as usize;
    let mut shrinking = false;
    while left > 0 {
        let k = left.min(buf.len());
        for slot in &mut buf[..k] {
            debug_assert!(!b.is_null(), "a chain shorter than its count");
            *slot = b;
            // SAFETY: a block of the caller's chain; once its link is read, its first
            // word is the free block's canary again (hardened builds).
            unsafe {
                let next = next_of(b);
                bins::set_free_canary(b);
                b = next;
            }
        }
        // SAFETY: forwarded caller guarantee (these `k` blocks of the chain).
        shrinking |= unsafe { flush_slice(cls, &buf[..k]) };
        left -= k;
    }
    debug_assert!(b.is_null(), "a chain longer than its count");
    shrinking
}

/// Return the blocks `blocks` of class `cls` to the central lists: all together to the
/// transfer cache when it has room (a copy of the pointers), else each to its slab (a bit
/// in its bitmap; the blocks' memory is not touched).
///
/// # Safety
/// `blocks` are distinct blocks of class `cls`, each handed out by a refill and not
/// flushed since; the caller gives up all of them.
///
/// Returns true when the class is *shrinking* in lean mode (its blocks out fell under
/// `1 /` [`SHRINK_RATIO`](release::lean::SHRINK_RATIO) of their recent peak, and the peak
/// was at least four slabs' worth: the release policy's rule,
/// [`release::lean::ShrinkState`]; until the class takes a new slab): a thread cache
/// should then give back what it holds of the class and cache little until its next
/// refill (see [`Bin::overflow`](bins::Bin::overflow)), so that a phase of frees leaves
/// no slab pinned by a few cached blocks.
pub unsafe fn flush_slice(cls: usize, blocks: &[*mut u8]) -> bool {
    // SAFETY: forwarded caller guarantee.
    unsafe { flush_slice_via(cls, blocks, true) }
}

/// [`flush_slice`], each block straight to its slab, never to the transfer cache: for a
/// thread cache giving back the blocks of an idle class (see [`pool_growth`]), which
/// would only pin their slabs there.
///
/// # Safety
/// As [`flush_slice`].
pub unsafe fn flush_slice_to_slabs(cls: usize, blocks: &[*mut u8]) -> bool {
    // SAFETY: forwarded caller guarantee.
    unsafe { flush_slice_via(cls, blocks, false) }
}

/// [`flush_slice`], through the transfer cache when `xfer` and it has room.
///
/// # Safety
/// As [`flush_slice`].
unsafe fn flush_slice_via(cls: usize, blocks: &[*mut u8], xfer: bool) -> bool {
    let Some(pc) = CENTRAL.get(cls) else {
        return false;
    };
    if blocks.is_empty() {
        return false;
    }
    let st = stats_of(cls);
    // The blocks go to the transfer cache when it has room (not while the class is
    // shrinking: blocks there would pin their slabs).
    let cached = xfer
        && blocks.len() > 1
        && slab_shift(cls) == 16
        && !st.shrink.is_shrinking()
        // SAFETY: forwarded caller guarantee.
        && unsafe { xfer_put(cls, blocks) };
    // (A class that started shrinking meanwhile, in another thread, drains the blocks
    // just put below, and this bin shrinks too.)
    if cached && !st.shrink.is_shrinking() && !should_shrink(cls) {
        return false;
    }
    let mut g = pc.0.lock();
    let c = &mut *g;
    let idle0 = st.idle.load(Relaxed);
    // SAFETY: as in `refill_into`; the blocks are ours to return by the caller's
    // guarantee (unless they went to the transfer cache above).
    let shrinking = unsafe {
        if !cached {
            // Counted free before they reach their slabs: a slab they empty takes its
            // blocks out of `free` again, and a stats reader (no lock) must never see
            // the count below zero.
            stat_add_nonneg(&st.out, -(blocks.len() as i64));
            stat_add_locked(&st.free, blocks.len() as i64);
            let magic = DIV_MAGIC[cls];
            for &b in blocks {
                give_back_locked(c, cls, b, magic);
            }
        }
        if st
            .shrink
            .start_if_due(st.out.load(Relaxed), shrink_floor(cls))
        {
            c.spares.start_shrinking();
            decommit_spares(c);
        }
        let shrinking = st.shrink.is_shrinking();
        if shrinking {
            // Blocks in the transfer cache would pin their slabs: back to the slabs.
            xfer_drain_locked(c, cls);
        }
        shrinking
    };
    // A slab emptied and stayed resident: a moment for the decay pass (rate-limited),
    // once no class lock is held.
    let emptied = st.idle.load(Relaxed) > idle0;
    drop(g);
    if emptied {
        decay_idle_slabs(false);
    }
    shrinking
}

sync_static! {
    /// When the decay pass may run next (`os::now_ms`): one pass per quarter of the
    /// interval at most, whichever thread triggers it.
    static NEXT_IDLE_PASS: AtomicU64 = AtomicU64::new(0);
}

/// The decay pass over empty slabs (issue 17's decay, for slabs inside live
/// superslabs): in every class, give back the pages of each slab that stayed idle
/// (free, its pages left resident) longer than the release policy's interval
/// ([`release::idle_slab_decay`]); with `all`, of every idle slab whatever its age
/// (`trim`). First, a class's transfer cache that no refill took from for the interval
/// (every one, with `all`) goes back to its slabs: its blocks would pin them, a finished
/// thread pool's for good. The slabs that drain empties are idle since the cache's last
/// use, so the same pass gives them back.
///
/// Runs on slow paths: a refill that took a new slab, a flush that emptied one, the
/// facade's allocation slow path (rate-limited to a pass per quarter interval; with
/// nothing idle and no transfer-cache block put since the last pass, two relaxed loads
/// and no clock read), and the facade's `trim`, `thread_flush` and background purge.
/// Takes each class lock in turn (and, to drain, that class's shard locks), never two
/// class locks at once: the caller holds none. Returns the slabs given back.
pub fn decay_idle_slabs(all: bool) -> usize {
    if !all && IDLE_SLABS.load(Relaxed) == 0 && !XFER_HELD.load(Relaxed) {
        return 0;
    }
    let Some((decay, advice)) = release::idle_slab_decay() else {
        return 0;
    };
    let now = os::now_ms();
    if !all {
        let next = NEXT_IDLE_PASS.load(Relaxed);
        if now < next
            || NEXT_IDLE_PASS
                .compare_exchange(next, now + (decay / 4).max(1), Relaxed, Relaxed)
                .is_err()
        {
            return 0;
        }
    }
    // A put from now on sets it again; a cache left fresh below sets it again too.
    XFER_HELD.store(false, Relaxed);
    let now32 = now as u32;
    let mut given = 0;
    let mut xfer_left = false;
    for cls in 0..NCLASS {
        let st = stats_of(cls);
        let xfer = st.xfer.load(Relaxed) != 0;
        if st.idle.load(Relaxed) == 0 && !xfer {
            continue;
        }
        let Some(pc) = CENTRAL.get(cls) else {
            continue;
        };
        let mut g = pc.0.lock();
        let c = &mut *g;
        if xfer {
            let used = st.xfer_used.load(Relaxed);
            if all || now.saturating_sub(used) >= decay {
                debug_assert!(c.idle_stamp.is_none(), "a drain inside a drain");
                c.idle_stamp = Some(if all { now32 } else { used as u32 });
                // SAFETY: `c` is the locked central state of `cls`.
                unsafe { xfer_drain_locked(c, cls) };
                c.idle_stamp = None;
            } else {
                xfer_left = true;
            }
        }
        // SAFETY: `c.avail` is this class's avail list, `c.spares` its spares, `st.idle`
        // its idle slabs; the class lock is held.
        let n = unsafe {
            decay_avail_list(
                c.avail,
                cls,
                st.idle.load(Relaxed),
                &mut c.spares,
                (now32, decay, all, advice),
            )
        };
        idle_add(st, -(n as i64));
        given += n as usize;
        debug_assert!(
            all || st.idle.load(Relaxed) == 0 || !c.avail.is_null(),
            "class {cls}: idle slabs counted outside the avail list"
        );
        drop(g);
    }
    if xfer_left {
        XFER_HELD.store(true, Relaxed);
    }
    // The pool's idle slabs (the drains above may have added some).
    if IDLE_SLABS.load(Relaxed) != 0 {
        let mut g = POOL.0.lock();
        let p = &mut *g;
        // SAFETY: the pool's avail list, spares and idle slabs; the pool lock is held.
        let n = unsafe {
            decay_avail_list(
                p.avail,
                POOL_CLASS as usize,
                p.idle,
                &mut p.spares,
                (now32, decay, all, advice),
            )
        };
        p.idle -= n;
        idle_global_add(-(n as i64));
        given += n as usize;
    }
    // Superslabs the drains emptied went to the release policy: its decay check.
    release::tick();
    given
}

/// The decay pass over one avail list (a class's, `owner`, or the pool's,
/// [`POOL_CLASS`]): give back the pages of each slab of its superslabs that stayed idle
/// past `decay` ms at `now32` (every idle slab with `all`), with `advice`, until the
/// owner's `idle` slabs are all visited. Returns the slabs given back; the caller takes
/// them off its idle counts (a spare among them is forgotten in `spares` here).
///
/// # Safety
/// `head` is the owner's avail list, `spares` its spares and `idle` its idle slabs; the
/// owner's lock (the class's, or the pool's) is held. Every idle slab is free, so on the
/// list, and holds no block (it was reset when it emptied and not handed out since).
unsafe fn decay_avail_list(
    head: *mut SuperSlab,
    owner: usize,
    idle: u64,
    spares: &mut release::lean::SlabSpares,
    (now32, decay, all, advice): (u32, u64, bool, os::Advice),
) -> u64 {
    let mut given = 0;
    let mut ss = head;
    // SAFETY: the caller's guarantee.
    unsafe {
        while !ss.is_null() && given < idle {
            debug_check_superslab(ss, owner);
            let slabs = ptr::addr_of_mut!((*ss).slabs).cast::<Slab>();
            let mut bits = (*ss).idle_slabs;
            debug_assert_eq!(
                (*ss).idle_slabs & !(*ss).free_slabs.load(Relaxed),
                0,
                "an idle slab that is not free"
            );
            while bits != 0 {
                let idx = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let since = (*ss).idle_since[idx];
                if !all && u64::from(now32.wrapping_sub(since)) < decay {
                    continue;
                }
                let s = slabs.add(idx);
                release::idle_slab_decommit((*s).start, slab_len(ss, s), advice);
                let bit = 1u64 << idx;
                (*ss).idle_slabs &= !bit;
                if (*ss).spare_slabs & bit != 0 {
                    (*ss).spare_slabs &= !bit;
                    spares.forget(1);
                }
                given += 1;
            }
            ss = (*ss).next;
        }
    }
    given
}

/// Block `b` back to its slab: its bit set in the slab's free bitmap (the block's memory
/// is not touched); an emptied slab is reset. The caller counts it (`out`, `free`).
///
/// # Safety
/// `c` is the locked central state of `cls`; `b` is a block of class `cls` handed out
/// by a refill and given up by the caller; `magic` is `DIV_MAGIC[cls]`.
#[inline(always)]
unsafe fn give_back_locked(c: &mut Central, cls: usize, b: *mut u8, magic: u64) {
    assert_class_locked(cls);
    // SAFETY: the caller's guarantees: `b` lies in a live superslab of `cls`.
    unsafe {
        debug_check_superslab(ss_of(b), cls);
        debug_assert_eq!(
            validate_class(b),
            Some(cls),
            "a flushed block is not a block"
        );
        let s = slab_of(b);
        debug_assert!((*s).used > 0, "a block returned to a slab with none out");
        let i = div_block(b as usize - (*s).start as usize, magic);
        let w = bitmap_word(s, i >> 6);
        let bit = 1u64 << (i & 63);
        if *w & bit != 0 {
            // Free already: the same block twice in what was given back (a double free
            // whose free mark the program overwrote in between).
            hakmem_os_stats::report::fatal("free(): double free of block", b as usize);
        }
        *w |= bit;
        (*s).nfree += 1;
        if ((i >> 6) as u16) < (*s).scan {
            (*s).scan = (i >> 6) as u16;
        }
        (*s).used -= 1;
        if (*s).used == 0 {
            slab_empty(c, s);
        } else if !(*s).in_partial {
            partial_push(c, s);
        }
    }
}

/// Put the first (up to 128) blocks of `v` in random order, so that consecutive
/// allocations are not adjacent in memory (hardened builds).
fn shuffle(v: &mut [*mut u8], rng: &mut u64) {
    let n = v.len().min(128);
    let mut i = n;
    while i > 1 {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let j = (*rng % i as u64) as usize;
        i -= 1;
        v.swap(i, j);
    }
}

/// Return the blocks of every transfer cache to their slabs (for `trim`), so empty slabs
/// and superslabs can be released.
pub fn drain_transfer_caches() {
    for (cls, pc) in CENTRAL.iter().enumerate() {
        // SAFETY: the locked central state of `cls`.
        unsafe { xfer_drain_locked(&mut pc.0.lock(), cls) };
    }
}

/// Make sure class `cls` has a slab with room ready (maps a superslab ahead of first use).
/// Returns false when out of memory.
pub fn reserve(cls: usize) -> bool {
    let Some(pc) = CENTRAL.get(cls) else {
        return false;
    };
    let mut c = pc.0.lock();
    // SAFETY: the locked central state of `cls`.
    !c.partial.is_null() || unsafe { !new_slab(&mut c, cls).is_null() }
}

/// Superslabs live now.
pub fn superslabs_live() -> usize {
    SS_LIVE.load(Relaxed)
}

/// The most superslabs live at once so far.
pub fn superslabs_live_peak() -> usize {
    SS_LIVE_PEAK.load(Relaxed)
}

/// Fork handler: take every class lock (in class order), then every transfer-cache
/// shard lock, then the release-policy locks.
///
/// # Safety
/// Only in a `pthread_atfork` prepare handler, paired with [`fork_release`] in the
/// parent's and the child's handlers; the calling thread holds none of these locks.
pub unsafe fn fork_prepare() {
    // SAFETY: forwarded caller guarantee (a fork handler, paired with `fork_release`).
    unsafe {
        for pc in CENTRAL.iter() {
            pc.0.fork_lock();
        }
        POOL.0.fork_lock();
        xfer::fork_lock_all();
        release::fork_prepare();
    }
}

/// Fork handler for parent and child: release what [`fork_prepare`] took.
///
/// # Safety
/// The calling thread took the locks with [`fork_prepare`] (before the `fork`, in the
/// child) and has not released them since.
pub unsafe fn fork_release() {
    // SAFETY: forwarded caller guarantee.
    unsafe {
        release::fork_release();
        xfer::fork_unlock_all();
        POOL.0.fork_unlock();
        for pc in CENTRAL.iter() {
            pc.0.fork_unlock();
        }
    }
}

#[cfg(test)]
mod tests;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
