//! Exhaustive (bounded) model checks of hakmem's cross-thread protocols with
//! [loom](https://docs.rs/loom).
//!
//! Run with (on 2 cores: about a minute to build, then about a minute; a separate
//! target directory keeps the normal build's artifacts, which `--cfg loom` would
//! otherwise invalidate):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p hakmem-ss-allocation --test loom_protocol --release
//! ```
//!
//! Without `--cfg loom` this file compiles to nothing, so `cargo test --workspace` is
//! unaffected. `LOOM_MAX_PREEMPTIONS=n` overrides every test's preemption bound (a
//! deeper, slower search).
//!
//! # This is a model, not the production code
//!
//! The production code keeps its state in `static`s built from `core::sync::atomic`
//! types and raw pointers into mmapped memory; loom can only explore interleavings of
//! (and find data races on) its own `loom::sync::atomic` types and
//! `loom::cell::UnsafeCell`s, created fresh for each execution. So each section below
//! re-states one production algorithm **step by step, with the same atomic operations
//! and the same memory orderings**, on loom types, with indices instead of pointers and
//! a handful of blocks instead of superslabs. A reviewer should check each model against
//! the production function it names; a change to one of those functions must be
//! mirrored here. Every memory word that the production code accesses without an atomic
//! (a free block's link word, the central state under a class lock, a transfer-cache
//! shard's chains under its lock, a registry node, an `ExitKey`'s key) is a
//! `loom::cell::UnsafeCell` here, so loom reports any access not ordered by
//! happens-before (a data race) as a failure, on top of the explicit assertions.
//!
//! | model here | production (crate, function) |
//! |---|---|
//! | [`RawLock`] `lock`, `lock_contended`, `try_lock`, `unlock`, [`Locked::with`] | `hakmem-os-stats` `lock::RawLock` and `lock::Locked::with`: `compare_exchange_weak(false, true, Acquire, Relaxed)`, on failure spin on a `Relaxed` load (64 `spin_loop`s, then `sched_yield`; both are a loom yield, and waits longer than [`SPIN_PRUNE`] spins are pruned) and retry the weak CAS; `unlock` is a `Release` store of `false` |
//! | [`XferShard`], [`Central::xfer_take`], [`Central::xfer_put`], [`Central::xfer_drain_locked`] | `hakmem-ss-allocation` `XferShard` (`lock`, `n: AtomicUsize`, `chains`; `XFER[cls]` holds `XFER_SHARDS` of them, the model 2), `xfer_take` (from the home shard on: skip a shard whose `n` reads 0, relaxed, no lock; else lock, re-read `n`, pop the top chain if its `count <= max`, store `n - 1`, unlock), `xfer_put` (from the home shard on: skip a shard that looks full, `n >= XFER_MAX` or `(n + 1) * bytes > max_bytes.max(bytes)`; else lock, re-check, store the chain at `chains[n]` and `n + 1`, unlock), `xfer_drain_locked` (class lock held; for each shard not empty at a peek: lock, copy the chains, store `n = 0`, unlock, then `flush_locked` each chain) |
//! | [`Central::refill_upto`] | `refill_upto`: when `max > want`, `xfer_take` (no class lock; the chain has a null tail); otherwise one class-locked section takes blocks from the first partial slab's free list, then carves, taking a new slab (`new_slab`) when the partial list is empty, unlinks a slab that has neither; the tail's link is nulled after the unlock |
//! | [`Central::flush`] | `flush` outside lean mode: a chain with `count > 1` of a class with 64 KiB slabs goes whole to `xfer_put` (no class lock); otherwise, or when every shard is full, `flush_locked` under the class lock |
//! | [`Central::flush_locked`], [`Central::slab_empty`], [`Central::new_slab`] | `flush_locked` (each block pushed on its slab's free list, `used -= 1`, slab emptied at `used == 0`, else put back on the partial list), `slab_empty` (unlink, reset free list and carve count, slab bit back in `free_slabs`), `new_slab` (lowest free slab, reset, pushed on the partial list) |
//! | [`Central::drain_transfer_caches`] | `drain_transfer_caches` (one class): class lock, `xfer_drain_locked`, unlock |
//! | [`Bin`] `pop`, `push`, `refill`, `overflow`, `drain` | `bins::Bin` methods of the same names: LIFO with a `limit`; `refill` asks `refill_upto(limit / 2 (at least 1), limit (at least 1))`; `overflow` keeps the new block and the `limit / 2` newest, flushes the older rest as one chain (`limit / 2 == 0`: `drain`); `drain` flushes the whole bin |
//! | the two threads of [`block_life`] | `hakmem-tiny-fast` / `hakmem-mid`: `alloc_slow_class` (pop, else `Bin::refill`), `free_slow_class` (push, else `Bin::overflow`), `on_thread_exit` (drain every bin, `limit = 0`) |
//! | [`ExitKey::register_current_thread`] | `bins::ExitKey::create` (called by `register_current_thread`): `compare_exchange(0, 1, Acquire, Acquire)`; the winner creates the key (at the highest free index) and stores 2 (or 3 on failure) with `Release`; `Err(1)` spins; `Err(2)` reads the key; `Err(3)` returns false |
//! | [`Registry::map`], [`Registry::kind_of`] | `registry::map` / `registry::init` (map a table, `compare_exchange(null, p, AcqRel, Acquire)`, the loser unmaps its own table and uses the winner's) and `registry::kind_of` (`Acquire` load, null means "not mapped yet") |
//! | [`Units`], [`registry_move_model`] | `hakmem-large` `large_realloc`'s move (`os::map_aligned` of the destination, `registry::mark` of it, `registry::mark(None)` of the old units **before** `os::remap_fixed`, which unmaps the source) racing another thread's `large_alloc` (`os::map_aligned`, `registry::mark`): the registry's ordering rule |
//! | [`Secret::link_secret`] | `link_secret` / `init_link_secret`: `Relaxed` load, 0 means "not yet": `compare_exchange(0, v \| 1, AcqRel, Acquire)`, the loser uses the winner's value |
//! | [`CacheRegistry`] | `bins::CacheRegistry::{register, unregister, cached}` (a doubly linked list of thread caches under a `RawLock`; `cached` sums each bin's `count`, an `AtomicU32` its owner writes with a `Relaxed` load and store) and the `thread_init` / `on_thread_exit` order of the boxes (register; …; drain, `limit = 0`, unregister; then the thread-local storage goes away) |
//!
//! The checks use ghost state (plain `std` atomics that loom does not instrument: each
//! block's one owner, which paths ran) and a few *mutation tests*: a deliberately broken
//! copy of one step (a `Relaxed` unlock, a `Relaxed` "key ready" store, an overflow that
//! flushes one block too few, an unmark after the `mremap` that frees the range, a transfer-cache take that forgets to decrement the
//! shard's `n`, a `Relaxed` unlock of the shard locks, a transfer-cache put that trusts
//! its peek at `n` instead of re-reading it under the lock) must make its model fail,
//! which shows the checks can fail at all.
//!
//! One model-only atomic has no production counterpart: [`XferShard`]'s `dpor`, touched
//! (relaxed, no ordering) before each peek at a shard's `n`, without which loom's
//! partial-order reduction never explores a peek after another thread's store of `n`
//! (see the field's comment; tokio-rs/loom#392).
//!
//! Left out of the models (checked elsewhere or not at all): superslab mapping and
//! release (`new_superslab`, the `avail` list, spare slabs, decommit; the model has one
//! superslab whose slabs are never unmapped), the release-policy cache, the `ClassStats`
//! counters (atomic adds from under different locks), lean mode's shrink signal (`flush`
//! checks `shrinking` before `xfer_put`, and under the class lock `should_shrink` may set
//! it and run `xfer_drain_locked`, the drain modelled for `drain_transfer_caches`), the
//! CPU a thread runs on (each thread has a fixed home shard here; `home_shard` may change
//! between calls), hardened link encoding and shuffling, the double-free marks, pointer
//! validation (`ss_lookup`, `validate_class`, which read `carved`/`free_slabs` without
//! the lock), `Bin::fill_to`, fork handlers. See `docs/concurrency.md`.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicUsize, Ordering};
use loom::thread;
use std::sync::atomic::AtomicBool as GhostBool;
use std::sync::atomic::AtomicUsize as GhostUsize;
use std::sync::atomic::Ordering::SeqCst;

// Ghost state (`std` atomics) is not instrumented by loom: the model's threads run one
// at a time on one OS thread, so it records facts about the interleaving being explored
// (who holds what, which paths ran) without adding interleavings of its own.

/// Spins of one wait (a lock, a once-init, the test's mailbox) that loom explores; a
/// longer wait stops branching (`loom::skip_branch`: the execution goes on along one
/// schedule, which runs a thread that is not waiting). Without this, two waiters
/// yielding to each other forever while the holder never runs are an infinite path
/// (loom assumes no fairness). Nothing is lost: a failed spin only reads, so deleting
/// it from an execution leaves an execution that all other threads cannot tell apart,
/// and the executions with fewer spins are all explored.
const SPIN_PRUNE: u32 = 2;

/// One failed spin of a wait: yield to the other threads (`spin_loop` and
/// `sched_yield` are both a yield to loom), pruning long waits (see [`SPIN_PRUNE`]).
fn spin_wait(waited: &mut u32) {
    *waited += 1;
    if *waited > SPIN_PRUNE {
        loom::skip_branch();
    }
    thread::yield_now();
}

