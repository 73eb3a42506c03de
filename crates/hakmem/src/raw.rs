//! The pointer-only API (C semantics): blocks are freed and resized without their
//! `Layout`, so the owner is found from the address through the registry and the
//! superslab header, in O(1). The C ABI crate (`hakmem-preload`) is a thin shell over
//! this module.
//!
//! Every pointer given to [`free`], [`realloc`] or [`usable_size`] is validated: a
//! pointer hakmem never handed out (foreign memory, a stack address, the inside of a
//! block, a cached region) is reported as a [`BadPointer`] instead of corrupting the heap.

use crate::{Route, alloc_slow, route, thread_setup};
use core::ptr;
use hakmem_ss_allocation::class::{self, NTINY};
use hakmem_ss_allocation::registry::{self, Kind};

/// The alignment `malloc` guarantees (as glibc on x86_64).
pub const MALLOC_ALIGN: usize = 16;

/// Why a pointer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadPointer {
    /// Not inside memory hakmem manages (never allocated here, or already returned to
    /// the OS).
    NotOurs,
    /// Inside a hakmem block or header but not the start of a live block.
    Interior,
}

impl BadPointer {
    /// Why the pointer was refused, in the words of every report: `"not allocated by
    /// hakmem"` or `"not the start of a live block"`.
    pub const fn reason(self) -> &'static str {
        match self {
            BadPointer::NotOurs => "not allocated by hakmem",
            BadPointer::Interior => "not the start of a live block",
        }
    }

    /// A one-line description, as in glibc's "free(): invalid pointer":
    /// `invalid pointer (<reason>)` (see [`reason`](Self::reason)).
    pub const fn message(self) -> &'static str {
        match self {
            BadPointer::NotOurs => "invalid pointer (not allocated by hakmem)",
            BadPointer::Interior => "invalid pointer (not the start of a live block)",
        }
    }

    /// The report of `func` refusing `p`, as [`abort`](Self::abort) prints it after
    /// `hakmem: `: `free(): invalid pointer 0x1234 (not allocated by hakmem)`.
    pub const fn report(self, func: &str, p: *const u8) -> BadPointerReport<'_> {
        BadPointerReport { func, p, why: self }
    }

    /// Writes the report of `func` refusing `p` to stderr as one line,
    /// `hakmem: free(): invalid pointer 0x1234 (not allocated by hakmem)`, then aborts.
    /// Allocates nothing (the one printer, `hakmem_os_stats::report`). The C ABI calls
    /// this for every pointer it refuses.
    #[cold]
    #[inline(never)]
    pub fn abort(self, func: &str, p: *const u8) -> ! {
        hakmem_os_stats::report::fatal_args(format_args!("{}", self.report(func, p)))
    }
}

/// A bad-pointer report, written without allocating by its `Display`:
/// `<func>(): invalid pointer <p in hex> (<reason>)`. Made by [`BadPointer::report`].
#[derive(Clone, Copy, Debug)]
pub struct BadPointerReport<'a> {
    func: &'a str,
    p: *const u8,
    why: BadPointer,
}

impl core::fmt::Display for BadPointerReport<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}(): invalid pointer {:#x} ({})",
            self.func,
            self.p as usize,
            self.why.reason()
        )
    }
}

/// Where a valid pointer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Slab(usize),
    Large,
}

#[inline(always)]
fn owner(p: *mut u8) -> Result<Owner, BadPointer> {
    match registry::kind_of(p) {
        // SAFETY: the registry just said `p`'s unit is a live superslab.
        Kind::Superslab => match unsafe { hakmem_ss_allocation::validate_class_in_superslab(p) } {
            Some(cls) => Ok(Owner::Slab(cls)),
            None => Err(BadPointer::Interior),
        },
        Kind::Large => {
            if hakmem_large::validate(p) {
                Ok(Owner::Large)
            } else {
                Err(BadPointer::Interior)
            }
        }
        Kind::None => Err(BadPointer::NotOurs),
    }
}

