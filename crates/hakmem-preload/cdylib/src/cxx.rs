//! The C++ allocation operators under their Itanium-ABI names (x86_64: `std::size_t` is
//! `unsigned long`, `m`), each a one-line shell over `hakmem_preload::cxx`, which
//! documents the semantics (libstdc++'s: the new-handler loop, then `std::bad_alloc`;
//! a program's own replacement operators are honoured).
//!
//! They are `extern "C-unwind"`: an `operator new` may throw (from the program's
//! new-handler, or from libstdc++'s operator that the failure is handed to), and the
//! exception must unwind through these frames to the program.

use core::ffi::c_void;
use hakmem_preload::cxx::{self, Op};

/// `_Znwm`: see [`Op::New`].
///
/// # Safety
/// None beyond C++'s (`unsafe` as every exported entry point).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _Znwm(size: usize) -> *mut c_void {
    cxx::new(Op::New, size, 0, 0)
}

/// `_Znam`: see [`Op::NewArray`].
///
/// # Safety
/// None beyond C++'s (`unsafe` as every exported entry point).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _Znam(size: usize) -> *mut c_void {
    cxx::new(Op::NewArray, size, 0, 0)
}

/// `_ZnwmRKSt9nothrow_t`: see [`Op::NewNothrow`].
///
/// # Safety
/// None beyond C++'s (`unsafe` as every exported entry point).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZnwmRKSt9nothrow_t(
    size: usize,
    tag: *const c_void,
) -> *mut c_void {
    cxx::new(Op::NewNothrow, size, tag as usize, 0)
}

/// `_ZnamRKSt9nothrow_t`: see [`Op::NewArrayNothrow`].
///
/// # Safety
/// None beyond C++'s (`unsafe` as every exported entry point).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZnamRKSt9nothrow_t(
    size: usize,
    tag: *const c_void,
) -> *mut c_void {
    cxx::new(Op::NewArrayNothrow, size, tag as usize, 0)
}

/// `_ZnwmSt11align_val_t`: see [`Op::NewAligned`].
///
/// # Safety
/// None beyond C++'s (`unsafe` as every exported entry point).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZnwmSt11align_val_t(size: usize, align: usize) -> *mut c_void {
    cxx::new(Op::NewAligned, size, align, 0)
}

/// `_ZnamSt11align_val_t`: see [`Op::NewArrayAligned`].
///
/// # Safety
/// None beyond C++'s (`unsafe` as every exported entry point).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZnamSt11align_val_t(size: usize, align: usize) -> *mut c_void {
    cxx::new(Op::NewArrayAligned, size, align, 0)
}

/// `_ZnwmSt11align_val_tRKSt9nothrow_t`: see [`Op::NewAlignedNothrow`].
///
/// # Safety
/// None beyond C++'s (`unsafe` as every exported entry point).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZnwmSt11align_val_tRKSt9nothrow_t(
    size: usize,
    align: usize,
    tag: *const c_void,
) -> *mut c_void {
    cxx::new(Op::NewAlignedNothrow, size, align, tag as usize)
}

/// `_ZnamSt11align_val_tRKSt9nothrow_t`: see [`Op::NewArrayAlignedNothrow`].
///
/// # Safety
/// None beyond C++'s (`unsafe` as every exported entry point).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZnamSt11align_val_tRKSt9nothrow_t(
    size: usize,
    align: usize,
    tag: *const c_void,
) -> *mut c_void {
    cxx::new(Op::NewArrayAlignedNothrow, size, align, tag as usize)
}

/// `_ZdlPv`: see [`Op::Delete`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdlPv(p: *mut c_void) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::Delete, p, 0, 0) }
}

/// `_ZdlPvRKSt9nothrow_t`: see [`Op::DeleteNothrow`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdlPvRKSt9nothrow_t(p: *mut c_void, tag: *const c_void) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteNothrow, p, tag as usize, 0) }
}

/// `_ZdlPvm`: see [`Op::DeleteSized`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdlPvm(p: *mut c_void, size: usize) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteSized, p, size, 0) }
}

/// `_ZdlPvSt11align_val_t`: see [`Op::DeleteAligned`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdlPvSt11align_val_t(p: *mut c_void, align: usize) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteAligned, p, align, 0) }
}

/// `_ZdlPvSt11align_val_tRKSt9nothrow_t`: see [`Op::DeleteAlignedNothrow`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdlPvSt11align_val_tRKSt9nothrow_t(
    p: *mut c_void,
    align: usize,
    tag: *const c_void,
) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteAlignedNothrow, p, align, tag as usize) }
}

/// `_ZdlPvmSt11align_val_t`: see [`Op::DeleteSizedAligned`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdlPvmSt11align_val_t(p: *mut c_void, size: usize, align: usize) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteSizedAligned, p, size, align) }
}

/// `_ZdaPv`: see [`Op::DeleteArray`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdaPv(p: *mut c_void) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteArray, p, 0, 0) }
}

/// `_ZdaPvRKSt9nothrow_t`: see [`Op::DeleteArrayNothrow`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdaPvRKSt9nothrow_t(p: *mut c_void, tag: *const c_void) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteArrayNothrow, p, tag as usize, 0) }
}

/// `_ZdaPvm`: see [`Op::DeleteArraySized`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdaPvm(p: *mut c_void, size: usize) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteArraySized, p, size, 0) }
}

/// `_ZdaPvSt11align_val_t`: see [`Op::DeleteArrayAligned`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdaPvSt11align_val_t(p: *mut c_void, align: usize) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteArrayAligned, p, align, 0) }
}

/// `_ZdaPvSt11align_val_tRKSt9nothrow_t`: see [`Op::DeleteArrayAlignedNothrow`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdaPvSt11align_val_tRKSt9nothrow_t(
    p: *mut c_void,
    align: usize,
    tag: *const c_void,
) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteArrayAlignedNothrow, p, align, tag as usize) }
}

/// `_ZdaPvmSt11align_val_t`: see [`Op::DeleteArraySizedAligned`].
///
/// # Safety
/// `p` is null or a live block from this allocator, which the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn _ZdaPvmSt11align_val_t(p: *mut c_void, size: usize, align: usize) {
    // SAFETY: the caller's guarantee, forwarded.
    unsafe { cxx::delete(Op::DeleteArraySizedAligned, p, size, align) }
}
