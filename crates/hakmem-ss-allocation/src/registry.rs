//! The registry: which 4 MiB units of the address space hakmem owns, and as what.
//!
//! One byte per [`UNIT`](crate::SS_SIZE)-aligned unit of the 47-bit user address space
//! (32 MiB of address space, mapped lazily with `MAP_NORESERVE` through
//! `os::map_sparse`: only the pages that describe units in use ever become resident).
//! Looking an address up is one shift and one byte load, so validating any pointer is
//! O(1).
//!
//! What is marked: a live superslab's one unit (`Superslab`); for a live large block,
//! the unit(s) holding its header and its first byte (`Large`: one unit, two when the
//! block starts on a unit boundary), never the rest of its mapping, so a block's cost
//! here is one or two bytes whatever its size.
//!
//! # The ordering rule
//!
//! **The registry never says "not ours" about a unit of a live mapping that a caller
//! may still use, in any interleaving.** Units are written by whoever owns the mapping,
//! in this order:
//!
//! - mapping (or taking from a cache) -> header written -> `mark(kind)` -> published;
//! - `mark(None)` -> only then the range leaves our hands (`munmap`, moved away by
//!   `mremap`, or handed to the release policy's cache, whose `munmap` or reuse may
//!   come at any time);
//! - a move by `mremap` unmarks the old units *before* the move (the block's caller
//!   has given it up for the `realloc` and nobody else may touch it) and marks them
//!   again if the move fails.
//!
//! The other order (unmark after `munmap` / `mremap`) is the bug this rule forbids: in
//! the window, another thread can map the freed range, mark it, and then see its mark
//! erased by the late unmark, after which its valid blocks are refused as foreign.
//! Loom checks the rule on the shipped `slab_empty` (`registry_unmark_before_release`)
//! and on a model of the large move (`registry_unmark_before_move`), each with a
//! mutation that unmarks late and must fail; `crates/hakmem/tests/large_race.rs` checks
//! the real large move. [`mark`] is `unsafe`: safe code trusts what it says.
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use hakmem_os_stats::os;

/// What a unit of address space is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Not hakmem's (or cached and unused).
    None = 0,
    /// A live superslab.
    Superslab = 1,
    /// Part of a live large mapping.
    Large = 2,
}

const VA_BITS: u32 = 47;
const ENTRIES: usize = 1 << (VA_BITS - crate::SS_SHIFT);

static MAP: AtomicPtr<AtomicU8> = AtomicPtr::new(ptr::null_mut());
/// Entries readable at `MAP`: 0 until the table is mapped, then `ENTRIES` (stored after
/// `MAP`, with release). One compare against it is both the bounds check and the "is the
/// table there" test of [`is_superslab`].
static LEN: AtomicUsize = AtomicUsize::new(0);

// Under loom: the table's bytes live in a mapping, out of loom's sight, so every mark
// and lookup also touches this loom atomic, which makes it a point where loom may switch
// threads (and orders marks and lookups as the table's Release/Acquire bytes do).
#[cfg(loom)]
hakmem_os_stats::sync_static! {
    static SEEN: hakmem_os_stats::sync::AtomicUsize = hakmem_os_stats::sync::AtomicUsize::new(0);
}

#[inline(always)]
fn loom_switch_point() {
    #[cfg(loom)]
    SEEN.fetch_add(1, hakmem_os_stats::sync::Ordering::AcqRel);
}

#[cold]
fn init() -> *mut AtomicU8 {
    let p = os::map_sparse(ENTRIES).cast::<AtomicU8>();
    if p.is_null() {
        return p;
    }
    let m = match MAP.compare_exchange(ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => p,
        Err(winner) => {
            // SAFETY: `p` is our own fresh mapping, never published.
            unsafe { os::unmap(p.cast(), ENTRIES) };
            winner
        }
    };
    // After `MAP` is set (as this thread has seen it): a reader that sees `LEN` sees it.
    LEN.store(ENTRIES, Ordering::Release);
    m
}

#[inline]
fn map() -> *mut AtomicU8 {
    let m = MAP.load(Ordering::Acquire);
    if m.is_null() { init() } else { m }
}

