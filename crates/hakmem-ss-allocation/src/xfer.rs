//! The transfer cache of each class with 64 KiB slabs (blocks up to 8 KiB):
//! [`XFER_SHARDS`] shards per class, each a lock, a count and an array of up to
//! [`XFER_SLOTS`] free blocks. A thread cache's flush puts blocks here
//! ([`xfer_put`]) and the next refill of the class on any thread takes them
//! ([`xfer_take`]) without the class lock; [`xfer_drain_locked`] gives a class's
//! blocks back to their slabs (the decay pass, shrinking, trim, idle classes). Lock order:
//! the class lock, then a shard lock (never the reverse). The class's `xfer` count, and
//! its `out` count as blocks come and go here, change under the shard lock
//! (docs/concurrency.md).

use super::*;

/// Most blocks one shard of a class's transfer cache holds (and its bound in bytes is
/// the release policy's, [`release::lean::xfer_max_bytes`]: smaller in lean mode). Only
/// classes with 64 KiB slabs (blocks up to 8 KiB) use one: a block there pins its slab,
/// and bigger slabs would pin too much memory.
pub const XFER_SLOTS: usize = 1024;
/// Shards of each class's transfer cache, each with its own lock. A thread puts and
/// takes blocks at the shard of the CPU it runs on first, then at the others; the class
/// lock is not taken. One shared transfer cache per class was the bottleneck of
/// cross-thread frees at 16 threads (results/110: `xfree` 2.4x faster with 4 shards).
pub const XFER_SHARDS: usize = 4;
/// The blocks of a transfer-cache shard: an array of pointers (thread caches hand blocks
/// over as pointers, never as lists through the blocks). They live in [`XFER_MEM`],
/// apart from the shards' locks and counts (see [`XferShard`]).
type XferArray = [*mut u8; XFER_SLOTS];

/// One shard's array, in [`XFER_MEM`]: reached only through its shard's [`XferSlots`].
struct XferCell(hakmem_os_stats::sync::UnsafeCell<XferArray>);

// SAFETY: a cell's contents are reached only through the one `XferSlots` naming it, and
// that only under its shard's lock (`XferSlots::array` takes `&mut self`, which only the
// lock's guard gives).
unsafe impl Sync for XferCell {}

impl XferCell {
    hakmem_os_stats::loom_const_fn! {
        fn new() -> Self {
            XferCell(hakmem_os_stats::sync::UnsafeCell::new([ptr::null_mut(); XFER_SLOTS]))
        }
    }
}

sync_static! {
    /// The arrays of every shard, `XFER_SHARDS` per class (8 KiB each, 1.6 MiB of `.bss`,
    /// touched only where a shard holds blocks).
    static XFER_MEM: [XferCell; NCLASS * XFER_SHARDS] =
        sync_array!(XferCell::new(); NCLASS * XFER_SHARDS);
}

/// What a shard's lock guards: the index of its array in [`XFER_MEM`]. Each index is
/// held by exactly one `XferSlots` (made once, in [`XFER`]'s initializer; the type is
/// neither `Clone` nor made anywhere else), so `&mut XferSlots`, which only the shard's
/// lock gives, is exclusive access to that array.
struct XferSlots(usize);

impl XferSlots {
    /// The shard's array (`&mut self`: under the shard's lock). The pointer lives no
    /// longer than the guard it came through.
    fn array(&mut self) -> hakmem_os_stats::sync::MutPtr<XferArray> {
        XFER_MEM[self.0].0.get_mut()
    }
}

/// One shard of a class's transfer cache: a stack of free blocks flushed by thread
/// caches, handed to the next refill (a producer/consumer pair never touches slabs).
/// Its lock and count only (64 bytes): the 208 shards fit in 13 KiB, so the fork
/// handlers, which take every lock, write 4 pages, not one per shard (with the arrays
/// inline, each lock sat on its own page: a `fork` made the parent copy 208 pages,
/// 1.4 ms per `fork`; results/205).
#[repr(align(64))]
struct XferShard {
    /// Blocks in `slots[..n]`. Written with the shard locked; read without the lock only
    /// to skip a shard that looks empty or full (a stale value costs a wasted or missed
    /// lock), so it lives outside the lock's data.
    n: AtomicUsize,
    /// The blocks, behind the shard lock.
    slots: Locked<XferSlots>,
}

