//! Lean mode's rules for memory that is not empty yet: the slab classes of
//! `hakmem-ss-allocation` and the thread caches above them.
//!
//! Lean mode (`HAKMEM_SS_MEM_LEAN=1` with decommit `FREE` or `DONTNEED`, see
//! [`lean_mode`]) gives memory back as soon as it is empty. These are its rules, in one
//! place; the boxes that hold the memory ask them:
//!
//! - **Spares** ([`SlabSpares`], [`spares_for`]): an empty slab of a class is decommitted,
//!   unless the class *churns* (it took a new slab after it had decommitted one: it gave
//!   memory back and needed it again) and holds fewer than [`spares_for`] its slab size
//!   committed spares. Measured in docs/results/002-idle-release.md.
//! - **Shrinking** ([`ShrinkState`], [`SHRINK_RATIO`], [`shrink_floor`],
//!   [`decayed_peak`]): a class whose blocks out fall under `1 / SHRINK_RATIO` of their
//!   recent peak (a peak of at least [`shrink_floor`] blocks, decaying by
//!   `1 / PEAK_DECAY` per refill) is *shrinking* until it takes a new slab: it stops
//!   churning, gives its spares and its transfer-cache chains back, and tells the thread
//!   caches that flush to it to give back what they hold of it.
//! - **Bounds in lean mode**: the transfer cache's bytes per shard
//!   ([`xfer_max_bytes`]), the mid thread caches' bins ([`mid_bin_bound`]) and how far a
//!   thread's tiny bins may grow ([`tiny_growth_budget`]).
//!
//! The per-class state stays where it is cheapest to update (a class's [`SlabSpares`] in
//! its central state, under the class lock; its [`ShrinkState`] beside its counters, in
//! atomics); the types here own the rules that read and change it, each decision made
//! and recorded in one call.

use crate::{lean_advice, slab_maybe_decommit};
use hakmem_os_stats::sync::Ordering::Relaxed;
use hakmem_os_stats::sync::{AtomicBool, AtomicU64};

/// Whether lean mode gives memory back (`HAKMEM_SS_MEM_LEAN=1` with decommit on): the
/// caches size themselves smaller then, and empty slabs are decommitted.
#[inline]
pub fn lean_mode() -> bool {
    lean_advice().is_some()
}

/// Most bytes one shard of a class's transfer cache holds (outside lean mode).
pub const XFER_MAX_BYTES: usize = 64 * 1024;
/// Most bytes one shard holds in lean mode: chains there pin their slabs, which could
/// otherwise empty and be given back.
pub const XFER_MAX_BYTES_LEAN: usize = 16 * 1024;

/// Most bytes one transfer-cache shard holds, in lean mode (`lean`) or not.
#[inline]
pub const fn xfer_max_bytes_for(lean: bool) -> usize {
    if lean {
        XFER_MAX_BYTES_LEAN
    } else {
        XFER_MAX_BYTES
    }
}

/// Most bytes one transfer-cache shard holds in this process (lean mode from the gates).
#[inline]
pub fn xfer_max_bytes() -> usize {
    xfer_max_bytes_for(lean_mode())
}

/// The bound of one thread-cache bin: `bytes` of blocks, at most `max` blocks (and at
/// least 2, whatever the block size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinBound {
    /// Bytes of blocks a bin keeps.
    pub bytes: usize,
    /// Most blocks a bin keeps.
    pub max: u32,
}

/// The bound of a mid bin (classes above 1 KiB), in lean mode (`lean`) or not: 256 KiB of
/// blocks (at most 64) normally, a quarter of the bytes (at most 32 blocks) in lean mode.
/// Measured (results/007): 256 KiB per class made `mixed-32k` 36% faster than 64 KiB for
/// 0.5 MiB more peak RSS; lean mode keeps 64 KiB.
pub const fn mid_bin_bound(lean: bool) -> BinBound {
    if lean {
        BinBound {
            bytes: 64 * 1024,
            max: 32,
        }
    } else {
        BinBound {
            bytes: 256 * 1024,
            max: 64,
        }
    }
}

