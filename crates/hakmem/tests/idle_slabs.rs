//! Empty slabs inside live superslabs give their pages back once they stay idle past
//! the decay interval (`HAKMEM_SS_DECAY_MS`, 250 ms; results/210, results/215).
//!
//! A class that grew in one phase of a program and shrank in the next kept every page
//! of its empty slabs resident for as long as one block of each superslab lived: only a
//! wholly empty superslab went back to the release policy. `gcc -O2` paid for its early
//! phases' peaks through its last one. Now the decay pass decommits a slab idle for the
//! interval, and `trim` every idle slab at once.
//!
//! Run without the test harness: its threads would allocate on their own.

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

mod decay_common;
use decay_common::{decay_or_skip, rss_mib};

/// One 256-byte block each (the point: many blocks of one class, not one array).
type Block = Box<[u8; 256]>;

/// 24 MiB of 256-byte blocks; all but one per 1,024 freed (so each superslab keeps a
/// block in use, and stays live), the rest given back by this thread's cache.
fn grow_and_shrink(round: u8) -> Vec<Block> {
    let blocks: Vec<Block> = (0..96 * 1024).map(|_| Box::new([round; 256])).collect();
    let kept: Vec<Block> = blocks.into_iter().step_by(1024).collect();
    hakmem::thread_flush();
    kept
}

fn check(kept: &[Block], round: u8) {
    assert!(
        kept.iter().all(|b| b.iter().all(|&x| x == round)),
        "a kept block changed"
    );
}

fn main() {
    let Some(decay) = decay_or_skip("idle_slabs") else {
        return;
    };
    let _ = rss_mib();

    // Decay: idle past the interval, given back at the next slow path.
    let base = rss_mib();
    let kept = grow_and_shrink(1);
    let shrunk = rss_mib();
    std::thread::sleep(decay + decay / 2);
    hakmem::thread_flush();
    let decayed = rss_mib();
    println!("decay: RSS {base} MiB, after a 24 MiB phase {shrunk}, one interval later {decayed}");
    check(&kept, 1);
    assert!(
        shrunk >= base + 16,
        "the empty slabs went back before their interval: {base} -> {shrunk} MiB"
    );
    assert!(
        decayed + 16 <= shrunk,
        "idle slabs kept resident past the decay interval: {shrunk} -> {decayed} MiB"
    );

    // The class grows again on the same superslabs: the decommitted slabs serve it.
    let again = grow_and_shrink(2);
    check(&again, 2);
    check(&kept, 1);
    drop(again);

    // `trim`: every idle slab at once, whatever its age.
    let kept2 = grow_and_shrink(3);
    let before = rss_mib();
    let report = hakmem::trim_report();
    let trimmed = rss_mib();
    println!("trim: RSS {before} -> {trimmed} MiB, {report:?}");
    // (`malloc_trim` returns 1 on this count: memory went back without an unmap.)
    assert!(
        report.decommitted_slabs >= 64,
        "trim decommitted {} idle slabs of a 24 MiB phase",
        report.decommitted_slabs
    );
    check(&kept2, 3);
    assert!(
        trimmed + 12 <= before,
        "trim left the idle slabs resident: {before} -> {trimmed} MiB"
    );
    drop(kept);
    drop(kept2);
    println!("idle_slabs: ok");
}
