//! Runs a workload binary: once for timing (parsing its `RESULT` line), under `strace -c`
//! for syscall counts, or under `valgrind --tool=callgrind` for instruction counts.

use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One timed run, as the binary reported it.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Ops in the timed section.
    pub ops: u64,
    /// Wall seconds of the timed section.
    pub secs: f64,
    /// CPU seconds (user + system, all threads) of the timed section.
    pub cpu_secs: f64,
    /// Peak RSS of the process, KiB.
    pub peak_rss_kib: u64,
    /// Allocator syscalls in the timed section (hakmem's own counter).
    pub syscalls: Option<u64>,
    /// Minor page faults in the timed section (`ru_minflt`).
    pub minor_faults: u64,
    /// The realistic workloads' checksum.
    pub checksum: Option<u64>,
    /// `burst-*`: resident set right after the frees, KiB.
    pub rss_after_free_kib: Option<u64>,
    /// `burst-*`: resident set after the idle time, KiB.
    pub rss_after_idle_kib: Option<u64>,
    /// The whole result line, as JSON.
    pub raw: Value,
}

impl Sample {
    /// Throughput of the run.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-12)
    }
    /// Minor page faults per op of the run.
    pub fn faults_per_op(&self) -> f64 {
        self.minor_faults as f64 / self.ops.max(1) as f64
    }
    /// Ops per CPU-second of the run.
    pub fn ops_per_cpu_sec(&self) -> f64 {
        self.ops as f64 / self.cpu_secs.max(1e-9)
    }
}

/// What a child process did.
struct Finished {
    ok: bool,
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to completion, killing it after `timeout`.
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Finished, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting: {e}")),
        }
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    match status {
        None => Err(format!("timed out after {} s", timeout.as_secs())),
        Some(st) => Ok(Finished {
            ok: st.success(),
            code: st.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&st),
            stdout,
            stderr,
        }),
    }
}

/// The last non-empty line of `s`, shortened.
fn last_line(s: &str) -> String {
    let l = s
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    l.chars().take(200).collect()
}

fn failure(f: &Finished) -> String {
    let how = match (f.code, f.signal) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => "killed".to_string(),
    };
    // The program's own last words, not valgrind's or strace's summary lines.
    let own: String = f
        .stderr
        .lines()
        .filter(|l| !l.starts_with("==") && !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let why = if own.is_empty() {
        last_line(&f.stderr)
    } else {
        last_line(&own)
    };
    if why.is_empty() {
        how
    } else {
        format!("{how}: {why}")
    }
}

/// Parses the `RESULT {json}` line of a workload binary.
pub fn parse_result(stdout: &str) -> Result<Sample, String> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(hakmem_bench::report::PREFIX))
        .ok_or("no RESULT line")?;
    let v: Value = serde_json::from_str(line).map_err(|e| format!("bad RESULT line: {e}"))?;
    let u = |k: &str| v.get(k).and_then(Value::as_u64);
    let f = |k: &str| v.get(k).and_then(Value::as_f64);
    Ok(Sample {
        ops: u("ops").ok_or("RESULT without ops")?,
        secs: f("secs").ok_or("RESULT without secs")?,
        cpu_secs: f("cpu_secs").unwrap_or(0.0),
        peak_rss_kib: u("peak_rss_kib").unwrap_or(0),
        syscalls: u("syscalls"),
        minor_faults: u("minor_faults").unwrap_or(0),
        checksum: u("checksum"),
        rss_after_free_kib: u("rss_after_free_kib"),
        rss_after_idle_kib: u("rss_after_idle_kib"),
        raw: v,
    })
}

/// One timed run of `bin` with `args`.
pub fn run(bin: &Path, args: &[String], timeout: Duration) -> Result<Sample, String> {
    run_env(bin, args, &[], timeout)
}

