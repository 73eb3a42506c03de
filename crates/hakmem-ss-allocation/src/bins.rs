//! The building blocks of a thread cache: a [`Bin`] of free blocks of one class (a LIFO
//! list with a bound) that exchanges batches with the central lists, and [`ExitKey`], a
//! thread-exit hook that does not allocate (a pthread key destructor).
//!
//! The boxes above (`hakmem-tiny-fast`, `hakmem-mid`) keep one `Bin` per class in a
//! `const`-initialized `thread_local!` without `Drop`.
//!
//! **Double-free detection** (feature `double-free-check`; compiled out otherwise: no
//! load, no store, no branch). Every free block carries a *free mark* in its second word:
//! `addr ^ FREE_MARK_KEY`. [`Bin::push`] (and [`Bin::overflow`]) abort with
//! "double free" when the block already carries its mark; a block leaving the free
//! state ([`Bin::pop`], [`Bin::refill`]) has the mark cleared. The mark survives in
//! thread caches and central lists alike, so a double free is caught however long ago
//! the first free was, as long as the block was not handed out again in between (then
//! the second free is a legitimate free of the new allocation) and the program did not
//! overwrite the freed block. Cost: one load, one compare and one store per free, one
//! store per allocation, all on the cache line the operation touches anyway.

use crate::{flush, next_of, refill, refill_upto, set_next};
use hakmem_os_stats::report;

/// Whether zero-on-free is compiled in (feature `zero-on-free`).
pub const ZERO_ON_FREE: bool = cfg!(feature = "zero-on-free");

/// Words of a block (from the third) that an allocation checks are still zero
/// (zero-on-free builds): a write after free into the first 64 bytes is caught.
const SCRUB_CHECK_WORDS: usize = 8;

/// Zero-on-free: clear a block entering the free state beyond its first two words (the
/// link and the free mark). `bs` is its block size (0: unknown, nothing done).
///
/// # Safety
/// `p` points to a block of `bs` bytes that the caller gives up.
#[inline(always)]
unsafe fn scrub(p: *mut u8, bs: usize) {
    if ZERO_ON_FREE && bs > 16 {
        // SAFETY: the caller guarantees `bs` writable bytes.
        unsafe { p.add(16).write_bytes(0, bs - 16) }
    }
}

/// Zero-on-free: before a free block is handed out, check that the words after its link
/// and mark (up to 64 bytes) are still zero; abort with a report if not (a write after
/// free).
///
/// # Safety
/// `p` points to a free block of `bs` bytes owned by the caller.
#[inline(always)]
unsafe fn check_scrubbed(p: *mut u8, bs: usize) {
    if !ZERO_ON_FREE {
        return;
    }
    let n = (bs / 8).min(SCRUB_CHECK_WORDS);
    let mut acc = 0usize;
    for i in 2..n {
        // SAFETY: `i < bs / 8`: inside the block.
        acc |= unsafe { p.cast::<usize>().add(i).read() };
    }
    if acc != 0 {
        report::fatal("malloc(): write after free detected in block", p as usize);
    }
}

/// A block carved from a slab for the first time: in zero-on-free builds, zero the words
/// an allocation checks (the slab's memory may hold an earlier class's blocks).
///
/// # Safety
/// `p` points to a block of `bs` bytes owned by the caller.
#[inline(always)]
pub unsafe fn scrub_fresh(p: *mut u8, bs: usize) {
    if ZERO_ON_FREE && bs > 16 {
        // SAFETY: the caller guarantees `bs` writable bytes.
        unsafe { p.add(16).write_bytes(0, bs.min(SCRUB_CHECK_WORDS * 8) - 16) }
    }
}

/// The bound of a bin whose class is shrinking in lean mode (see [`Bin::overflow`]).
pub const SHRUNK_LIMIT: u32 = 2;

/// Whether double-free detection is compiled in.
pub const DOUBLE_FREE_CHECK: bool = cfg!(feature = "double-free-check");

/// The key of the free mark (`addr ^ FREE_MARK_KEY` in a free block's second word;
/// hardened builds use the block's secret link key instead, see `free_block`).
pub const FREE_MARK_KEY: usize = 0x5DEE_CE66_D1CE_F00D;

#[inline(always)]
fn mark_of(p: *mut u8) -> usize {
    if crate::HARDENED {
        crate::link_key(p)
    } else {
        p as usize ^ FREE_MARK_KEY
    }
}

