//! The C++ allocation operators (`operator new`, `operator delete` and their array,
//! `nothrow`, aligned and sized forms) over the C functions of this crate, with
//! libstdc++'s failure semantics. `libhakmem.so` exports them under their mangled names
//! (`_Znwm`, `_ZdlPvm`, `_ZnwmSt11align_val_t`, ...: `cdylib/src/cxx.rs`), as mimalloc,
//! jemalloc and tcmalloc do, so that C++ programs reach hakmem without the extra call
//! through libstdc++'s operators, and sized `delete` can hand its size to
//! [`free_sized`](crate::free_sized).
//!
//! **Failure, as libstdc++** (GCC 12, `new_op.cc`, `new_opa.cc`, `new_opnt.cc`): a
//! throwing `operator new` that gets no memory calls the installed new-handler
//! (`std::get_new_handler()`) and tries again, for as long as there is a handler; with
//! none it throws `std::bad_alloc`. Rust cannot throw a C++ exception and the library
//! must not link libstdc++, so both are taken from the process at run time with `dlsym`,
//! only on that cold path:
//! - the handler from `std::get_new_handler` (`_ZSt15get_new_handlerv`, looked up in the
//!   whole process); a handler may throw (`bad_alloc` or anything else): the exception
//!   unwinds through these functions (they are `extern "C-unwind"` in the library, and
//!   the release profile unwinds), as it would through libstdc++'s;
//! - with no handler, the failure is handed to the **next definition** of the same
//!   operator (`dlsym(RTLD_NEXT, "_Znwm")`: libstdc++'s), which tries `malloc` once more
//!   (hakmem's, through the PLT) and throws `std::bad_alloc` itself.
//!
//! The `nothrow` forms hand any failure to libstdc++'s `nothrow` operator, which calls
//! the throwing one (hakmem's, through the PLT) inside `try { } catch (...)` and returns
//! null: so a new-handler is called there too, and one that throws makes the `nothrow`
//! operator return null, exactly as with libstdc++ alone. An alignment that is not a
//! power of two makes the aligned operators fail the same way (libstdc++ throws
//! `bad_alloc`; PR 86878). With no libstdc++ in the process (a C program calling these
//! symbols by hand) the throwing forms print one line and abort, the `nothrow` forms
//! return null.
//!
//! **Deallocation**: every `operator delete` is `free` (null does nothing, a pointer
//! hakmem never handed out is reported and aborts, as for `free`); the sized forms call
//! [`free_sized`](crate::free_sized) and [`free_aligned_sized`](crate::free_aligned_sized)
//! with the size the compiler passes. A size that does not match the allocation is
//! undefined behaviour in C++; hakmem finds the block from its address all the same (see
//! `free_sized` for what it checks), so the block is freed or the program is stopped
//! with a report, never a corrupted heap (`tests/cxx/sized_mismatch.cpp`).
//!
//! **A program that replaces some operators** (C++ allows replacing any of them, and
//! many programs replace only `operator new(std::size_t)` and `operator delete(void*)`):
//! with libstdc++ alone, the forms it does not replace (`new[]`, `nothrow`, and the sized
//! `delete` that g++ emits for every `delete obj` since C++14) call the replaced ones.
//! Under `LD_PRELOAD` the program's definitions come first, so its replacements are
//! used, but hakmem's exports would serve the other forms and hand the program's blocks
//! to `free` (an abort, or worse with another allocator: mimalloc 2.0.9's library leaks
//! them). So on its first call, any of these operators checks once (with `dlsym` and
//! `dladdr`) whether every operator symbol of the process is hakmem's; if one is not,
//! every operator of hakmem hands its call to the next definition (libstdc++'s), which
//! reaches the program's replacements as without hakmem (`tests/cxx/replaced.cpp`). The
//! check costs one load and a predictable branch per call afterwards.
//!
//! Nothing here allocates, locks or panics; the `dlsym` lookups happen once (the
//! replacement check) and when an allocation has already failed, and are cached.

