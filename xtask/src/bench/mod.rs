//! `cargo xtask bench`: build the contenders, run interleaved rounds, report.
//!
//! Every contender is the same `hakmem-bench` binary built with a different global
//! allocator. A round runs every contender once on every workload, in an order rotated from
//! round to round; a cell of the table is the median of its rounds, with the spread and the
//! CV, and is divided by mimalloc's median *of the same run*. Syscalls per op: hakmem's own
//! counter for hakmem; for everyone, `strace -f -c -e trace=memory` in one extra untimed
//! run (minus a run with 0 ops, so that set-up is excluded) when strace exists. Minor page
//! faults per op: every contender's `ru_minflt` over the timed section. The realistic
//! workloads' checksums are compared across contenders ([`check_checksums`]); `burst-*`
//! adds the resident set after the frees and after the idle time.

pub(crate) mod builder;
mod callgrind;
pub(crate) mod contenders;
pub(crate) mod progress;
pub(crate) mod render;
pub(crate) mod runner;

use crate::host::{self, Host};
use crate::stats;
use builder::Built;
use contenders::{CONTENDERS, Contender, Group, REFERENCE};
use hakmem_bench::{Kind, Spec, WORKLOADS};
use progress::Progress;
use runner::{Sample, StraceCount};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const HELP: &str = "\
usage: cargo xtask bench [options]

Builds hakmem (each preset) and its peers from the hakmem-bench workload source, runs
interleaved rounds and prints a table (progress on stderr). Writes
target/bench/<date>-<rev>.{json,md,svg}.

