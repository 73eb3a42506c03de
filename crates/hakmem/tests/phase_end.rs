//! A finished parallel phase gives its memory back (results/215).
//!
//! Threads of a pool build working sets of small blocks, free them and exit; the program
//! goes on with one thread. Before, the blocks the exiting threads gave back stayed in
//! the transfer caches, each pinning its 64 KiB slab, and the slabs that did empty were
//! given back only by a slow path that also grew a class or emptied a slab: a program
//! whose later calls were large blocks (or nothing hakmem counts as a phase end) kept the
//! whole phase resident. glibc and mimalloc were back near their start. Now a transfer
//! cache that no refill took from for a decay interval goes back to its slabs at the
//! next decay pass, the slabs it empties are as old as it, and every allocation slow
//! path runs the pass.
//!
//! Run without the test harness: its threads would allocate on their own.

use std::time::Duration;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn rss_mib() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    (pages * 4096) >> 20
}

const THREADS: usize = 8;
/// Blocks per class per thread (four classes: 48 to 960 bytes).
const BLOCKS: usize = 8000;

fn phase() {
    let sizes = [48usize, 112, 320, 960];
    let mut v: Vec<Vec<u8>> = Vec::with_capacity(BLOCKS);
    for round in 0..4u8 {
        for &s in &sizes {
            v.extend((0..BLOCKS).map(|_| vec![round; s]));
            assert!(v.iter().all(|b| b[0] == round && b.len() == s));
            v.clear();
        }
    }
}

/// A slow path that neither grows a tiny class nor empties a slab: a large block.
fn large_call() -> usize {
    let v = vec![7u8; 1 << 20];
    std::hint::black_box(&v);
    v[12345] as usize
}

fn main() {
    let gates = hakmem_env_gates::gates();
    if gates.ss_decay_ms == 0
        || gates.ss_decay_ms > 2000
        || gates.decommit_effective() != hakmem_env_gates::Decommit::Off
    {
        println!(
            "phase_end: SKIPPED (HAKMEM_SS_DECAY_MS={}, decommit {:?})",
            gates.ss_decay_ms,
            gates.decommit_effective()
        );
        return;
    }
    let decay = Duration::from_millis(u64::from(gates.ss_decay_ms));
    let base = rss_mib();
    let pool: Vec<_> = (0..THREADS).map(|_| std::thread::spawn(phase)).collect();
    for t in pool {
        t.join().unwrap();
    }
    let joined = rss_mib();
    let mut seen = Vec::new();
    for _ in 0..4 {
        std::thread::sleep(decay + decay / 4);
        large_call();
        seen.push(rss_mib());
    }
    println!(
        "phase_end: RSS {base} MiB at start, {joined} after the pool, then {seen:?} one interval apart"
    );
    hakmem::print_stats();
    assert!(
        joined >= base + 16,
        "the phase made too little resident to test: {base} -> {joined} MiB"
    );
    let last = *seen.last().unwrap();
    assert!(
        last <= base + 8,
        "a finished pool's memory stayed resident: {base} MiB at start, {joined} after the pool, {seen:?} later"
    );
    println!("phase_end: ok");
}
