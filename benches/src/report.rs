//! The machine-readable result line a workload binary prints: `RESULT {json}` on stdout,
//! one line, read by `cargo xtask bench`. Besides the counts and clocks: `minor_faults` (of
//! the timed section), `checksum` (the realistic workloads), `rss_after_free_kib` and
//! `rss_after_idle_kib` (`burst-*`), `null` where a workload has none.

use crate::workloads::{Outcome, Params};
use std::fmt::Write;

/// Everything about one run that goes into the result line.
pub struct Report<'a> {
    /// Workload name.
    pub workload: &'a str,
    /// Allocator the binary was built with.
    pub alloc: &'a str,
    /// Parameters of the run.
    pub params: &'a Params,
    /// What it did.
    pub outcome: &'a Outcome,
    /// Peak RSS of the process in KiB (its own `VmHWM`, see [`crate::measure::peak_rss_kib`]).
    pub peak_rss_kib: u64,
    /// Allocator syscalls over the whole process, where the allocator counts them.
    pub syscalls_total: Option<u64>,
}

/// The prefix of the result line.
pub const PREFIX: &str = "RESULT ";

impl Report<'_> {
    /// The result line, without a newline.
    pub fn line(&self) -> String {
        let o = self.outcome;
        let e = &o.elapsed;
        let p = self.params;
        let mut s = String::with_capacity(512);
        let _ = write!(
            s,
            "{PREFIX}{{\"workload\":\"{}\",\"alloc\":\"{}\",\"ops\":{},\"secs\":{:.9},\
             \"cpu_secs\":{:.6},\"user_secs\":{:.6},\"sys_secs\":{:.6},\"peak_rss_kib\":{},\
             \"minor_faults\":{},\"allocs\":{},\"frees\":{},\"reallocs\":{},\"live\":{},\
             \"capped\":{},\"expected_ops\":{},\"threads\":{},\"threads_started\":{},\"ws\":{},\"min\":{},\"max\":{},\"seed\":{}",
            self.workload,
            self.alloc,
            o.ops,
            e.secs,
            e.user_secs + e.sys_secs,
            e.user_secs,
            e.sys_secs,
            self.peak_rss_kib,
            e.minor_faults,
            o.allocs,
            o.frees,
            o.reallocs,
            o.live(),
            o.capped,
            p.expected_ops(),
            p.threads,
            o.threads_started,
            p.ws,
            p.min,
            p.max,
            p.seed,
        );
        match self.syscalls_total {
            Some(total) => {
                let _ = write!(
                    s,
                    ",\"syscalls\":{},\"syscalls_total\":{total}",
                    e.probe_delta
                );
            }
            None => s.push_str(",\"syscalls\":null,\"syscalls_total\":null"),
        }
        let opt = |v: Option<u64>| v.map_or("null".to_string(), |x| x.to_string());
        let _ = write!(
            s,
            ",\"checksum\":{},\"rss_after_free_kib\":{},\"rss_after_idle_kib\":{},\"idle_ms\":{}",
            opt(o.checksum),
            opt(o.rss_after_free_kib),
            opt(o.rss_after_idle_kib),
            p.idle_ms,
        );
        s.push('}');
        s
    }
}
