//! # hakmem-fuzz: a multi-threaded differential fuzzer of hakmem's APIs
//!
//! One engine ([`run`]), three targets ([`targets`]): `raw` (`hakmem::raw`, the
//! pointer-only API with C semantics), `global` (`HakMem`'s `GlobalAlloc` called with
//! `Layout`s, alignments up to 16 MiB) and `c` (the process's `malloc`, `calloc`,
//! `realloc`, `reallocarray`, `free`, `posix_memalign`, `aligned_alloc`, `memalign`,
//! `valloc`, `malloc_usable_size`, `malloc_trim` through `libc`: hakmem's when the
//! binary runs under `LD_PRELOAD=libhakmem.so`).
//!
//! **Programs.** Workers (threads) run random programs, each from a PRNG seeded by the
//! run's seed and the worker's serial number: allocations of sizes at every size-class
//! boundary +-1, 0, tiny, mid, the box limits and large blocks up to 32 MiB, aligned
//! from 8 B to 16 MiB, zeroed or not; `realloc`s that grow, shrink, cross class and box
//! boundaries, double, go to tiny, to 0 and to sizes no allocator can give; chains that
//! grow one block by doubling up to 48 MiB (several workers at once, now and then);
//! bursts of one size; frees; refused requests; cache flushes and trims. Workers hand
//! blocks to each other through shared slots, so a block is often freed or resized by
//! another thread than the one that made it; a worker lives for a random number of ops
//! (some for only a few) and another takes its place. With one thread a run is fully
//! deterministic (`max_ops` bounds it exactly); with more, the programs are the same but
//! their interleaving is not.
//!
//! **Shadow model** ([`model`]). Each live block has a size, an alignment, its usable
//! size and a fill pattern derived from the seed and its id. Checked: every pointer is
//! non-null and aligned; the usable size is at least the size, does not change while the
//! block lives, and is writable whole (the pattern covers it); zeroed blocks are zero;
//! the contents are intact at every free, `realloc` (the kept prefix, after the move) and
//! verification (whole blocks up to 64 KiB; bigger ones at both ends, around the size and
//! every `usable / 2048` bytes); no two live blocks overlap (a global map of address
//! ranges); every valid `free`/`realloc` is accepted; a failed `realloc` leaves the
//! block intact; refused requests fail as documented (null, `ENOMEM`, `EINVAL`).
//!
//! **Failures.** The first failed check is printed with the target, seed, worker, op
//! index and what differed, every worker stops, and [`run`] returns it as an error (the
//! binary exits 1). A crash (an `abort` from hakmem's own checks, a fault) is reported
//! by a signal handler with the seed and each worker's op ([`crash`]).
//!
//! The fuzzer's own bookkeeping allocates through the global allocator (the system's:
//! hakmem's too under `LD_PRELOAD`).

// Explicit paths: this file is also a module of `hakmem`'s `tests/fuzz.rs` (see
// Cargo.toml), where the files are found relative to this one only by `#[path]`.
#[path = "crash.rs"]
pub mod crash;
#[path = "draw.rs"]
pub mod draw;
#[path = "model.rs"]
pub mod model;
/// The bench's PRNG (`benches/src/rng.rs`): xorshift64* seeded through splitmix64.
#[path = "../../../benches/src/rng.rs"]
pub mod rng;
#[path = "targets.rs"]
pub mod targets;

