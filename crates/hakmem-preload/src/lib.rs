//! # hakmem-preload: the C ABI of hakmem (`malloc`, `free`, ...) for `LD_PRELOAD`
//!
//! **Owns** the C and glibc semantics of the allocation functions, on top of the facade's
//! pointer-only API ([`hakmem::raw`](hakmem_facade::raw)): `errno`, overflow checks, the
//! alignment rules of each function, `realloc(p, 0)`, and what happens to a pointer
//! hakmem never handed out (one line on stderr, then `abort()`).
//!
//! The shared object itself, `libhakmem.so`, is built by the small package
//! `hakmem-preload-so` (in `cdylib/` beside this crate: it only exports the functions
//! below under their C names, so that this crate keeps its own documentation and tests
//! without a library-name clash with the facade):
//!
//! ```text
//! cargo build --release -p hakmem-preload-so      # or: cargo build --release --workspace
//! LD_PRELOAD=target/release/libhakmem.so prog args...
//! ```
//!
//! **Entry points** (each inlined into the exported C function of the same name):
//! [`malloc`], [`free`], [`calloc`], [`realloc`], [`reallocarray`], [`posix_memalign`],
//! [`aligned_alloc`], [`memalign`], [`valloc`], [`pvalloc`], [`malloc_usable_size`],
//! [`free_sized`], [`free_aligned_sized`], [`malloc_trim`], [`malloc_stats`], [`mallinfo2`],
//! [`mallinfo`]; and the C++ operators
//! `new`/`delete` in every form, with libstdc++'s failure semantics ([`cxx`]); and
//! [`pthread_create`], a wrapper that starts each thread on a trampoline which sets the
//! thread's cache up before the program's start routine runs (so that hakmem's
//! thread-exit key can be one at the lowest pthread key index: no sweep of the indices). The shared object also runs a
//! constructor at load time that sets hakmem up ([`on_load`]: one allocation).
//! `docs/c-abi.md` describes the library
//! for its users: semantics, the TLS model, `dlopen`, measurements, limitations.
//!
//! **Tests**: `src/tests.rs` (these functions, in process); `tests/c_programs.rs` (C
//! programs of `tests/c/` under `LD_PRELOAD`: every function against glibc, threads,
//! fork, thread churn, start-up and exit, pthread keys, bad pointers, `dlopen`);
//! `tests/cxx_programs.rs` (the C++ operators: `tests/cxx/*.cpp`, against libstdc++'s
//! own); `tests/c_bench_smoke.rs` (the C-ABI bench's workloads, checksums against
//! glibc's); `tests/real_programs.rs` (python3, sqlite3, perl, git, gcc, compared with
//! glibc).
//!
//! **Invariants**
//! - Nothing here allocates through any allocator, takes a lock of its own or panics:
//!   these functions run before `main`, inside the dynamic loader, in constructors and
//!   destructors, in fork handlers and in exiting threads, where neither Rust's runtime
//!   nor a re-entrant `malloc` can be relied on. Messages are written with `write(2)`
//!   from a stack buffer, by the one printer (`hakmem_os_stats::writer`, through the
//!   facade's [`BadPointer::abort`](hakmem_facade::raw::BadPointer::abort)), in the
//!   facade's words.
//! - `errno` is set to `ENOMEM` exactly when a function fails for want of memory (or an
//!   overflowing size), to `EINVAL` where glibc does for a bad alignment, and is left
//!   alone otherwise (`posix_memalign` never touches it: it returns the error).
//! - A failed `realloc` or `reallocarray` leaves the old block intact.
//! - Every pointer given to `free`, `realloc` or `malloc_usable_size` is validated by the
//!   facade in O(1); a bad one never reaches the heap.
//!
//! The functions are safe to call from Rust too (this crate's tests do); as C functions
//! they are `unsafe` only where they take a pointer.

use core::ffi::{c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};
use hakmem_facade::raw::{self, BadPointer, MALLOC_ALIGN};

// ---------------------------------------------------------------------------------------
// errno and error reports.

/// The calling thread's `errno`.
#[inline]
fn errno() -> c_int {
    // SAFETY: `__errno_location` returns the calling thread's errno slot, valid for the
    // thread's lifetime; it neither allocates nor fails.
    unsafe { *libc::__errno_location() }
}

#[inline]
fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e };
}

/// Fail with `errno = ENOMEM`.
#[cold]
#[inline(never)]
fn enomem() -> *mut c_void {
    set_errno(libc::ENOMEM);
    ptr::null_mut()
}

