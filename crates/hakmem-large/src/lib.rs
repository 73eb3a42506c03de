//! # hakmem-large: dedicated mappings for large blocks
//!
//! **Owns** every block above the slab range (more than 256 KiB) or aligned to more than
//! 64 KiB: each lives in its own mapping, aligned to 4 MiB (the superslab unit, so the
//! registry stays unambiguous) and a whole number of 4 MiB units long (address space
//! only: untouched pages cost no memory). A 64-byte header sits just before the block.
//! Freed mappings go to the release policy's cache of large mappings, and are reused by
//! later requests that fit (a cached mapping of one to four times the length needed).
//! The header keeps the bytes from the mapping's start that its blocks were asked to
//! span (`touched`: what may be resident), which `large_free` hands to the cache with
//! the mapping and a new block compares with the bytes it will span, so that it gets the
//! mapping whose resident pages fit it best (`release_policy::large_take_cached`: the
//! tightest cover, else the hottest). Every block of up to 4 MiB gets a one-unit mapping,
//! so the length alone cannot tell a mapping a 4 MiB block made resident from one a
//! 300 KiB block used (issue 16, docs/results/160-large-cabi.md).
//!
//! **Entry points**: [`large_alloc`], [`large_free`], [`large_realloc`] (grows in place
//! when the mapping has room; else copies into a cached mapping that fits, whose pages
//! are resident already, and hands the old mapping to the cache, so a buffer grown by
//! doubling round after round reuses its pages; else grows the mapping in place when
//! the address space after it is free; else moves the pages with `mremap` instead of
//! copying; shrinks in place, giving back the units and pages past the new end once
//! half the mapping, or half of what it may hold resident, lies there), [`usable_size`],
//! [`validate`].
//!
//! **Gates**: none read directly (the cache bound `HAKMEM_LARGE_CACHE_MIB`, lean
//! decommit and `HAKMEM_THP` belong to `hakmem-release-policy`). **Features**: none.
//!
//! **Invariants**
//! - A live large block is registered as `Kind::Large` on the unit(s) holding its header
//!   and its first byte (one or two bytes of registry whatever its size); a cached or
//!   retired mapping is not registered at all. The registry's ordering rule holds
//!   (see `hakmem_ss_allocation::registry`): units are marked after the header is
//!   written and unmarked before the range leaves our hands; a move by `mremap`
//!   unmarks the old units before the move and marks them again if it fails.
//! - Mappings are committed (`os::map_aligned`, no `MAP_NORESERVE`): a block the kernel
//!   would refuse glibc under its overcommit policy is refused here (null).
//! - `header(p).user == p` for every live block; the header is never handed out.
//! - A live block's `touched` covers it and stays within its mapping
//!   (`offset + size <= touched <= map_len`, checked in debug builds at each free); it
//!   only grows while the mapping is ours (in place, by `mremap`, by a copy).
//! - A mapping is advised for transparent huge pages (`release_policy::thp::advise_large`:
//!   the block's whole 2 MiB pages dense, the rest of the mapping sparse) each time it is
//!   handed out or grown, before the new part is touched; so on a host whose THP mode is
//!   `always` a 300 KiB block does not make 2 MiB resident (results/205).
//! - Nothing here allocates through the global allocator, panics, or takes a lock
//!   (only the release policy's cache lock, briefly).
//!
//! ```
//! let p = hakmem_large::large_alloc(1 << 20, 4096, false);
//! assert!(!p.is_null() && p as usize % 4096 == 0);
//! // SAFETY: `p` is a live large block of 1 MiB.
//! unsafe {
//!     p.write_bytes(1, 1 << 20);
//!     let q = hakmem_large::large_realloc(p, 8 << 20);
//!     assert_eq!(*q.add((1 << 20) - 1), 1);
//!     hakmem_large::large_free(q);
//! }
//! ```
#![deny(missing_docs)]
#![no_std]