use self::draw::{HUGE, MIB, pick};
use self::model::Intervals;
use self::rng::{Rng, splitmix64};
use self::targets::Target;
use hakmem_ss_allocation::class::MAX_SLAB_BLOCK;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Parameters of a run.
#[derive(Clone, Debug)]
pub struct Params {
    /// Seed of everything random.
    pub seed: u64,
    /// Workers alive at a time (at most [`crash::SLOTS`] are reported on a crash).
    pub threads: usize,
    /// Seconds to run (new workers start until then).
    pub secs: f64,
    /// Ops in all (0: no bound but time); with one thread, a run bounded by ops is
    /// exactly reproducible.
    pub max_ops: u64,
    /// Live blocks a worker keeps at most.
    pub slots: usize,
    /// Shared slots through which workers hand blocks to each other.
    pub shared: usize,
    /// Bytes of live blocks above 256 KiB allowed at once (a request beyond is made
    /// small instead).
    pub budget: usize,
    /// Print a progress line every this many seconds (0: never).
    pub report_secs: f64,
    /// Install the crash handler ([`crash::install`]).
    pub crash_handler: bool,
    /// Print the first failure on stderr as soon as it is found (it is also returned).
    pub print_failure: bool,
    /// Test the test: worker 0 flips a byte of one of its blocks at op 1,000 (the run
    /// must then fail).
    pub inject_corruption: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            seed: 0x00C0_FFEE,
            threads: 4,
            secs: 5.0,
            max_ops: 0,
            slots: 96,
            shared: 64,
            budget: 384 * MIB,
            report_secs: 0.0,
            crash_handler: false,
            print_failure: true,
            inject_corruption: false,
        }
    }
}

/// One allocation request of the engine; the target picks the function.
#[derive(Clone, Copy, Debug)]
pub struct Req {
    /// Bytes.
    pub size: usize,
    /// 0 (none: `malloc`-style) or a power of two.
    pub align: usize,
    /// Zeroed (`calloc`, `alloc_zeroed`; only without alignment except for `global`).
    pub zeroed: bool,
    /// Random bits that pick among the target's functions.
    pub variant: u64,
}

/// A live block of the model.
#[derive(Clone, Copy, Debug)]
pub struct Blk {
    /// Its address.
    pub p: usize,
    /// Bytes asked for.
    pub size: usize,
    /// The alignment it must have (for `global`, its layout's).
    pub align: usize,
    /// The usable size the target reported when the block was made or resized.
    pub usable: usize,
    /// Unique id (worker serial << 32 | counter).
    pub id: u64,
    /// Key of its fill pattern.
    key: u64,
    /// Bytes charged to the large budget.
    charged: usize,
    /// The function that made it.
    api: &'static str,
}

impl Blk {
    /// Its address as a pointer.
    pub fn ptr(&self) -> *mut u8 {
        self.p as *mut u8
    }
}

/// Counters of a run.
#[derive(Debug, Default)]
pub struct Summary {
    /// Ops run.
    pub ops: u64,
    /// Blocks made (bursts and chains included).
    pub allocs: u64,
    /// Blocks freed.
    pub frees: u64,
    /// `realloc`s that succeeded.
    pub reallocs: u64,
    /// Of them, those that moved the block.
    pub moved: u64,
    /// Blocks taken from the shared slots (made or last touched by another worker).
    pub handed: u64,
    /// Workers started.
    pub workers: u64,
    /// Doubling chains up to 48 MiB.
    pub chains: u64,
    /// Refused requests checked.
    pub refusals: u64,
    /// Bytes compared with the model.
    pub bytes_checked: u64,
    /// Seconds it took.
    pub secs: f64,
}

impl Summary {
    /// One line of `key=value` pairs.
    pub fn line(&self) -> String {
        format!(
            "ops={} allocs={} frees={} reallocs={} moved={} handed={} workers={} chains={} refusals={} checked_mib={} secs={:.1}",
            self.ops,
            self.allocs,
            self.frees,
            self.reallocs,
            self.moved,
            self.handed,
            self.workers,
            self.chains,
            self.refusals,
            self.bytes_checked >> 20,
            self.secs
        )
    }
}

#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    allocs: AtomicU64,
    frees: AtomicU64,
    reallocs: AtomicU64,
    moved: AtomicU64,
    handed: AtomicU64,
    workers: AtomicU64,
    chains: AtomicU64,
    refusals: AtomicU64,
    bytes_checked: AtomicU64,
}

struct Shared<'a, T: Target> {
    t: &'a T,
    p: &'a Params,
    exchange: Vec<Mutex<Option<Blk>>>,
    live: Mutex<Intervals>,
    stop: AtomicBool,
    failure: Mutex<Option<String>>,
    large: AtomicUsize,
    ops_left: AtomicI64,
    c: Counters,
}

