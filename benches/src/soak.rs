//! Soak mode: one process runs a workload for a long time in *epochs* of fixed work and
//! prints one `EPOCH {json}` line after each (read by `cargo xtask soak`).
//!
//! The workload's state (its slot array, its vectors) lives across epochs, as in a long
//! running program: nothing is drained between epochs. Between two epochs, outside the
//! timed part, the process reads its resident set from `/proc/self/statm` (a descriptor
//! opened once, read with `pread` into a stack buffer), the allocator's counters and the
//! CPU clock, and prints the line with `write(2)` from a stack buffer: the soak itself
//! allocates nothing but the workload's blocks, so RSS and the allocator's counters see
//! only the workload.
//!
//! Epoch line fields: `epoch` (1-based), `t` (seconds since the soak started, at the end
//! of the epoch), `secs` and `cpu_secs` (wall and CPU seconds of the epoch's timed part),
//! `ops`, `ops_per_sec`, `ops_per_cpu_sec`, `rss_kib` (resident set after the epoch),
//! `allocated_kib` (the workload's live bytes), `minor_faults` (minor page faults of the
//! epoch's timed part, `getrusage`'s `ru_minflt`), and the allocator's cumulative counters
//! `syscalls`, `madvise_calls`, `lean_decommit`, `lean_retire` (`null` for allocators without them).

use crate::measure::{cpu_seconds, minor_faults};
use crate::rng::{Rng, below};
use crate::workloads::{
    self, EMPTY, Kind, Params, Slot, free_block, log_uniform, mixed_ops, new_block, uniform,
};
use core::fmt::Write;
use hakmem_os_stats::writer::StackWriter;
use std::time::Instant;

/// The allocator's cumulative counters, read between epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// mmap + munmap + madvise + mprotect + mremap calls made by the allocator.
    pub syscalls: u64,
    /// `madvise` calls (the seed's `madvise_calls`).
    pub madvise_calls: u64,
    /// Decommits by the release policy (lean mode only).
    pub lean_decommit: u64,
    /// Retirements (unmaps) by the release policy in lean mode.
    pub lean_retire: u64,
}

/// Reads the allocator's counters; `None` for an allocator without any.
pub type CounterProbe = fn() -> Option<Counters>;

/// The probe of an allocator without counters.
pub fn no_counters() -> Option<Counters> {
    None
}

/// How long a soak runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoakParams {
    /// Ops per epoch (allocator calls).
    pub epoch_ops: u64,
    /// Stop after this many epochs (0: no limit).
    pub max_epochs: u64,
    /// Stop after the epoch during which this many seconds have passed (0: no limit).
    pub secs: f64,
}

/// The prefix of an epoch line.
pub const EPOCH_PREFIX: &str = "EPOCH ";
/// The prefix of the line printed when the soak ends.
pub const END_PREFIX: &str = "SOAKEND ";

/// Does the soak mode support workload kind `k`?
pub fn supports(k: Kind) -> bool {
    matches!(k, Kind::Mixed | Kind::Large | Kind::Realloc)
}

/// `/proc/self/statm`, opened once; read without allocating.
pub struct Statm(libc::c_int);