use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use hakmem_os_stats::os;
use hakmem_release_policy as release;
use hakmem_ss_allocation::registry::{self, Kind};
use hakmem_ss_allocation::{SS_SHIFT, SS_SIZE};

/// Bytes of header before each block.
pub const HEADER: usize = 64;
const MAGIC: usize = 0x4841_4B4D_4C52_4745; // "HAKMLRGE"

#[repr(C)]
struct Header {
    magic: usize,
    /// The mapping's start.
    base: *mut u8,
    /// The mapping's length (a multiple of SS_SIZE).
    map_len: usize,
    /// The block (the header's own check).
    user: *mut u8,
    /// The alignment the mapping's base honours (>= SS_SIZE).
    base_align: usize,
    /// The size last asked for (for stats).
    size: usize,
    /// Bytes from `base` that the blocks this mapping held were asked to span: the
    /// cache's hint at free (see [`release::large_release`]); at most `map_len`.
    touched: usize,
}

/// Bytes asked for by live large blocks.
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Live large blocks.
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);
/// The most bytes asked for by live large blocks at once so far.
static LIVE_BYTES_PEAK: AtomicUsize = AtomicUsize::new(0);

/// Adds `n` to the live bytes and raises their peak.
#[inline]
fn live_bytes_add(n: usize) {
    let now = LIVE_BYTES.fetch_add(n, Relaxed).wrapping_add(n);
    // A plain load first: below the peak (the common case) no read-modify-write.
    if now > LIVE_BYTES_PEAK.load(Relaxed) {
        LIVE_BYTES_PEAK.fetch_max(now, Relaxed);
    }
}

/// The most bytes asked for by live large blocks at once so far.
pub fn live_bytes_peak() -> usize {
    LIVE_BYTES_PEAK.load(Relaxed)
}

/// Live large blocks and the bytes asked for them.
pub fn live() -> (usize, usize) {
    (LIVE_BLOCKS.load(Relaxed), LIVE_BYTES.load(Relaxed))
}

const _: () = assert!(core::mem::size_of::<Header>() <= HEADER);

#[inline]
fn header(p: *mut u8) -> *mut Header {
    p.wrapping_sub(HEADER).cast()
}

fn offset_for(align: usize) -> usize {
    if align <= HEADER { HEADER } else { align }
}

/// The units the registry marks for the block at `p`: from the unit of its header to the
/// unit of its first byte (one unit, or two when the block starts on a unit boundary).
fn marked_units(p: *mut u8) -> (*mut u8, usize) {
    let first = (p as usize - HEADER) & !(SS_SIZE - 1);
    let last = p as usize & !(SS_SIZE - 1);
    (first as *mut u8, ((last - first) >> SS_SHIFT) + 1)
}

/// Mark the units of the block at `p` as `kind` (see [`marked_units`]).
///
/// # Safety
/// As [`registry::mark`]: the units are those of a large mapping of ours, mapped, and
/// the registry's ordering rule is kept (unmark before the range leaves our hands).
unsafe fn register(p: *mut u8, kind: Kind) -> bool {
    let (first, n) = marked_units(p);
    // SAFETY: forwarded caller guarantee.
    unsafe { registry::mark(first, n, kind) }
}

fn round_units(n: usize) -> Option<usize> {
    n.checked_add(SS_SIZE - 1).map(|v| v & !(SS_SIZE - 1))
}

