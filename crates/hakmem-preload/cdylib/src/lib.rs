//! `libhakmem.so`: hakmem's C allocation functions under their C names, for
//! `LD_PRELOAD=target/release/libhakmem.so prog`.
//!
//! Each exported function is a one-line shell over the function of the same name in
//! `hakmem-preload`, which documents the semantics (and `docs/c-abi.md` the library).
//! The C++ operators (`_Znwm`, `_ZdlPvm`, ...) are in `cxx.rs`, over `hakmem_preload::cxx`.
//! Nothing here allocates, locks or panics.
//!
//! A constructor ([`hakmem_on_load`]) sets hakmem up as soon as the library is loaded,
//! before `main` and before the program starts threads; `pthread_create` is wrapped so
//! that each new thread is set up before the program's code runs on it (and hakmem's
//! thread-exit key can sit at the lowest pthread key index, with no sweep).

use core::ffi::{c_int, c_void};
use hakmem_preload as c;

mod cxx;

/// Runs when the library is loaded (under `LD_PRELOAD`: after libc's and the other
/// libraries' constructors, before the program's and `main`): one allocation sets up
/// the process (gates, fork handlers) and this thread (`hakmem_preload::on_load`).
///
/// Done here rather than at the program's first `malloc` so that process set-up stays
/// out of any lock the program may hold at its first allocation (a fork handler, an
/// `atexit` registration). The thread-exit key is one at the lowest free pthread key
/// index (one `pthread_key_create`): [`pthread_create`] arms each thread as it starts.
pub extern "C" fn hakmem_on_load() {
    c::on_load();
}

#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = hakmem_on_load;

// The marker `hakmem_wraps_pthread_create` that tells hakmem (`hakmem-tiny-fast` holds a
// weak reference to it, read at each thread's set-up, so from the process's first
// allocation whatever constructor makes it) that `pthread_create` below is there: every
// thread it starts is set up before the program's code runs on it, so the thread-exit
// key is one at the lowest pthread key index, with no sweep of the indices (docs/c-abi.md,
// "Thread exit and `pthread_create`"). A weak definition in
// assembly: with LTO it shares an object with the weak reference, whose binding it must
// match; it stays local to the library.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
core::arch::global_asm!(
    ".pushsection .rodata.hakmem_wraps_pthread_create,\"a\",%progbits",
    ".weak hakmem_wraps_pthread_create",
    ".type hakmem_wraps_pthread_create,%object",
    "hakmem_wraps_pthread_create:",
    ".byte 1",
    ".size hakmem_wraps_pthread_create, 1",
    ".popsection",
);

/// `pthread_create(3)`: glibc's creates the thread, which runs hakmem's set-up first,
/// then `start(arg)` (`hakmem_preload::pthread_create`).
///
/// # Safety
/// As glibc's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: c::StartRoutine,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::pthread_create(thread, attr, start, arg) }
}

/// `malloc(3)`.
///
/// # Safety
/// None beyond C's; `unsafe` as every C entry point.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    c::malloc(size)
}

/// `free(3)`.
///
/// # Safety
/// `p` is null or a live block from this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::free(p) }
}

/// `cfree(3)`: an old name of `free`.
///
/// # Safety
/// As [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::free(p) }
}

/// `calloc(3)`.
///
/// # Safety
/// None beyond C's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    c::calloc(n, size)
}

/// `realloc(3)`.
///
/// # Safety
/// `p` is null or a live block from this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::realloc(p, size) }
}

/// `reallocarray(3)`.
///
/// # Safety
/// As [`realloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::reallocarray(p, n, size) }
}

/// `posix_memalign(3)`.
///
/// # Safety
/// `out` is valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::posix_memalign(out, align, size) }
}

/// `aligned_alloc(3)`.
///
/// # Safety
/// None beyond C's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    c::aligned_alloc(align, size)
}

/// `memalign(3)`.
///
/// # Safety
/// None beyond C's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    c::memalign(align, size)
}

/// `valloc(3)`.
///
/// # Safety
/// None beyond C's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    c::valloc(size)
}

/// `pvalloc(3)`.
///
/// # Safety
/// None beyond C's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    c::pvalloc(size)
}

// glibc's own names of its allocation functions (`__libc_malloc`, ...): a program or
// library that calls them (an old-style malloc hook that forwards to them, a profiler, a
// runtime that wants "the real malloc") would otherwise get a block from glibc's heap and
// hand it to hakmem's `free`, which refuses it ("not allocated by hakmem") and stops the
// program; or free a block of hakmem's with glibc's `free`. Under these names too, every
// block is hakmem's (mimalloc, tcmalloc and jemalloc export them too). glibc's own
// internal calls do not go through them.

/// glibc's `__libc_malloc`: [`malloc`].
///
/// # Safety
/// As [`malloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    c::malloc(size)
}

/// glibc's `__libc_free`: [`free`].
///
/// # Safety
/// As [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::free(p) }
}

/// glibc's `__libc_calloc`: [`calloc`].
///
/// # Safety
/// As [`calloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
    c::calloc(n, size)
}

/// glibc's `__libc_realloc`: [`realloc`].
///
/// # Safety
/// As [`realloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::realloc(p, size) }
}

/// glibc's `__libc_memalign`: [`memalign`].
///
/// # Safety
/// As [`memalign`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    c::memalign(align, size)
}

/// glibc's `__libc_valloc`: [`valloc`].
///
/// # Safety
/// As [`valloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    c::valloc(size)
}

/// glibc's `__libc_pvalloc`: [`pvalloc`].
///
/// # Safety
/// As [`pvalloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    c::pvalloc(size)
}

/// `__posix_memalign`, an old glibc name of [`posix_memalign`].
///
/// # Safety
/// As [`posix_memalign`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __posix_memalign(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::posix_memalign(out, align, size) }
}

/// `malloc_usable_size(3)`.
///
/// # Safety
/// `p` is null or a live block from this allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::malloc_usable_size(p) }
}

/// `free_sized` (C23).
///
/// # Safety
/// As [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_sized(p: *mut c_void, size: usize) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::free_sized(p, size) }
}

/// `free_aligned_sized` (C23).
///
/// # Safety
/// As [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, align: usize, size: usize) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { c::free_aligned_sized(p, align, size) }
}

/// `malloc_trim(3)`.
///
/// # Safety
/// None beyond C's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_trim(pad: usize) -> c_int {
    c::malloc_trim(pad)
}

/// `malloc_stats(3)`: hakmem's statistics on standard error.
///
/// # Safety
/// None beyond C's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_stats() {
    c::malloc_stats()
}

/// `mallinfo2(3)`: hakmem's heap in glibc's fields (see `hakmem_preload::mallinfo2`).
///
/// # Safety
/// None beyond C's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mallinfo2() -> c::Mallinfo2 {
    c::mallinfo2()
}

/// `mallinfo(3)`: as `mallinfo2`, each field saturated at `INT_MAX`.
///
/// # Safety
/// None beyond C's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mallinfo() -> c::Mallinfo {
    c::mallinfo()
}