/// A block enters the free state with `next` as its link: the free mark is checked and
/// set (double-free check) and the link written (encoded in hardened builds). In a
/// hardened build the mark is the block's link key (`secret ^ addr`), so the key is
/// computed once for both, and a forged mark needs the secret.
///
/// # Safety
/// `p` points to a block of at least 16 bytes that the caller gives up.
#[inline(always)]
unsafe fn free_block(p: *mut u8, next: *mut u8) {
    if crate::HARDENED {
        let k = crate::link_key(p);
        // SAFETY: the caller guarantees a block of at least 16 bytes.
        unsafe {
            if DOUBLE_FREE_CHECK {
                let w = p.cast::<usize>().add(1);
                if w.read() == k {
                    report::fatal("free(): double free of block", p as usize);
                }
                w.write(k);
            }
            p.cast::<usize>().write(next as usize ^ k);
        }
    } else {
        // SAFETY: forwarded caller guarantee.
        unsafe {
            mark_free(p);
            set_next(p, next);
        }
    }
}

/// Whether `p` carries its free mark.
///
/// # Safety
/// `p` points to at least 16 readable bytes.
#[inline(always)]
pub unsafe fn is_marked_free(p: *mut u8) -> bool {
    // SAFETY: the caller guarantees 16 readable bytes.
    unsafe { p.cast::<usize>().add(1).read() == mark_of(p) }
}

/// Mark `p` free, aborting with a report if it already was.
///
/// # Safety
/// `p` points to a block of at least 16 bytes that the caller gives up.
#[inline(always)]
pub unsafe fn mark_free(p: *mut u8) {
    if !DOUBLE_FREE_CHECK {
        return;
    }
    // SAFETY: the caller guarantees a block of at least 16 bytes.
    unsafe {
        let w = p.cast::<usize>().add(1);
        if w.read() == mark_of(p) {
            report::fatal("free(): double free of block", p as usize);
        }
        w.write(mark_of(p));
    }
}

/// Give a block its free mark without checking the old one (a block carved from a slab
/// for the first time: free, but never handed out).
///
/// # Safety
/// `p` points to a block of at least 16 bytes owned by the caller.
#[inline(always)]
pub unsafe fn set_free_mark(p: *mut u8) {
    if !DOUBLE_FREE_CHECK {
        return;
    }
    // SAFETY: the caller guarantees a block of at least 16 bytes.
    unsafe { p.cast::<usize>().add(1).write(mark_of(p)) }
}

/// Clear the free mark of a block leaving the free state.
///
/// # Safety
/// `p` points to a block of at least 16 bytes owned by the caller.
#[inline(always)]
pub unsafe fn clear_mark(p: *mut u8) {
    if !DOUBLE_FREE_CHECK {
        return;
    }
    // SAFETY: the caller guarantees a block of at least 16 bytes.
    unsafe { p.cast::<usize>().add(1).write(0) }
}
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};
use hakmem_os_stats::lock::RawLock;

/// Free blocks of one class cached by one thread.
///
/// Invariant: `count` blocks are linked from `head` (null-terminated), `count <= limit`
/// except transiently inside [`Bin::overflow`].
#[repr(C)]
#[derive(Debug)]
pub struct Bin {
    /// First free block (null: empty).
    pub head: *mut u8,
    /// Blocks in the list. Only the owning thread writes it (a relaxed load and store,
    /// no read-modify-write: plain moves); [`stats`](crate::bins::CacheRegistry) reads it
    /// from other threads.
    count: AtomicU32,
    /// Most blocks kept; 0 turns caching off (every push misses).
    pub limit: u32,
    /// Block size of the bin's class (zero-on-free builds only: what to clear and check;
    /// set with [`Bin::set_block_size`]).
    #[cfg(feature = "zero-on-free")]
    block: u32,
}

impl Bin {
    /// An empty bin that caches nothing (limit 0): every operation takes the slow path.
    /// (A constant for array initializers: each use is a fresh bin.)
    #[allow(clippy::declare_interior_mutable_const)]
    pub const EMPTY: Bin = Bin {
        head: ptr::null_mut(),
        count: AtomicU32::new(0),
        limit: 0,
        #[cfg(feature = "zero-on-free")]
        block: 0,
    };

    /// Record the block size of the bin's class (used by zero-on-free builds only).
    #[inline]
    pub fn set_block_size(&mut self, _bs: usize) {
        #[cfg(feature = "zero-on-free")]
        {
            self.block = _bs as u32;
        }
    }

