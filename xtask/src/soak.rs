//! `cargo xtask soak`: one long process, a workload in epochs of fixed work, and a verdict.
//!
//! The bench binary of a preset runs in soak mode (`hakmem-bench WORKLOAD --soak-secs S
//! --epoch-ops N`: one `EPOCH {json}` line per epoch, see `hakmem_bench::soak`). This
//! command writes a CSV row per epoch as the lines come (`target/soak/<stamp>-<preset>.csv`),
//! then a summary (`.md`, `.json`) and a plot (`.svg`) of RSS and throughput over time, and
//! a GO / NEUTRAL / NO-GO verdict against criteria printed *before* the run.
//!
//! Statistics (all after a warm-up of the first 10% of the epochs):
//! - RSS drift: mean RSS of the last 10% of the epochs vs the first 10% after the warm-up;
//! - throughput CV, and the epoch throughput percentiles p50 / p90 / p99 / min, where p90
//!   and p99 are *tail* percentiles: the throughput that 90% (99%) of the epochs reached or
//!   beat (the 10th and 1st percentiles of the distribution), like a latency tail;
//! - syscalls per op: growth of the allocator's counter over the post-warm-up epochs
//!   divided by their ops.
//!
//! Each is given twice: on wall-clock throughput (ops/s) and on CPU-time throughput (ops
//! per CPU-second of the process). The machine is shared: wall-clock epochs also measure
//! the neighbours, CPU-time epochs mostly do not, so the CV criterion uses CPU time by
//! default (`--cv-basis wall` to change).

use crate::bench::builder;
use crate::bench::contenders::{self, Contender};
use crate::bench::progress::{self, Progress};
use crate::bench::render::{esc, table};
use crate::host::{self, Host};
use crate::preset;
use serde_json::{Value, json};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const HELP: &str = "\
usage: cargo xtask soak [options]

Runs the bench binary of one preset as ONE process for a long time, the workload in
epochs of fixed work, and judges it: RSS drift, throughput CV and tail, syscalls per op.
Writes target/soak/<date>-<preset>.{csv,md,json,svg}. Criteria are printed before the run.

options:
  --preset P              safe, balanced (default) or lean
  --alloc NAME            any bench contender instead (e.g. mimalloc); no counters for peers
  --minutes M             length of the soak (default 10; fractions allowed)
  --workload W            mixed (default), mixed-ws4k, mixed-ws40k, mixed-32k, large, realloc
  --ws N                  slots (default: the workload's)
  --epoch-ops N           ops per epoch (default: 5 x the workload's default ops)
  --seed S                PRNG seed
  --env K=V               an environment assignment for the soaked process (repeatable)
  --warmup F              fraction of epochs left out as warm-up (default 0.1)
  --max-cv PCT            GO needs throughput CV below PCT % (default 2)
  --cv-basis cpu|wall     throughput the CV criterion uses (default cpu: ops per CPU-second)
  --max-drift PCT         GO needs |RSS drift| below PCT % (default 1)
  --max-syscalls-per-op X GO needs syscalls/op below X (default 1e-6 for LEAN, 2e-7 otherwise)
  --nogo-drift PCT        NO-GO above PCT % RSS growth (default 5)
  --nogo-syscalls-per-op X NO-GO above X syscalls/op (default 1e-5)
  --no-build              use target/bench-build/bin/<contender> as it is
  --out DIR               output directory (default target/soak)
  -h, --help              this text
";

/// The criteria, fixed before the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Criteria {
    /// GO: |drift| below this, percent.
    pub max_drift: f64,
    /// GO: CV below this, percent.
    pub max_cv: f64,
    /// GO: syscalls per op below this.
    pub max_syscalls: f64,
    /// NO-GO: drift above this, percent.
    pub nogo_drift: f64,
    /// NO-GO: syscalls per op above this.
    pub nogo_syscalls: f64,
    /// The CV is of ops per CPU-second (true) or of ops per wall second.
    pub cv_on_cpu: bool,
}

impl Criteria {
    /// The seed's Phase 54 criteria for a preset (`lean`: 1e-6 syscalls/op, else 2e-7).
    pub fn defaults(lean: bool) -> Self {
        Criteria {
            max_drift: 1.0,
            max_cv: 2.0,
            max_syscalls: if lean { 1e-6 } else { 2e-7 },
            nogo_drift: 5.0,
            nogo_syscalls: 1e-5,
            cv_on_cpu: true,
        }
    }

    /// The criteria in words, as printed before the run and written in the summary.
    pub fn describe(&self) -> String {
        format!(
            "GO if |RSS drift| < {}% and throughput CV ({}) < {}% and syscalls/op < {:e}; \
             NO-GO if RSS drift > +{}% or syscalls/op > {:e} or the process crashes; NEUTRAL otherwise",
            self.max_drift,
            if self.cv_on_cpu {
                "ops per CPU-second"
            } else {
                "wall-clock ops/s"
            },
            self.max_cv,
            self.max_syscalls,
            self.nogo_drift,
            self.nogo_syscalls
        )
    }
}

/// Parsed options.
#[derive(Clone, Debug)]
struct Opts {
    contender: &'static Contender,
    label: String,
    minutes: f64,
    workload: &'static hakmem_bench::Spec,
    ws: Option<u64>,
    epoch_ops: Option<u64>,
    seed: Option<u64>,
    env: Vec<(String, String)>,
    warmup: f64,
    criteria: Criteria,
    build: bool,
    out: Option<PathBuf>,
}

fn val<T: std::str::FromStr>(p: &mut lexopt::Parser) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let v = p.value().map_err(|e| e.to_string())?;
    let s = v.to_string_lossy().replace('_', "");
    s.parse::<T>().map_err(|e| format!("{s:?}: {e}"))
}