/// Locks `m`, whatever a panicking worker left behind.
fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Target> Shared<'_, T> {
    fn record_failure(&self, msg: String) {
        let mut f = lock(&self.failure);
        if f.is_none() {
            if self.p.print_failure {
                let _ = writeln!(std::io::stderr(), "{msg}");
            }
            *f = Some(msg);
        }
        self.stop.store(true, Relaxed);
    }

    fn charge(&self, bytes: usize) -> bool {
        if bytes <= MAX_SLAB_BLOCK {
            return true;
        }
        if self.large.fetch_add(bytes, Relaxed) + bytes > self.p.budget {
            self.large.fetch_sub(bytes, Relaxed);
            return false;
        }
        true
    }

    fn uncharge(&self, bytes: usize) {
        if bytes > MAX_SLAB_BLOCK {
            self.large.fetch_sub(bytes, Relaxed);
        }
    }
}

/// A check failed; the report is already recorded.
struct Failed;

type Res<X> = Result<X, Failed>;

/// The length of a doubling chain's last step.
const CHAIN_TOP: usize = 48 * MIB;

/// Op kinds (indices into [`crash::KINDS`]).
mod kind {
    pub const ALLOC: usize = 1;
    pub const FREE: usize = 2;
    pub const REALLOC: usize = 3;
    pub const EXCHANGE: usize = 4;
    pub const VERIFY: usize = 5;
    pub const REFUSAL: usize = 6;
    pub const CHAIN: usize = 7;
    pub const BURST: usize = 8;
    pub const MAINTENANCE: usize = 9;
}

struct Worker<'s, 'a, T: Target> {
    sh: &'s Shared<'a, T>,
    rng: Rng,
    serial: u64,
    slot: usize,
    op: u64,
    next_id: u64,
    blocks: Vec<Blk>,
    large_heavy: bool,
}

impl<T: Target> Worker<'_, '_, T> {
    fn fail(&self, msg: impl std::fmt::Display) -> Failed {
        let p = self.sh.p;
        self.sh.record_failure(format!(
            "hakmem-fuzz: FAILED: target {} seed {} threads {} worker {} (slot {}) op {}: {msg}\n  \
             reproduce: hakmem-fuzz --target {} --seed {} --threads {}{} (one thread is deterministic)",
            self.sh.t.name(),
            p.seed,
            p.threads,
            self.serial,
            self.slot,
            self.op,
            self.sh.t.name(),
            p.seed,
            p.threads,
            if p.max_ops > 0 {
                format!(" --ops {}", p.max_ops)
            } else {
                String::new()
            }
        ));
        Failed
    }

    fn describe(b: &Blk) -> String {
        format!(
            "block #{:#x} from {} at {:#x} (size {}, align {}, usable {})",
            b.id, b.api, b.p, b.size, b.align, b.usable
        )
    }

    fn pick(&mut self, n: u64) -> u64 {
        pick(&mut self.rng, n)
    }

    /// Checks the bytes of `b`'s layout below `upto`, read at `at` (`b.p` unless the
    /// block just moved).
    fn check(&self, b: &Blk, at: usize, upto: usize, what: &str) -> Res<()> {
        let mut bad = None;
        let mut bytes = 0u64;
        model::ranges(b.size, b.usable, |from, to| {
            let to = to.min(upto);
            if from >= to {
                return true;
            }
            bytes += (to - from) as u64;
            // SAFETY: `[from, to)` lies inside the live block at `at` (its usable size,
            // or the kept prefix of a moved block).
            match unsafe { model::check(at as *const u8, Some(b.key), from, to) } {
                Ok(()) => true,
                Err(m) => {
                    bad = Some(m);
                    false
                }
            }
        });
        self.sh.c.bytes_checked.fetch_add(bytes, Relaxed);
        match bad {
            None => Ok(()),
            Some(m) => Err(self.fail(format_args!(
                "contents differ {what}: {} (now at {at:#x}): offset {}: expected {:#04x}, found {:#04x}",
                Self::describe(b),
                m.off,
                m.want,
                m.got
            ))),
        }
    }

