//! Allocation patterns beside the original synthetic ones, each its own workload:
//!
//! - `prodcons`: threads split into allocators and freers; 64 B blocks go one by one
//!   through a bounded queue from each allocator to its freer, a steady stream (where
//!   `xfree` hands over batches);
//! - `large-mt`: every thread holds a few blocks of 64 KiB..4 MiB (log-uniform), every
//!   page of each written, replaced in random order: the large path under threads; peak RSS
//!   is the figure to read;
//! - `burst-4k`, `burst-300k`, `burst-1m`: fill ~200 MiB with blocks of one size (every
//!   page written), free them all in random order, read the resident set right after the
//!   frees and again after an idle time with no allocator call (`--idle-ms`, 1 s by
//!   default): how much memory an allocator gives back, and when. The timed section is the
//!   fills and frees; the idle times are outside it.

use crate::measure::{Elapsed, Probe, Timer};
use crate::rng::{Rng, below};
use crate::soak::Statm;
use crate::workloads::{
    EMPTY, Gate, Outcome, Params, Ring, STOP, Slot, free_block, join_pairs, log_uniform, new_block,
    share, wall,
};

/// Page size used for writing every page of a large block.
const PAGE: usize = 4096;

/// Writes one byte in every page of the `size` bytes at `p`.
#[inline]
fn touch(p: *mut u8, size: usize, tag: u8) {
    let mut off = 0;
    while off < size {
        // SAFETY: `off < size`, inside the block.
        unsafe { p.add(off).write_volatile(tag) };
        off += PAGE;
    }
}

/// `prodcons`: `threads / 2` (at least 1) allocator/freer pairs; `ops / 2` blocks of `min`
/// bytes (64) in all, each pushed alone through a queue of 256 entries.
pub fn run_prodcons(p: &Params, probe: Probe) -> Outcome {
    let pairs = (p.threads / 2).max(1);
    let size = p.min.max(1);
    let blocks_total = p.ops / 2;
    let rings: Vec<Ring> = (0..pairs).map(|_| Ring::new(256)).collect();
    let gate = Gate::new(2 * pairs);
    std::thread::scope(|s| {
        let mut producers = Vec::with_capacity(pairs);
        let mut consumers = Vec::with_capacity(pairs);
        for (k, ring) in rings.iter().enumerate() {
            let gate = &gate;
            let blocks = share(blocks_total, pairs, k);
            producers.push(s.spawn(move || {
                let t0 = gate.begin();
                let deadline = p.deadline();
                let mut n = 0u64;
                while n < blocks {
                    ring.push(new_block(size, n as u8) as usize);
                    n += 1;
                    if n.is_multiple_of(4096) && deadline.passed() {
                        break;
                    }
                }
                ring.push(STOP);
                (n, (t0, gate.end()))
            }));
            consumers.push(s.spawn(move || {
                let t0 = gate.begin();
                let mut n = 0u64;
                loop {
                    let v = ring.pop();
                    if v == STOP {
                        break;
                    }
                    free_block(Slot {
                        ptr: v as *mut u8,
                        size,
                    });
                    n += 1;
                }
                (n, (t0, gate.end()))
            }));
        }
        join_pairs(producers, consumers, gate.time(probe))
    })
}

