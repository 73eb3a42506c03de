//! The workloads. Every one allocates through the global allocator (`std::alloc::{alloc,
//! dealloc, realloc}` with a [`Layout`] of alignment [`ALIGN`]), so the same source measures
//! whichever allocator the binary was built with.
//!
//! One *op* is one allocator call: an allocation, a free or a realloc. Everything the loop
//! needs besides its blocks (slot arrays, batch buffers, queues, threads where the workload
//! is not about threads) is set up before the clock starts; blocks still live when it stops
//! are freed after it (untimed) and counted, so that [`Outcome::live`] must be 0.
//!
//! The realistic workloads ([`crate::real`]: `json`, `text`, `btree`, `arena`) are
//! programs written with the standard collections: their op is a unit of work, their
//! allocator calls are not counted, and they report a checksum ([`Outcome::checksum`]).
//! The other patterns (`prodcons`, `large-mt`, `burst-*`) are in [`crate::patterns`].

use crate::measure::{Elapsed, Probe, Timer};
use crate::rng::{Rng, below};
use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::alloc::{alloc, dealloc, handle_alloc_error, realloc};
use std::collections::VecDeque;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Alignment of every block (what C's `malloc` guarantees on x86-64).
pub const ALIGN: usize = 16;

/// The shape of a workload; the parameters in [`Params`] fill it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One thread, `ws` slots; each op picks a random slot: an occupied one is freed, an
    /// empty one gets a block of a random size whose first byte is written.
    Mixed,
    /// [`Kind::Mixed`] on `threads` threads, each independent (its own slots).
    Mt,
    /// Producer/consumer pairs: blocks allocated on one thread, freed on another, handed
    /// over in batches through a bounded lock-free queue.
    Xfree,
    /// `lifetimes` short-lived threads, `threads` at a time, each doing mixed work on a slot
    /// array it inherits from the thread before it (and so freeing that thread's blocks).
    Churn,
    /// `ws` vectors, interleaved at random, each growing by realloc from `min` to `max`
    /// bytes, then freed and started again.
    Realloc,
    /// A server simulation: `threads` threads replace random blocks (random sizes, random
    /// lifetimes) in arrays of `ws` slots, and hand their arrays to one another every
    /// `epoch` replacements.
    Larson,
    /// Mixed over `ws` slots with sizes log-uniform from `min` to `max` (64 KiB..64 MiB).
    Large,
    /// `json`: documents of `ws` JSON records built, serialized, parsed back and
    /// aggregated ([`crate::real::json`]); one op = one record.
    Json,
    /// `text`: documents of `ws` words generated, tokenized, counted and sorted
    /// ([`crate::real::text`]); one op = one word.
    Text,
    /// `btree`: `BTreeMap` and `Vec<Box<T>>` churn with mixed lifetimes over `2 * ws` keys
    /// ([`crate::real::btree`]); one op = one insert or remove.
    Btree,
    /// `arena`: requests that allocate a set of buffers and free it at their end
    /// ([`crate::real::arena`]); one op = one request.
    Arena,
    /// Allocator/freer pairs passing `min`-byte blocks one at a time through a queue
    /// ([`crate::patterns::run_prodcons`]).
    ProdCons,
    /// `threads` threads each holding `ws` large blocks (log-uniform `min..=max`, every
    /// page written) replaced in random order ([`crate::patterns::run_large_mt`]).
    LargeMt,
    /// Bursts of `ws` blocks of `min` bytes, all freed, then idle: RSS after the frees and
    /// after the idle time ([`crate::patterns::run_burst`]).
    Burst,
}

impl Kind {
    /// Is its op a unit of work rather than an allocator call (a realistic workload, with a
    /// checksum)?
    pub fn is_realistic(self) -> bool {
        matches!(self, Kind::Json | Kind::Text | Kind::Btree | Kind::Arena)
    }
}

/// A named workload with its defaults.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Name used on the command line and in reports.
    pub name: &'static str,
    /// Its shape.
    pub kind: Kind,
    /// Does it run more than one thread?
    pub threaded: bool,
    /// Default ops of a full run.
    pub ops: u64,
    /// Slots (or vectors for `realloc`) per thread.
    pub ws: usize,
    /// Smallest block size.
    pub min: usize,
    /// Largest block size (inclusive).
    pub max: usize,
    /// What it stresses, in one line.
    pub about: &'static str,
}