    fn fill(b: &Blk) {
        model::ranges(b.size, b.usable, |from, to| {
            // SAFETY: inside the block's usable size, which the model owns.
            unsafe { model::fill(b.ptr(), b.key, from, to) };
            true
        });
    }

    /// The checks of a block just returned by the target: non-null, aligned, usable
    /// size, zero, no overlap; then it is filled.
    fn adopt_new(&self, b: &mut Blk, zeroed: bool, what: &str) -> Res<()> {
        let t = self.sh.t;
        if b.p == 0 {
            return Err(self.fail(format_args!("{what}: null for {}", Self::describe(b))));
        }
        if !b.p.is_multiple_of(b.align) {
            return Err(self.fail(format_args!("{what}: misaligned {}", Self::describe(b))));
        }
        // SAFETY: a live block of the target.
        b.usable = match unsafe { t.usable(b) } {
            Ok(n) => n,
            Err(e) => {
                return Err(self.fail(format_args!(
                    "{what}: usable size of {} refused: {e}",
                    Self::describe(b)
                )));
            }
        };
        if b.usable < b.size {
            return Err(self.fail(format_args!(
                "{what}: usable size below the size: {}",
                Self::describe(b)
            )));
        }
        if zeroed {
            let mut bad = None;
            model::ranges(b.size, b.size, |from, to| {
                // SAFETY: inside the block.
                match unsafe { model::check(b.ptr(), None, from, to) } {
                    Ok(()) => true,
                    Err(m) => {
                        bad = Some(m);
                        false
                    }
                }
            });
            if let Some(m) = bad {
                return Err(self.fail(format_args!(
                    "{what}: not zero: {}: offset {} holds {:#04x}",
                    Self::describe(b),
                    m.off,
                    m.got
                )));
            }
        }
        if let Err((s, e, id)) = lock(&self.sh.live).insert(b.p, b.p + b.usable.max(1), b.id) {
            return Err(self.fail(format_args!(
                "{what}: {} overlaps live block #{id:#x} at {s:#x}..{e:#x}",
                Self::describe(b)
            )));
        }
        Self::fill(b);
        Ok(())
    }

    fn new_id(&mut self) -> (u64, u64) {
        self.next_id += 1;
        let id = (self.serial << 32) | self.next_id;
        (id, splitmix64(self.sh.p.seed ^ splitmix64(id)))
    }

    fn request(&mut self) -> Req {
        let size = draw::size(&mut self.rng, self.large_heavy);
        let align = draw::align(&mut self.rng);
        let zeroed = self.pick(8) == 0;
        Req {
            size,
            align,
            zeroed,
            variant: self.rng.next_u64(),
        }
    }

    fn alloc(&mut self, mut r: Req) -> Res<Blk> {
        let sh = self.sh;
        if !sh.charge(r.size) {
            r.size %= MAX_SLAB_BLOCK;
        }
        // SAFETY: the engine owns what the target returns.
        let g = unsafe { sh.t.alloc(&r) };
        let (id, key) = self.new_id();
        let mut b = Blk {
            p: g.p as usize,
            size: g.size,
            align: g.align,
            usable: 0,
            id,
            key,
            charged: r.size,
            api: g.api,
        };
        sh.c.allocs.fetch_add(1, Relaxed);
        self.adopt_new(&mut b, g.zeroed, g.api)?;
        Ok(b)
    }

