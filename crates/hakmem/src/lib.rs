//! # hakmem: a fast, lean, general-purpose memory allocator
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: hakmem::HakMem = hakmem::HakMem;
//! # fn main() { let v = vec![1u8; 100]; assert_eq!(v.len(), 100); }
//! ```
//!
//! The facade owns the routing of a request to the box that serves it, the presets, the
//! process and thread set-up, and the public stats API:
//!
//! | request | box |
//! |---|---|
//! | up to 1 KiB, alignment up to 16 | `hakmem-tiny-fast` (thread cache, the fast path) |
//! | up to 256 KiB, alignment up to 64 KiB | `hakmem-tiny-fast` (the one thread cache, with `hakmem-mid`'s bounds for the mid classes, over `hakmem-ss-allocation` slabs) |
//! | anything larger | `hakmem-large` (dedicated mappings, cached by `hakmem-release-policy`) |
//!
//! **Entry points**: [`HakMem`](struct@HakMem) (`GlobalAlloc`), [`stats`] (and
//! [`class_stats`], [`heap_info`], [`print_stats`]), [`build_info`], [`trim`] (and [`trim_report`]), [`thread_flush`],
//! [`usable_size`].
//!
//! **Presets** (Cargo features; `preset-balanced` is the default; features are additive:
//! when several are enabled, LEAN > SAFE > BALANCED; [`build_info`] says which): see
//! `hakmem-env-gates` and `docs/env.md`. **Features**: `hot-prewarm` compiles the
//! prewarm box in (default).
//!
//! **Invariants**
//! - Routing is a pure function of `(size, align)` ([`route`]), so `dealloc` and
//!   `realloc` find a block's box from the `Layout` alone, without touching memory.
//! - The tiny fast path is inlined here: a table lookup, a TLS bin pop or push, and a
//!   bounds test; everything else is out of line.
//! - No path allocates through the global allocator or panics; a request that cannot be
//!   met returns null; a failed `realloc` leaves the old block intact.
//! - A thread's first call initializes it (and the process, once): fork handlers, gates,
//!   prewarm. No lock is held across `fork`.
//! - Every tiny/mid slow-path allocation runs the release policy's decay check
//!   (`hakmem_release_policy::tick`) and, when `HAKMEM_BG_PURGE_MS` asks for it, starts
//!   the background purge thread (once per process; again in a forked child), whose hook
//!   here asks every thread cache to flush and drains the transfer caches.
#![deny(missing_docs)]

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use core::sync::atomic::{AtomicU8, Ordering};
use hakmem_ss_allocation::class::{self, NTINY, TINY_MAX};

pub mod raw;

#[cfg(any(feature = "allocator-api2", feature = "allocator-api2-04"))]
mod api2;

pub use hakmem_env_gates::{Config, Decommit, PRESET, Preset};

/// The hakmem global allocator, with the [`Config`] it hands to the gates on its first
/// allocation.
///
/// `hakmem::HakMem` is also a constant of this type with no config (the compiled-in
/// preset, the environment read as usual), so the plain spelling works:
///
/// ```
/// use std::alloc::{GlobalAlloc, Layout};
/// let l = Layout::from_size_align(100, 8).unwrap();
/// // SAFETY: a non-zero layout; the block is freed with the same layout.
/// unsafe {
///     let p = hakmem::HakMem.alloc(l);
///     assert!(!p.is_null());
///     hakmem::HakMem.dealloc(p, l);
/// }
/// ```
///
/// Configured from code (resolved at the first allocation, without allocating;
/// precedence: environment > config > preset > default, unless the config calls
/// [`Config::ignore_env`]):
///
/// ```
/// use hakmem::{Config, HakMem};
///
/// #[global_allocator]
/// static GLOBAL: HakMem = HakMem::with_config(Config::BALANCED.large_cache_mib(64));
/// # fn main() { let v = vec![1u8; 100]; assert_eq!(v.len(), 100); }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HakMem {
    cfg: Config,
}

/// `hakmem::HakMem` as a value: the allocator with no config ([`HakMem::new`]), so that
/// `static GLOBAL: hakmem::HakMem = hakmem::HakMem;` keeps working.
#[allow(non_upper_case_globals)]
pub const HakMem: HakMem = HakMem::new();

impl HakMem {
    /// The allocator with no config: the compiled-in preset, the environment read as usual.
    pub const fn new() -> Self {
        HakMem {
            cfg: Config::DEFAULT,
        }
    }

    /// The allocator with `cfg`, handed to the gates on its first allocation (see
    /// [`hakmem_env_gates::set_config`]). Only the first allocator to allocate hands its
    /// config over: one process has one set of gates.
    pub const fn with_config(cfg: Config) -> Self {
        HakMem { cfg }
    }

