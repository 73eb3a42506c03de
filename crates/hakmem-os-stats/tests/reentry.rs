//! A thread that takes a `Locked` it already holds (an allocator path re-entered under
//! its own lock, e.g. a failed `debug_assert!` whose panic allocates while a cache lock is
//! held) must end with a one-line report and `abort`, not hang forever (debug builds).
//!
//! The re-entry runs in a child process (this test binary again) with a time limit.

use hakmem_os_stats::lock::Locked;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD: &str = "HAKMEM_REENTRY_CHILD";

static L: Locked<u32> = Locked::new(0);

#[test]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let _held = L.lock();
    let _again = L.lock(); // must abort (debug) instead of waiting for itself
    unreachable!("the second lock returned");
}

#[test]
#[cfg(debug_assertions)]
fn reentry_aborts_with_a_report() {
    let exe = std::env::current_exe().unwrap();
    let mut c = Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            c.kill().ok();
            c.wait().ok();
            panic!("the re-entered lock hung (no abort within 20 s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(c.stderr.as_mut().unwrap(), &mut err).unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}\n{err}");
    assert!(
        err.contains("hakmem: lock taken again by its holder"),
        "stderr: {err}"
    );
}