/// Bytes by which one thread's tiny bins (blocks up to 1 KiB) may grow past their base
/// bounds, all classes together, in lean mode (`lean`) or not: 4 MiB normally (the
/// per-thread bound of tcmalloc's caches), 256 KiB in lean mode. A bin grows when the
/// thread refills it after it overflowed (its working set of the class is bigger than
/// the bin, so every block would otherwise cross the central lists twice, results/170),
/// by what it gave back, at most doubling each time, while the budget lasts; a grown bin
/// that has not refilled for a while gives half its growth back ([`GROWTH_DECAY_TICKS`]);
/// a flush request (`trim`, the idle target) and thread exit give all of it back.
pub const fn tiny_growth_budget(lean: bool) -> usize {
    if lean { 256 * 1024 } else { 4 * 1024 * 1024 }
}

/// Slow-path events (refills and overflows of a thread's tiny bins) between two visits
/// of the thread's growth decay: each visit looks at the next tiny bin (round robin),
/// and one that grew and did not refill since its last visit gives half its growth back
/// and its surplus blocks to the slabs. (A bin of an inactive class is visited once per
/// `GROWTH_DECAY_TICKS * 20` events.)
pub const GROWTH_DECAY_TICKS: u32 = 64;

/// [`tiny_growth_budget`] in this process (lean mode from the gates).
#[inline]
pub fn tiny_growth_budget_now() -> usize {
    tiny_growth_budget(lean_mode())
}

/// Empty slabs a class keeps committed before decommitting more (lean mode): one slab of
/// up to 256 KiB (`slab_shift <= 18`), none of bigger slabs (they would pin too much
/// memory). Only a class that churns keeps its spares (see [`SlabSpares`]).
pub const fn spares_for(slab_shift: u32) -> u32 {
    if slab_shift <= 18 { 1 } else { 0 }
}

/// A class is shrinking when its blocks out fall under `peak / SHRINK_RATIO`.
pub const SHRINK_RATIO: u64 = 8;

/// The bound of a thread-cache bin while its class is shrinking: it gives everything
/// back and keeps at most this many blocks (results/002).
pub const SHRUNK_BIN_LIMIT: u32 = 2;

/// The recent peak of a class's blocks out decays by `1 / PEAK_DECAY` per refill.
pub const PEAK_DECAY: u64 = 32;

/// The smallest peak of blocks out from which a fall under [`SHRINK_RATIO`] makes a
/// class *shrinking*: four slabs' worth of blocks (`4 << slab_shift` bytes of
/// `block_size`-byte blocks; a class that never held four slabs has little to give back).
pub const fn shrink_floor(slab_shift: u32, block_size: usize) -> u64 {
    if block_size == 0 {
        return u64::MAX;
    }
    (4u64 << slab_shift) / block_size as u64
}

/// The peak after a refill that leaves `out` blocks out: it follows `out` up at once and
/// decays by `1 / PEAK_DECAY` per refill, so it tracks the recent high of a class that
/// keeps allocating (a producer/consumer pair whose blocks in flight vary is not taken
/// for a phase of frees), while a phase of frees (no refills) leaves it where it was.
pub const fn decayed_peak(peak: u64, out: u64) -> u64 {
    let p = peak - peak / PEAK_DECAY;
    if p > out { p } else { out }
}

/// Whether `out` blocks out, after a recent peak of `peak`, mean a phase of frees: the
/// peak was at least `floor` ([`shrink_floor`]) and `out` fell under
/// `peak / SHRINK_RATIO`.
pub const fn falls_to_shrink(peak: u64, out: u64, floor: u64) -> bool {
    peak >= floor && out.saturating_mul(SHRINK_RATIO) < peak
}

/// A class's shrink signal: its recent peak of blocks out and whether it is shrinking.
/// Atomics, read without the class lock by `flush` (relaxed: a lost or stale update of
/// this heuristic costs a late or early shrink, never corrupts anything); the shrinking
/// flag is set ([`ShrinkState::start_if_due`]) and cleared ([`ShrinkState::on_new_slab`])
/// under the class lock.
pub struct ShrinkState {
    peak: AtomicU64,
    shrinking: AtomicBool,
}