options:
  --quick              about two minutes: 1/10 of the default ops, time cap 0.5 s
  --workload W[,W]     workloads to run (default: all; see --list)
  --alloc A[,A]        contenders (default: all; `hakmem` = every preset, `glibc` = system);
                       mimalloc, the reference, is always added
  --preset P[,P]       hakmem presets: safe, balanced, lean (default: all three); the
                       seed's MIXED_TINYV3_C7_SAFE / _BALANCED name safe / balanced
  --runs N             rounds (default 3)
  --threads T          threads of the threaded workloads (default: number of cores)
  --ops-scale F        multiply every workload's default op count by F
  --seed S             PRNG seed (default: the workload's)
  --max-secs F         stop a run's timed loop after F seconds, reporting the ops done
                       (default 2; --quick 0.5)
  --idle-ms N          idle time of the burst-* workloads after their frees (default 1000;
                       --quick 250)
  --timeout S          seconds before a run is killed (default 120)
  --no-strace          do not count peers' syscalls with strace
  --no-build           use the binaries already in target/bench-build/bin
  --callgrind          instructions per op under valgrind (default workload: mixed)
  --list               list workloads and contenders
  -h, --help           this text
";

/// Parsed options.
#[derive(Clone, Debug)]
pub struct Opts {
    quick: bool,
    workloads: Vec<&'static Spec>,
    contenders: Vec<&'static Contender>,
    presets: Vec<String>,
    runs: usize,
    threads: usize,
    ops_scale: f64,
    seed: Option<u64>,
    timeout: Duration,
    max_secs: Option<f64>,
    idle_ms: Option<u64>,
    strace: bool,
    build: bool,
    callgrind: bool,
    list: bool,
}

fn split_list(v: OsString) -> Result<Vec<String>, String> {
    let s = v
        .into_string()
        .map_err(|_| "non-UTF-8 argument".to_string())?;
    Ok(s.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect())
}

fn parse_opts(args: Vec<OsString>) -> Result<Option<Opts>, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut quick = false;
    let mut wl: Vec<String> = Vec::new();
    let mut al: Vec<String> = Vec::new();
    let mut presets: Vec<String> = Vec::new();
    let mut runs = None;
    let mut threads = None;
    let mut ops_scale = None;
    let mut seed = None;
    let mut timeout = 120u64;
    let mut max_secs = None;
    let mut idle_ms = None;
    let (mut strace, mut build, mut callgrind, mut list) = (true, true, false, false);
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("quick") => quick = true,
            Long("workload" | "workloads") | Short('w') => {
                wl.extend(split_list(p.value().map_err(|e| e.to_string())?)?)
            }
            Long("alloc" | "allocs") | Short('a') => {
                al.extend(split_list(p.value().map_err(|e| e.to_string())?)?)
            }
            Long("preset" | "presets") => {
                presets.extend(split_list(p.value().map_err(|e| e.to_string())?)?)
            }
            Long("runs") => {
                runs = Some(
                    p.value()
                        .map_err(|e| e.to_string())?
                        .parse::<usize>()
                        .map_err(|e| format!("--runs: {e}"))?,
                )
            }
            Long("threads") => {
                threads = Some(
                    p.value()
                        .map_err(|e| e.to_string())?
                        .parse::<usize>()
                        .map_err(|e| format!("--threads: {e}"))?,
                )
            }
            Long("ops-scale") => {
                ops_scale = Some(
                    p.value()
                        .map_err(|e| e.to_string())?
                        .parse::<f64>()
                        .map_err(|e| format!("--ops-scale: {e}"))?,
                )
            }
            Long("seed") => {
                seed = Some(
                    p.value()
                        .map_err(|e| e.to_string())?
                        .parse::<u64>()
                        .map_err(|e| format!("--seed: {e}"))?,
                )
            }
            Long("timeout") => {
                timeout = p
                    .value()
                    .map_err(|e| e.to_string())?
                    .parse::<u64>()
                    .map_err(|e| format!("--timeout: {e}"))?
            }
            Long("max-secs") => {
                max_secs = Some(
                    p.value()
                        .map_err(|e| e.to_string())?
                        .parse::<f64>()
                        .map_err(|e| format!("--max-secs: {e}"))?,
                )
            }
            Long("idle-ms") => {
                idle_ms = Some(
                    p.value()
                        .map_err(|e| e.to_string())?
                        .parse::<u64>()
                        .map_err(|e| e.to_string())?,
                )
            }
            Long("no-strace") => strace = false,
            Long("no-build") => build = false,
            Long("callgrind") => callgrind = true,
            Long("list") => list = true,
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(None);
            }
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    // The one parser of preset names (it knows the seed's names too); canonical from here on.
    let presets: Vec<String> = presets
        .iter()
        .map(|pr| crate::preset::find(pr).map(|p| p.name.to_string()))
        .collect::<Result<_, _>>()?;
    let workloads: Vec<&'static Spec> = if wl.is_empty() {
        if callgrind {
            vec![hakmem_bench::spec("mixed").expect("mixed exists")]
        } else {
            WORKLOADS.iter().collect()
        }
    } else {
        let mut v = Vec::new();
        for w in &wl {
            let s = hakmem_bench::spec(w).ok_or_else(|| {
                let names: Vec<_> = WORKLOADS.iter().map(|s| s.name).collect();
                format!("unknown workload {w:?} (known: {})", names.join(", "))
            })?;
            if !v.iter().any(|x: &&Spec| x.name == s.name) {
                v.push(s);
            }
        }
        v
    };
    let mut chosen: Vec<&'static Contender> = Vec::new();
    if al.is_empty() {
        chosen.extend(contenders::hakmem_presets(&presets));
        chosen.extend(CONTENDERS.iter().filter(|c| c.group != Group::Hakmem));
    } else {
        for a in &al {
            chosen.extend(contenders::select(a, &presets)?);
        }
        if !presets.is_empty() && !al.iter().any(|a| a == "hakmem" || a.starts_with("hakmem-")) {
            chosen.extend(contenders::hakmem_presets(&presets));
        }
        if !chosen.iter().any(|c| c.name == REFERENCE) {
            chosen.extend(contenders::select(REFERENCE, &[])?);
        }
    }
    // Report order, no duplicates.
    let contenders: Vec<&'static Contender> = CONTENDERS
        .iter()
        .filter(|c| chosen.iter().any(|x| x.name == c.name))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(Some(Opts {
        quick,
        workloads,
        contenders,
        presets,
        runs: runs.unwrap_or(3).max(1),
        threads: threads.unwrap_or(cores).max(1),
        ops_scale: ops_scale.unwrap_or(if quick { 0.1 } else { 1.0 }),
        seed,
        timeout: Duration::from_secs(timeout.max(1)),
        max_secs,
        idle_ms,
        strace,
        build,
        callgrind,
        list,
    }))
}