use core::ffi::{CStr, c_char, c_void};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// One of the 20 operators: its index in [`NAMES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// `operator new(std::size_t)`: `_Znwm`.
    New,
    /// `operator new[](std::size_t)`: `_Znam`.
    NewArray,
    /// `operator new(std::size_t, const std::nothrow_t&)`.
    NewNothrow,
    /// `operator new[](std::size_t, const std::nothrow_t&)`.
    NewArrayNothrow,
    /// `operator new(std::size_t, std::align_val_t)`.
    NewAligned,
    /// `operator new[](std::size_t, std::align_val_t)`.
    NewArrayAligned,
    /// `operator new(std::size_t, std::align_val_t, const std::nothrow_t&)`.
    NewAlignedNothrow,
    /// `operator new[](std::size_t, std::align_val_t, const std::nothrow_t&)`.
    NewArrayAlignedNothrow,
    /// `operator delete(void*)`: `_ZdlPv`.
    Delete,
    /// `operator delete[](void*)`.
    DeleteArray,
    /// `operator delete(void*, const std::nothrow_t&)`.
    DeleteNothrow,
    /// `operator delete[](void*, const std::nothrow_t&)`.
    DeleteArrayNothrow,
    /// `operator delete(void*, std::size_t)`: `_ZdlPvm`.
    DeleteSized,
    /// `operator delete[](void*, std::size_t)`.
    DeleteArraySized,
    /// `operator delete(void*, std::align_val_t)`.
    DeleteAligned,
    /// `operator delete[](void*, std::align_val_t)`.
    DeleteArrayAligned,
    /// `operator delete(void*, std::align_val_t, const std::nothrow_t&)`.
    DeleteAlignedNothrow,
    /// `operator delete[](void*, std::align_val_t, const std::nothrow_t&)`.
    DeleteArrayAlignedNothrow,
    /// `operator delete(void*, std::size_t, std::align_val_t)`.
    DeleteSizedAligned,
    /// `operator delete[](void*, std::size_t, std::align_val_t)`.
    DeleteArraySizedAligned,
}

/// The mangled name of every [`Op`], in order (what `libhakmem.so` exports).
pub const NAMES: [&CStr; 20] = [
    c"_Znwm",
    c"_Znam",
    c"_ZnwmRKSt9nothrow_t",
    c"_ZnamRKSt9nothrow_t",
    c"_ZnwmSt11align_val_t",
    c"_ZnamSt11align_val_t",
    c"_ZnwmSt11align_val_tRKSt9nothrow_t",
    c"_ZnamSt11align_val_tRKSt9nothrow_t",
    c"_ZdlPv",
    c"_ZdaPv",
    c"_ZdlPvRKSt9nothrow_t",
    c"_ZdaPvRKSt9nothrow_t",
    c"_ZdlPvm",
    c"_ZdaPvm",
    c"_ZdlPvSt11align_val_t",
    c"_ZdaPvSt11align_val_t",
    c"_ZdlPvSt11align_val_tRKSt9nothrow_t",
    c"_ZdaPvSt11align_val_tRKSt9nothrow_t",
    c"_ZdlPvmSt11align_val_t",
    c"_ZdaPvmSt11align_val_t",
];

impl Op {
    fn aligned(self) -> bool {
        matches!(
            self,
            Op::NewAligned
                | Op::NewArrayAligned
                | Op::NewAlignedNothrow
                | Op::NewArrayAlignedNothrow
        )
    }

    fn nothrow(self) -> bool {
        matches!(
            self,
            Op::NewNothrow
                | Op::NewArrayNothrow
                | Op::NewAlignedNothrow
                | Op::NewArrayAlignedNothrow
        )
    }
}

/// `std::new_handler`: `void (*)()`, which may throw.
type NewHandler = unsafe extern "C-unwind" fn();
/// `std::new_handler std::get_new_handler() noexcept`.
type GetNewHandler = unsafe extern "C" fn() -> Option<NewHandler>;
/// Any `operator new`, called with its arguments in order (size, then the alignment
/// and/or the `nothrow_t` address; arguments a form does not take are ignored by it, as
/// any extra integer register argument on x86_64).
type NewFn = unsafe extern "C-unwind" fn(usize, usize, usize) -> *mut c_void;
/// Any `operator delete`, likewise (pointer, then size / alignment / tag).
type DeleteFn = unsafe extern "C-unwind" fn(*mut c_void, usize, usize);

