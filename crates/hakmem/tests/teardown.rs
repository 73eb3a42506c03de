//! Raw pthreads (through `libc`) whose first allocation through the `GlobalAlloc` comes
//! during their own teardown: from a pthread key destructor in destructor round 1, 2, 3
//! or 4 (glibc runs at most 4), as a `malloc` or as the `free` of another thread's
//! block, on glibc's stacks and on stacks the test maps itself, hands over with
//! `pthread_attr_setstack` and unmaps after `pthread_join`. Each thread's cache must be
//! drained and leave the cache registry: the RSS stays flat, `stats()` counts no
//! stranded cache, and walking the registry (`stats()`, the next thread's set-up) never
//! touches a dead thread's memory. (`crates/hakmem-preload/tests/c/teardown.c` does the
//! same for C programs under `LD_PRELOAD`.)

use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

const STACK_SIZE: usize = 256 * 1024;
const HANDED_SIZE: usize = 16000;

/// The tests measure RSS: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());
static DTOR_CALLS: AtomicU64 = AtomicU64::new(0);

struct Key(libc::pthread_key_t);

/// The program's own key (created after hakmem set itself up, so with a higher index
/// than any key hakmem would have created at start-up).
fn key() -> libc::pthread_key_t {
    static KEY: std::sync::OnceLock<Key> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut k = 0;
        // SAFETY: `k` is a valid out-parameter; `dtor` is an `extern "C"` function.
        assert_eq!(unsafe { libc::pthread_key_create(&mut k, Some(dtor)) }, 0);
        Key(k)
    })
    .0
}

/// What a thread's key value says (packed into the pointer-sized value).
#[derive(Clone, Copy)]
struct Plan {
    round: usize,
    target: usize,
    free_first: bool,
    /// MODE free: the block (of the main thread) to free, as an address.
    block: usize,
}

impl Plan {
    fn pack(self) -> *mut libc::c_void {
        // A block address is 16-byte aligned and below 2^47: room for 3 + 3 + 1 bits.
        (self.block << 8 | self.round | self.target << 3 | (self.free_first as usize) << 6)
            as *mut libc::c_void
    }

    fn unpack(v: *mut libc::c_void) -> Plan {
        let x = v as usize;
        Plan {
            round: x & 7,
            target: (x >> 3) & 7,
            free_first: (x >> 6) & 1 == 1,
            block: x >> 8,
        }
    }
}

extern "C" fn dtor(v: *mut libc::c_void) {
    DTOR_CALLS.fetch_add(1, Ordering::Relaxed);
    let mut plan = Plan::unpack(v);
    if plan.round < plan.target {
        // Not yet: be called again in the next round, without allocating.
        plan.round += 1;
        // SAFETY: the key exists; the value is not a pointer we own.
        unsafe { libc::pthread_setspecific(key(), plan.pack()) };
        return;
    }
    if plan.free_first {
        // The thread's first call: the free of a block the main thread allocated.
        // SAFETY: `block` came from `Box::into_raw` of this type, freed once.
        drop(unsafe { Box::from_raw(plan.block as *mut [u8; HANDED_SIZE]) });
        return;
    }
    // The thread's first calls: a tiny and a mid block (each refills a bin).
    let a = std::hint::black_box(vec![1u8; 48]);
    let b = std::hint::black_box(vec![2u8; 20000]);
    assert!(a[47] == 1 && b[19999] == 2);
}

extern "C" fn body(arg: *mut libc::c_void) -> *mut libc::c_void {
    // No allocation here: the first one happens in the destructor.
    // SAFETY: the key exists.
    unsafe { libc::pthread_setspecific(key(), arg) };
    ptr::null_mut()
}

