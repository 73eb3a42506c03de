//! A multi-threaded stress test of the global allocator, with every block's contents
//! verified before it is freed: the one implementation, run two ways. The binary
//! `hakmem-stress` (driven by `cargo xtask stress`, for minutes, in every preset) runs it
//! for a time; the facade's test `crates/hakmem/tests/stress.rs` (`cargo test -p hakmem-alloc
//! --test stress`, in every preset of CI) compiles this very file into itself with
//! `#[path]` (the bench crate depends on hakmem, so hakmem cannot depend on it) and runs it
//! for a number of ops with hakmem as the global allocator. For that, this file uses
//! nothing of its crate but `crate::rng` (which the test includes the same way) and std.
//!
//! Workers allocate blocks of every size range (tiny 1..=1024 B, mid 1 KiB..256 KiB,
//! large 256 KiB..2 MiB, now and then 16 MiB), some with alignments up to 4 KiB, some
//! zeroed (checked to be zero), fill each with a pattern derived from a per-block seed,
//! and then free, grow or shrink them with `realloc` (the kept prefix is checked, the
//! block refilled), or hand batches of them to other threads through a shared queue.
//! Workers live for a random number of ops and then exit, handing their remaining blocks
//! to the queue (another thread frees them: blocks of a dead thread), and new ones take
//! their place until the time is up (or the ops are done). A block is checked whole when
//! another thread adopts it (every hop between threads), before every realloc and before
//! it is freed; any mismatch, misaligned or null pointer stops the process with a report
//! and exit code 1.

use crate::rng::{Rng, below};
use std::alloc::{Layout, alloc, alloc_zeroed, dealloc, realloc};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Parameters of a stress run.
#[derive(Clone, Debug)]
pub struct StressParams {
    /// Seconds to run (new workers are started until then).
    pub secs: f64,
    /// Stop once the workers have done this many ops in all, if earlier (0: no limit).
    pub max_ops: u64,
    /// Workers alive at a time.
    pub threads: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// Live blocks a worker keeps.
    pub slots: usize,
    /// A worker's life: ops drawn uniformly from `life.0..=life.1`.
    pub life: (u64, u64),
    /// Print a progress line on stderr every this many seconds (0: never).
    pub report_secs: f64,
    /// Test the test: worker 0 flips a byte of one of its live blocks after 1,000 ops
    /// (the run must then fail).
    pub inject_corruption: bool,
}

impl Default for StressParams {
    fn default() -> Self {
        StressParams {
            secs: 10.0,
            max_ops: 0,
            threads: 4,
            seed: 0x5754_5245_5353,
            slots: 256,
            life: (20_000, 200_000),
            report_secs: 5.0,
            inject_corruption: false,
        }
    }
}

/// Counters of a run.
#[derive(Default, Debug)]
pub struct Totals {
    /// Ops done by the workers (counted when a worker ends and every 1,024 ops).
    pub ops: AtomicU64,
    /// Allocations (zeroed ones included).
    pub allocs: AtomicU64,
    /// Allocations by size range: tiny (up to 1 KiB), mid (up to 256 KiB), large.
    pub by_range: [AtomicU64; 3],
    /// Frees.
    pub frees: AtomicU64,
    /// Reallocs.
    pub reallocs: AtomicU64,
    /// Bytes checked against their pattern.
    pub bytes_checked: AtomicU64,
    /// Blocks that went through the shared queue.
    pub handed: AtomicU64,
    /// Workers started.
    pub threads: AtomicU64,
}

/// A live block and what it must contain.
#[derive(Clone, Copy, Debug)]
struct Block {
    ptr: *mut u8,
    size: usize,
    align: usize,
    seed: u64,
}

// SAFETY: a block is owned by whoever holds it; any thread may free it.
unsafe impl Send for Block {}

const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline]
fn word(seed: u64, i: usize) -> u64 {
    seed ^ (i as u64).wrapping_mul(K)
}

/// What went wrong, printed before the process exits with status 1.
fn corrupt(what: &str, b: &Block, off: usize, want: u64, got: u64) -> ! {
    eprintln!(
        "CORRUPTION: {what}: block {:p} size {} align {} seed {:#x}: at offset {off}: expected {want:#x}, found {got:#x} (thread {:?})",
        b.ptr,
        b.size,
        b.align,
        b.seed,
        std::thread::current().id()
    );
    std::process::exit(1);
}