/// `assert!` with a common prefix, so the mutation tests can expect it.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        assert!($cond, "protocol violation: {}", format_args!($($msg)+))
    };
}

/// Run `f` under loom with at most `bound` preemptions (`None`: unbounded), unless
/// `LOOM_MAX_PREEMPTIONS` is set.
fn check(bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        b.preemption_bound = bound;
    }
    b.check(f);
}

// =======================================================================================
// (a) RawLock: hakmem-os-stats `lock::RawLock` and `lock::Locked`.
// =======================================================================================

/// `hakmem_os_stats::lock::RawLock`, step by step.
struct RawLock {
    locked: AtomicBool,
    /// `Release` in production; the mutation test weakens it to show the check bites.
    unlock_order: Ordering,
}

impl RawLock {
    fn new() -> Self {
        RawLock {
            locked: AtomicBool::new(false),
            unlock_order: Ordering::Release,
        }
    }

    fn lock(&self) {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    fn lock_contended(&self) {
        let mut spins = 0u32;
        let mut waited = 0u32;
        loop {
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    // core::hint::spin_loop()
                    spins += 1;
                }
                // (else libc::sched_yield(); both are a yield to loom)
                spin_wait(&mut waited);
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    fn try_lock(&self) -> bool {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn unlock(&self) {
        self.locked.store(false, self.unlock_order);
    }

    fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

/// `hakmem_os_stats::lock::Locked`.
struct Locked<T> {
    lock: RawLock,
    data: UnsafeCell<T>,
}

impl<T> Locked<T> {
    fn new(data: T) -> Self {
        Locked {
            lock: RawLock::new(),
            data: UnsafeCell::new(data),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.lock.lock();
        // SAFETY: the lock is held, so this is the only reference to the data (loom
        // checks exactly this claim: an unordered access is reported as a race).
        let r = self.data.with_mut(|p| f(unsafe { &mut *p }));
        self.lock.unlock();
        r
    }
}

/// Three threads each add one under the lock: no update is lost, and loom finds no
/// unordered access to the data (mutual exclusion plus Acquire/Release hand-over).
#[test]
fn raw_lock_three_threads_never_lose_an_update() {
    check(Some(4), || {
        let l = Arc::new(Locked::new(0u32));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let l = l.clone();
                thread::spawn(move || l.with(|v| *v += 1))
            })
            .collect();
        l.with(|v| *v += 1);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(l.with(|v| *v), 3);
        assert!(!l.lock.is_locked());
    });
}

/// Two threads, two critical sections each (so a thread re-takes a lock it just
/// released while the other spins): no lost update.
#[test]
fn raw_lock_two_threads_two_rounds() {
    check(None, || {
        let l = Arc::new(Locked::new(0u32));
        let l2 = l.clone();
        let h = thread::spawn(move || {
            l2.with(|v| *v += 1);
            l2.with(|v| *v += 10);
        });
        l.with(|v| *v += 100);
        l.with(|v| *v += 1000);
        h.join().unwrap();
        assert_eq!(l.with(|v| *v), 1111);
    });
}

/// `try_lock` succeeds only when no one holds the lock, and a successful `try_lock`
/// orders like `lock`.
#[test]
fn raw_lock_try_lock() {
    check(None, || {
        let l = Arc::new(Locked::new(0u32));
        let l2 = l.clone();
        let h = thread::spawn(move || {
            if l2.lock.try_lock() {
                // SAFETY: try_lock succeeded, the lock is held.
                l2.data.with_mut(|p| unsafe { *p += 1 });
                l2.lock.unlock();
                1
            } else {
                0
            }
        });
        l.with(|v| *v += 1);
        let got = h.join().unwrap();
        assert_eq!(l.with(|v| *v), 1 + got);
        assert!(l.lock.try_lock());
        assert!(!l.lock.try_lock());
        l.lock.unlock();
    });
}

/// Mutation check: with a `Relaxed` unlock the next holder's access to the data is not
/// ordered after the previous holder's, and loom must say so.
#[test]
#[should_panic(expected = "Causality violation")]
fn raw_lock_mutation_relaxed_unlock_is_caught() {
    check(Some(2), || {
        let mut l = Locked::new(0u32);
        l.lock.unlock_order = Ordering::Relaxed;
        let l = Arc::new(l);
        let l2 = l.clone();
        let h = thread::spawn(move || l2.with(|v| *v += 1));
        l.with(|v| *v += 1);
        h.join().unwrap();
    });
}

// =======================================================================================
// (b) A block's life across threads: thread caches, transfer-cache shards, slabs.
// =======================================================================================

/// Null block index (a null pointer in production).
const NIL: u32 = u32::MAX;

/// Deliberate bugs, to show that the checks catch them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mutant {
    None,
    /// `Bin::overflow` flushes one block too few (`count - keep - 1`).
    OverflowCountOffByOne,
    /// `xfer_take` takes a shard's top chain but forgets to store `n - 1`.
    XferTakeKeepsN,
    /// The transfer-cache shard locks unlock with a `Relaxed` store.
    ShardUnlockRelaxed,
    /// `xfer_put` trusts its peek: under the lock it stores the chain at the `n` it
    /// peeked (without the lock) instead of re-reading `n`.
    XferPutTrustsPeek,
}

/// One scenario of [`block_life`].
#[derive(Clone, Copy, Debug)]
struct Cfg {
    /// Slabs of the one superslab, and blocks per slab.
    nslab: usize,
    cap: u32,
    /// Block size (for the transfer cache's byte limit).
    block_size: usize,
    /// The class has 64 KiB slabs (`slab_shift(cls) == 16`): `flush` puts chains in its
    /// transfer cache. (`refill_upto` looks there either way, as in production.)
    xfer: bool,
    /// `XFER_SHARDS`.
    xfer_shards: usize,
    /// `XFER_MAX` (chains per shard) and `xfer_max_bytes()` (bytes per shard).
    xfer_max: usize,
    xfer_max_bytes: usize,
    /// The shard threads A, B and main try first (`home_shard()`: their CPU's).
    home: [usize; 3],
    /// Both threads' `Bin::limit` (`limit_of(cls)`).
    limit: u32,
    /// Allocations by thread A, each handed to thread B, which frees it.
    n_alloc: usize,
    /// B's exit destructor runs before its last free (a later thread-local destructor
    /// frees): that free sees `limit == 0` and goes through `overflow` -> `drain`.
    late_free: bool,
    /// The main thread runs `drain_transfer_caches` (`trim`) while A and B run.
    trim_during: bool,
    /// The main thread takes a chain of 2 blocks before A and B start, and flushes it
    /// while they run (a third thread's exit drain): two threads put chains at once.
    main_flush: bool,
    mutant: Mutant,
}

/// Metadata of one slab (`Slab` in the superslab header).
#[derive(Clone, Copy, Debug)]
struct Slab {
    free: u32,
    next: u32,
    prev: u32,
    used: u32,
    carved: u32,
    in_partial: bool,
}

const SLAB_RESET: Slab = Slab {
    free: NIL,
    next: NIL,
    prev: NIL,
    used: 0,
    carved: 0,
    in_partial: false,
};

#[derive(Clone, Copy, Debug)]
struct XferChain {
    head: u32,
    count: u32,
}

/// One class's `Central` (minus the lock) plus the slab metadata it guards.
struct CentralState {
    slabs: Vec<Slab>,
    /// Bit i: slab i not in use (`SuperSlab::free_slabs`).
    free_slabs: u64,
    partial: u32,
    /// Ghost: slabs that were in use before (to see slab reuse happen).
    ever_used: u64,
}

/// `XferShard`: one shard of the class's transfer cache, with its own lock.
struct XferShard {
    lock: RawLock,
    /// Chains in `chains[..n]`: written under `lock`, read without it to skip a shard
    /// that looks empty or full.
    n: AtomicUsize,
    chains: UnsafeCell<Vec<XferChain>>,
    /// Model only, no production counterpart: a relaxed `fetch_add(0)` before each
    /// peek at `n`, so that loom's DPOR explores a peek after another thread's store of
    /// `n`. Without it loom never does: every store of `n` follows the storing thread's
    /// own load of `n` (its peek, its re-read under the lock), and loom checks a store
    /// only against the last access to the atomic, that load, ordered before it, so it
    /// never backtracks to run the store before the other thread's earlier peek
    /// (tokio-rs/loom#392; the coverage assertions of the block-life tests caught it:
    /// no transfer-cache take was ever explored). Relaxed read-modify-writes of an atomic
    /// that nothing else touches add no happens-before edge, so they hide no race.
    dpor: AtomicUsize,
}

impl XferShard {
    /// The relaxed peek at `n`, without the lock.
    fn peek(&self) -> usize {
        self.dpor.fetch_add(0, Ordering::Relaxed);
        self.n.load(Ordering::Relaxed)
    }
}

/// `Chain`.
#[derive(Clone, Copy, Debug)]
struct Chain {
    head: u32,
    tail: u32,
    count: u32,
}

const CHAIN_EMPTY: Chain = Chain {
    head: NIL,
    tail: NIL,
    count: 0,
};

/// Which paths an exploration took (summed over all executions of one test).
#[derive(Default)]
struct Coverage {
    xfer_push: GhostUsize,
    xfer_take: GhostUsize,
    /// A put or take that skipped a shard on its relaxed peek of `n`.
    xfer_skip: GhostUsize,
    /// A take or put that found, with the shard locked, that its peek was stale.
    xfer_take_recheck: GhostUsize,
    xfer_put_recheck: GhostUsize,
    /// A chain put in or taken from a shard other than the thread's home shard.
    xfer_other_shard: GhostUsize,
    slab_flush: GhostUsize,
    slab_empty: GhostUsize,
    slab_reuse: GhostUsize,
    free_list_take: GhostUsize,
    partial_repush: GhostUsize,
    oom: GhostUsize,
    overflow: GhostUsize,
    late_free: GhostUsize,
    trim_took: GhostUsize,
    reused_block: GhostUsize,
    executions: GhostUsize,
}

/// A block's ghost owner: the central slab lists (or not carved yet, or on its way
/// back to its slab), a transfer-cache chain, a user, or the allocator code of thread
/// `t` (its bin, or a chain it is moving): `G_CACHE + t`.
const G_CENTRAL: usize = 0;
const G_XFER: usize = 1;
const G_LIVE: usize = 2;
const G_CACHE: usize = 3;
/// Thread numbers (ghost): A, B, and the main thread (concurrent trim).
const T_A: usize = 0;
const T_B: usize = 1;
const T_MAIN: usize = 2;
/// The main thread again, after every other thread has exited.
const T_FINAL: usize = 3;

/// The class: lock, central state, transfer-cache shards, and the blocks' memory.
struct Central {
    lock: RawLock,
    st: UnsafeCell<CentralState>,
    /// `XFER[cls]`.
    shards: Vec<XferShard>,
    /// Each block's first word: its free-list link while free, the user's data while
    /// live (the same word, as in production).
    word: Vec<UnsafeCell<u32>>,
    cfg: Cfg,
    cov: std::sync::Arc<Coverage>,
    /// Ghost: each block's one owner (`G_CENTRAL`, `G_XFER`, `G_LIVE`, `G_CACHE + t`).
    ghost: Vec<GhostUsize>,
    /// Ghost: the block was handed out before.
    ghost_seen: Vec<GhostBool>,
}

impl Central {
    fn new(cfg: Cfg, cov: std::sync::Arc<Coverage>) -> Self {
        let nblk = cfg.nslab * cfg.cap as usize;
        let shard = || {
            let mut lock = RawLock::new();
            if cfg.mutant == Mutant::ShardUnlockRelaxed {
                lock.unlock_order = Ordering::Relaxed;
            }
            XferShard {
                lock,
                n: AtomicUsize::new(0),
                dpor: AtomicUsize::new(0),
                chains: UnsafeCell::new(vec![
                    XferChain {
                        head: NIL,
                        count: 0
                    };
                    cfg.xfer_max
                ]),
            }
        };
        Central {
            lock: RawLock::new(),
            st: UnsafeCell::new(CentralState {
                slabs: vec![SLAB_RESET; cfg.nslab],
                free_slabs: (1u64 << cfg.nslab) - 1,
                partial: NIL,
                ever_used: 0,
            }),
            shards: (0..cfg.xfer_shards).map(|_| shard()).collect(),
            word: (0..nblk).map(|_| UnsafeCell::new(0xDEAD)).collect(),
            cfg,
            cov,
            ghost: (0..nblk).map(|_| GhostUsize::new(G_CENTRAL)).collect(),
            ghost_seen: (0..nblk).map(|_| GhostBool::new(false)).collect(),
        }
    }

    /// `next_of`: read a free block's link.
    fn next_of(&self, b: u32) -> u32 {
        // SAFETY: (model) the caller owns the free block; loom checks the claim.
        let next = self.word[b as usize].with(|p| unsafe { *p });
        ensure!(
            next == NIL || (next as usize) < self.word.len(),
            "block {b}'s link {next} is not a block (a live block's data read as a link)"
        );
        next
    }

    /// Ghost: the `count` blocks of the chain at `head` move from owner `from` to `to`.
    fn ghost_move(&self, head: u32, count: u32, from: usize, to: usize) {
        let mut b = head;
        for _ in 0..count {
            ensure!(b != NIL, "chain shorter than its count");
            let was = self.ghost[b as usize].swap(to, SeqCst);
            ensure!(
                was == from,
                "block {b} moves from owner {from} to {to} but was owned by {was}"
            );
            b = self.next_of(b);
        }
    }

    /// `set_next`: write a free block's link.
    fn set_next(&self, b: u32, next: u32) {
        // SAFETY: (model) the caller owns the free block; loom checks the claim.
        self.word[b as usize].with_mut(|p| unsafe { *p = next })
    }

    /// `slab_of`.
    fn slab_of(&self, b: u32) -> usize {
        (b / self.cfg.cap) as usize
    }

    fn push_back(&self, chain: &mut Chain, b: u32) {
        if chain.head == NIL {
            chain.head = b;
        } else {
            self.set_next(chain.tail, b);
        }
        chain.tail = b;
        chain.count += 1;
    }

    /// Run `f` on the central state; the caller holds the class lock.
    fn locked<R>(&self, f: impl FnOnce(&mut CentralState) -> R) -> R {
        // SAFETY: (model) the class lock is held (loom reports a race otherwise).
        self.st.with_mut(|p| f(unsafe { &mut *p }))
    }

    /// `c.lock.unlock()`, after checking the central invariants (the state another
    /// thread can see from now on).
    fn unlock(&self) {
        self.locked(|c| self.check_central(c, false));
        self.lock.unlock();
    }

    /// `sh.lock.unlock()` of shard `k`, after checking its invariants; `n` is the
    /// value of its `n` (the holder's own last store or load: no extra atomic access).
    fn shard_unlock(&self, k: usize, n: usize) {
        self.check_shard(k, n);
        self.shards[k].lock.unlock();
    }

    /// The shard a thread tries first (`home_shard`).
    fn home(&self, t: usize) -> usize {
        self.cfg.home.get(t).copied().unwrap_or(0) % self.shards.len()
    }

    fn partial_push(c: &mut CentralState, s: usize) {
        c.slabs[s].prev = NIL;
        c.slabs[s].next = c.partial;
        if c.partial != NIL {
            c.slabs[c.partial as usize].prev = s as u32;
        }
        c.partial = s as u32;
        c.slabs[s].in_partial = true;
    }

    fn partial_remove(c: &mut CentralState, s: usize) {
        let (prev, next) = (c.slabs[s].prev, c.slabs[s].next);
        if prev == NIL {
            c.partial = next;
        } else {
            c.slabs[prev as usize].next = next;
        }
        if next != NIL {
            c.slabs[next as usize].prev = prev;
        }
        c.slabs[s].next = NIL;
        c.slabs[s].prev = NIL;
        c.slabs[s].in_partial = false;
    }

    /// `new_slab` (the superslab is always there: no `new_superslab`, no spares).
    fn new_slab(&self, c: &mut CentralState) -> u32 {
        if c.free_slabs == 0 {
            self.cov.oom.fetch_add(1, SeqCst);
            return NIL; // out of memory
        }
        let idx = c.free_slabs.trailing_zeros() as usize;
        c.free_slabs &= !(1u64 << idx);
        if c.ever_used & (1 << idx) != 0 {
            self.cov.slab_reuse.fetch_add(1, SeqCst);
        }
        c.ever_used |= 1 << idx;
        c.slabs[idx].free = NIL;
        c.slabs[idx].used = 0;
        c.slabs[idx].carved = 0;
        Self::partial_push(c, idx);
        idx as u32
    }

    /// `slab_empty` (the superslab is never released).
    fn slab_empty(&self, c: &mut CentralState, s: usize) {
        self.cov.slab_empty.fetch_add(1, SeqCst);
        if c.slabs[s].in_partial {
            Self::partial_remove(c, s);
        }
        c.slabs[s].free = NIL;
        c.slabs[s].carved = 0;
        c.free_slabs |= 1u64 << s;
    }

    /// `xfer_take`: from the home shard on, skip a shard whose `n` reads 0 (relaxed,
    /// no lock); else lock it, re-read `n`, and pop its top chain if `count <= max`.
    fn xfer_take(&self, t: usize, max: u32) -> Option<XferChain> {
        let ns = self.shards.len();
        let home = self.home(t);
        for i in 0..ns {
            let k = (home + i) % ns;
            let sh = &self.shards[k];
            if sh.peek() == 0 {
                self.cov.xfer_skip.fetch_add(1, SeqCst);
                continue;
            }
            sh.lock.lock();
            let n = sh.n.load(Ordering::Relaxed);
            // SAFETY: (model) the shard lock is held; loom checks the claim.
            let top = n
                .checked_sub(1)
                .map(|j| sh.chains.with(|p| unsafe { (&*p)[j] }));
            if let Some(x) = top.filter(|x| x.count <= max) {
                let left = if self.cfg.mutant == Mutant::XferTakeKeepsN {
                    n
                } else {
                    sh.n.store(n - 1, Ordering::Relaxed);
                    n - 1
                };
                self.ghost_move(x.head, x.count, G_XFER, G_CACHE + t);
                self.cov.xfer_take.fetch_add(1, SeqCst);
                if i > 0 {
                    self.cov.xfer_other_shard.fetch_add(1, SeqCst);
                }
                self.shard_unlock(k, left);
                return Some(x);
            }
            self.cov.xfer_take_recheck.fetch_add(1, SeqCst);
            self.shard_unlock(k, n);
        }
        None
    }

    /// `xfer_put`: from the home shard on, skip a shard that looks full (relaxed `n`,
    /// no lock); else lock it, re-check, store the chain at `chains[n]` and `n + 1`.
    /// False when every shard is full.
    fn xfer_put(&self, t: usize, head: u32, count: u32, bytes: usize) -> bool {
        let cap = self.cfg.xfer_max_bytes.max(bytes);
        let fits = |n: usize| n < self.cfg.xfer_max && (n + 1) * bytes <= cap;
        let ns = self.shards.len();
        let home = self.home(t);
        for i in 0..ns {
            let k = (home + i) % ns;
            let sh = &self.shards[k];
            let peeked = sh.peek();
            if !fits(peeked) {
                self.cov.xfer_skip.fetch_add(1, SeqCst);
                continue;
            }
            sh.lock.lock();
            let n = if self.cfg.mutant == Mutant::XferPutTrustsPeek {
                peeked
            } else {
                sh.n.load(Ordering::Relaxed)
            };
            if fits(n) {
                // SAFETY: (model) the shard lock is held; loom checks the claim.
                sh.chains
                    .with_mut(|p| unsafe { (&mut *p)[n] = XferChain { head, count } });
                sh.n.store(n + 1, Ordering::Relaxed);
                self.ghost_move(head, count, G_CACHE + t, G_XFER);
                self.cov.xfer_push.fetch_add(1, SeqCst);
                if i > 0 {
                    self.cov.xfer_other_shard.fetch_add(1, SeqCst);
                }
                self.shard_unlock(k, n + 1);
                return true;
            }
            self.cov.xfer_put_recheck.fetch_add(1, SeqCst);
            self.shard_unlock(k, n);
        }
        false
    }

    /// `xfer_drain_locked` (the class lock is held; `t`: the calling thread, for the
    /// ghost owners and the coverage count of a trim that runs concurrently): for each
    /// shard not empty at a relaxed peek, lock it, copy its chains, store `n = 0`,
    /// unlock, then `flush_locked` each chain.
    fn xfer_drain_locked(&self, t: usize) {
        for k in 0..self.shards.len() {
            let sh = &self.shards[k];
            if sh.peek() == 0 {
                continue;
            }
            sh.lock.lock();
            let n = sh.n.load(Ordering::Relaxed).min(self.cfg.xfer_max);
            // SAFETY: (model) the shard lock is held; loom checks the claim.
            let taken = sh.chains.with(|p| unsafe { (&*p)[..n].to_vec() });
            sh.n.store(0, Ordering::Relaxed);
            for x in &taken {
                self.ghost_move(x.head, x.count, G_XFER, G_CACHE + t);
            }
            self.shard_unlock(k, 0);
            for x in &taken {
                if t == T_MAIN {
                    self.cov.trim_took.fetch_add(1, SeqCst);
                }
                self.ghost_move(x.head, x.count, G_CACHE + t, G_CENTRAL);
                self.locked(|c| self.flush_locked(c, x.head, x.count));
            }
        }
    }

    /// `refill_upto` (`t`: the calling thread, for the ghost owners).
    fn refill_upto(&self, t: usize, want: u32, max: u32) -> Chain {
        if max > want
            && let Some(x) = self.xfer_take(t, max)
        {
            return Chain {
                head: x.head,
                tail: NIL,
                count: x.count,
            };
        }
        let cap = self.cfg.cap;
        let mut chain = CHAIN_EMPTY;
        self.lock.lock();
        self.locked(|c| {
            while chain.count < want {
                let mut s = c.partial;
                if s == NIL {
                    s = self.new_slab(c);
                    if s == NIL {
                        break;
                    }
                }
                let s = s as usize;
                while chain.count < want && c.slabs[s].free != NIL {
                    self.cov.free_list_take.fetch_add(1, SeqCst);
                    let b = c.slabs[s].free;
                    c.slabs[s].free = self.next_of(b);
                    self.push_back(&mut chain, b);
                    c.slabs[s].used += 1;
                }
                let mut carved = c.slabs[s].carved;
                while chain.count < want && carved < cap {
                    self.push_back(&mut chain, s as u32 * cap + carved);
                    carved += 1;
                    c.slabs[s].used += 1;
                }
                c.slabs[s].carved = carved;
                if c.slabs[s].free == NIL && carved == cap {
                    Self::partial_remove(c, s);
                }
            }
        });
        self.unlock();
        if chain.tail != NIL {
            self.set_next(chain.tail, NIL);
        }
        self.ghost_move(chain.head, chain.count, G_CENTRAL, G_CACHE + t);
        chain
    }

    /// `flush` outside lean mode (`t`: the calling thread, for the ghost owners): a
    /// chain of `count > 1` blocks of a class with a transfer cache goes whole to a
    /// shard (no class lock); otherwise, or when every shard is full, `flush_locked`
    /// under the class lock.
    fn flush(&self, t: usize, head: u32, count: u32) {
        let bytes = count as usize * self.cfg.block_size;
        if count > 1 && self.cfg.xfer && self.xfer_put(t, head, count, bytes) {
            return;
        }
        self.ghost_move(head, count, G_CACHE + t, G_CENTRAL);
        self.lock.lock();
        self.locked(|c| self.flush_locked(c, head, count));
        self.unlock();
    }

    /// `flush_locked`.
    fn flush_locked(&self, c: &mut CentralState, head: u32, count: u32) {
        self.cov.slab_flush.fetch_add(1, SeqCst);
        let mut b = head;
        let mut n = 0;
        while n < count && b != NIL {
            let next = self.next_of(b);
            let s = self.slab_of(b);
            ensure!(
                c.free_slabs & (1 << s) == 0,
                "block {b} flushed to slab {s}, not in use"
            );
            self.set_next(b, c.slabs[s].free);
            c.slabs[s].free = b;
            c.slabs[s].used -= 1;
            if c.slabs[s].used == 0 {
                self.slab_empty(c, s);
            } else if !c.slabs[s].in_partial {
                self.cov.partial_repush.fetch_add(1, SeqCst);
                Self::partial_push(c, s);
            }
            b = next;
            n += 1;
        }
    }

    /// `drain_transfer_caches` (one class): the class lock, `xfer_drain_locked`, unlock.
    fn drain_transfer_caches(&self, t: usize) {
        self.lock.lock();
        self.xfer_drain_locked(t);
        self.unlock();
    }

    /// The shard invariants, checked at every release of shard `k`'s lock (the caller
    /// holds it; `n` is its chain count): `n <= XFER_MAX`, and each chain holds `count >
    /// 0` blocks, null-terminated, each owned (ghost) by the transfer cache, none twice.
    /// Returns the blocks it holds.
    fn check_shard(&self, k: usize, n: usize) -> Vec<u32> {
        ensure!(n <= self.cfg.xfer_max, "shard {k} holds {n} chains");
        // SAFETY: (model) the shard lock is held; loom checks the claim.
        let chains = self.shards[k]
            .chains
            .with(|p| unsafe { (&*p)[..n].to_vec() });
        let mut blocks = Vec::new();
        for x in chains {
            ensure!(x.count > 0, "empty transfer chain");
            let mut b = x.head;
            for j in 0..x.count {
                ensure!(b != NIL, "transfer chain shorter than its count");
                ensure!(!blocks.contains(&b), "block {b} twice in shard {k}");
                let owner = self.ghost[b as usize].load(SeqCst);
                ensure!(
                    owner == G_XFER,
                    "block {b} in shard {k}'s transfer chain but owned by {owner}"
                );
                blocks.push(b);
                let next = self.next_of(b);
                if j + 1 == x.count {
                    ensure!(next == NIL, "transfer chain longer than its count");
                }
                b = next;
            }
        }
        blocks
    }

    /// The central invariants, checked at every class-lock release (and at the end,
    /// `quiescent`: no thread cache or user holds a block, so every carved block of a
    /// slab in use is in its free list or in a transfer-cache chain, exactly once).
    /// The transfer chains are the shards' (their locks are not held here): a block in
    /// one is found by its ghost owner, checked in the shard's invariants.
    fn check_central(&self, c: &CentralState, quiescent: bool) {
        let cap = self.cfg.cap;
        let nblk = self.word.len();
        let mut seen = vec![0u32; nblk];
        let mut in_xfer = vec![0u32; self.cfg.nslab];
        // Blocks in transfer chains: carved blocks of slabs in use, counted in `used`.
        for (b, g) in self.ghost.iter().enumerate() {
            if g.load(SeqCst) == G_XFER {
                let s = self.slab_of(b as u32);
                ensure!(
                    c.free_slabs & (1 << s) == 0,
                    "xfer block {b} of a free slab"
                );
                ensure!(
                    b as u32 % cap < c.slabs[s].carved,
                    "xfer block {b} not carved"
                );
                in_xfer[s] += 1;
            }
        }
        let mut flagged = 0;
        for (s, sl) in c.slabs.iter().enumerate() {
            if c.free_slabs & (1 << s) != 0 {
                ensure!(!sl.in_partial, "free slab {s} in the partial list");
                continue;
            }
            ensure!(sl.carved <= cap, "slab {s} carved past its capacity");
            let mut nfree = 0;
            let mut b = sl.free;
            while b != NIL {
                ensure!(nfree < cap, "cycle in slab {s}'s free list");
                ensure!(self.slab_of(b) == s, "block {b} in slab {s}'s free list");
                ensure!(b % cap < sl.carved, "uncarved block {b} in a free list");
                seen[b as usize] += 1;
                nfree += 1;
                b = self.next_of(b);
            }
            ensure!(
                sl.used == sl.carved - nfree,
                "slab {s}: used {} != carved {} - free {nfree}",
                sl.used,
                sl.carved
            );
            ensure!(
                in_xfer[s] <= sl.used,
                "slab {s}: more in xfer than handed out"
            );
            if quiescent {
                ensure!(
                    sl.used == in_xfer[s],
                    "slab {s}: a block is neither free, in xfer, nor held (lost)"
                );
            }
            ensure!(
                sl.in_partial == (sl.free != NIL || sl.carved < cap),
                "slab {s}: in_partial is wrong"
            );
            flagged += sl.in_partial as u32;
        }
        for (b, &n) in seen.iter().enumerate() {
            ensure!(n <= 1, "block {b} listed {n} times in free lists");
            if n == 1 {
                let owner = self.ghost[b].load(SeqCst);
                ensure!(
                    owner == G_CENTRAL,
                    "block {b} in a free list but owned by {owner}"
                );
            }
        }
        // The partial list: doubly linked, exactly the flagged slabs.
        let (mut s, mut prev, mut n) = (c.partial, NIL, 0);
        while s != NIL {
            ensure!(n < self.cfg.nslab as u32, "cycle in the partial list");
            let sl = &c.slabs[s as usize];
            ensure!(sl.in_partial, "slab {s} in the partial list, not flagged");
            ensure!(sl.prev == prev, "partial list: slab {s}'s prev link");
            prev = s;
            s = sl.next;
            n += 1;
        }
        ensure!(
            n == flagged,
            "a flagged slab is missing from the partial list"
        );
    }

    /// At the end (no other thread left): every block the ghost state puts in the
    /// transfer cache is in exactly one shard's chains, and no other block is.
    fn check_shards_quiescent(&self) {
        let mut listed = Vec::new();
        for (k, sh) in self.shards.iter().enumerate() {
            sh.lock.lock();
            let n = sh.n.load(Ordering::Relaxed);
            for b in self.check_shard(k, n) {
                ensure!(!listed.contains(&b), "block {b} in two shards");
                listed.push(b);
            }
            sh.lock.unlock();
        }
        let ghosts = self
            .ghost
            .iter()
            .filter(|g| g.load(SeqCst) == G_XFER)
            .count();
        ensure!(
            listed.len() == ghosts,
            "{ghosts} blocks owned by the transfer cache, {} in its chains",
            listed.len()
        );
    }

    /// Thread `t`'s user gets block `p` (from `malloc`): it must be `t`'s (so not live
    /// already); the user writes its data over the link word.
    fn handout(&self, t: usize, p: u32, tag: u32) {
        let was = self.ghost[p as usize].swap(G_LIVE, SeqCst);
        ensure!(was != G_LIVE, "block {p} handed out twice while live");
        ensure!(
            was == G_CACHE + t,
            "block {p} handed out by {t} but owned by {was}"
        );
        if self.ghost_seen[p as usize].swap(true, SeqCst) {
            self.cov.reused_block.fetch_add(1, SeqCst);
        }
        // SAFETY: (model) the block is the user's now.
        self.word[p as usize].with_mut(|w| unsafe { *w = tag });
    }

    /// Thread `t`'s user frees `p`: its data must be intact (no one wrote a live block).
    fn user_free(&self, t: usize, p: u32, tag: u32) {
        // SAFETY: (model) the block is the user's (received through the mailbox).
        let w = self.word[p as usize].with(|w| unsafe { *w });
        ensure!(w == tag, "live block {p} was overwritten ({w} != {tag})");
        let was = self.ghost[p as usize].swap(G_CACHE + t, SeqCst);
        ensure!(was == G_LIVE, "block {p} freed but not live (owner {was})");
    }
}

/// `bins::Bin`. (`count` is an `AtomicU32` in production, written only by the owner
/// with a relaxed load and store: here a plain field; its readers are modelled in (d).)
struct Bin {
    head: u32,
    count: u32,
    limit: u32,
    /// Ghost: the owning thread.
    t: usize,
}

impl Bin {
    fn new(limit: u32, t: usize) -> Self {
        Bin {
            head: NIL,
            count: 0,
            limit,
            t,
        }
    }

    /// The bin invariant: `count` blocks linked from `head`, null-terminated.
    fn check(&self, c: &Central) {
        let mut n = 0;
        let mut b = self.head;
        while b != NIL {
            ensure!(n < self.count, "bin longer than its count");
            let owner = c.ghost[b as usize].load(SeqCst);
            ensure!(
                owner == G_CACHE + self.t,
                "block {b} in thread {}'s bin but owned by {owner}",
                self.t
            );
            n += 1;
            b = c.next_of(b);
        }
        ensure!(n == self.count, "bin shorter than its count");
        ensure!(self.count <= self.limit.max(1), "bin over its limit");
    }

    fn pop(&mut self, c: &Central) -> u32 {
        let p = self.head;
        if p != NIL {
            self.head = c.next_of(p);
            self.count -= 1;
        }
        p
    }

    fn push(&mut self, c: &Central, p: u32) -> bool {
        if self.count < self.limit {
            c.set_next(p, self.head);
            self.head = p;
            self.count += 1;
            true
        } else {
            false
        }
    }

    fn refill(&mut self, c: &Central) -> u32 {
        if self.head != NIL {
            return self.pop(c);
        }
        let want = (self.limit / 2).max(1);
        let chain = c.refill_upto(self.t, want, self.limit.max(1));
        if chain.count == 0 {
            return NIL;
        }
        let p = chain.head;
        self.head = c.next_of(p);
        self.count = chain.count - 1;
        p
    }

    fn overflow(&mut self, c: &Central, p: u32) {
        c.cov.overflow.fetch_add(1, SeqCst);
        c.set_next(p, self.head);
        self.head = p;
        self.count += 1;
        let keep = self.limit / 2;
        if keep == 0 {
            self.drain(c);
            return;
        }
        let mut last = self.head;
        for _ in 1..keep {
            last = c.next_of(last);
        }
        let rest = c.next_of(last);
        c.set_next(last, NIL);
        let n = if c.cfg.mutant == Mutant::OverflowCountOffByOne {
            self.count - keep - 1
        } else {
            self.count - keep
        };
        c.flush(self.t, rest, n);
        self.count = keep;
    }

    fn drain(&mut self, c: &Central) {
        if self.count > 0 {
            c.flush(self.t, self.head, self.count);
        }
        self.head = NIL;
        self.count = 0;
    }
}

/// Thread A hands each allocated block to thread B through this (the program's own
/// synchronization: a Release store of how many slots are filled, an Acquire load).
struct Mailbox {
    slot: Vec<UnsafeCell<u32>>,
    published: AtomicUsize,
}

impl Mailbox {
    fn send(&self, i: usize, p: u32) {
        // SAFETY: (model) slot i is A's until it publishes i + 1.
        self.slot[i].with_mut(|s| unsafe { *s = p });
        self.published.store(i + 1, Ordering::Release);
    }

    fn recv(&self, i: usize) -> u32 {
        let mut waited = 0;
        while self.published.load(Ordering::Acquire) <= i {
            spin_wait(&mut waited);
        }
        // SAFETY: (model) published with Release after the write.
        self.slot[i].with(|s| unsafe { *s })
    }
}

fn tag(i: usize) -> u32 {
    1000 + i as u32
}

/// Thread A allocates `n_alloc` blocks (bin pop, else `Bin::refill`: a transfer-cache
/// chain from a shard first, else slab free lists and carving) and hands each to thread
/// B; B frees each (push, else `Bin::overflow`: the older half to a transfer-cache shard
/// or the slabs); both drain their bin at thread exit. Then (all threads joined, no
/// block held by anyone) every carved block must be in exactly one central place (a
/// slab free list or one shard's chains) and every slab's `used` must equal its blocks
/// in transfer chains; after `drain_transfer_caches` every shard is empty and every slab
/// free again. Along the way: no block handed out twice while live, no live block
/// overwritten, the slab invariants at every class-lock release, the shard's chains at
/// every shard-lock release, bin invariants after every operation, and no data race on
/// any block's memory, on the central state or on a shard's chains.
fn block_life(cfg: Cfg, bound: Option<usize>) -> std::sync::Arc<Coverage> {
    let cov = std::sync::Arc::new(Coverage::default());
    let cov2 = cov.clone();
    check(bound, move || {
        cov2.executions.fetch_add(1, SeqCst);
        let c = Arc::new(Central::new(cfg, cov2.clone()));
        let held = if cfg.main_flush {
            c.refill_upto(T_MAIN, 2, 2)
        } else {
            CHAIN_EMPTY
        };
        let mb = Arc::new(Mailbox {
            slot: (0..cfg.n_alloc).map(|_| UnsafeCell::new(NIL)).collect(),
            published: AtomicUsize::new(0),
        });
        let (ca, ma) = (c.clone(), mb.clone());
        let a = thread::spawn(move || {
            let c = &*ca;
            let mut bin = Bin::new(cfg.limit, T_A);
            for i in 0..cfg.n_alloc {
                // alloc_slow_class: pop, else refill.
                let mut p = bin.pop(c);
                if p == NIL {
                    p = bin.refill(c);
                }
                bin.check(c);
                if p != NIL {
                    c.handout(T_A, p, tag(i));
                }
                ma.send(i, p);
            }
            // on_thread_exit
            bin.drain(c);
            bin.limit = 0;
            bin.check(c);
        });
        let (cb, mbb) = (c.clone(), mb.clone());
        let b = thread::spawn(move || {
            let c = &*cb;
            let mut bin = Bin::new(cfg.limit, T_B);
            for i in 0..cfg.n_alloc {
                let p = mbb.recv(i);
                if cfg.late_free && i + 1 == cfg.n_alloc {
                    // on_thread_exit ran before this free.
                    bin.drain(c);
                    bin.limit = 0;
                    c.cov.late_free.fetch_add(1, SeqCst);
                }
                if p == NIL {
                    continue;
                }
                c.user_free(T_B, p, tag(i));
                // free_slow_class: push, else overflow.
                if !bin.push(c, p) {
                    bin.overflow(c, p);
                }
                bin.check(c);
            }
            // on_thread_exit
            bin.drain(c);
            bin.limit = 0;
            bin.check(c);
        });
        if cfg.trim_during {
            c.drain_transfer_caches(T_MAIN);
        }
        if held.count > 0 {
            c.flush(T_MAIN, held.head, held.count);
        }
        a.join().unwrap();
        b.join().unwrap();
        for (b, g) in c.ghost.iter().enumerate() {
            let owner = g.load(SeqCst);
            ensure!(
                owner == G_CENTRAL || owner == G_XFER,
                "block {b} still owned by {owner} after every thread exited (lost)"
            );
        }
        c.lock.lock();
        c.locked(|st| c.check_central(st, true));
        c.check_shards_quiescent();
        c.lock.unlock();
        c.drain_transfer_caches(T_FINAL);
        c.lock.lock();
        c.check_shards_quiescent();
        for (k, sh) in c.shards.iter().enumerate() {
            let n = sh.n.load(Ordering::Relaxed);
            ensure!(n == 0, "shard {k} not empty after a drain ({n} chains)");
        }
        c.locked(|st| {
            c.check_central(st, true);
            ensure!(
                st.free_slabs == (1u64 << cfg.nslab) - 1,
                "a slab still in use after every block came back"
            );
            ensure!(st.partial == NIL, "partial list not empty");
        });
        c.lock.unlock();
    });
    let n = cov.executions.load(SeqCst);
    eprintln!(
        "{cfg:?}: {n} executions; paths: xfer push {} take {} skip {} take re-check {} \
         put re-check {} other shard {}, slab flush {}, slab empty {} reuse {}, free-list take {}, \
         partial re-push {}, out of memory {}, overflow {}, block reuse {}, late free {}, \
         trim took {}",
        cov.xfer_push.load(SeqCst),
        cov.xfer_take.load(SeqCst),
        cov.xfer_skip.load(SeqCst),
        cov.xfer_take_recheck.load(SeqCst),
        cov.xfer_put_recheck.load(SeqCst),
        cov.xfer_other_shard.load(SeqCst),
        cov.slab_flush.load(SeqCst),
        cov.slab_empty.load(SeqCst),
        cov.slab_reuse.load(SeqCst),
        cov.free_list_take.load(SeqCst),
        cov.partial_repush.load(SeqCst),
        cov.oom.load(SeqCst),
        cov.overflow.load(SeqCst),
        cov.reused_block.load(SeqCst),
        cov.late_free.load(SeqCst),
        cov.trim_took.load(SeqCst),
    );
    cov
}

/// A class with a transfer cache (64 KiB slabs) of 2 shards of 1 chain, A's home shard
/// 0 and B's 1: B's overflow chain goes to shard 1, A's next refill skips the empty
/// shard 0 and takes it whole from shard 1 (blocks B freed are handed out again); B's
/// exit drain finds shard 1 full (unless A took its chain) and goes on to shard 0.
const XFER_CFG: Cfg = Cfg {
    nslab: 2,
    cap: 2,
    block_size: 16,
    xfer: true,
    xfer_shards: 2,
    xfer_max: 1,
    xfer_max_bytes: 64 * 1024,
    home: [0, 1, 1],
    limit: 2,
    n_alloc: 4,
    late_free: false,
    trim_during: false,
    main_flush: false,
    mutant: Mutant::None,
};

#[test]
fn block_life_through_the_transfer_cache() {
    let cov = block_life(XFER_CFG, Some(5));
    for (name, v) in [
        ("xfer push", &cov.xfer_push),
        ("xfer take", &cov.xfer_take),
        ("shard skip", &cov.xfer_skip),
        ("other shard", &cov.xfer_other_shard),
        ("overflow", &cov.overflow),
        ("block reuse", &cov.reused_block),
        ("slab flush", &cov.slab_flush),
    ] {
        assert!(
            v.load(SeqCst) > 0,
            "the exploration never took the {name} path"
        );
    }
}

/// A class without a transfer cache (bigger slabs), 3 blocks a slab: every flush goes
/// to the slabs; a slab partly returned goes back on the partial list and its free
/// list is allocated from; B's last free comes after its exit destructor.
#[test]
fn block_life_through_the_slabs() {
    let cfg = Cfg {
        xfer: false,
        nslab: 2,
        cap: 3,
        late_free: true,
        ..XFER_CFG
    };
    let cov = block_life(cfg, Some(3));
    for (name, v) in [
        ("slab flush", &cov.slab_flush),
        ("slab empty", &cov.slab_empty),
        ("free-list take", &cov.free_list_take),
        ("partial re-push", &cov.partial_repush),
        ("overflow", &cov.overflow),
        ("block reuse", &cov.reused_block),
        ("late free", &cov.late_free),
    ] {
        assert!(
            v.load(SeqCst) > 0,
            "the exploration never took the {name} path"
        );
    }
}

/// One block a slab, three slabs: slabs empty (reset, back to the superslab) while the
/// allocator runs and are taken again by `new_slab` (their blocks handed out again),
/// or the allocator finds none free (out of memory: a null it must survive).
#[test]
fn block_life_slab_reuse_and_out_of_memory() {
    let cfg = Cfg {
        xfer: false,
        nslab: 3,
        cap: 1,
        ..XFER_CFG
    };
    let cov = block_life(cfg, Some(3));
    for (name, v) in [
        ("slab empty", &cov.slab_empty),
        ("slab reuse", &cov.slab_reuse),
        ("out of memory", &cov.oom),
        ("block reuse", &cov.reused_block),
    ] {
        assert!(
            v.load(SeqCst) > 0,
            "the exploration never took the {name} path"
        );
    }
}

/// `trim` (`drain_transfer_caches`) on a third thread races the allocator's refill for
/// the transfer cache's chain: A's peek sees the chain, trim takes it first, and A's
/// re-check under the shard lock finds the shard empty.
#[test]
fn block_life_with_concurrent_trim() {
    let cfg = Cfg {
        trim_during: true,
        ..XFER_CFG
    };
    let cov = block_life(cfg, Some(3));
    for (name, v) in [
        ("xfer push", &cov.xfer_push),
        ("trim took", &cov.trim_took),
        ("take re-check", &cov.xfer_take_recheck),
    ] {
        assert!(
            v.load(SeqCst) > 0,
            "the exploration never took the {name} path"
        );
    }
}

/// A third thread flushes a chain while B does (both to the transfer cache, from the
/// same home shard): two puts race for a shard's last slot, and the loser, re-checking
/// `n` under the lock, goes on to the next shard or to the slabs.
#[test]
fn block_life_with_concurrent_flush() {
    let cfg = Cfg {
        main_flush: true,
        ..XFER_CFG
    };
    let cov = block_life(cfg, Some(3));
    for (name, v) in [
        ("xfer push", &cov.xfer_push),
        ("put re-check", &cov.xfer_put_recheck),
        ("other shard", &cov.xfer_other_shard),
        ("slab flush", &cov.slab_flush),
    ] {
        assert!(
            v.load(SeqCst) > 0,
            "the exploration never took the {name} path"
        );
    }
}

/// Mutation check: a put that stores its chain at the slot its peek saw free, without
/// re-reading `n` under the lock, overwrites the chain a racing put stored there.
#[test]
#[should_panic(expected = "protocol violation")]
fn block_life_mutation_xfer_put_trusts_peek_is_caught() {
    let cfg = Cfg {
        main_flush: true,
        mutant: Mutant::XferPutTrustsPeek,
        ..XFER_CFG
    };
    block_life(cfg, Some(2));
}

/// Mutation check: an overflow that flushes one block too few loses it.
#[test]
#[should_panic(expected = "protocol violation")]
fn block_life_mutation_overflow_off_by_one_is_caught() {
    let cfg = Cfg {
        mutant: Mutant::OverflowCountOffByOne,
        ..XFER_CFG
    };
    block_life(cfg, Some(1));
}

/// Mutation check: taking a shard's top chain without storing `n - 1` leaves it listed
/// while its blocks are handed out.
#[test]
#[should_panic(expected = "protocol violation")]
fn block_life_mutation_xfer_take_keeps_n_is_caught() {
    let cfg = Cfg {
        mutant: Mutant::XferTakeKeepsN,
        ..XFER_CFG
    };
    block_life(cfg, Some(1));
}

/// Mutation check: with a `Relaxed` unlock of the shard locks, the taker's reads of a
/// chain (the shard's slot, the blocks' links) are not ordered after the flusher's
/// writes, and loom must say so: the shard locks alone order a chain's hand-over.
#[test]
#[should_panic(expected = "Causality violation")]
fn block_life_mutation_shard_unlock_relaxed_is_caught() {
    let cfg = Cfg {
        mutant: Mutant::ShardUnlockRelaxed,
        ..XFER_CFG
    };
    block_life(cfg, Some(1));
}

// =======================================================================================
// (c) Once-init state machines.
// =======================================================================================

/// `bins::ExitKey`.
struct ExitKey {
    /// 0: not created, 1: being created, 2: ready, 3: failed.
    state: AtomicU32,
    key: UnsafeCell<u32>,
    /// `Release` in production; weakened by the mutation test.
    ready_order: Ordering,
    /// Ghost: spins that saw state 1 (summed over executions).
    waits: std::sync::Arc<GhostUsize>,
}

impl ExitKey {
    fn new(waits: std::sync::Arc<GhostUsize>) -> Self {
        ExitKey {
            state: AtomicU32::new(0),
            key: UnsafeCell::new(0),
            ready_order: Ordering::Release,
            waits,
        }
    }

    /// `register_current_thread`; `create` stands for `pthread_key_create` (true: ok).
    /// Returns the key this thread passes to `pthread_setspecific`, or `None` (false).
    fn register_current_thread(&self, create: impl Fn(&mut u32) -> bool) -> Option<u32> {
        let mut waited = 0;
        loop {
            match self
                .state
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => {
                    // SAFETY: (model) state 1 gives this thread exclusive access to `key`.
                    let ok = self.key.with_mut(|k| create(unsafe { &mut *k }));
                    self.state.store(if ok { 2 } else { 3 }, self.ready_order);
                }
                Err(1) => {
                    self.waits.fetch_add(1, SeqCst);
                    spin_wait(&mut waited); // core::hint::spin_loop()
                }
                Err(2) => break,
                Err(_) => return None,
            }
        }
        // SAFETY: (model) state 2: `key` is initialized and immutable.
        Some(self.key.with(|k| unsafe { *k }))
    }
}

fn exit_key_model(create_ok: bool, ready_order: Ordering) {
    let waits = std::sync::Arc::new(GhostUsize::new(0));
    let waits2 = waits.clone();
    check(Some(5), move || {
        let creates = std::sync::Arc::new(GhostUsize::new(0));
        let mut k = ExitKey::new(waits2.clone());
        k.ready_order = ready_order;
        let k = Arc::new(k);
        let create = {
            let creates = creates.clone();
            move |key: &mut u32| {
                creates.fetch_add(1, SeqCst);
                *key = 42;
                create_ok
            }
        };
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (k, create) = (k.clone(), create.clone());
                thread::spawn(move || k.register_current_thread(create))
            })
            .collect();
        let mine = k.register_current_thread(create);
        let expect = if create_ok { Some(42) } else { None };
        assert_eq!(mine, expect);
        for h in hs {
            assert_eq!(h.join().unwrap(), expect);
        }
        assert_eq!(
            creates.load(SeqCst),
            1,
            "the key was created more than once"
        );
    });
    assert!(
        waits.load(SeqCst) > 0,
        "no execution had a thread wait for the creator"
    );
}

