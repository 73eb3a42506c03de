//! Criterion microbenchmarks: hakmem and mimalloc (and the system allocator for scale) side
//! by side, each used as an allocator *instance* through `GlobalAlloc` (not as the global
//! allocator, which stays the system one for criterion itself).
//!
//! Run: `cargo bench -p hakmem-bench --features micro` (add `-- <filter>` to select, e.g.
//! `-- malloc_free_hit`). Groups:
//! - `malloc_free_hit/<alloc>/<size>`: alloc + write + free of one size, again and again
//!   (the thread cache always hits).
//! - `malloc_free_miss/<alloc>/<size>`: 4,096 allocations, then 4,096 frees in allocation
//!   order (beyond any thread cache: refill and flush paths).
//! - `cross_thread_free/<alloc>/<size>`: blocks allocated here, freed by another thread, in
//!   batches of 1,024 handed over through a channel.
//! - `realloc/<alloc>/double`: 8 B grown by doubling to 64 KiB; `realloc/<alloc>/step16`:
//!   16 B grown 16 B at a time to 4 KiB (in-place growth).

use core::alloc::{GlobalAlloc, Layout};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

static HAKMEM: hakmem::HakMem = hakmem::HakMem;
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static SYSTEM: std::alloc::System = std::alloc::System;

const ALIGN: usize = 16;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, ALIGN).expect("valid layout")
}

/// A monomorphic call path per allocator, so that hakmem's inlined paths are what runs.
trait Bench: Sync + 'static {
    fn a(&self, l: Layout) -> *mut u8;
    fn d(&self, p: *mut u8, l: Layout);
    fn r(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8;
}

impl<T: GlobalAlloc + Sync + 'static> Bench for T {
    #[inline(always)]
    fn a(&self, l: Layout) -> *mut u8 {
        // SAFETY: every layout used here has a non-zero size.
        let p = unsafe { self.alloc(l) };
        assert!(!p.is_null(), "out of memory");
        p
    }
    #[inline(always)]
    fn d(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by this allocator with `l`.
        unsafe { self.dealloc(p, l) }
    }
    #[inline(always)]
    fn r(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: `p` is live with `l`; `new` is non-zero.
        let q = unsafe { self.realloc(p, l, new) };
        assert!(!q.is_null(), "out of memory");
        q
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
        .configure_from_args()
}

const SIZES: &[usize] = &[16, 64, 256, 1024, 4096, 32 * 1024];

fn hit_one<A: Bench>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    a: &'static A,
) {
    for &size in SIZES {
        let l = layout(size);
        c.bench_with_input(BenchmarkId::new(name, size), &l, |b, &l| {
            b.iter(|| {
                let p = a.a(l);
                // SAFETY: `p` has at least one byte.
                unsafe { p.write_volatile(1) };
                a.d(black_box(p), l);
            })
        });
    }
}

fn malloc_free_hit(c: &mut Criterion) {
    let mut g = c.benchmark_group("malloc_free_hit");
    g.throughput(Throughput::Elements(1));
    hit_one(&mut g, "hakmem", &HAKMEM);
    hit_one(&mut g, "mimalloc", &MIMALLOC);
    hit_one(&mut g, "system", &SYSTEM);
    g.finish();
}

const MISS_N: usize = 4096;

fn miss_one<A: Bench>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    a: &'static A,
) {
    let mut ptrs = vec![core::ptr::null_mut::<u8>(); MISS_N];
    for &size in SIZES {
        let l = layout(size);
        c.bench_with_input(BenchmarkId::new(name, size), &l, |b, &l| {
            b.iter(|| {
                for p in ptrs.iter_mut() {
                    *p = a.a(l);
                    // SAFETY: at least one byte.
                    unsafe { p.write_volatile(1) };
                }
                for &p in ptrs.iter() {
                    a.d(black_box(p), l);
                }
            })
        });
    }
}