/// Fills `b.ptr[from..b.size]` with its pattern (`from` a multiple of 8).
fn fill(b: &Block, from: usize) {
    let words = b.size / 8;
    let p = b.ptr;
    for i in from / 8..words {
        // SAFETY: `i * 8 + 8 <= size`; unaligned writes are fine for any alignment.
        unsafe { p.add(i * 8).cast::<u64>().write_unaligned(word(b.seed, i)) };
    }
    let tail = word(b.seed, words).to_le_bytes();
    for j in words * 8..b.size {
        // SAFETY: `j < size`.
        unsafe { p.add(j).write(tail[j - words * 8]) };
    }
}

/// Checks `b.ptr[..upto]` against its pattern; returns the bytes checked.
fn check(b: &Block, upto: usize, what: &str) -> u64 {
    let upto = upto.min(b.size);
    let words = upto / 8;
    let p = b.ptr;
    for i in 0..words {
        // SAFETY: `i * 8 + 8 <= upto <= size`.
        let got = unsafe { p.add(i * 8).cast::<u64>().read_unaligned() };
        let want = word(b.seed, i);
        if got != want {
            corrupt(what, b, i * 8, want, got);
        }
    }
    let full = b.size / 8;
    let tail_word = word(b.seed, words);
    for j in words * 8..upto {
        // Bytes past the last whole word of the block come from the word after it;
        // whole words checked above.
        let want = if j / 8 < full {
            word(b.seed, j / 8).to_le_bytes()[j % 8]
        } else {
            tail_word.to_le_bytes()[j - full * 8]
        };
        // SAFETY: `j < upto <= size`.
        let got = unsafe { p.add(j).read() };
        if got != want {
            corrupt(what, b, j, u64::from(want), u64::from(got));
        }
    }
    upto as u64
}

fn pick_size(r: u64) -> usize {
    let class = below(r >> 32, 10_000);
    let x = r & 0xFFFF_FFFF;
    match class {
        0..8_800 => 1 + below(x, 1024) as usize,
        8_800..9_940 => 1025 + below(x, 256 * 1024 - 1024) as usize,
        9_940..9_998 => 256 * 1024 + below(x, 2 * 1024 * 1024 - 256 * 1024) as usize,
        _ => 16 * 1024 * 1024 - below(x, 4096) as usize,
    }
}

fn pick_align(r: u64) -> usize {
    match below(r >> 40, 100) {
        0..60 => 8,
        60..95 => 16,
        _ => 32 << below(r >> 20 & 0xFFFF, 8),
    }
}

fn new_block(rng: &mut Rng, t: &Totals) -> Block {
    let r = rng.next_u64();
    let size = pick_size(r);
    let align = pick_align(rng.next_u64());
    let layout = Layout::from_size_align(size, align).expect("valid layout");
    let zeroed = below(rng.next_u64() >> 32, 16) == 0;
    // SAFETY: a non-zero size.
    let ptr = unsafe {
        if zeroed {
            alloc_zeroed(layout)
        } else {
            alloc(layout)
        }
    };
    let b = Block {
        ptr,
        size,
        align,
        seed: rng.next_u64(),
    };
    if ptr.is_null() {
        corrupt("allocation returned null", &b, 0, 0, 0);
    }
    if !(ptr as usize).is_multiple_of(align) {
        corrupt("misaligned block", &b, 0, align as u64, ptr as u64);
    }
    if zeroed {
        for i in 0..size {
            // SAFETY: `i < size`.
            let v = unsafe { ptr.add(i).read() };
            if v != 0 {
                corrupt("alloc_zeroed block not zero", &b, i, 0, u64::from(v));
            }
        }
    }
    fill(&b, 0);
    t.allocs.fetch_add(1, Relaxed);
    let range = match size {
        0..=1024 => 0,
        1025..=262_144 => 1,
        _ => 2,
    };
    t.by_range[range].fetch_add(1, Relaxed);
    b
}