    /// This allocator's config.
    pub const fn config(&self) -> &Config {
        &self.cfg
    }
}

/// What was compiled in: [`build_info`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    /// The facade's version (`CARGO_PKG_VERSION`).
    pub version: &'static str,
    /// The preset compiled in ([`PRESET`]); a [`Config`] may choose another at run time
    /// (the gates' snapshot, `hakmem_env_gates::resolved().preset()`, says which).
    pub preset: Preset,
    /// The preset features enabled (SAFE, BALANCED, LEAN): several may be, in one
    /// dependency graph; the leaner explicit one wins (LEAN > SAFE > BALANCED).
    pub preset_features: [bool; 3],
    /// Feature `double-free-check`.
    pub double_free_check: bool,
    /// Feature `hardened`.
    pub hardened: bool,
    /// Feature `zero-on-free`.
    pub zero_on_free: bool,
    /// Feature `passdown-ssot`.
    pub passdown_ssot: bool,
    /// Feature `hot-prewarm` (the prewarm box compiled in).
    pub hot_prewarm: bool,
    /// Feature `allocator-api2` (allocator-api2 0.2).
    pub allocator_api2: bool,
    /// Feature `allocator-api2-04` (allocator-api2 0.4).
    pub allocator_api2_04: bool,
    /// Built with debug assertions.
    pub debug_assertions: bool,
}

impl BuildInfo {
    /// The compiled-in features, by their Cargo names, in a fixed order.
    pub fn features(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.double_free_check, "double-free-check"),
            (self.hardened, "hardened"),
            (self.zero_on_free, "zero-on-free"),
            (self.passdown_ssot, "passdown-ssot"),
            (self.hot_prewarm, "hot-prewarm"),
            (self.allocator_api2, "allocator-api2"),
            (self.allocator_api2_04, "allocator-api2-04"),
            (self.debug_assertions, "debug-assertions"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
    }
}

/// `hakmem 0.1.0, preset BALANCED (features preset-balanced); double-free-check hot-prewarm`.
/// Writes without allocating.
impl core::fmt::Display for BuildInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "hakmem {}, preset {} (features",
            self.version,
            self.preset.name()
        )?;
        let names = ["preset-safe", "preset-balanced", "preset-lean"];
        let mut any = false;
        for (on, name) in self.preset_features.iter().zip(names) {
            if *on {
                write!(f, " {name}")?;
                any = true;
            }
        }
        if !any {
            f.write_str(" none")?;
        }
        f.write_str(");")?;
        let mut n = 0;
        for name in self.features() {
            write!(f, " {name}")?;
            n += 1;
        }
        if n == 0 {
            f.write_str(" no other feature")?;
        }
        Ok(())
    }
}

/// What this build of hakmem is: version, preset, compiled features. `HAKMEM_VERBOSE=1`
/// prints it at start-up.
///
/// ```
/// let b = hakmem::build_info();
/// assert_eq!(b.preset, hakmem::PRESET);
/// println!("{b}");
/// ```
pub const fn build_info() -> BuildInfo {
    BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        preset: PRESET,
        preset_features: hakmem_env_gates::PRESET_FEATURES,
        double_free_check: cfg!(feature = "double-free-check"),
        hardened: hakmem_ss_allocation::HARDENED,
        zero_on_free: cfg!(feature = "zero-on-free"),
        passdown_ssot: PASSDOWN_SSOT,
        hot_prewarm: cfg!(feature = "hot-prewarm"),
        allocator_api2: cfg!(feature = "allocator-api2"),
        allocator_api2_04: cfg!(feature = "allocator-api2-04"),
        debug_assertions: cfg!(debug_assertions),
    }
}

/// Which box serves a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A tiny class (`< NTINY`).
    Tiny(usize),
    /// A mid class (`NTINY..NCLASS`).
    Mid(usize),
    /// A dedicated mapping.
    Large,
}

/// The box and class of a request: a pure function of size and alignment.
#[inline(always)]
pub fn route(size: usize, align: usize) -> Route {
    if size <= TINY_MAX && align <= 16 {
        return Route::Tiny(class::tiny_class(size));
    }
    match class::class_for(size, align) {
        Some(c) if c < NTINY => Route::Tiny(c),
        Some(c) => Route::Mid(c),
        None => Route::Large,
    }
}

// ---------------------------------------------------------------------------------------
// Process and thread set-up.

static PROCESS: AtomicU8 = AtomicU8::new(0);