/// Where the `dlsym` lookups of a symbol stand: 0 not yet, 1 absent, else its address.
pub(crate) struct Lazy(AtomicUsize);

impl Lazy {
    pub(crate) const fn new() -> Lazy {
        Lazy(AtomicUsize::new(0))
    }

    /// The address of `name` in `handle` (cached; a racing first lookup only repeats the
    /// same `dlsym`).
    #[cold]
    pub(crate) fn get(&self, handle: *mut c_void, name: &CStr) -> Option<usize> {
        let a = self.0.load(Ordering::Acquire);
        if a != 0 {
            return (a > 1).then_some(a);
        }
        // SAFETY: `name` is NUL-terminated; RTLD_NEXT / RTLD_DEFAULT are pseudo-handles.
        // (On a missing symbol glibc may allocate its error message: through hakmem's
        // malloc, which is re-entrant here since no hakmem lock is held.)
        let p = unsafe { libc::dlsym(handle, name.as_ptr().cast::<c_char>()) };
        let v = if p.is_null() { 1 } else { p as usize };
        self.0.store(v, Ordering::Release);
        (v > 1).then_some(v)
    }
}

static GET_NEW_HANDLER: Lazy = Lazy::new();
/// The next definition (libstdc++'s) of each operator.
static NEXT: [Lazy; 20] = [const { Lazy::new() }; 20];

/// The next definition of `op` (libstdc++'s), if the process has one.
fn next(op: Op) -> Option<usize> {
    NEXT[op as usize].get(libc::RTLD_NEXT, NAMES[op as usize])
}

/// The installed new-handler (`std::get_new_handler()`), if libstdc++ is in the process.
fn new_handler() -> Option<NewHandler> {
    let f = GET_NEW_HANDLER.get(libc::RTLD_DEFAULT, c"_ZSt15get_new_handlerv")?;
    // SAFETY: `_ZSt15get_new_handlerv` is `std::new_handler std::get_new_handler()
    // noexcept`: no argument, returns a function pointer or null (`Option<fn>` has the
    // same representation).
    unsafe { core::mem::transmute::<usize, GetNewHandler>(f)() }
}

/// Whether hakmem's operators hand every call to the next definition: 0 not checked
/// yet, 1 no (hakmem serves them), 2 yes (the program replaced one of them).
static FORWARD: AtomicU8 = AtomicU8::new(0);

/// Whether the operators must hand their calls to libstdc++'s (see the module
/// documentation); checked once.
#[inline(always)]
fn forwarding() -> bool {
    match FORWARD.load(Ordering::Relaxed) {
        1 => false,
        0 => check_replaced(),
        _ => true,
    }
}

/// The shared object `addr` lies in (its load address), if any.
fn object_of(addr: usize) -> Option<usize> {
    // SAFETY: an all-zero `Dl_info` is valid (null pointers); dladdr only writes it.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: `info` is writable; `addr` is only compared against the loaded objects.
    let found = unsafe { libc::dladdr(addr as *const c_void, &mut info) };
    (found != 0).then_some(info.dli_fbase as usize)
}

/// Whether any operator symbol of the process is defined outside this object (the
/// program replaced it); records the answer.
#[cold]
#[inline(never)]
fn check_replaced() -> bool {
    let ours = object_of(check_replaced as fn() -> bool as usize);
    let replaced = NAMES.iter().any(|name| {
        // SAFETY: as in `Lazy::get`.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr().cast::<c_char>()) };
        // A symbol nobody defines, or one that resolves to this object, is not replaced
        // (in this crate's own tests the operators are not exported at all).
        !p.is_null() && ours.is_some() && object_of(p as usize) != ours
            // Only objects before this one in the search order count: libstdc++'s own
            // definitions are found only when this object does not export the symbol.
            && next(op_of(name)).is_none_or(|n| n != p as usize)
    });
    // Forward only where there is something to forward to: a program linked with
    // `-static-libstdc++` defines the operators itself, and hakmem serves the rest.
    let replaced = replaced && next(Op::New).is_some();
    FORWARD.store(if replaced { 2 } else { 1 }, Ordering::Relaxed);
    replaced
}

