//! # hakmem-release-policy: what happens to empty memory
//!
//! **Owns** the decision for a region that holds no live block any more (an empty
//! superslab, a freed large mapping): keep it in a bounded LRU cache for reuse, decommit
//! its pages (`MADV_FREE` / `MADV_DONTNEED`) while keeping it, or retire it (`munmap`).
//! It also owns the two caches of such regions ([`SUPERSLABS`] and [`LARGE`]), and lean
//! mode's rules for memory that is not empty yet ([`lean`]: which empty slab of a class
//! stays a committed spare, when a class is *shrinking*, the transfer cache's and the mid
//! bins' bounds in lean mode), which `hakmem-ss-allocation` and `hakmem-mid` ask: every
//! decision to give memory back is made here.
//!
//! **Entry points**: [`ss_maybe_decommit_superslab`] (an empty superslab comes in),
//! [`slab_maybe_decommit`] (an empty slab inside a live superslab),
//! [`ss_take_cached`] (a superslab is needed: an empty one, else one cut from a cached
//! large mapping), [`idle_slab_decay`] / [`idle_slab_decommit`] (an empty slab left
//! resident, once idle past the interval), [`ss_note_live`] (slab memory in use, for
//! the decaying peak), and the same pair for large mappings: [`large_release`] /
//! [`large_take_cached`] (and [`large_take_committed`]); [`decide`] (the rule a release
//! applies); [`tick`] (the decay check of the slow paths);
//! [`background`] (the opt-in purge thread); for slab classes
//! [`lean::SlabSpares`] (an empty slab: spare or decommit) and [`lean::ShrinkState`]
//! (the shrink signal), [`lean::xfer_max_bytes`], [`lean::mid_bin_bound`],
//! [`lean::lean_mode`]; [`thp::advise_superslab`], [`thp::advise_large`] and
//! [`thp::advise_metadata`] (transparent huge pages only where memory is dense, before a
//! range's first touch).
//!
//! **Decay** (issue 17): empty memory that was in use a moment ago is kept for a decay
//! interval and given back only when it stays unused, so a program that frees its
//! working set and builds it again (a request loop, a batch job, a compiler pass) maps
//! and faults nothing after the first round. Each cache has a decay interval
//! ([`Limits::decay_ms`]: `HAKMEM_SS_DECAY_MS`, `HAKMEM_LARGE_DECAY_MS`) and an *idle
//! target*: what it may keep past the interval ([`Limits::idle_entries`], and
//! [`Limits::idle_fraction`] of the recent peak of its kind in use, a high-water mark
//! that halves per interval: [`RegionCache::note_live`]). Within the interval the
//! superslab cache keeps up to [`MAX_ENTRIES`] superslabs (256 MiB), the large cache up
//! to `HAKMEM_LARGE_CACHE_MIB`; past it, the oldest regions go down to the idle target:
//! at most `HAKMEM_SS_CACHE_MAX` superslabs and a quarter ([`IDLE_FRACTION`]) of the
//! recent peak of slab memory in use (the slabs in use, not the superslabs they keep
//! mapped); no large mapping. The check runs on slow paths
//! only ([`tick`]: one relaxed load per cache when nothing is cached, else the coarse
//! clock `CLOCK_MONOTONIC_COARSE`, and the lock only when a purge is due): every entry point here, the facade's `thread_flush` and `trim`, and
//! the background thread when `HAKMEM_BG_PURGE_MS` asks for one. Without that thread a
//! process that makes no call keeps its caches until its next slow path. Measured in
//! docs/results/120-decay.md.
//!
//! **Choosing a cached region** (issue 16, docs/results/160-large-cabi.md): a release
//! may say how many bytes from its start the region's blocks were asked to span
//! ([`RegionCache::release_touched`]; `hakmem-large` keeps that count in each block's
//! header), its *hot* bytes, which may be resident; a take says how many the new block
//! will span ([`RegionCache::take_for`]). Among the regions of a fitting length it takes
//! the one whose hot bytes cover the block's most tightly (no page to fault in, the
//! fewest idle resident pages under the block), else, none covering, the hottest (the
//! fewest to fault in); ties: the shorter, then the newest. So a small block does not
//! take the mapping a big one made resident while a colder one waits, which would leave
//! the next big block to fault all its pages in again; blocks of several sizes rebuilt
//! round after round each find their own region again; and a region whose pages are
//! still there goes before one decommitted with `DONTNEED`. Where the large cache
//! decommits (lean mode with decommit on: LEAN) it chooses by length alone, as
//! [`RegionCache::take`] does (the shortest, the newest of those): most of its mappings
//! are cold there and the committed ones are its spares, whose pages the hot rule would
//! hand to small blocks while the spare budget kept yet another mapping committed
//! (LEAN's peak RSS +14% on `cbench large`). Superslabs are taken by length. The
//! entries are indexed by *hot class* (a quarter octave of hot bytes): a take visits the
//! classes from the wanted bytes' upward to the first with a covering region, else
//! downward, not every entry.
//!
//! **Gates** (read once, through `hakmem-env-gates`): `HAKMEM_SS_MEM_LEAN` (lean mode:
//! decommit cached regions per the next gate), `HAKMEM_SS_MEM_LEAN_DECOMMIT` (`FREE`,
//! `DONTNEED`, `OFF`), `HAKMEM_SS_CACHE_MAX` (empty superslabs kept past the decay
//! interval, or at all times without one), `HAKMEM_SS_DECAY_MS` (the superslab cache's
//! decay interval), `HAKMEM_LARGE_CACHE_MIB` (bytes of freed large mappings kept),
//! `HAKMEM_LARGE_DECAY_MS` (how long a freed large mapping may stay unused),
//! `HAKMEM_BG_PURGE_MS` (the background thread's period; 0, the default: no thread),
//! `HAKMEM_THP` (where transparent huge pages may back memory: [`thp`]).
//!
//! **Features**: none; the policy is chosen at run time by the gates above, whose
//! defaults the preset sets.
//!
//! **Invariants**
//! - A cached region holds no live data: callers hand over regions only when empty.
//! - A cache counts the bytes a region may hold resident, not the bytes last requested:
//!   its whole length (a large block may be written up to its usable size, the end of
//!   its mapping, and one shrunk in place keeps the pages it touched; `MADV_FREE` pages
//!   stay resident until the kernel wants them), or nothing once decommitted with
//!   `MADV_DONTNEED`. Callers hand over `(base, len)` and at most a hint of the bytes
//!   its blocks spanned, which steers only the choice of a region, never a bound (it is
//!   clamped to the length, and 0 once decommitted with `DONTNEED`): this box alone
//!   decides.
//! - The caches never exceed their bounds: at most [`MAX_ENTRIES`] superslabs (at most
//!   `HAKMEM_SS_CACHE_MAX` with `HAKMEM_SS_DECAY_MS=0`) and at most
//!   `HAKMEM_LARGE_CACHE_MIB` MiB (counted as above) and [`MAX_ENTRIES`] entries of
//!   large mappings. A release retires, at once and oldest first, every entry that must
//!   go for the new region to fit (a region bigger than the whole byte bound is retired
//!   itself); regions idle past their decay interval are retired at the next purge,
//!   oldest first and all at once, down to the idle target.
//! - One lock acquisition per decision: a release decides a region's fate ([`decide`])
//!   and records it under one acquisition of the cache's lock (a region kept committed,
//!   maybe as a spare, enters the cache then), so two releases cannot both take the last
//!   of the spare budget; only a region to decommit leaves the lock for the system call
//!   and comes back to be stored. The class rules of [`lean`] decide and record in one
//!   call, under the caller's class lock.
//! - Every decommit and retire is counted in the OS box: `lean_decommit` and `lean_retire`
//!   only in lean mode (0 when it is off, as the seed's counters), `retired` always.
//! - Never allocates; the cache lock is never held across `fork` (see [`fork_prepare`]).
//!
//! ```
//! use hakmem_os_stats::os;
//! use hakmem_release_policy as rp;
//! let len = 1 << 20;
//! let p = os::map(len);
//! // SAFETY: `p` is a mapping of `len` bytes made by the OS box that holds no live data.
//! unsafe { rp::large_release(p, len, len) };
//! // The cache may hand it back (or it was retired if the cache is disabled).
//! if let Some((q, qlen, _dirty, _hot)) = rp::large_take_cached(len, len, len) {
//!     assert_eq!((q, qlen), (p, len));
//!     // SAFETY: we own the region again.
//!     unsafe { os::unmap(q, qlen) };
//! }
//! ```
#![deny(missing_docs)]
#![no_std]

pub mod background;
pub mod lean;
pub mod thp;

use hakmem_env_gates::{Decommit, gates};
use hakmem_os_stats::lock::Locked;
use hakmem_os_stats::sync::Ordering::Relaxed;
use hakmem_os_stats::sync::{AtomicU64, AtomicUsize};
use hakmem_os_stats::{os, stats};

/// Most regions one cache can hold, whatever the gates say.
pub const MAX_ENTRIES: usize = 64;

/// The longest freed large mapping the large cache keeps (32 MiB): a longer one is
/// unmapped at its `free`. The cache saves the page faults of a block freed and asked for
/// again a moment later; for a big one that saving is small beside what keeping it costs
/// a program that does not ask again: its pages stay resident until the decay check next
/// runs, on a slow path the program may never take (a 500 MiB buffer freed by a program
/// that then only allocated from its thread caches, or slept, stayed resident;
/// results/205). Kept decommitted instead, its address space would still count against
/// the kernel's commit limit under strict overcommit, unbounded by the cache's byte
/// bound (which counts what may be resident). glibc unmaps blocks above its `mmap`
/// threshold (32 MiB at most) at once, jemalloc purges blocks above its
/// `oversize_threshold` (8 MiB) at once, mimalloc frees its huge segments at once.
pub const LARGE_REGION_MAX: usize = 32 << 20;

#[derive(Clone, Copy)]
struct Entry {
    base: *mut u8,
    len: usize,
    /// True when its pages were decommitted with `DONTNEED` (they read as zeros).
    zeroed: bool,
    /// True when it was kept committed as the cache's spare (see [`Limits::spare_bytes`]).
    spare: bool,
    /// The bytes from its start that the blocks it held were asked to span, so that may
    /// be resident (the caller's estimate, at most `len`; 0 once decommitted with
    /// `DONTNEED`). Only for choosing a region in [`RegionCache::take_for`], never for a
    /// bound: a program may write a block up to its usable size.
    hot: usize,
    /// When it entered the cache ([`os::now_ms`]), for decay.
    stamp: u64,
    /// The arrival list (oldest to newest): the next older and newer entries' slots.
    older: u8,
    newer: u8,
    /// The list of its hot class ([`hot_class`], newest first): the next older and
    /// newer entries' slots in it.
    cls_older: u8,
    cls_newer: u8,
    /// Its hot class.
    cls: u8,
}

impl Entry {
    /// What it counts against the byte bound: the bytes it may hold resident, which is
    /// its whole length, or 0 once decommitted with `DONTNEED`.
    #[inline]
    fn weight(&self) -> usize {
        if self.zeroed { 0 } else { self.len }
    }
}

/// No slot (the end of a list).
const NIL: u8 = u8::MAX;

