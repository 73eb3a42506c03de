//! Randomized model test: programs of alloc / dealloc / realloc / alloc_zeroed with
//! random sizes (0 B to 8 MiB, skewed small) and alignments (1 B to 2 MiB), checked
//! after every step against a shadow model: alignment, no overlap, contents kept
//! (unique fill patterns verified before every free and after every realloc), zeroing.
//!
//! `HAKMEM_MODEL_OPS` (default 1,000,000) and `HAKMEM_MODEL_SEED` (default: fixed seeds)
//! change the run; a failure prints its seed.

// Every unsafe block here calls the allocator or touches a block of the shadow model,
// whose liveness and size the model tracks: that is the whole test's invariant.
#![allow(clippy::undocumented_unsafe_blocks)]

use hakmem::HakMem;
use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const PAT_LEN: usize = 1 << 16;

/// The fill pattern: block `id` holds `pattern[id % 256 ..][..len]` (for its first
/// `PAT_LEN` bytes; further bytes are checked by sampling), with its id in the first
/// and last 8 bytes when it has room.
struct Patterns(Vec<u8>);

impl Patterns {
    fn new() -> Self {
        let mut r = Rng(12345);
        Patterns((0..PAT_LEN + 256).map(|_| r.next() as u8).collect())
    }
    fn slice(&self, id: u64, len: usize) -> &[u8] {
        let off = (id % 256) as usize;
        &self.0[off..off + len.min(PAT_LEN)]
    }
}

#[derive(Clone, Copy)]
struct Block {
    ptr: *mut u8,
    layout: Layout,
    id: u64,
}

fn sample_points(len: usize) -> impl Iterator<Item = usize> {
    // Beyond PAT_LEN: one byte per 4 KiB page plus the last byte.
    (PAT_LEN..len)
        .step_by(4096)
        .chain(if len > PAT_LEN { Some(len - 1) } else { None })
}

fn sample_byte(id: u64, i: usize) -> u8 {
    (id as usize).wrapping_mul(31).wrapping_add(i / 4096) as u8 ^ 0x5A
}

unsafe fn fill(p: &Patterns, b: &Block, from: usize) {
    let len = b.layout.size();
    let pat = p.slice(b.id, len);
    unsafe {
        if from < pat.len() {
            std::ptr::copy_nonoverlapping(
                pat.as_ptr().add(from),
                b.ptr.add(from),
                pat.len() - from,
            );
        }
        for i in sample_points(len).filter(|&i| i >= from) {
            *b.ptr.add(i) = sample_byte(b.id, i);
        }
        if len >= 16 {
            (b.ptr as *mut u64).write_unaligned(b.id);
            (b.ptr.add(len - 8) as *mut u64).write_unaligned(b.id);
        }
    }
}

/// Check bytes `0..upto` of block `b` (holding its pattern for `len` bytes).
unsafe fn verify(p: &Patterns, b: &Block, upto: usize, len: usize, seed: u64, step: u64) {
    let pat = p.slice(b.id, len);
    let n = upto.min(pat.len());
    let got = unsafe { std::slice::from_raw_parts(b.ptr, n) };
    let mut expect: Vec<u8> = pat[..n].to_vec();
    if len >= 16 {
        for (k, byte) in b.id.to_ne_bytes().iter().enumerate() {
            if k < n {
                expect[k] = *byte;
            }
            let t = len - 8 + k;
            if t < n {
                expect[t] = *byte;
            }
        }
    }
    if got != &expect[..] {
        let at = got.iter().zip(&expect).position(|(a, b)| a != b).unwrap();
        panic!(
            "seed {seed} step {step}: block id {} at {:p} ({:?}) corrupted at byte {at}",
            b.id, b.ptr, b.layout
        );
    }
    for i in sample_points(len).filter(|&i| i < upto) {
        let want = if len >= 16 && i >= len - 8 {
            b.id.to_ne_bytes()[i - (len - 8)]
        } else {
            sample_byte(b.id, i)
        };
        let got = unsafe { *b.ptr.add(i) };
        assert_eq!(
            got, want,
            "seed {seed} step {step}: block id {} byte {i} corrupted",
            b.id
        );
    }
}

fn random_layout(r: &mut Rng) -> Layout {
    let size = match r.below(1000) {
        0..=799 => r.below(1025) as usize,
        800..=969 => 1025 + r.below(64 * 1024) as usize,
        970..=997 => r.below(512 * 1024) as usize,
        _ => r.below(8 << 20) as usize,
    };
    let align = match r.below(100) {
        0..=79 => 1usize << r.below(5),   // 1..16
        80..=96 => 1 << (5 + r.below(8)), // 32..4096
        _ => 1 << (13 + r.below(9)),      // 8 KiB..2 MiB
    };
    Layout::from_size_align(size, align).unwrap()
}

struct Model {
    live: Vec<Block>,
    /// start address -> end address of every live block (for overlap checks).
    ranges: BTreeMap<usize, usize>,
}