/// Three threads register at once: exactly one creates the key, the others spin until
/// it is ready and then read the same key (no race on it).
#[test]
fn exit_key_one_creator_all_see_the_key() {
    exit_key_model(true, Ordering::Release);
}

/// Key creation fails: it is tried once, and every caller gets false.
#[test]
fn exit_key_failure_is_seen_by_all() {
    exit_key_model(false, Ordering::Release);
}

/// Mutation check: a `Relaxed` "ready" store does not publish the key.
#[test]
#[should_panic(expected = "Causality violation")]
fn exit_key_mutation_relaxed_ready_is_caught() {
    exit_key_model(true, Ordering::Relaxed);
}

/// The registry's table: `header` stands for the mapping's contents as the mapper
/// leaves them (written before publication), `entries` for the `AtomicU8` kinds.
struct Table {
    header: UnsafeCell<usize>,
    entries: [AtomicU8; 2],
    id: usize,
}

const TABLE_READY: usize = 0x7AB1E;

/// `registry::MAP` and the functions around it.
struct Registry {
    map: AtomicPtr<Table>,
    /// Ghost: tables mapped and unmapped.
    maps: GhostUsize,
    unmaps: GhostUsize,
}

impl Registry {
    /// `registry::init`.
    fn init(&self) -> *mut Table {
        // os::map(ENTRIES)
        let id = self.maps.fetch_add(1, SeqCst);
        let t = Box::new(Table {
            header: UnsafeCell::new(0),
            entries: [AtomicU8::new(0), AtomicU8::new(0)],
            id,
        });
        // SAFETY: (model) our own fresh table.
        t.header.with_mut(|h| unsafe { *h = TABLE_READY });
        let p = Box::into_raw(t);
        match self.map.compare_exchange(
            std::ptr::null_mut(),
            p,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => p,
            Err(winner) => {
                // os::unmap: our own table, never published.
                // SAFETY: `p` came from Box::into_raw above and was not published.
                drop(unsafe { Box::from_raw(p) });
                self.unmaps.fetch_add(1, SeqCst);
                winner
            }
        }
    }