    /// The block size recorded by [`Bin::set_block_size`] (0 without zero-on-free).
    #[inline(always)]
    fn block_size(&self) -> usize {
        #[cfg(feature = "zero-on-free")]
        {
            self.block as usize
        }
        #[cfg(not(feature = "zero-on-free"))]
        {
            0
        }
    }

    /// Blocks in the bin.
    #[inline(always)]
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn set_count(&self, n: u32) {
        self.count.store(n, Ordering::Relaxed)
    }

    /// Pop a block, or null when empty. The fast path.
    #[inline(always)]
    pub fn pop(&mut self) -> *mut u8 {
        let p = self.head;
        if !p.is_null() {
            // SAFETY: `p` is a free block in this bin (invariant), now the caller's.
            unsafe {
                self.head = next_of(p);
                crate::asan::block_handed_out(p);
                clear_mark(p);
                check_scrubbed(p, self.block_size());
            }
            self.set_count(self.count() - 1);
        }
        p
    }

    /// Push a block if the bin has room; false when full. The fast path.
    ///
    /// # Safety
    /// `p` is a free block of this bin's class that the caller gives up.
    #[inline(always)]
    pub unsafe fn push(&mut self, p: *mut u8) -> bool {
        if self.count() < self.limit {
            // SAFETY: the caller gives `p` up; it is at least 16 bytes (of the bin's
            // class).
            unsafe {
                scrub(p, self.block_size());
                free_block(p, self.head);
                crate::asan::block_freed(p);
            }
            self.head = p;
            self.set_count(self.count() + 1);
            true
        } else {
            false
        }
    }

    /// The bin is empty: take a batch of `limit / 2` (at least one) blocks of class
    /// `cls` from the central lists (or a whole chain of up to `limit` from the transfer
    /// cache) and return one of them. Null when out of memory. (If the bin is not empty
    /// it simply pops.)
    #[cold]
    #[inline(never)]
    pub fn refill(&mut self, cls: usize) -> *mut u8 {
        if !self.head.is_null() {
            return self.pop();
        }
        let want = (self.limit / 2).max(1);
        // A whole transfer-cache chain fits if it leaves at most `limit` in the bin.
        let chain = refill_upto(cls, want, self.limit.max(1));
        if chain.count == 0 {
            return ptr::null_mut();
        }
        let p = chain.head;
        // The bin is empty: the rest of the (null-terminated) chain becomes the bin.
        // SAFETY: the chain is ours.
        unsafe {
            crate::asan::block_handed_out(p);
            clear_mark(p);
            check_scrubbed(p, self.block_size());
            self.head = next_of(p);
        }
        self.set_count(chain.count - 1);
        p
    }

    /// The bin is full (or caches nothing): keep `p` and give the older half of the bin
    /// back to the central lists of class `cls`. When the class is shrinking in lean mode
    /// (`flush` says so) the bin gives everything back and caches at most
    /// [`SHRUNK_LIMIT`] blocks; once it is not, the bin gets its normal bound `limit`
    /// back (a bin that caches nothing, limit 0, stays so).
    ///
    /// # Safety
    /// As [`Bin::push`].
    #[cold]
    #[inline(never)]
    pub unsafe fn overflow(&mut self, cls: usize, p: *mut u8, limit: u32) {
        // SAFETY: the caller gives `p` up.
        unsafe {
            scrub(p, self.block_size());
            free_block(p, self.head);
            crate::asan::block_freed(p);
        }
        self.head = p;
        self.set_count(self.count() + 1);
        let keep = self.limit / 2;
        if keep == 0 {
            self.drain(cls);
            return;
        }
        let mut last = self.head;
        for _ in 1..keep {
            // SAFETY: `keep <= count`, so these are blocks of the list.
            last = unsafe { next_of(last) };
        }
        // SAFETY: `last` is the keep-th block; the rest of the list goes back.
        let shrinking = unsafe {
            let rest = next_of(last);
            set_next(last, ptr::null_mut());
            flush(cls, rest, self.count() - keep)
        };
        self.set_count(keep);
        if shrinking {
            // Lean mode, and the class is giving slabs back: so does this bin, and it
            // caches at most `SHRUNK_LIMIT` blocks until its next refill.
            self.drain(cls);
            self.limit = self.limit.min(SHRUNK_LIMIT);
        } else if self.limit != 0 && self.limit < limit {
            self.limit = limit;
        }
    }

