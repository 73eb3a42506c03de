//! # hakmem-os-stats: the OS box
//!
//! **Owns** every system call hakmem makes to manage memory (`mmap`, `munmap`,
//! `madvise`, `mprotect`, `mremap`) and the counters of them, plus the release-policy
//! counters `lean_decommit` and `lean_retire`, the one lock the boxes above share
//! ([`lock::Locked`]: the lock owns its data, reached only through a guard), the sync
//! shim ([`sync`]: `core`'s atomics and cells, or loom's under `--cfg loom`, so the model
//! checker drives the shipped code), and the one printer every box uses ([`writer`]: a
//! stack buffer and `write(2)`, for warnings, reports, statistics and the fatal reports
//! of [`report`]).
//!
//! **Entry points**: [`os::map`], [`os::map_aligned`], [`os::map_sparse`], [`os::unmap`], [`os::decommit`],
//! [`os::protect`], [`os::remap_fixed`], [`os::grow_in_place`], [`os::page_size`], and
//! [`stats::snapshot`];
//! for printing, [`writer::StackWriter`], [`writer::LineWriter`], [`writer::print_line`],
//! [`writer::eprint_line`], [`report::fatal`].
//!
//! **Gates**: none read here. The facade reads `HAKMEM_SS_OS_STATS` and calls
//! [`stats::print`] at exit.
//!
//! **Features**: none. Counting is unconditional: it happens only on syscall paths, which
//! are orders of magnitude slower than a relaxed atomic increment.
//!
//! **Targets**: 64-bit Linux (glibc or musl). On any other target the build stops here
//! with a `compile_error!` naming the supported ones (every box depends on this one).
//! The OS page size is read at run time ([`os::page_size`]): 4 to 64 KiB are supported
//! ([`os::MAX_PAGE`]), and the first `mmap` on a kernel with larger pages is a fatal
//! report.
//!
//! **Invariants**
//! - No other hakmem crate calls `mmap`, `munmap`, `madvise`, `mprotect` or `mremap`.
//! - Every call is counted exactly once, successful or not.
//! - Memory that may hold a caller's data is mapped committed (no `MAP_NORESERVE`), so
//!   the kernel's overcommit policy answers for it as it does for glibc; only
//!   [`os::map_sparse`] (the allocator's sparse metadata) reserves without committing.
//! - Nothing here allocates through the global allocator or panics; nothing prints but
//!   through [`writer`] (a stack buffer, one `write(2)` per line).
//! - A test-only fault hook ([`fault::fail_maps_after`]) makes `map` fail, so callers'
//!   out-of-memory paths can be tested; it costs one relaxed load per `mmap`.
//!
//! ```
//! use hakmem_os_stats::{os, stats};
//! let before = stats::snapshot();
//! let p = os::map(1 << 20);
//! assert!(!p.is_null());
//! // SAFETY: `p` is a live mapping of 1 MiB returned by `os::map`.
//! unsafe {
//!     p.write(7);
//!     os::decommit(p, 1 << 20, os::Advice::DontNeed);
//!     os::unmap(p, 1 << 20);
//! }
//! let after = stats::snapshot();
//! assert!(after.mmap > before.mmap && after.munmap > before.munmap);
//! ```
#![deny(missing_docs)]
#![no_std]

// The one place a build for a target hakmem does not support stops (every box depends
// on this one, so this error comes first, before the Linux-only calls below fail).
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
compile_error!(
    "hakmem supports 64-bit Linux only (x86_64: tested; aarch64 and other 64-bit \
     architectures: compiles, untested; glibc or musl). To build a program for other \
     targets too, depend on hakmem only under `[target.'cfg(all(target_os = \"linux\", \
     target_pointer_width = \"64\"))'.dependencies]` and put the same `cfg` on its \
     `#[global_allocator]` (README.md, \"Supported platforms\")."
);

pub mod lock;
pub mod sync;
pub mod writer;

