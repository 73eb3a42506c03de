//! # hakmem-release-policy: what happens to empty memory
//!
//! **Owns** the decision for a region that holds no live block any more (an empty
//! superslab, a freed large mapping): keep it in a bounded LRU cache for reuse, decommit
//! its pages (`MADV_FREE` / `MADV_DONTNEED`) while keeping it, or retire it (`munmap`).
//! It also owns the two caches of such regions ([`SUPERSLABS`] and [`LARGE`]).
//!
//! **Entry points**: [`ss_maybe_decommit_superslab`] (an empty superslab comes in),
//! [`slab_maybe_decommit`] (an empty slab inside a live superslab),
//! [`ss_take_cached`] (a superslab is needed), and the same pair for large mappings:
//! [`large_release`] / [`large_take_cached`].
//!
//! **Gates** (read once, through `hakmem-env-gates`): `HAKMEM_SS_MEM_LEAN` (lean mode:
//! decommit cached regions per the next gate), `HAKMEM_SS_MEM_LEAN_DECOMMIT` (`FREE`,
//! `DONTNEED`, `OFF`), `HAKMEM_SS_CACHE_MAX` (empty superslabs kept),
//! `HAKMEM_LARGE_CACHE_MIB` (bytes of freed large mappings kept).
//!
//! **Features**: none; the policy is chosen at run time by the gates above, whose
//! defaults the preset sets.
//!
//! **Invariants**
//! - A cached region holds no live data: callers hand over regions only when empty.
//! - The caches never exceed their bounds: at most `HAKMEM_SS_CACHE_MAX` superslabs and
//!   at most `HAKMEM_LARGE_CACHE_MIB` MiB (counted by the bytes a mapping may hold
//!   resident) and [`MAX_ENTRIES`] entries of large mappings; to make room the oldest
//!   entries are retired (up to four per release; past that the new region is retired
//!   instead). Large mappings idle for `HAKMEM_LARGE_DECAY_MS` are retired at the next
//!   large operation.
//! - Every decommit and retire is counted (`lean_decommit`, `lean_retire`) in the OS box.
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
//! if let Some((q, qlen, _dirty)) = rp::large_take_cached(len, len) {
//!     assert_eq!((q, qlen), (p, len));
//!     // SAFETY: we own the region again.
//!     unsafe { os::unmap(q, qlen) };
//! }
//! ```
#![deny(missing_docs)]
#![no_std]

use hakmem_env_gates::{Decommit, gates};
use hakmem_os_stats::lock::Locked;
use hakmem_os_stats::{os, stats};

/// Most regions one cache can hold, whatever the gates say.
pub const MAX_ENTRIES: usize = 64;

#[derive(Clone, Copy)]
struct Entry {
    base: *mut u8,
    len: usize,
    /// True when its pages were decommitted with `DONTNEED` (they read as zeros).
    zeroed: bool,
    /// True when it was kept committed as the cache's spare (see [`Limits::spare_bytes`]).
    spare: bool,
    /// What it counts against the byte bound: the bytes it may hold resident.
    weight: usize,
    /// When it entered the cache ([`os::now_ms`]), for decay.
    stamp: u64,
}

const EMPTY: Entry = Entry {
    base: core::ptr::null_mut(),
    len: 0,
    zeroed: false,
    spare: false,
    weight: 0,
    stamp: 0,
};

/// A bounded LRU cache of empty regions; index 0 is the oldest.
pub struct RegionCache {
    inner: Locked<Inner>,
}

struct Inner {
    entries: [Entry; MAX_ENTRIES],
    n: usize,
    bytes: usize,
}

// SAFETY: the raw pointers name whole regions owned by the cache; all access is under
// the lock.
unsafe impl Send for Inner {}

// Entry bookkeeping without a panic path: `n <= MAX_ENTRIES` always holds, but every
// access goes through `get`/`get_mut`, so a broken invariant cannot turn into a panic
// inside the allocator.
impl Inner {
    fn live(&self) -> &[Entry] {
        self.entries.get(..self.n).unwrap_or(&[])
    }