fn free_block(b: Block, t: &Totals) {
    let n = check(&b, b.size, "before free");
    t.bytes_checked.fetch_add(n, Relaxed);
    // SAFETY: allocated with exactly this layout, freed once.
    unsafe { dealloc(b.ptr, Layout::from_size_align_unchecked(b.size, b.align)) };
    t.frees.fetch_add(1, Relaxed);
}

fn realloc_block(b: Block, rng: &mut Rng, t: &Totals) -> Block {
    let r = rng.next_u64();
    let new_size = match below(r >> 32, 4) {
        // Grow a little (often in place), shrink, or jump to another size range.
        0 => b.size + 1 + below(r & 0xFFFF, (b.size as u64 / 2).max(1)) as usize,
        1 => (b.size / 2).max(1),
        _ => pick_size(rng.next_u64()),
    }
    .min(20 << 20);
    let n = check(&b, b.size, "before realloc");
    t.bytes_checked.fetch_add(n, Relaxed);
    // SAFETY: allocated with this layout; `new_size` is non-zero and far below isize::MAX.
    let q = unsafe {
        realloc(
            b.ptr,
            Layout::from_size_align_unchecked(b.size, b.align),
            new_size,
        )
    };
    let nb = Block {
        ptr: q,
        size: new_size,
        align: b.align,
        seed: b.seed,
    };
    if q.is_null() {
        corrupt("realloc returned null", &nb, 0, 0, 0);
    }
    if !(q as usize).is_multiple_of(b.align) {
        corrupt(
            "realloc lost the alignment",
            &nb,
            0,
            b.align as u64,
            q as u64,
        );
    }
    // The kept prefix must be intact (whole words: the tail byte pattern of the old size
    // differs from the new one's).
    let kept = b.size.min(new_size) / 8 * 8;
    let n = check(&nb, kept, "after realloc (kept prefix)");
    t.bytes_checked.fetch_add(n, Relaxed);
    fill(&nb, kept);
    t.reallocs.fetch_add(1, Relaxed);
    nb
}

/// The queue of batches handed between threads.
type Queue = Mutex<VecDeque<Vec<Block>>>;

fn worker(id: u64, p: &StressParams, q: &Queue, t: &Totals, stop: &AtomicBool) {
    let mut rng = Rng::new(p.seed, id);
    let life = p.life.0 + below(rng.next_u64() >> 32, p.life.1 - p.life.0 + 1);
    let mut mine: Vec<Block> = Vec::with_capacity(p.slots);
    let mut ops = 0u64;
    while ops < life && !stop.load(Relaxed) {
        ops += 1;
        if ops.is_multiple_of(1024) {
            t.ops.fetch_add(1024, Relaxed);
        }
        if p.inject_corruption && id == 0 && ops == 1000 && !mine.is_empty() {
            // SAFETY: a live block of at least one byte, owned by this thread.
            unsafe { *mine[0].ptr ^= 0x5A };
        }
        let r = rng.next_u64();
        match below(r >> 32, 100) {
            0..45 => {
                if mine.len() < p.slots {
                    mine.push(new_block(&mut rng, t));
                } else {
                    let i = below(r & 0xFFFF_FFFF, mine.len() as u64) as usize;
                    free_block(mine.swap_remove(i), t);
                }
            }
            45..85 => {
                if !mine.is_empty() {
                    let i = below(r & 0xFFFF_FFFF, mine.len() as u64) as usize;
                    free_block(mine.swap_remove(i), t);
                }
            }
            85..95 => {
                if !mine.is_empty() {
                    let i = below(r & 0xFFFF_FFFF, mine.len() as u64) as usize;
                    mine[i] = realloc_block(mine[i], &mut rng, t);
                }
            }
            95..97 => {
                // Hand a batch to whoever comes next.
                let n = mine.len().min(1 + below(r & 0xFF, 32) as usize);
                if n > 0 {
                    let batch: Vec<Block> = mine.drain(mine.len() - n..).collect();
                    t.handed.fetch_add(n as u64, Relaxed);
                    q.lock().expect("queue").push_back(batch);
                }
            }
            _ => {
                // Adopt a batch from another thread (freed later, by us).
                let batch = q.lock().expect("queue").pop_front();
                if let Some(b) = batch {
                    for blk in b {
                        // Every hop between threads: the block arrives intact.
                        let n = check(&blk, blk.size, "handed over");
                        t.bytes_checked.fetch_add(n, Relaxed);
                        if mine.len() < p.slots {
                            mine.push(blk);
                        } else {
                            free_block(blk, t);
                        }
                    }
                }
            }
        }
    }
    t.ops.fetch_add(ops % 1024, Relaxed);
    // Dying: half the time hand everything over (another thread frees a dead thread's
    // blocks), otherwise free locally.
    if rng.next_u64() & 1 == 0 {
        t.handed.fetch_add(mine.len() as u64, Relaxed);
        q.lock().expect("queue").push_back(mine);
    } else {
        for b in mine {
            free_block(b, t);
        }
    }
}