/// Define `fn $name() -> *const u8`: the address of the symbol `$sym` in the process, or
/// null when nothing defines it, through a weak undefined reference in assembly (stable
/// Rust has no weak `extern`): a tiny local function that loads the address the dynamic
/// (or static) linker resolved from the GOT. No `dlsym` (which may allocate), no lock:
/// callable from inside `malloc`. On targets other than x86_64 and aarch64 Linux the
/// function returns null. `$sym` is a string literal; `$name` must be unique in the
/// program (it names the assembly function).
#[macro_export]
macro_rules! weak_symbol_address {
    ($(#[$attr:meta])* $vis:vis fn $name:ident() = $sym:literal;) => {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        core::arch::global_asm!(
            concat!(".weak ", $sym),
            concat!(".pushsection .text.", stringify!($name), ",\"ax\",@progbits"),
            ".p2align 4",
            concat!(".globl ", stringify!($name)),
            concat!(".hidden ", stringify!($name)),
            concat!(".type ", stringify!($name), ",@function"),
            concat!(stringify!($name), ":"),
            concat!("    mov rax, qword ptr [rip + ", $sym, "@GOTPCREL]"),
            "    ret",
            concat!(".size ", stringify!($name), ", . - ", stringify!($name)),
            ".popsection",
        );

        #[cfg(all(target_os = "linux", target_arch = "aarch64"))]
        core::arch::global_asm!(
            concat!(".weak ", $sym),
            concat!(".pushsection .text.", stringify!($name), ",\"ax\",@progbits"),
            ".p2align 2",
            concat!(".globl ", stringify!($name)),
            concat!(".hidden ", stringify!($name)),
            concat!(".type ", stringify!($name), ",@function"),
            concat!(stringify!($name), ":"),
            concat!("    adrp x0, :got:", $sym),
            concat!("    ldr x0, [x0, :got_lo12:", $sym, "]"),
            "    ret",
            concat!(".size ", stringify!($name), ", . - ", stringify!($name)),
            ".popsection",
        );

        $(#[$attr])*
        $vis fn $name() -> *const u8 {
            #[cfg(all(
                target_os = "linux",
                any(target_arch = "x86_64", target_arch = "aarch64")
            ))]
            {
                unsafe extern "C" {
                    fn $name() -> *const u8;
                }
                // SAFETY: the assembly function above takes no argument, touches nothing
                // but its return register and returns the resolved address, or 0.
                unsafe { $name() }
            }
            #[cfg(not(all(
                target_os = "linux",
                any(target_arch = "x86_64", target_arch = "aarch64")
            )))]
            {
                core::ptr::null()
            }
        }
    };
}

/// Counters of every syscall and of the release policy's actions.
pub mod stats {
    use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

    pub(crate) static MMAP: AtomicU64 = AtomicU64::new(0);
    pub(crate) static MUNMAP: AtomicU64 = AtomicU64::new(0);
    pub(crate) static MADVISE: AtomicU64 = AtomicU64::new(0);
    pub(crate) static MPROTECT: AtomicU64 = AtomicU64::new(0);
    pub(crate) static MREMAP: AtomicU64 = AtomicU64::new(0);
    pub(crate) static MAPPED: AtomicU64 = AtomicU64::new(0);
    static LEAN_DECOMMIT: AtomicU64 = AtomicU64::new(0);
    static LEAN_RETIRE: AtomicU64 = AtomicU64::new(0);
    static RETIRED: AtomicU64 = AtomicU64::new(0);

    /// A plain copy of the counters.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct OsStats {
        /// `mmap` calls (including failed ones).
        pub mmap: u64,
        /// `munmap` calls.
        pub munmap: u64,
        /// `madvise` calls (the seed's `madvise_calls`).
        pub madvise_calls: u64,
        /// `mprotect` calls.
        pub mprotect: u64,
        /// `mremap` calls.
        pub mremap: u64,
        /// Bytes currently mapped by hakmem (address space, not resident memory).
        pub mapped_bytes: u64,
        /// Decommits done by the release policy in lean mode (the only mode that
        /// decommits): 0 when lean mode is off, as the seed's counter.
        pub lean_decommit: u64,
        /// Superslabs / mappings retired (unmapped) by the release policy in lean mode:
        /// 0 when lean mode is off ("0 (mode disabled)", as the seed's counter).
        pub lean_retire: u64,
        /// Every superslab / mapping the release policy retired, whatever the mode.
        pub retired: u64,
    }

    impl OsStats {
        /// mmap + munmap + madvise + mprotect + mremap.
        pub const fn syscalls(&self) -> u64 {
            self.mmap + self.munmap + self.madvise_calls + self.mprotect + self.mremap
        }
    }

    /// The counters now (each read is relaxed: a consistent-enough snapshot).
    pub fn snapshot() -> OsStats {
        OsStats {
            mmap: MMAP.load(Relaxed),
            munmap: MUNMAP.load(Relaxed),
            madvise_calls: MADVISE.load(Relaxed),
            mprotect: MPROTECT.load(Relaxed),
            mremap: MREMAP.load(Relaxed),
            mapped_bytes: MAPPED.load(Relaxed),
            lean_decommit: LEAN_DECOMMIT.load(Relaxed),
            lean_retire: LEAN_RETIRE.load(Relaxed),
            retired: RETIRED.load(Relaxed),
        }
    }

    /// Count one decommit done by the release policy: lean mode's, and an empty slab's
    /// pages given back after it stayed idle past the decay interval.
    #[inline]
    pub fn count_lean_decommit() {
        LEAN_DECOMMIT.fetch_add(1, Relaxed);
    }

    /// Count one retirement done by the release policy: always in `retired`, and in
    /// `lean_retire` when lean mode is on.
    #[inline]
    pub fn count_retire(lean: bool) {
        RETIRED.fetch_add(1, Relaxed);
        if lean {
            LEAN_RETIRE.fetch_add(1, Relaxed);
        }
    }

    /// The exit line of `HAKMEM_SS_OS_STATS=1`, with the seed's names:
    /// `hakmem: os stats: mmap=3 munmap=1 madvise_calls=0 ...` (no newline).
    impl core::fmt::Display for OsStats {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(
                f,
                "hakmem: os stats: mmap={} munmap={} madvise_calls={} mprotect={} mremap={} \
                 mapped_bytes={} lean_decommit={} lean_retire={} retired={}",
                self.mmap,
                self.munmap,
                self.madvise_calls,
                self.mprotect,
                self.mremap,
                self.mapped_bytes,
                self.lean_decommit,
                self.lean_retire,
                self.retired,
            )
        }
    }

    /// Write the counters ([`snapshot`], as [`OsStats`] displays them) as one line to
    /// stderr, without allocating.
    pub fn print() {
        crate::writer::eprint_line(format_args!("{}", snapshot()));
    }
}

