//! Model checks of hakmem's cross-thread protocols with [loom](https://docs.rs/loom),
//! run on **the shipped code**.
//!
//! Run with (on 2 cores: about a minute to build, then well under a minute; a separate
//! target directory keeps the normal build's artifacts, which `--cfg loom` would
//! otherwise invalidate):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p hakmem-ss-allocation --test loom_protocol --release
//! ```
//!
//! Without `--cfg loom` this file compiles to nothing. `LOOM_MAX_PREEMPTIONS=n`
//! overrides every test's preemption bound (a deeper, slower search).
//!
//! Built with `--cfg loom`, the boxes' shared state is made of loom's types through the
//! sync shim `hakmem_os_stats::sync`: the lock (`Locked`), the class locks and central
//! state (`CENTRAL`), the transfer-cache shards (`XFER`: `n` and the locked chains), the
//! class counters, the live-superslab count, the release policy's caches and the
//! thread-cache registry (`bins::CacheRegistry`, its list behind a `Locked`) are loom
//! atomics and cells, in `static`s that loom creates afresh for each execution
//! (`sync_static!`) or in values the tests create. So the tests below call `refill`,
//! `flush`, `drain_transfer_caches`, `validate_class`, `Locked::lock` and the
//! registry's `register` / `unregister` / `len` / `cached` themselves, and loom explores
//! their interleavings and checks every access to a lock's data for races.
//! Memory is real: superslabs are mapped with `mmap` (loom does not see system calls;
//! they are not synchronization), each execution gives every block back and ends with
//! `release_policy::trim()`, so nothing is left mapped. Not under loom's eye: the
//! superslab headers (atomics in mapped memory, which loom's objects cannot live in;
//! they are written under the class lock), the registry's table (atomic bytes in a
//! mapping, which outlives the executions like the mappings it describes), the OS box's
//! counters and the gate snapshot; `home_shard` is 0 for every thread under loom.
//!
//! **Mutation checks** (`hakmem_os_stats::sync::mutation`, compiled only under loom):
//! a switch breaks one step of the shipped code (a `Relaxed` unlock, in the plain lock
//! test and in the thread-cache registry's, a transfer-cache
//! put that trusts its unlocked peek at `n`, an empty superslab unmarked in the registry
//! after it went to the release policy) and the model that covers that step must fail,
//! which shows that the checks can fail at all. The registry-ordering rule of
//! `hakmem-large`'s `large_realloc` move stays a model (`registry_move_model`): the
//! large box is not a dependency of this crate.
#![cfg(loom)]

use hakmem_os_stats::lock::Locked;
use hakmem_os_stats::sync::mutation;
use hakmem_ss_allocation::bins::{Bin, CacheRegistry};
use hakmem_ss_allocation::{
    class_counts, decay_idle_slabs, drain_transfer_caches, flush, next_of, refill, refill_upto,
    superslabs_live, validate_class,
};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use loom::thread;

/// A class with 64 KiB slabs (so flushes of two or more blocks go to the transfer cache):
/// 128-byte blocks.
const CLS: usize = 7;
/// A class with superslabs of its own (64 KiB slabs of 5,120-byte blocks: not a pool
/// class), for the race between two classes on one cached superslab.
const CLS2: usize = 28;
/// Another pool class (80-byte blocks), for two classes taking slabs of one pool
/// superslab.
const CLS3: usize = 4;
const _: () = assert!(
    hakmem_ss_allocation::is_pool_class(CLS)
        && hakmem_ss_allocation::is_pool_class(CLS3)
        && !hakmem_ss_allocation::is_pool_class(CLS2)
        && hakmem_ss_allocation::class::slab_shift(CLS2) == 16
);

/// `assert!` with a common prefix, so the mutation tests can expect it.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        assert!($cond, "protocol violation: {}", format_args!($($msg)+))
    };
}

/// The tests share the mutation switches (and the process's mappings): one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `f` under loom with at most `bound` preemptions (`None`: unbounded, unless
/// `LOOM_MAX_PREEMPTIONS` is set) and the mutations `bits` switched on.
fn model(bound: Option<usize>, bits: u32, f: impl Fn() + Sync + Send + 'static) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    struct Off;
    impl Drop for Off {
        fn drop(&mut self) {
            mutation::set(0);
        }
    }
    let _off = Off;
    mutation::set(bits);
    let mut b = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        b.preemption_bound = bound;
    }
    // The decay pass visits every class (a relaxed load or two each): more branches per
    // execution than loom's default allows.
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        b.max_branches = 20_000;
    }
    let f = std::sync::Arc::new(f);
    // The model's main thread has loom's small default stack (32 KiB), too small for the
    // allocator's paths: the body runs in a thread of its own.
    b.check(move || {
        let f = f.clone();
        spawn(move || f()).join().unwrap();
    });
}