extern "C" fn fork_prepare() {
    // SAFETY: the prepare handler (installed with `pthread_atfork`, so the forking
    // thread is in `fork`, inside no box), paired with `fork_release` / `fork_child`.
    unsafe {
        hakmem_tiny_fast::fork_prepare();
        hakmem_ss_allocation::fork_prepare();
    }
}

extern "C" fn fork_release() {
    // SAFETY: the parent's handler; this thread took the locks in `fork_prepare`.
    unsafe {
        hakmem_ss_allocation::fork_release();
        hakmem_tiny_fast::fork_release();
    }
}

extern "C" fn fork_child() {
    // SAFETY: the child's handler, run once by its only thread, which took the locks in
    // `fork_prepare`.
    unsafe {
        hakmem_ss_allocation::fork_release();
        hakmem_tiny_fast::fork_child();
    }
    // The background purge thread (if any) does not exist in the child: it starts its
    // own at its next slow-path allocation.
    hakmem_release_policy::background::fork_child();
}

/// The background purge's hook (`HAKMEM_BG_PURGE_MS`), run on its thread after each
/// decay of the region caches: every thread gives its cache back at its next slow path,
/// and the transfer caches go back to their slabs now (what empties goes to the region
/// caches, to decay in turn); empty slabs idle past the interval give their pages back.
/// Allocates nothing.
fn background_hook() {
    hakmem_tiny_fast::request_flush_all();
    hakmem_ss_allocation::drain_transfer_caches();
    hakmem_ss_allocation::decay_idle_slabs(false);
}

extern "C" fn print_os_stats_at_exit() {
    hakmem_os_stats::stats::print();
}

