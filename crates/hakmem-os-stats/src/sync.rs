//! The synchronization primitives every box's shared state is built from, so that the
//! model checker [loom](https://docs.rs/loom) can drive the shipped code.
//!
//! Built normally, these are `core`'s atomics, a zero-cost `UnsafeCell` and the CPU's
//! spin hint. Built with `RUSTFLAGS="--cfg loom"`, they are loom's: every atomic access
//! is a point where loom may switch threads, every access to an [`UnsafeCell`] is
//! checked for data races, a spin is a loom yield, and the `static`s declared with
//! [`sync_static!`](crate::sync_static) are created afresh for each execution. The
//! `UnsafeCell` here has loom's API (`get_mut` returns a [`MutPtr`] whose lifetime is
//! the access), which is how [`Locked`](crate::lock::Locked) hands out its data.
//!
//! What is not routed through here stays invisible to loom: the superslab headers
//! (atomics in mmapped memory, which loom's objects cannot live in), the OS box's
//! counters and the gate snapshot (written once, or counters nobody synchronizes on).
//! See `docs/concurrency.md`.

#[cfg(not(loom))]
pub use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

/// One round of a spin wait: the CPU's spin hint (a loom yield under loom, so that a
/// waiter lets the holder run).
#[inline(always)]
pub fn spin_loop() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Give the CPU away (`sched_yield`; a loom yield under loom).
#[inline]
pub fn yield_now() {
    #[cfg(not(loom))]
    // SAFETY: sched_yield has no preconditions.
    unsafe {
        libc::sched_yield();
    }
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Declare `static`s of shared state built from this module's types: a plain `static`
/// (its initializer must then be a constant expression), or under loom a
/// `loom::lazy_static!`, created afresh for each execution (a reference to it then goes
/// through `Deref`: write `NAME.iter()`, `NAME.get(i)`, `&*NAME`, never `&NAME`).
#[macro_export]
macro_rules! sync_static {
    ($($(#[$m:meta])* $v:vis static $name:ident : $t:ty = $e:expr;)+) => {
        $(
            #[cfg(not(loom))]
            $(#[$m])* $v static $name: $t = $e;
            #[cfg(loom)]
            ::loom::__lazy_static_internal! { $(#[$m])* ($v) static ref $name: $t = $e; }
        )+
    };
}

/// Define functions that are `const fn` in the normal build (for `static` initializers)
/// and plain `fn` under loom (loom's types have no constant constructors).
#[macro_export]
macro_rules! loom_const_fn {
    ($($(#[$m:meta])* $v:vis fn $name:ident $(<$($g:ident),*>)? ($($args:tt)*) -> $ret:ty $body:block)+) => {
        $(
            #[cfg(not(loom))]
            $(#[$m])* $v const fn $name $(<$($g),*>)? ($($args)*) -> $ret $body
            #[cfg(loom)]
            $(#[$m])* $v fn $name $(<$($g),*>)? ($($args)*) -> $ret $body
        )+
    };
}

#[cfg(loom)]
pub use loom::cell::{MutPtr, UnsafeCell};

#[cfg(not(loom))]
pub use plain::{MutPtr, UnsafeCell};

#[cfg(not(loom))]
mod plain {
    /// `core::cell::UnsafeCell` with loom's API (see the module doc).
    #[derive(Debug)]
    #[repr(transparent)]
    pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        /// Wrap `v`.
        #[inline(always)]
        pub const fn new(v: T) -> Self {
            UnsafeCell(core::cell::UnsafeCell::new(v))
        }

        /// A mutable access to the contents, for as long as the returned pointer lives
        /// (loom checks that no other access overlaps it).
        #[inline(always)]
        pub fn get_mut(&self) -> MutPtr<T> {
            MutPtr(self.0.get())
        }

        /// Run `f` with a pointer for reading the contents.
        #[inline(always)]
        pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Run `f` with a pointer for writing the contents.
        #[inline(always)]
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }

    /// A mutable access to an [`UnsafeCell`]'s contents (see [`UnsafeCell::get_mut`]).
    #[derive(Debug)]
    pub struct MutPtr<T>(*mut T);

    impl<T> MutPtr<T> {
        /// The contents.
        ///
        /// # Safety
        /// No other reference to the contents exists while the result lives (the
        /// caller's synchronization, e.g. a lock, makes the access exclusive).
        #[inline(always)]
        #[allow(clippy::mut_from_ref)]
        pub unsafe fn deref(&self) -> &mut T {
            // SAFETY: forwarded caller guarantee; the pointer came from a live cell.
            unsafe { &mut *self.0 }
        }

        /// Run `f` with the raw pointer.
        #[inline(always)]
        pub fn with<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0)
        }
    }
}

/// An array of `$n` values of `$init` for a [`sync_static!`](crate::sync_static): a
/// constant repeat in the normal build, built element by element under loom.
#[macro_export]
macro_rules! sync_array {
    ($init:expr; $n:expr) => {{
        #[cfg(not(loom))]
        let a = [const { $init }; $n];
        #[cfg(loom)]
        let a = ::core::array::from_fn(|_| $init);
        a
    }};
}

/// Mutation switches for the loom checks (built only under `--cfg loom`): each breaks one
/// step of the shipped code on purpose, so that a model check can show it catches the
/// break. A test turns one on for its own model and off again; the normal build has no
/// trace of them.
#[cfg(loom)]
pub mod mutation {
    use core::sync::atomic::{AtomicU32, Ordering::SeqCst};

    /// The lock under every `Locked` (`RawLock::unlock`) stores `false` with `Relaxed`
    /// instead of `Release`.
    pub const RELAXED_UNLOCK: u32 = 1;
    /// `xfer_put` (hakmem-ss-allocation) trusts its unlocked peek at a shard's `n`
    /// instead of re-reading it under the shard lock.
    pub const XFER_PUT_TRUSTS_PEEK: u32 = 2;
    /// `slab_empty` (hakmem-ss-allocation) unmarks an empty superslab in the registry
    /// after handing it to the release policy instead of before.
    pub const LATE_UNMARK: u32 = 4;

    static ON: AtomicU32 = AtomicU32::new(0);

    /// Turn on exactly the mutations in `bits` (0: none).
    pub fn set(bits: u32) {
        ON.store(bits, SeqCst);
    }

    /// Whether mutation `bit` is on.
    pub fn on(bit: u32) -> bool {
        ON.load(SeqCst) & bit != 0
    }
}