/// A large block of at least `size` bytes aligned to `align` (a power of two). With
/// `zeroed`, its first `size` bytes read as zero. Null when the OS refuses or the size
/// overflows.
pub fn large_alloc(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    let offset = offset_for(align);
    let base_align = align.max(SS_SIZE);
    // A zero-size request still gets a byte inside its mapping (an aligned offset of a
    // whole unit would otherwise point one past the end).
    let Some(map_len) = offset.checked_add(size.max(1)).and_then(round_units) else {
        return ptr::null_mut();
    };
    if map_len > isize::MAX as usize {
        return ptr::null_mut();
    }
    let mut dirty = false;
    let mut base = ptr::null_mut();
    let mut len = map_len;
    // The bytes from the mapping's start that this block spans (no overflow: at most
    // `map_len`): the cache picks the mapping whose earlier blocks spanned about as much.
    let want = offset + size;
    let mut hot = 0;
    if base_align == SS_SIZE
        && let Some((b, l, d, h)) =
            release::large_take_cached(map_len, map_len.saturating_mul(4), want)
    {
        base = b;
        len = l;
        dirty = d;
        hot = h;
    }
    if base.is_null() {
        base = os::map_aligned(map_len, base_align);
        if base.is_null() {
            return ptr::null_mut();
        }
    }
    // SAFETY: `offset < len` and `offset >= HEADER`, so the header and the block lie in
    // the mapping we own.
    unsafe {
        // Before the header's first touch: huge pages only on the block's whole 2 MiB
        // pages, never on the mapping's tail past them (release_policy::thp).
        release::thp::advise_large(base, len, offset - HEADER, want);
        let p = base.add(offset);
        header(p).write(Header {
            magic: MAGIC,
            base,
            map_len: len,
            user: p,
            base_align,
            size,
            touched: hot.max(want).min(len),
        });
        // The ordering rule: the header first, then the mark, then the block is handed out.
        if !register(p, Kind::Large) {
            // SAFETY: our own mapping, never published.
            os::unmap(base, len);
            return ptr::null_mut();
        }
        live_bytes_add(size);
        LIVE_BLOCKS.fetch_add(1, Relaxed);
        if zeroed && dirty {
            ptr::write_bytes(p, 0, size);
        }
        p
    }
}

/// Bytes usable at `p` (at least what was asked).
///
/// # Safety
/// `p` is a live block from this box.
pub unsafe fn usable_size(p: *mut u8) -> usize {
    // SAFETY: the caller guarantees a live block, whose header precedes it.
    unsafe {
        let h = &*header(p);
        h.base as usize + h.map_len - p as usize
    }
}

/// Whether `p` is a live block from this box (O(1); reads only memory hakmem owns).
pub fn validate(p: *mut u8) -> bool {
    if registry::kind_of(p) != Kind::Large || registry::kind_of(header(p).cast()) != Kind::Large {
        return false;
    }
    if !(p as usize).is_multiple_of(16) {
        return false;
    }
    // SAFETY: the header's address lies in a unit of a live large mapping, which is
    // mapped readable in whole.
    unsafe {
        let h = &*header(p);
        h.magic == MAGIC && h.user == p
    }
}

/// Free a large block: its mapping goes to the release policy (cached or retired).
///
/// # Safety
/// `p` is a live block from this box, not used any more.
pub unsafe fn large_free(p: *mut u8) {
    // SAFETY: the caller guarantees a live block.
    unsafe {
        let h = header(p);
        let (base, len, touched) = ((*h).base, (*h).map_len, (*h).touched);
        debug_assert!(validate(p), "large_free of a block that does not validate");
        debug_assert!(
            touched >= p as usize - base as usize + (*h).size && touched <= len,
            "a large block spans past its mapping's touched bytes"
        );
        (*h).magic = 0;
        LIVE_BYTES.fetch_sub((*h).size, Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Relaxed);
        // The ordering rule: unmarked before the release policy may unmap or reuse it.
        register(p, Kind::None);
        release::large_release(base, len, touched);
    }
}