const EMPTY: Entry = Entry {
    base: core::ptr::null_mut(),
    len: 0,
    zeroed: false,
    spare: false,
    hot: 0,
    stamp: 0,
    older: NIL,
    newer: NIL,
    cls_older: NIL,
    cls_newer: NIL,
    cls: 0,
};

/// Hot classes: quarter octaves of the hot bytes (all under 4 KiB in class 0).
const NCLS: usize = 256;

/// The class of `hot` bytes: 0 under 4 KiB, then four classes per doubling, so that
/// the classes grow with the bytes (a class holds hot bytes within a quarter octave).
#[inline]
fn hot_class(hot: usize) -> u8 {
    if hot < 4096 {
        return 0;
    }
    let q = hot.ilog2(); // 12..=63
    let frac = (hot >> (q - 2)) & 3;
    // At most (63 - 12) * 4 + 3 + 1 = 208 < NCLS.
    ((q - 12) * 4 + frac as u32 + 1) as u8
}

// Slots are `u8` indices below `MAX_ENTRIES`, masked with `SLOT_MASK` on every access (no
// bounds check, no panic path); a free-slot set is one `u64`.
const _: () = assert!(MAX_ENTRIES == 64 && NCLS == 256);
const SLOT_MASK: u8 = (MAX_ENTRIES - 1) as u8;

/// A bounded LRU cache of empty regions; index 0 is the oldest.
pub struct RegionCache {
    inner: Locked<Inner>,
    /// The earliest [`os::now_ms`] at which a purge may find something to retire
    /// (`u64::MAX`: nothing cached), read without the lock by [`RegionCache::purge_due`]
    /// so that a slow path with nothing to purge reads neither the clock nor the lock.
    /// Relaxed: a stale value costs a purge one call late or one lock taken for nothing.
    due: AtomicU64,
    /// The recent peak of bytes of this kind in use ([`RegionCache::note_live`]).
    peak: DecayingPeak,
}

/// A decaying high-water mark: the most bytes of one region kind in use lately. It
/// follows the bytes in use up at once and halves once per decay interval that passes
/// (never under the bytes in use now), so a cache may keep, past its decay interval, a
/// share of what the program needed recently ([`Limits::idle_fraction`]), and an idle
/// program's share shrinks with time. Relaxed atomics: a lost update of this heuristic
/// keeps a region a little longer or shorter, never breaks a bound.
struct DecayingPeak {
    live: AtomicUsize,
    peak: AtomicUsize,
    /// When the peak last decayed ([`os::now_ms`]).
    stamp: AtomicU64,
}

impl DecayingPeak {
    hakmem_os_stats::loom_const_fn! {
        fn new() -> Self {
            DecayingPeak {
                live: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                stamp: AtomicU64::new(0),
            }
        }
    }

    /// The bytes in use now; a new peak restarts the decay clock (stamp 0: the next
    /// [`at`](Self::at) starts it, so this needs no clock read).
    fn note_live(&self, bytes: usize) {
        self.live.store(bytes, Relaxed);
        if bytes > self.peak.load(Relaxed) {
            self.peak.store(bytes, Relaxed);
            self.stamp.store(0, Relaxed);
        }
    }

    /// The peak at `now`, halved once per `decay_ms` elapsed since it was last set or
    /// decayed (never under the bytes in use).
    fn at(&self, now: u64, decay_ms: u64) -> usize {
        let peak = self.peak.load(Relaxed);
        if decay_ms == 0 {
            return peak;
        }
        let stamp = self.stamp.load(Relaxed);
        if stamp == 0 {
            self.stamp.store(now.max(1), Relaxed);
            return peak;
        }
        let halvings = now.saturating_sub(stamp) / decay_ms;
        if halvings == 0 {
            return peak;
        }
        let live = self.live.load(Relaxed);
        let decayed = peak
            .checked_shr(halvings.min(63) as u32)
            .unwrap_or(0)
            .max(live);
        self.peak.store(decayed, Relaxed);
        self.stamp.store(now, Relaxed);
        decayed
    }
}

/// The cache's entries, in fixed slots, on two sets of doubly linked lists: one list in
/// arrival order (for decay and eviction, oldest first: O(1) at either end) and one per
/// hot class, newest first, with a bit per non-empty class (so that a take visits only
/// the classes around the bytes it wants, not every entry).
struct Inner {
    entries: [Entry; MAX_ENTRIES],
    /// Bit `i` set: slot `i` is free.
    free: u64,
    n: usize,
    /// The sum of the entries' weights.
    bytes: usize,
    /// The sum of the spares' weights.
    spares: usize,
    /// The ends of the arrival list.
    oldest: u8,
    newest: u8,
    /// The newest entry of each hot class.
    heads: [u8; NCLS],
    /// Bit `c` set: class `c` holds an entry.
    nonempty: [u64; NCLS / 64],
}

// SAFETY: the raw pointers name whole regions owned by the cache; all access is under
// the lock.
unsafe impl Send for Inner {}

/// Regions taken out of a cache under its lock, to be retired (unmapped) after the lock
/// is dropped: room for every entry plus the region being released, so that whatever
/// the bounds ask is done in one go. On the stack (about 1 KiB), never allocated.
struct Doomed {
    /// The first `n` are initialized. (Uninitialized storage: a release or a purge that
    /// retires nothing must not pay for clearing a kilobyte of stack.)
    regions: [core::mem::MaybeUninit<(*mut u8, usize)>; MAX_ENTRIES + 1],
    n: usize,
}

impl Doomed {
    const fn new() -> Self {
        Doomed {
            regions: [const { core::mem::MaybeUninit::uninit() }; MAX_ENTRIES + 1],
            n: 0,
        }
    }

    /// Note a region to retire. Returns false (and notes nothing) when full, which the
    /// callers' arithmetic rules out (at most `MAX_ENTRIES` entries, plus one).
    fn push(&mut self, base: *mut u8, len: usize) -> bool {
        match self.regions.get_mut(self.n) {
            Some(slot) => {
                slot.write((base, len));
                self.n += 1;
                true
            }
            None => false,
        }
    }

    /// The noted regions.
    fn noted(&self) -> impl Iterator<Item = (*mut u8, usize)> + '_ {
        self.regions
            .get(..self.n)
            .unwrap_or(&[])
            .iter()
            // SAFETY: the first `n` slots were written by `push`.
            .map(|r| unsafe { r.assume_init() })
    }

    /// Retire every noted region (call with no lock held: each is a `munmap`).
    fn retire_all(&self) {
        for (base, len) in self.noted() {
            retire(base, len);
        }
    }
}

// Entry bookkeeping without a panic path: slots are masked to the array, and the lists'
// invariants are checked in debug builds, so a broken invariant cannot turn into a panic
// inside the allocator.
impl Inner {
    const fn new() -> Self {
        Inner {
            entries: [EMPTY; MAX_ENTRIES],
            free: u64::MAX,
            n: 0,
            bytes: 0,
            spares: 0,
            oldest: NIL,
            newest: NIL,
            heads: [NIL; NCLS],
            nonempty: [0; NCLS / 64],
        }
    }

    #[inline]
    fn at(&self, i: u8) -> &Entry {
        &self.entries[(i & SLOT_MASK) as usize]
    }

    #[inline]
    fn at_mut(&mut self, i: u8) -> &mut Entry {
        &mut self.entries[(i & SLOT_MASK) as usize]
    }

    /// The oldest entry.
    fn first(&self) -> Option<&Entry> {
        (self.oldest != NIL).then(|| self.at(self.oldest))
    }