impl Opts {
    /// The time cap of one run, seconds.
    fn max_secs(&self) -> f64 {
        self.max_secs.unwrap_or(if self.quick { 0.5 } else { 2.0 })
    }

    /// Idle time of the `burst-*` workloads, milliseconds.
    fn idle_ms(&self) -> u64 {
        self.idle_ms.unwrap_or(if self.quick { 250 } else { 1000 })
    }

    /// Ops of a timed run of `w`: the default scaled, rounded up to what the workload runs
    /// whole (documents of `json` and `text`, bursts of `burst-*`).
    fn ops(&self, w: &Spec) -> u64 {
        let scaled = ((w.ops as f64 * self.ops_scale).round() as u64).max(1);
        match w.kind {
            Kind::Json | Kind::Text | Kind::Burst => {
                let mut p = hakmem_bench::Params::of(w, 1);
                p.ops = scaled;
                p.expected_ops()
            }
            _ => scaled,
        }
    }

    /// The command line of a run of `w` with `ops` ops.
    fn args(&self, w: &Spec, ops: u64) -> Vec<String> {
        let mut a = vec![
            w.name.to_string(),
            "--ops".into(),
            ops.to_string(),
            "--threads".into(),
            self.threads.to_string(),
            "--max-secs".into(),
            self.max_secs().to_string(),
        ];
        if let Some(s) = self.seed {
            a.extend(["--seed".into(), s.to_string()]);
        }
        if w.kind == Kind::Burst {
            a.extend(["--idle-ms".into(), self.idle_ms().to_string()]);
        }
        a
    }
}

fn list() {
    println!("workloads (default ops of a full run):");
    for w in WORKLOADS {
        println!(
            "  {:<12} {:>11}  {}{}",
            w.name,
            w.ops,
            w.about,
            if w.threaded { " [threaded]" } else { "" }
        );
    }
    println!("contenders:");
    for c in CONTENDERS {
        println!(
            "  {:<16} {}  [features: {}]",
            c.name,
            c.about,
            c.features.join(",")
        );
    }
}

/// Why a contender has no number for a workload.
#[derive(Clone, Debug)]
pub enum Missing {
    /// The binary did not build.
    Build(String),
    /// The workload does not apply (floor on threads).
    NotApplicable(&'static str),
}

/// Everything measured for one contender on one workload.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    /// Successful timed runs.
    pub runs: Vec<Sample>,
    /// Failed runs (reasons).
    pub errors: Vec<String>,
    /// Why there is nothing to run.
    pub missing: Option<Missing>,
    /// strace counts of the run with ops and of the run with 0 ops, and the ops.
    pub strace: Option<Result<(StraceCount, StraceCount, u64), String>>,
}

