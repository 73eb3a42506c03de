//! The progress line on stderr: rewritten in place on a terminal, a line every few seconds
//! otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// The progress reporter.
pub struct Progress {
    tty: bool,
    last: Option<Instant>,
}

impl Progress {
    /// A reporter for this process's stderr.
    pub fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    /// Shows `s` as the current status.
    pub fn line(&mut self, s: &str) {
        if self.tty {
            let s: String = s.chars().take(150).collect();
            eprint!("\r\x1b[2K{s}");
            let _ = std::io::stderr().flush();
        } else if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
        {
            eprintln!("{s}");
            self.last = Some(Instant::now());
        }
    }

    /// Prints `s` as a finished step, on its own line.
    pub fn done(&mut self, s: &str) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{s}");
        self.last = Some(Instant::now());
    }

    /// Clears the status line.
    pub fn clear(&mut self) {
        if self.tty {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

/// `secs` as `1m05s` or `42s`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Time left, as [`duration`], when `done` of `total` steps took the time since `t0` (0s
/// before the first is done).
pub fn eta(t0: Instant, done: usize, total: usize) -> String {
    let secs = if done > 0 {
        t0.elapsed().as_secs_f64() / done as f64 * total.saturating_sub(done) as f64
    } else {
        0.0
    };
    duration(secs)
}
