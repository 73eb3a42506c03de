//! Memory a program freed in big blocks serves its small ones next (results/210).
//!
//! A freed large mapping (up to 32 MiB) waits in the large cache for its decay interval.
//! When a class then needs a superslab and no empty one is cached, the superslab is cut
//! from that mapping (its first 4 MiB unit, the rest going back to the cache): no new
//! mapping, and no fresh pages faulted in beside the old ones. Before, `gcc -O2` kept
//! 4-6 MiB tables it had freed resident in the large cache while it mapped 220 MiB of
//! new superslabs for 96 KiB blocks: a peak of 526 MiB, against mimalloc's 413.
//!
//! Run without the test harness: its threads would allocate on their own.

use hakmem::raw;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

fn main() {
    const BIG: usize = 24 << 20;
    const SMALL: usize = 96 << 10;
    // Enough 96 KiB blocks for about 20 MiB: five or six superslabs of their class.
    const N: usize = 210;

    // Lean mode with decommit on keeps the freed mapping decommitted (`DONTNEED`): it
    // counts no byte in the cache and its pages come back zero, faulted in again. The
    // superslabs are still cut from it (no `mmap`), which is all that is checked there.
    let resident =
        hakmem_env_gates::gates().decommit_effective() == hakmem_env_gates::Decommit::Off;

    // Everything the test itself allocates, before the measurement: the block array,
    // a line printed and `/proc` read (their classes' first superslabs).
    let mut blocks = Vec::with_capacity(N);
    println!("big_then_small: {N} blocks of {SMALL} bytes after one of {BIG}");
    let _ = rss_kib();
    // The class's first superslab is a fresh mapping (`ss_take_cached`): have it.
    let first = raw::malloc(SMALL);
    assert!(!first.is_null());
    let big = raw::malloc(BIG);
    assert!(!big.is_null());
    // SAFETY: a live block of BIG bytes.
    unsafe { core::ptr::write_bytes(big, 0xA5, BIG) };
    // SAFETY: ours, freed once.
    unsafe { raw::free(big) }.unwrap();
    let s0 = hakmem::stats();
    assert!(
        !resident || s0.large_cached_bytes >= BIG as u64,
        "the freed mapping is cached: {s0}"
    );
    let rss0 = rss_kib();

    for i in 0..N {
        let p = raw::malloc(SMALL);
        assert!(!p.is_null());
        // SAFETY: a live block of SMALL bytes.
        unsafe { core::ptr::write_bytes(p, i as u8, SMALL) };
        blocks.push(p);
    }
    let s1 = hakmem::stats();
    let rss1 = rss_kib();
    println!(
        "{N} blocks of 96 KiB after a freed 24 MiB block: mmap {} -> {}, superslabs {} -> {}, large cached {} -> {} MiB, RSS {} -> {} MiB",
        s0.mmap,
        s1.mmap,
        s0.superslabs_live,
        s1.superslabs_live,
        s0.large_cached_bytes >> 20,
        s1.large_cached_bytes >> 20,
        rss0 >> 10,
        rss1 >> 10
    );
    // The superslabs came out of the cached mapping: no new mapping, and the large
    // cache gave up what they took.
    assert!(
        s1.mmap == s0.mmap,
        "new superslabs were mapped: mmap {} -> {}",
        s0.mmap,
        s1.mmap
    );
    assert!(
        !resident || s1.large_cached_bytes + (16 << 20) <= s0.large_cached_bytes,
        "the large cache still holds the mapping: {} -> {} MiB",
        s0.large_cached_bytes >> 20,
        s1.large_cached_bytes >> 20
    );
    // About 20 MiB of blocks written on pages that were resident already.
    assert!(
        !resident || rss1 < rss0 + (8 << 10),
        "RSS grew from {} to {} MiB: fresh pages beside the cached ones",
        rss0 >> 10,
        rss1 >> 10
    );
    // The old block's address is no block any more: the unit is a superslab now, its
    // first bytes the header.
    assert!(!raw::owns(big), "a stale large pointer still owned");
    // SAFETY: the pointer is validated before anything is read through it.
    assert!(unsafe { raw::usable_size(big) }.is_err());
    for (i, &p) in blocks.iter().enumerate() {
        // SAFETY: live blocks of SMALL bytes.
        let b = unsafe { core::slice::from_raw_parts(p, SMALL) };
        assert!(b.iter().all(|&x| x == i as u8), "block {i} overwritten");
        // SAFETY: ours, freed once.
        unsafe { raw::free(p) }.unwrap();
    }
    // SAFETY: ours, freed once.
    unsafe { raw::free(first) }.unwrap();
    hakmem::thread_flush();

    // The superslabs cut from the mapping are empty now and cached; the next class
    // takes them with every one of its slabs, each slab's free bitmap at its own place
    // in the header (16-byte blocks: 63 slabs, 512 bytes of bitmap each, where the
    // 96 KiB class used 4 slabs of 8 bytes). A bitmap left as the big block wrote it
    // reads as free blocks that were never carved: debug builds stop at the new slab
    // ("a new slab with a stale free bitmap"), release builds would hand out the same
    // block twice. (The first version zeroed only the bitmaps of the class it set the
    // superslab up for.)
    const TINY: usize = 16;
    let n = 5 * (4 << 20) / TINY;
    let mut tiny = Vec::with_capacity(n);
    for i in 0..n {
        let p = raw::malloc(TINY);
        assert!(!p.is_null());
        // SAFETY: a live block of TINY bytes.
        unsafe { p.cast::<usize>().write_unaligned(i) };
        tiny.push(p);
    }
    let mut sorted = tiny.clone();
    sorted.sort_unstable();
    assert!(
        sorted
            .windows(2)
            .all(|w| w[1] as usize - w[0] as usize >= TINY),
        "two live blocks overlap"
    );
    for (i, &p) in tiny.iter().enumerate() {
        // SAFETY: live blocks of TINY bytes.
        let v = unsafe { p.cast::<usize>().read_unaligned() };
        assert_eq!(v, i, "block {i} overwritten");
        // SAFETY: ours, freed once.
        unsafe { raw::free(p) }.unwrap();
    }
    println!("big_then_small: ok");
}