#[cold]
fn process_init() {
    if PROCESS
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Another thread is setting the process up: wait until its fork handlers are
        // registered (a fork before that could copy a held lock into the child), unless
        // this is that very thread re-entering (pthread_atfork and atexit may allocate).
        if !IN_PROCESS_INIT.with(|f| f.get()) {
            while PROCESS.load(Ordering::Acquire) != 2 {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
        return;
    }
    IN_PROCESS_INIT.with(|f| f.set(true));
    let g = hakmem_env_gates::gates();
    hakmem_release_policy::background::set_hook(background_hook);
    // SAFETY: registering plain `extern "C"` functions with no captured state.
    unsafe {
        libc::pthread_atfork(Some(fork_prepare), Some(fork_release), Some(fork_child));
        if g.ss_os_stats {
            libc::atexit(print_os_stats_at_exit);
        }
    }
    if g.verbose {
        print_verbose();
    }
    PROCESS.store(2, Ordering::Release);
    IN_PROCESS_INIT.with(|f| f.set(false));
}

thread_local! {
    /// True while this thread runs `process_init` (re-entrant calls must not wait).
    static IN_PROCESS_INIT: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

fn print_verbose() {
    let boxes = if cfg!(feature = "hot-prewarm") {
        "env-gates os-stats release-policy ss-allocation tiny-fast mid large hot-prewarm"
    } else {
        "env-gates os-stats release-policy ss-allocation tiny-fast mid large"
    };
    hakmem_os_stats::writer::eprint_line(format_args!("hakmem: build: {}", build_info()));
    hakmem_env_gates::print_verbose(boxes);
    if !PASSDOWN_SSOT {
        hakmem_os_stats::writer::eprint_line(format_args!(
            "hakmem: HAKMEM_ALLOC_PASSDOWN_SSOT is read by nothing in this build (the facade \
             feature passdown-ssot is off): the class is computed once on the fast path and \
             re-derived only on a cache miss (docs/results/104-ab-passdown-ssot.md)"
        ));
    }
}

/// Whether the seed's pass-down variant of the tiny miss path is compiled in (feature
/// `passdown-ssot`; its gate `HAKMEM_ALLOC_PASSDOWN_SSOT` chooses at run time).
const PASSDOWN_SSOT: bool = cfg!(feature = "passdown-ssot");

/// The tiny miss path of the pass-down variant (feature `passdown-ssot`): with
/// `HAKMEM_ALLOC_PASSDOWN_SSOT=1` the class the fast path computed is passed down to the
/// refill (the seed's Phase 60 "single source of truth"); with `0`, the class is
/// re-derived through [`route`] as in the default build. Read on a miss only (a refill
/// follows), never on the fast path.
#[cold]
#[inline(never)]
fn alloc_slow_tiny_passdown(size: usize, cls: usize, cfg: &Config) -> *mut u8 {
    // Set up first: the gate below is read after the config was handed over.
    thread_setup_with(cfg);
    if hakmem_env_gates::gates().alloc_passdown_ssot {
        hakmem_tiny_fast::alloc_slow_class(cls)
    } else {
        alloc_slow_with(size, raw::MALLOC_ALIGN, false, cfg)
    }
}

/// The calling thread's first slow path: set up its cache (and the process, once).
#[inline]
fn thread_setup() {
    thread_setup_with(&Config::DEFAULT);
}

/// [`thread_setup`] by an allocator with a config: on the process's first slow path,
/// `cfg` is handed to the gates before they are resolved.
#[inline]
fn thread_setup_with(cfg: &Config) {
    if hakmem_tiny_fast::thread_state() != hakmem_tiny_fast::State::Uninit {
        return;
    }
    thread_setup_first(cfg);
}

#[cold]
#[inline(never)]
fn thread_setup_first(cfg: &Config) {
    if PROCESS.load(Ordering::Acquire) != 2 {
        if !cfg.is_default() {
            hakmem_env_gates::set_config(cfg);
        }
        process_init();
    }
    hakmem_tiny_fast::thread_init();
    #[cfg(feature = "hot-prewarm")]
    if hakmem_hot_prewarm::enabled() {
        hakmem_hot_prewarm::prewarm_thread(hakmem_env_gates::gates().prewarm_depth);
    }
}

// ---------------------------------------------------------------------------------------
// Slow paths.

/// [`alloc_slow_with`] without a config (the `raw` API and the C ABI).
#[inline]
fn alloc_slow(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    alloc_slow_with(size, align, zeroed, &Config::DEFAULT)
}

/// An allocation's slow path; `cfg` is the allocator's config, handed to the gates if
/// this is the process's first slow path.
#[cold]
#[inline(never)]
fn alloc_slow_with(size: usize, align: usize, zeroed: bool, cfg: &Config) -> *mut u8 {
    // A mid block from the thread's bin first: no set-up check, no decay tick, as a tiny
    // hit (a thread's first call misses: its bins cache nothing yet).
    if !zeroed && let Route::Mid(c) = route(size, align) {
        let p = hakmem_tiny_fast::try_alloc_class(c);
        if !p.is_null() {
            return p;
        }
    }
    thread_setup_with(cfg);
    let p = match route(size, align) {
        Route::Tiny(c) => hakmem_tiny_fast::alloc_slow_class(c),
        Route::Mid(c) => hakmem_tiny_fast::cache_alloc(c),
        // (`large_alloc` runs the release policy's decay check itself.)
        Route::Large => hakmem_large::large_alloc(size, align, zeroed),
    };
    if !matches!(route(size, align), Route::Large) {
        if zeroed && !p.is_null() {
            // SAFETY: the block holds at least `size` bytes.
            unsafe { ptr::write_bytes(p, 0, size) };
        }
        // The release policy's decay check (one relaxed load per cache when nothing is
        // cached, else a coarse clock read; a purge only when one is due), so that a
        // program that keeps allocating small blocks still gives back what decayed.
        hakmem_release_policy::tick();
    }
    // The decay pass over empty slabs and unused transfer caches (two relaxed loads when
    // there is nothing to give back; a pass per quarter interval at most): so that what
    // a finished phase left, a thread pool's blocks and slabs, goes back whatever this
    // program allocates next (results/215).
    hakmem_ss_allocation::decay_idle_slabs(false);
    // The opt-in background purge starts here, at the end of a slow path (no hakmem
    // lock held, the process set up): one relaxed load once it runs or when it is off.
    if PROCESS.load(Ordering::Relaxed) == 2 {
        hakmem_release_policy::background::ensure_started();
    }
    p
}

/// # Safety
/// `p` is a live block of layout `(size, align)` from this allocator.
#[cold]
#[inline(never)]
unsafe fn dealloc_slow(p: *mut u8, size: usize, align: usize) {
    // A mid block into the thread's bin first (as `alloc_slow_with`).
    if let Route::Mid(c) = route(size, align)
        // SAFETY: forwarded caller guarantee: `p` is a live block of its class.
        && unsafe { hakmem_tiny_fast::try_free_class(p, c) }
    {
        return;
    }
    thread_setup();
    // SAFETY: forwarded caller guarantee.
    unsafe {
        match route(size, align) {
            Route::Tiny(c) => hakmem_tiny_fast::free_slow_class(p, c),
            Route::Mid(c) => hakmem_tiny_fast::cache_free(p, c),
            Route::Large => hakmem_large::large_free(p),
        }
    }
}

// SAFETY: every block handed out is exclusively the caller's until freed (thread caches
// and central lists hold only free blocks), aligned and sized per `route`; null is
// returned on failure.
unsafe impl GlobalAlloc for HakMem {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        if size <= TINY_MAX && align <= 16 {
            if PASSDOWN_SSOT {
                let cls = class::tiny_class(size);
                let p = hakmem_tiny_fast::try_alloc_class(cls);
                if !p.is_null() {
                    return p;
                }
                return alloc_slow_tiny_passdown(size, cls, &self.cfg);
            }
            let p = hakmem_tiny_fast::try_alloc(size);
            if !p.is_null() {
                return p;
            }
        }
        alloc_slow_with(size, align, false, &self.cfg)
    }

    #[inline(always)]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: the caller guarantees `p` is a live block of this layout.
        unsafe {
            if size <= TINY_MAX && align <= 16 && hakmem_tiny_fast::try_free(p, size) {
                return;
            }
            dealloc_slow(p, size, align)
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        alloc_slow_with(layout.size(), layout.align(), true, &self.cfg)
    }

    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old, align) = (layout.size(), layout.align());
        let from = route(old, align);
        let to = route(new_size, align);
        if from == to {
            if from != Route::Large {
                return p;
            }
            // SAFETY: `p` is a live large block (the caller's guarantee).
            return unsafe { hakmem_large::large_realloc(p, new_size) };
        }
        let q = alloc_slow_with(new_size, align, false, &self.cfg);
        if !q.is_null() {
            // SAFETY: both blocks are live and distinct; the copy fits both.
            unsafe {
                ptr::copy_nonoverlapping(p, q, old.min(new_size));
                self.dealloc(p, layout);
            }
        }
        q
    }
}