/// Every workload, in report order. `mixed` is the reference.
pub const WORKLOADS: &[Spec] = &[
    Spec {
        name: "mixed",
        kind: Kind::Mixed,
        threaded: false,
        ops: 20_000_000,
        ws: 400,
        min: 16,
        max: 1024,
        about: "reference: 1 thread, WS=400 slots, 16..=1024 B: the thread-cache fast path",
    },
    Spec {
        name: "mixed-ws4k",
        kind: Kind::Mixed,
        threaded: false,
        ops: 20_000_000,
        ws: 4_000,
        min: 16,
        max: 1024,
        about: "mixed with WS=4,000: more live blocks, beyond the thread caches",
    },
    Spec {
        name: "mixed-ws40k",
        kind: Kind::Mixed,
        threaded: false,
        ops: 10_000_000,
        ws: 40_000,
        min: 16,
        max: 1024,
        about: "mixed with WS=40,000 (~10 MiB live): slab refill, cache misses",
    },
    Spec {
        name: "mixed-32k",
        kind: Kind::Mixed,
        threaded: false,
        ops: 5_000_000,
        ws: 400,
        min: 16,
        max: 32 * 1024,
        about: "mixed with sizes 16 B..=32 KiB: the classes above tiny",
    },
    Spec {
        name: "mt",
        kind: Kind::Mt,
        threaded: true,
        ops: 40_000_000,
        ws: 400,
        min: 16,
        max: 1024,
        about: "mixed on T independent threads: scalability, false sharing",
    },
    Spec {
        name: "xfree",
        kind: Kind::Xfree,
        threaded: true,
        ops: 4_000_000,
        ws: 0,
        min: 16,
        max: 1024,
        about: "producer/consumer pairs: every block freed by another thread",
    },
    Spec {
        name: "churn",
        kind: Kind::Churn,
        threaded: true,
        ops: 4_000_000,
        ws: 400,
        min: 16,
        max: 1024,
        about: "1,000 short-lived threads: thread-cache set-up/tear-down, orphaned blocks",
    },
    Spec {
        name: "realloc",
        kind: Kind::Realloc,
        threaded: false,
        ops: 100_000,
        ws: 8,
        min: 8,
        max: 1 << 20,
        about: "8 vectors growing by realloc from 8 B to 1 MiB: in-place growth, copies",
    },
    Spec {
        name: "larson",
        kind: Kind::Larson,
        threaded: true,
        ops: 20_000_000,
        ws: 1_000,
        min: 8,
        max: 1000,
        about: "server simulation: random sizes and lifetimes, arrays handed between threads",
    },
    Spec {
        name: "large",
        kind: Kind::Large,
        threaded: false,
        ops: 200_000,
        ws: 16,
        min: 64 * 1024,
        max: 64 << 20,
        about: "blocks of 64 KiB..64 MiB (log-uniform): mmap/munmap, large caches",
    },
    Spec {
        name: "json",
        kind: Kind::Json,
        threaded: false,
        ops: 40_000,
        ws: 20_000,
        min: 1,
        max: 1,
        about: "realistic: 20,000 JSON records built, serialized, parsed, aggregated into maps (op = record)",
    },
    Spec {
        name: "text",
        kind: Kind::Text,
        threaded: false,
        ops: 2_000_000,
        ws: 100_000,
        min: 1,
        max: 1,
        about: "realistic: text generated, tokenized into Strings, HashMap counts, sorted (op = word)",
    },
    Spec {
        name: "btree",
        kind: Kind::Btree,
        threaded: false,
        ops: 400_000,
        ws: 50_000,
        min: 1,
        max: 1,
        about: "realistic: BTreeMap<u64, Box<Item>> and Vec<Box<T>> churn, mixed lifetimes (op = insert/remove)",
    },
    Spec {
        name: "arena",
        kind: Kind::Arena,
        threaded: false,
        ops: 15_000,
        ws: 0,
        min: 1,
        max: 1,
        about: "realistic: requests allocating header/body/scratch buffers, all freed per request (op = request)",
    },
    Spec {
        name: "prodcons",
        kind: Kind::ProdCons,
        threaded: true,
        ops: 1_000_000,
        ws: 0,
        min: 64,
        max: 64,
        about: "allocator/freer threads: 64 B blocks one by one through a queue, a steady stream",
    },
    Spec {
        name: "large-mt",
        kind: Kind::LargeMt,
        threaded: true,
        ops: 10_000,
        ws: 4,
        min: 64 * 1024,
        max: 4 << 20,
        about: "T threads each holding 4 blocks of 64 KiB..4 MiB, every page written, random order",
    },
    Spec {
        name: "burst-4k",
        kind: Kind::Burst,
        threaded: false,
        ops: 2 * BURST_4K,
        ws: BURST_4K as usize,
        min: 4096,
        max: 4096,
        about: "fill 200 MiB of 4 KiB blocks, free all, idle: RSS after the frees and after idle",
    },
    Spec {
        name: "burst-300k",
        kind: Kind::Burst,
        threaded: false,
        ops: 2 * BURST_300K,
        ws: BURST_300K as usize,
        min: 300 * 1024,
        max: 300 * 1024,
        about: "fill 200 MiB of 300 KiB blocks, free all, idle: RSS after the frees and after idle",
    },
    Spec {
        name: "burst-1m",
        kind: Kind::Burst,
        threaded: false,
        ops: 2 * BURST_1M,
        ws: BURST_1M as usize,
        min: 1 << 20,
        max: 1 << 20,
        about: "fill 200 MiB of 1 MiB blocks, free all, idle: RSS after the frees and after idle",
    },
];