impl XferShard {
    hakmem_os_stats::loom_const_fn! {
        /// Shard `i` of [`XFER_MEM`]'s order (class `i / XFER_SHARDS`).
        fn new(i: usize) -> Self {
            XferShard {
                n: AtomicUsize::new(0),
                slots: Locked::new(XferSlots(i)),
            }
        }
    }
}

/// Every shard, each naming its own array: shard `s` of class `c` names array
/// `c * XFER_SHARDS + s`, once.
#[cfg(not(loom))]
const fn xfer_shards() -> [[XferShard; XFER_SHARDS]; NCLASS] {
    let mut a = [const { [const { XferShard::new(0) }; XFER_SHARDS] }; NCLASS];
    let mut c = 0;
    while c < NCLASS {
        let mut s = 0;
        while s < XFER_SHARDS {
            a[c][s] = XferShard::new(c * XFER_SHARDS + s);
            s += 1;
        }
        c += 1;
    }
    a
}

#[cfg(loom)]
fn xfer_shards() -> [[XferShard; XFER_SHARDS]; NCLASS] {
    core::array::from_fn(|c| core::array::from_fn(|s| XferShard::new(c * XFER_SHARDS + s)))
}

sync_static! {
    static XFER: [[XferShard; XFER_SHARDS]; NCLASS] = xfer_shards();
}

/// The shard a thread tries first: that of the CPU it runs on (`sched_getcpu`, from the
/// vDSO or rseq: no system call), so threads on different CPUs rarely meet on a lock.
#[inline]
#[cfg(not(loom))]
fn home_shard() -> usize {
    // SAFETY: no preconditions; it allocates nothing.
    let cpu = unsafe { libc::sched_getcpu() };
    if cpu < 0 {
        0
    } else {
        cpu as usize % XFER_SHARDS
    }
}

/// Under loom every thread starts at shard 0: an execution must not depend on the CPU
/// the test runs on (loom replays schedules and needs the same steps each time).
#[inline]
#[cfg(loom)]
fn home_shard() -> usize {
    0
}

/// Take blocks of class `cls` from its transfer cache into `out` (up to `out.len()`, the
/// most recently put first in the order they were put); returns how many (0 when every
/// shard is empty).
pub(crate) fn xfer_take(cls: usize, out: &mut [*mut u8]) -> usize {
    let Some(row) = XFER.get(cls) else {
        return 0;
    };
    let home = home_shard();
    for i in 0..XFER_SHARDS {
        let sh = &row[(home + i) % XFER_SHARDS];
        if sh.n.load(Relaxed) == 0 {
            continue;
        }
        let mut slots = sh.slots.lock();
        let n = sh.n.load(Relaxed);
        debug_assert!(n <= XFER_SLOTS, "transfer-cache shard holds {n} blocks");
        let k = n.min(out.len());
        if k == 0 {
            continue;
        }
        {
            // (Its own scope: under loom the pointer is a tracked access, which must end
            // before the lock is dropped below.)
            let arr = slots.array();
            // SAFETY: the shard's lock is held (`slots`) while `arr` is used.
            out[..k].copy_from_slice(unsafe { &arr.deref()[n - k..n] });
        }
        sh.n.store(n - k, Relaxed);
        // The counters change under the shard lock, so a block's add (at its put) is
        // ordered before its subtract here: `xfer` never goes below zero.
        let st = stats_of(cls);
        debug_assert!(
            st.xfer.load(Relaxed) >= k as u64,
            "class {cls}: transfer-cache count below the blocks it holds"
        );
        stat_add_nonneg(&st.xfer, -(k as i64));
        stat_add_nonneg(&st.out, k as i64);
        drop(slots);
        note_refill(st);
        if release::idle_slab_decay().is_some() {
            st.xfer_used.store(os::now_ms(), Relaxed);
        }
        return k;
    }
    0
}

