//! A small test-and-test-and-set lock for the allocator's slow paths.
//!
//! It spins briefly, then yields the CPU (`sched_yield`), so a holder preempted on a
//! 2-core machine does not make waiters burn their time slice. It never allocates and
//! has no poisoning. Fork safety is the owner's job: a box that owns locks takes them
//! all in its fork-prepare handler and releases them in the parent and the child
//! ([`RawLock::unlock`] is valid in the child for a lock the forking thread took).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// A raw spin-then-yield lock.
pub struct RawLock {
    locked: AtomicBool,
}

impl RawLock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        RawLock {
            locked: AtomicBool::new(false),
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
                    core::hint::spin_loop();
                    spins += 1;
                } else {
                    // SAFETY: sched_yield has no preconditions.
                    unsafe { libc::sched_yield() };
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
        self.locked.store(false, Ordering::Release);
    }

    /// Whether the lock is held now (for assertions).
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

impl Default for RawLock {
    fn default() -> Self {
        Self::new()
    }
}

/// Data guarded by a [`RawLock`].
pub struct Locked<T> {
    lock: RawLock,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialized by `lock`.
unsafe impl<T: Send> Sync for Locked<T> {}
// SAFETY: T is Send; the lock carries no thread affinity.
unsafe impl<T: Send> Send for Locked<T> {}

impl<T> Locked<T> {
    /// Wrap `data`.
    pub const fn new(data: T) -> Self {
        Locked {
            lock: RawLock::new(),
            data: UnsafeCell::new(data),
        }
    }

    /// Run `f` with the lock held.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.lock.lock();
        // SAFETY: the lock is held, so this is the only reference to the data.
        let r = f(unsafe { &mut *self.data.get() });
        self.lock.unlock();
        r
    }

    /// The underlying lock (for fork handlers that take every lock).
    pub fn raw(&self) -> &RawLock {
        &self.lock
    }
}

#[cfg(test)]
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
                        L.with(|v| *v += 1);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(L.with(|v| *v), 80_000);
        assert!(L.raw().try_lock());
        assert!(!L.raw().try_lock());
        L.raw().unlock();
    }
}