/// Bytes one burst fills (`burst-*`).
pub const BURST_BYTES: u64 = 200 << 20;
const BURST_4K: u64 = BURST_BYTES / 4096;
const BURST_300K: u64 = BURST_BYTES / (300 * 1024);
const BURST_1M: u64 = BURST_BYTES / (1 << 20);

/// The named workload `name`.
pub fn spec(name: &str) -> Option<&'static Spec> {
    WORKLOADS.iter().find(|s| s.name == name)
}

/// Parameters of one run.
#[derive(Clone, Debug)]
pub struct Params {
    /// The workload's shape.
    pub kind: Kind,
    /// Ops to time (allocator calls, over all threads).
    pub ops: u64,
    /// Threads (threaded workloads only).
    pub threads: usize,
    /// Slots per thread (vectors for `realloc`).
    pub ws: usize,
    /// Smallest block size.
    pub min: usize,
    /// Largest block size (inclusive).
    pub max: usize,
    /// PRNG seed.
    pub seed: u64,
    /// `xfree`: blocks per batch handed from producer to consumer.
    pub batch: usize,
    /// `churn`: threads started over the run.
    pub lifetimes: usize,
    /// `larson`: replacements between two hand-offs of a thread's array.
    pub epoch: u64,
    /// Stop the timed section early (between chunks of ops) once it has run this long;
    /// the ops actually done are reported and [`Outcome::capped`] is set.
    pub max_secs: Option<f64>,
    /// `burst-*`: milliseconds of idle time (no allocator call) after a burst's frees.
    pub idle_ms: u64,
}

impl Params {
    /// The defaults of a named workload, on `threads` threads.
    pub fn of(spec: &Spec, threads: usize) -> Self {
        Params {
            kind: spec.kind,
            ops: spec.ops,
            threads: if spec.threaded { threads.max(1) } else { 1 },
            ws: spec.ws,
            min: spec.min,
            max: spec.max,
            seed: 0x4841_4B4D_454D,
            batch: 64,
            lifetimes: 1000,
            epoch: 10_000,
            max_secs: None,
            idle_ms: 1000,
        }
    }

    /// The ops a run does when it is not cut short: `ops`, rounded down to even for the
    /// workloads whose ops come in pairs (`xfree`, `larson`, `prodcons`), up to whole
    /// bursts for `burst-*` and whole documents for `json` and `text`.
    pub fn expected_ops(&self) -> u64 {
        match self.kind {
            Kind::Xfree | Kind::Larson | Kind::ProdCons => self.ops / 2 * 2,
            Kind::Burst => crate::patterns::burst_ops(self),
            Kind::Json | Kind::Text => crate::real::document_ops(self),
            _ => self.ops,
        }
    }

    pub(crate) fn deadline(&self) -> Deadline {
        Deadline(
            self.max_secs
                .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0))),
        )
    }

    /// Ops between two looks at the clock.
    fn chunk(&self) -> u64 {
        match self.kind {
            Kind::Large | Kind::Realloc => 64,
            _ => 4096,
        }
    }
}

/// When to stop a timed section early, if ever.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    #[inline]
    pub(crate) fn passed(&self) -> bool {
        self.0.is_some_and(|d| Instant::now() >= d)
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Allocator calls inside the timed section.
    pub ops: u64,
    /// Allocations over the whole run (set-up and clean-up included).
    pub allocs: u64,
    /// Frees over the whole run (set-up and clean-up included).
    pub frees: u64,
    /// Reallocs inside the timed section.
    pub reallocs: u64,
    /// Threads started inside the timed section.
    pub threads_started: u64,
    /// Was the run cut short by [`Params::max_secs`]?
    pub capped: bool,
    /// The timed section.
    pub elapsed: Elapsed,
    /// The realistic workloads: a checksum of what they computed (the same for every
    /// allocator, given the seed and the ops done).
    pub checksum: Option<u64>,
    /// `burst-*`: resident set right after the last burst's frees, KiB.
    pub rss_after_free_kib: Option<u64>,
    /// `burst-*`: resident set after the idle time that follows, KiB.
    pub rss_after_idle_kib: Option<u64>,
}