    /// The slow path of an allocation: pop, or refill when empty (null when out of
    /// memory). `limit` is the bin's normal bound: a bin shrunk by [`Bin::overflow`]
    /// gets it back at its refill (a bin that caches nothing, limit 0, stays so).
    #[inline]
    pub fn pop_or_refill(&mut self, cls: usize, limit: u32) -> *mut u8 {
        let p = self.pop();
        if !p.is_null() {
            return p;
        }
        if self.limit != 0 && self.limit < limit {
            self.limit = limit;
        }
        self.refill(cls)
    }

    /// The slow path of a free: push, or overflow when full (`limit`: the bin's normal
    /// bound, see [`Bin::overflow`]).
    ///
    /// # Safety
    /// As [`Bin::push`].
    #[inline]
    pub unsafe fn push_or_overflow(&mut self, cls: usize, p: *mut u8, limit: u32) {
        // SAFETY: forwarded caller guarantee.
        unsafe {
            if !self.push(p) {
                self.overflow(cls, p, limit);
            }
        }
    }

    /// Give every block back to the central lists of class `cls`.
    pub fn drain(&mut self, cls: usize) {
        if self.count() > 0 {
            // SAFETY: the list holds exactly `count` blocks of class `cls`.
            unsafe { flush(cls, self.head, self.count()) };
        }
        self.head = ptr::null_mut();
        self.set_count(0);
    }

    /// Stop caching: limit 0 (every push misses and goes to the central lists). Call it
    /// after [`Bin::drain`].
    pub fn drain_for_exit(&mut self) {
        self.limit = 0;
    }

    /// Fill the bin up to `n` blocks (at most `limit`); false when out of memory.
    pub fn fill_to(&mut self, cls: usize, n: u32) -> bool {
        let n = n.min(self.limit);
        if self.count() >= n {
            return true;
        }
        let chain = refill(cls, n - self.count());
        if chain.count == 0 {
            return false;
        }
        // SAFETY: the chain is ours; its tail's link is null.
        unsafe { set_next(chain.tail, self.head) };
        self.head = chain.head;
        self.set_count(self.count() + chain.count);
        true
    }
}

/// Drain a thread's bins (`bins[i]` holds class `first_class + i`) and, with `stop`,
/// turn caching off for good (thread exit, or no exit hook).
pub fn drain_all(bins: &mut [Bin], first_class: usize, stop: bool) {
    for (i, b) in bins.iter_mut().enumerate() {
        b.drain(first_class + i);
        if stop {
            b.drain_for_exit();
        }
    }
}

/// A thread cache as the [`CacheRegistry`] sees it: where its bins are. Embed one in the
/// thread-local cache struct; it must not move while registered (a `thread_local!`
/// value does not move).
#[derive(Debug)]
pub struct CacheNode {
    next: *mut CacheNode,
    prev: *mut CacheNode,
    bins: *const Bin,
    n: usize,
    first_class: usize,
}

impl CacheNode {
    /// A node not registered yet.
    pub const EMPTY: CacheNode = CacheNode {
        next: ptr::null_mut(),
        prev: ptr::null_mut(),
        bins: ptr::null(),
        n: 0,
        first_class: 0,
    };
}

/// The live thread caches of one box, so that [`CacheRegistry::cached`] can count the
/// blocks they hold (for stats) without touching any fast path: each bin's count is an
/// atomic written only by its thread with plain stores.
pub struct CacheRegistry {
    lock: RawLock,
    head: UnsafeCell<*mut CacheNode>,
}

// SAFETY: `head` and the list are only accessed with `lock` held.
unsafe impl Sync for CacheRegistry {}

impl Default for CacheRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheRegistry {
    /// An empty registry.
    pub const fn new() -> Self {
        CacheRegistry {
            lock: RawLock::new(),
            head: UnsafeCell::new(ptr::null_mut()),
        }
    }