impl Cell {
    fn throughputs(&self) -> Vec<f64> {
        self.runs.iter().map(Sample::ops_per_sec).collect()
    }
    /// Median ops/s (NaN without runs).
    pub fn median(&self) -> f64 {
        stats::median(&self.throughputs())
    }
    /// Median ops per CPU-second (NaN without runs).
    pub fn median_cpu(&self) -> f64 {
        let v: Vec<f64> = self.runs.iter().map(Sample::ops_per_cpu_sec).collect();
        stats::median(&v)
    }
    /// Syscalls per op counted by strace (ops run minus 0-op run).
    pub fn strace_per_op(&self) -> Option<f64> {
        match &self.strace {
            Some(Ok((n, zero, ops))) if *ops > 0 => {
                Some(n.total.saturating_sub(zero.total) as f64 / *ops as f64)
            }
            _ => None,
        }
    }
    /// The allocator's own count in the strace run itself (whole process, minus the 0-op
    /// run), per op: strace's figure should match it, whatever the timed rounds did.
    pub fn strace_own_per_op(&self) -> Option<f64> {
        match &self.strace {
            Some(Ok((n, zero, ops))) if *ops > 0 => {
                Some(n.own_total?.saturating_sub(zero.own_total?) as f64 / *ops as f64)
            }
            _ => None,
        }
    }
    /// Minor page faults per op, median over runs (NaN without runs).
    pub fn faults_per_op(&self) -> f64 {
        let v: Vec<f64> = self.runs.iter().map(Sample::faults_per_op).collect();
        stats::median(&v)
    }
    /// `burst-*`: median resident set after the frees and after the idle time, KiB.
    pub fn burst_rss_kib(&self) -> Option<(f64, f64)> {
        let a: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|s| s.rss_after_free_kib.map(|k| k as f64))
            .collect();
        let b: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|s| s.rss_after_idle_kib.map(|k| k as f64))
            .collect();
        (!a.is_empty() && !b.is_empty()).then(|| (stats::median(&a), stats::median(&b)))
    }
    /// Syscalls per op from the allocator's own counter (hakmem), median over runs.
    pub fn own_per_op(&self) -> Option<f64> {
        let v: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|s| s.syscalls.map(|n| n as f64 / s.ops.max(1) as f64))
            .collect();
        (!v.is_empty()).then(|| stats::median(&v))
    }
}

/// A whole benchmark run.
pub struct Results {
    /// Options it ran with.
    pub opts: Opts,
    /// The host.
    pub host: Host,
    /// Contenders as built.
    pub built: Vec<Built>,
    /// `cells[w][c]`: workload `w` of `opts.workloads`, contender `c` of `opts.contenders`.
    pub cells: Vec<Vec<Cell>>,
    /// Was strace used?
    pub strace_used: bool,
    /// Why not, if not.
    pub strace_note: String,
    /// Wall seconds of the rounds.
    pub secs: f64,
    /// Load averages when the rounds ended.
    pub load_after: String,
}

