//! `hakmem::stats()` before and after a workload: what the program holds, what the
//! caches hold, what the allocator mapped and which syscalls it made.
//!
//! ```sh
//! cargo run --release -p hakmem-alloc --example stats
//! cargo run --release -p hakmem-alloc --example stats --features preset-lean
//! ```

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
}

fn print(when: &str, s: &hakmem::Stats) {
    println!("-- {when}");
    println!("  allocated_bytes      {:>14}", mib(s.allocated_bytes));
    println!("  thread_cached_bytes  {:>14}", mib(s.thread_cached_bytes));
    println!("  central_free_bytes   {:>14}", mib(s.central_free_bytes));
    println!("  large_live_bytes     {:>14}", mib(s.large_live_bytes));
    println!("  resident_bytes       {:>14}", mib(s.resident_bytes));
    println!("  mapped_bytes         {:>14}", mib(s.mapped_bytes));
    println!(
        "  superslabs live {} cached {}; large cache {}",
        s.superslabs_live,
        s.superslabs_cached,
        mib(s.large_cached_bytes)
    );
    println!(
        "  syscalls {} (mmap {} munmap {} madvise_calls {} mprotect {} mremap {}); lean_decommit {} lean_retire {}",
        s.syscalls(),
        s.mmap,
        s.munmap,
        s.madvise_calls,
        s.mprotect,
        s.mremap,
        s.lean_decommit,
        s.lean_retire
    );
}

fn main() {
    println!("preset {}", hakmem::PRESET.name());
    let before = hakmem::stats();
    print("before", &before);

    // A workload: 200k small strings, 2k mid-size buffers, 8 large vectors.
    let small: Vec<String> = (0..200_000).map(|i| format!("{i:>24}")).collect();
    let mid: Vec<Vec<u8>> = (0..2000).map(|i| vec![i as u8; 4096 + i * 50]).collect();
    let large: Vec<Vec<u64>> = (0..8).map(|i| vec![i; 1 << 17]).collect();
    let during = hakmem::stats();
    print("while holding the workload", &during);

    drop(small);
    drop(mid);
    drop(large);
    print("after freeing it", &hakmem::stats());

    hakmem::thread_flush();
    print("after thread_flush()", &hakmem::stats());

    let unmapped = hakmem::trim();
    print(
        &format!("after trim() (unmapped {})", mib(unmapped as u64)),
        &hakmem::stats(),
    );
}
