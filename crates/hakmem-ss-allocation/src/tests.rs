//! Unit tests of the central lists (compiled only under `#[cfg(test)]`, from lib.rs).
extern crate std;
use super::*;
use std::vec::Vec;

fn collect(chain: Chain) -> Vec<*mut u8> {
    let mut v = Vec::new();
    let mut b = chain.head;
    while !b.is_null() {
        v.push(b);
        // SAFETY: blocks of a chain from `refill`.
        b = unsafe { next_of(b) };
    }
    v
}

#[test]
fn refill_gives_distinct_aligned_blocks_of_the_class() {
    // (Not `NCLASS - 1`: `empty_superslab_is_released...` needs that class to itself.)
    for cls in [0, 5, 19, 20, 40, NCLASS - 2] {
        let chain = refill(cls, 20);
        assert_eq!(chain.count, 20);
        let v = collect(chain);
        assert_eq!(v.len(), 20);
        let bs = block_size(cls);
        let mut sorted = v.clone();
        sorted.sort();
        for w in sorted.windows(2) {
            assert!(
                w[1] as usize - w[0] as usize >= bs,
                "overlap in class {cls}"
            );
        }
        for &b in &v {
            assert_eq!(b as usize % 16, 0);
            let info = validate(b).expect("block is ours");
            assert_eq!(validate_class(b), Some(cls));
            for off in [1usize, 8, 15, bs / 2, bs - 1]
                .into_iter()
                .filter(|&o| o > 0 && o < bs)
            {
                assert_eq!(
                    validate_class(b.wrapping_add(off)),
                    None,
                    "interior {off} of {bs}"
                );
            }
            assert_eq!(info.class, cls);
            assert_eq!(info.block_size, bs);
            // SAFETY: the block is ours.
            unsafe { assert_eq!(class_of_block(b), cls) };
            // Interior pointers are not block starts.
            assert!(validate(b.wrapping_add(8)).is_none());
            // SAFETY: the block is ours: this test hands it out (to ASan too: a block of
            // a chain is free, poisoned past its link in `hakmem_asan` builds), and
            // writing the whole block must be fine.
            unsafe {
                asan::block_handed_out(b);
                ptr::write_bytes(b, 0xCD, bs)
            };
        }
        // Relink (contents were overwritten) and flush.
        for w in v.windows(2) {
            // SAFETY: our blocks.
            unsafe { set_next(w[0], w[1]) };
        }
        // SAFETY: our block; a flushed chain is null-terminated.
        unsafe { set_next(v[v.len() - 1], ptr::null_mut()) };
        // SAFETY: the chain is exactly what refill gave.
        unsafe { flush(cls, v[0], v.len() as u32) };
    }
}

#[test]
fn empty_superslab_is_released_and_foreign_pointers_rejected() {
    let x = 0u64;
    assert!(ss_lookup(&x as *const u64 as *const u8).is_none());
    assert!(ss_lookup(ptr::null()).is_none());
    assert!(validate_class(&x as *const u64 as *const u8).is_none());
    assert!(validate_class(ptr::null()).is_none());
    // A class nobody else uses in this test binary: 256 KiB blocks, 7+8 per superslab.
    let cls = NCLASS - 1;
    let chain = refill(cls, 3);
    let v = collect(chain);
    let ss = v[0] as usize & !(SS_SIZE - 1);
    assert_eq!(registry::kind_of(ss as *const u8), Kind::Superslab);
    for w in v.windows(2) {
        // SAFETY: our blocks.
        unsafe { set_next(w[0], w[1]) };
    }
    // SAFETY: returning exactly what we took.
    unsafe { flush(cls, v[0], 3) };
    // (Classes with 64 KiB slabs would keep the chain in the transfer cache: drain it.)
    drain_transfer_caches();
    // The superslab went to the release policy's cache, from which another test of this
    // binary (running in parallel) may take it at once for its own class and carve a
    // block at the same address: a block of class `cls` it is no more either way.
    // (Asserting `None` was flaky: CI saw it fail once.)
    assert_ne!(
        validate(v[0]).map(|i| i.class),
        Some(cls),
        "freed superslab no longer ours"
    );
    assert_ne!(validate_class(v[0]), Some(cls));
}