impl Statm {
    /// Opens `/proc/self/statm` (`None` if it cannot).
    pub fn open() -> Option<Self> {
        // SAFETY: a NUL-terminated path.
        let fd = unsafe {
            libc::open(
                c"/proc/self/statm".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        (fd >= 0).then_some(Statm(fd))
    }

    /// Resident set in KiB now (0 if unreadable).
    pub fn rss_kib(&self) -> u64 {
        let mut buf = [0u8; 128];
        // SAFETY: reads at most `buf.len()` bytes into the stack buffer.
        let n = unsafe { libc::pread(self.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        let Ok(n) = usize::try_from(n) else { return 0 };
        let pages = buf[..n].split(|&b| b == b' ').nth(1).map_or(0, |f| {
            f.iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'))
        });
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        pages * page / 1024
    }
}

impl Drop for Statm {
    fn drop(&mut self) {
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(self.0) };
    }
}

/// What a soak did in total.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SoakOutcome {
    /// Epochs run.
    pub epochs: u64,
    /// Ops in all epochs.
    pub ops: u64,
    /// Allocations (the final clean-up included in `frees`).
    pub allocs: u64,
    /// Frees, the final clean-up included.
    pub frees: u64,
    /// Wall seconds of the whole soak.
    pub secs: f64,
}

impl SoakOutcome {
    /// Blocks never freed (must be 0).
    pub fn live(&self) -> i64 {
        self.allocs as i64 - self.frees as i64
    }
}

/// One epoch's measurements: what the epoch line carries (written by [`Epoch::line`] here,
/// read back by `cargo xtask soak`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Epoch {
    /// 1-based index.
    pub epoch: u64,
    /// Seconds since the soak started, at the end of the epoch.
    pub t: f64,
    /// Wall seconds of the epoch's timed part.
    pub secs: f64,
    /// CPU seconds (user + system) of the epoch's timed part.
    pub cpu_secs: f64,
    /// Ops of the epoch.
    pub ops: u64,
    /// Resident set after the epoch, KiB.
    pub rss_kib: u64,
    /// The workload's live bytes after the epoch, KiB.
    pub allocated_kib: u64,
    /// Minor page faults of the epoch's timed part.
    pub minor_faults: u64,
    /// The allocator's cumulative counters, if it has them.
    pub counters: Option<Counters>,
}

impl Epoch {
    /// Wall-clock throughput of the epoch.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-12)
    }

    /// Ops per CPU-second of the epoch.
    pub fn ops_per_cpu_sec(&self) -> f64 {
        self.ops as f64 / self.cpu_secs.max(1e-9)
    }

    /// The epoch line, without a newline, into a stack buffer (hakmem's one printer,
    /// `hakmem_os_stats::writer`: it allocates nothing, so the soak's counters see only
    /// the workload).
    pub fn line(&self) -> StackWriter<512> {
        let mut s = StackWriter::<512>::new();
        let _ = write!(
            s,
            "{EPOCH_PREFIX}{{\"epoch\":{},\"t\":{:.6},\"secs\":{:.6},\"cpu_secs\":{:.6},\"ops\":{},\
             \"ops_per_sec\":{:.1},\"ops_per_cpu_sec\":{:.1},\"rss_kib\":{},\"allocated_kib\":{},\"minor_faults\":{}",
            self.epoch,
            self.t,
            self.secs,
            self.cpu_secs,
            self.ops,
            self.ops_per_sec(),
            self.ops_per_cpu_sec(),
            self.rss_kib,
            self.allocated_kib,
            self.minor_faults,
        );
        match self.counters {
            Some(c) => {
                let _ = write!(
                    s,
                    ",\"syscalls\":{},\"madvise_calls\":{},\"lean_decommit\":{},\"lean_retire\":{}}}",
                    c.syscalls, c.madvise_calls, c.lean_decommit, c.lean_retire
                );
            }
            None => {
                let _ =
                    s.write_str(
                    ",\"syscalls\":null,\"madvise_calls\":null,\"lean_decommit\":null,\"lean_retire\":null}",
                );
            }
        }
        s
    }
}

/// The workload's state across epochs.
struct State {
    slots: Vec<Slot>,
    rng: Rng,
    allocs: u64,
    frees: u64,
}

impl State {
    fn live_bytes(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| !s.ptr.is_null())
            .map(|s| s.size as u64)
            .sum()
    }
}

/// One epoch of realloc growth over `st.slots` (vectors); returns the ops done.
fn realloc_epoch(st: &mut State, ops: u64, min: usize, max: usize) -> u64 {
    let n = st.slots.len() as u64;
    for _ in 0..ops {
        let r = st.rng.next_u64();
        // SAFETY: `below(_, n) < n == slots.len()`.
        let v = unsafe { st.slots.get_unchecked_mut(below(r, n) as usize) };
        if v.ptr.is_null() {
            v.ptr = new_block(min, 1);
            v.size = min;
            st.allocs += 1;
        } else if v.size >= max {
            free_block(*v);
            *v = EMPTY;
            st.frees += 1;
        } else {
            let grow = 1 + below(r >> 32, (v.size / 2) as u64 + 1) as usize;
            let new = (v.size + grow).min(max);
            v.ptr = workloads::grow_block(*v, new);
            v.size = new;
        }
    }
    ops
}