    /// The entries from the oldest to the newest.
    fn live(&self) -> impl Iterator<Item = &Entry> + '_ {
        let mut i = self.oldest;
        core::iter::from_fn(move || {
            (i != NIL).then(|| {
                let e = self.at(i);
                i = e.newer;
                e
            })
        })
        .take(MAX_ENTRIES)
    }

    /// Debug builds: the cache's invariants (the count in bounds, `bytes` and `spares`
    /// the sums of the weights, each entry a region that weighs its length, or nothing
    /// once zeroed, the arrival list in stamp order, each entry on its class's list).
    #[inline]
    fn check(&self) {
        debug_assert!(self.n <= MAX_ENTRIES, "a cache of {} entries", self.n);
        #[cfg(debug_assertions)]
        {
            let (mut sum, mut spares, mut count) = (0usize, 0usize, 0usize);
            let mut prev_stamp = 0u64;
            for e in self.live() {
                debug_assert!(!e.base.is_null() && e.len > 0, "an empty cache entry");
                debug_assert!(
                    (e.base as usize).is_multiple_of(os::PAGE),
                    "a cached region off a page"
                );
                debug_assert!(!(e.zeroed && e.spare), "a spare that was decommitted");
                debug_assert!(
                    e.hot <= e.len && !(e.zeroed && e.hot > 0),
                    "a cached region hot past its end, or hot once decommitted"
                );
                debug_assert_eq!(e.cls, hot_class(e.hot), "an entry in another hot class");
                debug_assert!(
                    e.stamp >= prev_stamp,
                    "cache entries out of their arrival order"
                );
                prev_stamp = e.stamp;
                sum += e.weight();
                if e.spare {
                    spares += e.weight();
                }
                count += 1;
            }
            debug_assert_eq!(count, self.n, "the arrival list lost an entry");
            debug_assert_eq!(sum, self.bytes, "the cache's byte count drifted");
            debug_assert_eq!(spares, self.spares, "the cache's spare count drifted");
            debug_assert_eq!(
                self.free.count_zeros() as usize,
                self.n,
                "the free slots disagree with the count"
            );
            let mut in_classes = 0;
            for c in 0..NCLS {
                let mut i = self.heads[c];
                let nonempty = self.nonempty[c / 64] & (1 << (c % 64)) != 0;
                debug_assert_eq!(nonempty, i != NIL, "class {c}: its bit is wrong");
                let mut newer = NIL;
                while i != NIL && in_classes <= MAX_ENTRIES {
                    let e = self.at(i);
                    debug_assert_eq!(e.cls as usize, c, "an entry on another class's list");
                    debug_assert_eq!(e.cls_newer, newer, "a class list's back link is wrong");
                    newer = i;
                    i = e.cls_older;
                    in_classes += 1;
                }
            }
            debug_assert_eq!(in_classes, self.n, "the class lists lost an entry");
        }
    }

    /// The bytes the cache's spares hold committed.
    fn spare_bytes(&self) -> usize {
        self.spares
    }

    /// Take slot `i` off both its lists and free it; returns its entry.
    #[inline(always)]
    fn unlink(&mut self, i: u8) -> Entry {
        let e = *self.at(i);
        // The arrival list.
        if e.older == NIL {
            self.oldest = e.newer;
        } else {
            self.at_mut(e.older).newer = e.newer;
        }
        if e.newer == NIL {
            self.newest = e.older;
        } else {
            self.at_mut(e.newer).older = e.older;
        }
        // The class list (newest first from its head).
        if e.cls_newer == NIL {
            self.heads[e.cls as usize] = e.cls_older;
            if e.cls_older == NIL {
                self.nonempty[(e.cls / 64) as usize] &= !(1 << (e.cls % 64));
            }
        } else {
            self.at_mut(e.cls_newer).cls_older = e.cls_older;
        }
        if e.cls_older != NIL {
            self.at_mut(e.cls_older).cls_newer = e.cls_newer;
        }
        self.free |= 1 << (i & SLOT_MASK);
        self.n -= 1;
        self.bytes = self.bytes.saturating_sub(e.weight());
        if e.spare {
            self.spares = self.spares.saturating_sub(e.weight());
        }
        e
    }

    /// Remove and return the entry in slot `i`.
    fn remove(&mut self, i: u8) -> Entry {
        let e = self.unlink(i);
        self.check();
        e
    }

    /// Add `e` as the newest entry (false when full); its list links are set here.
    #[inline(always)]
    fn push_newest(&mut self, e: Entry) -> bool {
        if self.free == 0 {
            return false;
        }
        let i = self.free.trailing_zeros() as u8;
        self.free &= !(1 << i);
        let cls = hot_class(e.hot);
        let (older, cls_older) = (self.newest, self.heads[cls as usize]);
        // Keep the stamps in arrival order (the purge looks at the first entry only): a
        // release that read the clock before a decommit without the lock may arrive after
        // one that read it later; it takes the later stamp (younger by at most that
        // system call's duration).
        let stamp = if older == NIL {
            e.stamp
        } else {
            e.stamp.max(self.at(older).stamp)
        };
        *self.at_mut(i) = Entry {
            stamp,
            older,
            newer: NIL,
            cls_older,
            cls_newer: NIL,
            cls,
            ..e
        };
        if older == NIL {
            self.oldest = i;
        } else {
            self.at_mut(older).newer = i;
        }
        self.newest = i;
        if cls_older != NIL {
            self.at_mut(cls_older).cls_newer = i;
        }
        self.heads[cls as usize] = i;
        self.nonempty[(cls / 64) as usize] |= 1 << (cls % 64);
        self.n += 1;
        self.bytes += e.weight();
        if e.spare {
            self.spares += e.weight();
        }
        self.check();
        true
    }

    /// Move every entry `doomed` says yes to into `out`, oldest first; one pass, however
    /// many go.
    fn remove_where(&mut self, out: &mut Doomed, mut doomed: impl FnMut(&Entry) -> bool) {
        let mut i = self.oldest;
        let mut steps = 0;
        while i != NIL && steps < MAX_ENTRIES {
            let e = *self.at(i);
            if doomed(&e) && out.push(e.base, e.len) {
                self.unlink(i);
            }
            i = e.newer;
            steps += 1;
        }
        self.check();
    }

    /// Move the `k` oldest entries into `out` (nothing when `k` is 0).
    fn remove_oldest(&mut self, out: &mut Doomed, k: usize) {
        for _ in 0..k {
            let Some(e) = self.first().copied() else {
                break;
            };
            if !out.push(e.base, e.len) {
                break;
            }
            self.unlink(self.oldest);
        }
        self.check();
    }

    /// Decay: move into `out` the oldest entries cached before `cutoff`, as long as the
    /// cache holds more than `keep_entries` entries or `keep_bytes` bytes (its idle
    /// target); younger entries all stay. One pass, and none when the oldest entry is
    /// young (the entries are in arrival order).
    fn purge_aged(
        &mut self,
        out: &mut Doomed,
        cutoff: u64,
        keep_entries: usize,
        keep_bytes: usize,
    ) {
        let (mut k, mut n, mut bytes) = (0, self.n, self.bytes);
        for e in self.live() {
            if e.stamp >= cutoff || (n <= keep_entries && bytes <= keep_bytes) {
                break;
            }
            k += 1;
            n -= 1;
            bytes = bytes.saturating_sub(e.weight());
        }
        self.remove_oldest(out, k);
    }

    /// When a purge may next find something to retire, at `now`, with `decay_ms`: never
    /// when nothing is cached or there is no decay; when the oldest entry ages; and when
    /// the oldest has aged already but stays (the idle target keeps it), one interval
    /// from now, when the peak behind that target has decayed again.
    fn due(&self, now: u64, decay_ms: u64) -> u64 {
        match self.first() {
            Some(e) if decay_ms > 0 => {
                let aged = e.stamp.saturating_add(decay_ms);
                if aged > now {
                    aged
                } else {
                    now.saturating_add(decay_ms)
                }
            }
            _ => u64::MAX,
        }
    }

    /// Move the oldest entries into `out`, as many as it takes for one more entry of
    /// `weight` bytes to fit in `max_entries` entries and `max_bytes` bytes (all of
    /// them at once, in one pass). Returns whether it fits now.
    fn make_room(
        &mut self,
        out: &mut Doomed,
        weight: usize,
        max_entries: usize,
        max_bytes: usize,
    ) -> bool {
        if weight > max_bytes || max_entries == 0 {
            return false;
        }
        let fits =
            |n: usize, bytes: usize| n < max_entries && bytes.saturating_add(weight) <= max_bytes;
        // A release that fits, the common case, touches no entry.
        if fits(self.n, self.bytes) {
            return true;
        }
        let (mut k, mut bytes) = (0, self.bytes);
        for e in self.live() {
            if fits(self.n - k, bytes) {
                break;
            }
            k += 1;
            bytes = bytes.saturating_sub(e.weight());
        }
        self.remove_oldest(out, k);
        debug_assert!(
            fits(self.n, self.bytes),
            "make_room left too little room ({} entries, {} bytes)",
            self.n,
            self.bytes
        );
        fits(self.n, self.bytes)
    }

    /// The lowest non-empty class at or above `c`.
    fn class_at_or_above(&self, c: usize) -> Option<usize> {
        let mut w = c / 64;
        let mut bits = self.nonempty.get(w)? & (u64::MAX << (c % 64));
        loop {
            if bits != 0 {
                return Some(w * 64 + bits.trailing_zeros() as usize);
            }
            w += 1;
            bits = *self.nonempty.get(w)?;
        }
    }

    /// The highest non-empty class at or below `c`.
    fn class_at_or_below(&self, c: usize) -> Option<usize> {
        let mut w = c / 64;
        let mut bits = self.nonempty.get(w)? & (u64::MAX >> (63 - c % 64));
        loop {
            if bits != 0 {
                return Some(w * 64 + 63 - bits.leading_zeros() as usize);
            }
            w = w.checked_sub(1)?;
            bits = *self.nonempty.get(w)?;
        }
    }

    /// The slot of the entry [`RegionCache::take`] takes, if any: the shortest of length
    /// `min_len..=max_len` (and not zeroed, with `committed_only`), the newest of those;
    /// the newest of exactly `min_len` bytes ends the walk at once.
    fn find_by_length(&self, min_len: usize, max_len: usize, committed_only: bool) -> Option<u8> {
        let (mut best, mut best_len) = (NIL, max_len.saturating_add(1));
        let mut i = self.newest;
        let mut steps = 0;
        while i != NIL && steps < MAX_ENTRIES {
            let e = self.at(i);
            // One comparison: `len - min_len < best_len - min_len` (wrapping) holds
            // exactly for a length in `min_len..best_len`.
            if e.len.wrapping_sub(min_len) < best_len.wrapping_sub(min_len)
                && !(committed_only && e.zeroed)
            {
                (best, best_len) = (i, e.len);
                if e.len == min_len {
                    break;
                }
            }
            i = e.older;
            steps += 1;
        }
        (best != NIL).then_some(best)
    }

    /// The slot of the entry [`RegionCache::take_for`] takes (see there), if any: among
    /// the entries of length `min_len..=max_len` (and not zeroed, with
    /// `committed_only`), the one whose hot bytes cover `want` most tightly, else the
    /// hottest; ties: the shorter, then the newer. It visits the classes from `want`'s
    /// upward to the first with an entry that covers `want` (classes grow with the hot
    /// bytes, so no later class can hold a tighter one), else downward to the first with
    /// a candidate at all; in a class, its entries newest first.
    fn find(
        &self,
        min_len: usize,
        max_len: usize,
        want: usize,
        committed_only: bool,
    ) -> Option<u8> {
        // One comparison for the range: `len - min_len <= max_len - min_len` (wrapping)
        // holds exactly for a length in `min_len..=max_len`.
        let fits = |e: &Entry| {
            e.len.wrapping_sub(min_len) <= max_len.wrapping_sub(min_len)
                && !(committed_only && e.zeroed)
        };
        let c0 = hot_class(want) as usize;
        // Covering: the least hot bytes, then the shortest, then the newest.
        let mut c = c0;
        while let Some(cc) = self.class_at_or_above(c) {
            let mut best: Option<(u8, (usize, usize))> = None;
            let mut i = self.heads[cc];
            while i != NIL {
                let e = self.at(i);
                if e.hot >= want && fits(e) {
                    let k = (e.hot, e.len);
                    if best.is_none_or(|(_, b)| k < b) {
                        best = Some((i, k));
                        if k == (want, min_len) {
                            break;
                        }
                    }
                }
                i = e.cls_older;
            }
            if let Some((i, _)) = best {
                return Some(i);
            }
            c = cc + 1;
        }
        // Nothing covers `want`: the most hot bytes, then the shortest, then the newest.
        let mut c = c0;
        while let Some(cc) = self.class_at_or_below(c) {
            let mut best: Option<(u8, (usize, usize))> = None;
            let mut i = self.heads[cc];
            while i != NIL {
                let e = self.at(i);
                if e.hot < want && fits(e) {
                    let k = (!e.hot, e.len);
                    if best.is_none_or(|(_, b)| k < b) {
                        best = Some((i, k));
                    }
                }
                i = e.cls_older;
            }
            if let Some((i, _)) = best {
                return Some(i);
            }
            c = cc.checked_sub(1)?;
        }
        None
    }
}

/// Bounds and decommit behaviour of one cache.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most regions kept.
    pub max_entries: usize,
    /// Most bytes kept, counted by what the regions may hold resident: a region's whole
    /// length, or nothing once decommitted with `DONTNEED`.
    pub max_bytes: usize,
    /// The longest region kept: a longer one is retired as it comes in
    /// ([`LARGE_REGION_MAX`] for freed large mappings; `usize::MAX`: no bound but
    /// `max_bytes`).
    pub max_region: usize,
    /// Decommit a region when it enters the cache (`None`: keep its pages).
    pub decommit: Option<os::Advice>,
    /// With `decommit` on, regions may stay committed (the cache's spares) as long as
    /// their lengths add up to at most this many bytes, so a program that frees and
    /// reallocates a few blocks in a loop does not pay a decommit and page faults every
    /// time. 0: no spare.
    pub spare_bytes: usize,
    /// The decay interval: regions cached longer than this many milliseconds are
    /// retired at the next purge (a `release`, a [`RegionCache::purge_due`] on a slow
    /// path, or the background thread), oldest first, down to the cache's idle target
    /// (`idle_entries`, `idle_fraction`); all of them at once however many (0: no decay,
    /// only the bounds above).
    pub decay_ms: u64,
    /// The idle target's count: most regions kept past the decay interval.
    pub idle_entries: usize,
    /// The idle target's bytes: past the decay interval the cache keeps at most
    /// `1 / idle_fraction` of the recent peak of bytes of its kind in use (the decaying
    /// high-water mark of [`RegionCache::note_live`]); 0: nothing is kept past it.
    pub idle_fraction: usize,
}