    /// Remove and return entry `i` (0 = oldest), keeping the order of the others.
    fn remove(&mut self, i: usize) -> Option<Entry> {
        let n = self.n;
        let e = *self.live().get(i)?;
        if let Some(tail) = self.entries.get_mut(i..n) {
            tail.rotate_left(1);
        }
        self.n = n - 1;
        self.bytes -= e.weight;
        Some(e)
    }

    /// Put `e` back as the oldest entry (false when full).
    fn push_oldest(&mut self, e: Entry) -> bool {
        let n = self.n;
        match self.entries.get_mut(..n + 1) {
            Some(v) if !v.is_empty() => {
                v.rotate_right(1);
                if let Some(first) = v.first_mut() {
                    *first = e;
                }
                self.n = n + 1;
                self.bytes += e.weight;
                true
            }
            _ => false,
        }
    }

    /// Add `e` as the newest entry (false when full).
    fn push_newest(&mut self, e: Entry) -> bool {
        match self.entries.get_mut(self.n) {
            Some(slot) => {
                *slot = e;
                self.n += 1;
                self.bytes += e.weight;
                true
            }
            None => false,
        }
    }
}

/// Bounds and decommit behaviour of one cache.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most regions kept.
    pub max_entries: usize,
    /// Most bytes kept.
    pub max_bytes: usize,
    /// Decommit a region when it enters the cache (`None`: keep its pages).
    pub decommit: Option<os::Advice>,
    /// With `decommit` on, regions may stay committed (the cache's spares) as long as
    /// their weights add up to at most this many bytes, so a program that frees and
    /// reallocates a few blocks in a loop does not pay a decommit and page faults every
    /// time. 0: no spare.
    pub spare_bytes: usize,
    /// Regions cached longer than this many milliseconds are retired at the next
    /// `release` or `take` (0: no decay).
    pub decay_ms: u64,
}

impl Default for RegionCache {
    fn default() -> Self {
        Self::new()
    }
}

impl RegionCache {
    /// An empty cache.
    pub const fn new() -> Self {
        RegionCache {
            inner: Locked::new(Inner {
                entries: [EMPTY; MAX_ENTRIES],
                n: 0,
                bytes: 0,
            }),
        }
    }

    /// Hand over an empty region: it is kept (maybe decommitted) or retired, and the
    /// oldest entries are retired when the bounds are exceeded.
    ///
    /// # Safety
    /// `base..base+len` is a whole mapping made by the OS box, holding no live data, and
    /// the caller gives up all use of it.
    pub unsafe fn release(&self, base: *mut u8, len: usize, limits: Limits) {
        // SAFETY: forwarded caller guarantee.
        unsafe { self.release_weighted(base, len, len, limits) }
    }