/// Resize a large block to `new_size` bytes, keeping its contents; in place when the
/// mapping has room or can grow, else the pages move (no copy). Null (and `p` intact)
/// when the OS refuses.
///
/// # Safety
/// `p` is a live block from this box.
pub unsafe fn large_realloc(p: *mut u8, new_size: usize) -> *mut u8 {
    // SAFETY: the caller guarantees a live block with a valid header.
    unsafe {
        let h = header(p);
        let base = (*h).base;
        let old_len = (*h).map_len;
        let offset = p as usize - base as usize;
        let Some(need) = offset.checked_add(new_size).and_then(round_units) else {
            return ptr::null_mut();
        };
        if need <= old_len {
            let end = offset + new_size;
            if new_size < (*h).size && (need <= old_len / 2 || (*h).touched / 2 > end) {
                // A shrink, and half the mapping, or half of what it may hold resident,
                // lies past the block's new end: give that back. (A block growing inside
                // its mapping keeps the pages an earlier block made resident there: the
                // large cache handed it that mapping for them.)
                shrink_mapping(h, need, end);
            }
            resize_stat(h, new_size);
            return p;
        }
        // Grow by at least half again, so a block grown step by step moves O(log n) times.
        let new_len = need.max(round_units(old_len + old_len / 2).unwrap_or(need));
        if new_len > isize::MAX as usize {
            return ptr::null_mut();
        }
        // A cached mapping that fits: copy the block there and hand its old mapping to
        // the cache. A block grown round after round to the same sizes (a `String` or
        // `Vec` doubling to several MiB, freed, built again) then finds the mappings it
        // left last time, whose pages are resident: no fault, no system call (issue 17).
        // (Growing in place or moving the pages onto it with `mremap` would leave the
        // new pages to fault in, and a move unmaps the old range, which the next round
        // would map and fault in again.) Tried first: it costs no system call.
        // (Only a mapping whose pages are there: onto one decommitted with `DONTNEED`,
        // as lean mode keeps most, the copy would fault every page in, and moving the
        // pages with `mremap` below costs less.)
        if (*h).base_align == SS_SIZE
            && let Some((dst, len, hot)) =
                release::large_take_committed(new_len, new_len.saturating_mul(2), offset + new_size)
        {
            return copy_to(p, dst, len, hot, new_size);
        }
        if os::grow_in_place(base, old_len, new_len) {
            // The new part is untouched: advise it as the grown block's (and the old
            // tail, now inside the block, keeps what it had: at worst no huge page).
            release::thp::advise_large(base, new_len, offset - HEADER, offset + new_size);
            // The marked units (header and first byte) do not change.
            (*h).map_len = new_len;
            resize_stat(h, new_size);
            return p;
        }
        let dst = os::map_aligned(new_len, (*h).base_align);
        if dst.is_null() {
            return ptr::null_mut();
        }
        // (For the copy below, should the move fail; a move brings the old mapping's
        // advice along, and is advised again.)
        release::thp::advise_large(dst, new_len, offset - HEADER, offset + new_size);
        let q = dst.add(offset);
        // `dst` is ours from here on: marking its units before the move says "ours" only
        // about our own mapping (its header reads zero until the pages arrive).
        if !register(q, Kind::Large) {
            os::unmap(dst, new_len);
            return ptr::null_mut();
        }
        // The ordering rule: the old units are unmarked *before* `mremap` unmaps them.
        // Unmarking after the move left a window in which another thread could map the
        // freed range, mark it, and lose its mark to our late unmark (issue 12, bug 1).
        // Nobody else may use `p` meanwhile: its caller gave it up for this call.
        register(p, Kind::None);
        if os::remap_fixed(base, old_len, new_len, dst) {
            release::thp::advise_large(dst, new_len, offset - HEADER, offset + new_size);
            (*header(q)).base = dst;
            (*header(q)).map_len = new_len;
            (*header(q)).user = q;
            resize_stat(header(q), new_size);
            return q;
        }
        // The kernel refused to move the pages: `p` is still mapped and live again; copy.
        register(p, Kind::Large);
        ptr::copy_nonoverlapping(
            header(p).cast::<u8>(),
            header(q).cast::<u8>(),
            HEADER + old_len - offset,
        );
        (*header(q)).base = dst;
        (*header(q)).map_len = new_len;
        (*header(q)).user = q;
        (*header(q)).magic = MAGIC;
        // The copy wrote the old mapping's whole length.
        (*header(q)).touched = old_len;
        // The copy is a new live block; the old one is freed (stats follow both).
        live_bytes_add((*header(q)).size);
        LIVE_BLOCKS.fetch_add(1, Relaxed);
        resize_stat(header(q), new_size);
        large_free(p);
        q
    }
}