/// Bytes usable in a block allocated with `layout` (at least `layout.size()`).
///
/// # Safety
/// `p` is a live block allocated by [`HakMem`](struct@HakMem) with `layout`.
pub unsafe fn usable_size(p: *mut u8, layout: Layout) -> usize {
    match route(layout.size(), layout.align()) {
        Route::Tiny(c) | Route::Mid(c) => class::block_size(c),
        // SAFETY: the caller guarantees a live large block.
        Route::Large => unsafe { hakmem_large::usable_size(p) },
    }
}

/// A snapshot of the allocator's counters.
///
/// Byte figures are consistent enough for monitoring, not exact at an instant: each is
/// read without stopping other threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes in blocks the program holds now (slab blocks counted at their block size,
    /// large blocks at the size asked for). Compare `tikv_jemalloc_ctl::stats::allocated`.
    pub allocated_bytes: u64,
    /// Bytes of free blocks in threads' caches.
    pub thread_cached_bytes: u64,
    /// Bytes of free blocks in the slabs' free lists (central caches).
    pub central_free_bytes: u64,
    /// Bytes asked for by live large blocks (included in `allocated_bytes`).
    pub large_live_bytes: u64,
    /// Resident memory of the whole process (`/proc/self/statm`), the figure the kernel
    /// charges and monitors show. (jemalloc's `stats::resident` and mimalloc's
    /// `mi_process_info` count only the allocator's own pages.)
    pub resident_bytes: u64,
    /// mmap calls.
    pub mmap: u64,
    /// munmap calls.
    pub munmap: u64,
    /// madvise calls (the seed's `madvise_calls`).
    pub madvise_calls: u64,
    /// mprotect calls.
    pub mprotect: u64,
    /// mremap calls.
    pub mremap: u64,
    /// Bytes of address space mapped now.
    pub mapped_bytes: u64,
    /// Decommits by the release policy (lean mode only; 0 when it is off).
    pub lean_decommit: u64,
    /// Retirements (unmaps) by the release policy in lean mode (0 when it is off).
    pub lean_retire: u64,
    /// Retirements (unmaps) by the release policy, in any mode.
    pub retired: u64,
    /// Superslabs live now.
    pub superslabs_live: u64,
    /// Empty superslabs cached now.
    pub superslabs_cached: u64,
    /// Bytes of freed large mappings cached now.
    pub large_cached_bytes: u64,
    /// The process's peak resident memory (`VmHWM` of `/proc/self/status`: the most the
    /// kernel ever counted resident for it).
    pub peak_resident_bytes: u64,
    /// The most bytes asked for by live large blocks at once so far.
    pub peak_large_live_bytes: u64,
    /// The most superslabs live at once so far (each [`SUPERSLAB_BYTES`] of address
    /// space, resident only where touched).
    pub peak_superslabs_live: u64,
    /// An upper bound of the peak of `allocated_bytes`: the peak of the slab memory
    /// (`peak_superslabs_live` superslabs) plus `peak_large_live_bytes`. (An exact peak
    /// would cost an atomic update on every thread-cache refill; this costs one per new
    /// superslab or large block.)
    pub peak_allocated_bytes_bound: u64,
    /// The allocator's own resident memory beside the blocks (jemalloc's
    /// `stats.metadata`), an upper bound: the header page of each live superslab and the
    /// header page of each live large block. (The address registry's few touched pages
    /// and the thread caches' TLS are left out.)
    pub metadata_bytes: u64,
}