/// One timed run of `bin` with `args` and the environment assignments `env` added.
pub fn run_env(
    bin: &Path,
    args: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Sample, String> {
    let mut cmd = Command::new(bin);
    cmd.args(args).envs(env.iter().cloned());
    let f = run_with_timeout(cmd, timeout)?;
    if !f.ok {
        return Err(failure(&f));
    }
    parse_result(&f.stdout)
}

/// Memory syscalls counted by `strace -f -c -e trace=memory` over a whole process.
#[derive(Clone, Debug, Default)]
pub struct StraceCount {
    /// All calls of the `%memory` class.
    pub total: u64,
    /// Per syscall name.
    pub by_name: Vec<(String, u64)>,
    /// The allocator's own count over the whole traced process (hakmem's
    /// `syscalls_total`), to compare with strace's within one run.
    pub own_total: Option<u64>,
}

/// Parses the summary table of `strace -c`.
pub fn parse_strace_summary(s: &str) -> StraceCount {
    let mut c = StraceCount::default();
    for line in s.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 5 || t[0].parse::<f64>().is_err() {
            continue;
        }
        let name = t[t.len() - 1];
        if name == "total" {
            continue;
        }
        if let Ok(n) = t[3].parse::<u64>() {
            c.total += n;
            c.by_name.push((name.to_string(), n));
        }
    }
    c
}

/// Runs `bin args` under strace and counts its memory syscalls; also returns the ops the
/// run reported.
pub fn strace(
    bin: &Path,
    args: &[String],
    out: &Path,
    timeout: Duration,
) -> Result<(StraceCount, u64), String> {
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-c", "-e", "trace=memory", "--seccomp-bpf", "-o"])
        .arg(out)
        .arg(bin)
        .args(args);
    let f = run_with_timeout(cmd, timeout)?;
    if !f.ok {
        return Err(format!("strace: {}", failure(&f)));
    }
    let text = std::fs::read_to_string(out).map_err(|e| format!("strace output: {e}"))?;
    let res = parse_result(&f.stdout)?;
    let mut count = parse_strace_summary(&text);
    count.own_total = res
        .raw
        .get("syscalls_total")
        .and_then(serde_json::Value::as_u64);
    Ok((count, res.ops))
}

/// Runs `bin args` under callgrind; returns the instructions executed (Ir).
pub fn callgrind(
    bin: &Path,
    args: &[String],
    out: &Path,
    timeout: Duration,
) -> Result<u64, String> {
    let mut cmd = callgrind_command(bin, out);
    cmd.args(args);
    let f = run_with_timeout(cmd, timeout)?;
    if !f.ok {
        return Err(format!("valgrind: {}", failure(&f)));
    }
    callgrind_total(out)
}

/// `valgrind --tool=callgrind ... bin` writing its profile to `out` (the caller adds the
/// program's arguments and environment).
pub fn callgrind_command(bin: &Path, out: &Path) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--tool=callgrind",
        "--dump-instr=no",
        "--compress-strings=no",
    ])
    .arg(format!("--callgrind-out-file={}", out.display()))
    .arg(bin);
    cmd
}

/// The instructions (Ir) of a finished callgrind run, from its profile `out`.
pub fn callgrind_total(out: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(out).map_err(|e| format!("callgrind output: {e}"))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no summary in callgrind output".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_summary() {
        let s = "\
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 60.00    0.000060           6        10           mmap
 30.00    0.000030           5         6         1 munmap
 10.00    0.000010          10         1           brk
------ ----------- ----------- --------- --------- ----------------
100.00    0.000100           5        17         1 total
";
        let c = parse_strace_summary(s);
        assert_eq!(c.total, 17);
        assert_eq!(c.by_name.len(), 3);
        assert_eq!(c.by_name[1], ("munmap".to_string(), 6));
    }

    #[test]
    fn result_line() {
        let s = "noise\nRESULT {\"workload\":\"mixed\",\"ops\":10,\"secs\":0.5,\"cpu_secs\":0.25,\"peak_rss_kib\":100,\"minor_faults\":5,\"syscalls\":null,\"checksum\":null,\"rss_after_free_kib\":7}\n";
        let r = parse_result(s).unwrap();
        assert_eq!(r.ops, 10);
        assert_eq!(r.ops_per_sec(), 20.0);
        assert_eq!(r.ops_per_cpu_sec(), 40.0);
        assert_eq!(r.syscalls, None);
        assert_eq!(r.faults_per_op(), 0.5);
        assert_eq!((r.checksum, r.rss_after_free_kib), (None, Some(7)));
        assert_eq!(r.rss_after_idle_kib, None);
        assert!(parse_result("nothing").is_err());
    }
}