impl Outcome {
    /// Blocks allocated and never freed (must be 0).
    pub fn live(&self) -> i64 {
        self.allocs as i64 - self.frees as i64
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Slot {
    pub(crate) ptr: *mut u8,
    pub(crate) size: usize,
}

pub(crate) const EMPTY: Slot = Slot {
    ptr: ptr::null_mut(),
    size: 0,
};

// SAFETY: a slot owns the block it points to; handing it to another thread hands over the
// block, which any thread may free.
unsafe impl Send for Slot {}

#[derive(Clone, Copy, Default)]
struct Counts {
    allocs: u64,
    frees: u64,
    reallocs: u64,
}

impl Counts {
    fn ops(&self) -> u64 {
        self.allocs + self.frees + self.reallocs
    }
    fn add(&mut self, o: Counts) {
        self.allocs += o.allocs;
        self.frees += o.frees;
        self.reallocs += o.reallocs;
    }
}

#[inline(always)]
fn layout(size: usize) -> Layout {
    // SAFETY: every size used is at least 1 and far below isize::MAX; ALIGN is a power of 2.
    unsafe { Layout::from_size_align_unchecked(size, ALIGN) }
}

/// Allocates `size` bytes and writes `tag` in the first byte.
#[inline(always)]
pub(crate) fn new_block(size: usize, tag: u8) -> *mut u8 {
    let l = layout(size);
    // SAFETY: a non-zero size.
    let p = unsafe { alloc(l) };
    if p.is_null() {
        handle_alloc_error(l);
    }
    // SAFETY: `p` points to at least one writable byte.
    unsafe { p.write_volatile(tag) };
    p
}

#[inline(always)]
pub(crate) fn free_block(s: Slot) {
    // SAFETY: `s.ptr` was allocated by `new_block(s.size, _)` (or grown by realloc to
    // `s.size`) and is freed once: its slot is emptied by the caller.
    unsafe { dealloc(s.ptr, layout(s.size)) }
}

/// Reallocates the block of `s` to `new` bytes (non-zero) and writes its last byte, as a
/// push would; returns the new address.
#[inline(always)]
pub(crate) fn grow_block(s: Slot, new: usize) -> *mut u8 {
    // SAFETY: `s.ptr` is live with layout `layout(s.size)`; `new` is non-zero.
    let q = unsafe { realloc(s.ptr, layout(s.size), new) };
    if q.is_null() {
        handle_alloc_error(layout(new));
    }
    // SAFETY: `q` has `new` bytes.
    unsafe { q.add(new - 1).write_volatile(2) };
    q
}

pub(crate) fn uniform(min: usize, max: usize) -> impl Fn(u64) -> usize + Copy {
    let range = (max.max(min) - min + 1) as u64;
    move |r: u64| min + below(r >> 32, range) as usize
}

pub(crate) fn log_uniform(min: usize, max: usize) -> impl Fn(u64) -> usize + Copy {
    let lo = min.max(1).ilog2();
    let hi = max.max(min.max(1)).ilog2().max(lo + 1);
    let n = (hi - lo) as u64;
    move |r: u64| {
        let h = r >> 32;
        let e = lo + below(h, n) as u32;
        let mant = ((h & 0xFFFF) as usize) << e >> 16;
        ((1usize << e) + mant).clamp(min, max)
    }
}

/// `ops` mixed ops over `slots`, no look at the clock.
#[inline(always)]
pub(crate) fn mixed_ops<S: Fn(u64) -> usize>(
    slots: &mut [Slot],
    ops: u64,
    rng: &mut Rng,
    size_of: &S,
) -> u64 {
    let ws = slots.len() as u64;
    let mut allocs = 0u64;
    for _ in 0..ops {
        let r = rng.next_u64();
        let i = below(r, ws) as usize;
        // SAFETY: `below(_, ws) < ws == slots.len()`.
        let s = unsafe { slots.get_unchecked_mut(i) };
        if s.ptr.is_null() {
            let size = size_of(r);
            s.ptr = new_block(size, i as u8);
            s.size = size;
            allocs += 1;
        } else {
            free_block(*s);
            s.ptr = ptr::null_mut();
        }
    }
    allocs
}

/// The mixed loop: `ops` ops over `slots`, in chunks of `chunk` ops between looks at the
/// deadline.
fn mixed_loop<S: Fn(u64) -> usize>(
    slots: &mut [Slot],
    ops: u64,
    rng: &mut Rng,
    size_of: S,
    deadline: Deadline,
    chunk: u64,
) -> Counts {
    let mut done = 0u64;
    let mut allocs = 0u64;
    while done < ops {
        let n = (ops - done).min(chunk);
        allocs += mixed_ops(slots, n, rng, &size_of);
        done += n;
        if deadline.passed() {
            break;
        }
    }
    Counts {
        allocs,
        frees: done - allocs,
        reallocs: 0,
    }
}

/// Frees every block still in `slots`; returns how many.
pub(crate) fn drain(slots: &mut [Slot]) -> u64 {
    let mut n = 0;
    for s in slots.iter_mut() {
        if !s.ptr.is_null() {
            free_block(*s);
            *s = EMPTY;
            n += 1;
        }
    }
    n
}

/// `total` split into `parts` as evenly as possible: the share of part `i`.
pub(crate) fn share(total: u64, parts: usize, i: usize) -> u64 {
    let parts = parts.max(1) as u64;
    total / parts + u64::from((i as u64) < total % parts)
}

/// Runs one workload; `probe` is read at the start and the end of the timed section.
pub fn run(p: &Params, probe: Probe) -> Outcome {
    let mut o = match p.kind {
        Kind::Mixed => run_mixed(p, probe, uniform(p.min, p.max)),
        Kind::Large => run_mixed(p, probe, log_uniform(p.min, p.max)),
        Kind::Mt => run_mt(p, probe),
        Kind::Xfree => run_xfree(p, probe),
        Kind::Churn => run_churn(p, probe),
        Kind::Realloc => run_realloc(p, probe),
        Kind::Larson => run_larson(p, probe),
        Kind::Json => crate::real::run_rounds(p, probe, crate::real::json::round),
        Kind::Text => crate::real::run_rounds(p, probe, crate::real::text::round),
        Kind::Btree => crate::real::btree::run(p, probe),
        Kind::Arena => crate::real::arena::run(p, probe),
        Kind::ProdCons => crate::patterns::run_prodcons(p, probe),
        Kind::LargeMt => crate::patterns::run_large_mt(p, probe),
        Kind::Burst => crate::patterns::run_burst(p, probe),
    };
    o.capped = o.ops < p.expected_ops();
    o
}

fn run_mixed<S: Fn(u64) -> usize>(p: &Params, probe: Probe, size_of: S) -> Outcome {
    let mut slots = vec![EMPTY; p.ws.max(1)];
    let mut rng = Rng::new(p.seed, 0);
    let t = Timer::start(probe);
    let c = mixed_loop(
        &mut slots,
        p.ops,
        &mut rng,
        size_of,
        p.deadline(),
        p.chunk(),
    );
    let elapsed = t.stop();
    let drained = drain(&mut slots);
    Outcome {
        ops: c.ops(),
        allocs: c.allocs,
        frees: c.frees + drained,
        elapsed,
        ..Outcome::default()
    }
}

/// Starts and stops the workers of a threaded workload together, and measures them.
///
/// The wall time is taken by the workers themselves (first start to last end), so that a
/// main thread scheduled late on a busy machine does not skew it; CPU time and the probe
/// are read by the main thread while every worker is parked on a barrier, so that neither
/// set-up nor clean-up is counted.
pub(crate) struct Gate {
    ready: Barrier,
    go: Barrier,
    stop: Barrier,
    done: Barrier,
}

impl Gate {
    pub(crate) fn new(workers: usize) -> Self {
        Gate {
            ready: Barrier::new(workers + 1),
            go: Barrier::new(workers + 1),
            stop: Barrier::new(workers + 1),
            done: Barrier::new(workers + 1),
        }
    }
    /// Worker: its set-up is done; returns when the timed section starts.
    pub(crate) fn begin(&self) -> Instant {
        self.ready.wait();
        self.go.wait();
        Instant::now()
    }
    /// Worker: its timed work is done; returns its end once clean-up may start.
    pub(crate) fn end(&self) -> Instant {
        let t = Instant::now();
        self.stop.wait();
        self.done.wait();
        t
    }
    /// Main thread: CPU time and probe over exactly the workers' timed work. The wall time
    /// is filled in afterwards from the workers' spans ([`wall`]).
    pub(crate) fn time(&self, probe: Probe) -> Elapsed {
        self.ready.wait();
        let t = Timer::start(probe);
        self.go.wait();
        self.stop.wait();
        let e = t.stop();
        self.done.wait();
        e
    }
}

/// Wall seconds from the first start to the last end.
/// Joins producer threads (each returning the blocks it allocated and its time span) and
/// consumer threads (the blocks each freed, its span): the outcome of a producer/consumer
/// run, `elapsed` timed by the gate, its wall time the union of the threads' spans.
pub(crate) fn join_pairs(
    producers: Vec<std::thread::ScopedJoinHandle<'_, (u64, (Instant, Instant))>>,
    consumers: Vec<std::thread::ScopedJoinHandle<'_, (u64, (Instant, Instant))>>,
    mut elapsed: Elapsed,
) -> Outcome {
    let mut spans = Vec::with_capacity(producers.len() + consumers.len());
    let (mut allocs, mut frees) = (0u64, 0u64);
    for h in producers {
        let (n, span) = h.join().expect("producer panicked");
        allocs += n;
        spans.push(span);
    }
    for h in consumers {
        let (n, span) = h.join().expect("consumer panicked");
        frees += n;
        spans.push(span);
    }
    elapsed.secs = wall(&spans);
    Outcome {
        ops: allocs + frees,
        allocs,
        frees,
        elapsed,
        ..Outcome::default()
    }
}

pub(crate) fn wall(spans: &[(Instant, Instant)]) -> f64 {
    let first = spans.iter().map(|s| s.0).min();
    let last = spans.iter().map(|s| s.1).max();
    match (first, last) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
        _ => 0.0,
    }
}

fn run_mt(p: &Params, probe: Probe) -> Outcome {
    let n = p.threads.max(1);
    let gate = Gate::new(n);
    let size_of = uniform(p.min, p.max);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let gate = &gate;
                s.spawn(move || {
                    let mut slots = vec![EMPTY; p.ws.max(1)];
                    let mut rng = Rng::new(p.seed, i as u64);
                    let ops = share(p.ops, n, i);
                    let t0 = gate.begin();
                    let c = mixed_loop(&mut slots, ops, &mut rng, size_of, p.deadline(), p.chunk());
                    let t1 = gate.end();
                    (c, drain(&mut slots), (t0, t1))
                })
            })
            .collect();
        let mut elapsed = gate.time(probe);
        let mut total = Counts::default();
        let mut drained = 0;
        let mut spans = Vec::with_capacity(n);
        for h in handles {
            let (c, d, span) = h.join().expect("mt worker panicked");
            total.add(c);
            drained += d;
            spans.push(span);
        }
        elapsed.secs = wall(&spans);
        Outcome {
            ops: total.ops(),
            allocs: total.allocs,
            frees: total.frees + drained,
            elapsed,
            ..Outcome::default()
        }
    })
}

