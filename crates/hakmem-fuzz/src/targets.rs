//! The three targets of the engine, behind one trait: [`Raw`] (`hakmem::raw`, the
//! pointer-only API with C semantics), [`Global`] (`HakMem`'s `GlobalAlloc` called with
//! `Layout`s) and [`C`] (the process's real `malloc` family through `libc`: hakmem's
//! when the process runs with `LD_PRELOAD=libhakmem.so`, glibc's otherwise).

use super::draw::{HUGE, pick};
use super::rng::Rng;
use super::{Blk, Req};
use core::ffi::c_void;
use hakmem::HakMem;
use hakmem::raw;
use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::ptr;

/// A new block from a target.
#[derive(Clone, Copy, Debug)]
pub struct Got {
    /// The block (null on failure).
    pub p: *mut u8,
    /// The size asked for (a target may raise a 0 to 1).
    pub size: usize,
    /// The alignment the block must have (and, for [`Global`], its layout's).
    pub align: usize,
    /// Whether the block must be zero.
    pub zeroed: bool,
    /// The function called, for reports.
    pub api: &'static str,
}

/// An allocation API under test. Each call is one call of the API; the engine checks
/// the results against its model.
pub trait Target: Sync {
    /// `raw`, `global` or `c`.
    fn name(&self) -> &'static str;
    /// Whether a size of 0 may be asked for (not for `GlobalAlloc`).
    fn zero_size_ok(&self) -> bool {
        true
    }
    /// Whether `realloc(p, 0)` frees `p` and returns null (glibc) instead of resizing.
    fn realloc_zero_frees(&self) -> bool {
        false
    }
    /// The alignment a block keeps across `realloc`: `None`, its own (a `Layout`'s);
    /// `Some(a)`, only `a` (C: 16).
    fn realloc_align(&self) -> Option<usize> {
        Some(raw::MALLOC_ALIGN)
    }
    /// Allocates as `r` says (`r.variant` picks among the target's functions).
    ///
    /// # Safety
    /// None beyond the target's own functions: the engine owns what it returns.
    unsafe fn alloc(&self, r: &Req) -> Got;
    /// Resizes `b` to `new_size`; null on failure (then `b` is intact). An error is a
    /// valid pointer refused.
    ///
    /// # Safety
    /// `b` is a live block of this target, given up on success.
    unsafe fn realloc(
        &self,
        b: &Blk,
        new_size: usize,
        variant: u64,
    ) -> Result<*mut u8, &'static str>;
    /// Frees `b`; an error is a valid pointer refused.
    ///
    /// # Safety
    /// `b` is a live block of this target, given up.
    unsafe fn free(&self, b: &Blk) -> Result<(), &'static str>;
    /// The usable size of `b`.
    ///
    /// # Safety
    /// `b` is a live block of this target.
    unsafe fn usable(&self, b: &Blk) -> Result<usize, &'static str>;
    /// One request that must be refused (a size no allocator can give, a bad alignment,
    /// a pointer that is not a block), checked; an error says what went wrong.
    fn refusal(&self, rng: &mut Rng) -> Result<(), String>;
    /// Flushes the thread's caches or trims, as `variant` says.
    fn maintenance(&self, variant: u64);
}

fn maintenance_facade(variant: u64) {
    if variant.is_multiple_of(4) {
        hakmem::trim();
    } else {
        hakmem::thread_flush();
    }
}

/// Factors `size` into `calloc(n, m)` arguments, as `variant` says.
fn calloc_args(size: usize, variant: u64) -> (usize, usize) {
    match variant % 3 {
        0 => (1, size),
        1 => (size, 1),
        _ if size.is_multiple_of(8) => (size / 8, 8),
        _ => (size, 1),
    }
}

/// `hakmem::raw`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Raw;