/// Test-only fault injection: make `mmap` fail.
pub mod fault {
    use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

    /// Number of further `mmap` calls that may succeed; `u64::MAX` = no fault injection.
    static BUDGET: AtomicU64 = AtomicU64::new(u64::MAX);

    /// From now on, let `n` more `mmap` calls succeed, then fail every one (as if the OS
    /// said ENOMEM). `fail_maps_after(u64::MAX)` turns injection off.
    pub fn fail_maps_after(n: u64) {
        BUDGET.store(n, Relaxed);
    }

    /// 0: off; k > 0: every k-th `mmap` fails.
    static EVERY: AtomicU64 = AtomicU64::new(0);
    static CALLS: AtomicU64 = AtomicU64::new(0);

    /// Make every `k`-th `mmap` call fail (`k == 0` turns this mode off).
    pub fn fail_every(k: u64) {
        CALLS.store(0, Relaxed);
        EVERY.store(k, Relaxed);
    }

    /// True when this `mmap` must fail.
    #[inline]
    pub(crate) fn should_fail() -> bool {
        let k = EVERY.load(Relaxed);
        if k != 0 && (CALLS.fetch_add(1, Relaxed) + 1).is_multiple_of(k) {
            return true;
        }
        let b = BUDGET.load(Relaxed);
        if b == u64::MAX {
            return false;
        }
        if b == 0 {
            return true;
        }
        BUDGET.fetch_sub(1, Relaxed);
        false
    }
}

/// The system calls. Every function counts its call in [`stats`].
pub mod os {
    use crate::fault;
    use crate::stats::{MADVISE, MAPPED, MMAP, MPROTECT, MREMAP, MUNMAP};
    use core::ptr;
    use core::sync::atomic::AtomicUsize;
    use core::sync::atomic::Ordering::Relaxed;

    /// The smallest page size hakmem supports (4 KiB): the granularity of the lengths and
    /// addresses this module checks in debug builds, and the bound the superslab header
    /// fits in. It is *not* the OS page: that is [`page_size`], read at run time.
    pub const PAGE: usize = MIN_PAGE;
    /// The smallest OS page size hakmem supports: 4 KiB (x86_64; aarch64 with 4 KiB
    /// pages).
    pub const MIN_PAGE: usize = 4 << 10;
    /// The largest OS page size hakmem supports: 64 KiB (aarch64 or ppc64le kernels with
    /// 64 KiB pages). Every layout unit above this box (the superslab header and slabs,
    /// 64 KiB multiples at 64 KiB offsets; superslabs and large mappings, 4 MiB multiples
    /// aligned to 4 MiB) is a multiple of it, so the layout is the same for 4, 16 and
    /// 64 KiB pages and nothing on an allocation path needs the run-time page size: a
    /// region decommitted or protected there covers whole pages of any supported size.
    pub const MAX_PAGE: usize = 64 << 10;

    /// The OS page size once read (0: not yet).
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

    /// Whether hakmem supports OS pages of `size` bytes: a power of two from
    /// [`MIN_PAGE`] to [`MAX_PAGE`] (4, 8, 16, 32 or 64 KiB).
    pub const fn page_size_supported(size: usize) -> bool {
        size.is_power_of_two() && size >= MIN_PAGE && size <= MAX_PAGE
    }

    /// `len` rounded up to a whole number of `page`-byte pages (`page` a power of two);
    /// `None` on overflow.
    pub const fn round_to_page(len: usize, page: usize) -> Option<usize> {
        match len.checked_add(page - 1) {
            Some(v) => Some(v & !(page - 1)),
            None => None,
        }
    }

    /// The OS page size (`sysconf(_SC_PAGESIZE)`, read once and cached in an atomic: no
    /// allocation, one relaxed load after the first call). Every `mmap` reads it first, so
    /// a process on a kernel whose page size hakmem does not support
    /// ([`page_size_supported`]: more than 64 KiB) stops at its first mapping with a
    /// fatal report instead of decommitting its neighbours' data. Never read on an
    /// allocation's fast path (see [`MAX_PAGE`]).
    #[inline]
    pub fn page_size() -> usize {
        let p = PAGE_SIZE.load(Relaxed);
        if p != 0 { p } else { page_size_init() }
    }