/// `loom::thread::spawn` with a stack big enough for the allocator's paths.
fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .expect("loom spawn")
}

/// Stack of every model thread.
const STACK: usize = 1 << 20;

/// The blocks of a null-terminated chain, each checked to be a block of `cls`.
fn blocks(head: *mut u8, cls: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut b = head;
    while !b.is_null() {
        ensure!(
            validate_class(b) == Some(cls),
            "a block handed out is not a live block of its class"
        );
        v.push(b as usize);
        // SAFETY: a free block of a chain we own.
        b = unsafe { next_of(b) };
    }
    v
}

/// The end of every execution: every block is back, so the transfer caches drain to
/// the slabs, every superslab is empty and released, the counters are zero; then the
/// release policy's cache is emptied so nothing stays mapped.
fn all_back(classes: &[usize]) {
    drain_transfer_caches();
    for &c in classes {
        ensure!(
            class_counts(c) == (0, 0),
            "class {c}: blocks out or free after all came back: {:?}",
            class_counts(c)
        );
    }
    ensure!(
        superslabs_live() == 0,
        "a superslab is still live after every block came back"
    );
    hakmem_release_policy::trim();
}

// =======================================================================================
// (a) The lock: `hakmem_os_stats::lock::Locked`.
// =======================================================================================

/// Two threads each add one under the lock, twice: no update is lost, and loom finds no
/// unordered access to the data (mutual exclusion plus the Acquire/Release hand-over).
fn locked_model(bits: u32) {
    model(Some(3), bits, || {
        let l = Arc::new(Locked::new(0u32));
        let t = {
            let l = l.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    *l.lock() += 1;
                }
            })
        };
        *l.lock() += 1;
        if let Some(mut g) = l.try_lock() {
            *g += 1;
        } else {
            *l.lock() += 1;
        }
        t.join().unwrap();
        ensure!(*l.lock() == 4, "a lost update");
    });
}

#[test]
fn locked_two_threads_never_lose_an_update() {
    locked_model(0);
}

/// Mutation: with a `Relaxed` unlock the next holder's access to the data is not ordered
/// after the previous holder's; loom reports the race.
#[test]
#[should_panic(expected = "Causality violation")]
fn locked_mutation_relaxed_unlock_is_caught() {
    locked_model(mutation::RELAXED_UNLOCK);
}

// =======================================================================================
// (b) Central lists and transfer cache: `refill`, `refill_upto`, `flush`.
// =======================================================================================

/// Two threads take blocks of one class and give them back (the chains go to the
/// transfer cache, racing for its shards): every block handed out is a live block of the
/// class, held by one thread, and all of them come back.
fn refill_flush_model(bits: u32) {
    model(Some(2), bits, || {
        let t = spawn(|| {
            let c = refill(CLS, 2);
            ensure!(c.count == 2, "a short refill");
            let v = blocks(c.head, CLS);
            // SAFETY: the chain from `refill`, given back whole.
            unsafe { flush(CLS, c.head, c.count) };
            v
        });
        let c = refill(CLS, 2);
        ensure!(c.count == 2, "a short refill");
        let mine = blocks(c.head, CLS);
        // SAFETY: as above.
        unsafe { flush(CLS, c.head, c.count) };
        let theirs = t.join().unwrap();
        ensure!(
            mine.len() == 2 && theirs.len() == 2,
            "a chain's count and links disagree"
        );
        all_back(&[CLS]);
    });
}

#[test]
fn refill_and_flush_from_two_threads() {
    refill_flush_model(0);
}

/// Mutation: `xfer_put` trusts its unlocked peek at a shard's `n`, so two flushes can
/// write the same slot and one chain is lost: its blocks never come back and their
/// superslab stays live.
#[test]
#[should_panic(expected = "protocol violation")]
fn xfer_put_mutation_trusting_the_peek_is_caught() {
    refill_flush_model(mutation::XFER_PUT_TRUSTS_PEEK);
}