/// `malloc(size)`: 16-byte aligned; `malloc(0)` returns a unique pointer. Null when out
/// of memory.
#[inline]
pub fn malloc(size: usize) -> *mut u8 {
    let p = try_malloc_fast(size);
    if !p.is_null() {
        return p;
    }
    alloc_slow(size, MALLOC_ALIGN, false)
}

/// The hit path of [`malloc`] alone: a tiny block from the thread's bin, or null (a
/// larger size, an empty bin, the thread's first call); then call [`malloc`]. For a C
/// entry point that wants its whole slow path out of line (no stack frame on the hit).
#[inline(always)]
pub fn try_malloc_fast(size: usize) -> *mut u8 {
    if size <= class::TINY_MAX {
        hakmem_tiny_fast::try_alloc(size)
    } else {
        ptr::null_mut()
    }
}

/// `calloc(n, size)`: zeroed; null on overflow or out of memory.
pub fn calloc(n: usize, size: usize) -> *mut u8 {
    match n.checked_mul(size) {
        Some(total) => alloc_slow(total, MALLOC_ALIGN, true),
        None => ptr::null_mut(),
    }
}

/// An allocation aligned to `align` (a power of two; smaller values are raised to 16).
/// Null when out of memory or `align` is not a power of two.
pub fn aligned(align: usize, size: usize) -> *mut u8 {
    if !align.is_power_of_two() {
        return ptr::null_mut();
    }
    alloc_slow(size, align.max(MALLOC_ALIGN), false)
}

/// `free(p)`. Null does nothing.
///
/// The hit path, with no division and no call: the registry byte of `p`'s 4 MiB unit
/// (a live superslab?), then the superslab's validation table (the 4 MiB mask gives the
/// header, `p`'s 64 KiB granule gives its slab's first block and carved limit: one
/// subtraction, one multiply and one compare for "a carved block start"), the class from
/// the header, then the thread-cache push (with its double-free check). Anything else
/// (null, a large block, a bad pointer) takes the cold path, which finds out which.
///
/// # Safety
/// If `p` is a live block from this module (or from [`HakMem`](struct@crate::HakMem)), the
/// caller gives it up. Any other pointer is refused without touching the heap, as long
/// as it does not point into a block that is still live elsewhere in a way that aliases
/// a block start (that is, a double free of a block that was reallocated meanwhile is
/// not detected here).
#[inline(always)]
pub unsafe fn free(p: *mut u8) -> Result<(), BadPointer> {
    // SAFETY: forwarded caller guarantee.
    if unsafe { try_free_fast(p) } {
        return Ok(());
    }
    // SAFETY: forwarded caller guarantee.
    unsafe { free_other(p) }
}

/// The hit path of [`free`] alone: true when `p` was a valid slab block, now freed (to
/// the thread cache, or through its slow path when the bin is full); false for anything
/// else (null, a large block, a bad pointer), which [`free`] then sorts out. For a C
/// entry point that wants its whole slow path out of line.
///
/// # Safety
/// As [`free`].
#[inline(always)]
pub unsafe fn try_free_fast(p: *mut u8) -> bool {
    if !registry::is_superslab(p) {
        return false;
    }
    // SAFETY: the registry just said `p`'s unit is a live superslab.
    let Some(bin) = (unsafe { hakmem_ss_allocation::validate_bin_in_superslab(p) }) else {
        return false;
    };
    // SAFETY: `p` is a live block of the class of bin offset `bin` (validated above),
    // which the caller gives up. (One thread cache for every class: a mid block takes
    // the same path.)
    unsafe {
        if !hakmem_tiny_fast::try_free_bin(p, bin) {
            free_slow_class(
                p,
                bin / core::mem::size_of::<hakmem_ss_allocation::bins::Bin>(),
            );
        }
    }
    true
}