/// Fail with `errno = EINVAL`.
#[cold]
#[inline(never)]
fn einval() -> *mut c_void {
    set_errno(libc::EINVAL);
    ptr::null_mut()
}

/// Report a pointer hakmem refused on stderr (one line, no allocation), then abort:
/// `hakmem: free(): invalid pointer 0x1234 (not allocated by hakmem)`. The wording and the
/// printing are the facade's ([`BadPointer::abort`]), so the Rust and C APIs say the same.
#[cold]
#[inline(never)]
fn bad_pointer(func: &str, p: *mut c_void, why: BadPointer) -> ! {
    why.abort(func, p.cast_const().cast())
}

/// The page size (from `sysconf`, once; 4096 if it fails).
fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions and does not allocate.
    let r = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if r > 0 && (r as usize).is_power_of_two() {
        r as usize
    } else {
        4096
    };
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// An aligned allocation (`align` a power of two); `ENOMEM` on failure. Keeps `errno` on
/// success.
#[inline]
fn aligned_or_enomem(align: usize, size: usize) -> *mut c_void {
    if align <= MALLOC_ALIGN {
        return malloc(size);
    }
    // Sizes whose padding to `align` overflows cannot succeed (as glibc's check).
    match size.checked_add(align) {
        Some(total) if total <= isize::MAX as usize => {}
        _ => return enomem(),
    }
    // `max(1)`: a zero-size request with a large alignment would otherwise get a pointer
    // one past the end of its mapping from the large box (see docs/c-abi.md).
    let p = raw::aligned(align, size.max(1));
    if p.is_null() { enomem() } else { p.cast() }
}

// ---------------------------------------------------------------------------------------
// The C functions.

/// `malloc(size)`: 16-byte aligned, `size` bytes or more; `malloc(0)` returns a unique
/// pointer. Null with `errno = ENOMEM` when out of memory.
#[inline(always)]
pub fn malloc(size: usize) -> *mut c_void {
    let p = raw::try_malloc_fast(size);
    if !p.is_null() {
        return p.cast();
    }
    malloc_cold(size)
}

/// [`malloc`] past its hit path (a tail call: the hit path needs no stack frame).
/// `extern "C"` so that calling it cannot unwind: the caller then needs no landing pad
/// (nor the stack frame that comes with one).
#[cold]
#[inline(never)]
extern "C" fn malloc_cold(size: usize) -> *mut c_void {
    let p = raw::malloc(size);
    if p.is_null() { enomem() } else { p.cast() }
}

/// `free(p)`: null does nothing; a pointer hakmem never handed out (or no longer live, as
/// far as the O(1) check can tell) is reported on stderr and the process aborts.
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[inline(always)]
pub unsafe fn free(p: *mut c_void) {
    // SAFETY: forwarded caller guarantee; a bad pointer is refused without touching the
    // heap.
    if unsafe { !raw::try_free_fast(p.cast()) } {
        // SAFETY: as above.
        unsafe { free_cold(p) }
    }
}

/// [`free`] past its hit path: null, a large block, a bad pointer (a tail call;
/// `extern "C"` as [`malloc_cold`]).
///
/// # Safety
/// As [`free`].
#[cold]
#[inline(never)]
unsafe extern "C" fn free_cold(p: *mut c_void) {
    // SAFETY: forwarded caller guarantee; a bad pointer is refused without touching the
    // heap.
    if let Err(why) = unsafe { raw::free(p.cast()) } {
        bad_pointer("free", p, why);
    }
}

/// `calloc(n, size)`: `n * size` zeroed bytes; null with `errno = ENOMEM` when the
/// product overflows or memory runs out.
#[inline]
pub fn calloc(n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) if total <= isize::MAX as usize => {
            let p = raw::calloc(n, size);
            if p.is_null() { enomem() } else { p.cast() }
        }
        _ => enomem(),
    }
}

/// `realloc(p, size)`, as glibc: `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)`
/// frees `p` and returns null (`errno` untouched); otherwise the contents up to the
/// smaller size are kept, and on failure null is returned with `errno = ENOMEM` and `p`
/// left intact. A bad `p` is reported and the process aborts.
///
/// # Safety
/// `p` is null or a live block from this allocator; on success the caller gives it up.
#[inline]
pub unsafe fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        return malloc(size);
    }
    if size == 0 {
        // SAFETY: forwarded caller guarantee.
        unsafe { free(p) };
        return ptr::null_mut();
    }
    if size > isize::MAX as usize {
        // Validate `p` first, so a bad pointer is reported whatever the size.
        if let Err(why) = usable_size_checked(p) {
            bad_pointer("realloc", p, why);
        }
        return enomem();
    }
    let saved = errno();
    // SAFETY: forwarded caller guarantee; a bad pointer is refused untouched.
    match unsafe { raw::realloc(p.cast(), size) } {
        Ok(q) if q.is_null() => enomem(),
        Ok(q) => {
            // A resize may have tried (and fallen back from) a syscall that set errno.
            set_errno(saved);
            q.cast()
        }
        Err(why) => bad_pointer("realloc", p, why),
    }
}