    fn free(&mut self, b: Blk) -> Res<()> {
        let sh = self.sh;
        self.check(&b, b.p, b.usable, "before free")?;
        if self.pick(4) == 0 {
            // SAFETY: a live block.
            match unsafe { sh.t.usable(&b) } {
                Ok(n) if n == b.usable => {}
                other => {
                    return Err(self.fail(format_args!(
                        "usable size of a live block changed to {other:?}: {}",
                        Self::describe(&b)
                    )));
                }
            }
        }
        if !lock(&sh.live).remove(b.p, b.id) {
            return Err(self.fail(format_args!("model: {} not live", Self::describe(&b))));
        }
        // SAFETY: a live block, given up.
        if let Err(e) = unsafe { sh.t.free(&b) } {
            return Err(self.fail(format_args!("free refused {}: {e}", Self::describe(&b))));
        }
        sh.uncharge(b.charged);
        sh.c.frees.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Resizes `b` to `new_size` (charged already); `None` when `realloc(p, 0)` freed it.
    fn realloc(&mut self, b: Blk, new_size: usize, charge: usize) -> Res<Option<Blk>> {
        let sh = self.sh;
        let t = sh.t;
        if b.usable <= model::FULL {
            self.check(&b, b.p, b.usable, "before realloc")?;
        }
        if !lock(&sh.live).remove(b.p, b.id) {
            return Err(self.fail(format_args!("model: {} not live", Self::describe(&b))));
        }
        let variant = self.rng.next_u64();
        // SAFETY: a live block, given up on success.
        let q = match unsafe { t.realloc(&b, new_size, variant) } {
            Ok(q) => q as usize,
            Err(e) => {
                return Err(self.fail(format_args!(
                    "realloc to {new_size} refused {}: {e}",
                    Self::describe(&b)
                )));
            }
        };
        if new_size == 0 && t.realloc_zero_frees() {
            if q != 0 {
                return Err(self.fail(format_args!(
                    "realloc to 0 returned {q:#x}, not null, for {}",
                    Self::describe(&b)
                )));
            }
            sh.uncharge(b.charged);
            sh.uncharge(charge);
            sh.c.frees.fetch_add(1, Relaxed);
            return Ok(None);
        }
        if q == 0 {
            return Err(self.fail(format_args!(
                "realloc to {new_size} returned null for {}",
                Self::describe(&b)
            )));
        }
        // The kept prefix, read at the new address.
        self.check(&b, q, b.size.min(new_size), "after realloc")?;
        let mut nb = Blk {
            p: q,
            size: new_size,
            align: t.realloc_align().unwrap_or(b.align),
            usable: 0,
            charged: charge,
            ..b
        };
        self.adopt_new(&mut nb, false, "realloc")?;
        sh.uncharge(b.charged);
        sh.c.reallocs.fetch_add(1, Relaxed);
        if q != b.p {
            sh.c.moved.fetch_add(1, Relaxed);
        }
        Ok(Some(nb))
    }

    /// A `realloc` that must fail (a size no allocator can give) and leave `b` intact.
    fn realloc_huge(&mut self, b: &Blk) -> Res<()> {
        let t = self.sh.t;
        let huge = if t.realloc_align().is_none() {
            1 << 48 // A valid layout for any alignment.
        } else {
            HUGE[self.pick(HUGE.len() as u64) as usize]
        };
        let variant = self.rng.next_u64();
        // SAFETY: a live block; it must stay live (the call fails).
        match unsafe { t.realloc(b, huge, variant) } {
            Ok(q) if q.is_null() => {}
            other => {
                return Err(self.fail(format_args!(
                    "realloc to {huge:#x} gave {other:?}, not null, for {}",
                    Self::describe(b)
                )));
            }
        }
        self.check(b, b.p, b.usable, "after a failed realloc")?;
        // SAFETY: a live block.
        match unsafe { t.usable(b) } {
            Ok(n) if n == b.usable => Ok(()),
            other => Err(self.fail(format_args!(
                "usable size changed to {other:?} by a failed realloc: {}",
                Self::describe(b)
            ))),
        }
    }

    fn take_block(&mut self) -> Option<Blk> {
        if self.blocks.is_empty() {
            return None;
        }
        let i = self.pick(self.blocks.len() as u64) as usize;
        Some(self.blocks.swap_remove(i))
    }

    fn keep(&mut self, b: Blk) -> Res<()> {
        if self.blocks.len() >= self.sh.p.slots {
            let old = self.take_block().expect("slots > 0");
            self.free(old)?;
        }
        self.blocks.push(b);
        Ok(())
    }

    fn op_alloc(&mut self) -> Res<()> {
        let r = self.request();
        let b = self.alloc(r)?;
        self.keep(b)
    }

    fn op_realloc(&mut self) -> Res<()> {
        let Some(b) = self.take_block() else {
            return self.op_alloc();
        };
        let mut n = draw::resize(&mut self.rng, b.size, self.large_heavy);
        if !self.sh.t.zero_size_ok() {
            n = n.max(1);
        }
        if !self.sh.charge(n) {
            n %= MAX_SLAB_BLOCK;
        }
        if let Some(nb) = self.realloc(b, n, n)? {
            self.blocks.push(nb);
        }
        Ok(())
    }

    fn op_exchange(&mut self) -> Res<()> {
        let sh = self.sh;
        let i = self.pick(sh.exchange.len() as u64) as usize;
        let give = if self.pick(2) == 0 {
            self.take_block()
        } else {
            None
        };
        let got = std::mem::replace(&mut *lock(&sh.exchange[i]), give);
        if let Some(b) = got {
            sh.c.handed.fetch_add(1, Relaxed);
            self.keep(b)?;
        }
        Ok(())
    }

    fn op_verify(&mut self) -> Res<()> {
        let i = self.pick(self.blocks.len().max(1) as u64) as usize;
        let Some(&b) = self.blocks.get(i) else {
            return Ok(());
        };
        self.check(&b, b.p, b.usable, "at a verification")?;
        // SAFETY: a live block.
        match unsafe { self.sh.t.usable(&b) } {
            Ok(n) if n == b.usable => Ok(()),
            other => Err(self.fail(format_args!(
                "usable size of a live block changed to {other:?}: {}",
                Self::describe(&b)
            ))),
        }
    }

    fn op_refusal(&mut self) -> Res<()> {
        self.sh.c.refusals.fetch_add(1, Relaxed);
        if self.pick(3) == 0
            && let Some(&b) = self.blocks.last()
        {
            return self.realloc_huge(&b);
        }
        let r = self.sh.t.refusal(&mut self.rng);
        r.map_err(|e| self.fail(e))
    }

    /// One block grown by doubling to 48 MiB, checked at every step; then freed or kept.
    fn op_chain(&mut self) -> Res<()> {
        let sh = self.sh;
        if !sh.charge(CHAIN_TOP) {
            return Ok(());
        }
        sh.c.chains.fetch_add(1, Relaxed);
        let span = if self.pick(2) == 0 { 4096 } else { 1 << 20 };
        let start = 1 + self.pick(span) as usize;
        let variant = self.rng.next_u64();
        let mut b = self.alloc(Req {
            size: start,
            align: 0,
            zeroed: false,
            variant,
        })?;
        // The chain's charge replaces the one of its first block.
        sh.uncharge(b.charged);
        b.charged = CHAIN_TOP;
        while b.size < CHAIN_TOP {
            let n = (b.size * 2).min(CHAIN_TOP);
            match self.realloc(b, n, CHAIN_TOP)? {
                Some(nb) => b = nb,
                None => return Ok(()),
            }
            // realloc uncharged the old charge (CHAIN_TOP): take it again for the new one.
            sh.large.fetch_add(CHAIN_TOP, Relaxed);
        }
        if self.pick(2) == 0 {
            self.free(b)
        } else {
            self.keep(b)
        }
    }

    /// Many blocks of one request, then all freed in a random order.
    fn op_burst(&mut self) -> Res<()> {
        let mut r = self.request();
        if r.size > 64 * 1024 {
            r.size %= 4096;
        }
        if r.align > 64 * 1024 {
            r.align = 16;
        }
        let n = 8 + self.pick(120) as usize;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.alloc(r)?);
        }
        while !v.is_empty() {
            let i = self.pick(v.len() as u64) as usize;
            let b = v.swap_remove(i);
            self.free(b)?;
        }
        Ok(())
    }

    fn step(&mut self) -> Res<()> {
        let chain_w = if self.large_heavy { 12 } else { 1 };
        let r = self.pick(1000 + chain_w);
        let full = self.blocks.len() >= self.sh.p.slots;
        let k = match r {
            0..330 if !full => kind::ALLOC,
            0..560 => kind::FREE,
            560..760 => kind::REALLOC,
            760..840 => kind::EXCHANGE,
            840..880 => kind::VERIFY,
            880..890 => kind::REFUSAL,
            890..910 => kind::BURST,
            910..911 => kind::MAINTENANCE,
            911..1000 => {
                if self.blocks.len() < self.sh.p.slots / 2 {
                    kind::ALLOC
                } else {
                    kind::FREE
                }
            }
            _ => kind::CHAIN,
        };
        crash::set_op(self.slot, self.op, k);
        if self.sh.p.inject_corruption
            && self.serial == 0
            && self.op == 1000
            && let Some(b) = self.blocks.first()
        {
            // SAFETY: byte 0 of a live block (usable size >= 1).
            unsafe { *b.ptr() ^= 0x40 };
        }
        match k {
            kind::ALLOC => self.op_alloc(),
            kind::FREE => match self.take_block() {
                Some(b) => self.free(b),
                None => self.op_alloc(),
            },
            kind::REALLOC => self.op_realloc(),
            kind::EXCHANGE => self.op_exchange(),
            kind::VERIFY => self.op_verify(),
            kind::REFUSAL => self.op_refusal(),
            kind::BURST => self.op_burst(),
            kind::MAINTENANCE => {
                let v = self.rng.next_u64();
                self.sh.t.maintenance(v);
                Ok(())
            }
            _ => self.op_chain(),
        }
    }

    fn run(&mut self) -> Res<()> {
        let life = if self.pick(8) == 0 {
            1 + self.pick(64)
        } else {
            500 + self.pick(20_000)
        };
        let bounded = self.sh.p.max_ops > 0;
        while self.op < life && !self.sh.stop.load(Relaxed) {
            if bounded && self.sh.ops_left.fetch_sub(1, Relaxed) <= 0 {
                break;
            }
            self.step()?;
            self.op += 1;
            self.sh.c.ops.fetch_add(1, Relaxed);
        }
        // Leave: some blocks to the shared slots (another thread frees them), the rest
        // freed here.
        while let Some(b) = self.blocks.pop() {
            if self.pick(3) == 0 {
                let i = self.pick(self.sh.exchange.len() as u64) as usize;
                let old = lock(&self.sh.exchange[i]).replace(b);
                if let Some(o) = old {
                    self.free(o)?;
                }
            } else {
                self.free(b)?;
            }
        }
        Ok(())
    }
}