    /// Register the calling thread's cache: `n` bins at `bins`, for classes
    /// `first_class..first_class + n`.
    ///
    /// # Safety
    /// `node` and `bins` stay valid and unmoved until [`CacheRegistry::unregister`];
    /// `node` is not registered already.
    pub unsafe fn register(
        &self,
        node: *mut CacheNode,
        bins: *const Bin,
        n: usize,
        first_class: usize,
    ) {
        self.lock.lock();
        // SAFETY: lock held; the caller guarantees `node` is valid and unregistered.
        unsafe {
            (*node).bins = bins;
            (*node).n = n;
            (*node).first_class = first_class;
            (*node).prev = ptr::null_mut();
            (*node).next = *self.head.get();
            if !(*node).next.is_null() {
                (*(*node).next).prev = node;
            }
            *self.head.get() = node;
        }
        self.lock.unlock();
    }

    /// Remove a registered cache.
    ///
    /// # Safety
    /// `node` was registered with this registry and not unregistered since.
    pub unsafe fn unregister(&self, node: *mut CacheNode) {
        self.lock.lock();
        // SAFETY: lock held; `node` is in the list.
        unsafe {
            if (*node).prev.is_null() {
                *self.head.get() = (*node).next;
            } else {
                (*(*node).prev).next = (*node).next;
            }
            if !(*node).next.is_null() {
                (*(*node).next).prev = (*node).prev;
            }
            (*node).next = ptr::null_mut();
            (*node).prev = ptr::null_mut();
        }
        self.lock.unlock();
    }

    /// Blocks and bytes held by every registered cache now.
    pub fn cached(&self) -> (u64, u64) {
        let (mut blocks, mut bytes) = (0u64, 0u64);
        self.lock.lock();
        // SAFETY: lock held; registered nodes and their bins are valid (a thread
        // unregisters before its thread-local storage goes away); counts are atomics.
        unsafe {
            let mut n = *self.head.get();
            while !n.is_null() {
                for i in 0..(*n).n {
                    let c = (*(*n).bins.add(i)).count() as u64;
                    blocks += c;
                    bytes += c * crate::class::block_size((*n).first_class + i) as u64;
                }
                n = (*n).next;
            }
        }
        self.lock.unlock();
        (blocks, bytes)
    }

    /// Fork handler: take the lock.
    pub fn fork_prepare(&self) {
        self.lock.lock();
    }

    /// Fork handler for the parent: release the lock.
    pub fn fork_release(&self) {
        self.lock.unlock();
    }

    /// Fork handler for the child: only the forking thread exists there, and the other
    /// threads' caches live in thread-local storage that glibc will reuse or unmap, so
    /// the list is reset to `own` (the forking thread's node, or null if it has none),
    /// then the lock is released. The blocks the other threads had cached are not
    /// returned in the child (as with glibc's per-thread caches): their bins may have
    /// been in mid-update when the fork happened.
    ///
    /// # Safety
    /// Called once in the child of a fork, with the lock taken by [`fork_prepare`];
    /// `own` is null or the calling thread's registered node.
    ///
    /// [`fork_prepare`]: CacheRegistry::fork_prepare
    pub unsafe fn fork_child(&self, own: *mut CacheNode) {
        // SAFETY: the lock is held (taken before the fork); `own` is valid if non-null.
        unsafe {
            if !own.is_null() {
                (*own).next = ptr::null_mut();
                (*own).prev = ptr::null_mut();
            }
            *self.head.get() = own;
        }
        self.lock.unlock();
    }
}

/// A process-wide pthread key whose destructor runs at each registered thread's exit.
/// Creating the key and registering a thread never allocate (glibc keeps the first 32
/// keys' values in the thread descriptor).
pub struct ExitKey {
    /// 0: not created, 1: being created, 2: ready, 3: failed.
    state: AtomicU32,
    key: UnsafeCell<libc::pthread_key_t>,
}

// SAFETY: `key` is written once (state 1 -> 2, by one thread) and read only in state 2.
unsafe impl Sync for ExitKey {}

impl Default for ExitKey {
    fn default() -> Self {
        Self::new()
    }
}

impl ExitKey {
    /// A key not created yet.
    pub const fn new() -> Self {
        ExitKey {
            state: AtomicU32::new(0),
            key: UnsafeCell::new(0),
        }
    }