/// Waits politely: spins a while, then yields the core.
#[inline]
fn backoff(spins: &mut u32) {
    if *spins < 2000 {
        core::hint::spin_loop();
        *spins += 1;
    } else {
        std::thread::yield_now();
    }
}

/// A bounded single-producer single-consumer queue of indices; it never allocates after
/// construction.
pub(crate) struct Ring {
    buf: Box<[AtomicUsize]>,
    mask: usize,
    head: Padded,
    tail: Padded,
}

#[repr(align(128))]
struct Padded(AtomicUsize);

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        let cap = capacity.next_power_of_two();
        Ring {
            buf: (0..cap).map(|_| AtomicUsize::new(0)).collect(),
            mask: cap - 1,
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
        }
    }
    /// Producer side only.
    pub(crate) fn push(&self, v: usize) {
        let t = self.tail.0.load(Ordering::Relaxed);
        let mut spins = 0;
        while t.wrapping_sub(self.head.0.load(Ordering::Acquire)) > self.mask {
            backoff(&mut spins);
        }
        self.buf[t & self.mask].store(v, Ordering::Relaxed);
        self.tail.0.store(t.wrapping_add(1), Ordering::Release);
    }
    /// Consumer side only.
    pub(crate) fn pop(&self) -> usize {
        let h = self.head.0.load(Ordering::Relaxed);
        let mut spins = 0;
        while self.tail.0.load(Ordering::Acquire) == h {
            backoff(&mut spins);
        }
        let v = self.buf[h & self.mask].load(Ordering::Relaxed);
        self.head.0.store(h.wrapping_add(1), Ordering::Release);
        v
    }
}

