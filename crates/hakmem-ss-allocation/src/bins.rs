//! The building blocks of a thread cache: a [`Bin`] of free blocks of one class (a
//! bounded stack of pointers in an array the cache provides) that exchanges batches with
//! the central lists ([`refill_batch`] blocks at a time); [`THREAD_EXIT`], the
//! process's one thread-exit hook (an [`ExitKey`]: a pthread key at the highest index,
//! whose destructor runs the hooks added to it, so that they run on every path by which a
//! thread ends, whenever the thread's first allocation happened); and [`CacheRegistry`],
//! the list of live thread caches for stats and fork (its list behind a [`Locked`]),
//! whose nodes never live in a thread's own storage.
//!
//! The box above, `hakmem-tiny-fast`, keeps the process's one thread cache: one `Bin` per
//! class (tiny and mid) in a `const`-initialized `thread_local!` without `Drop`, their
//! arrays in one mapping per thread, one hook of [`THREAD_EXIT`], one node per thread in
//! its one `CacheRegistry`.
//!
//! **Double-free detection** (feature `double-free-check`, on by default in every preset;
//! compiled out otherwise: no load, no store, no branch). Every free block carries a
//! *free mark* in its second word: the constant [`FREE_MARK`] (the block's secret key in
//! hardened builds, where its first word also holds a canary, checked with the mark as
//! the block is handed out: [`check_free_block`]). [`Bin::push`] (and [`Bin::overflow`]) abort with
//! "double free" when the block already carries its mark; a block leaving the free
//! state ([`Bin::pop`], [`Bin::refill`]) has the mark cleared. The mark survives in
//! thread caches and central lists alike, so a double free is caught however long ago
//! the first free was, as long as the block was not handed out again in between (then
//! the second free is a legitimate free of the new allocation) and the program did not
//! overwrite the freed block. Cost: three instructions per free (`cmp` of the word with
//! the mark as an immediate, `je`, a `mov` of the immediate) and one per allocation (a
//! store of zero), all on the cache line the operation touches anyway: the mark is the
//! sign extension of a 32-bit immediate, so no register is spent on it and nothing is
//! computed from the address (results/001 measured the address-keyed mark it replaces).
//! A false alarm needs a live block whose second word holds exactly that 64-bit value
//! (`0xFFFF_FFFF_DF5E_A11D`, a negative number no pointer or small integer takes) at the
//! moment it is freed.

use crate::{flush_slice, refill_into};
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

/// The bound of a bin whose class is shrinking in lean mode (see [`Bin::overflow`]): the
/// release policy's rule.
pub const SHRUNK_LIMIT: u32 = hakmem_release_policy::lean::SHRUNK_BIN_LIMIT;

/// Whether double-free detection is compiled in.
pub const DOUBLE_FREE_CHECK: bool = cfg!(feature = "double-free-check");

/// The free mark in a free block's second word (hardened builds use the block's secret
/// link key instead, see `free_block`): the sign extension of the 32-bit immediate
/// `0xDF5E_A11D`, so that `cmp` and `mov` take it as an immediate operand.
pub const FREE_MARK: usize = 0xDF5E_A11Du32 as i32 as isize as usize;

const _: () = assert!(FREE_MARK == 0xFFFF_FFFF_DF5E_A11D);

#[inline(always)]
fn mark_of(p: *mut u8) -> usize {
    if crate::HARDENED {
        crate::link_key(p)
    } else {
        FREE_MARK
    }
}

/// Hardened builds: the canary a free block carries in its first word (where free
/// lists kept their link): the complement of its secret key, so that the two words of a
/// free block differ and neither can be forged without the secret. A block leaving the
/// free state is checked ([`check_free_block`]): a write after free over its first
/// words, or an overflow from its neighbour into it, is caught there.
#[inline(always)]
fn canary_of(p: *mut u8) -> usize {
    !crate::link_key(p)
}

/// Hardened builds: write the canary of a block entering the free state.
///
/// # Safety
/// `p` points to a block of at least 16 bytes that the caller gives up.
#[inline(always)]
pub unsafe fn set_free_canary(p: *mut u8) {
    // SAFETY: forwarded caller guarantee.
    unsafe { set_canary(p) }
}

#[inline(always)]
unsafe fn set_canary(p: *mut u8) {
    if crate::HARDENED {
        // SAFETY: the caller guarantees 16 writable bytes.
        unsafe { p.cast::<usize>().write(canary_of(p)) }
    }
}

/// Hardened builds: check that a free block leaving the free state still carries its
/// canary (and, with double-free checks, its mark); abort with a report if not.
///
/// # Safety
/// `p` points to a free block of at least 16 bytes owned by the caller.
#[inline(always)]
pub unsafe fn check_free_block(p: *mut u8) {
    if crate::HARDENED {
        // SAFETY: the caller guarantees 16 readable bytes.
        let ok = unsafe {
            p.cast::<usize>().read() == canary_of(p)
                && (!DOUBLE_FREE_CHECK || p.cast::<usize>().add(1).read() == mark_of(p))
        };
        if !ok {
            report::fatal(
                "corrupted free list (write after free?) in block",
                p as usize,
            );
        }
    }
}