/// Parses `K=V`.
pub fn env_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?}: expected NAME=VALUE")),
    }
}

fn parse_opts(args: Vec<OsString>) -> Result<Option<Opts>, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut preset_name = "balanced".to_string();
    let mut alloc: Option<String> = None;
    let mut minutes: f64 = 10.0;
    let mut workload = "mixed".to_string();
    let (mut ws, mut epoch_ops, mut seed) = (None, None, None);
    let mut env = Vec::new();
    let mut warmup = 0.1;
    let (mut max_cv, mut max_drift, mut max_sys) = (None, None, None);
    let (mut nogo_drift, mut nogo_sys) = (None, None);
    let mut cv_on_cpu = true;
    let mut build = true;
    let mut out = None;
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("preset") => preset_name = val(&mut p)?,
            Long("alloc") => alloc = Some(val(&mut p)?),
            Long("minutes") => minutes = val(&mut p)?,
            Long("workload") | Short('w') => workload = val(&mut p)?,
            Long("ws") => ws = Some(val(&mut p)?),
            Long("epoch-ops") => epoch_ops = Some(val(&mut p)?),
            Long("seed") => seed = Some(val(&mut p)?),
            Long("env") => env.push(env_pair(&val::<String>(&mut p)?)?),
            Long("warmup") => warmup = val(&mut p)?,
            Long("max-cv") => max_cv = Some(val(&mut p)?),
            Long("max-drift") => max_drift = Some(val(&mut p)?),
            Long("max-syscalls-per-op") => max_sys = Some(val(&mut p)?),
            Long("nogo-drift") => nogo_drift = Some(val(&mut p)?),
            Long("nogo-syscalls-per-op") => nogo_sys = Some(val(&mut p)?),
            Long("cv-basis") => {
                cv_on_cpu = match val::<String>(&mut p)?.as_str() {
                    "cpu" => true,
                    "wall" => false,
                    o => return Err(format!("--cv-basis {o:?}: cpu or wall")),
                }
            }
            Long("no-build") => build = false,
            Long("out") => out = Some(PathBuf::from(val::<String>(&mut p)?)),
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(None);
            }
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    let (contender, label, lean) = match &alloc {
        Some(a) => {
            let c = contenders::select(a, &[])?;
            if c.len() != 1 {
                return Err(format!("--alloc {a:?}: name one contender"));
            }
            (c[0], c[0].name.to_string(), c[0].name == "hakmem-lean")
        }
        None => {
            let pd = preset::find(&preset_name)?;
            (
                pd.contender(),
                pd.name.to_string(),
                pd.preset == hakmem_env_gates::Preset::Lean,
            )
        }
    };
    let w =
        hakmem_bench::spec(&workload).ok_or_else(|| format!("unknown workload {workload:?}"))?;
    if !hakmem_bench::soak::supports(w.kind) {
        return Err(format!(
            "soak supports mixed, mixed-ws4k, mixed-ws40k, mixed-32k, large and realloc, not {}",
            w.name
        ));
    }
    if minutes.is_nan() || minutes <= 0.0 {
        return Err("--minutes must be positive".into());
    }
    if !(0.0..0.5).contains(&warmup) {
        return Err("--warmup must be in 0..0.5".into());
    }
    let mut criteria = Criteria::defaults(lean);
    criteria.cv_on_cpu = cv_on_cpu;
    if let Some(x) = max_cv {
        criteria.max_cv = x;
    }
    if let Some(x) = max_drift {
        criteria.max_drift = x;
    }
    if let Some(x) = max_sys {
        criteria.max_syscalls = x;
    }
    if let Some(x) = nogo_drift {
        criteria.nogo_drift = x;
    }
    if let Some(x) = nogo_sys {
        criteria.nogo_syscalls = x;
    }
    Ok(Some(Opts {
        contender,
        label,
        minutes,
        workload: w,
        ws,
        epoch_ops,
        seed,
        env,
        warmup,
        criteria,
        build,
        out,
    }))
}

/// One epoch as read from the binary.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Row {
    /// 1-based epoch index.
    pub epoch: u64,
    /// Seconds since the soak started.
    pub t: f64,
    /// Wall seconds of the epoch.
    pub secs: f64,
    /// CPU seconds of the epoch.
    pub cpu_secs: f64,
    /// Ops of the epoch.
    pub ops: u64,
    /// RSS after the epoch, KiB.
    pub rss_kib: u64,
    /// The workload's live bytes, KiB.
    pub allocated_kib: u64,
    /// Cumulative allocator syscalls.
    pub syscalls: Option<u64>,
    /// Cumulative lean decommits.
    pub lean_decommit: Option<u64>,
    /// Cumulative lean retirements.
    pub lean_retire: Option<u64>,
}