/// What becomes of a region handed to [`RegionCache::release`] ([`decide`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Kept in the cache with its pages committed; `spare`: as one of the cache's
    /// spares (decommit was asked, but the spare budget had room).
    Keep {
        /// Counted against [`Limits::spare_bytes`].
        spare: bool,
    },
    /// Decommitted with this advice, then kept.
    Decommit(os::Advice),
    /// Retired (unmapped) at once: the cache keeps nothing, or the region is bigger than
    /// the whole byte bound.
    Retire,
}

/// The rule for a region of `len` bytes handed to a cache with `limits`, whose spares
/// hold `spare_bytes` committed now: retired when the cache keeps no region or none that
/// big; else kept as it is when no decommit is asked; else a spare while the spares'
/// bytes stay within [`Limits::spare_bytes`]; else decommitted.
///
/// [`RegionCache::release`] applies it and records its answer under one acquisition of
/// the cache's lock, so that two releases cannot both take the last spare.
pub fn decide(limits: &Limits, len: usize, spare_bytes: usize) -> Fate {
    if limits.max_entries.min(MAX_ENTRIES) == 0 || len > limits.max_bytes || len > limits.max_region
    {
        return Fate::Retire;
    }
    match limits.decommit {
        None => Fate::Keep { spare: false },
        Some(_) if len.saturating_add(spare_bytes) <= limits.spare_bytes => {
            Fate::Keep { spare: true }
        }
        Some(advice) => Fate::Decommit(advice),
    }
}

/// Tests only: a point between the two acquisitions of [`RegionCache::release`] (the
/// decommit path), where a test may stop a thread to let another run its release.
#[inline(always)]
fn between_acquisitions() {
    #[cfg(test)]
    tests::hook::run();
}

impl Default for RegionCache {
    fn default() -> Self {
        Self::new()
    }
}

impl RegionCache {
    hakmem_os_stats::loom_const_fn! {
        /// An empty cache.
        pub fn new() -> Self {
            RegionCache {
                inner: Locked::new(Inner::new()),
                due: AtomicU64::new(u64::MAX),
                peak: DecayingPeak::new(),
            }
        }
    }

    /// Hand over an empty region: it is kept (maybe decommitted) or retired. The region
    /// counts against `limits.max_bytes` by all it may hold resident, its whole length
    /// (whatever a block in it last asked for: a block may be written up to its usable
    /// size, and one shrunk in place keeps the pages it touched), or nothing once
    /// decommitted with `DONTNEED`. Every older entry that must go for it to fit goes
    /// now (retired oldest first), as does every entry past `limits.decay_ms`; a region
    /// bigger than the whole byte bound is retired itself.
    ///
    /// # Safety
    /// `base..base+len` is a whole mapping made by the OS box, holding no live data, and
    /// the caller gives up all use of it.
    pub unsafe fn release(&self, base: *mut u8, len: usize, limits: Limits) {
        // SAFETY: forwarded caller guarantee.
        unsafe { self.release_touched(base, len, len, limits) }
    }

    /// [`release`](Self::release), told that the blocks the region held were asked to
    /// span only its first `touched` bytes (clamped to `len`): [`take_for`](Self::take_for)
    /// then prefers it for a block of about that size. A hint for the choice only: the
    /// region still counts its whole length against the byte bound.
    ///
    /// # Safety
    /// As [`release`](Self::release).
    pub unsafe fn release_touched(
        &self,
        base: *mut u8,
        len: usize,
        touched: usize,
        limits: Limits,
    ) {
        debug_assert!(!base.is_null() && len > 0, "release of an empty region");
        let touched = touched.min(len);
        debug_assert!(
            (base as usize).is_multiple_of(os::PAGE),
            "release off a page"
        );
        let now = if limits.decay_ms > 0 { os::now_ms() } else { 0 };
        let cutoff = now.saturating_sub(limits.decay_ms);
        let max_entries = limits.max_entries.min(MAX_ENTRIES);
        let mut doomed = Doomed::new();
        // One acquisition: decay, the decision, and its record. A region kept as it is
        // (a spare, or no decommit asked) enters the cache under this very lock, so two
        // releases cannot both take the last of the spare budget.
        let fate = self.inner.with(|c| {
            // The first entry is the oldest (arrival order): pass over the entries only
            // when one has decayed.
            if limits.decay_ms > 0 && c.first().is_some_and(|e| e.stamp < cutoff) {
                let (ke, kb) = self.idle_target(&limits, now);
                c.purge_aged(&mut doomed, cutoff, ke, kb);
            }
            // Spares exist only where a decommit is asked for (`decide` reads them only
            // then): no pass over the entries otherwise.
            let spares = if limits.decommit.is_some() {
                c.spare_bytes()
            } else {
                0
            };
            let fate = decide(&limits, len, spares);
            if let Fate::Keep { spare } = fate {
                let e = Entry {
                    base,
                    len,
                    zeroed: false,
                    spare,
                    hot: touched,
                    stamp: now,
                    ..EMPTY
                };
                if !(c.make_room(&mut doomed, len, max_entries, limits.max_bytes)
                    && c.push_newest(e))
                {
                    self.due.store(c.due(now, limits.decay_ms), Relaxed);
                    return Fate::Retire;
                }
            }
            self.due.store(c.due(now, limits.decay_ms), Relaxed);
            fate
        });
        match fate {
            Fate::Keep { .. } => {}
            Fate::Retire => {
                doomed.retire_all();
                retire(base, len);
                return;
            }
            Fate::Decommit(advice) => {
                // The decommit (a system call) runs without the lock; the region is no
                // spare, so nothing shared was decided on the way.
                between_acquisitions();
                // SAFETY: the caller guarantees the region is ours and empty.
                let zeroed = if unsafe { os::decommit(base, len, advice) } {
                    stats::count_lean_decommit();
                    advice == os::Advice::DontNeed
                } else {
                    false
                };
                // A region decommitted with DONTNEED holds nothing resident: it costs
                // only address space. Otherwise every page of it may be resident
                // (`MADV_FREE` pages too, until the kernel wants them).
                let weight = if zeroed { 0 } else { len };
                let e = Entry {
                    base,
                    len,
                    zeroed,
                    spare: false,
                    hot: if zeroed { 0 } else { touched },
                    stamp: now,
                    ..EMPTY
                };
                let kept = self.inner.with(|c| {
                    let kept = c.make_room(&mut doomed, weight, max_entries, limits.max_bytes)
                        && c.push_newest(e);
                    self.due.store(c.due(now, limits.decay_ms), Relaxed);
                    kept
                });
                if !kept {
                    retire(base, len);
                }
            }
        }
        doomed.retire_all();
    }

    /// Return the unused rest of a region just taken from this cache (`base..base+len`),
    /// in the state it was taken in: decommitted with `DONTNEED` (`zeroed`: it weighs
    /// nothing) or not, `hot` its hot bytes. No decision and no system call: it was
    /// cached already (a spare's budget is not spent on it; a decommitted rest is not
    /// decommitted again). Retired if it no longer fits the bounds.
    ///
    /// # Safety
    /// As [`release`](Self::release): the range is ours and holds no live data.
    pub unsafe fn put_back(
        &self,
        base: *mut u8,
        len: usize,
        zeroed: bool,
        hot: usize,
        limits: Limits,
    ) {
        debug_assert!(!base.is_null() && len > 0, "a put-back of an empty region");
        let now = if limits.decay_ms > 0 { os::now_ms() } else { 0 };
        let max_entries = limits.max_entries.min(MAX_ENTRIES);
        let mut doomed = Doomed::new();
        let e = Entry {
            base,
            len,
            zeroed,
            spare: false,
            hot: if zeroed { 0 } else { hot.min(len) },
            stamp: now,
            ..EMPTY
        };
        let kept = self.inner.with(|c| {
            let kept = c.make_room(&mut doomed, e.weight(), max_entries, limits.max_bytes)
                && c.push_newest(e);
            self.due.store(c.due(now, limits.decay_ms), Relaxed);
            kept
        });
        doomed.retire_all();
        if !kept {
            retire(base, len);
        }
    }

    /// Take the cached region that fits best: the shortest whose length is in
    /// `min_len..=max_len`, the most recently cached of those (the newest region of
    /// exactly `min_len` bytes ends the search at once). Best fit keeps the bigger
    /// regions for the bigger requests: a program that rebuilds blocks of several sizes
    /// finds each its own region again, round after round.
    /// Returns `(base, len, maybe_dirty)`: `maybe_dirty` is true when the region may hold
    /// old bytes (it was not decommitted with `DONTNEED`); a region is never zeroed here.
    pub fn take(&self, min_len: usize, max_len: usize) -> Option<(*mut u8, usize, bool)> {
        self.take_fit(min_len, max_len, None, false)
            .map(|(b, l, d, _)| (b, l, d))
    }

    /// Take the cached region of length `min_len..=max_len` that costs the fewest page
    /// faults and holds the fewest idle resident pages for a block that spans its first
    /// `want` bytes, by the `touched` hints of [`release_touched`](Self::release_touched):
    /// the one whose hot bytes cover `want` most tightly, else (none covers it) the
    /// hottest; among equals the shortest, then the newest. Regions of several lengths
    /// all fit a large block (each a whole number of units): choosing by length alone
    /// would put a small block on a region a big one had made resident, and the next
    /// big block on a cold one, which faults all its pages in again (issue 16).
    /// Returns `(base, len, maybe_dirty, hot)`: `hot` as the region was released
    /// (0 when decommitted with `DONTNEED`).
    pub fn take_for(
        &self,
        min_len: usize,
        max_len: usize,
        want: usize,
    ) -> Option<(*mut u8, usize, bool, usize)> {
        self.take_fit(min_len, max_len, Some(want), false)
    }

    /// [`take_for`](Self::take_for) (`want`), or [`take`](Self::take) (by length alone,
    /// `None`), among the regions whose pages were not decommitted with `DONTNEED` only
    /// (`committed_only`), or among all. Returns the region's hot bytes too.
    fn take_fit(
        &self,
        min_len: usize,
        max_len: usize,
        want: Option<usize>,
        committed_only: bool,
    ) -> Option<(*mut u8, usize, bool, usize)> {
        self.inner.with(|c| {
            let i = match want {
                Some(want) => c.find(min_len, max_len, want, committed_only)?,
                None => c.find_by_length(min_len, max_len, committed_only)?,
            };
            let e = c.remove(i);
            debug_assert!(e.len >= min_len && e.len <= max_len);
            Some((e.base, e.len, !e.zeroed, e.hot))
        })
    }

    /// The idle target at `now`: `(entries, bytes)` a purge keeps past the decay.
    fn idle_target(&self, limits: &Limits, now: u64) -> (usize, usize) {
        if limits.idle_fraction == 0 || limits.idle_entries == 0 {
            return (0, 0);
        }
        let peak = self.peak.at(now, limits.decay_ms);
        (limits.idle_entries, peak / limits.idle_fraction)
    }

    /// Note the bytes of this cache's kind in use now (regions handed out and not
    /// returned), for the decaying peak behind the idle target. Cheap (two relaxed
    /// atomics): callers call it where a region is mapped or taken.
    pub fn note_live(&self, bytes: usize) {
        self.peak.note_live(bytes);
    }

    /// The recent (decaying) peak of bytes in use, as last decayed.
    pub fn recent_peak(&self) -> usize {
        self.peak.peak.load(Relaxed)
    }

