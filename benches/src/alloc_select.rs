// The global allocator of a workload binary, chosen by one `alloc-*` feature (priority
// when several are on: hakmem, mimalloc, jemalloc, snmalloc, rpmalloc, floor, system).
// Included by `main.rs` and `stress_main.rs`; defines `ALLOC` (its name), `PROBE` (the
// syscall counter, hakmem only) and `COUNTERS` (the soak counters, hakmem only).

cfg_if::cfg_if! {
    if #[cfg(feature = "alloc-hakmem-bare")] {
        #[global_allocator]
        static GLOBAL: hakmem::HakMem = hakmem::HakMem;
        const ALLOC: &str = "hakmem";
        fn syscalls() -> u64 { hakmem::stats().syscalls() }
        const PROBE: Option<Probe> = Some(syscalls);
        fn counters() -> Option<soak::Counters> {
            let s = hakmem::stats();
            Some(soak::Counters {
                syscalls: s.syscalls(),
                madvise_calls: s.madvise_calls,
                lean_decommit: s.lean_decommit,
                lean_retire: s.lean_retire,
            })
        }
        const COUNTERS: CounterProbe = counters;
    } else if #[cfg(feature = "alloc-mimalloc")] {
        #[global_allocator]
        static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
        const ALLOC: &str = if cfg!(feature = "alloc-mimalloc-v2") { "mimalloc-v2" } else { "mimalloc" };
        const PROBE: Option<Probe> = None;
        const COUNTERS: CounterProbe = soak::no_counters;
    } else if #[cfg(feature = "alloc-jemalloc")] {
        #[global_allocator]
        static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
        const ALLOC: &str = "jemalloc";
        const PROBE: Option<Probe> = None;
        const COUNTERS: CounterProbe = soak::no_counters;
    } else if #[cfg(feature = "alloc-snmalloc")] {
        #[global_allocator]
        static GLOBAL: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;
        const ALLOC: &str = "snmalloc";
        const PROBE: Option<Probe> = None;
        const COUNTERS: CounterProbe = soak::no_counters;
    } else if #[cfg(feature = "alloc-rpmalloc")] {
        #[global_allocator]
        static GLOBAL: rpmalloc::RpMalloc = rpmalloc::RpMalloc;
        const ALLOC: &str = "rpmalloc";
        const PROBE: Option<Probe> = None;
        const COUNTERS: CounterProbe = soak::no_counters;
    } else if #[cfg(feature = "alloc-floor")] {
        #[global_allocator]
        static GLOBAL: hakmem_bench::floor::Floor = hakmem_bench::floor::Floor::new();
        const ALLOC: &str = "floor";
        const PROBE: Option<Probe> = None;
        const COUNTERS: CounterProbe = soak::no_counters;
    } else {
        const ALLOC: &str = "system";
        const PROBE: Option<Probe> = None;
        const COUNTERS: CounterProbe = soak::no_counters;
    }
}