impl Target for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    unsafe fn alloc(&self, r: &Req) -> Got {
        let (p, api, zeroed) = if r.align > 0 {
            (raw::aligned(r.align, r.size), "raw::aligned", false)
        } else if r.zeroed {
            let (n, m) = calloc_args(r.size, r.variant);
            (raw::calloc(n, m), "raw::calloc", true)
        } else if r.variant % 4 == 3 {
            // SAFETY: a null pointer is a fresh allocation.
            let p = unsafe { raw::realloc(ptr::null_mut(), r.size) }.unwrap_or(ptr::null_mut());
            (p, "raw::realloc(NULL)", false)
        } else {
            (raw::malloc(r.size), "raw::malloc", false)
        };
        Got {
            p,
            size: r.size,
            align: r.align.max(raw::MALLOC_ALIGN),
            zeroed,
            api,
        }
    }

    unsafe fn realloc(
        &self,
        b: &Blk,
        new_size: usize,
        _variant: u64,
    ) -> Result<*mut u8, &'static str> {
        // SAFETY: the caller's guarantee.
        unsafe { raw::realloc(b.ptr(), new_size) }.map_err(|e| e.message())
    }

    unsafe fn free(&self, b: &Blk) -> Result<(), &'static str> {
        // SAFETY: the caller's guarantee.
        unsafe { raw::free(b.ptr()) }.map_err(|e| e.message())
    }

    unsafe fn usable(&self, b: &Blk) -> Result<usize, &'static str> {
        // SAFETY: the caller's guarantee.
        unsafe { raw::usable_size(b.ptr()) }.map_err(|e| e.message())
    }

    fn refusal(&self, rng: &mut Rng) -> Result<(), String> {
        let huge = HUGE[pick(rng, HUGE.len() as u64) as usize];
        let local = 0u64;
        let stack = &local as *const u64 as *mut u8;
        match pick(rng, 8) {
            0 => null_or(raw::malloc(huge), "raw::malloc", huge),
            1 => null_or(
                raw::aligned(4096 << pick(rng, 12), huge),
                "raw::aligned",
                huge,
            ),
            2 => null_or(raw::calloc(usize::MAX / 2, 3), "raw::calloc(MAX/2, 3)", 0),
            3 => null_or(raw::calloc(huge, 1), "raw::calloc", huge),
            4 => null_or(
                raw::aligned(24 + 16 * pick(rng, 4) as usize, 10),
                "raw::aligned(not a power of two)",
                10,
            ),
            // SAFETY: a stack address is refused without being touched.
            5 => match unsafe { raw::free(stack) } {
                Err(raw::BadPointer::NotOurs) => Ok(()),
                other => Err(format!(
                    "raw::free(stack address) gave {other:?}, not NotOurs"
                )),
            },
            // SAFETY: as above.
            6 => match unsafe { raw::realloc(stack, 100) } {
                Err(raw::BadPointer::NotOurs) => Ok(()),
                other => Err(format!(
                    "raw::realloc(stack address) gave {other:?}, not NotOurs"
                )),
            },
            // SAFETY: as above.
            _ => match unsafe { raw::usable_size(stack) } {
                Err(raw::BadPointer::NotOurs) => Ok(()),
                other => Err(format!(
                    "raw::usable_size(stack address) gave {other:?}, not NotOurs"
                )),
            },
        }
    }

    fn maintenance(&self, variant: u64) {
        maintenance_facade(variant);
    }
}

fn null_or(p: *mut u8, api: &str, size: usize) -> Result<(), String> {
    if p.is_null() {
        Ok(())
    } else {
        Err(format!("{api} of {size} bytes returned {p:p}, not null"))
    }
}

/// `<HakMem as GlobalAlloc>` with `Layout`s (alignments 1 B to 16 MiB).
#[derive(Clone, Copy, Debug, Default)]
pub struct Global;

impl Global {
    fn layout(b: &Blk) -> Layout {
        // The engine only keeps blocks made from valid layouts.
        Layout::from_size_align(b.size, b.align).expect("a valid layout")
    }
}