struct BatchBuf {
    n: usize,
    items: Vec<Slot>,
}

/// The batches of one producer/consumer pair and the two queues that circulate them.
struct Channel {
    batches: Box<[UnsafeCell<BatchBuf>]>,
    full: Ring,
    empty: Ring,
}

// SAFETY: a batch index is owned by exactly one side at a time (it travels through the
// queues, whose Release/Acquire pairs order the accesses to the batch).
unsafe impl Sync for Channel {}

pub(crate) const STOP: usize = usize::MAX;

fn run_xfree(p: &Params, probe: Probe) -> Outcome {
    const BATCHES: usize = 32;
    let pairs = (p.threads / 2).max(1);
    let batch = p.batch.max(1);
    let blocks_total = p.ops / 2;
    let size_of = uniform(p.min, p.max);
    let channels: Vec<Channel> = (0..pairs)
        .map(|_| {
            let ch = Channel {
                batches: (0..BATCHES)
                    .map(|_| {
                        UnsafeCell::new(BatchBuf {
                            n: 0,
                            items: vec![EMPTY; batch],
                        })
                    })
                    .collect(),
                full: Ring::new(BATCHES + 1),
                empty: Ring::new(BATCHES + 1),
            };
            for i in 0..BATCHES {
                ch.empty.push(i);
            }
            ch
        })
        .collect();
    let gate = Gate::new(2 * pairs);
    std::thread::scope(|s| {
        let mut producers = Vec::with_capacity(pairs);
        let mut consumers = Vec::with_capacity(pairs);
        for (k, ch) in channels.iter().enumerate() {
            let gate = &gate;
            let blocks = share(blocks_total, pairs, k);
            producers.push(s.spawn(move || {
                let mut rng = Rng::new(p.seed, k as u64);
                let mut left = blocks;
                let t0 = gate.begin();
                let deadline = p.deadline();
                let mut batches = 0u32;
                while left > 0 {
                    let idx = ch.empty.pop();
                    // SAFETY: the producer owns batch `idx` until it pushes it to `full`.
                    let b = unsafe { &mut *ch.batches[idx].get() };
                    let n = (left as usize).min(batch);
                    for (j, it) in b.items[..n].iter_mut().enumerate() {
                        let size = size_of(rng.next_u64());
                        *it = Slot {
                            ptr: new_block(size, j as u8),
                            size,
                        };
                    }
                    b.n = n;
                    ch.full.push(idx);
                    left -= n as u64;
                    batches = batches.wrapping_add(1);
                    if batches.is_multiple_of(64) && deadline.passed() {
                        break;
                    }
                }
                ch.full.push(STOP);
                let t1 = gate.end();
                (blocks - left, (t0, t1))
            }));
            consumers.push(s.spawn(move || {
                let mut freed = 0u64;
                let t0 = gate.begin();
                loop {
                    let idx = ch.full.pop();
                    if idx == STOP {
                        break;
                    }
                    // SAFETY: the consumer owns batch `idx` until it pushes it to `empty`.
                    let b = unsafe { &mut *ch.batches[idx].get() };
                    for it in &b.items[..b.n] {
                        free_block(*it);
                    }
                    freed += b.n as u64;
                    b.n = 0;
                    ch.empty.push(idx);
                }
                let t1 = gate.end();
                (freed, (t0, t1))
            }));
        }
        join_pairs(producers, consumers, gate.time(probe))
    })
}