/// A chain waits in the transfer cache; two threads refill at once, each willing to take
/// a whole chain: exactly one gets it (the shard's `n` is re-read under its lock), the
/// other carves from the slab, and nobody holds a block twice.
#[test]
fn transfer_cache_chain_goes_to_one_taker() {
    model(Some(2), 0, || {
        let c = refill(CLS, 4);
        ensure!(c.count == 4, "a short refill");
        // SAFETY: the chain from `refill`, given back whole (to the transfer cache).
        unsafe { flush(CLS, c.head, c.count) };
        let take = || {
            let c = refill_upto(CLS, 1, 8);
            let v = blocks(c.head, CLS);
            ensure!(
                v.len() == c.count as usize,
                "a chain's count and links disagree"
            );
            (c.head as usize, v)
        };
        let t = spawn(take);
        let (head, mine) = take();
        let (head2, theirs) = t.join().unwrap();
        ensure!(
            mine.iter().all(|b| !theirs.contains(b)),
            "one block handed to two threads"
        );
        ensure!(
            mine.len() + theirs.len() == 5,
            "the chain went to {} and {} blocks",
            mine.len(),
            theirs.len()
        );
        for h in [head, head2] {
            let n = blocks(h as *mut u8, CLS).len() as u32;
            // SAFETY: each chain from `refill_upto`, given back whole.
            unsafe { flush(CLS, h as *mut u8, n) };
        }
        all_back(&[CLS]);
    });
}

/// The decay pass drains a class's transfer cache (as it does one that no refill used for
/// an interval; `all` drains every one) while another thread takes the blocks waiting
/// there and gives its own back: each block goes to exactly one place, none is handed out
/// twice, and all of them come back.
#[test]
fn decay_pass_drains_while_a_refill_and_a_flush_race() {
    model(Some(2), 0, || {
        let c = refill(CLS, 2);
        ensure!(c.count == 2, "a short refill");
        let first = blocks(c.head, CLS);
        // SAFETY: the chain from `refill`, given back whole (to the transfer cache).
        unsafe { flush(CLS, c.head, c.count) };
        let t = spawn(|| {
            decay_idle_slabs(true);
        });
        let c = refill(CLS, 2);
        ensure!(c.count == 2, "a short refill");
        let mine = blocks(c.head, CLS);
        ensure!(
            mine.len() == 2 && mine[0] != mine[1],
            "a refill handed out {mine:?}"
        );
        ensure!(
            mine.iter()
                .all(|b| first.contains(b) || validate_class(*b as *const u8) == Some(CLS)),
            "a refill handed out a block that is not one"
        );
        // SAFETY: as above.
        unsafe { flush(CLS, c.head, c.count) };
        t.join().unwrap();
        all_back(&[CLS]);
    });
}

// =======================================================================================
// (c) The registry's ordering rule on the shipped code: an empty superslab is unmarked
//     before the release policy may hand it to another class.
// =======================================================================================

/// Thread 1 takes a block of one class and gives it back, so its superslab empties and
/// goes to the release policy's cache; thread 2 meanwhile takes a block of another
/// class, maybe from that very superslab. Thread 2's block must validate as its class
/// (the registry must say "ours") however the two interleave.
fn registry_release_model(bits: u32) {
    model(Some(2), bits, || {
        let t = spawn(|| {
            let c = refill(CLS, 1);
            ensure!(c.count == 1, "a short refill");
            // SAFETY: the block from `refill`, given back.
            unsafe { flush(CLS, c.head, 1) };
        });
        let c = refill(CLS2, 1);
        ensure!(c.count == 1, "a short refill");
        t.join().unwrap();
        ensure!(
            validate_class(c.head) == Some(CLS2),
            "a live block's superslab is not registered"
        );
        // SAFETY: the block from `refill`, given back.
        unsafe { flush(CLS2, c.head, 1) };
        all_back(&[CLS, CLS2]);
    });
}

#[test]
fn registry_unmark_before_release() {
    registry_release_model(0);
}