    /// `registry::map`.
    fn map(&self) -> *mut Table {
        let m = self.map.load(Ordering::Acquire);
        if m.is_null() { self.init() } else { m }
    }

    /// `registry::mark` of one entry; returns the table it used.
    fn mark(&self, i: usize, kind: u8) -> *mut Table {
        let m = self.map();
        // SAFETY: a published table lives until the model's end.
        let t = unsafe { &*m };
        // SAFETY: (model) the table's contents were written before publication.
        assert_eq!(t.header.with(|h| unsafe { *h }), TABLE_READY);
        t.entries[i].store(kind, Ordering::Release);
        m
    }

    /// `registry::kind_of`.
    fn kind_of(&self, i: usize) -> u8 {
        let m = self.map.load(Ordering::Acquire);
        if m.is_null() {
            return 0;
        }
        // SAFETY: a published table lives until the model's end.
        let t = unsafe { &*m };
        // SAFETY: (model) the table's contents were written before publication.
        assert_eq!(t.header.with(|h| unsafe { *h }), TABLE_READY);
        t.entries[i].load(Ordering::Acquire)
    }
}

/// Two threads race to map the registry while a third looks an address up: exactly one
/// table is published and survives, the loser unmaps its own, every caller uses the
/// published one and sees its contents, and a lookup sees "not mapped" or the table.
#[test]
fn registry_cas_publish_one_winner() {
    let lost = std::sync::Arc::new(GhostUsize::new(0));
    let lost2 = lost.clone();
    check(None, move || {
        let r = Arc::new(Registry {
            map: AtomicPtr::new(std::ptr::null_mut()),
            maps: GhostUsize::new(0),
            unmaps: GhostUsize::new(0),
        });
        let hs: Vec<_> = (0..2)
            .map(|i| {
                let r = r.clone();
                thread::spawn(move || {
                    let m = r.mark(i, 1);
                    assert_eq!(r.kind_of(i), 1);
                    m as usize
                })
            })
            .collect();
        let k = r.kind_of(0);
        assert!(k == 0 || k == 1);
        let got: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        let published = r.map.load(Ordering::Acquire);
        assert!(!published.is_null());
        assert!(got.iter().all(|&m| m == published as usize));
        let (maps, unmaps) = (r.maps.load(SeqCst), r.unmaps.load(SeqCst));
        assert!((1..=2).contains(&maps));
        lost2.fetch_add(unmaps, SeqCst);
        assert_eq!(
            maps - unmaps,
            1,
            "a table leaked or the published one was unmapped"
        );
        // SAFETY: the published table, from Box::into_raw; every user has joined.
        let t = unsafe { Box::from_raw(published) };
        assert!(t.id < maps);
    });
    assert!(lost.load(SeqCst) > 0, "no execution had a losing mapper");
}