fn malloc_free_miss(c: &mut Criterion) {
    let mut g = c.benchmark_group("malloc_free_miss");
    g.throughput(Throughput::Elements(2 * MISS_N as u64));
    miss_one(&mut g, "hakmem", &HAKMEM);
    miss_one(&mut g, "mimalloc", &MIMALLOC);
    miss_one(&mut g, "system", &SYSTEM);
    g.finish();
}

const XBATCH: usize = 1024;

/// Pointers sent to the freeing thread (as addresses: raw pointers are not `Send`).
type Batch = Vec<usize>;

fn cross_one<A: Bench>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    a: &'static A,
) {
    for &size in &[64usize, 1024] {
        let l = layout(size);
        c.bench_with_input(BenchmarkId::new(name, size), &l, |b, &l| {
            let (to_worker, from_main) = mpsc::sync_channel::<Batch>(4);
            let (to_main, from_worker) = mpsc::sync_channel::<Batch>(4);
            let worker = std::thread::spawn(move || {
                while let Ok(batch) = from_main.recv() {
                    for &p in &batch {
                        a.d(p as *mut u8, l);
                    }
                    if to_main.send(batch).is_err() {
                        break;
                    }
                }
            });
            let mut spare: Batch = Vec::with_capacity(XBATCH);
            b.iter_custom(|iters| {
                let t = Instant::now();
                let mut left = iters as usize;
                let mut in_flight = 0;
                while left > 0 {
                    let n = left.min(XBATCH);
                    spare.clear();
                    for _ in 0..n {
                        let p = a.a(l);
                        // SAFETY: at least one byte.
                        unsafe { p.write_volatile(1) };
                        spare.push(p as usize);
                    }
                    to_worker
                        .send(std::mem::take(&mut spare))
                        .expect("worker alive");
                    in_flight += 1;
                    left -= n;
                    if in_flight == 2 {
                        spare = from_worker.recv().expect("worker alive");
                        in_flight -= 1;
                    }
                }
                while in_flight > 0 {
                    spare = from_worker.recv().expect("worker alive");
                    in_flight -= 1;
                }
                t.elapsed()
            });
            drop(to_worker);
            worker.join().expect("worker");
        });
    }
}

fn cross_thread_free(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_thread_free");
    g.throughput(Throughput::Elements(1));
    cross_one(&mut g, "hakmem", &HAKMEM);
    cross_one(&mut g, "mimalloc", &MIMALLOC);
    cross_one(&mut g, "system", &SYSTEM);
    g.finish();
}

fn realloc_one<A: Bench>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    a: &'static A,
) {
    c.bench_function(BenchmarkId::new(name, "double"), |b| {
        b.iter(|| {
            let mut size = 8;
            let mut p = a.a(layout(size));
            while size < 64 * 1024 {
                p = a.r(p, layout(size), size * 2);
                size *= 2;
                // SAFETY: `p` has `size` bytes.
                unsafe { p.add(size - 1).write_volatile(1) };
            }
            a.d(black_box(p), layout(size));
        })
    });
    c.bench_function(BenchmarkId::new(name, "step16"), |b| {
        b.iter(|| {
            let mut size = 16;
            let mut p = a.a(layout(size));
            while size < 4096 {
                p = a.r(p, layout(size), size + 16);
                size += 16;
                // SAFETY: `p` has `size` bytes.
                unsafe { p.add(size - 1).write_volatile(1) };
            }
            a.d(black_box(p), layout(size));
        })
    });
}

fn realloc(c: &mut Criterion) {
    let mut g = c.benchmark_group("realloc");
    realloc_one(&mut g, "hakmem", &HAKMEM);
    realloc_one(&mut g, "mimalloc", &MIMALLOC);
    realloc_one(&mut g, "system", &SYSTEM);
    g.finish();
}

criterion_group! {
    name = micro;
    config = config();
    targets = malloc_free_hit, malloc_free_miss, cross_thread_free, realloc
}
criterion_main!(micro);