struct Lane {
    slots: Vec<Slot>,
    counts: Counts,
}

fn run_churn(p: &Params, probe: Probe) -> Outcome {
    let width = p.threads.max(1);
    let lifetimes = p.lifetimes.max(1);
    let size_of = uniform(p.min, p.max);
    let mut lanes: Vec<Lane> = (0..width)
        .map(|_| Lane {
            slots: vec![EMPTY; p.ws.max(1)],
            counts: Counts::default(),
        })
        .collect();
    let t = Timer::start(probe);
    let deadline = p.deadline();
    let mut started = 0usize;
    while started < lifetimes && !deadline.passed() {
        let wave = (lifetimes - started).min(width);
        std::thread::scope(|s| {
            for (j, lane) in lanes.iter_mut().take(wave).enumerate() {
                let id = started + j;
                let ops = share(p.ops, lifetimes, id);
                s.spawn(move || {
                    let mut rng = Rng::new(p.seed, id as u64);
                    let c =
                        mixed_loop(&mut lane.slots, ops, &mut rng, size_of, deadline, p.chunk());
                    lane.counts.add(c);
                });
            }
        });
        started += wave;
    }
    let elapsed = t.stop();
    let mut total = Counts::default();
    let mut drained = 0;
    for lane in &mut lanes {
        total.add(lane.counts);
        drained += drain(&mut lane.slots);
    }
    Outcome {
        ops: total.ops(),
        allocs: total.allocs,
        frees: total.frees + drained,
        threads_started: started as u64,
        elapsed,
        ..Outcome::default()
    }
}

fn run_realloc(p: &Params, probe: Probe) -> Outcome {
    let min = p.min.max(1);
    let max = p.max.max(min + 1);
    let mut vecs = vec![EMPTY; p.ws.max(1)];
    let n = vecs.len() as u64;
    let mut rng = Rng::new(p.seed, 0);
    let mut c = Counts::default();
    let t = Timer::start(probe);
    let deadline = p.deadline();
    let chunk = p.chunk();
    for k in 0..p.ops {
        if k % chunk == 0 && k > 0 && deadline.passed() {
            break;
        }
        let r = rng.next_u64();
        // SAFETY: `below(_, n) < n == vecs.len()`.
        let v = unsafe { vecs.get_unchecked_mut(below(r, n) as usize) };
        if v.ptr.is_null() {
            v.ptr = new_block(min, 1);
            v.size = min;
            c.allocs += 1;
        } else if v.size >= max {
            free_block(*v);
            *v = EMPTY;
            c.frees += 1;
        } else {
            let grow = 1 + below(r >> 32, (v.size / 2) as u64 + 1) as usize;
            let new = (v.size + grow).min(max);
            v.ptr = grow_block(*v, new);
            v.size = new;
            c.reallocs += 1;
        }
    }
    let elapsed = t.stop();
    let drained = drain(&mut vecs);
    Outcome {
        ops: c.ops(),
        allocs: c.allocs,
        frees: c.frees + drained,
        reallocs: c.reallocs,
        elapsed,
        ..Outcome::default()
    }
}