/// Runs the stress; returns the totals (every block freed and checked) or exits the
/// process with status 1 on corruption.
pub fn run_stress(p: &StressParams) -> Arc<Totals> {
    let t = Arc::new(Totals::default());
    let q: Arc<Queue> = Arc::new(Mutex::new(VecDeque::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(p.secs.max(0.0));
    let mut next_id = 0u64;
    let mut live: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut last_report = Instant::now();
    loop {
        live.retain(|h| !h.is_finished());
        let now = Instant::now();
        if now >= deadline || (p.max_ops > 0 && t.ops.load(Relaxed) >= p.max_ops) {
            break;
        }
        while live.len() < p.threads.max(1) {
            let (p2, q2, t2, s2) = (p.clone(), q.clone(), t.clone(), stop.clone());
            let id = next_id;
            next_id += 1;
            t.threads.fetch_add(1, Relaxed);
            live.push(
                std::thread::Builder::new()
                    .name(format!("stress-{id}"))
                    .spawn(move || worker(id, &p2, &q2, &t2, &s2))
                    .expect("spawn a worker"),
            );
        }
        if p.report_secs > 0.0 && last_report.elapsed().as_secs_f64() >= p.report_secs {
            last_report = Instant::now();
            eprintln!(
                "stress: {:.0}s/{:.0}s · {} allocs · {} frees · {} reallocs · {} handed over · {} threads started · {:.1} GiB checked",
                start.elapsed().as_secs_f64(),
                p.secs,
                t.allocs.load(Relaxed),
                t.frees.load(Relaxed),
                t.reallocs.load(Relaxed),
                t.handed.load(Relaxed),
                t.threads.load(Relaxed),
                t.bytes_checked.load(Relaxed) as f64 / (1u64 << 30) as f64
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Relaxed);
    for h in live {
        if h.join().is_err() {
            eprintln!("CORRUPTION: a worker panicked");
            std::process::exit(1);
        }
    }
    let left: Vec<Vec<Block>> = q.lock().expect("queue").drain(..).collect();
    for batch in left {
        for b in batch {
            free_block(b, &t);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_round_trip_for_odd_sizes() {
        let t = Totals::default();
        let mut rng = Rng::new(1, 1);
        for size in [1usize, 7, 8, 9, 15, 16, 17, 1000, 4097] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: non-zero size.
            let ptr = unsafe { alloc(layout) };
            let b = Block {
                ptr,
                size,
                align: 8,
                seed: rng.next_u64(),
            };
            fill(&b, 0);
            assert_eq!(check(&b, size, "t"), size as u64);
            // A realloc to a larger size keeps the whole-word prefix and refills the rest.
            let nb = realloc_block(b, &mut rng, &t);
            free_block(nb, &t);
        }
        assert_eq!(t.frees.load(Relaxed), 9);
    }

    #[test]
    fn sizes_cover_every_range() {
        let mut r = Rng::new(5, 5);
        let (mut tiny, mut mid, mut large, mut huge) = (0, 0, 0, 0);
        for _ in 0..100_000 {
            match pick_size(r.next_u64()) {
                1..=1024 => tiny += 1,
                1025..=262_143 => mid += 1,
                262_144..=2_097_151 => large += 1,
                _ => huge += 1,
            }
        }
        assert!(
            tiny > 80_000 && mid > 10_000 && large > 300 && huge > 5,
            "{tiny} {mid} {large} {huge}"
        );
    }
}