/// `large-mt`: `threads` threads, each with `ws` slots; an op frees the block of a random
/// slot or, if it is empty, allocates one (log-uniform `min..=max`) and writes every page.
pub fn run_large_mt(p: &Params, probe: Probe) -> Outcome {
    let n = p.threads.max(1);
    let gate = Gate::new(n);
    let size_of = log_uniform(p.min, p.max);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let gate = &gate;
                s.spawn(move || {
                    let mut slots = vec![EMPTY; p.ws.max(1)];
                    let ws = slots.len() as u64;
                    let mut rng = Rng::new(p.seed, i as u64);
                    let ops = share(p.ops, n, i);
                    let (mut allocs, mut done) = (0u64, 0u64);
                    let t0 = gate.begin();
                    let deadline = p.deadline();
                    while done < ops {
                        let r = rng.next_u64();
                        let s = &mut slots[below(r, ws) as usize];
                        if s.ptr.is_null() {
                            let size = size_of(r);
                            s.ptr = new_block(size, 1);
                            s.size = size;
                            touch(s.ptr, size, i as u8);
                            allocs += 1;
                        } else {
                            free_block(*s);
                            *s = EMPTY;
                        }
                        done += 1;
                        if done.is_multiple_of(64) && deadline.passed() {
                            break;
                        }
                    }
                    let t1 = gate.end();
                    let mut drained = 0;
                    for s in slots.iter_mut().filter(|s| !s.ptr.is_null()) {
                        free_block(*s);
                        *s = EMPTY;
                        drained += 1;
                    }
                    (done, allocs, drained, (t0, t1))
                })
            })
            .collect();
        let mut elapsed = gate.time(probe);
        let (mut ops, mut allocs, mut frees) = (0u64, 0u64, 0u64);
        let mut spans = Vec::with_capacity(n);
        for h in handles {
            let (d, a, drained, span) = h.join().expect("large-mt worker panicked");
            ops += d;
            allocs += a;
            frees += d - a + drained;
            spans.push(span);
        }
        elapsed.secs = wall(&spans);
        Outcome {
            ops,
            allocs,
            frees,
            elapsed,
            ..Outcome::default()
        }
    })
}

/// Blocks of one burst of `p`: `ws` (200 MiB / block size by default).
pub fn burst_blocks(p: &Params) -> u64 {
    p.ws.max(1) as u64
}

/// Ops of a burst run asked for `ops`: whole bursts (fill + free = 2 ops per block), at
/// least one unless `ops` is 0.
pub fn burst_ops(p: &Params) -> u64 {
    let per = 2 * burst_blocks(p);
    p.ops.div_ceil(per) * per
}

fn add(a: &mut Elapsed, b: Elapsed) {
    a.secs += b.secs;
    a.user_secs += b.user_secs;
    a.sys_secs += b.sys_secs;
    a.minor_faults += b.minor_faults;
    a.probe_delta = a.probe_delta.wrapping_add(b.probe_delta);
}

/// `burst-*`: bursts of `ws` blocks of `min` bytes (every page written), all freed in a
/// random order; after the last burst's frees the resident set is read, then again after
/// `idle_ms` of sleep. Each burst but the last is followed by the same idle time.
pub fn run_burst(p: &Params, probe: Probe) -> Outcome {
    let size = p.min.max(1);
    let blocks = burst_blocks(p) as usize;
    let bursts = burst_ops(p) / (2 * blocks as u64);
    let statm = Statm::open();
    let rss = || statm.as_ref().map_or(0, Statm::rss_kib);
    let mut slots = vec![EMPTY; blocks];
    let mut order: Vec<usize> = (0..blocks).collect();
    let mut rng = Rng::new(p.seed, 0x4255_5253);
    let deadline = p.deadline();
    let mut elapsed = Elapsed::default();
    let mut o = Outcome::default();
    let idle = std::time::Duration::from_millis(p.idle_ms);
    for b in 0..bursts {
        if b > 0 {
            if deadline.passed() {
                break;
            }
            std::thread::sleep(idle);
        }
        // A fresh random free order, drawn before the clock starts.
        for i in (1..blocks).rev() {
            order.swap(i, below(rng.next_u64(), i as u64 + 1) as usize);
        }
        let t = Timer::start(probe);
        for (i, s) in slots.iter_mut().enumerate() {
            s.ptr = new_block(size, i as u8);
            s.size = size;
            touch(s.ptr, size, i as u8);
        }
        for &i in &order {
            free_block(slots[i]);
            slots[i] = EMPTY;
        }
        add(&mut elapsed, t.stop());
        o.allocs += blocks as u64;
        o.frees += blocks as u64;
        o.ops += 2 * blocks as u64;
        o.rss_after_free_kib = Some(rss());
    }
    if bursts > 0 {
        std::thread::sleep(idle);
        o.rss_after_idle_kib = Some(rss());
    }
    o.elapsed = elapsed;
    o
}
