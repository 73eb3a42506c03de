//! Clocks and process counters read around the timed section: wall time, CPU time and peak
//! RSS from `getrusage`, and the allocator's own syscall counter through a [`Probe`].

use std::time::Instant;

/// Reads a counter of the allocator (e.g. hakmem's syscalls) at the start and the end of the
/// timed section. Peers have none: [`no_probe`].
pub type Probe = fn() -> u64;

/// The probe of an allocator without counters.
pub fn no_probe() -> u64 {
    0
}

fn rusage() -> libc::rusage {
    let mut ru = core::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid out-pointer for one `rusage`.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    // SAFETY: zero-initialised and filled by the kernel.
    unsafe { ru.assume_init() }
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 * 1e-6
}

/// User and system CPU seconds of the whole process so far (all threads, dead ones too).
pub fn cpu_seconds() -> (f64, f64) {
    let ru = rusage();
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

/// Peak resident set size of the process in KiB (`ru_maxrss`, the same as `VmHWM`).
pub fn peak_rss_kib() -> u64 {
    rusage().ru_maxrss as u64
}

/// Minor page faults so far.
pub fn minor_faults() -> u64 {
    rusage().ru_minflt as u64
}

/// A running measurement of the timed section.
pub struct Timer {
    start: Instant,
    cpu: (f64, f64),
    faults: u64,
    probe: Probe,
    counter: u64,
}

/// What the timed section took.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Elapsed {
    /// Wall-clock seconds.
    pub secs: f64,
    /// User CPU seconds (all threads).
    pub user_secs: f64,
    /// System CPU seconds (all threads).
    pub sys_secs: f64,
    /// Minor page faults.
    pub minor_faults: u64,
    /// Growth of the probe's counter (hakmem: syscalls made by the allocator).
    pub probe_delta: u64,
}

impl Timer {
    /// Starts the clock (reads the counters first, the clock last).
    pub fn start(probe: Probe) -> Self {
        let counter = probe();
        let cpu = cpu_seconds();
        let faults = minor_faults();
        Timer {
            start: Instant::now(),
            cpu,
            faults,
            probe,
            counter,
        }
    }

    /// Stops the clock (reads the clock first, the counters after).
    pub fn stop(self) -> Elapsed {
        let secs = self.start.elapsed().as_secs_f64();
        let (u, s) = cpu_seconds();
        let faults = minor_faults();
        let counter = (self.probe)();
        Elapsed {
            secs,
            user_secs: u - self.cpu.0,
            sys_secs: s - self.cpu.1,
            minor_faults: faults - self.faults,
            probe_delta: counter.wrapping_sub(self.counter),
        }
    }
}