impl Row {
    /// Wall-clock throughput of the epoch.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-12)
    }
    /// Ops per CPU-second of the epoch.
    pub fn ops_per_cpu_sec(&self) -> f64 {
        self.ops as f64 / self.cpu_secs.max(1e-9)
    }

    /// Parses an `EPOCH {json}` line.
    pub fn parse(line: &str) -> Option<Row> {
        let j = line.strip_prefix(hakmem_bench::soak::EPOCH_PREFIX)?;
        let v: Value = serde_json::from_str(j).ok()?;
        let u = |k: &str| v.get(k).and_then(Value::as_u64);
        let f = |k: &str| v.get(k).and_then(Value::as_f64);
        Some(Row {
            epoch: u("epoch")?,
            t: f("t")?,
            secs: f("secs")?,
            cpu_secs: f("cpu_secs").unwrap_or(0.0),
            ops: u("ops")?,
            rss_kib: u("rss_kib").unwrap_or(0),
            allocated_kib: u("allocated_kib").unwrap_or(0),
            syscalls: u("syscalls"),
            lean_decommit: u("lean_decommit"),
            lean_retire: u("lean_retire"),
        })
    }

    /// The CSV header.
    pub const CSV_HEADER: &'static str = "epoch,time_s,epoch_secs,epoch_cpu_secs,ops,ops_per_sec,ops_per_cpu_sec,rss_kib,allocated_kib,syscalls,lean_decommit,lean_retire";

    /// The CSV row (counters cumulative; empty where the allocator has none).
    pub fn csv(&self) -> String {
        let o = |x: Option<u64>| x.map_or(String::new(), |v| v.to_string());
        format!(
            "{},{:.3},{:.6},{:.6},{},{:.0},{:.0},{},{},{},{},{}",
            self.epoch,
            self.t,
            self.secs,
            self.cpu_secs,
            self.ops,
            self.ops_per_sec(),
            self.ops_per_cpu_sec(),
            self.rss_kib,
            self.allocated_kib,
            o(self.syscalls),
            o(self.lean_decommit),
            o(self.lean_retire)
        )
    }
}

/// Percentile `q` (0..=1) of `xs` by linear interpolation between order statistics.
pub fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        f64::NAN
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// Throughput statistics of the post-warm-up epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tput {
    /// Mean ops/s.
    pub mean: f64,
    /// Coefficient of variation, percent.
    pub cv: f64,
    /// Median.
    pub p50: f64,
    /// Reached or beaten by 90% of the epochs (10th percentile).
    pub p90: f64,
    /// Reached or beaten by 99% of the epochs (1st percentile).
    pub p99: f64,
    /// The slowest epoch.
    pub min: f64,
}

impl Tput {
    fn of(xs: &[f64]) -> Tput {
        Tput {
            mean: mean(xs),
            cv: crate::bench::stats::cv(xs) * 100.0,
            p50: percentile(xs, 0.5),
            p90: percentile(xs, 0.1),
            p99: percentile(xs, 0.01),
            min: crate::bench::stats::min_max(xs).0,
        }
    }
}

/// What the epochs say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Epochs in all.
    pub epochs: usize,
    /// Epochs left out as warm-up.
    pub warmup: usize,
    /// Epochs averaged at each end for the drift.
    pub window: usize,
    /// Ops in all epochs.
    pub ops: u64,
    /// Seconds of the whole soak (to the end of the last epoch).
    pub secs: f64,
    /// Mean RSS of the first window after the warm-up, KiB.
    pub rss_first_kib: f64,
    /// Mean RSS of the last window, KiB.
    pub rss_last_kib: f64,
    /// RSS drift, percent.
    pub drift: f64,
    /// Smallest and largest RSS over all epochs, KiB.
    pub rss_min_kib: u64,
    /// Largest RSS over all epochs, KiB.
    pub rss_max_kib: u64,
    /// Wall-clock throughput of the post-warm-up epochs.
    pub wall: Tput,
    /// CPU-time throughput of the post-warm-up epochs.
    pub cpu: Tput,
    /// CPU seconds / wall seconds over the post-warm-up epochs (1.0 = had a core to itself).
    pub cpu_share: f64,
    /// Syscalls per op over the post-warm-up epochs.
    pub syscalls_per_op: Option<f64>,
    /// Syscalls over the post-warm-up epochs.
    pub syscalls_post: Option<u64>,
    /// Syscalls at the end of the last epoch (since the process started).
    pub syscalls_total: Option<u64>,
    /// Lean decommits at the end, and over the post-warm-up epochs.
    pub lean_decommit: Option<(u64, u64)>,
    /// Lean retirements at the end, and over the post-warm-up epochs.
    pub lean_retire: Option<(u64, u64)>,
}