/// A live block shrunk in place to end at `end` bytes from its mapping's start: unmap
/// the whole units past `need` (`end` rounded up to units) and decommit the pages of the
/// last unit past `end` that earlier, longer blocks spanned, so that a big buffer cut to
/// fit (`realloc(p, used)`, `Vec::shrink_to_fit`) does not keep its old pages resident
/// (results/205: 8 blocks of 64 MiB shrunk to 1 MiB each kept 513 MiB; mimalloc and
/// glibc 9). Only when half the mapping, or half of what it may hold resident, lies past
/// the new end, so that a block shrunk a little at a time makes a system call per
/// halving at most, and keeps at most twice what it needs.
///
/// # Safety
/// `h` is a live block's header; `end <= need <= (*h).map_len`, `need` a multiple of
/// `SS_SIZE` covering the header and the block's new size.
unsafe fn shrink_mapping(h: *mut Header, need: usize, end: usize) {
    // SAFETY: the caller guarantees a live header and the bounds; every range below lies
    // in the block's own mapping, past its new end (no live byte), and none is marked in
    // the registry (only the units of the header and the first byte are, both below
    // `need`).
    unsafe {
        let base = (*h).base;
        let old_len = (*h).map_len;
        debug_assert!(end <= need && need <= old_len && need.is_multiple_of(SS_SIZE));
        if need < old_len {
            os::unmap(base.add(need), old_len - need);
            (*h).map_len = need;
        }
        // The last unit's pages past the block: decommitted if an earlier block spanned
        // them (the count `touched` says so; a page is given back whole, so the block's
        // last page stays).
        let page = os::page_size();
        let keep = (end + page - 1) & !(page - 1);
        let spanned = (*h).touched.min(need);
        if spanned > keep {
            os::decommit(base.add(keep), spanned - keep, os::Advice::DontNeed);
        }
        (*h).touched = end.max(keep.min(spanned));
    }
}

/// Move the live block `p` into the mapping `dst..dst+len` (ours, at least as long as
/// the block's needs at the same offset, aligned like its own): its header and the
/// `size` bytes last asked for are copied (the contents `realloc` keeps), the new block
/// is registered, and `p`'s mapping is freed. `hot`: the bytes of `dst` its earlier
/// blocks spanned (from the cache). Returns the new block (null, `p` intact, when the
/// registry refuses, and `dst` is unmapped).
///
/// # Safety
/// `p` is a live block from this box; `dst..dst+len` is a whole mapping we own that no
/// one else uses, aligned to `p`'s `base_align`, with room for `new_size` bytes at
/// `p`'s offset.
unsafe fn copy_to(p: *mut u8, dst: *mut u8, len: usize, hot: usize, new_size: usize) -> *mut u8 {
    // SAFETY: the caller's guarantees: `p`'s header is live, `dst` is ours and holds the
    // header and the block at the same offset, and the two mappings are distinct.
    unsafe {
        let h = header(p);
        let offset = p as usize - (*h).base as usize;
        // Before the copy touches it.
        release::thp::advise_large(
            dst,
            len,
            offset - HEADER,
            offset + new_size.max((*h).size).min(len - offset),
        );
        let q = dst.add(offset);
        ptr::copy_nonoverlapping(
            header(p).cast::<u8>(),
            header(q).cast::<u8>(),
            HEADER + (*h).size,
        );
        (*header(q)).base = dst;
        (*header(q)).map_len = len;
        (*header(q)).user = q;
        (*header(q)).magic = MAGIC;
        // What `dst` held before, and the copy (`resize_stat` adds the new size).
        (*header(q)).touched = hot.max(offset + (*h).size).min(len);
        // The ordering rule: the header is written, then the units are marked.
        if !register(q, Kind::Large) {
            os::unmap(dst, len);
            return ptr::null_mut();
        }
        // The copy is a new live block; the old one is freed (stats follow both).
        LIVE_BYTES.fetch_add((*header(q)).size, Relaxed);
        LIVE_BLOCKS.fetch_add(1, Relaxed);
        resize_stat(header(q), new_size);
        large_free(p);
        q
    }
}