/// `reallocarray(p, n, size)`: `realloc(p, n * size)`, except that an overflowing product
/// fails with `errno = ENOMEM` and leaves `p` intact.
///
/// # Safety
/// As [`realloc`].
#[inline]
pub unsafe fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: forwarded caller guarantee.
        Some(total) => unsafe { realloc(p, total) },
        None => enomem(),
    }
}

/// `posix_memalign(out, align, size)`: 0 and `*out` set on success; `EINVAL` when
/// `align` is not a power of two multiple of `sizeof(void *)`; `ENOMEM` when out of
/// memory. `*out` is written only on success and `errno` is never changed.
///
/// # Safety
/// `out` is valid for a write of one pointer.
#[inline]
pub unsafe fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    let saved = errno();
    let p = aligned_or_enomem(align, size);
    set_errno(saved);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller guarantees `out` is writable.
    unsafe { out.write(p) };
    0
}

/// `aligned_alloc(align, size)`, as glibc 2.38 and later: null with `errno = EINVAL`
/// unless `align` is a power of two; any `size` is accepted (C17, DR 460).
#[inline]
pub fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        return einval();
    }
    aligned_or_enomem(align, size)
}

/// `memalign(align, size)`, as glibc: an alignment that is not a power of two is rounded
/// up to the next one; null with `errno = EINVAL` above `SIZE_MAX / 2 + 1`.
#[inline]
pub fn memalign(align: usize, size: usize) -> *mut c_void {
    match align.checked_next_power_of_two() {
        Some(a) => aligned_or_enomem(a, size),
        None => einval(),
    }
}

/// `valloc(size)`: page-aligned.
#[inline]
pub fn valloc(size: usize) -> *mut c_void {
    aligned_or_enomem(page_size(), size)
}

/// `pvalloc(size)`: page-aligned, the size rounded up to whole pages (one page for 0);
/// null with `errno = ENOMEM` when the rounding overflows.
#[inline]
pub fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    match size.max(1).checked_add(page - 1) {
        Some(s) => aligned_or_enomem(page, s & !(page - 1)),
        None => enomem(),
    }
}

/// `malloc_usable_size(p)`: the bytes usable at `p` (at least what was asked for, all
/// writable); 0 for null. A bad `p` is reported and the process aborts.
///
/// # Safety
/// `p` is null or a live block from this allocator.
#[inline]
pub unsafe fn malloc_usable_size(p: *mut c_void) -> usize {
    match usable_size_checked(p) {
        Ok(n) => n,
        Err(why) => bad_pointer("malloc_usable_size", p, why),
    }
}

/// `free_sized(p, size)` (C23): `free(p)`; the size is not needed.
///
/// # Safety
/// As [`free`].
#[inline]
pub unsafe fn free_sized(p: *mut c_void, _size: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free(p) }
}

/// `free_aligned_sized(p, align, size)` (C23): `free(p)`.
///
/// # Safety
/// As [`free`].
#[inline]
pub unsafe fn free_aligned_sized(p: *mut c_void, _align: usize, _size: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free(p) }
}

/// `malloc_trim(pad)`: `hakmem::trim_report()`: give the calling thread's cached blocks
/// back, ask every other thread to give its own back at its next slow path, every cached
/// empty region to the OS, and decommit every empty slab; 1 if memory went back to the
/// OS (address space unmapped or an empty slab decommitted: glibc returns 1 when it
/// unmapped or advised pages away), else 0. `pad` is ignored.
#[inline]
pub fn malloc_trim(_pad: usize) -> c_int {
    let t = hakmem_facade::trim_report();
    c_int::from(t.unmapped_bytes > 0 || t.decommitted_slabs > 0)
}

/// `malloc_stats()`: glibc's name for printing the allocator's statistics on standard
/// error; here `hakmem::print_stats()` (the counters of `hakmem::stats()`, then one line
/// per size class in use), every line beginning `hakmem: `. Allocates nothing.
#[inline]
pub fn malloc_stats() {
    hakmem_facade::print_stats();
}