/// The [`Op`] named `name` (one of [`NAMES`]).
fn op_of(name: &CStr) -> Op {
    const OPS: [Op; 20] = [
        Op::New,
        Op::NewArray,
        Op::NewNothrow,
        Op::NewArrayNothrow,
        Op::NewAligned,
        Op::NewArrayAligned,
        Op::NewAlignedNothrow,
        Op::NewArrayAlignedNothrow,
        Op::Delete,
        Op::DeleteArray,
        Op::DeleteNothrow,
        Op::DeleteArrayNothrow,
        Op::DeleteSized,
        Op::DeleteArraySized,
        Op::DeleteAligned,
        Op::DeleteArrayAligned,
        Op::DeleteAlignedNothrow,
        Op::DeleteArrayAlignedNothrow,
        Op::DeleteSizedAligned,
        Op::DeleteArraySizedAligned,
    ];
    let i = NAMES.iter().position(|n| *n == name).unwrap_or(0);
    OPS[i]
}

/// Hand an `operator new` call to the next definition of `op` (libstdc++'s): it
/// allocates through hakmem's `malloc` or the program's replacement, runs the
/// new-handler loop, throws `std::bad_alloc` or (`nothrow`) returns null. Without
/// libstdc++, a `nothrow` form returns null and a throwing one aborts with a report.
#[cold]
#[inline(never)]
fn new_next(op: Op, size: usize, a1: usize, a2: usize) -> *mut c_void {
    let Some(f) = next(op) else {
        if op.nothrow() {
            return core::ptr::null_mut();
        }
        hakmem_os_stats::report::fatal_args(format_args!(
            "{}: out of memory, and no libstdc++ in the process to throw std::bad_alloc",
            NAMES[op as usize].to_str().unwrap_or("operator new")
        ))
    };
    // SAFETY: the next definition of the same operator, called with the arguments this
    // one received (see `NewFn`); it may throw, which unwinds through this frame.
    unsafe { core::mem::transmute::<usize, NewFn>(f)(size, a1, a2) }
}

/// [`new`] when the program replaced an operator: the next definition serves the call
/// (a libstdc++ too old to have this form: hakmem does).
#[cold]
#[inline(never)]
fn new_forward(op: Op, size: usize, a1: usize, a2: usize) -> *mut c_void {
    if next(op).is_some() {
        return new_next(op, size, a1, a2);
    }
    let p = alloc(size, if op.aligned() { a1 } else { 0 });
    if p.is_null() {
        return new_failed(op, size, a1, a2);
    }
    p
}

/// An allocation: `malloc(size)`, or `aligned_alloc(align, size)` when `align` is not 0.
#[inline(always)]
fn alloc(size: usize, align: usize) -> *mut c_void {
    if align == 0 {
        crate::malloc(size)
    } else {
        crate::aligned_alloc(align, size)
    }
}

/// The failure path of an `operator new`: for the throwing forms, call the new-handler
/// and retry while there is one (a handler may throw: the exception unwinds through
/// here); then hand over to the next definition, which throws `std::bad_alloc` (or, for
/// `nothrow`, runs the same loop inside `try`/`catch` and returns null).
#[cold]
#[inline(never)]
fn new_failed(op: Op, size: usize, a1: usize, a2: usize) -> *mut c_void {
    let align = if op.aligned() { a1 } else { 0 };
    if !op.nothrow() && (align == 0 || align.is_power_of_two()) {
        while let Some(h) = new_handler() {
            // SAFETY: the program's new-handler, called as libstdc++ calls it.
            unsafe { h() };
            let p = alloc(size, align);
            if !p.is_null() {
                return p;
            }
        }
    }
    new_next(op, size, a1, a2)
}

/// Every `operator new` (`op` one of the `New*`): `size` bytes, aligned to `a1` for the
/// aligned forms; `a1` / `a2` are the arguments after the size as the C++ signature has
/// them (alignment, `nothrow_t` address, or unused). Never null for the throwing forms
/// (the new-handler loop, then `std::bad_alloc`); null on failure for `nothrow`. An
/// alignment that is not a power of two fails (as libstdc++: `std::bad_alloc`).
#[inline(always)]
pub fn new(op: Op, size: usize, a1: usize, a2: usize) -> *mut c_void {
    if forwarding() {
        return new_forward(op, size, a1, a2);
    }
    let p = alloc(size, if op.aligned() { a1 } else { 0 });
    if p.is_null() {
        return new_failed(op, size, a1, a2);
    }
    p
}