impl Default for ShrinkState {
    fn default() -> Self {
        Self::new()
    }
}

impl ShrinkState {
    hakmem_os_stats::loom_const_fn! {
        /// Not shrinking, no peak yet.
        pub fn new() -> Self {
            ShrinkState {
                peak: AtomicU64::new(0),
                shrinking: AtomicBool::new(false),
            }
        }
    }

    /// Whether the class is shrinking now.
    #[inline]
    pub fn is_shrinking(&self) -> bool {
        self.shrinking.load(Relaxed)
    }

    /// The recent peak of blocks out.
    #[inline]
    pub fn peak(&self) -> u64 {
        self.peak.load(Relaxed)
    }

    /// A refill left `out` blocks out: the peak follows ([`decayed_peak`]).
    #[inline]
    pub fn note_refill(&self, out: u64) {
        let p = self.peak.load(Relaxed);
        self.peak.store(decayed_peak(p, out), Relaxed);
    }

    /// Whether the class should start shrinking with `out` blocks out: lean mode, not
    /// shrinking already, and [`falls_to_shrink`] with `floor` ([`shrink_floor`]).
    #[inline]
    pub fn due(&self, out: u64, floor: u64) -> bool {
        if self.is_shrinking() || !lean_mode() {
            return false;
        }
        falls_to_shrink(self.peak.load(Relaxed), out, floor)
    }

    /// Under the class lock: start shrinking if [`due`](Self::due) (the decision and its
    /// record in one call). Returns whether the class started shrinking now: the caller
    /// then stops its churn and gives its spares back ([`SlabSpares::start_shrinking`]).
    #[inline]
    pub fn start_if_due(&self, out: u64, floor: u64) -> bool {
        if !self.due(out, floor) {
            return false;
        }
        self.shrinking.store(true, Relaxed);
        true
    }

    /// Under the class lock: the class takes a new slab with `out` blocks out. It grows
    /// again, so a phase of frees is over: it stops shrinking, and its peak restarts from
    /// `out`.
    #[inline]
    pub fn on_new_slab(&self, out: u64) {
        if self.shrinking.load(Relaxed) {
            self.shrinking.store(false, Relaxed);
            self.peak.store(out, Relaxed);
        }
    }
}

/// What became of an empty slab ([`SlabSpares::empty_slab`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptySlab {
    /// Kept committed as one of the class's spares.
    Spare,
    /// Its pages were decommitted.
    Decommitted,
    /// Its pages were left as they are (resident where its blocks were written).
    Resident,
}

/// A class's spare slabs (empty slabs kept committed) and its churn, in its central
/// state: reached only under the class lock (`&mut self`). The caller marks which slabs
/// are the spares; this counts them and decides.
#[derive(Debug)]
pub struct SlabSpares {
    /// Spares held now.
    spares: u32,
    /// The class took a new slab after decommitting one: it churns and keeps spares.
    churn: bool,
    /// A slab was decommitted since the class last took a new slab.
    decommitted: bool,
}

impl Default for SlabSpares {
    fn default() -> Self {
        Self::new()
    }
}

impl SlabSpares {
    /// No spare, no churn.
    pub const fn new() -> Self {
        SlabSpares {
            spares: 0,
            churn: false,
            decommitted: false,
        }
    }

    /// Spares held now.
    #[inline]
    pub fn count(&self) -> u32 {
        self.spares
    }

    /// Whether the class churns (keeps spares).
    #[inline]
    pub fn churns(&self) -> bool {
        self.churn
    }

    /// The class takes a new slab, one of its spares when `took_spare`. A class that
    /// decommitted a slab since its last new slab churns from now on.
    #[inline]
    pub fn on_new_slab(&mut self, took_spare: bool) {
        if self.decommitted {
            self.decommitted = false;
            self.churn = true;
        }
        if took_spare {
            debug_assert!(self.spares > 0, "a spare slab not counted");
            self.spares = self.spares.saturating_sub(1);
        }
    }