    /// Whether a purge is due at `now` (one relaxed load; no clock, no lock).
    #[inline]
    pub fn purge_due(&self, now: u64) -> bool {
        self.due.load(Relaxed) <= now
    }

    /// Decay: retire the regions cached longer than `limits.decay_ms` at `now`, oldest
    /// first, down to the idle target (see [`Limits::idle_fraction`]). The unmaps happen
    /// after the lock is dropped. Nothing when no decay is set.
    pub fn purge(&self, limits: &Limits, now: u64) {
        if limits.decay_ms == 0 {
            return;
        }
        let cutoff = now.saturating_sub(limits.decay_ms);
        let (ke, kb) = self.idle_target(limits, now);
        let mut doomed = Doomed::new();
        self.inner.with(|c| {
            if c.first().is_some_and(|e| e.stamp < cutoff) {
                c.purge_aged(&mut doomed, cutoff, ke, kb);
            }
            self.due.store(c.due(now, limits.decay_ms), Relaxed);
        });
        doomed.retire_all();
    }

    /// Retire every region cached before `cutoff` (milliseconds of [`os::now_ms`]), all
    /// at once: the unmaps happen after the lock is dropped.
    pub fn purge_older_than(&self, cutoff: u64) {
        // Entries stay in the order they came in (stamps non-decreasing, `check`), so the
        // first is the oldest: a call with nothing to retire costs one comparison, not a
        // pass over every entry (each large allocation calls this).
        if !self
            .inner
            .with(|c| c.first().is_some_and(|e| e.stamp < cutoff))
        {
            return;
        }
        let mut doomed = Doomed::new();
        self.inner
            .with(|c| c.remove_where(&mut doomed, |e| e.stamp < cutoff));
        doomed.retire_all();
    }

    /// Retire every cached region now (for `trim`). Returns the bytes unmapped.
    pub fn drain(&self) -> usize {
        let mut doomed = Doomed::new();
        self.inner.with(|c| {
            c.remove_where(&mut doomed, |_| true);
            self.due.store(u64::MAX, Relaxed);
        });
        doomed.retire_all();
        doomed.noted().map(|r| r.1).sum()
    }

    /// Regions and bytes held now.
    pub fn usage(&self) -> (usize, usize) {
        self.inner.with(|c| (c.n, c.bytes))
    }

    /// # Safety
    /// As [`Locked::fork_lock`].
    unsafe fn lock_for_fork(&self) {
        // SAFETY: forwarded caller guarantee.
        unsafe { self.inner.fork_lock() }
    }

    /// # Safety
    /// As [`Locked::fork_unlock`].
    unsafe fn unlock_after_fork(&self) {
        // SAFETY: forwarded caller guarantee.
        unsafe { self.inner.fork_unlock() }
    }
}

fn retire(base: *mut u8, len: usize) {
    stats::count_retire(gates().ss_mem_lean);
    // SAFETY: regions reach here only from `release`/`drain`, whose callers gave them up.
    unsafe { os::unmap(base, len) };
}

hakmem_os_stats::sync_static! {
    /// The cache of empty superslabs.
    pub static SUPERSLABS: RegionCache = RegionCache::new();
    /// The cache of freed large mappings.
    pub static LARGE: RegionCache = RegionCache::new();
}

/// How lean mode decommits, from the gates (`None` when lean mode is off or decommit is
/// `OFF`).
pub fn lean_advice() -> Option<os::Advice> {
    let g = gates();
    if !g.ss_mem_lean {
        return None;
    }
    match g.ss_mem_lean_decommit {
        Decommit::Free => Some(os::Advice::Free),
        Decommit::DontNeed => Some(os::Advice::DontNeed),
        Decommit::Off => None,
    }
}

/// The idle target's share of a recent peak: past the decay interval a cache keeps at
/// most a quarter of the recent peak of its kind in use (issue 15: an idle process holds
/// at most 25% of its recent peak above its live data).
pub const IDLE_FRACTION: usize = 4;

/// The limits of the superslab cache, from the gates. With a decay interval
/// (`HAKMEM_SS_DECAY_MS`, the default) it keeps up to [`MAX_ENTRIES`] empty superslabs
/// for the interval (a program that frees its working set and builds it again maps
/// nothing), and past it at most `HAKMEM_SS_CACHE_MAX` of them and a quarter of the
/// recent peak of slab bytes in use; without one, `HAKMEM_SS_CACHE_MAX` at all
/// times (the seed's rule).
pub fn superslab_limits() -> Limits {
    let g = gates();
    let decay_ms = g.ss_decay_ms as u64;
    Limits {
        max_entries: if decay_ms > 0 {
            MAX_ENTRIES
        } else {
            g.ss_cache_max as usize
        },
        max_bytes: usize::MAX,
        max_region: usize::MAX,
        decommit: lean_advice(),
        spare_bytes: 0,
        decay_ms,
        idle_entries: g.ss_cache_max as usize,
        idle_fraction: IDLE_FRACTION,
    }
}

/// Bytes of freed large mappings kept committed (spares) in lean mode.
pub const LARGE_SPARE_BYTES: usize = 8 << 20;

/// The limits of the large-mapping cache, from the gates.
pub fn large_limits() -> Limits {
    let g = gates();
    Limits {
        max_entries: MAX_ENTRIES,
        max_bytes: (g.large_cache_mib as usize) << 20,
        max_region: LARGE_REGION_MAX,
        decommit: lean_advice(),
        spare_bytes: LARGE_SPARE_BYTES,
        decay_ms: g.large_decay_ms as u64,
        // Past the decay interval nothing stays: an idle process holds no freed large
        // mapping (results/002's figures, `tests/large_cache.rs`).
        idle_entries: 0,
        idle_fraction: 0,
    }
}

/// The single decision point for an empty superslab: cache it (decommitted in lean mode
/// with decommit `FREE`/`DONTNEED`) or retire it.
///
/// # Safety
/// `base..base+len` is a whole superslab mapping holding no live block, no longer
/// registered or used by anyone.
pub unsafe fn ss_maybe_decommit_superslab(base: *mut u8, len: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { SUPERSLABS.release(base, len, superslab_limits()) }
}

/// The decision point for an empty slab inside a live superslab: in lean mode with
/// decommit on, give the pages its blocks touched (`len` bytes from `start`, rounded up
/// to whole pages) back to the OS. Returns whether it decommitted.
///
/// # Safety
/// `start..start+len` (rounded up to a page) lies in a live mapping of the caller and
/// holds no live data; `start` is page-aligned.
pub unsafe fn slab_maybe_decommit(start: *mut u8, len: usize) -> bool {
    let Some(advice) = lean_advice() else {
        return false;
    };
    // SAFETY: forwarded caller guarantee.
    unsafe { idle_slab_decommit(start, len, advice) }
}

/// Empty slabs inside live superslabs whose pages stayed resident (every empty slab
/// outside lean mode's decommit, and a lean class's spares): how long one may stay idle
/// (milliseconds) before its pages go back, and with which advice; `None` when
/// `HAKMEM_SS_DECAY_MS` is 0 (the seed's rule: never). The interval is the superslab
/// cache's: an empty slab is given back on the same schedule as an empty superslab, so
/// a class that grew in one phase does not keep its peak resident through the next
/// phases, in which other classes grow (`gcc -O2`, results/210). The advice is lean
/// mode's where it decommits, else `MADV_DONTNEED` (so that RSS drops).
pub fn idle_slab_decay() -> Option<(u64, os::Advice)> {
    let ms = gates().ss_decay_ms as u64;
    if ms == 0 {
        return None;
    }
    Some((ms, lean_advice().unwrap_or(os::Advice::DontNeed)))
}

/// Give the pages of an empty slab back (`len` bytes from `start`, rounded up to whole
/// pages), with `advice`: one that stayed idle (the advice of [`idle_slab_decay`]), or
/// one that lean mode decommits at once ([`slab_maybe_decommit`]). Returns whether it
/// did.
///
/// # Safety
/// As [`slab_maybe_decommit`].
pub unsafe fn idle_slab_decommit(start: *mut u8, len: usize, advice: os::Advice) -> bool {
    // Whole OS pages: a slab starts on a 64 KiB multiple and ends on one (or at its
    // superslab's end), so they stay inside it for every supported page size.
    let len = os::round_to_page(len, os::page_size()).unwrap_or(0);
    if len == 0 {
        return false;
    }
    // SAFETY: forwarded caller guarantee.
    let ok = unsafe { os::decommit(start, len, advice) };
    if ok {
        stats::count_lean_decommit();
    }
    ok
}

/// Where a superslab taken by [`ss_take_cached`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SsOrigin {
    /// The superslab cache: an empty superslab, its header as its last class left it
    /// (every slab reset, so its free bitmaps are zero), its pages maybe decommitted.
    Superslab,
    /// The first `len` bytes of a cached large mapping: whatever its block wrote is
    /// there (the caller initializes every header byte it relies on), its pages as
    /// resident as the block left them.
    Large,
}

/// A cached region for a superslab of exactly `len` bytes, aligned to `len`, if any:
/// `(base, origin)`. A slow path: it first runs a purge that is due ([`tick`]).
///
/// From the superslab cache first; else, for a class that fills superslabs (`filling`:
/// it has one in use and needs another), from the large cache, whose mappings are whole
/// units of `len` bytes aligned to `len` (`hakmem-large`'s layout): the one whose pages
/// a block made resident most (the fewest faults for the superslab), cut to its first
/// `len` bytes, the rest going back to the large cache. So memory a program freed in
/// big blocks serves its small ones next (as mimalloc's segments serve both), instead of
/// staying resident in the large cache beside fresh superslabs: `gcc -O2` frees a few
/// 4-6 MiB tables, then allocates 220 MiB of 96 KiB blocks (results/210). A class's
/// first superslab never comes from there: the pages a big block left resident would
/// stay so under a class that may never use them, for as long as one of its blocks
/// lives, where the large cache would have given them back after its decay interval.
pub fn ss_take_cached(len: usize, filling: bool) -> Option<(*mut u8, SsOrigin)> {
    tick();
    if let Some((b, _, _)) = SUPERSLABS.take(len, len) {
        return Some((b, SsOrigin::Superslab));
    }
    if !filling || len == 0 || !len.is_power_of_two() {
        return None;
    }
    let (base, got, dirty, hot) = LARGE.take_fit(len, usize::MAX, Some(len), false)?;
    if !(base as usize).is_multiple_of(len) || !got.is_multiple_of(len) {
        // Not the large box's layout: put it back as it was.
        debug_assert!(
            false,
            "a cached large mapping off the unit grid: {base:p} + {got}"
        );
        // SAFETY: the region came out of this cache just now, unchanged.
        unsafe { LARGE.put_back(base, got, !dirty, hot, large_limits()) };
        return None;
    }
    if got > len {
        // SAFETY: the rest of a mapping this cache held (no live data, page-aligned:
        // `len` is a multiple of the page, as the unit grid is), as it was.
        unsafe {
            LARGE.put_back(
                base.add(len),
                got - len,
                !dirty,
                hot.saturating_sub(len),
                large_limits(),
            )
        };
    }
    Some((base, SsOrigin::Large))
}