/// Report a double free of `p` and abort. `extern "C"`: a call to it cannot unwind, so
/// the free paths that check the mark need no landing pad (nor a stack frame) for it.
#[cold]
#[inline(never)]
extern "C" fn double_free(p: *mut u8) -> ! {
    report::fatal("free(): double free of block", p as usize)
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
    // SAFETY: forwarded caller guarantee.
    unsafe { set_canary(p) };
    if !DOUBLE_FREE_CHECK {
        return;
    }
    // SAFETY: the caller guarantees a block of at least 16 bytes.
    unsafe {
        let w = p.cast::<usize>().add(1);
        if w.read() == mark_of(p) {
            double_free(p);
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
    // SAFETY: forwarded caller guarantee.
    unsafe { set_canary(p) };
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
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// Bytes of a slot of a bin's array.
const PTR_BYTES: u32 = core::mem::size_of::<*mut u8>() as u32;
use hakmem_os_stats::lock::Locked;

/// Most bytes of blocks a refill takes from the slabs (at least one block), whatever the
/// class. A tiny bin grown large (thousands of blocks) would otherwise carve half its
/// bound at once, blocks the program may never use (each resident once carved); half a
/// mid bound is 128 KiB of blocks, so a thread that touched a dozen mid classes a few
/// times each carved megabytes it never used (glibc's `bench-malloc-thread` pattern:
/// peak RSS 5.3 -> 3.5 MiB, results/180).
pub const REFILL_BYTES: usize = 16 * 1024;

/// Blocks a refill of a bin of class `cls` with bound `limit` asks for: half the bound,
/// at most [`REFILL_BYTES`] of blocks, at least one. (A tiny bin's base bound is 32 KiB
/// of blocks or at least 32 blocks: half of it stays within the cap or is 16 blocks of
/// up to 1 KiB.)
#[inline]
pub fn refill_batch(cls: usize, limit: u32) -> usize {
    let half = (limit / 2).max(1) as usize;
    half.min((REFILL_BYTES / crate::class::block_size(cls)).max(1))
}

/// Free blocks of one class cached by one thread: a stack of pointers in an array the
/// thread cache provides ([`Bin::set_slots`]), not a list through the blocks, so that
/// taking a block reads no block's memory (a list makes every allocation wait for a load
/// from the block it hands out, a miss when the block was freed long ago), and a refill
/// or a flush moves pointers without touching the blocks.
///
/// Invariant: `slots[..count]` are `count` distinct free blocks, all of the bin's class
/// and all the bin's own, the most recently freed last; the array has room for at least
/// `limit` pointers. The fields are private so that only the methods below keep it; a
/// bin does not record its class, so every method that takes a class is `unsafe`, with
/// the one precondition "*`cls` is the bin's class*": the class of every block it holds,
/// the same at every call on this bin. `count <= limit` holds except after
/// [`Bin::set_limit`] lowered the bound (then the next free overflows); no memory safety
/// rests on it.
///
/// Representation (16 bytes, so that a thread's bins fit `dlopen`'s static TLS surplus):
/// `top = slots + count` whole, and the low 32 bits of `slots` and of `slots + limit`.
/// A pop compares `top`'s low half with the first, a push with the second, each against
/// memory: one instruction fewer on each fast path than a count and a bound
/// (results/220). That holds because every slot from the array's start to its bound lies
/// in one 4 GiB-aligned window: [`Bin::set_limit`] cuts the bound there.
///
/// # Safety (shared by the methods that take `cls`)
/// `cls` is the bin's class, as above: a bin is used with one class all its life.
#[repr(C)]
#[derive(Debug)]
pub struct Bin {
    /// One past the most recently freed block, `slots + count` (a push writes there).
    /// Only the owning thread writes it (relaxed loads and stores, no read-modify-write:
    /// plain moves); [`stats`](crate::bins::CacheRegistry) reads it from other threads.
    top: AtomicPtr<*mut u8>,
    /// The low 32 bits of `slots + limit` (a push at or past it misses: the bound).
    /// Owner only.
    end: u32,
    /// The low 32 bits of `slots`, the array of the bin's blocks (a pop there misses).
    /// Written by the owning thread only, atomically, with the bin empty; read plainly
    /// by it (no other thread writes it) and atomically by stats.
    floor: AtomicU32,
    /// Block size of the bin's class (zero-on-free builds only: what to clear and check;
    /// set with [`Bin::set_block_size`]).
    #[cfg(feature = "zero-on-free")]
    block: u32,
}

/// The bits of an address above the low 32 that [`Bin`] keeps of its array's bounds.
const HIGH: usize = !(u32::MAX as usize);

impl Bin {
    /// An empty bin that caches nothing (no array, limit 0): every operation takes the
    /// slow path. (A constant for array initializers: each use is a fresh bin.)
    #[allow(clippy::declare_interior_mutable_const)]
    pub const EMPTY: Bin = Bin {
        top: AtomicPtr::new(ptr::null_mut()),
        end: 0,
        floor: AtomicU32::new(0),
        #[cfg(feature = "zero-on-free")]
        block: 0,
    };

    /// Give the bin its array (the bin must be empty; its limit stays as it is, within
    /// what the array's 4 GiB window allows: see [`Bin::set_limit`]). For a bin of a
    /// registered cache, call it inside [`CacheRegistry::exclusive`], so that stats
    /// never read a count from the old array's top and the new array's start.
    ///
    /// # Safety
    /// `slots` points to an array of at least `cap` pointers that stays valid, and is used
    /// by nothing else, for as long as the bin is used with a limit of at most `cap`
    /// (the caller never sets a higher limit, nor passes one to the methods below).
    #[inline]
    pub unsafe fn set_slots(&mut self, slots: *mut *mut u8) {
        debug_assert_eq!(self.count(), 0, "set_slots on a bin with blocks");
        let limit = self.limit();
        debug_assert!(limit == 0 || !slots.is_null(), "a limit without an array");
        self.floor.store(slots as usize as u32, Ordering::Relaxed);
        self.top.store(slots, Ordering::Relaxed);
        // SAFETY: forwarded caller guarantee (the limit was set for this array's room).
        unsafe { self.set_limit(limit) };
    }

    /// The bin's array (null: none yet). The bin keeps the low 32 bits of its bounds: the
    /// array's high bits are `top`'s, as every slot from the array's start to its bound
    /// lies in one 4 GiB window ([`Bin::set_limit`] keeps the bound there).
    #[inline(always)]
    fn slots(&self) -> *mut *mut u8 {
        let top = self.top.load(Ordering::Relaxed) as usize;
        ((top & HIGH) | self.floor_lo() as usize) as *mut *mut u8
    }

    /// `floor` by a plain read: only this bin's thread writes it, and only it calls this.
    #[inline(always)]
    fn floor_lo(&self) -> u32 {
        // SAFETY: a read of our own field; the only writer is the owning thread, the
        // caller (stats on other threads read it atomically, and never write).
        unsafe { *self.floor.as_ptr() }
    }

    /// Record the block size of the bin's class (used by zero-on-free builds only).
    ///
    /// # Safety
    /// `bs` is the block size of the bin's class (zero-on-free builds write that many
    /// bytes into each block the bin takes).
    #[inline]
    pub unsafe fn set_block_size(&mut self, _bs: usize) {
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

    /// Blocks in the bin. (Callable from other threads, for stats: atomic loads only.)
    #[inline(always)]
    pub fn count(&self) -> u32 {
        let top = self.top.load(Ordering::Relaxed) as usize as u32;
        top.wrapping_sub(self.floor.load(Ordering::Relaxed)) / PTR_BYTES
    }

    /// Most blocks the bin keeps now (0: it caches nothing).
    #[inline(always)]
    pub fn limit(&self) -> u32 {
        self.end.wrapping_sub(self.floor_lo()) / PTR_BYTES
    }

    /// Set the bound (0 turns caching off). A bound below the blocks held now makes the
    /// next free overflow, which gives the surplus back. The bound is cut where the
    /// array's 4 GiB window ends, so that the low 32 bits the bin keeps compare as the
    /// addresses do (an array that crosses such a boundary, which the thread cache's
    /// mappings almost never do, caches fewer blocks).
    ///
    /// # Safety
    /// The bin's array (see [`Bin::set_slots`]) has room for `limit` pointers.
    #[inline]
    pub unsafe fn set_limit(&mut self, limit: u32) {
        debug_assert!(
            limit == 0 || !self.slots().is_null(),
            "a limit without an array"
        );
        let floor = self.floor_lo();
        // The last slot address the window holds below 2^32, so that `end` never wraps.
        let fit = (u32::MAX - (PTR_BYTES - 1) - floor) / PTR_BYTES;
        self.end = floor + limit.min(fit) * PTR_BYTES;
    }

    /// Whether the bin holds no block.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// The bin's blocks, oldest first.
    #[inline(always)]
    #[cfg(any(test, debug_assertions))]
    fn blocks(&self) -> &[*mut u8] {
        if self.slots().is_null() {
            return &[];
        }
        // SAFETY: `slots[..count]` are initialized (the invariant).
        unsafe { core::slice::from_raw_parts(self.slots(), self.count() as usize) }
    }

    /// Debug builds: check the invariant (each block of class `cls`, in
    /// double-free-check builds marked free).
    ///
    /// # Safety
    /// `cls` is the bin's class.
    #[cfg(debug_assertions)]
    unsafe fn check(&self, cls: usize) {
        for &b in self.blocks() {
            debug_assert_eq!(
                // SAFETY: `b` is a block of a live slab: the bin's invariant.
                unsafe { crate::class_of_block(b) },
                cls,
                "a bin holds a block of another class"
            );
            if DOUBLE_FREE_CHECK {
                // SAFETY: a free block of at least 16 bytes.
                debug_assert!(unsafe { is_marked_free(b) }, "unmarked block in a bin");
            }
        }
    }

    #[inline(always)]
    fn set_count(&self, n: u32) {
        self.top
            .store(self.slots().wrapping_add(n as usize), Ordering::Relaxed)
    }

    /// Pop a block, or null when empty. The fast path.
    #[inline(always)]
    pub fn pop(&mut self) -> *mut u8 {
        let top = self.top.load(Ordering::Relaxed);
        if top as usize as u32 == self.floor_lo() {
            return ptr::null_mut();
        }
        // SAFETY: `top` lies above the array's start in its window (the bound does), so
        // `top - 1` is in `slots[..count]`: a free block of this bin (invariant), now the
        // caller's.
        unsafe {
            let top = top.sub(1);
            let p = *top;
            self.top.store(top, Ordering::Relaxed);
            crate::asan::block_handed_out(p);
            check_free_block(p);
            clear_mark(p);
            check_scrubbed(p, self.block_size());
            p
        }
    }

    /// Push a block if the bin has room; false when full. The fast path.
    ///
    /// # Safety
    /// `p` is a free block of this bin's class that the caller gives up.
    #[inline(always)]
    pub unsafe fn push(&mut self, p: *mut u8) -> bool {
        let top = self.top.load(Ordering::Relaxed);
        if (top as usize as u32) < self.end {
            // SAFETY: the caller gives `p` up; it is at least 16 bytes (of the bin's
            // class); `top` below `slots + limit`, in the same window, lies in the array.
            unsafe {
                scrub(p, self.block_size());
                mark_free(p);
                crate::asan::block_freed(p);
                *top = p;
                self.top.store(top.add(1), Ordering::Relaxed);
            }
            true
        } else {
            false
        }
    }

    /// The bin is empty: take [`refill_batch`] blocks of class `cls` from the central
    /// lists (or up to `limit` from the transfer cache) and return one of them.
    /// Null when out of memory. (If the bin is not empty it simply pops.)
    ///
    /// # Safety
    /// `cls` is the bin's class (see [`Bin`]).
    #[cold]
    #[inline(never)]
    pub unsafe fn refill(&mut self, cls: usize) -> *mut u8 {
        // SAFETY: forwarded caller guarantee.
        unsafe { self.refill_upto(cls, usize::MAX) }
    }

    /// [`Bin::refill`], asking for at most `most` blocks (at least one).
    ///
    /// # Safety
    /// `cls` is the bin's class (see [`Bin`]).
    #[cold]
    #[inline(never)]
    pub unsafe fn refill_upto(&mut self, cls: usize, most: usize) -> *mut u8 {
        if self.count() != 0 {
            return self.pop();
        }
        if self.limit() == 0 {
            // Caching is off (the thread is exiting): one block, straight from the slabs.
            let mut one = [ptr::null_mut(); 1];
            if refill_into(cls, &mut one, 1) == 0 {
                return ptr::null_mut();
            }
            let p = one[0];
            // SAFETY: the block is ours.
            unsafe {
                crate::asan::block_handed_out(p);
                check_free_block(p);
                clear_mark(p);
                check_scrubbed(p, self.block_size());
            }
            return p;
        }
        let want = refill_batch(cls, self.limit()).min(most.max(1));
        // SAFETY: the array has room for `limit` pointers (invariant).
        let room = unsafe { core::slice::from_raw_parts_mut(self.slots(), self.limit() as usize) };
        let n = refill_into(cls, room, want);
        if n == 0 {
            return ptr::null_mut();
        }
        // Handed out in the order the refill gave them (lowest address first from a
        // slab): the last slot is popped first.
        room[..n].reverse();
        self.set_count(n as u32);
        #[cfg(debug_assertions)]
        // SAFETY: forwarded caller guarantee.
        unsafe {
            debug_assert_eq!(
                crate::class_of_block(room[0]),
                cls,
                "a refill of another class"
            );
            self.check(cls)
        };
        self.pop()
    }

    /// The bin is full (or caches nothing): give the older half of the bin back to the
    /// central lists of class `cls`, then keep `p`. When the class is shrinking in lean
    /// mode (`flush` says so) the bin gives everything back and caches at most
    /// [`SHRUNK_LIMIT`] blocks; once it is not, the bin gets its normal bound `limit`
    /// back (a bin that caches nothing, limit 0, stays so).
    ///
    /// # Safety
    /// As [`Bin::push`], `cls` is the bin's class (see [`Bin`]), and the bin's array has
    /// room for `limit` pointers (it may become the bound).
    #[cold]
    #[inline(never)]
    pub unsafe fn overflow(&mut self, cls: usize, p: *mut u8, limit: u32) {
        // SAFETY: the caller gives `p` up.
        unsafe {
            debug_assert_eq!(crate::class_of_block(p), cls, "a free into another class");
            scrub(p, self.block_size());
            mark_free(p);
            crate::asan::block_freed(p);
        }
        if self.limit() == 0 {
            // Caching is off: `p` goes straight back (with what the bin still holds).
            // SAFETY: forwarded caller guarantee.
            unsafe {
                self.drain(cls);
                flush_slice(cls, &[p]);
            }
            return;
        }
        // The older half goes back (at least one block: the bin is full), `p` stays.
        let n = self.count();
        let keep = (self.limit() / 2).min(n.saturating_sub(1));
        // SAFETY: the bin's oldest `n - keep` blocks are ours to give back (invariant).
        let shrinking = unsafe { self.give_back_oldest(cls, n - keep) };
        // SAFETY: `keep + 1 <= limit` pointers fit in the array.
        unsafe { *self.slots().add(keep as usize) = p };
        self.set_count(keep + 1);
        if shrinking {
            // Lean mode, and the class is giving slabs back: so does this bin, and it
            // caches at most `SHRUNK_LIMIT` blocks until its next refill.
            // SAFETY: forwarded caller guarantee.
            unsafe {
                self.drain(cls);
                self.set_limit(self.limit().min(SHRUNK_LIMIT));
            }
        } else if self.limit() < limit {
            // SAFETY: the caller guarantees room for `limit`.
            unsafe { self.set_limit(limit) };
        }
    }

    /// Give the `k` oldest blocks (`k <= count`) back to the central lists of class
    /// `cls`, moving the rest down; returns `flush_slice`'s shrinking signal.
    ///
    /// # Safety
    /// `cls` is the bin's class.
    unsafe fn give_back_oldest(&mut self, cls: usize, k: u32) -> bool {
        let n = self.count();
        debug_assert!(k <= n);
        if k == 0 {
            return false;
        }
        // SAFETY: `slots[..n]` are the bin's blocks (invariant); the first `k` go back
        // (the caller's class), the other `n - k` move to the front.
        unsafe {
            #[cfg(debug_assertions)]
            self.check(cls);
            let slots = self.slots();
            let shrinking = flush_slice(cls, core::slice::from_raw_parts(slots, k as usize));
            ptr::copy(slots.add(k as usize), slots, (n - k) as usize);
            self.set_count(n - k);
            shrinking
        }
    }

    /// The slow path of an allocation: pop, or refill when empty (null when out of
    /// memory). `limit` is the bin's normal bound: a bin shrunk by [`Bin::overflow`]
    /// gets it back at its refill (a bin that caches nothing, limit 0, stays so).
    ///
    /// # Safety
    /// `cls` is the bin's class (see [`Bin`]), and its array has room for `limit`.
    #[inline]
    pub unsafe fn pop_or_refill(&mut self, cls: usize, limit: u32) -> *mut u8 {
        // SAFETY: forwarded caller guarantee.
        unsafe { self.pop_or_refill_upto(cls, limit, usize::MAX) }
    }

    /// [`Bin::pop_or_refill`], a refill asking for at most `most` blocks (at least one).
    ///
    /// # Safety
    /// As [`Bin::pop_or_refill`].
    #[inline]
    pub unsafe fn pop_or_refill_upto(&mut self, cls: usize, limit: u32, most: usize) -> *mut u8 {
        let p = self.pop();
        if !p.is_null() {
            return p;
        }
        if self.limit() != 0 && self.limit() < limit {
            // SAFETY: the caller guarantees room for `limit`.
            unsafe { self.set_limit(limit) };
        }
        // SAFETY: forwarded caller guarantee.
        unsafe { self.refill_upto(cls, most) }
    }

    /// The slow path of a free: push, or overflow when full (`limit`: the bin's normal
    /// bound, see [`Bin::overflow`]).
    ///
    /// # Safety
    /// As [`Bin::overflow`], and the bin's array has room for `limit`.
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
    ///
    /// # Safety
    /// `cls` is the bin's class (see [`Bin`]).
    pub unsafe fn drain(&mut self, cls: usize) {
        let n = self.count();
        // SAFETY: forwarded caller guarantee.
        unsafe { self.give_back_oldest(cls, n) };
    }

    /// Give every block straight back to its slab, never to the transfer cache, where
    /// they would only pin slabs the pool could hand on: for a bin that holds every
    /// block of its class that is out while another class grows (see
    /// [`crate::pool_growth`]), and at thread exit ([`drain_all`]).
    ///
    /// # Safety
    /// `cls` is the bin's class (see [`Bin`]).
    pub unsafe fn drain_to_slabs(&mut self, cls: usize) {
        let n = self.count();
        if n == 0 {
            return;
        }
        // SAFETY: `slots[..n]` are the bin's blocks, of class `cls` (invariant and the
        // caller's guarantee); they all go back. (Lean mode's shrinking signal is left to
        // the next overflow.)
        unsafe {
            #[cfg(debug_assertions)]
            self.check(cls);
            crate::flush_slice_to_slabs(cls, core::slice::from_raw_parts(self.slots(), n as usize));
        }
        self.set_count(0);
    }

    /// Keep the `keep` most recently freed blocks and give the rest back to the central
    /// lists of class `cls` (nothing when the bin holds at most `keep`).
    ///
    /// # Safety
    /// `cls` is the bin's class (see [`Bin`]).
    pub unsafe fn trim_to(&mut self, cls: usize, keep: u32) {
        let n = self.count();
        if n > keep {
            // SAFETY: forwarded caller guarantee. (Lean mode's shrinking signal is left
            // to the next overflow.)
            unsafe { self.give_back_oldest(cls, n - keep) };
        }
    }

    /// Stop caching: limit 0 (every push misses and goes to the central lists). Call it
    /// after [`Bin::drain`].
    pub fn drain_for_exit(&mut self) {
        // SAFETY: a bound of 0 needs no room.
        unsafe { self.set_limit(0) };
    }

    /// Fill the bin up to `n` blocks (at most `limit`); false when out of memory.
    ///
    /// # Safety
    /// `cls` is the bin's class (see [`Bin`]).
    pub unsafe fn fill_to(&mut self, cls: usize, n: u32) -> bool {
        let n = n.min(self.limit());
        let have = self.count();
        if have >= n {
            return true;
        }
        // SAFETY: the array has room for `limit >= n` pointers; `slots[have..n]` are
        // free to write.
        let room = unsafe {
            core::slice::from_raw_parts_mut(self.slots().add(have as usize), (n - have) as usize)
        };
        let want = room.len();
        let got = refill_into(cls, room, want);
        if got == 0 {
            return false;
        }
        // The refill's blocks go under the bin's own (they are older in the stack).
        // SAFETY: `slots[..have + got]` hold blocks; rotate so the new ones come first.
        unsafe {
            core::slice::from_raw_parts_mut(self.slots(), have as usize + got).rotate_right(got);
        }
        self.set_count(have + got as u32);
        debug_assert!(self.count() <= self.limit(), "fill_to past the bound");
        #[cfg(debug_assertions)]
        // SAFETY: forwarded caller guarantee.
        unsafe {
            self.check(cls)
        };
        true
    }
}

/// Drain a thread's bins (`bins[i]` holds class `first_class + i`): to the central
/// lists (a flush request, `trim`), or, with `stop`, straight to their slabs, and turn
/// caching off for good (thread exit, or no exit hook). A stopped cache's blocks are
/// nobody's working set: in the transfer cache each would keep its slab in use, and the
/// shard's pages resident, for no thread (`cbench thread`'s peak RSS 2.92-3.05 -> 2.80-2.82
/// MiB, results/235).
///
/// # Safety
/// `bins[i]`'s class is `first_class + i` (see [`Bin`]).
pub unsafe fn drain_all(bins: &mut [Bin], first_class: usize, stop: bool) {
    for (i, b) in bins.iter_mut().enumerate() {
        // SAFETY: forwarded caller guarantee.
        unsafe {
            if stop {
                b.drain_to_slabs(first_class + i);
                b.drain_for_exit();
            } else {
                b.drain(first_class + i);
            }
        }
    }
}

/// A thread cache as the [`CacheRegistry`] sees it: where its bins are. Nodes live in
/// memory the registry maps for them and never unmaps, never in the thread's own storage:
/// linking or unlinking a node never touches memory that went away with another thread.
/// Its fields are read and written only with the registry's lock held.
#[derive(Debug)]
pub struct CacheNode {
    next: *mut CacheNode,
    prev: *mut CacheNode,
    bins: *const Bin,
    n: usize,
    first_class: usize,
}

/// Bytes of nodes the registry maps at a time.
const NODE_CHUNK: usize = 64 * 1024;

/// The registry's state, reached only through its lock's guard.
struct Nodes {
    /// Registered nodes, linked through `next` / `prev`.
    head: *mut CacheNode,
    /// Unregistered nodes, linked through `next`.
    free: *mut CacheNode,
    /// The rest of the last chunk: the next node to carve...
    carve: *mut CacheNode,
    /// ...and how many are left.
    left: usize,
}

// SAFETY: the pointers are to registry memory (nodes) and to registered threads' bins,
// whose `count` is an atomic; `Nodes` is only reached through the `Locked` around it, so
// one thread at a time follows them.
unsafe impl Send for Nodes {}

impl Nodes {
    /// A node from the free list or the current chunk (mapping a new chunk if needed);
    /// null when the OS refuses the memory.
    fn take_node(&mut self) -> *mut CacheNode {
        if !self.free.is_null() {
            let node = self.free;
            // SAFETY: a free node is registry memory (never unmapped), reached under the
            // lock (`&mut self` comes from the guard).
            self.free = unsafe { (*node).next };
            return node;
        }
        if self.left == 0 {
            let chunk = hakmem_os_stats::os::map(NODE_CHUNK).cast::<CacheNode>();
            if chunk.is_null() {
                return ptr::null_mut();
            }
            self.carve = chunk;
            self.left = NODE_CHUNK / core::mem::size_of::<CacheNode>();
        }
        let node = self.carve;
        // SAFETY: `left > 0` nodes remain in the chunk from `carve` on.
        self.carve = unsafe { node.add(1) };
        self.left -= 1;
        node
    }

    /// Put `node` (unlinked by the caller) on the free list.
    ///
    /// # Safety
    /// `node` is a node of this registry that is in no list.
    unsafe fn give_back(&mut self, node: *mut CacheNode) {
        // SAFETY: registry memory, reached under the lock.
        unsafe {
            (*node).prev = ptr::null_mut();
            (*node).bins = ptr::null();
            (*node).n = 0;
            (*node).next = self.free;
        }
        self.free = node;
    }

    /// The registered nodes in list order, for the walks below.
    fn for_each(&self, mut f: impl FnMut(&CacheNode)) {
        let mut n = self.head;
        while !n.is_null() {
            // SAFETY: a listed node is registry memory, read under the lock.
            let node = unsafe { &*n };
            f(node);
            n = node.next;
        }
    }
}

/// The live thread caches, so that [`CacheRegistry::cached`] can count the blocks they
/// hold (for stats) without touching any fast path: each bin's count is an atomic
/// written only by its thread with plain stores. (`hakmem-tiny-fast` has the process's
/// one registry: one node per thread, for all its bins.)
///
/// Its nodes come from chunks it maps itself (64 KiB, about 1,300 nodes, mapped as
/// threads need them and never unmapped) and go back to its free list when a thread
/// unregisters. A registered node points to its thread's bins, which live in that
/// thread's TLS: every thread that registers must unregister before its TLS goes away
/// (its exit hook, [`ExitKey`], does).
///
/// The list and the free list are behind a [`Locked`]: every method takes the lock for
/// the length of its walk (a leaf lock: nothing else is taken inside it except the
/// `mmap` of a new chunk); the fork handlers take it through the unsafe
/// [`Locked::fork_lock`] / [`Locked::fork_unlock`].
pub struct CacheRegistry {
    nodes: Locked<Nodes>,
}

impl Default for CacheRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheRegistry {
    hakmem_os_stats::loom_const_fn! {
        /// An empty registry.
        pub fn new() -> Self {
            CacheRegistry {
                nodes: Locked::new(Nodes {
                    head: ptr::null_mut(),
                    free: ptr::null_mut(),
                    carve: ptr::null_mut(),
                    left: 0,
                }),
            }
        }
    }

    /// Register the calling thread's cache: `n` bins at `bins`, for classes
    /// `first_class..first_class + n`. Returns its node, or null when no memory could be
    /// mapped for it (then the thread must cache nothing).
    ///
    /// # Safety
    /// `bins` stays valid and unmoved until the node is passed to
    /// [`CacheRegistry::unregister`], which happens before the memory of `bins` goes
    /// away.
    pub unsafe fn register(
        &self,
        bins: *const Bin,
        n: usize,
        first_class: usize,
    ) -> *mut CacheNode {
        let mut g = self.nodes.lock();
        let node = g.take_node();
        if !node.is_null() {
            // SAFETY: the node is ours (just taken, registry memory); the listed nodes
            // are registry memory; the lock is held (guard `g`).
            unsafe {
                node.write(CacheNode {
                    next: g.head,
                    prev: ptr::null_mut(),
                    bins,
                    n,
                    first_class,
                });
                if !g.head.is_null() {
                    (*g.head).prev = node;
                }
            }
            g.head = node;
        }
        node
    }

    /// Run `f` with the registry's lock held, so that no stats reader ([`cached`],
    /// [`cached_by_class`]) walks the caches meanwhile. For the owner of a registered
    /// cache that gives one of its bins another array ([`Bin::set_slots`]): a reader
    /// computes a bin's count from two words, which that changes one after the other, so
    /// it would read a count of blocks the bin never held.
    ///
    /// [`cached`]: CacheRegistry::cached
    /// [`cached_by_class`]: CacheRegistry::cached_by_class
    pub fn exclusive<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = self.nodes.lock();
        f()
    }

    /// Remove a registered cache; its node goes back to the free list.
    ///
    /// # Safety
    /// `node` was returned by [`CacheRegistry::register`] of this registry and not
    /// unregistered since.
    pub unsafe fn unregister(&self, node: *mut CacheNode) {
        let mut g = self.nodes.lock();
        debug_assert!(!node.is_null(), "unregister of a null node");
        // SAFETY: `node` is in the list (caller), its neighbours too; lock held.
        unsafe {
            debug_assert!(
                (*node).prev.is_null() == (g.head == node),
                "unregister of a node that is not listed"
            );
            if (*node).prev.is_null() {
                g.head = (*node).next;
            } else {
                (*(*node).prev).next = (*node).next;
            }
            if !(*node).next.is_null() {
                (*(*node).next).prev = (*node).prev;
            }
            g.give_back(node);
        }
    }

    /// Registered caches now (for tests).
    pub fn len(&self) -> usize {
        let mut len = 0;
        self.nodes.lock().for_each(|_| len += 1);
        len
    }

    /// Whether no cache is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocks and bytes held by every registered cache now.
    pub fn cached(&self) -> (u64, u64) {
        let (mut blocks, mut bytes) = (0u64, 0u64);
        self.nodes.lock().for_each(|node| {
            for i in 0..node.n {
                // SAFETY: a registered node's bins are valid (a thread unregisters before
                // its thread-local storage goes away); `count` is an atomic.
                let c = unsafe { (*node.bins.add(i)).count() } as u64;
                blocks += c;
                bytes += c * crate::class::block_size(node.first_class + i) as u64;
            }
        });
        (blocks, bytes)
    }

    /// Blocks cached per class, summed over the registered threads' caches into
    /// `out[class]` (added to what `out` holds; classes past its end are left out).
    pub fn cached_by_class(&self, out: &mut [u64]) {
        self.nodes.lock().for_each(|node| {
            for i in 0..node.n {
                // SAFETY: as in `cached`.
                let c = unsafe { (*node.bins.add(i)).count() } as u64;
                if let Some(o) = out.get_mut(node.first_class + i) {
                    *o += c;
                }
            }
        });
    }

    /// Fork handler (`pthread_atfork` prepare): take the lock, so that no other thread
    /// holds it across the `fork`.
    ///
    /// # Safety
    /// As [`Locked::fork_lock`]: only in a fork-prepare handler, paired with
    /// [`CacheRegistry::fork_release`] in the parent and [`CacheRegistry::fork_child`]
    /// in the child; the calling thread is in no other method of this registry.
    pub unsafe fn fork_prepare(&self) {
        // SAFETY: forwarded caller guarantee.
        unsafe { self.nodes.fork_lock() }
    }

    /// Fork handler for the parent: release the lock.
    ///
    /// # Safety
    /// The calling thread took the lock with [`CacheRegistry::fork_prepare`] and has not
    /// released it since (a release by any other thread would unlock a lock it does not
    /// hold).
    pub unsafe fn fork_release(&self) {
        // SAFETY: forwarded caller guarantee.
        unsafe { self.nodes.fork_unlock() }
    }

    /// Fork handler for the child: only the forking thread exists there, and the other
    /// threads' caches live in thread-local storage that glibc will reuse or unmap, so
    /// the list is reset to `own` (the forking thread's node, or null if it has none) and
    /// the other nodes go to the free list, then the lock is released. The blocks the
    /// other threads had cached are not returned in the child (as with glibc's
    /// per-thread caches): their bins may have been in mid-update when the fork happened.
    ///
    /// # Safety
    /// Called once in the child of a fork, by its only thread, which took the lock with
    /// [`CacheRegistry::fork_prepare`] before the fork; `own` is null or the calling
    /// thread's registered node.
    pub unsafe fn fork_child(&self, own: *mut CacheNode) {
        // SAFETY: the calling thread took the lock before the fork (caller). It is the
        // only thread of the child, so nobody can take the lock between this release
        // and the `lock` below.
        unsafe { self.nodes.fork_unlock() };
        let mut g = self.nodes.lock();
        let mut n = g.head;
        while !n.is_null() {
            // SAFETY: the listed nodes are registry memory, copied into the child; the
            // lock is held.
            unsafe {
                let next = (*n).next;
                if n != own {
                    g.give_back(n);
                }
                n = next;
            }
        }
        if !own.is_null() {
            // SAFETY: `own` is a registered node (caller), registry memory.
            unsafe {
                (*own).next = ptr::null_mut();
                (*own).prev = ptr::null_mut();
            }
        }
        g.head = own;
    }
}

/// Most thread-exit hooks [`ExitKey`] runs (one per thread cache; the allocator has one).
pub const MAX_EXIT_HOOKS: usize = 4;

/// The thread-exit hook of every thread cache: one pthread key, process-wide
/// ([`THREAD_EXIT`]), whose destructor runs the hooks added to it (in the order they
/// were added; `hakmem-tiny-fast`'s is the only one the allocator adds) at the exit of
/// every thread that armed it.
///
/// **Why the key has a high index.** glibc's `__nptl_deallocate_tsd` visits the keys
/// in index order in each destructor round, and runs at most
/// `PTHREAD_DESTRUCTOR_ITERATIONS` (4) rounds. A thread whose first allocation happens in
/// another key's destructor arms this key then: if this key's slot were before that
/// key's, it would be visited only in the next round, and in round 4 never, leaving the
/// cache undrained. So the key threads are armed on is created at a high index (the
/// *sweep*: keys are created until one comes at index `PTHREAD_KEYS_MAX - 3`, 1021 on
/// glibc, or `pthread_key_create` fails; the last is kept, the others deleted, and a key
/// that comes above 1021 is deleted at once): in every round its slot is visited after
/// any destructor that could have armed it, but that of a key created during the sweep
/// itself. A hook drains the cache and turns caching off for good, so allocations in
/// later rounds cache nothing.
///
/// **The top two indices are left free**, so that the sweep does not make another
/// thread's `pthread_key_create` fail: a key created while the sweep holds every lower
/// slot gets one of them. (Sweeping until `pthread_key_create` failed held the whole
/// table for a moment at every sweep: `the_sweep_leaves_a_key_for_other_threads` saw
/// another thread's calls fail about once per two sweeps. The table can still be full
/// for a moment, one create and one delete long, if two other threads hold the two top
/// slots as the sweep reaches them.) Only a key created during the sweep, or one the
/// program made at a top index before it, comes after ours; its destructor would have to
/// make a thread's first allocation in round 4 to leave a cache undrained.
///
/// **The main thread is armed on the low key** (below), so a process that never starts
/// a thread makes no sweep: the sweep comes at the first allocation of a thread other
/// than the main thread (about 1,024 `pthread_key_create` calls, 0.2-0.3 ms and 4.7
/// million instructions, once per process). The main thread needs no ordering: its key
/// destructors run only if it calls `pthread_exit`, long after its first allocation.
/// (Which thread is the main one is asked, with `gettid` and `getpid`, only until the
/// main thread is armed; a thread arms once.)
///
/// **Low key** ([`ExitKey::use_low_key`], what `libhakmem.so` does): every thread is
/// armed on a key created at the lowest free index with one call, and there is no sweep at all.
/// That is sound for a library that arms every thread it starts *before the thread runs
/// any code of its own*: `libhakmem.so` wraps `pthread_create` and starts each thread on a
/// trampoline that sets the thread's cache up first. A thread armed from its start is
/// drained by this key's destructor in round 1, wherever the key's slot is, and caches
/// nothing after that, so no destructor, in any round, can arm it late. What is left
/// undrained is a thread started otherwise (glibc's own helper threads, a raw `clone`)
/// whose first allocation comes from a key destructor in round 4: its cache (one refill
/// per class it used) is lost with it.
///
/// For an index of 32 or more, glibc's first
/// `pthread_setspecific` on a thread allocates a 512-byte array with `calloc` (under
/// `LD_PRELOAD` that re-enters hakmem while it sets the thread up: the cache turns
/// caching on before arming the key) and frees it after the last round (a free from a
/// thread whose cache is already off).
pub struct ExitKey {
    /// The key at a high index (the sweep's). 0: not created, 1: being created, 2:
    /// ready, 3: failed.
    state: AtomicU32,
    key: UnsafeCell<libc::pthread_key_t>,
    /// The key at the lowest free index, on which threads are armed instead
    /// ([`ExitKey::use_low_key`]); states as `state`.
    low_state: AtomicU32,
    low: UnsafeCell<libc::pthread_key_t>,
    /// Whether threads are armed on the low key ([`ExitKey::use_low_key`]).
    low_only: AtomicBool,
    /// Whether the main thread has armed (on the low key): every later thread to arm is
    /// another one.
    main_armed: AtomicBool,
    /// The hooks, as `fn()` addresses (0: free slot).
    hooks: [AtomicUsize; MAX_EXIT_HOOKS],
}

// SAFETY: `key` and `low` are each written once (their state 1 -> 2, by one thread) and
// read only in state 2; everything else is atomic.
unsafe impl Sync for ExitKey {}

/// The process's thread-exit key (`hakmem-tiny-fast`'s thread cache arms it).
pub static THREAD_EXIT: ExitKey = ExitKey::new();

impl Default for ExitKey {
    fn default() -> Self {
        Self::new()
    }
}

/// Most keys created while looking for the highest free index (glibc has 1024).
const KEYS_MAX: usize = 1024;

/// Top indices the sweep leaves free for other threads (see [`ExitKey`]).
const SWEEP_SPARE: usize = 2;

/// The index the sweep stops at: `PTHREAD_KEYS_MAX - 1 - SWEEP_SPARE` (1021 on glibc),
/// `PTHREAD_KEYS_MAX` read from `sysconf` and at most [`KEYS_MAX`].
fn sweep_top() -> usize {
    // SAFETY: sysconf has no preconditions.
    let max = unsafe { libc::sysconf(libc::_SC_THREAD_KEYS_MAX) };
    let max = if max > SWEEP_SPARE as libc::c_long + 1 {
        max as usize
    } else {
        KEYS_MAX
    };
    max.min(KEYS_MAX) - 1 - SWEEP_SPARE
}

/// Create a key with destructor `dtor` at the highest free index up to `top` (the
/// *sweep*): create keys until one comes at index `top` or above, or
/// `pthread_key_create` fails (or [`KEYS_MAX`] exist); keep the last, delete the others.
/// A key above `top` (one of the top indices, left free for others) is deleted at once
/// and the one before kept. None if not even one could be created.
fn create_last_key(
    dtor: unsafe extern "C" fn(*mut libc::c_void),
    top: usize,
) -> Option<libc::pthread_key_t> {
    let mut made = [0 as libc::pthread_key_t; KEYS_MAX];
    let mut n = 0;
    let mut last: Option<libc::pthread_key_t> = None;
    loop {
        let mut k: libc::pthread_key_t = 0;
        // SAFETY: `k` is a valid out-parameter; `dtor` is an `extern "C"` function.
        if unsafe { libc::pthread_key_create(&mut k, Some(dtor)) } != 0 {
            break;
        }
        let past_top = k as usize > top && last.is_some();
        if past_top || (last.is_some() && n == made.len()) {
            // A top index (another thread may need it) or more keys than KEYS_MAX:
            // give `k` back at once, keep the one before.
            // SAFETY: `k` was just created and never set.
            unsafe { libc::pthread_key_delete(k) };
            break;
        }
        if let Some(prev) = last.replace(k) {
            made[n] = prev;
            n += 1;
        }
        if k as usize >= top {
            break;
        }
    }
    for &k in &made[..n] {
        // SAFETY: created above, never set by anyone (nobody else knows them).
        unsafe { libc::pthread_key_delete(k) };
    }
    last
}

/// Run `make` once for the key behind `state` (0: not created, 1: being created, 2:
/// ready, 3: failed) and store what it made in `key`; later calls wait for the first.
/// True once the key is ready.
fn create_once(
    state: &AtomicU32,
    key: &UnsafeCell<libc::pthread_key_t>,
    make: impl FnOnce() -> Option<libc::pthread_key_t>,
) -> bool {
    let mut make = Some(make);
    loop {
        match state.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => {
                let made = make.take().and_then(|f| f());
                if let Some(k) = made {
                    // SAFETY: state 1 gives this thread exclusive access to `key`.
                    unsafe { *key.get() = k };
                }
                state.store(if made.is_some() { 2 } else { 3 }, Ordering::Release);
            }
            Err(1) => core::hint::spin_loop(),
            Err(2) => return true,
            Err(_) => return false,
        }
    }
}

/// The destructor of the keys: `v` is the [`ExitKey`] (set by `arm`).
unsafe extern "C" fn run_exit_hooks(v: *mut libc::c_void) {
    // SAFETY: the only value ever set is a `&'static ExitKey`.
    let key = unsafe { &*(v as *const ExitKey) };
    for h in &key.hooks {
        let f = h.load(Ordering::Acquire);
        if f != 0 {
            // SAFETY: only `fn()` addresses are stored in `hooks`.
            let f = unsafe { core::mem::transmute::<usize, fn()>(f) };
            f();
        }
    }
}

impl ExitKey {
    /// A key not created yet.
    pub const fn new() -> Self {
        ExitKey {
            state: AtomicU32::new(0),
            key: UnsafeCell::new(0),
            low_state: AtomicU32::new(0),
            low: UnsafeCell::new(0),
            low_only: AtomicBool::new(false),
            main_armed: AtomicBool::new(false),
            hooks: [const { AtomicUsize::new(0) }; MAX_EXIT_HOOKS],
        }
    }

    /// Add `hook` to the hooks run at every armed thread's exit (once; later calls with
    /// the same hook do nothing). False when [`MAX_EXIT_HOOKS`] others are there.
    fn add_hook(&self, hook: fn()) -> bool {
        let f = hook as usize;
        for h in &self.hooks {
            match h.compare_exchange(0, f, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(old) if old == f => return true,
                Err(_) => {}
            }
        }
        false
    }

    /// Create the key (once per process, at a high index: the sweep).
    /// False if it could not be created.
    pub fn create(&self) -> bool {
        create_once(&self.state, &self.key, || {
            create_last_key(run_exit_hooks, sweep_top())
        })
    }

    /// Create the low key (once per process, at the lowest free index: one
    /// `pthread_key_create`). False if it could not be created.
    fn create_low(&self) -> bool {
        create_once(&self.low_state, &self.low, || {
            let mut k: libc::pthread_key_t = 0;
            // SAFETY: `k` is a valid out-parameter; the destructor is `extern "C"`.
            (unsafe { libc::pthread_key_create(&mut k, Some(run_exit_hooks)) } == 0).then_some(k)
        })
    }

    /// Arm threads on a key at the lowest free index (one `pthread_key_create`), never
    /// on one at the highest (no sweep of 1,024). Only for a library that arms every
    /// thread it starts before the thread runs any code of its own (see the type's docs,
    /// "Low key"); call it before the first thread is armed.
    pub fn use_low_key(&self) {
        self.low_only.store(true, Ordering::Relaxed);
    }

    /// Whether the calling thread, arming, is the process's main thread (asked until the
    /// main thread has armed; a thread arms once).
    fn arming_main(&self) -> bool {
        if self.main_armed.load(Ordering::Relaxed) {
            return false;
        }
        // SAFETY: the `gettid` system call and `getpid` have no preconditions. (The
        // system call, not glibc's `gettid`, which only glibc 2.30 and later have.)
        let main = unsafe { libc::syscall(libc::SYS_gettid) == libc::getpid() as libc::c_long };
        if main {
            self.main_armed.store(true, Ordering::Relaxed);
        }
        main
    }

    /// The key's index (glibc's `pthread_key_t` is the index), once created.
    pub fn index(&self) -> Option<usize> {
        if self.state.load(Ordering::Acquire) == 2 {
            // SAFETY: state 2: `key` is initialized and immutable.
            Some(unsafe { *self.key.get() } as usize)
        } else {
            None
        }
    }

    /// The low key's index, once created (see [`ExitKey::use_low_key`]).
    pub fn low_index(&self) -> Option<usize> {
        if self.low_state.load(Ordering::Acquire) == 2 {
            // SAFETY: state 2: `low` is initialized and immutable.
            Some(unsafe { *self.low.get() } as usize)
        } else {
            None
        }
    }

    /// Arrange for `hook` to run when the calling thread exits (with every other hook
    /// added to this key, whichever box armed the thread). False if the key could not be
    /// created or set, or the hook table is full: the caller must then cache nothing for
    /// this thread (a cache without an exit hook would be lost, and its registry node
    /// would point into the thread's storage after the thread is gone).
    ///
    /// `pthread_setspecific` may call `calloc` (the key's index is above 31): the caller
    /// must be ready for a re-entrant allocation.
    pub fn register_current_thread(&'static self, hook: fn()) -> bool {
        if !self.add_hook(hook) {
            return false;
        }
        // The swept key, unless threads are armed on the low one or this is the main
        // thread (see the type's docs).
        let key = if !self.low_only.load(Ordering::Relaxed) && !self.arming_main() {
            if !self.create() {
                return false;
            }
            &self.key
        } else {
            if !self.create_low() {
                return false;
            }
            &self.low
        };
        // SAFETY: state 2 (checked by `create` / `create_low`): the key is initialized
        // and immutable. A non-null value makes the destructor run at thread exit; it is
        // this `'static` key.
        unsafe {
            libc::pthread_setspecific(*key.get(), self as *const ExitKey as *const libc::c_void)
                == 0
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn registry_nodes_are_reused_and_fork_child_keeps_one() {
        let r = CacheRegistry::new();
        let bins = [const { Bin::EMPTY }; 3];
        // SAFETY: `bins` outlives every registration below (all unregistered or reset).
        unsafe {
            let a = r.register(bins.as_ptr(), 3, 0);
            let b = r.register(bins.as_ptr(), 3, 0);
            let c = r.register(bins.as_ptr(), 3, 0);
            assert!(!a.is_null() && !b.is_null() && !c.is_null());
            assert_eq!(r.len(), 3);
            assert_eq!(r.cached(), (0, 0));
            r.unregister(b);
            assert_eq!(r.len(), 2);
            // A freed node is handed out again (no new memory per thread).
            assert_eq!(r.register(bins.as_ptr(), 3, 0), b);
            // (A fork simulated in-process: this thread takes the lock and resets.)
            r.fork_prepare();
            r.fork_child(c);
            assert_eq!(r.len(), 1);
            // The other nodes went back to the free list.
            let d = r.register(bins.as_ptr(), 3, 0);
            assert!(d == a || d == b);
            r.unregister(d);
            r.unregister(c);
            assert!(r.is_empty());
        }
    }

    /// The tests that sweep the key indices (two sweeps at once would split the free
    /// indices between them).
    static SWEEP: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Every key that can be created now is below `index` but those at the top indices
    /// (the sweep leaves them free), and there is at least one below (all deleted again).
    fn highest_free_was(index: usize) {
        let top = sweep_top();
        let mut made = std::vec::Vec::new();
        loop {
            let mut k = 0;
            // SAFETY: a valid out-parameter.
            if unsafe { libc::pthread_key_create(&mut k, None) } != 0 {
                break;
            }
            made.push(k);
        }
        assert!(
            made.len() > SWEEP_SPARE,
            "the sweep gave the other keys back"
        );
        for &k in &made {
            assert!(
                (k as usize) < index || k as usize > top,
                "key {k} between the swept one, {index}, and the spare ones"
            );
            // SAFETY: created just above.
            unsafe { libc::pthread_key_delete(k) };
        }
        let spare = made.iter().filter(|&&k| k as usize > top).count();
        assert_eq!(spare, SWEEP_SPARE, "the top indices are free");
    }

    fn value_of(k: usize) -> *const libc::c_void {
        // SAFETY: glibc returns null for an index that is not a live key.
        unsafe { libc::pthread_getspecific(k as libc::pthread_key_t) }
    }

    #[test]
    fn exit_key_takes_the_highest_free_index() {
        let _g = SWEEP.lock().unwrap_or_else(|e| e.into_inner());
        static K: ExitKey = ExitKey::new();
        assert_eq!(K.index(), None);
        assert!(K.create());
        let i = K.index().unwrap();
        // SAFETY: sysconf has no preconditions.
        let max = unsafe { libc::sysconf(libc::_SC_THREAD_KEYS_MAX) };
        assert!(i < max as usize);
        highest_free_was(i);
    }

    /// The sweep does not make another thread's `pthread_key_create` fail: a thread
    /// that creates and deletes keys in a loop while sweeps run always gets one. (With
    /// a sweep that takes every free index, about half the sweeps made it fail.)
    #[test]
    fn the_sweep_leaves_a_key_for_other_threads() {
        use std::sync::atomic::AtomicUsize;
        let _g = SWEEP.lock().unwrap_or_else(|e| e.into_inner());
        static DONE: AtomicBool = AtomicBool::new(false);
        static CREATED: AtomicUsize = AtomicUsize::new(0);
        static FAILED: AtomicUsize = AtomicUsize::new(0);
        unsafe extern "C" fn dtor(_: *mut libc::c_void) {}
        let other = std::thread::spawn(|| {
            while !DONE.load(Ordering::Relaxed) {
                let mut k = 0;
                // SAFETY: a valid out-parameter.
                if unsafe { libc::pthread_key_create(&mut k, None) } == 0 {
                    CREATED.fetch_add(1, Ordering::Relaxed);
                    // SAFETY: created just above, never set.
                    unsafe { libc::pthread_key_delete(k) };
                } else {
                    FAILED.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let top = sweep_top();
        let mut sweeps = 0;
        while sweeps < 300 {
            let k = create_last_key(dtor, top).expect("a key");
            assert!(k as usize <= top + 1);
            // SAFETY: created by the sweep, never set.
            unsafe { libc::pthread_key_delete(k) };
            sweeps += 1;
        }
        DONE.store(true, Ordering::Relaxed);
        other.join().unwrap();
        assert_eq!(
            FAILED.load(Ordering::Relaxed),
            0,
            "{} of {} pthread_key_create calls failed during {sweeps} sweeps",
            FAILED.load(Ordering::Relaxed),
            CREATED.load(Ordering::Relaxed) + FAILED.load(Ordering::Relaxed)
        );
    }

    #[test]
    fn a_low_key_exit_key_never_sweeps() {
        static K: ExitKey = ExitKey::new();
        fn hook() {}
        let me = &K as *const ExitKey as *const libc::c_void;
        // (Its one `pthread_key_create` would fail during another test's sweep.)
        let _g = SWEEP.lock().unwrap_or_else(|e| e.into_inner());
        K.use_low_key();
        // Armed without the sweep: on one key at the lowest free index.
        assert!(K.register_current_thread(hook));
        assert_eq!(K.index(), None, "swept");
        let low = K.low_index().unwrap();
        assert_eq!(value_of(low), me);
        // Other threads too, on the same key, and still no sweep.
        std::thread::spawn(move || {
            let me = &K as *const ExitKey as *const libc::c_void;
            assert!(K.register_current_thread(hook));
            assert_eq!(value_of(low), me);
        })
        .join()
        .unwrap();
        assert_eq!(K.index(), None, "swept");
        assert_eq!(K.low_index(), Some(low));
    }

    /// A bin keeps the low 32 bits of its bounds: its bound stops where its array's
    /// 4 GiB window ends (so that `end` never wraps), and follows the array when it moves.
    #[test]
    fn a_bin_bound_stays_in_its_4_gib_window() {
        let mut b = Bin::EMPTY;
        assert_eq!((b.count(), b.limit()), (0, 0));
        // SAFETY: a limit of 0 needs no array.
        unsafe { b.set_limit(0) };
        assert!(b.pop().is_null());
        // Arrays that are never read or written here (no push, no pop): only the
        // bounds are computed.
        let near = (1usize << 32) - 3 * 8;
        // SAFETY: the bin is never used to touch `near`'s slots.
        unsafe {
            b.set_slots(near as *mut *mut u8);
            b.set_limit(1000);
        }
        // Slots at 2^32 - 24 and - 16 fit; one at - 8 would make `end` 2^32.
        assert_eq!(b.limit(), 2);
        assert_eq!(b.slots() as usize, near);
        let far = (5usize << 32) + 4096;
        // SAFETY: as above; the bin is empty.
        unsafe {
            b.set_slots(far as *mut *mut u8);
            b.set_limit(1000);
        }
        assert_eq!((b.slots() as usize, b.count(), b.limit()), (far, 0, 1000));
        // SAFETY: a bound of 0 needs no room.
        unsafe { b.set_limit(0) };
        assert_eq!(b.limit(), 0);
    }

    /// A registered bin that moves between two arrays, empty, under
    /// `CacheRegistry::exclusive`, never shows stats a block (without it, a reader takes
    /// the count from one array's top and the other's start: tens of thousands).
    #[test]
    fn stats_never_see_a_bin_move() {
        static REG: CacheRegistry = CacheRegistry::new();
        let mut arrays = std::vec![ptr::null_mut::<u8>(); 100_000];
        let (x, y) = (
            arrays.as_mut_ptr(),
            arrays.as_mut_ptr().wrapping_add(60_000),
        );
        let bin = std::boxed::Box::into_raw(std::boxed::Box::new(Bin::EMPTY));
        // SAFETY: the bin stays valid until unregistered below.
        let node = unsafe { REG.register(bin, 1, 0) };
        assert!(!node.is_null());
        let (stop, reads) = (AtomicBool::new(false), AtomicUsize::new(0));
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(REG.cached().0, 0, "stats saw blocks in an empty bin");
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
            // Moves while the reader reads (a million reads, or 5 s).
            let t = std::time::Instant::now();
            let mut i = 0usize;
            while reads.load(Ordering::Relaxed) < 1_000_000 && t.elapsed().as_secs() < 5 {
                let to = if i.is_multiple_of(2) { x } else { y };
                i += 1;
                // SAFETY: the bin is empty with limit 0 and owned by this thread; the
                // arrays outlive it.
                REG.exclusive(|| unsafe { (*bin).set_slots(to) });
            }
            stop.store(true, Ordering::Relaxed);
        });
        // SAFETY: registered above; the bin is freed after it leaves the registry.
        unsafe {
            REG.unregister(node);
            drop(std::boxed::Box::from_raw(bin));
        }
        drop(arrays);
    }

    /// A bin over the array `slots` (which the test keeps alive while the bin is used),
    /// with a bound of its length.
    fn test_bin(slots: &mut [*mut u8]) -> Bin {
        let mut b = Bin::EMPTY;
        // SAFETY: the caller's array of `slots.len()` pointers, used by this bin only
        // and alive as long as it.
        unsafe {
            b.set_slots(slots.as_mut_ptr());
            b.set_limit(slots.len() as u32);
        }
        b
    }

    #[test]
    fn bin_push_pop_refill_overflow() {
        let cls = 2; // 48-byte blocks
        let mut b_slots = [ptr::null_mut::<u8>(); 8];
        let mut b = test_bin(&mut b_slots);
        assert!(b.pop().is_null());
        // SAFETY: the bins are used with class `cls` only.
        let p = unsafe { b.refill(cls) };
        assert!(!p.is_null());
        assert_eq!(b.count(), 3);
        // SAFETY: p is ours, of class `cls`.
        unsafe {
            assert!(b.push(p));
        }
        assert_eq!(b.count(), 4);
        // SAFETY: class `cls` only.
        assert!(unsafe { b.fill_to(cls, 8) });
        assert_eq!(b.count(), 8);
        // Refill of a non-empty bin just pops.
        // SAFETY: class `cls` only.
        let q = unsafe { b.refill(cls) };
        assert_eq!(b.count(), 7);
        // SAFETY: q is ours.
        unsafe { assert!(b.push(q)) };
        let mut other_slots = [ptr::null_mut::<u8>(); 8];
        let mut other = test_bin(&mut other_slots);
        // SAFETY: class `cls` only.
        let extra = unsafe { other.refill(cls) };
        assert!(!extra.is_null());
        // Overflow gives the older half back and keeps the newer half and the new block.
        let newer: std::vec::Vec<*mut u8> = b.blocks()[4..].to_vec();
        // SAFETY: `extra` is ours.
        unsafe { b.overflow(cls, extra, 8) };
        assert_eq!(b.count(), 5);
        assert_eq!(
            &b.blocks()[..4],
            &newer[..],
            "the newer half stays, in order"
        );
        assert_eq!(b.pop(), extra, "the new block on top");
        // SAFETY: back in.
        unsafe { assert!(b.push(extra)) };
        // SAFETY: class `cls` only.
        unsafe {
            b.drain(cls);
            other.drain(cls);
        }
        assert_eq!(b.count(), 0);
        assert!(b.is_empty());
    }

    /// A refill carves at most `REFILL_BYTES` of blocks, also for a mid class whose
    /// bound is far larger (half of it was carved at once: 128 KiB for a class used once).
    #[test]
    fn a_refill_takes_at_most_refill_bytes() {
        let mut b_slots = [ptr::null_mut::<u8>(); 64];
        for cls in [0, 19, crate::class::NTINY, crate::class::class_of(4096), 40] {
            let bs = crate::class::block_size(cls);
            let mut b = test_bin(&mut b_slots);
            // SAFETY: the bin is used with class `cls` only, then drained.
            let p = unsafe { b.refill(cls) };
            assert!(!p.is_null());
            let got = b.count() as usize + 1;
            assert!(
                got * bs <= REFILL_BYTES.max(bs),
                "class {cls} ({bs} B): a refill took {got} blocks"
            );
            assert_eq!(got, refill_batch(cls, 64));
            // SAFETY: `p` is ours, of class `cls`.
            unsafe {
                assert!(b.push(p));
                b.drain(cls);
            }
        }
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
        let mut b_slots = [ptr::null_mut::<u8>(); 8];
        let mut b = test_bin(&mut b_slots);
        // SAFETY: the bin holds blocks of class `cls` only.
        let p = unsafe { b.refill(cls) };
        assert!(!p.is_null());
        assert!(whole(p, bs), "a block handed out is addressable whole");
        let held: std::vec::Vec<*mut u8> = b.blocks().to_vec();
        assert!(!held.is_empty());
        assert!(
            held.iter().all(|&q| free(q, bs)),
            "a block in a bin is poisoned past its first words"
        );
        // The slab's uncarved tail: the first slab of a fresh class carved exactly
        // `limit / 2` blocks (in some order: hardened builds shuffle them).
        let first = held.iter().copied().fold(p, |a, q| a.min(q));
        let tail = first.wrapping_add(4 * bs);
        assert!(poisoned(tail) && poisoned(tail.wrapping_add(bs - 1)));
        // SAFETY: `p` is ours, of class `cls`.
        unsafe { assert!(b.push(p)) };
        assert!(free(p, bs), "a freed block is poisoned past its link");
        assert_eq!(b.pop(), p);
        assert!(whole(p, bs));
        // SAFETY: as above.
        unsafe { assert!(b.push(p)) };
        // SAFETY: as above.
        unsafe { b.drain(cls) };
        crate::drain_transfer_caches();
    }
}