/// Three 4 MiB units of address space: `owner` stands for the kernel's mappings (0: free,
/// else the id of the thread whose mapping holds it; `mmap` takes the lowest free unit,
/// `munmap` and the source of `mremap` free it), `kind` for the registry's bytes.
struct Units {
    owner: [AtomicUsize; 3],
    kind: [AtomicU8; 3],
}

impl Units {
    /// `os::map_aligned`: the lowest free unit, claimed for `id`; `None` when none is free.
    fn map(&self, id: usize) -> Option<usize> {
        (0..3).find(|&u| {
            self.owner[u]
                .compare_exchange(0, id, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// `os::unmap` (and the source side of `os::remap_fixed`).
    fn unmap(&self, u: usize) {
        self.owner[u].store(0, Ordering::Release);
    }

    /// `registry::mark`.
    fn mark(&self, u: usize, kind: u8) {
        self.kind[u].store(kind, Ordering::Release);
    }
}

/// The registry's ordering rule (`registry` module docs), on `hakmem-large`'s
/// `large_realloc` move: thread 1 owns a large block in unit 0 and moves it by `mremap`
/// to a fresh unit; thread 2 maps a large block at the same time (it may land on unit 0
/// the moment the move frees it) and registers it. When both are done, every unit that
/// holds a live block must be registered `Large`. With `late_unmark` (the order before
/// the fix: unmark the old unit after the move) thread 2's registration can be erased.
fn registry_move_model(late_unmark: bool) {
    check(None, move || {
        let m = Arc::new(Units {
            owner: [
                AtomicUsize::new(1),
                AtomicUsize::new(0),
                AtomicUsize::new(0),
            ],
            kind: [AtomicU8::new(2), AtomicU8::new(0), AtomicU8::new(0)],
        });
        let mover = {
            let m = m.clone();
            thread::spawn(move || {
                let dst = m.map(1).expect("three units, two mappers");
                m.mark(dst, 2);
                if !late_unmark {
                    m.mark(0, 0);
                }
                m.unmap(0); // the move: the source range is gone
                if late_unmark {
                    m.mark(0, 0);
                }
                dst
            })
        };
        let mine = m.map(2);
        if let Some(u) = mine {
            m.mark(u, 2);
        }
        let moved = mover.join().unwrap();
        for u in [Some(moved), mine].into_iter().flatten() {
            ensure!(
                m.kind[u].load(Ordering::Acquire) == 2,
                "unit {u} holds a live large block but the registry says not ours"
            );
        }
    });
}

#[test]
fn registry_unmark_before_move() {
    registry_move_model(false);
}

#[test]
#[should_panic(expected = "protocol violation")]
fn registry_mutation_unmark_after_move_is_caught() {
    registry_move_model(true);
}

/// `LINK_SECRET`.
struct Secret {
    v: AtomicUsize,
    /// Ghost: CAS losers (summed over executions).
    lost: std::sync::Arc<GhostUsize>,
}

impl Secret {
    /// `init_link_secret` with `random` standing for getrandom's result.
    fn init(&self, random: usize) -> usize {
        let v = random | 1;
        match self
            .v
            .compare_exchange(0, v, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => v,
            Err(winner) => {
                self.lost.fetch_add(1, SeqCst);
                winner
            }
        }
    }

    /// `link_secret`.
    fn link_secret(&self, random: usize) -> usize {
        let v = self.v.load(Ordering::Relaxed);
        if v != 0 { v } else { self.init(random) }
    }
}

/// Three threads need the secret at once (each would draw a different one): all of
/// them, every time, use the one value that won, so a link one thread encodes decodes
/// in another.
#[test]
fn link_secret_one_value_for_everyone() {
    let lost = std::sync::Arc::new(GhostUsize::new(0));
    let lost2 = lost.clone();
    check(None, move || {
        let s = Arc::new(Secret {
            v: AtomicUsize::new(0),
            lost: lost2.clone(),
        });
        let hs: Vec<_> = (1..3)
            .map(|i| {
                let s = s.clone();
                thread::spawn(move || (s.link_secret(i << 4), s.link_secret(i << 4)))
            })
            .collect();
        let (a, b) = (s.link_secret(0), s.link_secret(0));
        let fin = s.v.load(Ordering::Relaxed);
        assert!(fin != 0 && fin & 1 == 1);
        assert!([1, 0x11, 0x21].contains(&fin));
        assert_eq!((a, b), (fin, fin));
        for h in hs {
            assert_eq!(h.join().unwrap(), (fin, fin));
        }
    });
    assert!(
        lost.load(SeqCst) > 0,
        "no execution had a losing initializer"
    );
}

// =======================================================================================
// (d) CacheRegistry: owners write relaxed counts, a reader sums them under the lock.
// =======================================================================================

/// A `CacheNode` (index links instead of pointers); `alive` stands for the thread-local
/// storage holding it (false: the thread is gone and the memory reused).
#[derive(Clone, Copy)]
struct Node {
    next: usize,
    prev: usize,
    bins: usize,
    n: usize,
    first_class: usize,
    alive: bool,
}

const NONE: usize = usize::MAX;
const REG_LIMIT: u32 = 2;

/// One thread's cache: its node and its bins' counts.
struct Tls {
    node: UnsafeCell<Node>,
    counts: Vec<AtomicU32>,
}

/// `bins::CacheRegistry` with the thread caches it links.
struct CacheRegistry {
    lock: RawLock,
    head: UnsafeCell<usize>,
    tls: Vec<Tls>,
    /// Ghost: `unregister(i)` has returned.
    unregistered: Vec<GhostBool>,
    /// Ghost: nodes the last `cached` walked.
    walked: GhostUsize,
}

impl CacheRegistry {
    fn node<R>(&self, i: usize, f: impl FnOnce(&mut Node) -> R) -> R {
        // SAFETY: (model) the registry lock is held, or `i` is the caller's own node;
        // loom checks the claim.
        self.tls[i].node.with_mut(|p| f(unsafe { &mut *p }))
    }

    fn head<R>(&self, f: impl FnOnce(&mut usize) -> R) -> R {
        // SAFETY: (model) the registry lock is held.
        self.head.with_mut(|p| f(unsafe { &mut *p }))
    }

    /// `register`.
    fn register(&self, i: usize, first_class: usize) {
        self.lock.lock();
        let n = self.tls[i].counts.len();
        let next = self.head(|h| *h);
        self.node(i, |nd| {
            nd.bins = i;
            nd.n = n;
            nd.first_class = first_class;
            nd.prev = NONE;
            nd.next = next;
        });
        if next != NONE {
            self.node(next, |nx| nx.prev = i);
        }
        self.head(|h| *h = i);
        self.lock.unlock();
    }

    /// `unregister`.
    fn unregister(&self, i: usize) {
        self.lock.lock();
        let (prev, next) = self.node(i, |nd| (nd.prev, nd.next));
        if prev == NONE {
            self.head(|h| *h = next);
        } else {
            self.node(prev, |p| p.next = next);
        }
        if next != NONE {
            self.node(next, |nx| nx.prev = prev);
        }
        self.node(i, |nd| {
            nd.next = NONE;
            nd.prev = NONE;
        });
        self.lock.unlock();
    }

    /// `cached`, with checks: the list is well formed, and no node whose `unregister`
    /// has returned (or whose thread is gone) is visited.
    fn cached(&self) -> (u64, u64) {
        let (mut blocks, mut bytes) = (0u64, 0u64);
        self.lock.lock();
        let (mut n, mut prev, mut steps) = (self.head(|h| *h), NONE, 0);
        while n != NONE {
            ensure!(steps < self.tls.len(), "cycle in the registry list");
            ensure!(
                !self.unregistered[n].load(SeqCst),
                "reader saw node {n} after its unregister returned"
            );
            let nd = self.node(n, |nd| *nd);
            ensure!(nd.alive, "reader saw a node whose thread is gone");
            ensure!(nd.prev == prev, "torn registry list at node {n}");
            for k in 0..nd.n {
                let c = self.tls[nd.bins].counts[k].load(Ordering::Relaxed) as u64;
                ensure!(c <= REG_LIMIT as u64, "count {c} was never written");
                blocks += c;
                bytes += c * 16 * (nd.first_class + k + 1) as u64;
            }
            prev = n;
            n = nd.next;
            steps += 1;
        }
        self.walked.store(steps, SeqCst);
        self.lock.unlock();
        (blocks, bytes)
    }
}

/// `Bin::set_count(count() + 1)` (a push) on the owner's bin `k`.
fn bump(r: &CacheRegistry, i: usize, k: usize, d: i32) {
    let c = &r.tls[i].counts[k];
    c.store(
        (c.load(Ordering::Relaxed) as i32 + d) as u32,
        Ordering::Relaxed,
    );
}

/// Two threads register their caches, push (relaxed count stores), and exit (drain:
/// count 0; unregister; then their storage is reused); a reader sums the counts
/// meanwhile. The reader never sees a torn list, a node after its `unregister`
/// returned, or a count that was not written; loom finds no unordered access to a node
/// (the nodes are written after exit, so a reader touching one late is a race).
#[test]
fn cache_registry_reader_and_owners() {
    let saw_two = std::sync::Arc::new(GhostUsize::new(0));
    let saw_blocks = std::sync::Arc::new(GhostUsize::new(0));
    let (saw_two2, saw_blocks2) = (saw_two.clone(), saw_blocks.clone());
    check(Some(3), move || {
        let r = Arc::new(CacheRegistry {
            lock: RawLock::new(),
            head: UnsafeCell::new(NONE),
            tls: (0..2)
                .map(|_| Tls {
                    node: UnsafeCell::new(Node {
                        next: NONE,
                        prev: NONE,
                        bins: NONE,
                        n: 0,
                        first_class: 0,
                        alive: true,
                    }),
                    counts: vec![AtomicU32::new(0)],
                })
                .collect(),
            unregistered: (0..2).map(|_| GhostBool::new(false)).collect(),
            walked: GhostUsize::new(0),
        });
        let hs: Vec<_> = (0..2)
            .map(|i| {
                let r = r.clone();
                thread::spawn(move || {
                    // thread_init
                    r.register(i, i);
                    bump(&r, i, 0, 1);
                    // on_thread_exit: drain, then unregister.
                    r.tls[i].counts[0].store(0, Ordering::Relaxed);
                    r.unregister(i);
                    r.unregistered[i].store(true, SeqCst);
                    // The thread-local storage is freed and reused.
                    r.node(i, |nd| {
                        *nd = Node {
                            next: 7,
                            prev: 7,
                            bins: 7,
                            n: 9,
                            first_class: 9,
                            alive: false,
                        }
                    });
                })
            })
            .collect();
        let (blocks, bytes) = r.cached();
        ensure!(
            blocks <= 2 && bytes <= 16 * 3,
            "sum {blocks} {bytes} too big"
        );
        if r.walked.load(SeqCst) == 2 {
            saw_two2.fetch_add(1, SeqCst);
        }
        if blocks > 0 {
            saw_blocks2.fetch_add(1, SeqCst);
        }
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(r.cached(), (0, 0));
        assert_eq!(r.head(|h| *h), NONE);
    });
    assert!(saw_two.load(SeqCst) > 0, "the reader never saw two caches");
    assert!(
        saw_blocks.load(SeqCst) > 0,
        "the reader never saw a cached block"
    );
}