/// Note the bytes of slabs in use now, each slab whole (for the decaying peak behind the
/// superslab cache's idle target): `hakmem-ss-allocation` calls it when a slab is taken
/// or empties.
#[inline]
pub fn ss_note_live(bytes: usize) {
    SUPERSLABS.note_live(bytes);
}

/// The decay check of the slow paths: retire what has stayed unused past its decay
/// interval in either cache, down to each cache's idle target. Reads the (coarse) clock
/// only when a cache holds something, and takes a cache's lock only when its purge is
/// due; never on a fast path. Called by the release policy's own entry points, by the
/// facade's slow paths (`trim`, `thread_flush`) and by the background thread
/// ([`background`]).
pub fn tick() {
    let (s, l) = (&SUPERSLABS, &LARGE);
    if !s.purge_due(u64::MAX - 1) && !l.purge_due(u64::MAX - 1) {
        return;
    }
    let now = os::now_ms();
    if s.purge_due(now) {
        s.purge(&superslab_limits(), now);
    }
    if l.purge_due(now) {
        l.purge(&large_limits(), now);
    }
}

/// Hand over a freed large mapping of `len` bytes, whose blocks were asked to span its
/// first `touched` bytes (a hint for [`large_take_cached`]'s choice): cached within
/// `HAKMEM_LARGE_CACHE_MIB`, counted by all it may hold resident (its whole length: its
/// block may have been written up to its usable size, the mapping's end, or shrunk in
/// place after touching more; nothing once decommitted), else retired.
///
/// # Safety
/// As [`RegionCache::release`].
pub unsafe fn large_release(base: *mut u8, len: usize, touched: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { LARGE.release_touched(base, len, touched, large_limits()) }
}

/// A cached large mapping with length in `min_len..=max_len` for a block that spans its
/// first `want` bytes, chosen as [`RegionCache::take_for`] says (the fewest pages to
/// fault in, then the fewest idle resident ones): `(base, len, maybe_dirty, hot)`, `hot`
/// the bytes its earlier blocks spanned (0 when decommitted with `DONTNEED`).
pub fn large_take_cached(
    min_len: usize,
    max_len: usize,
    want: usize,
) -> Option<(*mut u8, usize, bool, usize)> {
    tick();
    LARGE.take_fit(min_len, max_len, large_want(want), false)
}

/// How the large cache chooses for a block that spans `want` bytes: by the hot bytes
/// ([`RegionCache::take_for`]) where it keeps its mappings' pages, by length alone
/// ([`RegionCache::take`]) where it decommits them (lean mode with decommit on: LEAN).
/// There most cached mappings are cold and the committed ones are the spares; the hot
/// rule would give a spare's resident pages to any block they cover, small ones too,
/// and the spare budget would then keep another mapping committed: more resident at the
/// peak (LEAN: +14% on `cbench large`, docs/results/160), against LEAN's RSS first.
fn large_want(want: usize) -> Option<usize> {
    want_under(lean_advice(), want)
}

/// [`large_want`] for a cache that decommits with `advice`.
fn want_under(advice: Option<os::Advice>, want: usize) -> Option<usize> {
    advice.is_none().then_some(want)
}

/// [`large_take_cached`] among the mappings whose pages are still there (not
/// decommitted with `DONTNEED`): for a copy that should land on resident pages (a
/// `realloc` that outgrows its mapping). `(base, len, hot)`. A slow path: it first runs
/// a purge that is due.
pub fn large_take_committed(
    min_len: usize,
    max_len: usize,
    want: usize,
) -> Option<(*mut u8, usize, usize)> {
    tick();
    LARGE
        .take_fit(min_len, max_len, large_want(want), true)
        .map(|(b, l, _, h)| (b, l, h))
}

/// Retire every cached region (both caches). Returns the bytes unmapped.
pub fn trim() -> usize {
    SUPERSLABS.drain() + LARGE.drain()
}

/// Fork handler: take the cache locks (call last among hakmem's prepare handlers).
///
/// # Safety
/// Only in a `pthread_atfork` prepare handler, paired with [`fork_release`] in the
/// parent's and the child's handlers; the calling thread holds neither cache lock.
pub unsafe fn fork_prepare() {
    // SAFETY: forwarded caller guarantee (a fork handler, paired).
    unsafe {
        SUPERSLABS.lock_for_fork();
        LARGE.lock_for_fork();
    }
}