impl Target for Global {
    fn name(&self) -> &'static str {
        "global"
    }

    fn zero_size_ok(&self) -> bool {
        false
    }

    fn realloc_align(&self) -> Option<usize> {
        None
    }

    unsafe fn alloc(&self, r: &Req) -> Got {
        let size = r.size.max(1);
        let align = if r.align > 0 {
            r.align
        } else {
            1 << (r.variant % 5)
        };
        let layout = Layout::from_size_align(size, align).expect("a valid layout");
        // SAFETY: a non-zero size.
        let (p, api) = unsafe {
            if r.zeroed {
                (HakMem.alloc_zeroed(layout), "GlobalAlloc::alloc_zeroed")
            } else {
                (HakMem.alloc(layout), "GlobalAlloc::alloc")
            }
        };
        Got {
            p,
            size,
            align,
            zeroed: r.zeroed,
            api,
        }
    }

    unsafe fn realloc(
        &self,
        b: &Blk,
        new_size: usize,
        _variant: u64,
    ) -> Result<*mut u8, &'static str> {
        // SAFETY: the caller's guarantee; the engine never asks for 0 bytes here
        // (`zero_size_ok`), nor for a size that overflows `isize` once aligned.
        Ok(unsafe { HakMem.realloc(b.ptr(), Self::layout(b), new_size) })
    }

    unsafe fn free(&self, b: &Blk) -> Result<(), &'static str> {
        // SAFETY: the caller's guarantee.
        unsafe { HakMem.dealloc(b.ptr(), Self::layout(b)) };
        Ok(())
    }

    unsafe fn usable(&self, b: &Blk) -> Result<usize, &'static str> {
        // SAFETY: the caller's guarantee.
        Ok(unsafe { hakmem::usable_size(b.ptr(), Self::layout(b)) })
    }

    fn refusal(&self, rng: &mut Rng) -> Result<(), String> {
        let align = 1usize << pick(rng, 25);
        let huge = HUGE[pick(rng, HUGE.len() as u64) as usize];
        let Ok(layout) = Layout::from_size_align(huge, align) else {
            return Ok(());
        };
        // SAFETY: a non-zero size.
        let p = unsafe {
            if pick(rng, 2) == 0 {
                HakMem.alloc(layout)
            } else {
                HakMem.alloc_zeroed(layout)
            }
        };
        null_or(p, "GlobalAlloc::alloc", huge)
    }

    fn maintenance(&self, variant: u64) {
        maintenance_facade(variant);
    }
}

unsafe extern "C" {
    fn valloc(size: usize) -> *mut c_void;
}

/// The process's C allocation functions (through `libc`, called through opaque function
/// pointers so that the compiler cannot fold a pair away). `strict` adds the checks of
/// hakmem's documented glibc-2.38 semantics that glibc 2.36 does not share.
#[derive(Clone, Copy, Debug, Default)]
pub struct C {
    /// The functions are hakmem's (checked with `dladdr` by the binary).
    pub strict: bool,
}

