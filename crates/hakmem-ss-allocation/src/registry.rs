//! The registry: which 4 MiB units of the address space hakmem owns, and as what.
//!
//! One byte per [`UNIT`](crate::SS_SIZE)-aligned unit of the user address space below
//! 2^[`VA_BITS`] (47 bits on x86_64, 48 elsewhere: a 32 or 64 MiB table, mapped lazily
//! with `MAP_NORESERVE` through `os::map_sparse`: address space only, of which just the
//! pages that describe units in use ever become resident; under the kernel's strict
//! overcommit policy, `vm.overcommit_memory=2`, `MAP_NORESERVE` is ignored and the whole
//! table counts as committed). Looking an address up is one shift and one byte load, so
//! validating any pointer is O(1).
//!
//! # Address width
//!
//! [`VA_BITS`] is the width of the addresses the kernel hands out to a mapping asked for
//! without a hint (hakmem never gives one):
//! - x86_64: 47 bits with 4-level paging; with 5-level paging (LA57, 57 bits) the kernel
//!   still maps below 2^47 unless asked with a hint above it, so 47 bits cover every
//!   mapping of hakmem's.
//! - aarch64: 48 bits (the common `VA_BITS=48` kernels; 39-bit kernels fit too); with
//!   52-bit VA the same rule as LA57 keeps mappings without a hint below 2^48.
//! - other 64-bit Linux (riscv64 Sv39/Sv48/Sv57, ppc64le, loongarch64): 48 bits, the
//!   same hint rule where wider.
//!
//! A mapping at or above 2^`VA_BITS` (a kernel that breaks that rule) cannot be
//! registered: [`mark`] returns false and the allocation that needed it fails (null),
//! never anything worse; an address there is never hakmem's ([`kind_of`] says `None`).
//! The table's logic is [`Table`], generic over the width, so the tests check 47 and 48
//! bits on any machine.
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

/// Bits of the user address space the registry covers (see the module's docs):
/// 47 on x86_64, 48 on other targets.
pub const VA_BITS: u32 = if cfg!(target_arch = "x86_64") { 47 } else { 48 };

/// The process's one registry.
static TABLE: Table<VA_BITS> = Table::new();

/// A registry of the units below 2^`BITS`: one byte each, in a table mapped on first
/// use. The process has one (`BITS` = [`VA_BITS`]), read by [`mark`] and [`kind_of`];
/// tests build others.
pub struct Table<const BITS: u32> {
    map: AtomicPtr<AtomicU8>,
    /// Entries readable at `map`: 0 until the table is mapped, then `ENTRIES` (stored
    /// after `map`, with release). One compare against it is both the bounds check and
    /// the "is the table there" test of [`is_superslab`](Self::is_superslab).
    len: AtomicUsize,
}

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

impl<const BITS: u32> Table<BITS> {
    /// Units (and bytes of table): 2^(`BITS` - 22), 32 Mi for 47 bits, 64 Mi for 48.
    pub const ENTRIES: usize = 1 << (BITS - crate::SS_SHIFT);

    /// An empty registry (its table is mapped by the first [`mark`](Self::mark)).
    pub const fn new() -> Self {
        Table {
            map: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
        }
    }

    #[cold]
    fn init(&self) -> *mut AtomicU8 {
        let p = os::map_sparse(Self::ENTRIES).cast::<AtomicU8>();
        if p.is_null() {
            return p;
        }
        // One byte per 4 MiB unit, a few touched: no huge page may back it (a host whose
        // THP mode is `always` would make 2 MiB resident per touched byte's page).
        // SAFETY: our fresh mapping of `ENTRIES` bytes.
        unsafe { hakmem_release_policy::thp::advise_metadata(p.cast(), Self::ENTRIES) };
        let m =
            match self
                .map
                .compare_exchange(ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => p,
                Err(winner) => {
                    // SAFETY: `p` is our own fresh mapping, never published.
                    unsafe { os::unmap(p.cast(), Self::ENTRIES) };
                    winner
                }
            };
        // After `map` is set (as this thread has seen it): a reader that sees `len` sees it.
        self.len.store(Self::ENTRIES, Ordering::Release);
        m
    }

    #[inline]
    fn table(&self) -> *mut AtomicU8 {
        let m = self.map.load(Ordering::Acquire);
        if m.is_null() { self.init() } else { m }
    }