/// Start and join one raw pthread per plan, one after the other.
fn run_threads(plans: &[Plan], own_stack: bool) {
    for plan in plans {
        // SAFETY: plain pthread and mmap calls on values owned here; the stack is
        // unmapped only after the thread was joined.
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_attr_init(&mut attr), 0);
            let mut stack = ptr::null_mut();
            if own_stack {
                stack = libc::mmap(
                    ptr::null_mut(),
                    STACK_SIZE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(stack, libc::MAP_FAILED);
                assert_eq!(libc::pthread_attr_setstack(&mut attr, stack, STACK_SIZE), 0);
            }
            let mut t: libc::pthread_t = 0;
            assert_eq!(libc::pthread_create(&mut t, &attr, body, plan.pack()), 0);
            assert_eq!(libc::pthread_join(t, ptr::null_mut()), 0);
            libc::pthread_attr_destroy(&mut attr);
            if own_stack {
                libc::munmap(stack, STACK_SIZE);
                // Plug the hole, so that the next stack does not land on the same
                // addresses: a pointer into the dead thread's TLS faults.
                let plug = libc::mmap(
                    stack,
                    STACK_SIZE,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE
                        | libc::MAP_ANONYMOUS
                        | libc::MAP_NORESERVE
                        | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                );
                if plug != libc::MAP_FAILED && plug != stack {
                    libc::munmap(plug, STACK_SIZE);
                }
            }
        }
    }
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

/// `n` threads whose first call comes in destructor round `target`, after a warm-up;
/// then more threads and a `stats()` walk. Checks the RSS and the cached bytes.
fn scenario(free_first: bool, target: usize, n: usize, own_stack: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let warm = n / 10 + 10;
    let total = warm + n + 10;
    let blocks = |k: usize| -> Vec<usize> {
        (0..k)
            .map(|_| {
                if free_first {
                    Box::into_raw(Box::new([3u8; HANDED_SIZE])) as usize
                } else {
                    0
                }
            })
            .collect()
    };
    let plans = |bs: &[usize]| -> Vec<Plan> {
        bs.iter()
            .map(|&block| Plan {
                round: 1,
                target,
                free_first,
                block,
            })
            .collect()
    };
    let first = blocks(warm + n);
    let calls0 = DTOR_CALLS.load(Ordering::Relaxed);
    run_threads(&plans(&first[..warm]), own_stack);
    let before = rss_kib();
    let cached_before = hakmem::stats().thread_cached_bytes;
    run_threads(&plans(&first[warm..]), own_stack);
    // The freed blocks must be reusable: allocate as many again.
    let again = blocks(warm + n);
    // The program goes on: more threads, and a walk of the cache registry.
    let last = blocks(10);
    run_threads(&plans(&last), own_stack);
    let s = hakmem::stats();
    let after = rss_kib();
    for &b in again.iter().filter(|&&b| b != 0) {
        // SAFETY: from `Box::into_raw` above, freed once.
        drop(unsafe { Box::from_raw(b as *mut [u8; HANDED_SIZE]) });
    }
    let calls = DTOR_CALLS.load(Ordering::Relaxed) - calls0;
    let what = format!(
        "{} first, round {target}, {n} threads{}",
        if free_first { "free" } else { "malloc" },
        if own_stack { " on own stacks" } else { "" }
    );
    println!(
        "{what}: RSS {before} -> {after} KiB, thread caches {} -> {} KiB",
        cached_before >> 10,
        s.thread_cached_bytes >> 10
    );
    assert_eq!(calls, (total * target) as u64, "{what}: destructor calls");
    assert!(
        after <= before + 8 * 1024,
        "{what}: RSS grew from {before} KiB to {after} KiB"
    );
    assert!(
        s.thread_cached_bytes <= cached_before + (1 << 20),
        "{what}: thread caches grew from {cached_before} to {} bytes",
        s.thread_cached_bytes
    );
}

#[test]
fn first_allocation_in_each_destructor_round() {
    for target in 1..=4 {
        scenario(false, target, 3000, false);
    }
}

#[test]
fn first_call_a_free_in_each_destructor_round() {
    for target in 1..=4 {
        scenario(true, target, 3000, false);
    }
}

#[test]
fn caller_provided_stacks_unmapped_after_join() {
    for target in [1, 4] {
        scenario(false, target, 1000, true);
        scenario(true, target, 1000, true);
    }
}
