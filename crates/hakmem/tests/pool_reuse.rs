//! The pool (results/220): the slabs one class of small blocks emptied serve the next
//! class that grows, at once, with their pages still resident; no new superslab, no new
//! pages. Before, every class had superslabs of its own, and a program that moved from one
//! size of blocks to another held each class's peak until the decay interval passed.
//!
//! Run without the test harness (its threads would allocate on their own).

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

// (Only its `rss_mib`.)
#[allow(dead_code)]
mod decay_common;
use decay_common::rss_mib;

/// Blocks of each size: about 5 MiB of the first, 4 MiB of the second (new pages for it
/// would show as 4 MiB more; the check allows 2).
const BLOCKS: usize = 20_000;

fn build(size: usize, fill: u8) -> Vec<Vec<u8>> {
    let v: Vec<Vec<u8>> = (0..BLOCKS).map(|_| vec![fill; size]).collect();
    assert!(v.iter().all(|b| b.len() == size && b[size - 1] == fill));
    v
}

fn main() {
    let first = build(256, 1);
    let (ss1, rss1) = (hakmem::stats().superslabs_live, rss_mib());
    drop(first);
    // The thread's cached blocks back to their slabs, which empty (but for the few a
    // transfer cache keeps).
    hakmem::thread_flush();
    let second = build(200, 2);
    let (ss2, rss2) = (hakmem::stats().superslabs_live, rss_mib());
    println!(
        "pool_reuse: 256-byte blocks: {ss1} superslabs, {rss1} MiB; then 200-byte blocks: \
         {ss2} superslabs, {rss2} MiB"
    );
    assert!(
        ss2 <= ss1,
        "the second class mapped superslabs of its own ({ss1} -> {ss2})"
    );
    assert!(
        rss2 <= rss1 + 2,
        "the second class took new pages ({rss1} -> {rss2} MiB)"
    );
    drop(second);
    println!("pool_reuse: ok");
}
