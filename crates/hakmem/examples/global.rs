//! hakmem as the global allocator: three lines, then ordinary Rust.
//!
//! ```sh
//! cargo run --release -p hakmem-alloc --example global
//! ```

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

use std::collections::HashMap;
use std::thread;

fn main() {
    // Strings, vectors and maps: every allocation below goes through hakmem.
    let words: Vec<String> = (0..100_000).map(|i| format!("word-{}", i % 5000)).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in &words {
        *counts.entry(w.as_str()).or_default() += 1;
    }
    assert_eq!(counts.len(), 5000);

    // Threads that allocate, and blocks freed by another thread than the one that
    // allocated them (the vectors are dropped on the main thread).
    let handles: Vec<_> = (0..4u64)
        .map(|t| thread::spawn(move || (0..50_000u64).map(|i| i * t).collect::<Vec<u64>>()))
        .collect();
    let total: u64 = handles
        .into_iter()
        .map(|h| h.join().unwrap().iter().sum::<u64>())
        .sum();

    // A large block (a dedicated mapping) that grows in place by realloc.
    let mut big: Vec<u8> = Vec::with_capacity(1 << 20);
    big.resize(64 << 20, 1);

    println!(
        "preset {}: {} distinct words, thread sum {}, {} MiB vector; hakmem made {} syscalls",
        hakmem::PRESET.name(),
        counts.len(),
        total,
        big.len() >> 20,
        hakmem::stats().syscalls()
    );
}