fn existing_bins(root: &Path, contenders: &[&'static Contender]) -> Vec<Built> {
    let dir = builder::build_dir(root);
    contenders
        .iter()
        .map(|c| {
            let p = dir.join("bin").join(c.name);
            Built {
                contender: c,
                bin: if p.exists() {
                    Ok(p)
                } else {
                    Err(format!(
                        "{} not built (run without --no-build)",
                        p.display()
                    ))
                },
                secs: 0.0,
                log: dir.join("logs").join(format!("{}.log", c.name)),
            }
        })
        .collect()
}

/// Entry point of `cargo xtask bench`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let opts = match parse_opts(args) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask bench: {e}");
            return ExitCode::from(2);
        }
    };
    if opts.list {
        list();
        return ExitCode::SUCCESS;
    }
    let root = host::workspace_root();
    let host = Host::probe(&root);
    let mut progress = Progress::new();
    let t0 = Instant::now();
    let built = if opts.build {
        builder::build_all(&root, &opts.contenders, &mut progress)
    } else {
        existing_bins(&root, &opts.contenders)
    };
    progress.done(&format!(
        "built {}/{} contenders in {}",
        built.iter().filter(|b| b.bin.is_ok()).count(),
        built.len(),
        progress::duration(t0.elapsed().as_secs_f64())
    ));
    if opts.callgrind {
        return callgrind::main(&opts, &host, &root, &built, &mut progress);
    }
    let results = run_all(opts, host, built, &mut progress);
    let out_dir = crate::host::target_dir(&root).join("bench");
    match render::write_all(&results, &out_dir) {
        Ok((table, files)) => {
            println!("{table}");
            for f in files {
                eprintln!("wrote {}", f.display());
            }
        }
        Err(e) => {
            eprintln!("xtask bench: writing results: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn run_all(opts: Opts, host: Host, built: Vec<Built>, progress: &mut Progress) -> Results {
    let nw = opts.workloads.len();
    let nc = opts.contenders.len();
    let mut cells: Vec<Vec<Cell>> = vec![vec![Cell::default(); nc]; nw];
    for (wi, w) in opts.workloads.iter().enumerate() {
        for (ci, b) in built.iter().enumerate() {
            let cell = &mut cells[wi][ci];
            if let Err(e) = &b.bin {
                cell.missing = Some(Missing::Build(e.clone()));
            } else if b.contender.group == Group::Floor && w.kind != Kind::Mixed {
                cell.missing = Some(Missing::NotApplicable(if w.threaded {
                    "single-threaded"
                } else {
                    "mixed workloads only"
                }));
            }
        }
    }
    let bins: Vec<Option<PathBuf>> = built.iter().map(|b| b.bin.as_ref().ok().cloned()).collect();
    let total: usize = cells
        .iter()
        .flatten()
        .filter(|c| c.missing.is_none())
        .count()
        * opts.runs;
    let t0 = Instant::now();
    let mut done = 0usize;
    for r in 0..opts.runs {
        for (wi, w) in opts.workloads.iter().enumerate() {
            let ops = opts.ops(w);
            let args = opts.args(w, ops);
            for k in 0..nc {
                let ci = (k + r + wi) % nc;
                let Some(bin) = &bins[ci] else { continue };
                if cells[wi][ci].missing.is_some() {
                    continue;
                }
                progress.line(&format!(
                    "[run {}/{total} · round {}/{}] {} · {} · eta {}",
                    done + 1,
                    r + 1,
                    opts.runs,
                    w.name,
                    opts.contenders[ci].name,
                    progress::eta(t0, done, total)
                ));
                match runner::run(bin, &args, opts.timeout) {
                    Ok(s) => cells[wi][ci].runs.push(s),
                    Err(e) => cells[wi][ci].errors.push(e),
                }
                done += 1;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    for (wi, row) in cells.iter_mut().enumerate() {
        let reference = opts.contenders.iter().position(|c| c.name == REFERENCE);
        check_checksums(row, reference, opts.workloads[wi].name);
    }
    let load_after = host::load_average();
    progress.done(&format!(
        "{done} timed runs in {} ({} rounds)",
        progress::duration(secs),
        opts.runs
    ));
    let have_strace = host::have("strace");
    let strace_used = opts.strace && have_strace;
    let strace_note = if !opts.strace {
        "not counted (--no-strace)".to_string()
    } else if !have_strace {
        "n/a: strace not found".to_string()
    } else {
        "strace -f -c -e trace=memory --seccomp-bpf, one untimed run with the same ops minus one \
         with 0 ops"
            .to_string()
    };
    if strace_used {
        let t1 = Instant::now();
        let tmp = std::env::temp_dir().join(format!("hakmem-bench-strace-{}", std::process::id()));
        let jobs: Vec<(usize, usize)> = (0..nw)
            .flat_map(|wi| (0..nc).map(move |ci| (wi, ci)))
            .filter(|&(wi, ci)| cells[wi][ci].missing.is_none() && !cells[wi][ci].runs.is_empty())
            .collect();
        for (j, &(wi, ci)) in jobs.iter().enumerate() {
            let w = opts.workloads[wi];
            let bin = bins[ci].as_ref().expect("built");
            progress.line(&format!(
                "[strace {}/{}] {} · {}",
                j + 1,
                jobs.len(),
                w.name,
                opts.contenders[ci].name
            ));
            let ops = opts.ops(w);
            let res = runner::strace(bin, &opts.args(w, ops), &tmp, opts.timeout * 4).and_then(
                |(n, done)| {
                    runner::strace(bin, &opts.args(w, 0), &tmp, opts.timeout)
                        .map(|(z, _)| (n, z, done))
                },
            );
            cells[wi][ci].strace = Some(res);
        }
        let _ = std::fs::remove_file(&tmp);
        progress.done(&format!(
            "{} strace runs in {}",
            jobs.len() * 2,
            progress::duration(t1.elapsed().as_secs_f64())
        ));
    }
    progress.clear();
    Results {
        opts,
        host,
        built,
        cells,
        strace_used,
        strace_note,
        secs,
        load_after,
    }
}

/// The realistic workloads compute the same thing under every allocator: a run whose
/// checksum differs from the reference's (or, without it, the first contender's) run with
/// the same ops is moved to the cell's errors. Runs cut short at different points have
/// different ops and are not compared.
pub fn check_checksums(row: &mut [Cell], reference: Option<usize>, workload: &str) {
    let mut order: Vec<usize> = reference.into_iter().collect();
    order.extend((0..row.len()).filter(|&i| Some(i) != reference));
    let mut seen: Vec<(u64, u64, usize)> = Vec::new();
    for &ci in &order {
        for s in &row[ci].runs {
            if let Some(c) = s.checksum
                && !seen.iter().any(|&(ops, _, _)| ops == s.ops)
            {
                seen.push((s.ops, c, ci));
            }
        }
    }
    for cell in row.iter_mut() {
        let (mut kept, mut bad) = (Vec::new(), Vec::new());
        for s in cell.runs.drain(..) {
            match (s.checksum, seen.iter().find(|x| x.0 == s.ops)) {
                (Some(c), Some(&(_, want, from))) if c != want => bad.push(format!(
                    "{workload}: checksum {c:#x} differs from {want:#x} (contender #{from}, same {} ops): wrong result",
                    s.ops
                )),
                _ => kept.push(s),
            }
        }
        cell.runs = kept;
        cell.errors.extend(bad);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ops: u64, checksum: Option<u64>) -> Sample {
        runner::parse_result(&format!(
            "RESULT {{\"ops\":{ops},\"secs\":1.0,\"checksum\":{}}}",
            checksum.map_or("null".into(), |c| c.to_string())
        ))
        .unwrap()
    }

    #[test]
    fn quick_runs_whole_documents_and_bursts() {
        let o = parse_opts(vec!["--quick".into()]).unwrap().unwrap();
        let ops = |n: &str| o.ops(hakmem_bench::spec(n).unwrap());
        assert_eq!(ops("json"), 20_000);
        assert_eq!(ops("burst-4k"), 2 * (200 << 20) / 4096);
        assert_eq!(ops("mixed"), 2_000_000);
    }

    #[test]
    fn a_different_checksum_is_an_error() {
        let mut row = vec![Cell::default(), Cell::default(), Cell::default()];
        row[0].runs = vec![sample(10, Some(1)), sample(20, Some(9))];
        row[1].runs = vec![
            sample(10, Some(2)),
            sample(20, Some(9)),
            sample(30, Some(5)),
        ];
        row[2].runs = vec![sample(10, Some(1)), sample(30, Some(6))];
        check_checksums(&mut row, Some(1), "json");
        // Contender 1 is the reference: its checksum for 10 ops is the one to match.
        assert_eq!(row[1].runs.len(), 3);
        assert_eq!((row[0].runs.len(), row[0].errors.len()), (1, 1));
        assert_eq!((row[2].runs.len(), row[2].errors.len()), (0, 2));
        assert!(row[0].errors[0].contains("checksum 0x1 differs from 0x2"));
        let mut plain = vec![Cell::default()];
        plain[0].runs = vec![sample(10, None), sample(10, None)];
        check_checksums(&mut plain, None, "mixed");
        assert_eq!(plain[0].runs.len(), 2);
    }

    fn names(args: &[&str]) -> Vec<&'static str> {
        let o = parse_opts(args.iter().map(OsString::from).collect())
            .unwrap()
            .unwrap();
        o.contenders.iter().map(|c| c.name).collect()
    }

    #[test]
    fn presets_by_our_names_and_the_seeds() {
        let n = names(&["--preset", "MIXED_TINYV3_C7_SAFE,mixed_tinyv3_c7_balanced"]);
        assert!(
            n.contains(&"hakmem-safe") && n.contains(&"hakmem-balanced"),
            "{n:?}"
        );
        assert!(!n.contains(&"hakmem-lean"), "{n:?}");
        let n = names(&[
            "--alloc",
            "mimalloc",
            "--preset",
            "MIXED_TINYV3_C7_BALANCED",
        ]);
        assert_eq!(n, ["hakmem-balanced", "mimalloc"]);
        let n = names(&["--alloc", "MIXED_TINYV3_C7_SAFE"]);
        assert_eq!(n, ["hakmem-safe", "mimalloc"]);
        assert!(parse_opts(vec!["--preset".into(), "fast".into()]).is_err());
    }
}
