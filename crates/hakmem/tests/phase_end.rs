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

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

mod decay_common;
use decay_common::{decay_or_skip, rss_mib};

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
    let Some(decay) = decay_or_skip("phase_end") else {
        return;
    };
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