impl Model {
    fn insert(&mut self, b: Block, seed: u64, step: u64) {
        let start = b.ptr as usize;
        let end = start + b.layout.size().max(1);
        if let Some((&s, &e)) = self.ranges.range(..end).next_back() {
            assert!(
                e <= start || s >= end,
                "seed {seed} step {step}: {:p} overlaps a live block",
                b.ptr
            );
        }
        self.ranges.insert(start, end);
        self.live.push(b);
    }
    fn remove(&mut self, i: usize) -> Block {
        let b = self.live.swap_remove(i);
        self.ranges.remove(&(b.ptr as usize));
        b
    }
}

fn run(seed: u64, ops: u64) {
    let pats = Patterns::new();
    let mut r = Rng(seed);
    let mut m = Model {
        live: Vec::new(),
        ranges: BTreeMap::new(),
    };
    let mut next_id = 1u64;
    let max_live = 3000;
    for step in 0..ops {
        let op = r.below(100);
        let must_free = m.live.len() >= max_live;
        if !must_free && (op < 45 || m.live.is_empty()) {
            let layout = random_layout(&mut r);
            let zeroed = r.below(4) == 0;
            let p = unsafe {
                if zeroed {
                    HakMem.alloc_zeroed(layout)
                } else {
                    HakMem.alloc(layout)
                }
            };
            assert!(
                !p.is_null(),
                "seed {seed} step {step}: alloc {layout:?} failed"
            );
            assert_eq!(
                p as usize % layout.align(),
                0,
                "seed {seed} step {step}: misaligned {layout:?}"
            );
            if zeroed {
                let n = layout.size().min(PAT_LEN);
                let s = unsafe { std::slice::from_raw_parts(p, n) };
                assert!(
                    s.iter().all(|&b| b == 0),
                    "seed {seed} step {step}: alloc_zeroed not zero"
                );
                for i in sample_points(layout.size()) {
                    assert_eq!(
                        unsafe { *p.add(i) },
                        0,
                        "seed {seed} step {step}: alloc_zeroed not zero"
                    );
                }
            }
            let b = Block {
                ptr: p,
                layout,
                id: next_id,
            };
            next_id += 1;
            m.insert(b, seed, step);
            unsafe { fill(&pats, &b, 0) };
        } else if op < 85 || must_free {
            let i = r.below(m.live.len() as u64) as usize;
            let b = m.remove(i);
            unsafe {
                verify(&pats, &b, b.layout.size(), b.layout.size(), seed, step);
                HakMem.dealloc(b.ptr, b.layout);
            }
        } else {
            let i = r.below(m.live.len() as u64) as usize;
            let b = m.remove(i);
            let new_size = if r.below(2) == 0 {
                (b.layout.size() as u64 * (1 + r.below(3)) + r.below(64)) as usize
            } else {
                (b.layout.size() as u64 / (1 + r.below(4))) as usize
            }
            .min(16 << 20);
            let q = unsafe { HakMem.realloc(b.ptr, b.layout, new_size) };
            assert!(!q.is_null(), "seed {seed} step {step}: realloc failed");
            let nl = Layout::from_size_align(new_size, b.layout.align()).unwrap();
            assert_eq!(
                q as usize % nl.align(),
                0,
                "seed {seed} step {step}: realloc misaligned"
            );
            let kept = b.layout.size().min(new_size);
            let moved = Block {
                ptr: q,
                layout: b.layout,
                id: b.id,
            };
            // The kept prefix (minus the tail id when the block shrank) must be intact.
            let check_len = if new_size < b.layout.size() && b.layout.size() >= 16 {
                kept.min(b.layout.size() - 8)
            } else {
                kept
            };
            unsafe { verify(&pats, &moved, check_len, b.layout.size(), seed, step) };
            let nb = Block {
                ptr: q,
                layout: nl,
                id: next_id,
            };
            next_id += 1;
            m.insert(nb, seed, step);
            unsafe { fill(&pats, &nb, 0) };
        }
    }
    for b in std::mem::take(&mut m.live) {
        unsafe {
            verify(&pats, &b, b.layout.size(), b.layout.size(), seed, u64::MAX);
            HakMem.dealloc(b.ptr, b.layout);
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn model_single_thread() {
    let ops = env_u64("HAKMEM_MODEL_OPS").unwrap_or(1_000_000);
    let seed = env_u64("HAKMEM_MODEL_SEED").unwrap_or(0xC0FFEE);
    eprintln!("model: seed {seed}, {ops} ops (HAKMEM_MODEL_SEED / HAKMEM_MODEL_OPS to change)");
    run(seed, ops);
}

#[test]
fn model_several_threads_own_seeds() {
    let ops = env_u64("HAKMEM_MODEL_OPS").unwrap_or(1_000_000) / 4;
    let base = env_u64("HAKMEM_MODEL_SEED").unwrap_or(7);
    let hs: Vec<_> = (0..3)
        .map(|t| std::thread::spawn(move || run(base + t, ops)))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}
