//! Where transparent huge pages (2 MiB) may back hakmem's memory (`HAKMEM_THP`).
//!
//! A huge page is resident as a whole: on a host whose THP mode is `always`
//! (`/sys/kernel/mm/transparent_hugepage/enabled`, the default of some distributions),
//! the kernel backs any aligned 2 MiB of an anonymous mapping with one at its first touch.
//! hakmem's mappings are all 4 MiB-aligned: the first touch of a superslab's header, of a
//! large block's header, or of the registry's table would make 2 MiB resident where a
//! page or two is used (results/205: `cbench thread` peak RSS 3 -> 76 MiB, `burst-300k`
//! 207 MB -> 1.42 GB). So each range hakmem maps is classed:
//!
//! - **sparse**: huge pages would make resident what the program does not use: a
//!   superslab's first half (its header and the slabs a class starts with), the whole
//!   superslab of a class of blocks above a page (they are touched only where the
//!   program writes them), the part of a large block's mapping outside its whole 2 MiB
//!   pages (past the last, or before its header where an aligned block leaves room),
//!   the registry's table;
//! - **dense**: the program fills it: a large block's whole 2 MiB pages, and the second
//!   superslab half of a class of blocks up to a page (4 KiB: its slabs are 64 KiB, taken
//!   lowest first, and carving a block writes its free mark, so its pages are touched in
//!   order), which the class reaches only once its first half's slabs are in use; and,
//!   under `DENSE` outside lean mode, the whole superslab (header included) that such a
//!   class gets once it has filled every superslab it had (4 MiB of its slabs in use:
//!   its working set outgrew a superslab, and it carves the next one in order).
//!
//! A whole superslab is dense under `DENSE` only: under the default `AUTO` on a `madvise`
//! host, huge pages for such superslabs measured 13.4 k -> 7.0 k page faults and 5% off
//! `json`, but a 0.40 s compaction stall in one of three `burst-4k` runs and a `python3`
//! peak RSS of 364 MB in every run, where it is 262-353 MB without (results/220).
//!
//! and [`advice`] says what to ask of the kernel for it ([`Advice`]), by host mode and
//! gate. With the default `AUTO`, a host in `madvise` or `never` mode sees no system
//! call at all; a host in `always` mode gets `MADV_NOHUGEPAGE` on the sparse ranges.
//!
//! The advice is given as a range is (re)used, before it is touched: a superslab as it is
//! set up for a class ([`advise_superslab`]), a large block's mapping as it is handed out
//! or grown ([`advise_large`]), the registry's table once mapped ([`advise_metadata`]).
//! The kernel keeps a huge page that is already there when a range is marked
//! `MADV_NOHUGEPAGE` (a cached superslab or large mapping reused for a sparser use keeps
//! the huge pages its earlier use faulted in, until it is decommitted or unmapped).

use hakmem_env_gates::{Thp, gates};
use hakmem_os_stats::os::{self, ThpHost};

/// The 2 MiB of a transparent huge page (x86_64, and aarch64 with 4 KiB pages).
pub const HUGE: usize = 2 << 20;

/// What to ask of the kernel for a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// Nothing (no system call): the host's mode applies.
    Keep,
    /// `MADV_HUGEPAGE`.
    Huge,
    /// `MADV_NOHUGEPAGE`.
    NoHuge,
}

/// The advice for a range, `dense` or sparse (see the module docs), on a host in mode
/// `host` under gate `mode`.
pub const fn advice(host: ThpHost, mode: Thp, dense: bool) -> Advice {
    match (host, mode, dense) {
        // No huge pages on the host (or none known): nothing to steer.
        (ThpHost::Never, _, _) => Advice::Keep,
        (ThpHost::Always, Thp::Never, _) => Advice::NoHuge,
        (ThpHost::Always, _, false) => Advice::NoHuge,
        (ThpHost::Always, Thp::Auto, true) => Advice::Keep,
        (ThpHost::Always | ThpHost::Madvise, Thp::Dense, true) => Advice::Huge,
        (ThpHost::Madvise, _, _) => Advice::Keep,
    }
}

/// The advice for a range in this process: [`advice`] with the host's mode and the gate.
fn advice_here(dense: bool) -> Advice {
    advice(os::thp_host(), gates().thp, dense)
}

/// Give `advice` for `p..p+len` (nothing for an empty range or [`Advice::Keep`]).
///
/// # Safety
/// As [`os::advise_huge`].
unsafe fn give(p: *mut u8, len: usize, advice: Advice) {
    if len == 0 {
        return;
    }
    // SAFETY: forwarded caller guarantee. (A refusal, a kernel without THP, changes
    // nothing: the range stays as the host's mode says.)
    unsafe {
        match advice {
            Advice::Keep => {}
            Advice::Huge => _ = os::advise_huge(p, len, true),
            Advice::NoHuge => _ = os::advise_huge(p, len, false),
        }
    }
}