    /// The table's mapping (null until the first [`mark`](Self::mark)): for tests.
    pub fn table_base(&self) -> *const u8 {
        self.map.load(Ordering::Acquire).cast_const().cast()
    }

    /// [`mark`] on this table.
    ///
    /// # Safety
    /// As [`mark`], for whoever reads this table.
    pub unsafe fn mark(&self, base: *mut u8, units: usize, kind: Kind) -> bool {
        debug_assert!(
            (base as usize).is_multiple_of(crate::SS_SIZE),
            "registry::mark of an address that is not unit-aligned"
        );
        debug_assert!(units > 0 && units <= 2, "registry::mark of {units} units");
        let first = base as usize >> crate::SS_SHIFT;
        if first + units > Self::ENTRIES {
            return false;
        }
        let m = self.table();
        if m.is_null() {
            return false;
        }
        loom_switch_point();
        for i in first..first + units {
            // A unit has one owner, who marks it once and unmarks it once: a mark flips
            // it between `None` and a kind (anything else is two owners of one unit).
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

    /// [`kind_of`] on this table.
    #[inline]
    pub fn kind_of(&self, p: *const u8) -> Kind {
        loom_switch_point();
        let i = p as usize >> crate::SS_SHIFT;
        let m = self.map.load(Ordering::Acquire);
        if i >= Self::ENTRIES || m.is_null() {
            return Kind::None;
        }
        // SAFETY: i < ENTRIES, inside the registry mapping.
        match unsafe { (*m.add(i)).load(Ordering::Acquire) } {
            1 => Kind::Superslab,
            2 => Kind::Large,
            _ => Kind::None,
        }
    }
}

impl<const BITS: u32> Table<BITS> {
    /// [`is_superslab`] on this table.
    #[inline(always)]
    pub fn is_superslab(&self, p: *const u8) -> bool {
        loom_switch_point();
        let i = p as usize >> crate::SS_SHIFT;
        // One compare: out of the table, or no table yet (`len` is 0 until `map` is set).
        if i >= self.len.load(Ordering::Acquire) {
            return false;
        }
        let m = self.map.load(Ordering::Acquire);
        // SAFETY: `len` is nonzero only once `map` holds the table (stored before `len`,
        // and the acquire load above sees it), and i < len = ENTRIES, inside it.
        unsafe { (*m.add(i)).load(Ordering::Acquire) == Kind::Superslab as u8 }
    }
}

impl<const BITS: u32> Default for Table<BITS> {
    fn default() -> Self {
        Self::new()
    }
}

/// A table built at run time (tests) unmaps its mapping when dropped; the process's
/// table is a `static`, never dropped.
impl<const BITS: u32> Drop for Table<BITS> {
    fn drop(&mut self) {
        let m = *self.map.get_mut();
        if !m.is_null() {
            // SAFETY: the table's own mapping; `&mut self`: nobody reads it any more.
            unsafe { os::unmap(m.cast(), Self::ENTRIES) };
        }
    }
}

/// Mark `units` units from `base` (unit-aligned) as `kind`. Returns false if the
/// registry could not be mapped (out of memory) or the range is outside the user
/// address space the registry covers (at or above 2^[`VA_BITS`]).
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
    // SAFETY: forwarded caller guarantee.
    unsafe { TABLE.mark(base, units, kind) }
}

/// What the unit holding `p` is.
#[inline]
pub fn kind_of(p: *const u8) -> Kind {
    TABLE.kind_of(p)
}

/// Whether the unit holding `p` is a live superslab (`kind_of(p) == Kind::Superslab`,
/// written for the `free` hit path: one bounds test, which also says whether the table
/// exists, and a byte compare).
#[inline(always)]
pub fn is_superslab(p: *const u8) -> bool {
    TABLE.is_superslab(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use crate::SS_SIZE;

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
            assert!(!mark((1usize << VA_BITS) as *mut u8, 1, Kind::Large));
        }
    }