/// Put the blocks `blocks` of class `cls` in its transfer cache, all in one shard; false
/// when no shard has room for all of them (then nothing was put).
///
/// # Safety
/// As [`flush_slice`]'s blocks.
pub(crate) unsafe fn xfer_put(cls: usize, blocks: &[*mut u8]) -> bool {
    let Some(row) = XFER.get(cls) else {
        return false;
    };
    let count = blocks.len();
    debug_assert!(count > 1, "a transfer-cache put of {count}");
    debug_assert_eq!(
        slab_shift(cls),
        16,
        "transfer cache of a class with big slabs"
    );
    let bs = block_size(cls);
    let cap = release::lean::xfer_max_bytes().max(count * bs);
    let fits = |n: usize| n + count <= XFER_SLOTS && (n + count) * bs <= cap;
    let home = home_shard();
    for i in 0..XFER_SHARDS {
        let sh = &row[(home + i) % XFER_SHARDS];
        let peek = sh.n.load(Relaxed);
        if !fits(peek) {
            continue;
        }
        let mut slots = sh.slots.lock();
        let n = sh.n.load(Relaxed);
        #[cfg(loom)]
        let n = if hakmem_os_stats::sync::mutation::on(
            hakmem_os_stats::sync::mutation::XFER_PUT_TRUSTS_PEEK,
        ) {
            peek
        } else {
            n
        };
        if fits(n) {
            {
                let arr = slots.array();
                // SAFETY: the shard's lock is held (`slots`) while `arr` is used.
                unsafe { arr.deref()[n..n + count].copy_from_slice(blocks) };
            }
            sh.n.store(n + count, Relaxed);
            let st = stats_of(cls);
            stat_add_nonneg(&st.xfer, count as i64);
            stat_add_nonneg(&st.out, -(count as i64));
            if !XFER_HELD.load(Relaxed) {
                XFER_HELD.store(true, Relaxed);
            }
            return true;
        }
    }
    false
}

/// Return every block of class `cls`'s transfer cache to its slab. The class lock is
/// held (lock order: the class lock, then a shard lock).
///
/// # Safety
/// `c` is the locked central state of `cls`.
pub(crate) unsafe fn xfer_drain_locked(c: &mut Central, cls: usize) {
    assert_class_locked(cls);
    let Some(row) = XFER.get(cls) else {
        return;
    };
    let magic = DIV_MAGIC[cls];
    let st = stats_of(cls);
    for sh in row {
        while sh.n.load(Relaxed) != 0 {
            let mut took = [ptr::null_mut::<u8>(); 128];
            let mut slots = sh.slots.lock();
            let n = sh.n.load(Relaxed).min(XFER_SLOTS);
            let k = n.min(took.len());
            {
                // (Its own scope: under loom the pointer is a tracked access, which must
                // end before the lock is dropped below.)
                let arr = slots.array();
                // SAFETY: the shard's lock is held (`slots`) while `arr` is used.
                took[..k].copy_from_slice(unsafe { &arr.deref()[n - k..n] });
            }
            sh.n.store(n - k, Relaxed);
            stat_add_nonneg(&st.xfer, -(k as i64));
            drop(slots);
            // Counted free first: a slab these blocks empty subtracts them again.
            stat_add_locked(&st.free, k as i64);
            for &b in &took[..k] {
                // SAFETY: a block from the transfer cache: of `cls`, handed out by a
                // refill, given up by its flush; the class lock is held.
                unsafe { give_back_locked(c, cls, b, magic) };
            }
        }
    }
}

/// Fork handler: take every shard lock (after the class and pool locks).
///
/// # Safety
/// As [`crate::fork_prepare`], of which this is a part.
pub(crate) unsafe fn fork_lock_all() {
    for sh in XFER.iter().flatten() {
        // SAFETY: forwarded caller guarantee.
        unsafe { sh.slots.fork_lock() };
    }
}

/// Fork handler: release what [`fork_lock_all`] took.
///
/// # Safety
/// As [`crate::fork_release`], of which this is a part.
pub(crate) unsafe fn fork_unlock_all() {
    for sh in XFER.iter().flatten() {
        // SAFETY: forwarded caller guarantee.
        unsafe { sh.slots.fork_unlock() };
    }
}
