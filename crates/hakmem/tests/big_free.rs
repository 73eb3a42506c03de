//! A big block's pages go back to the OS at its `free` (results/205): a freed large
//! mapping longer than `LARGE_REGION_MAX` (32 MiB) is unmapped at once, not cached. A
//! cached one stays resident until the decay check runs on a slow path, which a program
//! that then only allocates from its thread caches, or sleeps, may never take: a 500 MiB
//! buffer stayed resident that way (glibc, jemalloc and mimalloc give it back at once).

use hakmem_release_policy::LARGE_REGION_MAX;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// The tests measure RSS: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rss_mib() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    (pages * 4096) >> 20
}

#[test]
fn a_block_above_the_region_bound_gives_its_pages_back_at_its_free() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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

/// A big buffer cut to fit (`Vec::shrink_to_fit`, C's `realloc(p, used)`) gives back the
/// pages past its new end (results/205: 8 blocks of 64 MiB shrunk to 1 MiB kept 513 MiB
/// resident).
#[test]
fn a_big_buffer_shrunk_to_fit_gives_its_tail_back() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = rss_mib();
    let mut v = std::hint::black_box(vec![3u8; 100 << 20]);
    let peak = rss_mib();
    v.truncate(1 << 20);
    v.shrink_to_fit();
    let after = rss_mib();
    println!("100 MiB buffer shrunk to 1 MiB: RSS {before} -> {peak} -> {after} MiB");
    assert!(v.iter().all(|&b| b == 3), "contents kept");
    assert!(
        after <= before + 8,
        "100 MiB buffer shrunk to 1 MiB: RSS {before} -> {peak} -> {after} MiB"
    );
    drop(v);
}