/// Two pool classes: thread 1 takes a block of one and gives it back, so its slab
/// empties and goes back to the pool; thread 2 meanwhile takes a block of the other,
/// maybe in that very slab, now of its class. Thread 2's block validates as its class,
/// thread 1's as nothing once both slabs are back, however the two interleave.
#[test]
fn pool_slab_changes_class() {
    model(Some(2), 0, || {
        let t = spawn(|| {
            let c = refill(CLS, 1);
            ensure!(c.count == 1, "a short refill");
            ensure!(
                validate_class(c.head) == Some(CLS),
                "a pool block of the wrong class"
            );
            // SAFETY: the block from `refill`, given back.
            unsafe { flush(CLS, c.head, 1) };
        });
        let c = refill(CLS3, 1);
        ensure!(c.count == 1, "a short refill");
        ensure!(
            validate_class(c.head) == Some(CLS3),
            "a pool block of the wrong class"
        );
        t.join().unwrap();
        ensure!(
            validate_class(c.head) == Some(CLS3),
            "a live pool block changed class"
        );
        // SAFETY: the block from `refill`, given back.
        unsafe { flush(CLS3, c.head, 1) };
        all_back(&[CLS, CLS3]);
    });
}

/// Mutation: unmark after the release: the other class can take the superslab from the
/// cache and register it, and the late unmark erases its registration.
#[test]
#[should_panic(expected = "protocol violation")]
fn registry_mutation_unmark_after_release_is_caught() {
    registry_release_model(mutation::LATE_UNMARK);
}

// =======================================================================================
// (d) The thread-cache registry: `bins::CacheRegistry` (the process's one registry of
//     thread caches, `hakmem-tiny-fast`'s `REGISTRY`).
// =======================================================================================

/// Two threads each register a cache, read the registry (`len`, `cached`), and
/// unregister, racing on the one list: every access to the list goes through the
/// registry's `Locked`, so loom checks it for races; the list never loses or duplicates a
/// node, and after both are gone the freed nodes are reused (no new memory per thread).
/// Each execution's registry maps one 64 KiB node chunk, which it never unmaps (as in
/// production, where the registry is a `static`): a few MiB of address space over the
/// run, touched one page at a time.
fn cache_registry_model(bits: u32) {
    model(Some(2), bits, || {
        let r = Arc::new(CacheRegistry::new());
        // The threads' "bins" (in a real thread, its TLS): alive for the whole execution.
        // (As an address: a `Bin` is its own thread's, not `Sync`; only the registry
        // reads it from other threads, its atomic count.)
        let bins = Box::leak(Box::new([const { Bin::EMPTY }; 4])).as_ptr() as usize;
        let use_it = move |r: &CacheRegistry, half: usize| {
            let mine = (bins as *const Bin).wrapping_add(2 * half);
            // SAFETY: `bins` is leaked (lives forever); the node is unregistered below.
            let node = unsafe { r.register(mine, 2, 3) };
            ensure!(!node.is_null(), "no node");
            let n = r.len();
            ensure!(
                (1..=2).contains(&n),
                "{n} caches listed with one or two live"
            );
            ensure!(r.cached() == (0, 0), "empty bins counted as holding blocks");
            // SAFETY: registered just above, unregistered once.
            unsafe { r.unregister(node) };
            node as usize
        };
        let t = {
            let r = r.clone();
            spawn(move || use_it(&r, 1))
        };
        let mine = use_it(&r, 0);
        let theirs = t.join().unwrap();
        ensure!(r.is_empty(), "a node stayed listed after its unregister");
        // The freed nodes are on the free list: the next registration reuses one.
        // SAFETY: as above.
        let again = unsafe { r.register(bins as *const Bin, 4, 0) };
        ensure!(
            again as usize == mine || again as usize == theirs,
            "a freed node was not reused"
        );
        ensure!(r.len() == 1, "one registration, {} listed", r.len());
        // SAFETY: registered just above.
        unsafe { r.unregister(again) };
        ensure!(r.is_empty(), "the last node stayed listed");
    });
}

#[test]
fn cache_registry_from_two_threads() {
    cache_registry_model(0);
}

/// Mutation: with a `Relaxed` unlock, one thread's walk of the list is not ordered after
/// the other's relinking; loom reports the race on the registry's data.
#[test]
#[should_panic(expected = "Causality violation")]
fn cache_registry_mutation_relaxed_unlock_is_caught() {
    cache_registry_model(mutation::RELAXED_UNLOCK);
}

// =======================================================================================
// (e) A model (not the shipped code): `hakmem-large`'s `large_realloc` move.
// =======================================================================================

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
    model(None, 0, move || {
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
