//! The allocator's one lock: a small test-and-test-and-set lock that owns its data.
//!
//! [`Locked<T>`] keeps the lock outside the data's `UnsafeCell`; the only way to reach
//! `&mut T` is a [`Guard`] from [`Locked::lock`] (or [`Locked::try_lock`]), which
//! unlocks when dropped, so no `&mut` to the data can exist before the lock is held or
//! after it is released. In debug builds each lock records its holder (the thread's
//! `pthread_self`) and checks it on every release and in [`Locked::assert_held`]. Fork
//! handlers take and release a lock without a guard through [`Locked::fork_lock`] and
//! [`Locked::fork_unlock`] (unsafe: they must pair up around `fork`).
//!
//! The lock spins briefly, then yields the CPU (`sched_yield`), so a holder preempted on
//! a 2-core machine does not make waiters burn their time slice. It never allocates and
//! has no poisoning. Its atomics come from [`crate::sync`], so under `--cfg loom` the
//! model checker drives this very code (and checks every access to the data for races).
//!
//! `RawLock` is the bare lock under `Locked`. It guards no data and is private to this
//! module's crate: every lock of the allocator is a `Locked<T>`.

use crate::sync::{AtomicBool, MutPtr, Ordering, UnsafeCell, spin_loop, yield_now};
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};

/// A raw spin-then-yield lock (no data: see the module doc; use [`Locked`]).
pub(crate) struct RawLock {
    locked: AtomicBool,
}

impl RawLock {
    crate::loom_const_fn! {
        /// An unlocked lock.
        pub fn new() -> Self {
            RawLock {
                locked: AtomicBool::new(false),
            }
        }
    }

