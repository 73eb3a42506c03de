//! AddressSanitizer hooks: with `--cfg hakmem_asan` (set only by the sanitizer build,
//! `cargo xtask sanitize`, next to `-Zsanitizer=address`), a free slab block is
//! *poisoned* beyond its link words, and a block is unpoisoned whole as it is handed out.
//! Without the cfg every hook is an empty `#[inline(always)]` function: no code, no load.
//!
//! A custom global allocator bypasses ASan's `malloc` interception, so without these
//! hooks ASan sees hakmem's slabs as plain mapped memory and misses a use after free or
//! an overflow of a hakmem block. With them, an access to a poisoned byte is reported
//! (`use-after-poison`):
//! - a write or read after free, anywhere in the block past its first
//!   [`LINK_BYTES`] (the link, and the free mark in `double-free-check` builds, which the
//!   allocator itself reads and writes while the block is free);
//! - an overflow from a block into a free neighbour past the neighbour's link words, or
//!   into a slab's never-carved tail.
//!
//! It does not catch: an overflow into a *live* neighbour (there are no redzones between
//! blocks), an access into the slack between the size asked for and the block size
//! (the facade's `usable_size` promises those bytes), or anything about large blocks
//! (their own mappings; a freed one is unmapped or cached).
//!
//! The state changes are: a slab handed to a class is poisoned whole (`slab_issued`); a
//! block carved from it is unpoisoned, initialized and poisoned past its link words
//! (`block_carving`, `block_carved`); a block leaving a thread cache for the program is
//! unpoisoned whole (`block_handed_out`); a block freed into a thread cache is poisoned
//! past its link words (`block_freed`); an empty superslab leaving this box is unpoisoned
//! whole (`superslab_released`), so no stale poison reaches a later owner of its memory.

#[cfg(hakmem_asan)]
unsafe extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// Whether the hooks are compiled in (`--cfg hakmem_asan`).
pub const ENABLED: bool = cfg!(hakmem_asan);

/// Bytes at the start of a free block that stay addressable: the link, and the free mark
/// in `double-free-check` builds.
pub const LINK_BYTES: usize = if crate::bins::DOUBLE_FREE_CHECK {
    16
} else {
    8
};

/// Poison `len` bytes at `p`.
///
/// # Safety
/// `p..p + len` lies in memory the caller owns (a slab, a block).
#[inline(always)]
unsafe fn poison(p: *const u8, len: usize) {
    #[cfg(hakmem_asan)]
    // SAFETY: only ASan's shadow of the caller's memory is written.
    unsafe {
        __asan_poison_memory_region(p, len)
    }
    let _ = (p, len);
}

/// Unpoison `len` bytes at `p`.
///
/// # Safety
/// As [`poison`].
#[inline(always)]
unsafe fn unpoison(p: *const u8, len: usize) {
    #[cfg(hakmem_asan)]
    // SAFETY: only ASan's shadow of the caller's memory is written.
    unsafe {
        __asan_unpoison_memory_region(p, len)
    }
    let _ = (p, len);
}

/// The block size of the superslab block `p` (read from its superslab's header).
///
/// # Safety
/// `p` is a block of a live superslab.
#[cfg(hakmem_asan)]
#[inline(always)]
unsafe fn block_size_of(p: *const u8) -> usize {
    // SAFETY: the caller guarantees a block of a live superslab, in a slab in use (a pool
    // slab's class is its own, in its granule's class).
    crate::class::block_size(unsafe { crate::class_of_block(p) })
}

/// A slab of `len` bytes at `start` was handed to a class: nothing in it is a block yet.
///
/// # Safety
/// The slab is the caller's (class lock held) and holds no block in anyone's hands.
#[inline(always)]
pub(crate) unsafe fn slab_issued(start: *mut u8, len: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { poison(start, len) }
}

/// Block `p` of `bs` bytes is about to be carved (initialized as a free block).
///
/// # Safety
/// `p` is an uncarved block of a slab the caller holds (class lock held).
#[inline(always)]
pub(crate) unsafe fn block_carving(p: *mut u8, bs: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { unpoison(p, bs) }
}

/// Block `p` of `bs` bytes was carved and initialized: free, addressable only in its
/// link words.
///
/// # Safety
/// As [`block_carving`].
#[inline(always)]
pub(crate) unsafe fn block_carved(p: *mut u8, bs: usize) {
    // SAFETY: forwarded caller guarantee; `bs > LINK_BYTES` (blocks are >= 16 bytes and
    // `LINK_BYTES` is 16 only with the free mark).
    unsafe { poison(p.add(LINK_BYTES), bs.saturating_sub(LINK_BYTES)) }
}

/// Free block `p` leaves a thread cache for the program: addressable whole. Call it
/// before anything reads the block beyond its link words.
///
/// # Safety
/// `p` is a free block of a live superslab, now the caller's.
#[inline(always)]
pub(crate) unsafe fn block_handed_out(p: *mut u8) {
    #[cfg(hakmem_asan)]
    // SAFETY: forwarded caller guarantee.
    unsafe {
        unpoison(p, block_size_of(p))
    }
    let _ = p;
}

/// Block `p` was freed into a thread cache (its link and mark written, zero-on-free done):
/// poisoned past its link words.
///
/// # Safety
/// `p` is a block of a live superslab that the caller just gave up.
#[inline(always)]
pub(crate) unsafe fn block_freed(p: *mut u8) {
    #[cfg(hakmem_asan)]
    // SAFETY: forwarded caller guarantee.
    unsafe {
        let bs = block_size_of(p);
        poison(p.add(LINK_BYTES), bs.saturating_sub(LINK_BYTES))
    }
    let _ = p;
}

/// The empty superslab `base` (`len` bytes) leaves this box (to the release policy):
/// addressable whole again.
///
/// # Safety
/// `base..base + len` is the caller's superslab, with no block in anyone's hands.
#[inline(always)]
pub(crate) unsafe fn superslab_released(base: *mut u8, len: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { unpoison(base, len) }
}