/// The block of header `h` now holds `new_size` bytes (in its mapping, whose length
/// `map_len` already has room): the stats and the bytes the mapping has spanned follow.
///
/// # Safety
/// `h` is the header of a live block, with `user`, `base` and `map_len` set.
unsafe fn resize_stat(h: *mut Header, new_size: usize) {
    // SAFETY: the caller guarantees a live header.
    unsafe {
        LIVE_BYTES.fetch_sub((*h).size, Relaxed);
        live_bytes_add(new_size);
        (*h).size = new_size;
        let end = (*h).user as usize - (*h).base as usize + new_size;
        (*h).touched = (*h).touched.max(end).min((*h).map_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;

    /// The tests share the process's cache of large mappings: one at a time, so that
    /// each sees the mappings it released itself.
    fn serial() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[test]
    fn a_block_gets_the_cached_mapping_its_size_made_resident() {
        let _g = serial();
        release::trim();
        // Two mappings of one unit each: a 3 MiB block made 3 MiB of one resident, a
        // 300 KiB block 300 KiB of the other, freed last. A 3 MiB block then gets the
        // first (nothing to fault in) and a 200 KiB block the second; by length alone
        // (equal) the 3 MiB block would get the newest and fault 2.7 MiB in.
        let (big, small) = (3 << 20, 300 << 10);
        let a = large_alloc(big, 16, false);
        let b = large_alloc(small, 16, false);
        // SAFETY: live blocks of those sizes.
        unsafe {
            a.write_bytes(1, big);
            b.write_bytes(2, small);
            assert_eq!((*header(a)).touched, HEADER + big);
            large_free(a);
            large_free(b);
        }
        let c = large_alloc(big - 4096, 16, false);
        let d = large_alloc(200 << 10, 16, false);
        assert_eq!((c, d), (a, b));
        // SAFETY: live blocks; the mapping keeps what its earlier block spanned.
        unsafe {
            assert_eq!((*header(c)).touched, HEADER + big);
            assert_eq!((*header(d)).touched, HEADER + small);
            // Growing in place raises it.
            assert_eq!(large_realloc(d, 1 << 20), d);
            assert_eq!((*header(d)).touched, HEADER + (1 << 20));
            large_free(c);
            large_free(d);
        }
    }

    /// Whether the page at `p` is resident (`mincore`); None when it is not mapped.
    fn resident(p: *mut u8) -> Option<bool> {
        let mut v = 0u8;
        // SAFETY: one page at a page-aligned address; `v` holds its byte.
        let r = unsafe { libc::mincore(p.cast(), 1, &mut v) };
        (r == 0).then_some(v & 1 != 0)
    }

    /// A block shrunk in place to a small part of its mapping gives the rest back: the
    /// units past its new end unmapped, the pages of its last unit past its end
    /// decommitted; its contents and its header stay.
    #[test]
    fn a_block_shrunk_in_place_gives_its_tail_back() {
        let _g = serial();
        let big = 20 << 20;
        let p = large_alloc(big, 16, false);
        // SAFETY: a live block of `big` bytes, then of 1 MiB (shrunk in place).
        unsafe {
            p.write_bytes(5, big);
            let base = (*header(p)).base;
            assert_eq!((*header(p)).map_len, 24 << 20);
            assert_eq!(large_realloc(p, 1 << 20), p, "shrunk in place");
            assert_eq!(
                (*header(p)).map_len,
                SS_SIZE,
                "units past the block unmapped"
            );
            assert_eq!(resident(base.add(SS_SIZE)), None);
            assert_eq!(resident(base.add(2 << 20)), Some(false), "tail decommitted");
            let last = ((p as usize + (1 << 20) - 1) & !4095) as *mut u8;
            assert_eq!(resident(last), Some(true), "the block's last page kept");
            assert_eq!(*p.add((1 << 20) - 1), 5);
            let h = header(p);
            assert!((*h).touched >= HEADER + (1 << 20) && (*h).touched <= (*h).map_len);
            // A small cut keeps the mapping as it is (no system call).
            assert_eq!(large_realloc(p, (1 << 20) - 4096), p);
            assert_eq!((*header(p)).map_len, SS_SIZE);
            assert!(validate(p));
            large_free(p);
        }
    }

    #[test]
    fn alloc_write_free_and_reuse() {
        let _g = serial();
        let p = large_alloc(300 << 10, 16, true);
        assert!(!p.is_null());
        assert!(validate(p));
        assert!(!validate(p.wrapping_add(16)));
        // SAFETY: p is live, 300 KiB.
        unsafe {
            assert_eq!(*p.add((300 << 10) - 1), 0);
            p.write_bytes(7, 300 << 10);
            assert!(usable_size(p) >= 300 << 10);
            large_free(p);
        }
        assert!(!validate(p));
        let q = large_alloc(200 << 10, 16, true);
        // SAFETY: q is live; zeroed even when the mapping is reused.
        unsafe {
            assert_eq!(*q, 0);
            assert_eq!(*q.add((200 << 10) - 1), 0);
            large_free(q);
        }
    }

    #[test]
    fn big_alignments() {
        let _g = serial();
        for align in [1usize << 16, 1 << 21, 1 << 22, 1 << 23] {
            let p = large_alloc(100, align, false);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            assert!(validate(p));
            // SAFETY: p is live.
            unsafe {
                p.write_bytes(1, 100);
                large_free(p);
            }
        }
    }

    #[test]
    fn realloc_grows_keeping_contents() {
        let _g = serial();
        let mut p = large_alloc(512 << 10, 16, false);
        // SAFETY: p stays live through the loop; sizes grow.
        unsafe {
            for i in 0..(512 << 10) {
                *p.add(i) = (i % 251) as u8;
            }
            for &sz in &[1usize << 20, 5 << 20, 9 << 20, 40 << 20] {
                p = large_realloc(p, sz);
                assert!(!p.is_null());
                assert!(validate(p));
                for i in (0..(512 << 10)).step_by(997) {
                    assert_eq!(*p.add(i), (i % 251) as u8);
                }
                *p.add(sz - 1) = 9;
            }
            large_free(p);
        }
    }

    #[test]
    fn registry_cost_does_not_grow_with_the_block() {
        let _g = serial();
        // 1 GiB of address space (committed, never touched): only the units of the
        // header and the first byte are marked, one or two bytes of registry.
        for align in [16usize, 1 << 16, 1 << 22, 1 << 24] {
            let p = large_alloc(1 << 30, align, false);
            assert!(!p.is_null());
            let (first, n) = marked_units(p);
            assert!(n == 1 || n == 2, "{n} units marked");
            assert_eq!(n == 2, (p as usize).is_multiple_of(SS_SIZE));
            assert_eq!(registry::kind_of(first), Kind::Large);
            assert_eq!(registry::kind_of(p), Kind::Large);
            assert_eq!(registry::kind_of(p.wrapping_add(1 << 29)), Kind::None);
            assert!(validate(p));
            // SAFETY: live block.
            unsafe { large_free(p) };
            assert_eq!(registry::kind_of(p), Kind::None);
        }
    }

    #[test]
    fn absurd_sizes_fail_cleanly() {
        let _g = serial();
        assert!(large_alloc(usize::MAX - 10, 16, false).is_null());
        assert!(large_alloc(isize::MAX as usize, 16, false).is_null());
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