    #[cold]
    #[inline(never)]
    fn page_size_init() -> usize {
        // SAFETY: sysconf has no preconditions.
        let r = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let p = usize::try_from(r).unwrap_or(0);
        if !page_size_supported(p) {
            crate::report::fatal_args(format_args!(
                "unsupported OS page size {p} (4096 to 65536 bytes are supported)"
            ));
        }
        PAGE_SIZE.store(p, Relaxed);
        p
    }

    /// How a range is given back to the OS while staying mapped.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Advice {
        /// `MADV_FREE`: the kernel reclaims lazily; contents may survive until reuse.
        Free,
        /// `MADV_DONTNEED`: reclaimed now; the next touch reads zeros.
        DontNeed,
    }

    /// Whether `x` is a multiple of the OS page (for the debug checks of the arguments).
    fn page_aligned(x: usize) -> bool {
        x & (page_size() - 1) == 0
    }

    fn raw_mmap(addr: *mut u8, len: usize, prot: i32, extra: i32) -> *mut u8 {
        debug_assert!(len > 0, "mmap of 0 bytes");
        // Checks (once) that the OS page size is supported before anything is mapped.
        let page = page_size();
        debug_assert!(
            addr as usize & (page - 1) == 0,
            "mmap hint not page-aligned"
        );
        MMAP.fetch_add(1, Relaxed);
        if fault::should_fail() {
            return ptr::null_mut();
        }
        // SAFETY: an anonymous private mapping has no preconditions; failure is reported
        // as MAP_FAILED and turned into null.
        let p = unsafe {
            libc::mmap(
                addr.cast(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            ptr::null_mut()
        } else {
            debug_assert!(page_aligned(p as usize), "the kernel mapped off a page");
            MAPPED.fetch_add(len as u64, Relaxed);
            p.cast()
        }
    }

    /// A coarse monotonic clock in milliseconds (`CLOCK_MONOTONIC_COARSE`, served by the
    /// vDSO: no system call, a few nanoseconds). Used to age cached regions.
    pub fn now_ms() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out-parameter.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
    }

    /// Map `len` bytes (a multiple of [`PAGE`]; the kernel rounds it up to a whole OS
    /// page) of zeroed, readable and writable memory. Returns null when the OS refuses.
    ///
    /// The mapping is *committed* (no `MAP_NORESERVE`): the kernel applies its overcommit
    /// policy to it exactly as it does to glibc's own `mmap` of a large block, so a
    /// request the kernel would refuse glibc (say `malloc(1 << 46)` under the default
    /// heuristic policy) is refused here too, with `ENOMEM`, instead of succeeding and
    /// leaving the OOM killer to settle it later. Use [`map_sparse`] for the allocator's
    /// own sparse metadata.
    pub fn map(len: usize) -> *mut u8 {
        raw_mmap(ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, 0)
    }

    /// Map `len` bytes of zeroed memory with `MAP_NORESERVE`: address space for the
    /// allocator's own sparse metadata (the registry's table), of which only the few
    /// pages ever touched become resident. Never for memory handed to a caller (see
    /// [`map`]). Returns null when the OS refuses.
    pub fn map_sparse(len: usize) -> *mut u8 {
        raw_mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_NORESERVE,
        )
    }

    /// How many bytes [`map_aligned`] maps to cut `len` bytes aligned to `align` out of
    /// them, with OS pages of `page` bytes (`align > page`): `len + align - page` (the
    /// kernel's mapping starts on a page, so at most `align - page` bytes precede the
    /// first aligned address); `None` on overflow.
    pub const fn over_map_len(len: usize, align: usize, page: usize) -> Option<usize> {
        len.checked_add(align - page)
    }

    /// Where [`map_aligned`] cuts `len` bytes aligned to `align` out of a mapping of
    /// `total` bytes ([`over_map_len`]) at `addr`: `(aligned, head, tail)`, the block's
    /// start and the bytes unmapped before and after it. With `addr` and `len` multiples
    /// of the OS page and `align` a larger power of two, `head` and `tail` are page
    /// multiples too (a pure function, so the arithmetic is tested for every supported
    /// page size on any machine).
    pub const fn aligned_cut(
        addr: usize,
        total: usize,
        len: usize,
        align: usize,
    ) -> (usize, usize, usize) {
        let aligned = (addr + align - 1) & !(align - 1);
        let head = aligned - addr;
        (aligned, head, total - head - len)
    }

    /// The start of the last mapping [`map_aligned`] made with an alignment above the
    /// page (0: none yet): the next one is first asked for just below it.
    static ALIGNED_LAST: AtomicUsize = AtomicUsize::new(0);

    /// Where [`map_aligned`] first asks for `len` bytes aligned to `align`, below the
    /// last aligned mapping it made, at `last`: the highest `align` multiple whose
    /// `len` bytes end at or below `last` (`None` if there is none, or no last).
    pub const fn aligned_hint(last: usize, len: usize, align: usize) -> Option<usize> {
        if last == 0 || last < len {
            return None;
        }
        let want = (last - len) & !(align - 1);
        if want == 0 { None } else { Some(want) }
    }

    /// Map `len` bytes (a multiple of the OS page) aligned to `align` (a power of two).
    /// First asks the kernel for the aligned range just below the previous aligned
    /// mapping (a hint, never `MAP_FIXED`: the kernel maps top-down, so that range is
    /// usually free, and then the mapping takes one syscall and extends the previous
    /// one's VMA); when the kernel puts it elsewhere unaligned, unmaps it and over-maps
    /// and trims the excess (up to three syscalls more; [`over_map_len`],
    /// [`aligned_cut`]). Null when the OS refuses. Committed like [`map`]: the overcommit
    /// check sees `len` bytes for a hinted mapping, `len + align - page_size()` for an
    /// over-mapped one.
    pub fn map_aligned(len: usize, align: usize) -> *mut u8 {
        debug_assert!(align.is_power_of_two(), "map_aligned to {align}");
        debug_assert!(page_aligned(len), "map_aligned of {len} bytes");
        let page = page_size();
        if align <= page {
            return map(len);
        }
        if let Some(want) = aligned_hint(ALIGNED_LAST.load(Relaxed), len, align) {
            let p = raw_mmap(want as *mut u8, len, libc::PROT_READ | libc::PROT_WRITE, 0);
            if !p.is_null() {
                if (p as usize).is_multiple_of(align) {
                    ALIGNED_LAST.store(p as usize, Relaxed);
                    return p;
                }
                // SAFETY: the mapping just made, unused.
                unsafe { unmap(p, len) };
            }
        }
        let Some(total) = over_map_len(len, align, page) else {
            return ptr::null_mut();
        };
        let p = map(total);
        if p.is_null() {
            return p;
        }
        let (aligned, head, tail) = aligned_cut(p as usize, total, len, align);
        // SAFETY: head and tail lie inside the mapping just made and are page multiples.
        unsafe {
            if head > 0 {
                unmap(p, head);
            }
            if tail > 0 {
                unmap((aligned + len) as *mut u8, tail);
            }
        }
        debug_assert!(aligned.is_multiple_of(align) && head + len + tail == total);
        ALIGNED_LAST.store(aligned, Relaxed);
        aligned as *mut u8
    }

    /// Unmap a range.
    ///
    /// # Safety
    /// `p..p+len` must be (part of) a mapping made by this module and no longer used.
    pub unsafe fn unmap(p: *mut u8, len: usize) {
        debug_assert!(page_aligned(p as usize) && !p.is_null(), "munmap of {p:p}");
        MUNMAP.fetch_add(1, Relaxed);
        // SAFETY: the caller guarantees the range is ours and unused.
        let r = unsafe { libc::munmap(p.cast(), len) };
        debug_assert_eq!(r, 0, "munmap of our own range failed");
        if r == 0 {
            MAPPED.fetch_sub(len as u64, Relaxed);
        }
    }

    /// Give the physical memory of a range back to the OS; the range stays mapped.
    /// Returns false if the OS refused. `Free` falls back to `DontNeed` on kernels
    /// without `MADV_FREE`.
    ///
    /// # Safety
    /// `p..p+len` must be page-aligned, inside a mapping made by this module, and hold no
    /// live data (after `DontNeed` it reads as zeros; after `Free`, as old data or zeros).
    pub unsafe fn decommit(p: *mut u8, len: usize, advice: Advice) -> bool {
        debug_assert!(
            page_aligned(p as usize) && len > 0,
            "madvise of {p:p}+{len}"
        );
        let adv = match advice {
            Advice::Free => libc::MADV_FREE,
            Advice::DontNeed => libc::MADV_DONTNEED,
        };
        MADVISE.fetch_add(1, Relaxed);
        // SAFETY: the caller guarantees the range is ours and holds no live data.
        let mut r = unsafe { libc::madvise(p.cast(), len, adv) };
        if r != 0 && advice == Advice::Free {
            MADVISE.fetch_add(1, Relaxed);
            // SAFETY: as above.
            r = unsafe { libc::madvise(p.cast(), len, libc::MADV_DONTNEED) };
        }
        r == 0
    }

    /// The host's transparent huge page mode, `/sys/kernel/mm/transparent_hugepage/enabled`
    /// (the word in brackets).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ThpHost {
        /// `never`, or the file could not be read (no THP known: nothing to steer).
        Never,
        /// `madvise`: huge pages only where `MADV_HUGEPAGE` asks for them.
        Madvise,
        /// `always`: huge pages wherever a whole aligned 2 MiB fits a mapping, unless
        /// `MADV_NOHUGEPAGE` says no.
        Always,
    }

    /// [`ThpHost`] from the contents of the `enabled` file (`"always [madvise] never\n"`):
    /// the bracketed word; [`ThpHost::Never`] for anything else.
    pub fn parse_thp_enabled(text: &[u8]) -> ThpHost {
        let Some(open) = text.iter().position(|&b| b == b'[') else {
            return ThpHost::Never;
        };
        let rest = &text[open + 1..];
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return ThpHost::Never;
        };
        match &rest[..close] {
            b"always" => ThpHost::Always,
            b"madvise" => ThpHost::Madvise,
            _ => ThpHost::Never,
        }
    }

    /// [`thp_host`] once read: 0 not yet, then 1 + the variant.
    static THP_HOST: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

    /// The host's transparent huge page mode, read once (an `open`, a `read` and a
    /// `close` of the sysfs file, no allocation; on a slow path: the first superslab or
    /// large mapping). [`ThpHost::Never`] when the file cannot be read.
    pub fn thp_host() -> ThpHost {
        const ALL: [ThpHost; 3] = [ThpHost::Never, ThpHost::Madvise, ThpHost::Always];
        let v = THP_HOST.load(Relaxed);
        if let Some(&h) = (v as usize).checked_sub(1).and_then(|i| ALL.get(i)) {
            return h;
        }
        let mut buf = [0u8; 64];
        let mut n = 0usize;
        // SAFETY: a NUL-terminated path; `buf` is a valid buffer of its length.
        unsafe {
            let fd = libc::open(
                c"/sys/kernel/mm/transparent_hugepage/enabled".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            if fd >= 0 {
                let r = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                n = usize::try_from(r).unwrap_or(0);
                libc::close(fd);
            }
        }
        let h = parse_thp_enabled(&buf[..n.min(buf.len())]);
        let i = ALL.iter().position(|&x| x == h).unwrap_or(0);
        THP_HOST.store(i as u8 + 1, Relaxed);
        h
    }

    /// Mark a range for transparent huge pages (`MADV_HUGEPAGE` when `huge`, else
    /// `MADV_NOHUGEPAGE`). Counted with the `madvise` calls. Returns false if the OS
    /// refused (a kernel without THP; nothing else changes).
    ///
    /// # Safety
    /// `p..p+len` must be page-aligned and inside a mapping made by this module. (The
    /// advice changes no contents; a huge page already there stays until the kernel
    /// splits it.)
    pub unsafe fn advise_huge(p: *mut u8, len: usize, huge: bool) -> bool {
        debug_assert!(
            page_aligned(p as usize) && page_aligned(len) && len > 0,
            "THP advice for {p:p}+{len}"
        );
        MADVISE.fetch_add(1, Relaxed);
        let adv = if huge {
            libc::MADV_HUGEPAGE
        } else {
            libc::MADV_NOHUGEPAGE
        };
        // SAFETY: the caller guarantees the range is ours; the advice moves no data.
        unsafe { libc::madvise(p.cast(), len, adv) == 0 }
    }

    /// Change the protection of a range (`libc::PROT_*`). Returns false on failure.
    ///
    /// # Safety
    /// The range must be inside a mapping made by this module; the caller must not touch
    /// memory it made inaccessible.
    pub unsafe fn protect(p: *mut u8, len: usize, prot: i32) -> bool {
        debug_assert!(
            page_aligned(p as usize) && page_aligned(len),
            "mprotect of {p:p}"
        );
        MPROTECT.fetch_add(1, Relaxed);
        // SAFETY: the caller guarantees the range is ours.
        unsafe { libc::mprotect(p.cast(), len, prot) == 0 }
    }

    /// Grow the mapping `p..p+old` to `p..p+new` without moving it. False if the address
    /// space after it is taken.
    ///
    /// # Safety
    /// `p..p+old` must be a whole mapping made by this module.
    pub unsafe fn grow_in_place(p: *mut u8, old: usize, new: usize) -> bool {
        debug_assert!(
            page_aligned(p as usize) && new > old,
            "grow_in_place {old} -> {new}"
        );
        MREMAP.fetch_add(1, Relaxed);
        // SAFETY: without MREMAP_MAYMOVE the kernel either extends in place or fails.
        let r = unsafe { libc::mremap(p.cast(), old, new, 0) };
        if r == libc::MAP_FAILED {
            false
        } else {
            MAPPED.fetch_add((new - old) as u64, Relaxed);
            true
        }
    }

    /// Move the pages of mapping `p..p+old` to `dst..dst+new` (replacing whatever `dst`
    /// held) without copying their contents; the old range is unmapped.
    ///
    /// # Safety
    /// `p..p+old` must be a whole mapping made by this module; `dst..dst+new` must be a
    /// range this module mapped and nobody uses.
    pub unsafe fn remap_fixed(p: *mut u8, old: usize, new: usize, dst: *mut u8) -> bool {
        debug_assert!(page_aligned(p as usize) && page_aligned(dst as usize));
        debug_assert!(
            (dst as usize).saturating_add(new) <= p as usize
                || (p as usize).saturating_add(old) <= dst as usize,
            "mremap onto its own source"
        );
        MREMAP.fetch_add(1, Relaxed);
        // SAFETY: MAYMOVE|FIXED atomically replaces the destination range, which the
        // caller owns; the source range is ours.
        let r = unsafe {
            libc::mremap(
                p.cast(),
                old,
                new,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                dst.cast::<libc::c_void>(),
            )
        };
        if r == libc::MAP_FAILED {
            false
        } else {
            // The destination (`new` bytes) was already counted when it was mapped; the
            // source (`old` bytes) is gone.
            MAPPED.fetch_sub(old as u64, Relaxed);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;

    /// The fault hook is process-wide: tests that map memory hold this lock.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn page_size_is_the_os_one() {
        // SAFETY: sysconf has no preconditions.
        let ps = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        assert_eq!(os::page_size(), ps);
        assert_eq!(os::page_size(), ps, "the cached value");
        assert!(os::page_size_supported(ps));
        assert!((os::PAGE..=os::MAX_PAGE).contains(&ps));
    }

    /// The page sizes of the kernels hakmem supports (x86_64: 4 KiB; aarch64: 4, 16 or
    /// 64 KiB; ppc64le: 64 KiB) and a few it does not.
    #[test]
    fn supported_page_sizes() {
        for kib in [4usize, 8, 16, 32, 64] {
            assert!(os::page_size_supported(kib << 10), "{kib} KiB");
        }
        for bytes in [0usize, 1, 2048, 3 << 12, 20 << 10, 128 << 10, 2 << 20] {
            assert!(!os::page_size_supported(bytes), "{bytes} bytes");
        }
    }

    #[test]
    fn rounding_to_pages() {
        for page in [4usize << 10, 16 << 10, 64 << 10] {
            assert_eq!(os::round_to_page(0, page), Some(0));
            assert_eq!(os::round_to_page(1, page), Some(page));
            assert_eq!(os::round_to_page(page, page), Some(page));
            assert_eq!(os::round_to_page(page + 1, page), Some(2 * page));
            assert_eq!(os::round_to_page(usize::MAX, page), None);
        }
    }

    /// `map_aligned`'s arithmetic for 4, 16 and 64 KiB pages: whatever page the kernel's
    /// mapping starts on, the cut is aligned, inside the mapping, and the trimmed head and
    /// tail are whole pages (what `munmap` needs).
    #[test]
    fn aligned_cut_for_every_page_size() {
        for page in [4usize << 10, 16 << 10, 64 << 10] {
            for align in [2 * page, 1 << 22, 1 << 23] {
                for len in [page, 1 << 22, 3 << 22] {
                    let total = os::over_map_len(len, align, page).unwrap();
                    // Every page offset the kernel may start the mapping at, modulo `align`.
                    for k in 0..align / page {
                        let addr = 0x7f00_0000_0000 + k * page;
                        let (aligned, head, tail) = os::aligned_cut(addr, total, len, align);
                        assert_eq!(aligned % align, 0);
                        assert!(aligned >= addr && aligned + len <= addr + total);
                        assert_eq!(head + len + tail, total);
                        assert_eq!((head % page, tail % page), (0, 0), "page {page}");
                    }
                }
            }
            assert_eq!(os::over_map_len(usize::MAX - 1, 1 << 22, page), None);
        }
    }

    #[test]
    fn thp_enabled_file_is_parsed() {
        use os::{ThpHost, parse_thp_enabled as p};
        assert_eq!(p(b"always [madvise] never\n"), ThpHost::Madvise);
        assert_eq!(p(b"[always] madvise never\n"), ThpHost::Always);
        assert_eq!(p(b"always madvise [never]\n"), ThpHost::Never);
        for junk in [
            &b""[..],
            b"always madvise never",
            b"[always",
            b"[sometimes] x",
            b"][",
        ] {
            assert_eq!(p(junk), ThpHost::Never, "{junk:?}");
        }
        // The live file, if there is one, reads as one of the three, twice the same.
        let h = os::thp_host();
        assert_eq!(os::thp_host(), h);
        if let Ok(text) = std::fs::read("/sys/kernel/mm/transparent_hugepage/enabled") {
            assert_eq!(p(&text), h);
        }
    }

    #[test]
    fn aligned_hint_is_below_the_last_mapping() {
        let m = 1usize << 22;
        assert_eq!(os::aligned_hint(0, m, m), None, "no last mapping");
        assert_eq!(os::aligned_hint(100 * m, m, m), Some(99 * m));
        assert_eq!(os::aligned_hint(100 * m, 3 * m, m), Some(97 * m));
        // A smaller block below a 4 MiB-aligned last start, aligned to 4 MiB.
        assert_eq!(os::aligned_hint(100 * m, 1 << 20, m), Some(99 * m));
        assert_eq!(os::aligned_hint(m, m, m), None, "nothing below");
        assert_eq!(os::aligned_hint(m / 2, m, m), None);
    }

    /// Consecutive aligned mappings (the second one, first asked for just below the
    /// first) are aligned, distinct, and each a usable mapping of its own.
    #[test]
    fn consecutive_aligned_maps_are_aligned() {
        let _g = SERIAL.lock().unwrap();
        let len = 4 << 20;
        let a = os::map_aligned(len, len);
        let b = os::map_aligned(len, len);
        let c = os::map_aligned(len, len);
        for p in [a, b, c] {
            assert!(!p.is_null());
            assert_eq!(p as usize % len, 0);
        }
        assert!(a != b && b != c && a != c);
        // SAFETY: three fresh mappings of `len` bytes.
        unsafe {
            for p in [a, b, c] {
                p.write_bytes(0x5A, len);
            }
            assert_eq!(*a.add(len - 1), 0x5A);
            os::unmap(b, len);
            assert_eq!(
                *c.add(len - 1),
                0x5A,
                "unmapping the middle one leaves the others"
            );
            os::unmap(a, len);
            os::unmap(c, len);
        }
    }

    #[test]
    fn aligned_map_is_aligned_and_counted() {
        let _g = SERIAL.lock().unwrap();
        let before = stats::snapshot();
        let p = os::map_aligned(1 << 20, 4 << 20);
        assert!(!p.is_null());
        assert_eq!(p as usize % (4 << 20), 0);
        // SAFETY: p is a fresh 1 MiB mapping.
        unsafe {
            assert_eq!(*p.add(12345), 0);
            p.write_bytes(0xAB, 1 << 20);
            assert!(os::decommit(p, 1 << 20, os::Advice::DontNeed));
            assert_eq!(*p.add(12345), 0, "DONTNEED reads zeros");
            assert!(os::protect(
                p,
                os::page_size(),
                libc::PROT_READ | libc::PROT_WRITE
            ));
            os::unmap(p, 1 << 20);
        }
        let after = stats::snapshot();
        assert!(after.mmap > before.mmap);
        assert!(after.munmap > before.munmap);
        assert!(after.madvise_calls > before.madvise_calls);
        assert!(after.mprotect > before.mprotect);
    }

    #[test]
    fn remap_moves_without_losing_contents() {
        let _g = SERIAL.lock().unwrap();
        let page = os::page_size();
        let a = os::map(page * 2);
        let b = os::map(page * 8);
        assert!(!a.is_null() && !b.is_null());
        // SAFETY: a and b are fresh mappings of the given sizes.
        unsafe {
            a.write(42);
            a.add(page).write(43);
            assert!(os::remap_fixed(a, page * 2, page * 8, b));
            assert_eq!(*b, 42);
            assert_eq!(*b.add(page), 43);
            assert_eq!(*b.add(page * 7), 0);
            os::unmap(b, page * 8);
        }
    }

    #[test]
    fn fault_hook_fails_maps() {
        let _g = SERIAL.lock().unwrap();
        fault::fail_maps_after(0);
        let p = os::map(os::PAGE);
        fault::fail_maps_after(u64::MAX);
        assert!(p.is_null());
        let q = os::map(os::PAGE);
        assert!(!q.is_null());
        // SAFETY: q is a fresh one-page mapping.
        unsafe { os::unmap(q, os::PAGE) };
    }

    #[test]
    fn stats_line_names_every_counter_with_its_value() {
        let s = stats::OsStats {
            mmap: 1,
            munmap: 2,
            madvise_calls: 3,
            mprotect: 4,
            mremap: 5,
            mapped_bytes: 6,
            lean_decommit: 7,
            lean_retire: 8,
            retired: u64::MAX,
        };
        let mut w = writer::StackWriter::<256>::new();
        core::fmt::Write::write_fmt(&mut w, format_args!("{s}")).unwrap();
        assert_eq!(
            w.as_str(),
            "hakmem: os stats: mmap=1 munmap=2 madvise_calls=3 mprotect=4 mremap=5 \
             mapped_bytes=6 lean_decommit=7 lean_retire=8 retired=18446744073709551615"
        );
        assert!(!w.is_truncated());
    }
}

/// Fatal reports: one line on stderr, `hakmem: <what> <address>`, then abort. Never
/// allocates. Every fatal report of hakmem has this shape (the C ABI's bad-pointer reports
/// too, through [`report::fatal_args`]).
pub mod report {
    use core::fmt;

    /// Write `hakmem: <what> 0x<addr in hex>` and a newline to stderr, then abort.
    #[cold]
    #[inline(never)]
    pub fn fatal(what: &str, addr: usize) -> ! {
        fatal_args(format_args!("{what} {addr:#x}"))
    }

    /// Write `hakmem: ` and `args` as one line to stderr (see
    /// [`print_line`](crate::writer::print_line)), then abort.
    #[cold]
    #[inline(never)]
    pub fn fatal_args(args: fmt::Arguments<'_>) -> ! {
        crate::writer::eprint_line(format_args!("hakmem: {args}"));
        // SAFETY: abort has no preconditions and never returns.
        unsafe { libc::abort() }
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