/// Mark `units` units from `base` (unit-aligned) as `kind`. Returns false if the
/// registry could not be mapped (out of memory) or the range is outside the user
/// address space.
///
/// # Safety
/// Safe code trusts the registry ([`crate::validate_class`] and [`crate::ss_lookup`]
/// read the superslab header of any unit marked `Superslab`; `hakmem-large` reads the
/// block header of a `Large` one), so the caller owns the units and keeps the ordering
/// rule above: for `Kind::Superslab`, `base` is a superslab of this crate whose header
/// is initialized; for `Kind::Large`, the units belong to a large mapping of the caller,
/// mapped and readable (its block header is written, or reads as zero, before the block
/// is handed out); `Kind::None` is written before the range leaves the caller's hands.
pub unsafe fn mark(base: *mut u8, units: usize, kind: Kind) -> bool {
    debug_assert!(
        (base as usize).is_multiple_of(crate::SS_SIZE),
        "registry::mark of an address that is not unit-aligned"
    );
    debug_assert!(units > 0 && units <= 2, "registry::mark of {units} units");
    let first = base as usize >> crate::SS_SHIFT;
    if first + units > ENTRIES {
        return false;
    }
    let m = map();
    if m.is_null() {
        return false;
    }
    loom_switch_point();
    for i in first..first + units {
        // A unit has one owner, who marks it once and unmarks it once: a mark flips it
        // between `None` and a kind (anything else is two owners of one unit).
        #[cfg(debug_assertions)]
        {
            // SAFETY: i < ENTRIES, inside the registry mapping.
            let old = unsafe { (*m.add(i)).load(Ordering::Relaxed) };
            debug_assert!(
                (old == Kind::None as u8) != (kind == Kind::None),
                "registry unit {i:#x}: {old} marked {kind:?} (not a flip)"
            );
        }
        // SAFETY: i < ENTRIES, inside the registry mapping.
        unsafe { (*m.add(i)).store(kind as u8, Ordering::Release) };
    }
    true
}

/// What the unit holding `p` is.
#[inline]
pub fn kind_of(p: *const u8) -> Kind {
    loom_switch_point();
    let i = p as usize >> crate::SS_SHIFT;
    let m = MAP.load(Ordering::Acquire);
    if i >= ENTRIES || m.is_null() {
        return Kind::None;
    }
    // SAFETY: i < ENTRIES, inside the registry mapping.
    match unsafe { (*m.add(i)).load(Ordering::Acquire) } {
        1 => Kind::Superslab,
        2 => Kind::Large,
        _ => Kind::None,
    }
}

/// Whether the unit holding `p` is a live superslab (`kind_of(p) == Kind::Superslab`,
/// written for the `free` hit path: one bounds test, which also says whether the table
/// exists, and a byte compare).
#[inline(always)]
pub fn is_superslab(p: *const u8) -> bool {
    loom_switch_point();
    let i = p as usize >> crate::SS_SHIFT;
    // One compare: out of the table, or no table yet (`LEN` is 0 until `MAP` is set).
    if i >= LEN.load(Ordering::Acquire) {
        return false;
    }
    let m = MAP.load(Ordering::Acquire);
    // SAFETY: `LEN` is nonzero only once `MAP` holds the table (stored before `LEN`, and
    // the acquire load above sees it), and i < LEN = ENTRIES, inside it.
    unsafe { (*m.add(i)).load(Ordering::Acquire) == Kind::Superslab as u8 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_and_lookup() {
        let base = (0x7000_0000_0000usize) as *mut u8;
        assert_eq!(kind_of(base), Kind::None);
        // SAFETY: nobody maps or validates this unit in this test binary (a `Large` mark
        // is read only by `hakmem-large`, which is not linked here).
        unsafe {
            assert!(mark(base, 2, Kind::Large));
            assert_eq!(kind_of(base.wrapping_add(5 << 20)), Kind::Large);
            assert_eq!(kind_of(base.wrapping_add(8 << 20)), Kind::None);
            assert!(mark(base, 2, Kind::None));
            assert_eq!(kind_of(base), Kind::None);
            assert_eq!(kind_of(usize::MAX as *const u8), Kind::None);
            assert!(!mark((1usize << 47) as *mut u8, 1, Kind::Large));
        }
    }
}