fn worker<T: Target>(sh: &Shared<'_, T>, serial: u64, slot: usize) {
    crash::set_worker(slot, Some(serial));
    let mut rng = Rng::new(sh.p.seed, serial);
    let large_heavy = pick(&mut rng, 4) == 0;
    let mut w = Worker {
        sh,
        rng,
        serial,
        slot,
        op: 0,
        next_id: 0,
        blocks: Vec::with_capacity(sh.p.slots + 1),
        large_heavy,
    };
    sh.c.workers.fetch_add(1, Relaxed);
    // On a failure the worker's blocks are left as they are (leaked).
    let _ = w.run();
    crash::set_worker(slot, None);
}

/// Runs the fuzzer against `t`; the first failed check is the error (already printed on
/// stderr).
pub fn run<T: Target>(t: &T, p: &Params) -> Result<Summary, String> {
    let threads = p.threads.max(1);
    if p.crash_handler {
        crash::install();
    }
    crash::set_run(t.name(), p.seed, threads);
    let sh = Shared {
        t,
        p,
        exchange: (0..p.shared.max(1)).map(|_| Mutex::new(None)).collect(),
        live: Mutex::new(Intervals::default()),
        stop: AtomicBool::new(false),
        failure: Mutex::new(None),
        large: AtomicUsize::new(0),
        ops_left: AtomicI64::new(p.max_ops.min(i64::MAX as u64) as i64),
        c: Counters::default(),
    };
    let t0 = Instant::now();
    let mut next_report = p.report_secs;
    std::thread::scope(|s| {
        let sh = &sh;
        let spawn = |slot: usize, serial: u64| {
            std::thread::Builder::new()
                .name(format!("fuzz-{serial}"))
                .spawn_scoped(s, move || worker(sh, serial, slot))
                .expect("cannot start a worker thread")
        };
        let mut serial = 0u64;
        let mut hs: Vec<Option<_>> = Vec::new();
        for slot in 0..threads {
            hs.push(Some(spawn(slot, serial)));
            serial += 1;
        }
        loop {
            let elapsed = t0.elapsed().as_secs_f64();
            let done = sh.stop.load(Relaxed)
                || elapsed >= p.secs
                || (p.max_ops > 0 && sh.ops_left.load(Relaxed) <= 0);
            if done {
                sh.stop.store(true, Relaxed);
            }
            let mut alive = 0;
            for (slot, h) in hs.iter_mut().enumerate() {
                if h.as_ref().is_some_and(|h| h.is_finished())
                    && h.take().expect("present").join().is_err()
                {
                    sh.record_failure(format!(
                        "hakmem-fuzz: FAILED: target {} seed {} threads {threads}: a worker in slot {slot} panicked (message above)",
                        t.name(),
                        p.seed
                    ));
                }
                if h.is_none() && !done && !sh.stop.load(Relaxed) {
                    *h = Some(spawn(slot, serial));
                    serial += 1;
                }
                if h.is_some() {
                    alive += 1;
                }
            }
            if done && alive == 0 {
                break;
            }
            if p.report_secs > 0.0 && elapsed >= next_report {
                next_report += p.report_secs;
                let _ = writeln!(
                    std::io::stderr(),
                    "  {:.0}s: ops {} workers {} live {} large {} MiB",
                    elapsed,
                    sh.c.ops.load(Relaxed),
                    sh.c.workers.load(Relaxed),
                    lock(&sh.live).len(),
                    sh.large.load(Relaxed) >> 20
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    if let Some(f) = lock(&sh.failure).take() {
        return Err(f);
    }
    // What is left in the shared slots is freed here, on yet another thread.
    let mut last = Worker {
        sh: &sh,
        rng: Rng::new(p.seed, u64::MAX),
        serial: u64::from(u32::MAX),
        slot: 0,
        op: 0,
        next_id: 0,
        blocks: Vec::new(),
        large_heavy: false,
    };
    for i in 0..sh.exchange.len() {
        let b = lock(&sh.exchange[i]).take();
        if let Some(b) = b
            && last.free(b).is_err()
        {
            break;
        }
    }
    if let Some(f) = lock(&sh.failure).take() {
        return Err(f);
    }
    let left = lock(&sh.live).len();
    if left != 0 {
        return Err(format!(
            "hakmem-fuzz: model error: {left} blocks still live at the end"
        ));
    }
    let c = &sh.c;
    let mut s = Summary {
        ops: c.ops.load(Relaxed),
        allocs: c.allocs.load(Relaxed),
        frees: c.frees.load(Relaxed),
        reallocs: c.reallocs.load(Relaxed),
        moved: c.moved.load(Relaxed),
        handed: c.handed.load(Relaxed),
        workers: c.workers.load(Relaxed),
        chains: c.chains.load(Relaxed),
        refusals: c.refusals.load(Relaxed),
        bytes_checked: c.bytes_checked.load(Relaxed),
        secs: t0.elapsed().as_secs_f64(),
    };
    if s.allocs != s.frees {
        let mut m = String::new();
        let _ = write!(
            m,
            "hakmem-fuzz: model error: {} blocks made, {} freed",
            s.allocs, s.frees
        );
        return Err(m);
    }
    s.secs = t0.elapsed().as_secs_f64();
    Ok(s)
}