/// [`free`] of anything but a valid slab block: null, a large block, or a bad pointer.
///
/// # Safety
/// As [`free`].
#[cold]
#[inline(never)]
unsafe fn free_other(p: *mut u8) -> Result<(), BadPointer> {
    if p.is_null() {
        return Ok(());
    }
    match owner(p)? {
        Owner::Slab(cls) => {
            // SAFETY: `p` is a live block of class `cls` (validated above).
            unsafe {
                if !hakmem_tiny_fast::try_free_class(p, cls) {
                    free_slow_class(p, cls);
                }
            }
        }
        // SAFETY: validated live large block.
        Owner::Large => unsafe { hakmem_large::large_free(p) },
    }
    Ok(())
}

/// `extern "C"`: a call to it cannot unwind, so the hit path of a C `free` needs no
/// landing pad (and no stack frame).
#[cold]
#[inline(never)]
unsafe extern "C" fn free_slow_class(p: *mut u8, cls: usize) {
    thread_setup();
    // SAFETY: forwarded caller guarantee.
    unsafe { hakmem_tiny_fast::free_slow_class(p, cls) }
}

/// Bytes usable at `p` (at least what was asked for); 0 for null.
///
/// # Safety
/// `p` is null or a live block.
pub unsafe fn usable_size(p: *mut u8) -> Result<usize, BadPointer> {
    if p.is_null() {
        return Ok(0);
    }
    match owner(p)? {
        Owner::Slab(cls) => {
            if hakmem_ss_allocation::bins::DOUBLE_FREE_CHECK
                // SAFETY: a validated block start (at least 16 bytes).
                && unsafe { hakmem_ss_allocation::bins::is_marked_free(p) }
            {
                hakmem_os_stats::report::fatal(
                    "malloc_usable_size(): use of a freed block",
                    p as usize,
                );
            }
            Ok(class::block_size(cls))
        }
        // SAFETY: validated live large block.
        Owner::Large => Ok(unsafe { hakmem_large::usable_size(p) }),
    }
}

/// `realloc(p, new_size)`: null `p` allocates; the contents up to the smaller size are
/// kept; on failure returns `Ok(null)` and `p` stays intact. `new_size == 0` returns a
/// minimal live block (C leaves this case to the implementation; glibc frees and returns
/// null instead).
///
/// # Safety
/// `p` is null or a live block, which the caller gives up on success.
pub unsafe fn realloc(p: *mut u8, new_size: usize) -> Result<*mut u8, BadPointer> {
    if p.is_null() {
        return Ok(malloc(new_size));
    }
    let own = owner(p)?;
    if let Owner::Slab(_) = own
        && hakmem_ss_allocation::bins::DOUBLE_FREE_CHECK
        // SAFETY: `p` is the start of a block of at least 16 bytes (validated above).
        && unsafe { hakmem_ss_allocation::bins::is_marked_free(p) }
    {
        hakmem_os_stats::report::fatal("realloc(): use of a freed block", p as usize);
    }
    let old_size = match own {
        Owner::Slab(cls) => {
            if route(new_size, MALLOC_ALIGN) == slab_route(cls) {
                return Ok(p);
            }
            class::block_size(cls)
        }
        Owner::Large => {
            if route(new_size, MALLOC_ALIGN) == Route::Large {
                // SAFETY: validated live large block.
                return Ok(unsafe { hakmem_large::large_realloc(p, new_size) });
            }
            // SAFETY: validated live large block.
            unsafe { hakmem_large::usable_size(p) }
        }
    };
    let q = malloc(new_size);
    if q.is_null() {
        return Ok(q);
    }
    // SAFETY: both blocks are live and distinct; the copy fits both.
    unsafe {
        ptr::copy_nonoverlapping(p, q, old_size.min(new_size));
        free(p)?;
    }
    Ok(q)
}

fn slab_route(cls: usize) -> Route {
    if cls < NTINY {
        Route::Tiny(cls)
    } else {
        Route::Mid(cls)
    }
}

/// Whether `p` is the start of a live hakmem block.
pub fn owns(p: *mut u8) -> bool {
    owner(p).is_ok()
}