/// The address space of one superslab (4 MiB).
pub const SUPERSLAB_BYTES: u64 = hakmem_ss_allocation::SS_SIZE as u64;

/// One slab class's figures now: [`class_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// The class index (`0..`[`NCLASS`]).
    pub class: usize,
    /// Its block size in bytes.
    pub block_size: usize,
    /// Blocks the program holds now.
    pub in_use_blocks: u64,
    /// Free blocks in threads' caches.
    pub thread_cached_blocks: u64,
    /// Free blocks held centrally (slab free lists and the transfer cache).
    pub central_free_blocks: u64,
    /// Slabs in use (carved from a superslab and not empty).
    pub slabs: u64,
}

/// The number of slab classes.
pub const NCLASS: usize = class::NCLASS;

/// Every slab class's figures now, written into `out` (`out[c]` for class `c`; classes
/// past `out.len()` are left out). Never allocates.
///
/// ```
/// let mut classes = [hakmem::ClassStats::default(); hakmem::NCLASS];
/// hakmem::class_stats(&mut classes);
/// assert!(classes.iter().all(|c| c.block_size > 0));
/// ```
pub fn class_stats(out: &mut [ClassStats]) {
    let mut cached = [0u64; class::NCLASS];
    hakmem_tiny_fast::cached_by_class(&mut cached);
    for (c, (o, cached)) in out.iter_mut().zip(cached).enumerate() {
        let (handed_out, free) = hakmem_ss_allocation::class_counts(c);
        *o = ClassStats {
            class: c,
            block_size: class::block_size(c),
            in_use_blocks: handed_out.saturating_sub(cached),
            thread_cached_blocks: cached,
            central_free_blocks: free,
            slabs: hakmem_ss_allocation::class_slabs(c),
        };
    }
}

/// The heap by kind of memory now: [`heap_info`]. What the C ABI's `mallinfo2` reports
/// (`docs/c-abi.md`), in its own words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapInfo {
    /// Bytes of the slab blocks the program holds (each at its block size).
    pub slab_in_use_bytes: u64,
    /// Free slab blocks held centrally (slab free lists and the transfer caches).
    pub central_free_blocks: u64,
    /// Their bytes.
    pub central_free_bytes: u64,
    /// Free slab blocks in threads' caches.
    pub thread_cached_blocks: u64,
    /// Their bytes.
    pub thread_cached_bytes: u64,
    /// Live large blocks (each its own mapping).
    pub large_blocks: u64,
    /// Bytes asked for by live large blocks.
    pub large_bytes: u64,
    /// Bytes of empty memory kept for reuse that [`trim`] would give back: cached empty
    /// superslabs and freed large mappings, counted as the release policy counts them
    /// (whole, or nothing once decommitted).
    pub cached_bytes: u64,
}

/// The heap by kind of memory now ([`HeapInfo`]): the per-class counters summed, the
/// large blocks and the region caches. No `/proc` read (unlike [`stats`]); never
/// allocates. The counters are read one after the other, without a lock: under
/// concurrent calls the sums are approximate, never torn.
pub fn heap_info() -> HeapInfo {
    let mut classes = [ClassStats::default(); class::NCLASS];
    class_stats(&mut classes);
    let mut h = HeapInfo::default();
    for c in &classes {
        let bs = c.block_size as u64;
        h.slab_in_use_bytes += c.in_use_blocks * bs;
        h.central_free_blocks += c.central_free_blocks;
        h.central_free_bytes += c.central_free_blocks * bs;
        h.thread_cached_blocks += c.thread_cached_blocks;
        h.thread_cached_bytes += c.thread_cached_blocks * bs;
    }
    let (blocks, bytes) = hakmem_large::live();
    h.large_blocks = blocks as u64;
    h.large_bytes = bytes as u64;
    h.cached_bytes = (hakmem_release_policy::SUPERSLABS.usage().1
        + hakmem_release_policy::LARGE.usage().1) as u64;
    h
}

