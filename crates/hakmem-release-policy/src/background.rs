//! The opt-in background purge (issue 15): one thread that, every `HAKMEM_BG_PURGE_MS`
//! milliseconds, runs the decay of both caches ([`crate::tick`]) and then the hook the
//! facade set ([`set_hook`]: ask every thread to flush its cache at its next slow path,
//! drain the transfer caches), so that a process that stops calling the allocator still
//! returns to each preset's idle target, within the decay interval plus one period.
//!
//! - **No thread unless asked for**: with the gate at 0 (the default) [`ensure_started`]
//!   costs one relaxed load and starts nothing.
//! - **Started without allocating through hakmem's own paths**: the thread's stack (with
//!   a guard page) is mapped through the OS box and handed to `pthread_create` with
//!   `pthread_attr_setstack`, so glibc maps no stack. Its one allocation is the new
//!   thread's TLS vector (`calloc` inside `pthread_create`): glibc's own `malloc` in a
//!   Rust program, hakmem's `calloc` under `LD_PRELOAD`, where it is an ordinary
//!   re-entrant call, made while this thread holds no hakmem lock (the facade calls
//!   [`ensure_started`] at the end of a slow path, after the process is set up), which
//!   sees the state `STARTING` and does not start a second thread. The thread itself
//!   never allocates.
//! - **Fork**: a child has no such thread. The facade's child handler calls
//!   [`fork_child`], which resets the state, so the child starts its own thread at its
//!   next slow-path allocation, on the same stack mapping (copied into the child, unused
//!   there).

use hakmem_os_stats::os;
use hakmem_os_stats::sync::Ordering::{AcqRel, Acquire, Relaxed, Release};
use hakmem_os_stats::sync::{AtomicPtr, AtomicU8, AtomicUsize};

/// The gate was not read yet.
const UNKNOWN: u8 = 0;
/// No background purge (gate 0), or it could not be started.
const OFF: u8 = 1;
/// A thread is being started.
const STARTING: u8 = 2;
/// The thread runs.
const RUNNING: u8 = 3;

hakmem_os_stats::sync_static! {
    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
    /// The facade's hook, an `fn()` as an address (0: none).
    static HOOK: AtomicUsize = AtomicUsize::new(0);
    /// The thread's stack mapping (guard page included), kept for a forked child.
    static STACK: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
    /// Purge rounds run by the thread (for tests and stats).
    static ROUNDS: AtomicUsize = AtomicUsize::new(0);
}

/// Bytes of the thread's stack, guard page included.
const STACK_LEN: usize = 256 * 1024;

/// Set the function the thread runs after each purge (the facade's: flush requests for
/// every thread cache, the transfer caches drained). It must not allocate.
pub fn set_hook(f: fn()) {
    HOOK.store(f as usize, Release);
}

/// Whether the background thread runs.
pub fn running() -> bool {
    STATE.load(Relaxed) == RUNNING
}

/// Purge rounds the background thread has run.
pub fn rounds() -> usize {
    ROUNDS.load(Relaxed)
}

/// Start the background thread if the gate asks for it and it does not run yet. A slow
/// path calls this with no hakmem lock held (see the module doc); when the thread runs
/// or the gate is 0 it is one relaxed load.
#[inline]
pub fn ensure_started() {
    let s = STATE.load(Relaxed);
    if s == RUNNING || s == OFF || s == STARTING {
        return;
    }
    start();
}

#[cold]
#[inline(never)]
fn start() {
    if hakmem_env_gates::gates().bg_purge_ms == 0 {
        STATE.store(OFF, Relaxed);
        return;
    }
    if STATE
        .compare_exchange(UNKNOWN, STARTING, AcqRel, Acquire)
        .is_err()
    {
        return;
    }
    let ok = spawn();
    STATE.store(if ok { RUNNING } else { OFF }, Release);
}

/// Map the stack (once) and create the thread on it. False when either fails.
fn spawn() -> bool {
    let mut stack = STACK.load(Acquire);
    if stack.is_null() {
        stack = os::map(STACK_LEN);
        if stack.is_null() {
            return false;
        }
        // The lowest page is the guard: an overflow faults instead of writing below.
        // SAFETY: our fresh mapping, one page of it.
        if unsafe { !os::protect(stack, os::PAGE, libc::PROT_NONE) } {
            // SAFETY: our fresh mapping, never published.
            unsafe { os::unmap(stack, STACK_LEN) };
            return false;
        }
        STACK.store(stack, Release);
    }
    // SAFETY: `attr` is initialized before use and destroyed after; the stack range is
    // ours, mapped readable and writable above its guard page, used by this one thread
    // only (a previous thread on it exists in no process that reaches here: the state
    // machine starts one thread per process, and a child's copy of the parent's thread
    // does not exist). `run` is an `extern "C" fn` that never returns or unwinds.
    unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        if libc::pthread_attr_init(&mut attr) != 0 {
            return false;
        }
        let ok = libc::pthread_attr_setstack(
            &mut attr,
            stack.add(os::PAGE).cast(),
            STACK_LEN - os::PAGE,
        ) == 0
            && libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED) == 0;
        let mut tid: libc::pthread_t = core::mem::zeroed();
        let ok = ok && libc::pthread_create(&mut tid, &attr, run, core::ptr::null_mut()) == 0;
        libc::pthread_attr_destroy(&mut attr);
        ok
    }
}

/// The thread: sleep a period, purge, run the hook; forever (it dies with the process).
extern "C" fn run(_: *mut libc::c_void) -> *mut libc::c_void {
    loop {
        let ms = u64::from(hakmem_env_gates::gates().bg_purge_ms.max(1));
        let ts = libc::timespec {
            tv_sec: (ms / 1000) as libc::time_t,
            tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
        };
        // SAFETY: `ts` is a valid duration; a null remainder is allowed (an interrupted
        // sleep just purges early).
        unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
        purge_round();
    }
}

/// One round of the background purge: the caches' decay, then the facade's hook.
pub fn purge_round() {
    crate::tick();
    let hook = HOOK.load(Acquire);
    if hook != 0 {
        // SAFETY: only `set_hook` stores here, from an `fn()`.
        let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(hook) };
        f();
    }
    ROUNDS.fetch_add(1, Relaxed);
}

/// Fork handler for the child: the background thread does not exist there. The state
/// is reset so that the child's next slow path starts its own (on the same stack).
pub fn fork_child() {
    if STATE.load(Relaxed) != OFF {
        STATE.store(UNKNOWN, Relaxed);
    }
}