    /// [`RegionCache::release`] for a region that may hold at most `weight` bytes
    /// resident (the rest of its address space was never touched): the byte bound counts
    /// `weight`, so large mappings rounded up to big units are not over-counted.
    ///
    /// # Safety
    /// As [`RegionCache::release`].
    pub unsafe fn release_weighted(
        &self,
        base: *mut u8,
        len: usize,
        weight: usize,
        limits: Limits,
    ) {
        let weight = weight.min(len);
        let now = if limits.decay_ms > 0 { os::now_ms() } else { 0 };
        if limits.decay_ms > 0 {
            self.purge_older_than(now.saturating_sub(limits.decay_ms));
        }
        let max_entries = limits.max_entries.min(MAX_ENTRIES);
        if max_entries == 0 || weight > limits.max_bytes {
            retire(base, len);
            return;
        }
        let mut zeroed = false;
        let spare = limits.decommit.is_some()
            && weight
                + self.inner.with(|c| {
                    c.live()
                        .iter()
                        .filter(|e| e.spare)
                        .map(|e| e.weight)
                        .sum::<usize>()
                })
                <= limits.spare_bytes;
        if let (Some(advice), false) = (limits.decommit, spare) {
            // SAFETY: the caller guarantees the region is ours and empty.
            if unsafe { os::decommit(base, len, advice) } {
                stats::count_lean_decommit();
                zeroed = advice == os::Advice::DontNeed;
            }
        }
        // A region decommitted with DONTNEED holds nothing resident: it costs only
        // address space, so it does not count against the byte bound.
        let weight = if zeroed { 0 } else { weight };
        // Evicted regions are retired after the lock is dropped.
        let mut evicted = [EMPTY; 4];
        let mut n_evicted = 0;
        let mut overflow = EMPTY;
        self.inner.with(|c| {
            while (c.n >= max_entries || c.bytes + weight > limits.max_bytes) && c.n > 0 {
                let Some(old) = c.remove(0) else { break };
                if let Some(slot) = evicted.get_mut(n_evicted) {
                    *slot = old;
                    n_evicted += 1;
                } else {
                    // Put it back and give up on caching the new region instead.
                    c.push_oldest(old);
                    overflow = Entry {
                        base,
                        len,
                        zeroed,
                        spare,
                        weight,
                        stamp: now,
                    };
                    return;
                }
            }
            if !c.push_newest(Entry {
                base,
                len,
                zeroed,
                spare,
                weight,
                stamp: now,
            }) {
                overflow = Entry {
                    base,
                    len,
                    zeroed,
                    spare,
                    weight,
                    stamp: now,
                };
            }
        });
        for e in evicted.iter().take(n_evicted) {
            retire(e.base, e.len);
        }
        if !overflow.base.is_null() {
            retire(overflow.base, overflow.len);
        }
    }

    /// Take the most recently cached region whose length is in `min_len..=max_len`.
    /// Returns `(base, len, maybe_dirty)`: `maybe_dirty` is true when the region may hold
    /// old bytes (it was not decommitted with `DONTNEED`); a region is never zeroed here.
    pub fn take(&self, min_len: usize, max_len: usize) -> Option<(*mut u8, usize, bool)> {
        self.inner.with(|c| {
            let i = c
                .live()
                .iter()
                .rposition(|e| e.len >= min_len && e.len <= max_len)?;
            let e = c.remove(i)?;
            Some((e.base, e.len, !e.zeroed))
        })
    }

    /// Retire the regions cached before `cutoff` (milliseconds of [`os::now_ms`]), oldest
    /// first, at most a few per call (each is a `munmap`).
    pub fn purge_older_than(&self, cutoff: u64) {
        let mut old = [EMPTY; 4];
        let mut n = 0;
        self.inner.with(|c| {
            while n < old.len() && c.live().first().is_some_and(|e| e.stamp < cutoff) {
                let Some(e) = c.remove(0) else { break };
                old[n] = e;
                n += 1;
            }
        });
        for e in old.iter().take(n) {
            retire(e.base, e.len);
        }
    }

    /// Retire every cached region now (for `trim`). Returns the bytes unmapped.
    pub fn drain(&self) -> usize {
        let mut total = 0;
        loop {
            let e = self.inner.with(|c| match c.n {
                0 => EMPTY,
                n => c.remove(n - 1).unwrap_or(EMPTY),
            });
            if e.base.is_null() {
                return total;
            }
            total += e.len;
            retire(e.base, e.len);
        }
    }

    /// Regions and bytes held now.
    pub fn usage(&self) -> (usize, usize) {
        self.inner.with(|c| (c.n, c.bytes))
    }

    fn lock_for_fork(&self) {
        self.inner.raw().lock();
    }

    fn unlock_after_fork(&self) {
        self.inner.raw().unlock();
    }
}

fn retire(base: *mut u8, len: usize) {
    stats::count_lean_retire();
    // SAFETY: regions reach here only from `release`/`drain`, whose callers gave them up.
    unsafe { os::unmap(base, len) };
}