/// Every `operator delete` (`op` one of the `Delete*`); `a1` / `a2` are the arguments
/// after the pointer as the C++ signature has them (size, alignment, `nothrow_t`
/// address, or unused). The sized forms call [`free_sized`](crate::free_sized) /
/// [`free_aligned_sized`](crate::free_aligned_sized), the others [`free`](crate::free).
///
/// # Safety
/// As [`free`](crate::free); for the sized forms `a1` is the size asked of `operator
/// new` (C++ makes any other size undefined behaviour; see the module documentation).
#[inline(always)]
pub unsafe fn delete(op: Op, p: *mut c_void, a1: usize, a2: usize) {
    if forwarding() {
        return delete_next(op, p, a1, a2);
    }
    match op {
        Op::DeleteSized | Op::DeleteArraySized => {
            // SAFETY: forwarded caller guarantee.
            unsafe { crate::free_sized(p, a1) }
        }
        Op::DeleteSizedAligned | Op::DeleteArraySizedAligned => {
            // SAFETY: forwarded caller guarantee.
            unsafe { crate::free_aligned_sized(p, a2, a1) }
        }
        // SAFETY: forwarded caller guarantee.
        _ => unsafe { crate::free(p) },
    }
}

/// Hand an `operator delete` call to the next definition (the program replaced an
/// operator; libstdc++'s reaches its `operator delete`).
#[cold]
#[inline(never)]
fn delete_next(op: Op, p: *mut c_void, a1: usize, a2: usize) {
    match next(op) {
        // SAFETY: the next definition of the same operator, with this call's arguments.
        Some(f) => unsafe { core::mem::transmute::<usize, DeleteFn>(f)(p, a1, a2) },
        // SAFETY: no libstdc++ but a replaced operator: `p` came from hakmem (the caller's
        // guarantee as for `free`).
        None => unsafe { crate::free(p) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In process (no libstdc++, nothing exported): every form allocates and frees
    /// through hakmem, aligned forms are aligned, `nothrow` forms give null on failure.
    #[test]
    fn every_form_in_process() {
        let news = [
            Op::New,
            Op::NewArray,
            Op::NewNothrow,
            Op::NewArrayNothrow,
            Op::NewAligned,
            Op::NewArrayAligned,
            Op::NewAlignedNothrow,
            Op::NewArrayAlignedNothrow,
        ];
        for (i, &op) in news.iter().enumerate() {
            for size in [0usize, 1, 24, 1000, 70_000, 300_000] {
                let align = if op.aligned() { 4096 } else { 0 };
                let p = new(op, size, align, 0);
                assert!(!p.is_null());
                if align != 0 {
                    assert_eq!(p as usize % align, 0);
                }
                // SAFETY: a live block of `size` bytes, given back once with its size.
                unsafe {
                    core::ptr::write_bytes(p.cast::<u8>(), 7, size);
                    let del = [Op::Delete, Op::DeleteSized, Op::DeleteSizedAligned][i % 3];
                    delete(del, p, size, align.max(16));
                }
            }
        }
        assert_eq!(FORWARD.load(Ordering::Relaxed), 1, "nothing replaced here");
        for op in [Op::NewNothrow, Op::NewAlignedNothrow] {
            assert!(new(op, 1 << 62, 64, 0).is_null());
        }
        // SAFETY: null is accepted by every delete.
        unsafe { delete(Op::DeleteArrayAlignedNothrow, core::ptr::null_mut(), 64, 0) };
    }

    #[test]
    fn names_and_ops_agree() {
        assert_eq!(op_of(c"_Znwm"), Op::New);
        assert_eq!(
            op_of(c"_ZdaPvmSt11align_val_t"),
            Op::DeleteArraySizedAligned
        );
        assert_eq!(NAMES[Op::DeleteSized as usize], c"_ZdlPvm");
        assert_eq!(
            NAMES[Op::NewArrayAlignedNothrow as usize],
            c"_ZnamSt11align_val_tRKSt9nothrow_t"
        );
    }
}