    /// Arrange for `dtor` to run when the calling thread exits. False if the key could
    /// not be created or set: the caller must then cache nothing for this thread (a
    /// cache without an exit hook would be lost, and anything pointing into its
    /// thread-local storage would dangle after the thread exits).
    pub fn register_current_thread(&self, dtor: unsafe extern "C" fn(*mut libc::c_void)) -> bool {
        loop {
            match self
                .state
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    // SAFETY: state 1 gives this thread exclusive access to `key`.
                    let ok = unsafe { libc::pthread_key_create(self.key.get(), Some(dtor)) } == 0;
                    self.state.store(if ok { 2 } else { 3 }, Ordering::Release);
                }
                Err(1) => core::hint::spin_loop(),
                Err(2) => break,
                Err(_) => return false,
            }
        }
        // SAFETY: state 2: `key` is initialized and immutable. A non-null value makes
        // the destructor run at thread exit.
        unsafe {
            libc::pthread_setspecific(*self.key.get(), core::ptr::dangling::<libc::c_void>()) == 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_push_pop_refill_overflow() {
        let cls = 2; // 48-byte blocks
        let mut b = Bin {
            limit: 8,
            ..Bin::EMPTY
        };
        assert!(b.pop().is_null());
        let p = b.refill(cls);
        assert!(!p.is_null());
        assert_eq!(b.count(), 3);
        // SAFETY: p is ours, of class `cls`.
        unsafe {
            assert!(b.push(p));
        }
        assert_eq!(b.count(), 4);
        assert!(b.fill_to(cls, 8));
        assert_eq!(b.count(), 8);
        // Refill of a non-empty bin just pops.
        let q = b.refill(cls);
        assert_eq!(b.count(), 7);
        // SAFETY: q is ours.
        unsafe { assert!(b.push(q)) };
        let mut other = Bin {
            limit: 8,
            ..Bin::EMPTY
        };
        let extra = other.refill(cls);
        assert!(!extra.is_null());
        // Overflow keeps half.
        // SAFETY: `extra` is ours.
        unsafe { b.overflow(cls, extra, 8) };
        assert_eq!(b.count(), 4);
        let mut n = 0;
        let mut q = b.head;
        while !q.is_null() {
            n += 1;
            // SAFETY: list blocks.
            q = unsafe { next_of(q) };
        }
        assert_eq!(n, 4);
        b.drain(cls);
        other.drain(cls);
        assert_eq!(b.count(), 0);
        assert!(b.head.is_null());
    }

    /// `hakmem_asan` builds (`cargo xtask sanitize --sanitizer address`): a free block is
    /// poisoned past its link words, a block handed out is addressable whole, and the
    /// uncarved rest of a slab is poisoned.
    #[cfg(hakmem_asan)]
    #[test]
    fn asan_poisons_free_blocks_past_their_links() {
        unsafe extern "C" {
            fn __asan_address_is_poisoned(addr: *const u8) -> i32;
        }
        // SAFETY: ASan's query reads only its shadow memory.
        let poisoned = |p: *mut u8| unsafe { __asan_address_is_poisoned(p) != 0 };
        let whole = |p: *mut u8, bs: usize| (0..bs).all(|i| !poisoned(p.wrapping_add(i)));
        let free = |p: *mut u8, bs: usize| {
            (0..crate::asan::LINK_BYTES).all(|i| !poisoned(p.wrapping_add(i)))
                && (crate::asan::LINK_BYTES..bs).all(|i| poisoned(p.wrapping_add(i)))
        };
        let cls = 6; // 112-byte blocks, used by no other test here
        let bs = crate::class::block_size(cls);
        let mut b = Bin {
            limit: 8,
            ..Bin::EMPTY
        };
        let p = b.refill(cls);
        assert!(!p.is_null());
        assert!(whole(p, bs), "a block handed out is addressable whole");
        let q = b.head;
        assert!(!q.is_null());
        assert!(free(q, bs), "a block in a bin is poisoned past its link");
        // The slab's uncarved tail: the first slab of a fresh class carved exactly
        // `limit / 2` blocks (in some order: hardened builds shuffle them).
        let mut first = p;
        let mut r = q;
        while !r.is_null() {
            first = first.min(r);
            // SAFETY: a block of the bin's list.
            r = unsafe { next_of(r) };
        }
        let tail = first.wrapping_add(4 * bs);
        assert!(poisoned(tail) && poisoned(tail.wrapping_add(bs - 1)));
        // SAFETY: `p` is ours, of class `cls`.
        unsafe { assert!(b.push(p)) };
        assert!(free(p, bs), "a freed block is poisoned past its link");
        assert_eq!(b.pop(), p);
        assert!(whole(p, bs));
        // SAFETY: as above.
        unsafe { assert!(b.push(p)) };
        b.drain(cls);
        crate::drain_transfer_caches();
    }
}