/// glibc's `struct mallinfo2` (`<malloc.h>`, glibc 2.33): `size_t` fields.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mallinfo2 {
    /// Bytes of the heap's blocks, in use and free (`uordblks + fordblks`).
    pub arena: usize,
    /// Free blocks held centrally (glibc: free chunks).
    pub ordblks: usize,
    /// Free blocks in threads' caches (glibc: fastbin blocks).
    pub smblks: usize,
    /// Live large blocks, each its own mapping (glibc: mmapped regions).
    pub hblks: usize,
    /// Bytes asked for by the live large blocks (glibc: space in mmapped regions).
    pub hblkhd: usize,
    /// Always 0 (as glibc).
    pub usmblks: usize,
    /// Bytes of the free blocks in threads' caches (glibc: space in freed fastbin
    /// blocks; part of `fordblks`).
    pub fsmblks: usize,
    /// Bytes of the slab blocks the program holds (glibc: total allocated space, outside
    /// mmapped regions).
    pub uordblks: usize,
    /// Bytes of free slab blocks, central and cached by threads (glibc: total free space).
    pub fordblks: usize,
    /// Bytes of empty memory kept for reuse that `malloc_trim` gives back (glibc:
    /// releasable top-most space).
    pub keepcost: usize,
}

/// glibc's deprecated `struct mallinfo`: the same fields as [`Mallinfo2`] as C `int`s.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mallinfo {
    /// As [`Mallinfo2::arena`].
    pub arena: c_int,
    /// As [`Mallinfo2::ordblks`].
    pub ordblks: c_int,
    /// As [`Mallinfo2::smblks`].
    pub smblks: c_int,
    /// As [`Mallinfo2::hblks`].
    pub hblks: c_int,
    /// As [`Mallinfo2::hblkhd`].
    pub hblkhd: c_int,
    /// As [`Mallinfo2::usmblks`].
    pub usmblks: c_int,
    /// As [`Mallinfo2::fsmblks`].
    pub fsmblks: c_int,
    /// As [`Mallinfo2::uordblks`].
    pub uordblks: c_int,
    /// As [`Mallinfo2::fordblks`].
    pub fordblks: c_int,
    /// As [`Mallinfo2::keepcost`].
    pub keepcost: c_int,
}

/// `mallinfo2()`: hakmem's heap in glibc's fields ([`Mallinfo2`], from
/// `hakmem::heap_info()`): slab blocks are glibc's arena chunks, large blocks its mmapped
/// regions, thread caches its fastbins. Allocates nothing; reads no file.
pub fn mallinfo2() -> Mallinfo2 {
    let h = hakmem_facade::heap_info();
    let z = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    let free = h.central_free_bytes.saturating_add(h.thread_cached_bytes);
    Mallinfo2 {
        arena: z(h.slab_in_use_bytes.saturating_add(free)),
        ordblks: z(h.central_free_blocks),
        smblks: z(h.thread_cached_blocks),
        hblks: z(h.large_blocks),
        hblkhd: z(h.large_bytes),
        usmblks: 0,
        fsmblks: z(h.thread_cached_bytes),
        uordblks: z(h.slab_in_use_bytes),
        fordblks: z(free),
        keepcost: z(h.cached_bytes),
    }
}

/// `mallinfo()`: [`mallinfo2`] with each field saturated at `INT_MAX` (glibc truncates
/// them to `int`, so a heap past 2 GiB reads as garbage there; here as `INT_MAX`).
pub fn mallinfo() -> Mallinfo {
    let m = mallinfo2();
    let i = |v: usize| c_int::try_from(v).unwrap_or(c_int::MAX);
    Mallinfo {
        arena: i(m.arena),
        ordblks: i(m.ordblks),
        smblks: i(m.smblks),
        hblks: i(m.hblks),
        hblkhd: i(m.hblkhd),
        usmblks: i(m.usmblks),
        fsmblks: i(m.fsmblks),
        uordblks: i(m.uordblks),
        fordblks: i(m.fordblks),
        keepcost: i(m.keepcost),
    }
}

/// `raw::usable_size` for a C pointer: validated (null gives 0) before any of its memory
/// is read.
#[inline]
fn usable_size_checked(p: *mut c_void) -> Result<usize, BadPointer> {
    // SAFETY: the facade validates `p` in O(1) and reads only hakmem's own memory for a
    // pointer it refuses.
    unsafe { raw::usable_size(p.cast()) }
}

// ---------------------------------------------------------------------------------------
// Start-up and thread creation.

