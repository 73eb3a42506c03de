//! Clocks and process counters read around the timed section: wall time, CPU time and
//! faults from `getrusage`, the program's own peak RSS from `/proc/self/status`, and the
//! allocator's own syscall counter through a [`Probe`].

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

/// Peak resident set size of this program in KiB: `VmHWM` of `/proc/self/status`, the
/// high-water mark of its memory since its `exec`.
///
/// Not `ru_maxrss`: a process started by `vfork` or `posix_spawn` (as Rust's `Command`
/// and Python's `subprocess` start it) gets there the peak of its parent's memory at the
/// spawn, so a small workload started by a big `cargo xtask` reported the parent's
/// figure (`cbench thread` and `prodcons`: 3.12 MiB for every contender, results/235).
/// Read without allocating (a stack buffer): the allocator under test is not called.
/// `ru_maxrss` only where `/proc` cannot be read.
pub fn peak_rss_kib() -> u64 {
    vm_hwm_kib().unwrap_or_else(|| rusage().ru_maxrss as u64)
}

/// `VmHWM` of `/proc/self/status`, KiB.
fn vm_hwm_kib() -> Option<u64> {
    let mut buf = [0u8; 8192];
    // SAFETY: a NUL-terminated path; plain open/read/close of our own descriptor into a
    // buffer of `buf.len()` bytes.
    let n = unsafe {
        let fd = libc::open(
            c"/proc/self/status".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return None;
        }
        let mut n = 0usize;
        while n < buf.len() {
            let r = libc::read(fd, buf.as_mut_ptr().add(n).cast(), buf.len() - n);
            if r <= 0 {
                break;
            }
            n += r as usize;
        }
        libc::close(fd);
        n
    };
    status_field_kib(&buf[..n], b"VmHWM:")
}

/// The value of a `Name:   1234 kB` line of `/proc/self/status`.
fn status_field_kib(status: &[u8], name: &[u8]) -> Option<u64> {
    let line = status
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(name))?;
    let digits = line[name.len()..]
        .iter()
        .skip_while(|b| !b.is_ascii_digit());
    let mut v: Option<u64> = None;
    for &b in digits.take_while(|b| b.is_ascii_digit()) {
        v = Some(v.unwrap_or(0) * 10 + u64::from(b - b'0'));
    }
    v
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_are_parsed() {
        let s = b"Name:\tx\nVmPeak:\t  12345 kB\nVmHWM:\t    2048 kB\nVmRSS:\t1 kB\n";
        assert_eq!(status_field_kib(s, b"VmHWM:"), Some(2048));
        assert_eq!(status_field_kib(s, b"VmPeak:"), Some(12345));
        assert_eq!(status_field_kib(s, b"VmSwap:"), None);
        assert_eq!(status_field_kib(b"VmHWM:\t kB\n", b"VmHWM:"), None);
    }

    #[test]
    fn the_peak_is_read_and_covers_what_is_resident() {
        let hwm = vm_hwm_kib().expect("/proc/self/status has VmHWM");
        assert!(hwm > 0 && peak_rss_kib() >= hwm);
    }
}