fn errno() -> i32 {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: i32) {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

impl C {
    fn null_enomem(p: *mut c_void, api: &str, a: usize, b: usize) -> Result<(), String> {
        let e = errno();
        if !p.is_null() {
            Err(format!("{api}({a:#x}, {b:#x}) returned {p:p}, not null"))
        } else if e != libc::ENOMEM {
            Err(format!(
                "{api}({a:#x}, {b:#x}) returned null with errno {e}, not ENOMEM"
            ))
        } else {
            Ok(())
        }
    }
}

impl Target for C {
    fn name(&self) -> &'static str {
        "c"
    }

    fn realloc_zero_frees(&self) -> bool {
        true
    }

    unsafe fn alloc(&self, r: &Req) -> Got {
        let v = r.variant;
        let (size, align) = (r.size, r.align);
        let mut got_align = align.max(raw::MALLOC_ALIGN);
        // SAFETY: every call below is a C allocation function with valid arguments.
        let (p, api, zeroed): (*mut c_void, &'static str, bool) = unsafe {
            if align == 0 && r.zeroed {
                let (n, m) = calloc_args(size, v);
                (
                    black_box(libc::calloc as unsafe extern "C" fn(usize, usize) -> *mut c_void)(
                        n, m,
                    ),
                    "calloc",
                    true,
                )
            } else if align == 0 {
                match v % 8 {
                    6 => (
                        black_box(
                            libc::realloc
                                as unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
                        )(ptr::null_mut(), size),
                        "realloc(NULL)",
                        false,
                    ),
                    7 => (
                        black_box(
                            libc::reallocarray
                                as unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void,
                        )(ptr::null_mut(), size, 1),
                        "reallocarray(NULL)",
                        false,
                    ),
                    _ => (
                        black_box(libc::malloc as unsafe extern "C" fn(usize) -> *mut c_void)(size),
                        "malloc",
                        false,
                    ),
                }
            } else {
                match v % 5 {
                    0 | 1 => {
                        let mut out: *mut c_void = ptr::null_mut();
                        let rc = black_box(
                            libc::posix_memalign
                                as unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> i32,
                        )(&mut out, align, size);
                        (
                            if rc == 0 { out } else { ptr::null_mut() },
                            "posix_memalign",
                            false,
                        )
                    }
                    2 => (
                        black_box(
                            libc::aligned_alloc
                                as unsafe extern "C" fn(usize, usize) -> *mut c_void,
                        )(align, size),
                        "aligned_alloc",
                        false,
                    ),
                    3 => (
                        black_box(
                            libc::memalign as unsafe extern "C" fn(usize, usize) -> *mut c_void,
                        )(align, size),
                        "memalign",
                        false,
                    ),
                    _ if align > 8 => {
                        // Not a power of two: glibc (and hakmem) round it up.
                        (
                            black_box(
                                libc::memalign as unsafe extern "C" fn(usize, usize) -> *mut c_void,
                            )(align / 2 + 8, size),
                            "memalign(align/2+8)",
                            false,
                        )
                    }
                    _ => {
                        got_align = 4096;
                        (
                            black_box(valloc as unsafe extern "C" fn(usize) -> *mut c_void)(size),
                            "valloc",
                            false,
                        )
                    }
                }
            }
        };
        Got {
            p: p.cast(),
            size,
            align: got_align,
            zeroed,
            api,
        }
    }

    unsafe fn realloc(
        &self,
        b: &Blk,
        new_size: usize,
        variant: u64,
    ) -> Result<*mut u8, &'static str> {
        // SAFETY: the caller's guarantee.
        let q = unsafe {
            if variant % 4 == 3 {
                black_box(
                    libc::reallocarray
                        as unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void,
                )(b.ptr().cast(), 1, new_size)
            } else {
                black_box(libc::realloc as unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void)(
                    b.ptr().cast(),
                    new_size,
                )
            }
        };
        Ok(q.cast())
    }

    unsafe fn free(&self, b: &Blk) -> Result<(), &'static str> {
        // SAFETY: the caller's guarantee (a bad pointer aborts the process).
        unsafe { black_box(libc::free as unsafe extern "C" fn(*mut c_void))(b.ptr().cast()) };
        Ok(())
    }

    unsafe fn usable(&self, b: &Blk) -> Result<usize, &'static str> {
        // SAFETY: the caller's guarantee.
        Ok(unsafe {
            black_box(libc::malloc_usable_size as unsafe extern "C" fn(*mut c_void) -> usize)(
                b.ptr().cast(),
            )
        })
    }

    fn refusal(&self, rng: &mut Rng) -> Result<(), String> {
        let huge = HUGE[pick(rng, HUGE.len() as u64) as usize];
        set_errno(0);
        // SAFETY: every call below is a C allocation function; every pointer passed is
        // null or valid.
        unsafe {
            match pick(rng, 9) {
                0 => Self::null_enomem(libc::malloc(huge), "malloc", huge, 0),
                1 => {
                    Self::null_enomem(libc::calloc(usize::MAX / 2, 3), "calloc", usize::MAX / 2, 3)
                }
                2 => Self::null_enomem(libc::calloc(huge, 1), "calloc", huge, 1),
                3 => Self::null_enomem(
                    libc::realloc(ptr::null_mut(), huge),
                    "realloc(NULL)",
                    huge,
                    0,
                ),
                4 => Self::null_enomem(libc::memalign(64, huge), "memalign", 64, huge),
                5 | 6 => {
                    let bad = if pick(rng, 2) == 0 { 24 } else { 4 };
                    let size = if pick(rng, 2) == 0 { 8 } else { huge };
                    let mut out = 0x1234 as *mut c_void;
                    let rc = libc::posix_memalign(&mut out, bad, size);
                    if rc != libc::EINVAL || out as usize != 0x1234 || errno() != 0 {
                        return Err(format!(
                            "posix_memalign(align {bad}, {size:#x}) gave {rc} (out {out:p}, errno {}), not EINVAL with out and errno untouched",
                            errno()
                        ));
                    }
                    let rc = libc::posix_memalign(&mut out, 4096, huge);
                    if rc != libc::ENOMEM || out as usize != 0x1234 {
                        return Err(format!(
                            "posix_memalign(4096, {huge:#x}) gave {rc}, not ENOMEM"
                        ));
                    }
                    Ok(())
                }
                7 if self.strict => {
                    let p = libc::aligned_alloc(24, 64);
                    if !p.is_null() || errno() != libc::EINVAL {
                        return Err(format!(
                            "aligned_alloc(24, 64) gave {p:p} errno {}, not null and EINVAL",
                            errno()
                        ));
                    }
                    Ok(())
                }
                _ => {
                    libc::free(ptr::null_mut());
                    match libc::malloc_usable_size(ptr::null_mut()) {
                        0 => Ok(()),
                        n => Err(format!("malloc_usable_size(NULL) = {n}")),
                    }
                }
            }
        }
    }

    fn maintenance(&self, _variant: u64) {
        // SAFETY: no pointer.
        unsafe { libc::malloc_trim(0) };
    }
}