/// `allocated 1.2 MiB, resident 5.0 MiB (peak 7.1 MiB), ...`: every field, on a few
/// lines, written without allocating (so it may go through `hakmem_os_stats::writer`).
impl core::fmt::Display for Stats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mib = |b: u64| Mib(b);
        writeln!(
            f,
            "hakmem: allocated {}, thread-cached {}, central free {}, large live {}, large cached {}",
            mib(self.allocated_bytes),
            mib(self.thread_cached_bytes),
            mib(self.central_free_bytes),
            mib(self.large_live_bytes),
            mib(self.large_cached_bytes),
        )?;
        writeln!(
            f,
            "hakmem: resident {} (peak {}), mapped {}, metadata {}, superslabs {} live (peak {}), {} cached",
            mib(self.resident_bytes),
            mib(self.peak_resident_bytes),
            mib(self.mapped_bytes),
            mib(self.metadata_bytes),
            self.superslabs_live,
            self.peak_superslabs_live,
            self.superslabs_cached,
        )?;
        writeln!(
            f,
            "hakmem: peaks: large live {}, allocated at most {}",
            mib(self.peak_large_live_bytes),
            mib(self.peak_allocated_bytes_bound),
        )?;
        write!(
            f,
            "hakmem: syscalls: mmap {}, munmap {}, madvise {}, mprotect {}, mremap {}; \
             decommits {}, retires {} (lean {})",
            self.mmap,
            self.munmap,
            self.madvise_calls,
            self.mprotect,
            self.mremap,
            self.lean_decommit,
            self.retired,
            self.lean_retire,
        )
    }
}

/// Bytes as MiB with two decimals, without floating point or allocation.
struct Mib(u64);

impl core::fmt::Display for Mib {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let hundredths = self.0.saturating_mul(100) / (1 << 20);
        write!(f, "{}.{:02} MiB", hundredths / 100, hundredths % 100)
    }
}

/// Writes [`stats`] and the classes in use ([`class_stats`]) to stderr, one `write(2)`
/// per line from a stack buffer: usable anywhere, even where allocating is not (a signal
/// handler aside: it takes the thread-cache registry's lock).
pub fn print_stats() {
    use core::fmt::Write as _;
    let mut w = hakmem_os_stats::writer::LineWriter::<256>::new(libc::STDERR_FILENO);
    let _ = writeln!(w, "{}", stats());
    let mut classes = [ClassStats::default(); class::NCLASS];
    class_stats(&mut classes);
    let _ = writeln!(
        w,
        "hakmem: class block_size in_use thread_cached central_free slabs"
    );
    for c in classes
        .iter()
        .filter(|c| c.in_use_blocks + c.thread_cached_blocks + c.central_free_blocks + c.slabs > 0)
    {
        let _ = writeln!(
            w,
            "hakmem: {:>5} {:>10} {:>6} {:>13} {:>12} {:>5}",
            c.class,
            c.block_size,
            c.in_use_blocks,
            c.thread_cached_blocks,
            c.central_free_blocks,
            c.slabs
        );
    }
    w.finish();
}

impl Stats {
    /// Total syscalls the allocator made (mmap + munmap + madvise + mprotect + mremap).
    pub fn syscalls(&self) -> u64 {
        self.mmap + self.munmap + self.madvise_calls + self.mprotect + self.mremap
    }
}

/// The allocator's counters now. Never allocates; costs nothing on the fast path.
pub fn stats() -> Stats {
    let os = hakmem_os_stats::stats::snapshot();
    let (_, thread_cached) = hakmem_tiny_fast::cached();
    let mut out_bytes = 0u64;
    let mut free_bytes = 0u64;
    for c in 0..class::NCLASS {
        let (out, free) = hakmem_ss_allocation::class_counts(c);
        out_bytes += out * class::block_size(c) as u64;
        free_bytes += free * class::block_size(c) as u64;
    }
    let (large_blocks, large_live) = hakmem_large::live();
    let superslabs_live = hakmem_ss_allocation::superslabs_live() as u64;
    let peak_superslabs_live = hakmem_ss_allocation::superslabs_live_peak() as u64;
    let peak_large_live_bytes = hakmem_large::live_bytes_peak() as u64;
    let page = hakmem_os_stats::os::PAGE as u64;
    Stats {
        allocated_bytes: out_bytes.saturating_sub(thread_cached) + large_live as u64,
        thread_cached_bytes: thread_cached,
        central_free_bytes: free_bytes,
        large_live_bytes: large_live as u64,
        resident_bytes: process_resident_bytes(),
        mmap: os.mmap,
        munmap: os.munmap,
        madvise_calls: os.madvise_calls,
        mprotect: os.mprotect,
        mremap: os.mremap,
        mapped_bytes: os.mapped_bytes,
        lean_decommit: os.lean_decommit,
        lean_retire: os.lean_retire,
        retired: os.retired,
        superslabs_live,
        superslabs_cached: hakmem_release_policy::SUPERSLABS.usage().0 as u64,
        large_cached_bytes: hakmem_release_policy::LARGE.usage().1 as u64,
        peak_resident_bytes: process_status_kib(b"VmHWM:").saturating_mul(1024),
        peak_large_live_bytes,
        peak_superslabs_live,
        peak_allocated_bytes_bound: peak_superslabs_live
            .saturating_mul(SUPERSLAB_BYTES)
            .saturating_add(peak_large_live_bytes),
        metadata_bytes: (superslabs_live + large_blocks as u64).saturating_mul(page),
    }
}