/// Summarizes `rows` with the first `warmup` fraction left out.
pub fn summarize(rows: &[Row], warmup: f64) -> Summary {
    let n = rows.len();
    if n == 0 {
        return Summary::default();
    }
    let warm = ((n as f64 * warmup).round() as usize).min(n - 1);
    let post = &rows[warm..];
    let window = ((n as f64 * 0.1).round() as usize).clamp(1, post.len());
    let rss = |r: &[Row]| mean(&r.iter().map(|x| x.rss_kib as f64).collect::<Vec<_>>());
    let first = rss(&post[..window]);
    let last = rss(&post[post.len() - window..]);
    let wall: Vec<f64> = post.iter().map(Row::ops_per_sec).collect();
    let cpu: Vec<f64> = post.iter().map(Row::ops_per_cpu_sec).collect();
    let post_ops: u64 = post.iter().map(|r| r.ops).sum();
    let post_secs: f64 = post.iter().map(|r| r.secs).sum();
    let post_cpu: f64 = post.iter().map(|r| r.cpu_secs).sum();
    let before = |f: fn(&Row) -> Option<u64>| {
        if warm == 0 {
            Some(0)
        } else {
            f(&rows[warm - 1])
        }
    };
    let end = rows.last().expect("non-empty");
    let delta = |f: fn(&Row) -> Option<u64>| -> Option<(u64, u64)> {
        let e = f(end)?;
        Some((e, e.saturating_sub(before(f)?)))
    };
    let sys = delta(|r| r.syscalls);
    Summary {
        epochs: n,
        warmup: warm,
        window,
        ops: rows.iter().map(|r| r.ops).sum(),
        secs: end.t,
        rss_first_kib: first,
        rss_last_kib: last,
        drift: if first > 0.0 {
            (last / first - 1.0) * 100.0
        } else {
            0.0
        },
        rss_min_kib: rows.iter().map(|r| r.rss_kib).min().unwrap_or(0),
        rss_max_kib: rows.iter().map(|r| r.rss_kib).max().unwrap_or(0),
        wall: Tput::of(&wall),
        cpu: Tput::of(&cpu),
        cpu_share: post_cpu / post_secs.max(1e-12),
        syscalls_per_op: sys.map(|(_, d)| d as f64 / post_ops.max(1) as f64),
        syscalls_post: sys.map(|(_, d)| d),
        syscalls_total: sys.map(|(e, _)| e),
        lean_decommit: delta(|r| r.lean_decommit),
        lean_retire: delta(|r| r.lean_retire),
    }
}

/// A verdict and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `GO`, `NEUTRAL` or `NO-GO`.
    pub word: &'static str,
    /// The reasons, one per criterion.
    pub reasons: Vec<String>,
}

/// Judges a summary. `crash` is the reason the process failed, if it did.
pub fn judge(s: &Summary, c: &Criteria, crash: Option<&str>) -> Verdict {
    let mut reasons = Vec::new();
    let mut nogo = false;
    if let Some(why) = crash {
        nogo = true;
        reasons.push(format!("crash: {why}"));
    }
    if s.epochs < 3 {
        reasons.push(format!(
            "only {} epochs: too few to judge drift and CV",
            s.epochs
        ));
        let word = if nogo { "NO-GO" } else { "NEUTRAL" };
        return Verdict { word, reasons };
    }
    let cv = if c.cv_on_cpu { s.cpu.cv } else { s.wall.cv };
    let drift_ok = s.drift.abs() < c.max_drift;
    let cv_ok = cv < c.max_cv;
    let sys = s.syscalls_per_op;
    let sys_ok = sys.is_none_or(|x| x < c.max_syscalls);
    if s.drift > c.nogo_drift {
        nogo = true;
    }
    if sys.is_some_and(|x| x > c.nogo_syscalls) {
        nogo = true;
    }
    reasons.push(format!(
        "RSS drift {:+.2}% ({} GO limit {}%{})",
        s.drift,
        if drift_ok { "within" } else { "outside" },
        c.max_drift,
        if s.drift > c.nogo_drift {
            format!(", above the NO-GO limit {}%", c.nogo_drift)
        } else {
            String::new()
        }
    ));
    reasons.push(format!(
        "throughput CV ({}) {:.2}% ({} {}%)",
        if c.cv_on_cpu { "CPU-time" } else { "wall" },
        cv,
        if cv_ok { "<" } else { ">=" },
        c.max_cv
    ));
    match sys {
        Some(x) => reasons.push(format!(
            "syscalls/op {x:.2e} ({} {:e}{})",
            if sys_ok { "<" } else { ">=" },
            c.max_syscalls,
            if x > c.nogo_syscalls {
                format!(", above the NO-GO limit {:e}", c.nogo_syscalls)
            } else {
                String::new()
            }
        )),
        None => reasons.push("syscalls/op: no counter (peer allocator): not judged".into()),
    }
    let word = if nogo {
        "NO-GO"
    } else if drift_ok && cv_ok && sys_ok {
        "GO"
    } else {
        "NEUTRAL"
    };
    Verdict { word, reasons }
}

fn mops(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else {
        format!("{:.2}", x / 1e6)
    }
}

fn mib(kib: f64) -> String {
    format!("{:.2} MiB", kib / 1024.0)
}

/// Everything the summary page needs.
struct Report<'a> {
    opts: &'a Opts,
    host: &'a Host,
    args: &'a [String],
    rows: &'a [Row],
    summary: &'a Summary,
    verdict: &'a Verdict,
    exit: &'a str,
    peak_rss_kib: Option<u64>,
    load_after: &'a str,
    csv: &'a str,
    svg: &'a str,
}

