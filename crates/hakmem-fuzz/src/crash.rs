//! Where the program was when the process died: every worker publishes its serial
//! number and op index in a fixed table, and a handler of the fatal signals (`SIGABRT`
//! from hakmem's own checks, `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`) prints the seed
//! and that table with `write(2)` from a stack buffer, then hands the signal on to the
//! handler that was there before (or the default action).

use std::sync::Once;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Worker slots in the table (threads beyond it are not reported).
pub const SLOTS: usize = 64;

/// One worker's position: serial + 1 (0: free slot), op index, op kind.
struct Slot {
    serial: AtomicU64,
    op: AtomicU64,
    kind: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    serial: AtomicU64::new(0),
    op: AtomicU64::new(0),
    kind: AtomicUsize::new(0),
};
static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static SEED: AtomicU64 = AtomicU64::new(0);
static THREADS: AtomicUsize = AtomicUsize::new(0);
static TARGET: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
static TARGET_LEN: AtomicUsize = AtomicUsize::new(0);

/// The names of op kinds (an index into this is published).
pub const KINDS: [&str; 10] = [
    "start",
    "alloc",
    "free",
    "realloc",
    "exchange",
    "verify",
    "refusal",
    "chain",
    "burst",
    "maintenance",
];

/// Records the run's parameters for a crash report.
pub fn set_run(target: &'static str, seed: u64, threads: usize) {
    SEED.store(seed, Relaxed);
    THREADS.store(threads, Relaxed);
    TARGET.store(target.as_ptr().cast_mut(), Relaxed);
    TARGET_LEN.store(target.len(), Relaxed);
}

/// Publishes that worker `serial` runs in `slot` (`None`: the slot is free again).
pub fn set_worker(slot: usize, serial: Option<u64>) {
    if let Some(s) = TABLE.get(slot) {
        s.op.store(0, Relaxed);
        s.kind.store(0, Relaxed);
        s.serial.store(serial.map_or(0, |n| n + 1), Relaxed);
    }
}

/// Publishes the op a worker is at.
#[inline]
pub fn set_op(slot: usize, op: u64, kind: usize) {
    if let Some(s) = TABLE.get(slot) {
        s.op.store(op, Relaxed);
        s.kind.store(kind, Relaxed);
    }
}

struct Buf {
    b: [u8; 4096],
    n: usize,
}

impl Buf {
    fn s(&mut self, s: &[u8]) -> &mut Self {
        for &c in s {
            if self.n < self.b.len() {
                self.b[self.n] = c;
                self.n += 1;
            }
        }
        self
    }
    fn u(&mut self, mut v: u64) -> &mut Self {
        let mut d = [0u8; 20];
        let mut i = d.len();
        loop {
            i -= 1;
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.s(&d[i..])
    }
}

const SIGNALS: [i32; 5] = [
    libc::SIGABRT,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
];

static OLD: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];
static mut OLD_ACTIONS: [libc::sigaction; 5] = [const {
    // SAFETY: a sigaction is plain data; all-zero is SIG_DFL with no flags.
    unsafe { core::mem::zeroed() }
}; 5];

extern "C" fn on_signal(sig: i32) {
    let mut b = Buf { b: [0; 4096], n: 0 };
    let target = {
        let (p, n) = (TARGET.load(Relaxed), TARGET_LEN.load(Relaxed));
        if p.is_null() {
            &[][..]
        } else {
            // SAFETY: a `&'static str` published by `set_run`.
            unsafe { core::slice::from_raw_parts(p, n) }
        }
    };
    b.s(b"\nhakmem-fuzz: FAILED: fatal signal ")
        .u(sig as u64)
        .s(b" (target ")
        .s(target)
        .s(b", seed ")
        .u(SEED.load(Relaxed))
        .s(b", threads ")
        .u(THREADS.load(Relaxed) as u64)
        .s(b"); workers at:\n");
    for (i, s) in TABLE.iter().enumerate() {
        let serial = s.serial.load(Relaxed);
        if serial == 0 {
            continue;
        }
        let kind = KINDS.get(s.kind.load(Relaxed)).copied().unwrap_or("?");
        b.s(b"  slot ")
            .u(i as u64)
            .s(b": worker ")
            .u(serial - 1)
            .s(b" op ")
            .u(s.op.load(Relaxed))
            .s(b" (")
            .s(kind.as_bytes())
            .s(b")\n");
    }
    // SAFETY: writing a stack buffer to stderr.
    unsafe { libc::write(2, b.b.as_ptr().cast(), b.n) };
    // Hand the signal on: restore the previous action; returning re-raises a fault, and
    // `abort` raises again itself.
    if let Some(i) = SIGNALS.iter().position(|&s| s == sig)
        && OLD[i].load(Relaxed) == 1
    {
        // SAFETY: restoring the action saved by `install` (written before it was
        // published through OLD).
        unsafe {
            libc::sigaction(sig, &raw const OLD_ACTIONS[i], core::ptr::null_mut());
        }
    } else {
        // SAFETY: resetting a signal to its default action.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}

/// Installs the handler once per process.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (i, &sig) in SIGNALS.iter().enumerate() {
            // SAFETY: a zeroed sigaction filled in with a handler of the right type; the
            // old action is saved into a static that nothing else touches.
            unsafe {
                let mut sa: libc::sigaction = core::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(i32) as usize;
                sa.sa_flags = libc::SA_ONSTACK;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, &raw mut OLD_ACTIONS[i]) == 0 {
                    OLD[i].store(1, Relaxed);
                }
            }
        }
    });
}