    /// Whether an empty slab (of `2^slab_shift` bytes) stays committed as a spare: the
    /// class churns, is not `shrinking`, and holds fewer than [`spares_for`] spares.
    /// When it does, it is counted now (the decision and its record in one call).
    #[inline]
    pub fn keep_as_spare(&mut self, slab_shift: u32, shrinking: bool) -> bool {
        self.keep_as_spare_max(spares_for(slab_shift), shrinking)
    }

    /// [`keep_as_spare`](Self::keep_as_spare) with at most `max` spares (a pool of slabs
    /// that several classes share keeps one per class: `max` is their number).
    #[inline]
    pub fn keep_as_spare_max(&mut self, max: u32, shrinking: bool) -> bool {
        let keep = self.churn && !shrinking && self.spares < max;
        if keep {
            self.spares += 1;
        }
        keep
    }

    /// The decision point for an empty slab inside a live superslab: kept committed as a
    /// spare ([`keep_as_spare`](Self::keep_as_spare): [`EmptySlab::Spare`], the caller
    /// marks it a spare), or its touched pages (`touched` bytes from `start`)
    /// decommitted in lean mode ([`EmptySlab::Decommitted`]), or else left as they are
    /// ([`EmptySlab::Resident`]: decommit off, or the call failed). The pages of a spare
    /// or a resident slab go back once it stays idle past the decay interval
    /// ([`idle_slab_decay`](crate::idle_slab_decay)).
    ///
    /// # Safety
    /// As [`slab_maybe_decommit`]: `start..start+touched` (rounded up to a page) lies in
    /// a live mapping of the caller and holds no live data; `start` is page-aligned.
    #[inline]
    pub unsafe fn empty_slab(
        &mut self,
        start: *mut u8,
        touched: usize,
        slab_shift: u32,
        shrinking: bool,
    ) -> EmptySlab {
        // SAFETY: forwarded caller guarantee.
        unsafe { self.empty_slab_max(start, touched, spares_for(slab_shift), shrinking) }
    }

    /// [`empty_slab`](Self::empty_slab) with at most `max` spares (see
    /// [`keep_as_spare_max`](Self::keep_as_spare_max)).
    ///
    /// # Safety
    /// As [`empty_slab`](Self::empty_slab).
    #[inline]
    pub unsafe fn empty_slab_max(
        &mut self,
        start: *mut u8,
        touched: usize,
        max: u32,
        shrinking: bool,
    ) -> EmptySlab {
        if self.keep_as_spare_max(max, shrinking) {
            return EmptySlab::Spare;
        }
        // SAFETY: forwarded caller guarantee.
        if unsafe { slab_maybe_decommit(start, touched) } {
            self.decommitted = true;
            return EmptySlab::Decommitted;
        }
        EmptySlab::Resident
    }

    /// The class starts shrinking: it stops churning (the caller then gives every spare
    /// back with [`give_back_spare`](Self::give_back_spare)).
    #[inline]
    pub fn start_shrinking(&mut self) {
        self.churn = false;
    }

    /// Give one spare back: its pages (`len` bytes from `start`) are decommitted in lean
    /// mode, and it is a spare no more.
    ///
    /// # Safety
    /// As [`empty_slab`](Self::empty_slab), and the slab is one of the class's spares.
    #[inline]
    pub unsafe fn give_back_spare(&mut self, start: *mut u8, len: usize) {
        debug_assert!(self.spares > 0, "a spare given back that was not counted");
        // SAFETY: forwarded caller guarantee.
        unsafe { slab_maybe_decommit(start, len) };
        self.spares = self.spares.saturating_sub(1);
    }