/// Advise the superslab at `base` (`len` bytes, two or more huge pages, 2 MiB-aligned) as
/// it is set up for a class: `dense_tail` (blocks up to a page, slabs carved in order),
/// its first 2 MiB sparse and the rest dense, or all of it dense when the class also
/// `filled` every superslab it had, under `DENSE` outside lean mode (see the module
/// docs); otherwise all sparse. At most two system calls, none where [`advice`] says
/// [`Advice::Keep`].
///
/// # Safety
/// `base..base+len` is a superslab mapping of ours, not yet touched for its new class.
pub unsafe fn advise_superslab(base: *mut u8, len: usize, dense_tail: bool, filled: bool) {
    debug_assert!((base as usize).is_multiple_of(HUGE) && len >= HUGE);
    let whole = whole_dense(dense_tail, filled, gates().thp, crate::lean::lean_mode());
    let (sparse, dense) = if whole {
        (0, len)
    } else if dense_tail {
        (HUGE, len - HUGE)
    } else {
        (len, 0)
    };
    let (a, b) = (advice_here(false), advice_here(true));
    // SAFETY: forwarded caller guarantee; both parts lie in the superslab.
    unsafe {
        if a == b {
            give(base, len, a);
        } else {
            give(base, sparse, a);
            give(base.add(sparse), dense, b);
        }
    }
}

/// Whether a superslab set up for a class is dense as a whole: the class's blocks are up
/// to a page (`dense_tail`), it `filled` every superslab it had, the gate is `DENSE`, and
/// lean mode (which trades faults for resident bytes) is off.
pub const fn whole_dense(dense_tail: bool, filled: bool, mode: Thp, lean: bool) -> bool {
    dense_tail && filled && matches!(mode, Thp::Dense) && !lean
}

/// Advise a large block's mapping at `base` (`len` bytes, 2 MiB-aligned) whose block,
/// with its header, spans bytes `from..used` of it: the whole 2 MiB pages inside that
/// span dense, the rest of the mapping sparse (before the header, as an aligned block
/// leaves it, and past the block's last whole 2 MiB page). At most three system calls,
/// none where [`advice`] says [`Advice::Keep`].
///
/// # Safety
/// `base..base+len` is a large mapping of ours (`from <= used <= len`).
pub unsafe fn advise_large(base: *mut u8, len: usize, from: usize, used: usize) {
    debug_assert!((base as usize).is_multiple_of(HUGE) && from <= used && used <= len);
    let lo = from.next_multiple_of(HUGE).min(len);
    let hi = (used & !(HUGE - 1)).max(lo);
    let (dense, sparse) = (advice_here(true), advice_here(false));
    // SAFETY: forwarded caller guarantee; every part lies in the mapping.
    unsafe {
        if dense == sparse {
            give(base, len, dense);
        } else {
            give(base, lo, sparse);
            give(base.add(lo), hi - lo, dense);
            give(base.add(hi), len - hi, sparse);
        }
    }
}

/// Advise the allocator's own sparse metadata at `p` (`len` bytes: the registry's
/// table): sparse.
///
/// # Safety
/// `p..p+len` is a page-aligned mapping of ours.
pub unsafe fn advise_metadata(p: *mut u8, len: usize) {
    // SAFETY: forwarded caller guarantee.
    unsafe { give(p, len, advice_here(false)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, row by row.
    #[test]
    fn advice_by_host_gate_and_range() {
        use Advice::{Huge, Keep, NoHuge};
        let hosts = [ThpHost::Never, ThpHost::Madvise, ThpHost::Always];
        let modes = [Thp::Auto, Thp::Never, Thp::Dense];
        // [host][mode] = (sparse, dense)
        let want = [
            [(Keep, Keep), (Keep, Keep), (Keep, Keep)],
            [(Keep, Keep), (Keep, Keep), (Keep, Huge)],
            [(NoHuge, Keep), (NoHuge, NoHuge), (NoHuge, Huge)],
        ];
        for (h, row) in hosts.iter().zip(want) {
            for (m, (sparse, dense)) in modes.iter().zip(row) {
                assert_eq!(advice(*h, *m, false), sparse, "{h:?} {m:?} sparse");
                assert_eq!(advice(*h, *m, true), dense, "{h:?} {m:?} dense");
            }
        }
    }

    /// Nothing hakmem does can ask for huge pages on a sparse range, and the default
    /// gate never asks for them at all.
    #[test]
    fn sparse_ranges_never_get_huge_pages() {
        for h in [ThpHost::Never, ThpHost::Madvise, ThpHost::Always] {
            for m in [Thp::Auto, Thp::Never, Thp::Dense] {
                assert_ne!(advice(h, m, false), Advice::Huge);
            }
            assert_ne!(advice(h, Thp::Auto, true), Advice::Huge);
        }
    }

    /// A whole superslab is dense only for a class of blocks up to a page that filled
    /// every superslab it had, under `DENSE`, outside lean mode.
    #[test]
    fn whole_superslab_dense_only_for_a_filled_class_under_dense() {
        for tail in [false, true] {
            for filled in [false, true] {
                for mode in [Thp::Auto, Thp::Never, Thp::Dense] {
                    for lean in [false, true] {
                        let want = tail && filled && mode == Thp::Dense && !lean;
                        assert_eq!(
                            whole_dense(tail, filled, mode, lean),
                            want,
                            "{tail} {filled} {mode:?} {lean}"
                        );
                    }
                }
            }
        }
    }
}