/// The first `buf.len()` bytes of a `/proc` file, read with one `read` into the caller's
/// buffer (no allocation); empty if it cannot be read.
fn read_proc_file<'a>(path: &core::ffi::CStr, buf: &'a mut [u8]) -> &'a [u8] {
    // SAFETY: a NUL-terminated path; the descriptor is closed below; `read` writes at
    // most `buf.len()` bytes into the buffer.
    let n = unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return &[];
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    match usize::try_from(n) {
        Ok(n) => &buf[..n.min(buf.len())],
        Err(_) => &[],
    }
}

/// A `kB` field of `/proc/self/status` (e.g. `VmHWM:`), read without allocating; 0 if
/// unavailable.
fn process_status_kib(field: &[u8]) -> u64 {
    let mut buf = [0u8; 4096];
    read_proc_file(c"/proc/self/status", &mut buf)
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(field))
        .map_or(0, |rest| {
            rest.iter()
                .skip_while(|b| !b.is_ascii_digit())
                .take_while(|b| b.is_ascii_digit())
                .fold(0u64, |v, &d| {
                    v.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                })
        })
}

/// The process's resident memory from `/proc/self/statm`, read without allocating; 0 if
/// unavailable.
fn process_resident_bytes() -> u64 {
    let mut buf = [0u8; 128];
    // The second field is the resident page count.
    let mut fields = read_proc_file(c"/proc/self/statm", &mut buf).split(|&b| b == b' ');
    let pages = fields.nth(1).map_or(0, |f| {
        f.iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'))
    });
    pages * hakmem_os_stats::os::page_size() as u64
}

/// Give the calling thread's cached blocks back to the slabs (and run the release
/// policy's decay, a slow path: the region caches', and the empty slabs').
pub fn thread_flush() {
    hakmem_tiny_fast::thread_flush();
    hakmem_release_policy::tick();
    hakmem_ss_allocation::decay_idle_slabs(false);
}

/// Return memory to the OS now: the calling thread's caches and the transfer caches go
/// back to their slabs, then every cached empty superslab and large mapping is unmapped
/// and the pages of every empty slab inside a live superslab decommitted.
/// Every other thread is asked to give its cache back too, which it does at its next
/// slow path (a cache miss or overflow: `hakmem_tiny_fast::request_flush_all`); what
/// they give back then goes to the region caches, and from there back to the OS after
/// the decay interval (or at the next `trim`). Returns how many bytes of address space
/// this call unmapped, including superslabs that emptied during the flush
/// ([`trim_report`] also says how many empty slabs it decommitted).
pub fn trim() -> usize {
    trim_report().unmapped_bytes
}

/// What one [`trim_report`] gave back to the OS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Bytes of address space unmapped (what [`trim`] returns).
    pub unmapped_bytes: usize,
    /// Empty slabs inside live superslabs whose pages were decommitted (`MADV_DONTNEED`,
    /// or lean mode's advice): memory given back without unmapping (their resident
    /// bytes are not known: a slab's pages are resident only where it was written).
    pub decommitted_slabs: usize,
}

/// [`trim`], saying what it gave back: the C ABI's `malloc_trim` returns 1 when either
/// count is not zero, as glibc's does when it unmapped or advised pages away.
pub fn trim_report() -> Trimmed {
    let before = hakmem_os_stats::stats::snapshot().mapped_bytes;
    hakmem_tiny_fast::request_flush_all();
    thread_flush();
    hakmem_ss_allocation::drain_transfer_caches();
    hakmem_release_policy::trim();
    let decommitted_slabs = hakmem_ss_allocation::decay_idle_slabs(true);
    Trimmed {
        unmapped_bytes: before.saturating_sub(hakmem_os_stats::stats::snapshot().mapped_bytes)
            as usize,
        decommitted_slabs,
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing() {
        assert_eq!(route(0, 1), Route::Tiny(0));
        assert_eq!(route(1024, 16), Route::Tiny(NTINY - 1));
        assert_eq!(route(1025, 8), Route::Mid(NTINY));
        assert_eq!(route(64, 64), Route::Tiny(3));
        assert_eq!(
            route(100, 4096),
            Route::Mid(class::class_for(100, 4096).unwrap())
        );
        assert_eq!(route(256 * 1024, 8), Route::Mid(class::NCLASS - 1));
        assert_eq!(route(256 * 1024 + 1, 8), Route::Large);
        assert_eq!(route(8, 1 << 17), Route::Large);
    }
}