    #[test]
    fn the_width_of_this_target() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(VA_BITS, 47);
        #[cfg(target_arch = "aarch64")]
        assert_eq!(VA_BITS, 48);
        assert_eq!(
            Table::<47>::ENTRIES,
            32 << 20,
            "32 MiB of table for 47 bits"
        );
        assert_eq!(
            Table::<48>::ENTRIES,
            64 << 20,
            "64 MiB of table for 48 bits"
        );
    }

    /// A 47-bit table (x86_64) refuses the units at and above 2^47, which a 48-bit one
    /// (aarch64) registers, up to 2^48.
    #[test]
    fn widths_47_and_48() {
        let t47 = Table::<47>::new();
        let t48 = Table::<48>::new();
        let last47 = ((1usize << 47) - SS_SIZE) as *mut u8;
        let first48 = (1usize << 47) as *mut u8;
        let last48 = ((1usize << 48) - SS_SIZE) as *mut u8;
        let beyond = (1usize << 48) as *mut u8;
        // SAFETY: these tables are the test's own; nothing reads them but the test.
        unsafe {
            assert!(t47.mark(last47, 1, Kind::Superslab));
            assert_eq!(t47.kind_of(last47.wrapping_add(12345)), Kind::Superslab);
            assert!(
                !t47.mark(first48, 1, Kind::Large),
                "2^47 is outside 47 bits"
            );
            assert!(!t47.mark(last47, 2, Kind::Large), "a range across 2^47");
            assert_eq!(t47.kind_of(first48), Kind::None);

            assert!(t48.mark(last47, 2, Kind::Large), "a range across 2^47");
            assert_eq!(t48.kind_of(first48.wrapping_add(SS_SIZE - 1)), Kind::Large);
            assert!(t48.mark(last48, 1, Kind::Superslab));
            assert_eq!(t48.kind_of(last48), Kind::Superslab);
            assert!(!t48.mark(beyond, 1, Kind::Large), "2^48 is outside 48 bits");
            assert!(!t48.mark(last48, 2, Kind::Large), "a range across 2^48");
            assert_eq!(t48.kind_of(beyond), Kind::None);
            assert_eq!(t48.kind_of(usize::MAX as *const u8), Kind::None);
            assert!(t48.mark(last47, 2, Kind::None));
            assert_eq!(t48.kind_of(first48), Kind::None);
        }
        // The two tables are separate: nothing above leaked into the process's.
        assert_eq!(kind_of(last47), Kind::None);
    }

    /// The 48-bit table (64 MiB) is address space only: a `MAP_NORESERVE` mapping (not
    /// counted as committed, unless the kernel's overcommit policy is strict) of which
    /// only the pages describing marked units are resident.
    #[test]
    fn a_48_bit_table_is_reserved_not_committed() {
        use std::string::String;
        let t48 = Table::<48>::new();
        let units = [(1usize << 40) as *mut u8, (1usize << 47) as *mut u8];
        for u in units {
            // SAFETY: the test's own table.
            assert!(unsafe { t48.mark(u, 1, Kind::Large) });
        }
        let base = t48.table_base() as usize;
        assert_ne!(base, 0);
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        // The fields of the mapping holding the table (the kernel may have merged it
        // with a neighbour of the same flags, such as another test's table).
        let mut entry: Option<String> = None;
        for line in smaps.lines() {
            let first = line.split(' ').next().unwrap_or("");
            if let Some((lo, hi)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
                let lo = usize::from_str_radix(lo, 16).unwrap();
                let hi = usize::from_str_radix(hi, 16).unwrap();
                if lo <= base && base < hi {
                    assert!(
                        hi - base >= Table::<48>::ENTRIES,
                        "the whole table is mapped"
                    );
                    entry = Some(String::new());
                } else if entry.as_ref().is_some_and(|e| !e.is_empty()) {
                    break;
                }
            } else if let Some(e) = entry.as_mut() {
                e.push_str(line);
                e.push('\n');
            }
        }
        let entry = entry.expect("the table's mapping in /proc/self/smaps");
        let field = |name: &str| -> usize {
            let line = entry.lines().find(|l| l.starts_with(name)).unwrap();
            line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap()
        };
        let rss_kib = field("Rss:");
        // Two marked units: two table pages (two 2 MiB pages where transparent huge
        // pages are always on), however large the table.
        assert!(rss_kib <= 2 * 2048, "{rss_kib} KiB of the table resident");
        let strict = std::fs::read_to_string("/proc/sys/vm/overcommit_memory")
            .is_ok_and(|v| v.trim() == "2");
        let flags = entry.lines().find(|l| l.starts_with("VmFlags:")).unwrap();
        // `nr`: the kernel reserves no swap for it (not in Committed_AS); the strict
        // policy ignores MAP_NORESERVE.
        assert_eq!(
            flags.split_whitespace().any(|f| f == "nr"),
            !strict,
            "{flags}"
        );
    }
}