/// `n` larson replacements on `lane`: free a random block, allocate one of a random size.
fn larson_epoch<S: Fn(u64) -> usize>(lane: &mut Lane, n: u64, rng: &mut Rng, size_of: S) {
    let ws = lane.slots.len() as u64;
    for _ in 0..n {
        let r = rng.next_u64();
        let i = below(r, ws) as usize;
        // SAFETY: `i < ws == lane.slots.len()`.
        let s = unsafe { lane.slots.get_unchecked_mut(i) };
        if !s.ptr.is_null() {
            free_block(*s);
            lane.counts.frees += 1;
        }
        let size = size_of(r);
        s.ptr = new_block(size, i as u8);
        s.size = size;
        lane.counts.allocs += 1;
    }
}

fn run_larson(p: &Params, probe: Probe) -> Outcome {
    let n = p.threads.max(1);
    let size_of = uniform(p.min, p.max);
    let ws = p.ws.max(1);
    // n + 1 arrays: one waits in the pool, so a hand-off always gets another thread's array.
    let mut rng = Rng::new(p.seed, u64::MAX);
    let mut prefill = 0u64;
    let mut lanes: Vec<Lane> = (0..=n)
        .map(|_| Lane {
            slots: (0..ws)
                .map(|i| {
                    let size = size_of(rng.next_u64());
                    prefill += 1;
                    Slot {
                        ptr: new_block(size, i as u8),
                        size,
                    }
                })
                .collect(),
            counts: Counts::default(),
        })
        .collect();
    let mut pool = VecDeque::with_capacity(n + 1);
    pool.push_back(lanes.pop().expect("n + 1 lanes"));
    let pool = Mutex::new(pool);
    let gate = Gate::new(n);
    let epoch = p.epoch.max(1);
    let elapsed = std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(n);
        for (i, mut lane) in lanes.drain(..).enumerate() {
            let (gate, pool) = (&gate, &pool);
            let mut left = share(p.ops / 2, n, i);
            handles.push(s.spawn(move || {
                let mut rng = Rng::new(p.seed, i as u64);
                let t0 = gate.begin();
                let deadline = p.deadline();
                loop {
                    let k = left.min(epoch);
                    larson_epoch(&mut lane, k, &mut rng, size_of);
                    left -= k;
                    let mut q = pool.lock().expect("larson pool");
                    q.push_back(lane);
                    if left == 0 || deadline.passed() {
                        break;
                    }
                    lane = q.pop_front().expect("a lane in the pool");
                }
                (t0, gate.end())
            }));
        }
        let mut elapsed = gate.time(probe);
        let spans: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("larson worker panicked"))
            .collect();
        elapsed.secs = wall(&spans);
        elapsed
    });
    let mut total = Counts::default();
    let mut drained = 0;
    for mut lane in pool.into_inner().expect("larson pool") {
        total.add(lane.counts);
        drained += drain(&mut lane.slots);
    }
    Outcome {
        ops: total.ops(),
        allocs: total.allocs + prefill,
        frees: total.frees + drained,
        elapsed,
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_generators_stay_in_range() {
        let u = uniform(16, 1024);
        let l = log_uniform(64 * 1024, 64 << 20);
        let mut r = Rng::new(3, 3);
        let (mut umin, mut umax, mut lmin, mut lmax) = (usize::MAX, 0, usize::MAX, 0);
        for _ in 0..100_000 {
            let x = r.next_u64();
            let a = u(x);
            let b = l(x);
            umin = umin.min(a);
            umax = umax.max(a);
            lmin = lmin.min(b);
            lmax = lmax.max(b);
        }
        assert_eq!((umin, umax), (16, 1024));
        assert!((64 * 1024..80 * 1024).contains(&lmin), "{lmin}");
        assert!(lmax <= 64 << 20 && lmax > 60 << 20, "{lmax}");
    }

    #[test]
    fn shares_add_up() {
        for (t, p) in [(10u64, 3usize), (0, 4), (7, 1), (1000, 7)] {
            assert_eq!((0..p).map(|i| share(t, p, i)).sum::<u64>(), t);
        }
    }

    #[test]
    fn every_workload_name_is_unique() {
        for (i, a) in WORKLOADS.iter().enumerate() {
            assert!(WORKLOADS[i + 1..].iter().all(|b| b.name != a.name));
            assert_eq!(spec(a.name).map(|s| s.name), Some(a.name));
        }
    }
}