/// The cache of empty superslabs.
pub static SUPERSLABS: RegionCache = RegionCache::new();
/// The cache of freed large mappings.
pub static LARGE: RegionCache = RegionCache::new();

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

/// The limits of the superslab cache, from the gates.
pub fn superslab_limits() -> Limits {
    let g = gates();
    Limits {
        max_entries: g.ss_cache_max as usize,
        max_bytes: usize::MAX,
        decommit: lean_advice(),
        spare_bytes: 0,
        decay_ms: 0,
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
        decommit: lean_advice(),
        spare_bytes: LARGE_SPARE_BYTES,
        decay_ms: g.large_decay_ms as u64,
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
    let len = (len + os::PAGE - 1) & !(os::PAGE - 1);
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

/// A cached superslab of exactly `len` bytes, if any: `(base, maybe_dirty)`.
pub fn ss_take_cached(len: usize) -> Option<(*mut u8, bool)> {
    SUPERSLABS.take(len, len).map(|(b, _, d)| (b, d))
}

/// Hand over a freed large mapping of `len` bytes of which at most `weight` were ever
/// touched: cached within `HAKMEM_LARGE_CACHE_MIB` (counted by weight), else retired.
///
/// # Safety
/// As [`RegionCache::release`].
pub unsafe fn large_release(base: *mut u8, len: usize, weight: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { LARGE.release_weighted(base, len, weight, large_limits()) }
}

/// A cached large mapping with length in `min_len..=max_len`: `(base, len, maybe_dirty)`.
pub fn large_take_cached(min_len: usize, max_len: usize) -> Option<(*mut u8, usize, bool)> {
    let decay = gates().large_decay_ms as u64;
    if decay > 0 {
        LARGE.purge_older_than(os::now_ms().saturating_sub(decay));
    }
    LARGE.take(min_len, max_len)
}

/// Retire every cached region (both caches). Returns the bytes unmapped.
pub fn trim() -> usize {
    SUPERSLABS.drain() + LARGE.drain()
}

/// Fork handler: take the cache locks (call last among hakmem's prepare handlers).
pub fn fork_prepare() {
    SUPERSLABS.lock_for_fork();
    LARGE.lock_for_fork();
}

/// Fork handler for the parent and the child: release what [`fork_prepare`] took.
pub fn fork_release() {
    LARGE.unlock_after_fork();
    SUPERSLABS.unlock_after_fork();
}

#[cfg(test)]
mod tests {
    use super::*;
    use os::PAGE;

    fn lim(n: usize, bytes: usize, d: Option<os::Advice>) -> Limits {
        Limits {
            max_entries: n,
            max_bytes: bytes,
            decommit: d,
            spare_bytes: 0,
            decay_ms: 0,
        }
    }

    #[test]
    fn one_spare_stays_committed() {
        let c = RegionCache::new();
        let before = stats::snapshot().lean_decommit;
        let l = Limits {
            spare_bytes: PAGE,
            ..lim(4, usize::MAX, Some(os::Advice::DontNeed))
        };
        let (a, b) = (os::map(PAGE), os::map(PAGE));
        // SAFETY: fresh mappings we give up.
        unsafe {
            a.write(9);
            c.release(a, PAGE, l);
            assert_eq!(
                stats::snapshot().lean_decommit,
                before,
                "the first is the spare"
            );
            c.release(b, PAGE, l);
        }
        assert!(
            stats::snapshot().lean_decommit > before,
            "the second is decommitted"
        );
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
        assert!(stats::snapshot().lean_retire > before.lean_retire);
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
    fn old_regions_are_retired_at_the_next_release() {
        let c = RegionCache::new();
        let l = Limits {
            max_entries: 8,
            max_bytes: usize::MAX,
            decommit: None,
            spare_bytes: 0,
            decay_ms: 30,
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