#[test]
fn threads_refill_and_flush_concurrently() {
    let hs: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let cls = 3 + (t % 2);
                for _ in 0..2000 {
                    let chain = refill(cls, 16);
                    let v = collect(chain);
                    assert_eq!(v.len(), 16);
                    for &b in &v {
                        assert!(validate(b).is_some());
                    }
                    // SAFETY: returning what we took, still linked.
                    unsafe { flush(cls, chain.head, chain.count) };
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn transfer_cache_hands_chains_over_whole() {
    let cls = 7; // 128-byte blocks, used by no other test here
    let a = refill(cls, 10);
    assert_eq!(a.count, 10);
    // SAFETY: returning exactly what we took, null-terminated.
    unsafe { flush(cls, a.head, a.count) };
    let (_, free) = class_counts(cls);
    assert!(free >= 10);
    let b = refill_upto(cls, 5, 10);
    assert_eq!((b.head, b.count), (a.head, 10), "the same chain, whole");
    let c = refill_upto(cls, 5, 10);
    assert_eq!(c.count, 5, "the transfer cache is empty: slab path");
    // SAFETY: as above.
    unsafe {
        flush(cls, b.head, b.count);
        flush(cls, c.head, c.count);
    }
    drain_transfer_caches();
    assert_eq!(class_counts(cls), (0, 0));
}

/// The layout is the same for 4, 16 and 64 KiB pages: every slab of every class starts
/// on a page, an empty slab's decommit (its touched bytes rounded up to a page, as the
/// release policy does) never reaches past its slab, and the hardened guard covers whole
/// pages between the header's pages (its struct and the free bitmaps) and the first slab.
#[test]
fn layout_holds_for_every_supported_page_size() {
    for page in [4usize << 10, 16 << 10, 64 << 10] {
        assert!(os::page_size_supported(page));
        for cls in 0..NCLASS {
            let bs = block_size(cls);
            let shift = slab_shift(cls);
            let mut i = 0;
            while i < MAX_SLABS && SS_HEADER + (i << shift) + bs <= SS_SIZE {
                let start = SS_HEADER + (i << shift);
                let len = (1usize << shift).min(SS_SIZE - start);
                assert_eq!(start % page, 0, "class {cls} slab {i}, page {page}");
                let capacity = len / bs;
                for carved in [1, capacity / 2, capacity] {
                    let touched = os::round_to_page(carved * bs, page).unwrap();
                    assert!(
                        touched <= len,
                        "class {cls} slab {i}: a decommit past the slab with {page}-byte pages"
                    );
                }
                i += 1;
            }
        }
        match header_guard(page) {
            Some((off, len)) => {
                assert!(page < SS_HEADER);
                assert_eq!(
                    (off, off + len),
                    (BITMAP_END.div_ceil(page) * page, SS_HEADER),
                    "the guard starts at the first page after the free bitmaps"
                );
                assert!(off >= BITMAP_END);
                assert_eq!((off % page, len % page), (0, 0));
                assert!(
                    core::mem::size_of::<SuperSlab>() <= off,
                    "the header fits before it"
                );
            }
            None => assert!(
                BITMAP_END.div_ceil(page) * page >= SS_HEADER,
                "no guard only when the header's pages reach the first slab"
            ),
        }
    }
    // This machine's page: what `new_superslab` uses.
    assert!(os::page_size_supported(os::page_size()));
}

/// The validation table (`Granule`: slab start and carved limit per 64 KiB granule,
/// one multiply and one compare) says exactly what the division-based `validate` (`ss_lookup`: magic,
/// slab index, free-slab mask, carve count, block start by division) says, for every
/// 8-byte-aligned address of a superslab: classes with 64 KiB, 64 KiB (mid) and 2 MiB
/// slabs, with blocks out in two slabs, then after the second slab emptied (its
/// granules must read "nothing carved" again), then with everything back.
#[test]
fn validation_table_agrees_with_the_division_everywhere() {
    fn give_back(v: &[*mut u8], cls: usize) {
        if v.is_empty() {
            return;
        }
        for w in v.windows(2) {
            // SAFETY: our blocks.
            unsafe { set_next(w[0], w[1]) };
        }
        // SAFETY: our block; a flushed chain is null-terminated.
        unsafe { set_next(v[v.len() - 1], ptr::null_mut()) };
        // SAFETY: returning exactly blocks we took.
        unsafe { flush(cls, v[0], v.len() as u32) };
        drain_transfer_caches();
    }
    // Classes used by no other test here (160 B; 7 KiB; 192 KiB blocks).
    for cls in [9, 30, 49] {
        let bs = block_size(cls);
        let per_slab = (1usize << slab_shift(cls)) / bs;
        let v = collect(refill(cls, per_slab as u32 + 3));
        let ss = v[0] as usize & !(SS_SIZE - 1);
        let check = |what: &str| {
            if registry::kind_of(ss as *const u8) != Kind::Superslab {
                return;
            }
            for a in (ss..ss + SS_SIZE).step_by(8) {
                let q = a as *const u8;
                assert_eq!(
                    validate_class(q).is_some(),
                    validate(q).is_some(),
                    "class {cls}, {what}: {:#x} (offset {:#x})",
                    a,
                    a - ss
                );
            }
        };
        assert!(v.iter().all(|&b| b as usize & !(SS_SIZE - 1) == ss));
        assert!(v.iter().all(|&b| validate_class(b) == Some(cls)));
        check("blocks out in two slabs");
        let first = v.iter().map(|&b| b as usize).min().unwrap();
        let slab0 = (first - ss - SS_HEADER) >> slab_shift(cls);
        let (keep, back): (Vec<*mut u8>, Vec<*mut u8>) = v
            .iter()
            .partition(|&&b| (b as usize - ss - SS_HEADER) >> slab_shift(cls) == slab0);
        assert!(
            !keep.is_empty() && !back.is_empty(),
            "class {cls}: one slab only"
        );
        give_back(&back, cls);
        assert!(
            back.iter().all(|&b| validate_class(b).is_none()),
            "class {cls}"
        );
        check("second slab emptied");
        give_back(&keep, cls);
        check("everything back");
    }
}

/// A refill takes a slab's free blocks from its bitmap, lowest address first, without
/// reading them: blocks flushed in scrambled order, with their link words then
/// overwritten (a list through the blocks would follow the garbage), come back as the
/// lowest `want` of them in address order; `refill` gives the chain's tail and
/// `refill_upto` never more than `want` from a slab.
#[test]
fn refill_takes_free_blocks_from_the_bitmap_in_address_order() {
    let cls = 12; // 208-byte blocks, used by no other test here
    drain_transfer_caches();
    // 13 blocks carved from a fresh slab; 12 of them flushed one by one (a chain of one
    // skips the transfer cache), so they are free in their slab; one stays out, so the
    // slab does not empty.
    let v = collect(refill(cls, 13));
    assert_eq!(v.len(), 13);
    let mut order: Vec<*mut u8> = v[1..].to_vec();
    order.reverse();
    order.swap(2, 9);
    for &b in &order {
        // SAFETY: one of our blocks, given back alone.
        unsafe {
            set_next(b, ptr::null_mut());
            flush(cls, b, 1);
        }
    }
    for &b in &order {
        // SAFETY: a free block of 208 bytes; its first word is no longer read by anyone.
        unsafe { b.cast::<usize>().write(0x5A5A_5A5A_5A5A_5A5A) };
    }
    let mut sorted: Vec<usize> = order.iter().map(|&b| b as usize).collect();
    sorted.sort_unstable();
    let first = refill_upto(cls, 8, 16);
    assert_eq!(first.count, 8, "a slab gives `want`, not more");
    assert!(!first.tail.is_null());
    let first = collect(first);
    if !HARDENED {
        // (Hardened builds shuffle a refill.)
        assert_eq!(
            first.iter().map(|&b| b as usize).collect::<Vec<_>>(),
            sorted[..8],
            "the lowest free blocks, in address order"
        );
    }
    let exact = refill(cls, 4);
    assert_eq!(exact.count, 4);
    assert!(!exact.tail.is_null(), "refill must give the chain's tail");
    // SAFETY: the tail of a chain from `refill` is its last block, link null.
    assert!(unsafe { next_of(exact.tail) }.is_null());
    let exact = collect(exact);
    let mut all: Vec<usize> = first.iter().chain(&exact).map(|&b| b as usize).collect();
    all.sort_unstable();
    assert_eq!(all, sorted, "every free block once");
    for &b in first.iter().chain(&exact).chain(&v[..1]) {
        // SAFETY: as above.
        unsafe {
            set_next(b, ptr::null_mut());
            flush(cls, b, 1);
        }
    }
    drain_transfer_caches();
    assert_eq!(class_counts(cls), (0, 0));
}

/// A block given back twice (a double free whose free mark was overwritten in between,
/// so no thread cache caught it) stops the process with a report at the second flush,
/// instead of entering its slab's free blocks twice. Run in a forked child.
#[test]
fn a_block_flushed_twice_aborts() {
    let cls = 13; // 240-byte blocks, used by no other test here
    let chain = refill(cls, 2);
    assert_eq!(chain.count, 2);
    let v = collect(chain);
    // SAFETY: fork; the child only flushes a block of a class no other test uses (its
    // lock cannot be held by another thread at the fork) and exits or aborts.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: the child: our block, given back twice on purpose.
        unsafe {
            libc::alarm(10);
            libc::close(2); // the report is expected; keep the test output clean
            set_next(v[0], ptr::null_mut());
            flush(cls, v[0], 1);
            set_next(v[0], ptr::null_mut());
            flush(cls, v[0], 1);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGABRT,
        "status {status:#x}: the second flush of a block must abort"
    );
    for &b in &v {
        // SAFETY: the parent's blocks, each given back once.
        unsafe {
            set_next(b, ptr::null_mut());
            flush(cls, b, 1);
        }
    }
}

/// The validation table's one-compare test (`is_carved_block_start`, see `Granule`)
/// against the two-step definition, for every class: every offset of a whole slab,
/// with the slab fully carved, and around every block start for other carve counts.
#[test]
fn merged_block_start_check_is_exact() {
    for (cls, &m) in DIV_MAGIC.iter().enumerate() {
        let bs = block_size(cls);
        let e = div_excess(m, bs);
        assert!((1..=bs as u64).contains(&e), "class {cls}: excess {e}");
        let len = 1usize << slab_shift(cls);
        let cap = len / bs;
        let limit = |k: usize| u32::try_from(k as u64 * e).expect("limit fits 32 bits");
        let full = limit(cap);
        for rel in 0..len {
            let want = rel % bs == 0 && rel / bs < cap;
            assert_eq!(
                is_carved_block_start(rel as u32, m, full),
                want,
                "class {cls} (block {bs}), offset {rel}, all {cap} carved"
            );
            // The quotient is still exact with the adjusted magic.
            assert_eq!(div_block(rel, m), rel / bs, "class {cls}, offset {rel}");
        }
        for k in [0, 1, 2, cap / 3, cap / 2, cap.saturating_sub(1)] {
            let lim = limit(k);
            for b in 0..=cap {
                for d in [0usize, 1, 8, 16, bs / 2, bs - 1] {
                    let Some(rel) = (b * bs).checked_add(d).filter(|&r| r < len) else {
                        continue;
                    };
                    let want = rel % bs == 0 && rel / bs < k;
                    assert_eq!(
                        is_carved_block_start(rel as u32, m, lim),
                        want,
                        "class {cls} (block {bs}), offset {rel}, {k} carved"
                    );
                }
            }
        }
    }
}

/// The bitmaps of a pool superslab are interleaved (`BITMAP_OFF`): the first word of
/// every slab lies in one page, so a superslab whose classes need one word per slab
/// (blocks of 1 KiB and up) touches one page of bitmaps; no two words of any two slabs
/// meet, in either layout, and all lie in the bitmap area. (With a 512-byte slot per
/// slab, the first words spanned eight pages: `burst-4k` held 1.6 MB more.)
#[test]
fn pool_bitmaps_first_words_share_a_page() {
    let page = |off: usize| off / 4096;
    let first = page(bitmap_word_offset(true, 0, 0, MAX_BITMAP_WORDS));
    for i in 0..MAX_SLABS {
        assert_eq!(
            page(bitmap_word_offset(true, i, 0, MAX_BITMAP_WORDS)),
            first,
            "slab {i}'s first bitmap word on another page"
        );
    }
    for (pool, words) in [
        (true, MAX_BITMAP_WORDS),
        (false, 1),
        (false, MAX_BITMAP_WORDS),
    ] {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..MAX_SLABS {
            for w in 0..words {
                let off = bitmap_word_offset(pool, i, w, words);
                assert!((BITMAP_OFF..BITMAP_END).contains(&off) && off.is_multiple_of(8));
                assert!(seen.insert(off), "slab {i} word {w} shares its place");
                if pool {
                    // What `bitmap_word` computes from word 0 and the shift.
                    let shift = POOL_ROW.trailing_zeros();
                    assert_eq!(
                        off,
                        bitmap_word_offset(pool, i, 0, words) + ((w << shift) * 8)
                    );
                }
            }
        }
    }
}