fn markdown(r: &Report) -> String {
    let s = r.summary;
    let o = r.opts;
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# Soak: {} on `{}`, {} min\n",
        o.contender.name, o.workload.name, o.minutes
    );
    let _ = writeln!(m, "**Verdict: {}**\n", r.verdict.word);
    for why in &r.verdict.reasons {
        let _ = writeln!(m, "- {why}");
    }
    let _ = writeln!(
        m,
        "\nCriteria (fixed before the run): {}\n",
        o.criteria.describe()
    );
    let _ = writeln!(m, "## Configuration\n");
    let _ = writeln!(
        m,
        "- contender: {} ({}; features `{}`)",
        o.contender.name,
        o.contender.about,
        o.contender.features.join(",")
    );
    let _ = writeln!(
        m,
        "- command: `hakmem-bench {}`{}",
        r.args.join(" "),
        if o.env.is_empty() {
            String::new()
        } else {
            format!(
                " with {}",
                o.env
                    .iter()
                    .map(|(k, v)| format!("`{k}={v}`"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    );
    let _ = writeln!(
        m,
        "- {} epochs of {} ops, {:.1} s in all; warm-up: the first {} epochs; drift window: {} epochs",
        s.epochs,
        r.rows.first().map_or(0, |x| x.ops),
        s.secs,
        s.warmup,
        s.window
    );
    let _ = writeln!(
        m,
        "- host {}, {} ({} cores), kernel {}, {}; git {}; {}; load average {} before, {} after",
        r.host.hostname,
        r.host.cpu,
        r.host.cores,
        r.host.kernel,
        r.host.rustc,
        r.host.rev_label(),
        r.host.date,
        r.host.load,
        r.load_after
    );
    let _ = writeln!(m, "- process exit: {}", r.exit);
    let _ = writeln!(m, "- files: `{}`, `{}`\n", r.csv, r.svg);
    let _ = writeln!(m, "## Numbers (after the warm-up)\n");
    let _ = writeln!(
        m,
        "Throughput twice: wall-clock ops/s, and ops per CPU-second of the process (the \
         machine is shared; the process had {:.0}% of a core on average over these epochs). \
         p90 and p99 are tail percentiles: the throughput 90% / 99% of the epochs reached or beat.\n",
        s.cpu_share * 100.0
    );
    let rows = vec![
        vec![
            "wall-clock Mops/s".to_string(),
            mops(s.wall.mean),
            format!("{:.2}%", s.wall.cv),
            mops(s.wall.p50),
            mops(s.wall.p90),
            mops(s.wall.p99),
            mops(s.wall.min),
        ],
        vec![
            "Mops per CPU-s".to_string(),
            mops(s.cpu.mean),
            format!("{:.2}%", s.cpu.cv),
            mops(s.cpu.p50),
            mops(s.cpu.p90),
            mops(s.cpu.p99),
            mops(s.cpu.min),
        ],
    ];
    m.push_str(&table(
        &[
            "throughput".into(),
            "mean".into(),
            "CV".into(),
            "p50".into(),
            "p90".into(),
            "p99".into(),
            "min".into(),
        ],
        &rows,
        &[false, true, true, true, true, true, true],
    ));
    let opt = |x: Option<u64>| x.map_or("n/a".to_string(), |v| v.to_string());
    let rows2 = vec![
        vec![
            "RSS, first window after warm-up (mean)".to_string(),
            mib(s.rss_first_kib),
        ],
        vec!["RSS, last window (mean)".into(), mib(s.rss_last_kib)],
        vec!["RSS drift".into(), format!("{:+.3}%", s.drift)],
        vec![
            "RSS min / max over all epochs".into(),
            format!(
                "{} / {}",
                mib(s.rss_min_kib as f64),
                mib(s.rss_max_kib as f64)
            ),
        ],
        vec![
            "peak RSS (ru_maxrss)".into(),
            r.peak_rss_kib.map_or("n/a".into(), |k| mib(k as f64)),
        ],
        vec![
            "syscalls/op (after warm-up)".into(),
            s.syscalls_per_op
                .map_or("n/a".into(), |x| format!("{x:.3e}")),
        ],
        vec![
            "syscalls after warm-up / whole process".into(),
            format!("{} / {}", opt(s.syscalls_post), opt(s.syscalls_total)),
        ],
        vec![
            "lean_decommit after warm-up / whole process".into(),
            s.lean_decommit
                .map_or("n/a".into(), |(e, d)| format!("{d} / {e}")),
        ],
        vec![
            "lean_retire after warm-up / whole process".into(),
            s.lean_retire
                .map_or("n/a".into(), |(e, d)| format!("{d} / {e}")),
        ],
        vec!["ops (all epochs)".into(), s.ops.to_string()],
    ];
    m.push('\n');
    m.push_str(&table(
        &["measure".into(), "value".into()],
        &rows2,
        &[false, true],
    ));
    m
}

fn to_json(r: &Report) -> Value {
    let s = r.summary;
    let t = |x: &Tput| json!({"mean": x.mean, "cv_pct": x.cv, "p50": x.p50, "p90": x.p90, "p99": x.p99, "min": x.min});
    json!({
        "contender": r.opts.contender.name,
        "workload": r.opts.workload.name,
        "minutes": r.opts.minutes,
        "args": r.args,
        "env": r.opts.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "criteria": {
            "max_drift_pct": r.opts.criteria.max_drift,
            "max_cv_pct": r.opts.criteria.max_cv,
            "cv_basis": if r.opts.criteria.cv_on_cpu { "cpu" } else { "wall" },
            "max_syscalls_per_op": r.opts.criteria.max_syscalls,
            "nogo_drift_pct": r.opts.criteria.nogo_drift,
            "nogo_syscalls_per_op": r.opts.criteria.nogo_syscalls,
        },
        "verdict": r.verdict.word,
        "reasons": r.verdict.reasons,
        "exit": r.exit,
        "epochs": s.epochs,
        "warmup_epochs": s.warmup,
        "window_epochs": s.window,
        "ops": s.ops,
        "secs": s.secs,
        "rss_first_kib": s.rss_first_kib,
        "rss_last_kib": s.rss_last_kib,
        "rss_drift_pct": s.drift,
        "rss_min_kib": s.rss_min_kib,
        "rss_max_kib": s.rss_max_kib,
        "peak_rss_kib": r.peak_rss_kib,
        "wall": t(&s.wall),
        "cpu": t(&s.cpu),
        "cpu_share": s.cpu_share,
        "syscalls_per_op": s.syscalls_per_op,
        "syscalls_post": s.syscalls_post,
        "syscalls_total": s.syscalls_total,
        "lean_decommit": s.lean_decommit.map(|(e, d)| json!({"total": e, "post": d})),
        "lean_retire": s.lean_retire.map(|(e, d)| json!({"total": e, "post": d})),
        "host": {
            "hostname": r.host.hostname, "cpu": r.host.cpu, "cores": r.host.cores,
            "kernel": r.host.kernel, "rustc": r.host.rustc, "rev": r.host.rev_label(),
            "date": r.host.date, "load_before": r.host.load, "load_after": r.load_after,
        },
    })
}

/// Two panels over time: RSS (MiB), and throughput (wall and CPU-time, Mops/s).
pub fn svg(title: &str, rows: &[Row], warmup: usize) -> String {
    let (w, left, right) = (900.0, 70.0, 20.0);
    let (panel_h, top1, gap) = (200.0, 50.0, 60.0);
    let top2 = top1 + panel_h + gap;
    let height = top2 + panel_h + 50.0;
    let pw = w - left - right;
    let tmax = rows.last().map_or(1.0, |r| r.t).max(1e-9);
    let x = |t: f64| left + pw * t / tmax;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{height:.0}" viewBox="0 0 {w:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let rss: Vec<f64> = rows.iter().map(|r| r.rss_kib as f64 / 1024.0).collect();
    let live: Vec<f64> = rows
        .iter()
        .map(|r| r.allocated_kib as f64 / 1024.0)
        .collect();
    let wall: Vec<f64> = rows.iter().map(|r| r.ops_per_sec() / 1e6).collect();
    let cpu: Vec<f64> = rows.iter().map(|r| r.ops_per_cpu_sec() / 1e6).collect();
    let panel = |s: &mut String, top: f64, label: &str, series: &[(&[f64], &str, &str)]| {
        let ymax = series
            .iter()
            .flat_map(|(v, _, _)| v.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.1;
        let y = |v: f64| top + panel_h * (1.0 - (v / ymax).clamp(0.0, 1.0));
        for k in 0..=4 {
            let v = ymax * k as f64 / 4.0;
            let yy = y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{yy:.1}" x2="{:.0}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" text-anchor="end">{v:.1}</text>"##,
                w - right,
                left - 5.0,
                yy + 4.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="{:.0}" font-weight="bold">{}</text>"#,
            top - 8.0,
            esc(label)
        );
        let mut lx = left + 260.0;
        for (v, col, name) in series {
            let pts: Vec<String> = rows
                .iter()
                .zip(v.iter())
                .map(|(r, &val)| format!("{:.1},{:.1}", x(r.t), y(val)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{col}" stroke-width="1.2" points="{}"/>"#,
                pts.join(" ")
            );
            let _ = writeln!(
                s,
                r#"<rect x="{lx:.0}" y="{:.0}" width="10" height="3" fill="{col}"/><text x="{:.0}" y="{:.0}">{}</text>"#,
                top - 13.0,
                lx + 13.0,
                top - 8.0,
                esc(name)
            );
            lx += 30.0 + name.len() as f64 * 6.0;
        }
        if warmup > 0 && warmup < rows.len() {
            let wx = x(rows[warmup - 1].t);
            let _ = writeln!(
                s,
                r##"<line x1="{wx:.1}" y1="{top:.0}" x2="{wx:.1}" y2="{:.0}" stroke="#888" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.0}" fill="#888">warm-up</text>"##,
                top + panel_h,
                wx + 3.0,
                top + 12.0
            );
        }
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="#000"/>"##,
            top + panel_h,
            w - right,
            top + panel_h
        );
    };
    panel(
        &mut s,
        top1,
        "RSS (MiB)",
        &[
            (&rss, "#1f77b4", "RSS"),
            (&live, "#aaa", "live bytes of the workload"),
        ],
    );
    panel(
        &mut s,
        top2,
        "throughput per epoch (Mops/s)",
        &[
            (&wall, "#d62728", "wall-clock ops/s"),
            (&cpu, "#2ca02c", "ops per CPU-second"),
        ],
    );
    for k in 0..=5 {
        let t = tmax * k as f64 / 5.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.0}" text-anchor="middle">{}</text>"#,
            x(t),
            top2 + panel_h + 16.0,
            progress::duration(t)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.0}" y="{:.0}" text-anchor="middle">time since start</text>"#,
        left + pw / 2.0,
        top2 + panel_h + 34.0
    );
    s.push_str("</svg>\n");
    s
}

/// Entry point of `cargo xtask soak`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let opts = match parse_opts(args) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask soak: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok("NO-GO") => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask soak: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(o: &Opts) -> Result<&'static str, String> {
    let root = host::workspace_root();
    let host = Host::probe(&root);
    let mut progress = Progress::new();
    let bin = if o.build {
        builder::build_all(&root, &[o.contender], &mut progress)
            .into_iter()
            .next()
            .ok_or("nothing built")?
            .bin?
    } else {
        let p = builder::build_dir(&root).join("bin").join(o.contender.name);
        if !p.exists() {
            return Err(format!("{} missing (run without --no-build)", p.display()));
        }
        p
    };
    let out_dir = o
        .out
        .clone()
        .unwrap_or_else(|| root.join("target").join("soak"));
    std::fs::create_dir_all(out_dir.join("bin")).map_err(|e| e.to_string())?;
    let base = format!("{}-{}", host.stamp, o.label);
    // A private copy: a later `cargo xtask bench` may replace the shared binary.
    let frozen = out_dir.join("bin").join(&base);
    std::fs::copy(&bin, &frozen).map_err(|e| format!("copying {}: {e}", bin.display()))?;
    let secs = o.minutes * 60.0;
    let mut args = vec![
        o.workload.name.to_string(),
        "--soak-secs".into(),
        format!("{secs}"),
        "--epoch-ops".into(),
        o.epoch_ops
            .unwrap_or(o.workload.ops.saturating_mul(5))
            .to_string(),
    ];
    if let Some(ws) = o.ws {
        args.extend(["--ws".into(), ws.to_string()]);
    }
    if let Some(s) = o.seed {
        args.extend(["--seed".into(), s.to_string()]);
    }
    let csv_path = out_dir.join(format!("{base}.csv"));
    let svg_path = out_dir.join(format!("{base}.svg"));
    let md_path = out_dir.join(format!("{base}.md"));
    let json_path = out_dir.join(format!("{base}.json"));
    let err_path = out_dir.join(format!("{base}.stderr"));
    println!(
        "soak: {} on {} for {} min (git {}, {}), binary {}",
        o.contender.name,
        o.workload.name,
        o.minutes,
        host.rev_label(),
        host.date,
        frozen.display()
    );
    println!("command: hakmem-bench {}", args.join(" "));
    if !o.env.is_empty() {
        let e: Vec<String> = o.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("environment: {}", e.join(" "));
    }
    println!(
        "criteria (fixed before the run; warm-up {:.0}% of the epochs): {}",
        o.warmup * 100.0,
        o.criteria.describe()
    );
    println!("writing {}", csv_path.display());
    let _ = std::io::stdout().flush();

    let mut csv = std::fs::File::create(&csv_path).map_err(|e| e.to_string())?;
    let _ = writeln!(csv, "{}", Row::CSV_HEADER);
    let err_file = std::fs::File::create(&err_path).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&frozen);
    cmd.args(&args)
        .envs(o.env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err_file));
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let t0 = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut peak = None;
    let mut last_shown = Instant::now() - Duration::from_secs(3600);
    let mut prog = Progress::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(r) = Row::parse(&line) {
            let _ = writeln!(csv, "{}", r.csv());
            let _ = csv.flush();
            if last_shown.elapsed() >= Duration::from_secs(30) || prog_is_tty() {
                last_shown = Instant::now();
                prog.line(&format!(
                    "[soak {}] {}/{} · epoch {} · {} Mops/s ({} per CPU-s) · RSS {} · syscalls {} · decommit {} · retire {}",
                    o.label,
                    progress::duration(r.t),
                    progress::duration(secs),
                    r.epoch,
                    mops(r.ops_per_sec()),
                    mops(r.ops_per_cpu_sec()),
                    mib(r.rss_kib as f64),
                    r.syscalls.map_or("n/a".into(), |x| x.to_string()),
                    r.lean_decommit.map_or("n/a".into(), |x| x.to_string()),
                    r.lean_retire.map_or("n/a".into(), |x| x.to_string()),
                ));
            }
            rows.push(r);
        } else if let Some(j) = line.strip_prefix(hakmem_bench::soak::END_PREFIX) {
            peak = serde_json::from_str::<Value>(j)
                .ok()
                .and_then(|v| v.get("peak_rss_kib").and_then(Value::as_u64));
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    prog.clear();
    let load_after = host::load_average();
    let stderr_tail = std::fs::read_to_string(&err_path)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string();
    let crash = if status.success() {
        None
    } else {
        let how = match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => "killed".into(),
        };
        Some(if stderr_tail.is_empty() {
            how
        } else {
            format!("{how}: {stderr_tail}")
        })
    };
    let exit = crash.clone().unwrap_or_else(|| "0 (clean)".into());
    let summary = summarize(&rows, o.warmup);
    let verdict = judge(&summary, &o.criteria, crash.as_deref());
    let title = format!(
        "soak {} · {} · {} epochs · {} · git {}",
        o.contender.name,
        o.workload.name,
        rows.len(),
        progress::duration(summary.secs),
        host.rev_label()
    );
    let svg_text = svg(&title, &rows, summary.warmup);
    let rel = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();
    let (csv_rel, svg_rel) = (rel(&csv_path), rel(&svg_path));
    let report = Report {
        opts: o,
        host: &host,
        args: &args,
        rows: &rows,
        summary: &summary,
        verdict: &verdict,
        exit: &exit,
        peak_rss_kib: peak,
        load_after: &load_after,
        csv: &csv_rel,
        svg: &svg_rel,
    };
    let md = markdown(&report);
    let js = serde_json::to_string_pretty(&to_json(&report)).unwrap_or_default();
    for (p, body) in [(&svg_path, &svg_text), (&md_path, &md), (&json_path, &js)] {
        std::fs::write(p, body).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    println!("{md}");
    eprintln!(
        "soak done in {} · wrote {}, {}, {}, {}",
        progress::duration(t0.elapsed().as_secs_f64()),
        rel(&csv_path),
        rel(&md_path),
        rel(&json_path),
        rel(&svg_path)
    );
    Ok(verdict.word)
}

fn prog_is_tty() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(rss: &[u64], ops_per_sec: &[f64], sys: &[u64]) -> Vec<Row> {
        let mut t = 0.0;
        rss.iter()
            .zip(ops_per_sec)
            .zip(sys)
            .enumerate()
            .map(|(i, ((&r, &v), &s))| {
                let secs = 1e6 / v;
                t += secs;
                Row {
                    epoch: i as u64 + 1,
                    t,
                    secs,
                    cpu_secs: secs,
                    ops: 1_000_000,
                    rss_kib: r,
                    allocated_kib: 0,
                    syscalls: Some(s),
                    lean_decommit: Some(0),
                    lean_retire: Some(0),
                }
            })
            .collect()
    }

    #[test]
    fn percentiles_are_tails() {
        let v: Vec<f64> = (1..=101).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.1), 11.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        let t = Tput::of(&v);
        assert_eq!((t.p50, t.p90, t.p99, t.min), (51.0, 11.0, 2.0, 1.0));
    }

    #[test]
    fn flat_soak_is_go() {
        let n = 20;
        let r = rows(&vec![1000; n], &vec![1e8; n], &vec![10; n]);
        let s = summarize(&r, 0.1);
        assert_eq!((s.warmup, s.window), (2, 2));
        assert_eq!(s.drift, 0.0);
        assert_eq!(s.syscalls_per_op, Some(0.0));
        let v = judge(&s, &Criteria::defaults(false), None);
        assert_eq!(v.word, "GO", "{v:?}");
    }

    #[test]
    fn growth_leaks_and_crashes_are_no_go() {
        let n = 20;
        let rss: Vec<u64> = (0..n as u64).map(|i| 1000 + 100 * i).collect();
        let r = rows(&rss, &vec![1e8; n], &vec![10; n]);
        let s = summarize(&r, 0.1);
        assert!(s.drift > 5.0, "{}", s.drift);
        assert_eq!(judge(&s, &Criteria::defaults(false), None).word, "NO-GO");
        let flat = summarize(&rows(&vec![1000; n], &vec![1e8; n], &vec![0; n]), 0.1);
        assert_eq!(
            judge(&flat, &Criteria::defaults(false), Some("signal 11")).word,
            "NO-GO"
        );
        // 1 syscall per epoch of 1e6 ops: 1e-6/op: NEUTRAL for BALANCED, GO for... not below
        // LEAN's 1e-6 either (strict), so NEUTRAL; 1e-4/op is NO-GO.
        let sys: Vec<u64> = (0..n as u64).collect();
        let s = summarize(&rows(&vec![1000; n], &vec![1e8; n], &sys), 0.1);
        assert!((s.syscalls_per_op.unwrap() - 1e-6).abs() < 1e-12);
        assert_eq!(judge(&s, &Criteria::defaults(false), None).word, "NEUTRAL");
        let sys: Vec<u64> = (0..n as u64).map(|i| i * 100).collect();
        let s = summarize(&rows(&vec![1000; n], &vec![1e8; n], &sys), 0.1);
        assert_eq!(judge(&s, &Criteria::defaults(true), None).word, "NO-GO");
    }

    #[test]
    fn noisy_throughput_is_neutral() {
        let n = 20;
        let tp: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 1e8 } else { 0.9e8 })
            .collect();
        let s = summarize(&rows(&vec![1000; n], &tp, &vec![0; n]), 0.1);
        assert!(s.cpu.cv > 2.0);
        assert_eq!(judge(&s, &Criteria::defaults(false), None).word, "NEUTRAL");
        let few = summarize(&rows(&[1000, 1000], &[1e8, 1e8], &[0, 0]), 0.1);
        assert_eq!(
            judge(&few, &Criteria::defaults(false), None).word,
            "NEUTRAL"
        );
    }

    #[test]
    fn epoch_lines_round_trip_to_csv() {
        let l = "EPOCH {\"epoch\":2,\"t\":1.5,\"secs\":0.5,\"cpu_secs\":0.25,\"ops\":100,\"ops_per_sec\":200.0,\"ops_per_cpu_sec\":400.0,\"rss_kib\":2048,\"allocated_kib\":3,\"syscalls\":null,\"lean_decommit\":null,\"lean_retire\":null}";
        let r = Row::parse(l).unwrap();
        assert_eq!(
            (r.epoch, r.ops, r.rss_kib, r.syscalls),
            (2, 100, 2048, None)
        );
        assert_eq!(r.csv(), "2,1.500,0.500000,0.250000,100,200,400,2048,3,,,");
        assert_eq!(
            Row::CSV_HEADER.split(',').count(),
            r.csv().split(',').count()
        );
        assert!(Row::parse("RESULT {}").is_none());
        let svg = svg("t", &[r, Row { t: 3.0, ..r }], 1);
        assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    }

    #[test]
    fn options() {
        let o = parse_opts(
            [
                "--preset",
                "lean",
                "--minutes",
                "0.5",
                "--max-cv",
                "5",
                "--env",
                "A=1",
            ]
            .map(OsString::from)
            .to_vec(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(o.contender.name, "hakmem-lean");
        assert_eq!(o.criteria.max_syscalls, 1e-6);
        assert_eq!(o.criteria.max_cv, 5.0);
        assert_eq!(o.env, vec![("A".to_string(), "1".to_string())]);
        assert!(parse_opts(vec!["--workload".into(), "mt".into()]).is_err());
        assert!(env_pair("=1").is_err());
    }
}