/// What `libhakmem.so`'s constructor runs when the library is loaded: set the process
/// and the loading thread up with one allocation (gates read, fork handlers registered,
/// this thread's cache armed; in the library, whose marker symbol
/// `hakmem_wraps_pthread_create` says that [`pthread_create`] arms every thread as it
/// starts, on a thread-exit key at the lowest free index: one `pthread_key_create`).
pub fn on_load() {
    // SAFETY: a block this allocator just returned, freed once.
    unsafe { free(malloc(1)) };
}

/// A thread's start routine. `C-unwind`: glibc's `pthread_exit` and cancellation unwind
/// out of it (a forced unwind) through `thread_trampoline`.
pub type StartRoutine = unsafe extern "C-unwind" fn(*mut c_void) -> *mut c_void;

/// `pthread_create`'s signature.
type PthreadCreate = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    StartRoutine,
    *mut c_void,
) -> c_int;

/// The next definition of `pthread_create` (glibc's).
static NEXT_PTHREAD_CREATE: cxx::Lazy = cxx::Lazy::new();

/// What [`thread_trampoline`] gets: the program's start routine and its argument, in a
/// block of this allocator that the new thread frees.
#[repr(C)]
struct ThreadStart {
    start: StartRoutine,
    arg: *mut c_void,
}

/// The first code of every thread made by [`pthread_create`]: set the thread up
/// (`raw::thread_start`: its cache armed on the exit key before any code of the
/// program's runs on it), then run the program's start routine and return its result.
/// No value here has a destructor, so a forced unwind (`pthread_exit`, cancellation)
/// passes through the frame.
unsafe extern "C-unwind" fn thread_trampoline(p: *mut c_void) -> *mut c_void {
    raw::thread_start();
    // SAFETY: `p` is the `ThreadStart` block `pthread_create` made for this thread, read
    // once and freed here (this thread is its only user).
    let ThreadStart { start, arg } = unsafe { p.cast::<ThreadStart>().read() };
    // SAFETY: a live block of this allocator, freed once.
    unsafe { free(p) };
    // SAFETY: the program's start routine with its argument, as glibc would call it.
    unsafe { start(arg) }
}

/// `pthread_create(3)`, wrapped by `libhakmem.so` (as sanitizers and profilers wrap it):
/// the new thread starts on `thread_trampoline`, which sets its cache up before the
/// program's start routine runs, then runs it (same argument, same result for
/// `pthread_join`). So every thread the program starts is armed from its first
/// instruction, and hakmem's thread-exit key can sit at the lowest free pthread key index
/// (one `pthread_key_create` per process, instead of the 1,024 of finding the highest:
/// `hakmem_ss_allocation::bins::ExitKey`, "Low key"). The thread is created by the next
/// definition (glibc's, found once with `dlsym(RTLD_NEXT)`) with the caller's `thread`
/// and `attr`. Without memory for the 16-byte start block, the thread is created as is
/// (its cache is then armed at its first allocation, as a thread glibc starts itself).
/// Aborts with one line if there is no next definition (a process without
/// `pthread_create` cannot have called it).
///
/// # Safety
/// As glibc's `pthread_create`.
pub unsafe fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: StartRoutine,
    arg: *mut c_void,
) -> c_int {
    let Some(f) = NEXT_PTHREAD_CREATE.get(libc::RTLD_NEXT, c"pthread_create") else {
        hakmem_os_stats::report::fatal_args(format_args!(
            "pthread_create: no next definition (glibc's) in the process"
        ));
    };
    // SAFETY: `f` is the next `pthread_create` of the process, which has this signature.
    let next = unsafe { core::mem::transmute::<usize, PthreadCreate>(f) };
    let s = malloc(core::mem::size_of::<ThreadStart>()).cast::<ThreadStart>();
    if s.is_null() {
        // SAFETY: the caller's arguments, forwarded unchanged.
        return unsafe { next(thread, attr, start, arg) };
    }
    // SAFETY: a fresh block of `size_of::<ThreadStart>()` bytes, aligned to 16.
    unsafe { s.write(ThreadStart { start, arg }) };
    // SAFETY: the caller's `thread` and `attr`; the trampoline takes over `s`.
    let r = unsafe { next(thread, attr, thread_trampoline, s.cast()) };
    if r != 0 {
        // No thread: the block is still ours.
        // SAFETY: the block allocated above, never handed to a thread.
        unsafe { free(s.cast()) };
    }
    r
}

pub mod cxx;

#[cfg(test)]
mod tests;