    /// Take the lock.
    #[inline]
    pub fn lock(&self) {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    spin_loop();
                    spins += 1;
                } else {
                    yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Try to take the lock without waiting.
    #[inline]
    pub fn try_lock(&self) -> bool {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Release the lock. Only the holder may call it (or a forked child for a lock its
    /// forking thread held).
    #[inline]
    pub fn unlock(&self) {
        #[cfg(loom)]
        if crate::sync::mutation::on(crate::sync::mutation::RELAXED_UNLOCK) {
            self.locked.store(false, Ordering::Relaxed);
            return;
        }
        self.locked.store(false, Ordering::Release);
    }

    /// Whether the lock is held now (for assertions).
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

#[cfg(not(loom))]
impl Default for RawLock {
    fn default() -> Self {
        Self::new()
    }
}

/// The calling thread's id for the debug owner check (nonzero).
#[cfg(all(debug_assertions, not(loom)))]
#[inline]
fn me() -> usize {
    // SAFETY: pthread_self has no preconditions (it reads the thread pointer).
    unsafe { libc::pthread_self() as usize }
}

/// Data guarded by a lock: reached only through a [`Guard`].
pub struct Locked<T> {
    lock: RawLock,
    /// The holder's `pthread_self` while locked, 0 when free (debug builds).
    #[cfg(all(debug_assertions, not(loom)))]
    owner: core::sync::atomic::AtomicUsize,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialized by `lock` (only a guard reaches it).
unsafe impl<T: Send> Sync for Locked<T> {}
// SAFETY: T is Send; the lock carries no thread affinity while unlocked (a guard
// borrows the `Locked`, so it cannot be moved while locked).
unsafe impl<T: Send> Send for Locked<T> {}

impl<T> Locked<T> {
    crate::loom_const_fn! {
        /// Wrap `data`, unlocked.
        pub fn new(data: T) -> Self {
            Locked {
                lock: RawLock::new(),
                #[cfg(all(debug_assertions, not(loom)))]
                owner: core::sync::atomic::AtomicUsize::new(0),
                data: UnsafeCell::new(data),
            }
        }
    }

    /// Note the calling thread as the holder (debug builds); the lock was just taken.
    #[inline(always)]
    fn acquired(&self) {
        #[cfg(all(debug_assertions, not(loom)))]
        {
            let prev = self.owner.swap(me(), core::sync::atomic::Ordering::Relaxed);
            debug_assert_eq!(prev, 0, "Locked: taken while another holder was noted");
        }
    }

    /// Release the lock, checking (debug builds) that the caller holds it.
    #[inline(always)]
    fn release(&self) {
        #[cfg(all(debug_assertions, not(loom)))]
        {
            let prev = self.owner.swap(0, core::sync::atomic::Ordering::Relaxed);
            debug_assert_eq!(
                prev,
                me(),
                "Locked: released by a thread that does not hold it"
            );
        }
        self.lock.unlock();
    }

    /// Wait for the lock; the guard gives the data and unlocks when dropped.
    ///
    /// Debug builds abort with a report (`hakmem: lock taken again by its holder ...`)
    /// instead of waiting forever when the calling thread already holds the lock: the
    /// way an allocator path re-enters itself under its own lock, typically a failed
    /// `debug_assert!` whose panic message or backtrace allocates while a cache lock
    /// is held (the lock is not re-entrant, so release builds would hang).
    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        #[cfg(all(debug_assertions, not(loom)))]
        if !self.lock.try_lock() {
            // Only this thread writes its own id into `owner` (after taking the lock)
            // and clears it (before releasing), so seeing it here means it holds it.
            if self.owner.load(core::sync::atomic::Ordering::Relaxed) == me() {
                crate::report::fatal(
                    "lock taken again by its holder (re-entry under an allocator lock: a \
                     failed debug assertion that allocates?), lock at",
                    self as *const Self as usize,
                );
            }
            self.lock.lock();
        }
        #[cfg(not(all(debug_assertions, not(loom))))]
        self.lock.lock();
        self.acquired();
        Guard {
            locked: self,
            data: ManuallyDrop::new(self.data.get_mut()),
            _not_send: PhantomData,
        }
    }

    /// Take the lock if it is free.
    #[inline]
    pub fn try_lock(&self) -> Option<Guard<'_, T>> {
        if !self.lock.try_lock() {
            return None;
        }
        self.acquired();
        Some(Guard {
            locked: self,
            data: ManuallyDrop::new(self.data.get_mut()),
            _not_send: PhantomData,
        })
    }

    /// Run `f` with the lock held.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.lock())
    }

    /// Whether the lock is held now, by anyone (for assertions).
    pub fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// Debug builds: check that the calling thread holds the lock (no code in release
    /// builds).
    #[inline(always)]
    #[track_caller]
    pub fn assert_held(&self) {
        debug_assert!(self.lock.is_locked(), "Locked: not held");
        #[cfg(all(debug_assertions, not(loom)))]
        debug_assert_eq!(
            self.owner.load(core::sync::atomic::Ordering::Relaxed),
            me(),
            "Locked: held by another thread"
        );
    }

    /// Fork handler (`pthread_atfork` prepare): take the lock without a guard, so that
    /// no other thread holds it across the `fork`.
    ///
    /// # Safety
    /// Only in a fork-prepare handler, paired with [`Locked::fork_unlock`] in the
    /// parent's and the child's handlers; the calling thread holds no guard of this lock
    /// (it would deadlock) and creates none until `fork_unlock`.
    pub unsafe fn fork_lock(&self) {
        self.lock.lock();
        self.acquired();
    }

    /// Fork handler (parent or child): release what [`Locked::fork_lock`] took. In the
    /// child the forking thread is the only thread, with the same id, so it is still
    /// the holder.
    ///
    /// # Safety
    /// The calling thread took the lock with [`Locked::fork_lock`] (before the `fork`,
    /// in the child) and has not released it since.
    pub unsafe fn fork_unlock(&self) {
        self.release();
    }
}

/// The lock of a [`Locked`] held: the data, and the unlock when dropped. Not `Send`: a
/// lock is released by the thread that took it.
pub struct Guard<'a, T> {
    locked: &'a Locked<T>,
    /// The access to the data (under loom, a tracked access: it ends, in `drop`, before
    /// the unlock).
    data: ManuallyDrop<MutPtr<T>>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Guard<'_, T> {
    /// The [`Locked`] this guard holds (for [`Locked::assert_held`] in callees).
    pub fn locked(&self) -> &Locked<T> {
        self.locked
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the lock is held for the guard's life: this is the only access.
        unsafe { MutPtr::deref(&self.data) }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the borrow unique.
        unsafe { MutPtr::deref(&self.data) }
    }
}

impl<T> Drop for Guard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: dropped once, here; the access ends before the unlock.
        unsafe { ManuallyDrop::drop(&mut self.data) };
        self.locked.release();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    extern crate std;

    #[test]
    fn mutual_exclusion() {
        static L: Locked<u64> = Locked::new(0);
        let hs: std::vec::Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..20_000 {
                        *L.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(L.with(|v| *v), 80_000);
        let g = L.try_lock().expect("free");
        assert!(L.is_locked());
        L.assert_held();
        assert!(L.try_lock().is_none(), "held");
        drop(g);
        assert!(!L.is_locked());
    }

    #[test]
    fn fork_lock_pairs_with_fork_unlock() {
        let l = Locked::new(5u32);
        // SAFETY: paired below, no guard in between.
        unsafe { l.fork_lock() };
        assert!(l.try_lock().is_none());
        l.assert_held();
        // SAFETY: this thread took it with fork_lock.
        unsafe { l.fork_unlock() };
        assert_eq!(*l.lock(), 5);
    }

    #[test]
    #[cfg(debug_assertions)]
    fn release_by_another_thread_is_caught() {
        static L: Locked<u32> = Locked::new(0);
        // SAFETY: a test of the debug owner check: the unlock below comes from the
        // wrong thread on purpose and must panic before it releases anything.
        unsafe { L.fork_lock() };
        // SAFETY: (the contract is broken on purpose: the debug check must panic
        // before anything is released.)
        let r = std::thread::spawn(|| unsafe { L.fork_unlock() }).join();
        assert!(r.is_err(), "the owner check must refuse");
    }
}