/// Runs the soak: epochs of `sp.epoch_ops` ops of workload `p` until `sp` says stop,
/// printing an epoch line after each. `counters` is read between epochs.
///
/// Panics if the workload kind is not supported ([`supports`]).
pub fn run_soak(p: &Params, sp: &SoakParams, counters: CounterProbe) -> SoakOutcome {
    assert!(supports(p.kind), "soak mode: unsupported workload kind");
    let statm = Statm::open();
    let mut st = State {
        slots: vec![EMPTY; p.ws.max(1)],
        rng: Rng::new(p.seed, 0),
        allocs: 0,
        frees: 0,
    };
    let epoch_ops = sp.epoch_ops.max(1);
    let uni = uniform(p.min, p.max);
    let logu = log_uniform(p.min, p.max);
    let (rmin, rmax) = (p.min.max(1), p.max.max(p.min.max(1) + 1));
    let start = Instant::now();
    let mut out = SoakOutcome::default();
    loop {
        let (u0, s0) = cpu_seconds();
        let f0 = minor_faults();
        let t0 = Instant::now();
        let ops = match p.kind {
            Kind::Mixed => {
                let a = mixed_ops(&mut st.slots, epoch_ops, &mut st.rng, &uni);
                st.allocs += a;
                st.frees += epoch_ops - a;
                epoch_ops
            }
            Kind::Large => {
                let a = mixed_ops(&mut st.slots, epoch_ops, &mut st.rng, &logu);
                st.allocs += a;
                st.frees += epoch_ops - a;
                epoch_ops
            }
            _ => realloc_epoch(&mut st, epoch_ops, rmin, rmax),
        };
        let secs = t0.elapsed().as_secs_f64();
        let (u1, s1) = cpu_seconds();
        let f1 = minor_faults();
        out.epochs += 1;
        out.ops += ops;
        let e = Epoch {
            epoch: out.epochs,
            t: start.elapsed().as_secs_f64(),
            secs,
            cpu_secs: (u1 - u0) + (s1 - s0),
            ops,
            rss_kib: statm.as_ref().map_or(0, Statm::rss_kib),
            allocated_kib: st.live_bytes() / 1024,
            minor_faults: f1 - f0,
            counters: counters(),
        };
        let mut line = e.line();
        line.end_line();
        line.write_to_fd(1);
        let by_epochs = sp.max_epochs > 0 && out.epochs >= sp.max_epochs;
        let by_time = sp.secs > 0.0 && e.t >= sp.secs;
        if by_epochs || by_time || (sp.max_epochs == 0 && sp.secs <= 0.0) {
            break;
        }
    }
    out.secs = start.elapsed().as_secs_f64();
    out.frees = st.frees + workloads::drain(&mut st.slots);
    out.allocs = st.allocs;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_line_is_json_shaped() {
        let e = Epoch {
            epoch: 3,
            t: 1.5,
            secs: 0.5,
            cpu_secs: 0.25,
            ops: 100,
            rss_kib: 2048,
            allocated_kib: 10,
            minor_faults: 123_456_789,
            counters: Some(Counters {
                syscalls: 7,
                madvise_calls: 3,
                lean_decommit: 1,
                lean_retire: 2,
            }),
        };
        let l = e.line();
        assert!(!l.is_truncated(), "the longest line fits its buffer");
        let s = l.as_str();
        assert!(s.starts_with("EPOCH {\"epoch\":3,"), "{s}");
        assert!(s.contains("\"ops_per_sec\":200.0"), "{s}");
        assert!(s.contains("\"ops_per_cpu_sec\":400.0"), "{s}");
        assert!(s.ends_with("\"lean_retire\":2}"), "{s}");
        assert!(s.contains("\"madvise_calls\":3,"), "{s}");
        assert!(s.contains("\"minor_faults\":123456789,"), "{s}");
        let none = Epoch {
            counters: None,
            ..e
        }
        .line();
        assert!(none.as_str().ends_with("\"lean_retire\":null}"));
    }

    #[test]
    fn statm_reads_something() {
        let s = Statm::open().expect("/proc/self/statm");
        assert!(s.rss_kib() > 0);
    }
}