/// Fork handler for the parent and the child: release what [`fork_prepare`] took.
///
/// # Safety
/// The calling thread took the locks with [`fork_prepare`] (before the `fork`, in the
/// child) and has not released them since.
pub unsafe fn fork_release() {
    // SAFETY: forwarded caller guarantee.
    unsafe {
        LARGE.unlock_after_fork();
        SUPERSLABS.unlock_after_fork();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use os::PAGE;
    extern crate std;
    use std::boxed::Box;
    use std::sync::mpsc;

    /// A pause a test sets for one thread at [`between_acquisitions`].
    pub(super) mod hook {
        use std::boxed::Box;
        use std::cell::RefCell;
        extern crate std;

        std::thread_local! {
            static HOOK: RefCell<Option<Box<dyn FnOnce()>>> = const { RefCell::new(None) };
        }

        /// Run `f` when this thread next reaches the point.
        pub fn set(f: Box<dyn FnOnce()>) {
            HOOK.with(|h| *h.borrow_mut() = Some(f));
        }

        pub fn run() {
            if let Some(f) = HOOK.with(|h| h.borrow_mut().take()) {
                f();
            }
        }
    }

    fn lean_limits(spare_bytes: usize) -> Limits {
        Limits {
            spare_bytes,
            ..lim(8, usize::MAX, Some(os::Advice::DontNeed))
        }
    }

    #[test]
    fn the_decision_rule() {
        let l = lean_limits(2 * PAGE);
        assert_eq!(decide(&l, PAGE, 0), Fate::Keep { spare: true });
        assert_eq!(decide(&l, PAGE, PAGE), Fate::Keep { spare: true });
        assert_eq!(
            decide(&l, PAGE, 2 * PAGE),
            Fate::Decommit(os::Advice::DontNeed),
            "the spare budget is spent"
        );
        assert_eq!(
            decide(&l, 3 * PAGE, 0),
            Fate::Decommit(os::Advice::DontNeed),
            "bigger than the whole spare budget"
        );
        assert_eq!(
            decide(&lim(8, usize::MAX, None), PAGE, 0),
            Fate::Keep { spare: false },
            "no decommit asked: kept as it is, no spare"
        );
        assert_eq!(decide(&lim(0, usize::MAX, None), PAGE, 0), Fate::Retire);
        assert_eq!(decide(&lim(8, PAGE, None), 2 * PAGE, 0), Fate::Retire);
        assert_eq!(
            decide(
                &Limits {
                    max_entries: 1000,
                    ..l
                },
                PAGE,
                0
            ),
            Fate::Keep { spare: true },
            "max_entries is capped at MAX_ENTRIES, not zeroed"
        );
    }

    #[test]
    fn two_concurrent_releases_cannot_both_take_the_last_spare() {
        // A spare budget of one page, two one-page releases. Thread A stops wherever
        // `release` drops the cache lock between two acquisitions, and B runs its whole
        // release meanwhile. Were the spare decision made in one acquisition and
        // recorded in another, A would stop having chosen "spare" unrecorded, B would
        // choose it too, and both regions would stay committed.
        let c: &'static RegionCache = Box::leak(Box::new(RegionCache::new()));
        let l = lean_limits(PAGE);
        let (a, b) = (os::map(PAGE) as usize, os::map(PAGE) as usize);
        let (paused_tx, paused_rx) = mpsc::channel::<bool>();
        let (resume_tx, resume_rx) = mpsc::channel::<()>();
        let done_tx = paused_tx.clone();
        let t = std::thread::spawn(move || {
            hook::set(Box::new(move || {
                paused_tx.send(true).unwrap();
                resume_rx.recv().unwrap();
            }));
            // SAFETY: a fresh mapping we give up.
            unsafe { c.release(a as *mut u8, PAGE, l) };
            let _ = done_tx.send(false);
        });
        // A either stopped between acquisitions (true) or finished (false).
        let paused = paused_rx.recv().unwrap();
        // SAFETY: a fresh mapping we give up.
        unsafe { c.release(b as *mut u8, PAGE, l) };
        if paused {
            resume_tx.send(()).unwrap();
        }
        t.join().unwrap();
        // Committed regions weigh their length, decommitted (DONTNEED) ones nothing.
        assert_eq!(c.usage(), (2, PAGE), "exactly one spare stays committed");
        assert_eq!(c.inner.with(|i| i.spare_bytes()), PAGE);
        c.drain();
    }

    fn lim(n: usize, bytes: usize, d: Option<os::Advice>) -> Limits {
        Limits {
            max_entries: n,
            max_bytes: bytes,
            max_region: usize::MAX,
            decommit: d,
            spare_bytes: 0,
            decay_ms: 0,
            idle_entries: 0,
            idle_fraction: 0,
        }
    }

    /// A region longer than `max_region` is retired as it comes in, whatever room the
    /// cache has; the large cache's bound is [`LARGE_REGION_MAX`], the superslab cache's
    /// none.
    #[test]
    fn a_region_past_max_region_is_retired() {
        let l = Limits {
            max_region: 8 * PAGE,
            ..lim(4, usize::MAX, None)
        };
        assert_eq!(decide(&l, 8 * PAGE, 0), Fate::Keep { spare: false });
        assert_eq!(decide(&l, 9 * PAGE, 0), Fate::Retire);
        let c = RegionCache::new();
        let (a, b) = (os::map(8 * PAGE), os::map(9 * PAGE));
        // SAFETY: fresh mappings we give up.
        unsafe {
            c.release(a, 8 * PAGE, l);
            c.release(b, 9 * PAGE, l);
        }
        assert_eq!(c.usage(), (1, 8 * PAGE), "only the short one is kept");
        c.drain();
        assert_eq!(large_limits().max_region, LARGE_REGION_MAX);
        assert_eq!(superslab_limits().max_region, usize::MAX);
    }

    #[test]
    fn one_spare_stays_committed() {
        // Checked on this cache's own state, not on the process-wide decommit counter,
        // which tests running in parallel also increment: a region decommitted with
        // DONTNEED counts no bytes, a committed one its whole length.
        let c = RegionCache::new();
        let l = Limits {
            spare_bytes: PAGE,
            ..lim(4, usize::MAX, Some(os::Advice::DontNeed))
        };
        let (a, b) = (os::map(PAGE), os::map(PAGE));
        // SAFETY: fresh mappings we give up.
        unsafe {
            a.write(9);
            c.release(a, PAGE, l);
            assert_eq!(c.usage(), (1, PAGE), "the first is the spare: committed");
            c.release(b, PAGE, l);
        }
        assert_eq!(c.usage(), (2, PAGE), "the second is decommitted");
        let (q, _, dirty) = c.take(PAGE, PAGE).unwrap();
        assert_eq!(q, b);
        assert!(!dirty);
        let (r, _, dirty) = c.take(PAGE, PAGE).unwrap();
        // SAFETY: ours again.
        unsafe {
            assert_eq!((r, dirty, *r), (a, true, 9));
            os::unmap(q, PAGE);
            os::unmap(r, PAGE);
        }
    }

    #[test]
    fn keeps_up_to_the_bound_then_retires_oldest() {
        let c = RegionCache::new();
        let before = stats::snapshot();
        let regions: [*mut u8; 3] = [os::map(PAGE), os::map(PAGE), os::map(PAGE)];
        for &r in &regions {
            // SAFETY: each region is a fresh one-page mapping we give up.
            unsafe { c.release(r, PAGE, lim(2, usize::MAX, None)) };
        }
        assert_eq!(c.usage(), (2, 2 * PAGE));
        assert!(stats::snapshot().retired > before.retired);
        // MRU first.
        assert_eq!(c.take(PAGE, PAGE).map(|e| e.0), Some(regions[2]));
        assert_eq!(c.take(PAGE, PAGE).map(|e| e.0), Some(regions[1]));
        assert!(c.take(PAGE, PAGE).is_none());
        // SAFETY: both regions are ours again.
        unsafe {
            os::unmap(regions[1], PAGE);
            os::unmap(regions[2], PAGE);
        }
    }

    #[test]
    fn byte_bound_and_size_match() {
        let c = RegionCache::new();
        let a = os::map(4 * PAGE);
        let b = os::map(2 * PAGE);
        // SAFETY: fresh mappings we give up.
        unsafe {
            c.release(a, 4 * PAGE, lim(8, 5 * PAGE, None));
            c.release(b, 2 * PAGE, lim(8, 5 * PAGE, None)); // evicts a
        }
        assert_eq!(c.usage(), (1, 2 * PAGE));
        assert!(c.take(3 * PAGE, 8 * PAGE).is_none());
        let (q, len, _) = c.take(PAGE, 2 * PAGE).unwrap();
        assert_eq!((q, len), (b, 2 * PAGE));
        // SAFETY: ours again.
        unsafe { os::unmap(q, len) };
    }

    #[test]
    fn decommit_is_counted_and_drain_empties() {
        let c = RegionCache::new();
        let before = stats::snapshot();
        let a = os::map(PAGE);
        // SAFETY: fresh mapping; write then give up.
        unsafe {
            a.write(1);
            c.release(a, PAGE, lim(4, usize::MAX, Some(os::Advice::DontNeed)));
        }
        assert!(stats::snapshot().lean_decommit > before.lean_decommit);
        assert_eq!(c.drain(), PAGE);
        assert_eq!(c.usage(), (0, 0));
    }

    #[test]
    fn evicts_all_the_bound_needs_at_once() {
        // Eight one-page regions fill an eight-page bound; a region of eight pages then
        // needs all eight gone (more than the four per release of old): it is kept.
        let c = RegionCache::new();
        let l = lim(MAX_ENTRIES, 8 * PAGE, None);
        for _ in 0..8 {
            // SAFETY: fresh mappings we give up.
            unsafe { c.release(os::map(PAGE), PAGE, l) };
        }
        assert_eq!(c.usage(), (8, 8 * PAGE));
        let big = os::map(8 * PAGE);
        // SAFETY: a fresh mapping we give up.
        unsafe { c.release(big, 8 * PAGE, l) };
        assert_eq!(c.usage(), (1, 8 * PAGE));
        assert_eq!(c.take(8 * PAGE, 8 * PAGE).map(|e| e.0), Some(big));
        // SAFETY: ours again.
        unsafe { os::unmap(big, 8 * PAGE) };
    }

    #[test]
    fn a_committed_region_counts_its_whole_length() {
        // Whatever was last asked of it, a region kept committed counts all its pages;
        // one decommitted with DONTNEED counts nothing.
        let c = RegionCache::new();
        let a = os::map(16 * PAGE);
        // SAFETY: a fresh mapping we give up.
        unsafe { c.release(a, 16 * PAGE, lim(4, usize::MAX, None)) };
        assert_eq!(c.usage(), (1, 16 * PAGE));
        let b = os::map(16 * PAGE);
        // SAFETY: a fresh mapping we give up.
        unsafe { c.release(b, 16 * PAGE, lim(4, usize::MAX, Some(os::Advice::DontNeed))) };
        assert_eq!(c.usage(), (2, 16 * PAGE));
        // A region bigger than the whole bound is not kept.
        let d = os::map(16 * PAGE);
        // SAFETY: a fresh mapping we give up.
        unsafe { c.release(d, 16 * PAGE, lim(4, 8 * PAGE, None)) };
        assert_eq!(c.usage().0, 2);
        c.drain();
    }

    #[test]
    fn zero_bound_retires_at_once() {
        let c = RegionCache::new();
        let a = os::map(PAGE);
        // SAFETY: fresh mapping we give up.
        unsafe { c.release(a, PAGE, lim(0, usize::MAX, None)) };
        assert_eq!(c.usage(), (0, 0));
    }
}

#[cfg(test)]
mod decay_tests {
    use super::*;
    extern crate std;

    #[test]
    fn every_decayed_region_goes_at_the_next_call() {
        let c = RegionCache::new();
        let l = Limits {
            max_entries: MAX_ENTRIES,
            max_bytes: usize::MAX,
            max_region: usize::MAX,
            decommit: None,
            spare_bytes: 0,
            decay_ms: 30,
            idle_entries: 0,
            idle_fraction: 0,
        };
        for _ in 0..20 {
            // SAFETY: fresh mappings given up.
            unsafe { c.release(os::map(os::PAGE), os::PAGE, l) };
        }
        assert_eq!(c.usage().0, 20);
        std::thread::sleep(std::time::Duration::from_millis(80));
        let b = os::map(os::PAGE);
        // SAFETY: a fresh mapping given up.
        unsafe { c.release(b, os::PAGE, l) };
        assert_eq!(
            c.usage(),
            (1, os::PAGE),
            "all 20 decayed ones retired at once"
        );
        std::thread::sleep(std::time::Duration::from_millis(80));
        c.purge_older_than(os::now_ms() - 30);
        assert_eq!(c.usage(), (0, 0));
    }

    fn decaying(idle_entries: usize, idle_fraction: usize) -> Limits {
        Limits {
            max_entries: MAX_ENTRIES,
            max_bytes: usize::MAX,
            max_region: usize::MAX,
            decommit: None,
            spare_bytes: 0,
            decay_ms: 40,
            idle_entries,
            idle_fraction,
        }
    }

    fn sleep_ms(ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }

    #[test]
    fn past_the_decay_a_cache_keeps_its_idle_target_only() {
        use os::PAGE;
        let c = RegionCache::new();
        let l = decaying(3, 4);
        // A peak of 32 pages in use, all freed: a quarter of it may stay idle.
        c.note_live(32 * PAGE);
        c.note_live(0);
        let regions: std::vec::Vec<*mut u8> = (0..6).map(|_| os::map(PAGE)).collect();
        for &r in &regions {
            // SAFETY: fresh mappings given up.
            unsafe { c.release(r, PAGE, l) };
        }
        assert!(c.purge_due(u64::MAX - 1), "something to purge later");
        assert!(!c.purge_due(os::now_ms()), "nothing due yet");
        c.purge(&l, os::now_ms());
        assert_eq!(
            c.usage(),
            (6, 6 * PAGE),
            "regions within the interval all stay"
        );
        // Two intervals and a half: the peak halves twice (32 -> 8 pages), and the
        // regions past the interval go down to the idle target: at most 3 regions and a
        // quarter of the peak, 2 pages. (The clock is read once: a slow machine that
        // sleeps longer sees the peak halve once more, and keeps one region.)
        sleep_ms(100);
        let now = os::now_ms();
        assert!(c.purge_due(now));
        c.purge(&l, now);
        let kept = (c.recent_peak() / 4 / PAGE).min(3);
        assert!(kept >= 1, "peak {}", c.recent_peak());
        assert_eq!(
            c.usage(),
            (kept, kept * PAGE),
            "the idle target: a quarter of the decayed peak"
        );
        assert!(
            !c.purge_due(os::now_ms()),
            "kept regions are not due at once"
        );
        // The newest stay.
        for &r in regions.iter().rev().take(kept) {
            assert_eq!(c.take(PAGE, PAGE).map(|e| e.0), Some(r));
            // SAFETY: ours again.
            unsafe { os::unmap(r, PAGE) };
        }
    }

    #[test]
    fn a_region_reused_within_the_interval_stays() {
        use os::PAGE;
        let c = RegionCache::new();
        let l = decaying(0, 0);
        let (a, b) = (os::map(PAGE), os::map(PAGE));
        // SAFETY: fresh mappings given up.
        unsafe {
            c.release(a, PAGE, l);
            c.release(b, PAGE, l);
        }
        sleep_ms(25);
        // `b` is taken and freed again within the interval: a fresh stamp.
        let (q, _, _) = c.take(PAGE, PAGE).unwrap();
        assert_eq!(q, b);
        // SAFETY: ours again, given up.
        unsafe { c.release(q, PAGE, l) };
        sleep_ms(25);
        // `a` has been idle 50 ms (> 40): gone at the next purge; `b` only 25 ms.
        c.purge(&l, os::now_ms());
        assert_eq!(c.usage(), (1, PAGE));
        assert_eq!(c.take(PAGE, PAGE).map(|e| e.0), Some(b));
        // SAFETY: ours again.
        unsafe { os::unmap(b, PAGE) };
    }

    #[test]
    fn the_peak_halves_per_interval_never_under_the_live_bytes() {
        let p = DecayingPeak::new();
        p.note_live(1000);
        p.note_live(100);
        assert_eq!(p.at(10_000, 100), 1000, "a new peak starts its clock");
        assert_eq!(p.at(10_050, 100), 1000);
        assert_eq!(p.at(10_100, 100), 500);
        p.note_live(300);
        assert_eq!(p.at(10_300, 100), 300, "halved twice, but 300 are in use");
        p.note_live(0);
        assert_eq!(p.at(20_000, 100), 0);
        assert_eq!(p.at(30_000, 0), 0, "no decay: as it is");
    }

    #[test]
    fn take_for_picks_the_region_whose_hot_part_fits_the_block() {
        // Four regions of one length whose blocks spanned 1, 4, 2 and 3 pages. Each
        // request takes the one it faults least into, then the one holding the fewest
        // idle resident pages; by length alone (all equal) each would take the newest.
        use os::PAGE;
        let c = RegionCache::new();
        let l = decaying(0, 0);
        let regions: std::vec::Vec<*mut u8> = (0..4).map(|_| os::map(8 * PAGE)).collect();
        for (&r, hot) in regions.iter().zip([1, 4, 2, 3]) {
            // SAFETY: fresh mappings given up.
            unsafe { c.release_touched(r, 8 * PAGE, hot * PAGE, l) };
        }
        let take = |want: usize| c.take_for(8 * PAGE, 8 * PAGE, want * PAGE).unwrap();
        // 2 pages: the region hot on exactly 2 (no fault, no idle page).
        assert_eq!(take(2), (regions[2], 8 * PAGE, true, 2 * PAGE));
        // 2 pages again: hot on 3 covers it with one idle page, 4 with two.
        assert_eq!(take(2).0, regions[3]);
        // 6 pages: none covers it; the hottest (4) faults least.
        assert_eq!(take(6).0, regions[1]);
        assert_eq!(take(1).0, regions[0]);
        assert_eq!(c.usage(), (0, 0));
        // A plain release is hot on its whole length, and so is a hint past it (clamped:
        // the debug check of the entries would fail otherwise).
        // SAFETY: fresh mappings given up.
        unsafe {
            c.release_touched(regions[0], 8 * PAGE, 100 * PAGE, l);
            c.release(regions[1], 8 * PAGE, l);
        }
        // Equal: the newest.
        assert_eq!(take(1), (regions[1], 8 * PAGE, true, 8 * PAGE));
        let e = c.take(8 * PAGE, 8 * PAGE).unwrap();
        assert_eq!((e.0, e.1), (regions[0], 8 * PAGE));
        assert!(c.take_for(8 * PAGE, 8 * PAGE, PAGE).is_none());
        for r in regions {
            // SAFETY: ours again.
            unsafe { os::unmap(r, 8 * PAGE) };
        }
    }

    #[test]
    fn a_decommitted_region_is_cold() {
        // DONTNEED gives its pages back: whatever its blocks spanned, it is hot on none.
        use os::PAGE;
        let c = RegionCache::new();
        let l = Limits {
            decommit: Some(os::Advice::DontNeed),
            ..decaying(0, 0)
        };
        let (a, b) = (os::map(4 * PAGE), os::map(4 * PAGE));
        // SAFETY: fresh mappings given up.
        unsafe {
            c.release_touched(a, 4 * PAGE, 4 * PAGE, l);
            c.release_touched(b, 4 * PAGE, 2 * PAGE, decaying(0, 0));
        }
        // `b`, kept committed, covers 2 pages; `a` covers none.
        assert_eq!(
            c.take_for(4 * PAGE, 4 * PAGE, 2 * PAGE).map(|e| e.0),
            Some(b)
        );
        assert_eq!(
            c.take_for(4 * PAGE, 4 * PAGE, PAGE),
            Some((a, 4 * PAGE, false, 0))
        );
        // SAFETY: ours again.
        unsafe {
            os::unmap(a, 4 * PAGE);
            os::unmap(b, 4 * PAGE);
        }
    }

    #[test]
    fn a_rest_put_back_keeps_its_state() {
        // The rest of a region cut for a superslab: a decommitted one stays so (no
        // weight, no second `madvise`, not hot), a committed one keeps its weight and
        // hot bytes; neither spends the spare budget.
        use os::PAGE;
        let c = RegionCache::new();
        let l = Limits {
            decommit: Some(os::Advice::DontNeed),
            spare_bytes: 16 * PAGE,
            ..decaying(0, 0)
        };
        let (a, b) = (os::map(4 * PAGE), os::map(4 * PAGE));
        // SAFETY: fresh mappings given up.
        unsafe {
            c.put_back(a, 4 * PAGE, true, 4 * PAGE, l);
            c.put_back(b, 4 * PAGE, false, 3 * PAGE, l);
        }
        // (Had `b` been released, the decision would have decommitted it or spent the
        // spare budget on it: `take_for` would find it cold, or `spare_bytes` used.)
        assert_eq!(
            c.inner.with(|c| c.spare_bytes()),
            0,
            "a put-back spent the spare budget"
        );
        assert_eq!(
            c.usage(),
            (2, 4 * PAGE),
            "the decommitted rest weighs nothing"
        );
        assert_eq!(
            c.take_for(4 * PAGE, 4 * PAGE, 3 * PAGE),
            Some((b, 4 * PAGE, true, 3 * PAGE))
        );
        assert_eq!(c.take(4 * PAGE, 4 * PAGE), Some((a, 4 * PAGE, false)));
        // SAFETY: ours again.
        unsafe {
            os::unmap(a, 4 * PAGE);
            os::unmap(b, 4 * PAGE);
        }
    }

    #[test]
    fn hot_classes_grow_with_the_bytes_a_quarter_octave_each() {
        let mut bytes: std::vec::Vec<usize> = (0..4096)
            .chain((12..64).flat_map(|q| {
                (0..64)
                    .map(move |k| (1usize << q) + (k << q >> 6))
                    .chain([(1usize << q) - 1])
            }))
            .chain([usize::MAX])
            .collect();
        bytes.sort_unstable();
        let mut prev = 0;
        for h in bytes {
            let c = hot_class(h);
            assert!(
                (c as usize) < NCLS && c >= prev,
                "class of {h}: {c} after {prev}"
            );
            prev = c;
        }
        assert_eq!(hot_class(4095), 0);
        assert_eq!(hot_class(4096), 1);
        assert_eq!(hot_class(5 << 10), 2);
        assert_eq!(hot_class(8 << 10), 5, "four classes per doubling");
        assert_eq!(hot_class(usize::MAX), 208);
    }

    /// `find`'s rule written as a scan over every entry: the tightest cover (fewest hot
    /// bytes at or above `want`), else the hottest; ties: the shorter, then the newer.
    fn find_by_scan(c: &Inner, min: usize, max: usize, want: usize, committed: bool) -> Option<u8> {
        let mut all: std::vec::Vec<(u8, Entry)> = std::vec::Vec::new();
        let mut i = c.oldest;
        while i != NIL {
            all.push((i, *c.at(i)));
            i = c.at(i).newer;
        }
        let key = |e: &Entry| {
            let miss = if e.hot >= want {
                e.hot - want
            } else {
                (1 << 63) | (want - e.hot)
            };
            (miss, e.len)
        };
        all.iter()
            .enumerate()
            .filter(|(_, (_, e))| e.len >= min && e.len <= max && !(committed && e.zeroed))
            // The newest of equals: the greatest arrival position.
            .min_by_key(|(pos, (_, e))| (key(e), usize::MAX - pos))
            .map(|(_, (i, _))| *i)
    }

    /// `find_by_length`'s rule as a scan: the shortest fitting length, the newest of
    /// those.
    fn length_by_scan(c: &Inner, min: usize, max: usize, committed: bool) -> Option<u8> {
        let mut all: std::vec::Vec<(u8, Entry)> = std::vec::Vec::new();
        let mut i = c.oldest;
        while i != NIL {
            all.push((i, *c.at(i)));
            i = c.at(i).newer;
        }
        all.iter()
            .enumerate()
            .filter(|(_, (_, e))| e.len >= min && e.len <= max && !(committed && e.zeroed))
            .min_by_key(|(pos, (_, e))| (e.len, usize::MAX - pos))
            .map(|(_, (i, _))| *i)
    }

    #[test]
    fn a_decommitting_large_cache_chooses_by_length() {
        assert_eq!(want_under(None, 5), Some(5), "pages kept: by the hot bytes");
        assert_eq!(
            want_under(Some(os::Advice::DontNeed), 5),
            None,
            "LEAN: by length"
        );
        assert_eq!(want_under(Some(os::Advice::Free), 5), None);
    }

    #[test]
    fn the_class_index_finds_what_a_scan_of_every_entry_finds() {
        // Random caches (up to MAX_ENTRIES entries, lengths and hot bytes over many
        // classes, some zeroed), random requests, and entries taken and added between
        // them: the index must agree with the scan on every request.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut c = Inner::new();
        let mut stamp = 0;
        for round in 0..4000 {
            if c.n < MAX_ENTRIES && (rnd(3) > 0 || c.n == 0) {
                let len = (1 + rnd(16) as usize) << (12 + rnd(12));
                let zeroed = rnd(8) == 0;
                let hot = if zeroed {
                    0
                } else {
                    (rnd(len as u64 + 1) as usize) & !0xFF
                };
                stamp += rnd(3);
                let e = Entry {
                    base: ((round + 1) << 12) as *mut u8,
                    len,
                    zeroed,
                    hot,
                    stamp,
                    ..EMPTY
                };
                assert!(c.push_newest(e));
            }
            let min = (1 + rnd(16) as usize) << (12 + rnd(12));
            let max = min.saturating_mul(1 + rnd(6) as usize);
            let want = rnd(max as u64 + 1) as usize;
            let committed = rnd(4) == 0;
            let got = c.find(min, max, want, committed);
            assert_eq!(
                got,
                find_by_scan(&c, min, max, want, committed),
                "round {round}"
            );
            assert_eq!(
                c.find_by_length(min, max, committed),
                length_by_scan(&c, min, max, committed),
                "round {round}, by length"
            );
            if let Some(i) = got
                && rnd(2) == 0
            {
                c.remove(i);
            }
            if rnd(50) == 0 {
                let mut out = Doomed::new();
                c.remove_oldest(&mut out, rnd(4) as usize);
            }
        }
    }

    #[test]
    fn take_finds_the_best_fit() {
        use os::PAGE;
        let c = RegionCache::new();
        let l = decaying(0, 0);
        let lens = [4 * PAGE, 2 * PAGE, 8 * PAGE, 3 * PAGE];
        for len in lens {
            // SAFETY: fresh mappings given up.
            unsafe { c.release(os::map(len), len, l) };
        }
        let got: std::vec::Vec<usize> = [2, 3, 3, 2]
            .iter()
            .map(|&min| c.take(min * PAGE, 16 * PAGE).unwrap().1)
            .collect();
        assert_eq!(got, [2 * PAGE, 3 * PAGE, 4 * PAGE, 8 * PAGE]);
        assert_eq!(c.usage(), (0, 0));
    }

    #[test]
    fn a_copy_target_is_taken_among_committed_regions_only() {
        use os::PAGE;
        let c = RegionCache::new();
        // One spare page committed; the next region is decommitted (DONTNEED).
        let l = Limits {
            spare_bytes: 2 * PAGE,
            decommit: Some(os::Advice::DontNeed),
            ..decaying(0, 0)
        };
        let (a, b) = (os::map(2 * PAGE), os::map(2 * PAGE));
        // SAFETY: fresh mappings given up.
        unsafe {
            c.release(a, 2 * PAGE, l);
            c.release(b, 2 * PAGE, l);
        }
        assert_eq!(c.take_fit(PAGE, 4 * PAGE, None, true).map(|e| e.0), Some(a));
        assert!(
            c.take_fit(PAGE, 4 * PAGE, None, true).is_none(),
            "b was decommitted"
        );
        assert_eq!(
            c.take_fit(PAGE, 4 * PAGE, None, false).map(|e| e.0),
            Some(b)
        );
        // SAFETY: ours again.
        unsafe {
            os::unmap(a, 2 * PAGE);
            os::unmap(b, 2 * PAGE);
        }
    }

    #[test]
    fn old_regions_are_retired_at_the_next_release() {
        let c = RegionCache::new();
        let l = Limits {
            max_entries: 8,
            max_bytes: usize::MAX,
            max_region: usize::MAX,
            decommit: None,
            spare_bytes: 0,
            decay_ms: 30,
            idle_entries: 0,
            idle_fraction: 0,
        };
        let a = os::map(os::PAGE);
        // SAFETY: fresh mapping given up.
        unsafe { c.release(a, os::PAGE, l) };
        assert_eq!(c.usage().0, 1);
        std::thread::sleep(std::time::Duration::from_millis(80));
        let b = os::map(os::PAGE);
        // SAFETY: fresh mapping given up.
        unsafe { c.release(b, os::PAGE, l) };
        assert_eq!(c.usage().0, 1, "the old one decayed");
        assert_eq!(c.take(os::PAGE, os::PAGE).map(|e| e.0), Some(b));
        // SAFETY: ours again.
        unsafe { os::unmap(b, os::PAGE) };
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