/// For a library that wraps `pthread_create` and defines the marker symbol
/// `hakmem_wraps_pthread_create` (`libhakmem.so`): call first thing on every thread it
/// starts, before the thread's own code. It sets the thread up (the process too, if
/// needed) and arms its cache on the thread-exit key, which in such a process is a key at
/// the lowest pthread key index (no sweep of the indices): a thread armed from its start
/// is drained by that key's destructor in round 1 and caches nothing afterwards, so no
/// destructor can arm it too late (see `hakmem_ss_allocation::bins::ExitKey`).
pub fn thread_start() {
    thread_setup();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_semantics() {
        let a = malloc(0);
        let b = malloc(0);
        assert!(!a.is_null() && !b.is_null() && a != b);
        // SAFETY: blocks from this module.
        unsafe {
            assert!(usable_size(a).unwrap() >= 1);
            free(a).unwrap();
            free(b).unwrap();
            free(ptr::null_mut()).unwrap();
        }
        assert!(calloc(usize::MAX, 2).is_null());
        let c = calloc(100, 100);
        // SAFETY: 10,000 zeroed bytes.
        unsafe {
            assert!((0..10_000).all(|i| *c.add(i) == 0));
            assert_eq!(free(c.add(16)), Err(BadPointer::Interior));
            free(c).unwrap();
        }
        let x = 5u64;
        // SAFETY: a stack address is refused without being touched.
        unsafe {
            assert_eq!(free(&x as *const u64 as *mut u8), Err(BadPointer::NotOurs));
        }
        assert!(aligned(3, 10).is_null());
        for align in [16usize, 64, 4096, 1 << 16, 1 << 21] {
            let p = aligned(align, 100);
            assert_eq!(p as usize % align, 0);
            // SAFETY: live block.
            unsafe { free(p).unwrap() };
        }
    }

    #[test]
    fn bad_pointer_words_are_one() {
        use core::fmt::Write;
        for why in [BadPointer::NotOurs, BadPointer::Interior] {
            let mut w = hakmem_os_stats::writer::StackWriter::<128>::new();
            write!(w, "invalid pointer ({})", why.reason()).unwrap();
            assert_eq!(why.message(), w.as_str(), "message() and reason() agree");
        }
        let mut w = hakmem_os_stats::writer::StackWriter::<128>::new();
        let p = 0x7ffc_1234_5670usize as *const u8;
        write!(w, "{}", BadPointer::NotOurs.report("free", p)).unwrap();
        assert_eq!(
            w.as_str(),
            "free(): invalid pointer 0x7ffc12345670 (not allocated by hakmem)"
        );
        w.clear();
        write!(w, "{}", BadPointer::Interior.report("realloc", ptr::null())).unwrap();
        assert_eq!(
            w.as_str(),
            "realloc(): invalid pointer 0x0 (not the start of a live block)"
        );
        w.clear();
        let top = usize::MAX as *const u8;
        write!(
            w,
            "{}",
            BadPointer::NotOurs.report("malloc_usable_size", top)
        )
        .unwrap();
        assert!(
            w.as_str()
                .starts_with("malloc_usable_size(): invalid pointer 0xffffffffffffffff ("),
            "{w:?}"
        );
    }

    #[test]
    fn realloc_across_ranges_keeps_contents() {
        // SAFETY: every pointer is the live result of the previous call.
        unsafe {
            let mut p = realloc(ptr::null_mut(), 10).unwrap();
            for i in 0..10 {
                *p.add(i) = i as u8;
            }
            for &n in &[20usize, 1000, 5000, 300_000, 5 << 20, 100, 8] {
                p = realloc(p, n).unwrap();
                assert!(!p.is_null());
                for i in 0..8.min(n) {
                    assert_eq!(*p.add(i), i as u8);
                }
                assert!(usable_size(p).unwrap() >= n);
            }
            free(p).unwrap();
        }
    }
}
