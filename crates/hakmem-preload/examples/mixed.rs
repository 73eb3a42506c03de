//! The reference workload ("MIXED"), in Rust, to compare with `bench/mixed.c` under
//! `LD_PRELOAD=libhakmem.so`: the same loop, RNG, seed and output line.
//!
//! ```text
//! cargo run --release -p hakmem-preload --example mixed -- [global|raw|c|floor] [ops] [ws] [seed]
//! ```
//!
//! - `global`: hakmem as the `#[global_allocator]` (`alloc`/`dealloc` with a `Layout` of
//!   alignment 16): the Rust global-allocator build.
//! - `raw`: the facade's pointer-only API (`hakmem::raw::malloc`/`free`), statically
//!   linked: C semantics (pointer validation on free) without a shared object.
//! - `c`: this crate's C functions (`hakmem_preload::malloc`/`free`), statically linked.
//! - `floor`: blocks from a static pool: the loop alone.

use core::ffi::c_void;
use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::time::Instant;

#[global_allocator]
static GLOBAL: hakmem_facade::HakMem = hakmem_facade::HakMem;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let s = splitmix64(seed ^ splitmix64(stream.wrapping_add(0x5851_F42D_4C95_7F2D)));
        Rng(if s == 0 { 0x2545_F491_4F6C_DD1D } else { s })
    }

    #[inline(always)]
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[inline(always)]
fn below(r32: u64, n: u64) -> u64 {
    ((r32 & 0xFFFF_FFFF) * n) >> 32
}

trait Alloc {
    fn alloc(&mut self, size: usize, slot: usize) -> *mut u8;
    /// # Safety
    /// `p` came from `alloc(size, slot)` and is freed once.
    unsafe fn free(&mut self, p: *mut u8, size: usize);
}

struct Global;
impl Alloc for Global {
    #[inline(always)]
    fn alloc(&mut self, size: usize, _: usize) -> *mut u8 {
        // SAFETY: size >= 16, alignment 16.
        unsafe { GLOBAL.alloc(Layout::from_size_align_unchecked(size, 16)) }
    }
    #[inline(always)]
    unsafe fn free(&mut self, p: *mut u8, size: usize) {
        // SAFETY: the caller's guarantee; same layout as the allocation.
        unsafe { GLOBAL.dealloc(p, Layout::from_size_align_unchecked(size, 16)) }
    }
}

struct Raw;
impl Alloc for Raw {
    #[inline(always)]
    fn alloc(&mut self, size: usize, _: usize) -> *mut u8 {
        hakmem_facade::raw::malloc(size)
    }
    #[inline(always)]
    unsafe fn free(&mut self, p: *mut u8, _: usize) {
        // SAFETY: the caller's guarantee.
        if unsafe { hakmem_facade::raw::free(p) }.is_err() {
            std::process::abort();
        }
    }
}

struct C;
impl Alloc for C {
    #[inline(always)]
    fn alloc(&mut self, size: usize, _: usize) -> *mut u8 {
        hakmem_preload::malloc(size).cast()
    }
    #[inline(always)]
    unsafe fn free(&mut self, p: *mut u8, _: usize) {
        // SAFETY: the caller's guarantee.
        unsafe { hakmem_preload::free(p.cast::<c_void>()) }
    }
}

#[repr(align(16))]
struct Block([u8; 16]);

struct Floor(Vec<Block>);
impl Alloc for Floor {
    #[inline(always)]
    fn alloc(&mut self, _: usize, slot: usize) -> *mut u8 {
        self.0[slot].0.as_mut_ptr()
    }
    #[inline(always)]
    unsafe fn free(&mut self, _: *mut u8, _: usize) {}
}

#[derive(Clone, Copy)]
struct Slot {
    ptr: *mut u8,
    size: usize,
}

fn run<A: Alloc>(a: &mut A, ops: u64, ws: u64, seed: u64) {
    let mut slots = vec![
        Slot {
            ptr: core::ptr::null_mut(),
            size: 0
        };
        ws as usize
    ];
    let mut rng = Rng::new(seed, 0);
    let (mut allocs, mut checksum) = (0u64, 0u64);
    let t0 = Instant::now();
    for _ in 0..ops {
        let r = rng.next_u64();
        let i = below(r, ws) as usize;
        let s = &mut slots[i];
        if s.ptr.is_null() {
            let size = 16 + below(r >> 32, 1024 - 16 + 1) as usize;
            let p = a.alloc(size, i);
            if p.is_null() {
                std::process::abort();
            }
            // SAFETY: `p` holds at least one byte.
            unsafe { p.write_volatile(i as u8) };
            *s = Slot { ptr: p, size };
            allocs += 1;
        } else {
            // SAFETY: a live block of ours; freed once, then the slot is emptied.
            unsafe {
                checksum += u64::from(s.ptr.read_volatile());
                a.free(s.ptr, s.size);
            }
            s.ptr = core::ptr::null_mut();
        }
    }
    let ns = t0.elapsed().as_secs_f64() * 1e9 / ops as f64;
    for s in &slots {
        if !s.ptr.is_null() {
            // SAFETY: live blocks, freed once.
            unsafe { a.free(s.ptr, s.size) };
        }
    }
    println!(
        "mixed ops={ops} ws={ws} allocs={allocs} ns_per_op={ns:.3} mops={:.2} checksum={}",
        1e3 / ns,
        black_box(checksum)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("global", String::as_str);
    let num = |i: usize, d: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (ops, ws, seed) = (num(2, 20_000_000), num(3, 400).max(1), num(4, 42));
    match mode {
        "global" => run(&mut Global, ops, ws, seed),
        "raw" => run(&mut Raw, ops, ws, seed),
        "c" => run(&mut C, ops, ws, seed),
        "floor" => {
            let pool = (0..ws).map(|_| Block([0; 16])).collect();
            run(&mut Floor(pool), ops, ws, seed)
        }
        _ => {
            eprintln!("usage: mixed [global|raw|c|floor] [ops] [ws] [seed]");
            std::process::exit(2);
        }
    }
}