    /// `n` spares leave with their superslab (it is wholly free and goes to the release
    /// policy as one region).
    #[inline]
    pub fn forget(&mut self, n: u32) {
        debug_assert!(self.spares >= n, "spares miscounted");
        self.spares = self.spares.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_only_for_slabs_up_to_256k() {
        assert_eq!(spares_for(16), 1);
        assert_eq!(spares_for(18), 1);
        assert_eq!(spares_for(19), 0);
        assert_eq!(spares_for(21), 0);
    }

    #[test]
    fn transfer_cache_and_mid_bounds_are_smaller_in_lean_mode() {
        assert_eq!(xfer_max_bytes_for(false), 64 * 1024);
        assert_eq!(xfer_max_bytes_for(true), 16 * 1024);
        assert_eq!(
            mid_bin_bound(false),
            BinBound {
                bytes: 256 * 1024,
                max: 64
            }
        );
        assert_eq!(
            mid_bin_bound(true),
            BinBound {
                bytes: 64 * 1024,
                max: 32
            }
        );
    }

    #[test]
    fn shrink_floor_is_four_slabs_of_blocks() {
        assert_eq!(shrink_floor(16, 64), 4 * 1024);
        assert_eq!(shrink_floor(21, 256 * 1024), 32);
        assert_eq!(
            shrink_floor(16, 0),
            u64::MAX,
            "no block size: never shrinks"
        );
    }

    #[test]
    fn peak_follows_up_at_once_and_decays_by_a_32nd() {
        assert_eq!(decayed_peak(0, 10), 10);
        assert_eq!(decayed_peak(320, 0), 310);
        assert_eq!(decayed_peak(320, 315), 315);
        // Small peaks decay to nothing only through `out`.
        assert_eq!(decayed_peak(31, 0), 31);
        let mut p = 3200;
        for _ in 0..200 {
            p = decayed_peak(p, 100);
        }
        assert_eq!(p, 100, "a steady class's peak settles at its blocks out");
    }

    #[test]
    fn shrinks_under_an_eighth_of_a_peak_above_the_floor() {
        assert!(falls_to_shrink(800, 99, 800));
        assert!(!falls_to_shrink(800, 100, 800), "exactly an eighth");
        assert!(!falls_to_shrink(799, 0, 800), "a peak under the floor");
        assert!(!falls_to_shrink(800, u64::MAX, 800), "no overflow");
    }

    #[test]
    fn shrink_state_ends_with_a_new_slab() {
        let s = ShrinkState::new();
        s.note_refill(1000);
        assert_eq!(s.peak(), 1000);
        // `due` also asks the gates (lean mode), which the tests do not set: check the
        // rule it applies and the state changes directly.
        assert_eq!(
            s.due(10, 100),
            lean_mode() && falls_to_shrink(1000, 10, 100)
        );
        s.shrinking.store(true, Relaxed);
        assert!(s.is_shrinking());
        assert!(!s.due(0, 0), "already shrinking");
        assert!(!s.start_if_due(0, 0));
        s.on_new_slab(7);
        assert!(!s.is_shrinking());
        assert_eq!(s.peak(), 7, "the peak restarts from the blocks out");
        s.on_new_slab(50);
        assert_eq!(s.peak(), 7, "a class that was not shrinking keeps its peak");
    }

    #[test]
    fn only_a_churning_class_keeps_spares() {
        let mut sp = SlabSpares::new();
        assert!(!sp.keep_as_spare(16, false), "a class that only grows");
        // It decommitted a slab, then took a new one: it churns.
        sp.decommitted = true;
        sp.on_new_slab(false);
        assert!(sp.churns());
        assert!(sp.keep_as_spare(16, false));
        assert_eq!(sp.count(), 1);
        assert!(!sp.keep_as_spare(16, false), "one spare of a 64 KiB slab");
        assert!(!sp.keep_as_spare(20, false), "none of a 1 MiB slab");
        sp.on_new_slab(true);
        assert_eq!(sp.count(), 0, "the spare was taken");
        assert!(!sp.keep_as_spare(16, true), "a shrinking class keeps none");
        assert!(sp.keep_as_spare(16, false));
        sp.start_shrinking();
        assert!(!sp.churns());
        sp.forget(1);
        assert_eq!(sp.count(), 0);
        assert!(!sp.keep_as_spare(16, false), "no churn after shrinking");
    }
}
