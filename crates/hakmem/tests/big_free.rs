//! A big block's pages go back to the OS at its `free` (results/205): a freed large
//! mapping longer than `LARGE_REGION_MAX` (32 MiB) is unmapped at once, not cached. A
//! cached one stays resident until the decay check runs on a slow path, which a program
//! that then only allocates from its thread caches, or sleeps, may never take: a 500 MiB
//! buffer stayed resident that way (glibc, jemalloc and mimalloc give it back at once).

use hakmem_release_policy::LARGE_REGION_MAX;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn rss_mib() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    (pages * 4096) >> 20
}

#[test]
fn a_block_above_the_region_bound_gives_its_pages_back_at_its_free() {
    assert_eq!(LARGE_REGION_MAX, 32 << 20);
    for mib in [40usize, 200] {
        let before = rss_mib();
        let v = std::hint::black_box(vec![1u8; mib << 20]);
        let peak = rss_mib();
        assert!(
            peak >= before + mib - 4,
            "{mib} MiB written: RSS {before} -> {peak} MiB"
        );
        drop(v);
        let after = rss_mib();
        println!("{mib} MiB block: RSS {before} -> {peak} -> {after} MiB");
        // And again.
        let w = std::hint::black_box(vec![2u8; mib << 20]);
        assert!(w.iter().step_by(4096).all(|&b| b == 2));
        drop(w);
        assert!(
            after <= before + 4,
            "{mib} MiB block freed: RSS {before} -> {peak} -> {after} MiB (kept resident)"
        );
    }
}
