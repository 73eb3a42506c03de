//! `cargo xtask cbench` (also `cargo xtask bench --c-abi`, `cargo xtask c-abi`): the C-ABI
//! bench. C and C++ workload programs (`crates/hakmem-preload/bench/cbench.c`,
//! `larson.cpp`) run under `LD_PRELOAD` of `libhakmem.so` (each preset, built here) and of
//! the peers' Debian-packaged shared libraries (mimalloc, jemalloc, tcmalloc; a missing
//! one is skipped with the `apt-get install` line that brings it), and under glibc's
//! malloc (no preload). Interleaved rounds (the order rotates each round), the median of
//! each cell, the ratio to mimalloc's `.so` of the same run, and the peak RSS.
//! `--callgrind` counts instructions per op of `bench/mixed.c` instead:
//! (Ir(3 M ops) - Ir(1 M ops)) / 2 M under `valgrind --tool=callgrind`, for each
//! contender, and the instructions of two whole processes (start-up and exit: `mixed` of
//! one op, and `cbench thread` starting two threads). See `docs/benchmarks.md`, "C-ABI
//! bench".
//!
//! Written beside `bench` (not inside it): its own contenders (shared objects, not
//! builds of the Rust bench binary) and its own small table, through the shared
//! formatters of `crate::text`.

use crate::host::{self, Host};
use crate::stats;
use crate::text;
use serde_json::json;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const HELP: &str = "\
usage: cargo xtask cbench [options]     (also: cargo xtask bench --c-abi [options])

Runs C/C++ workloads (crates/hakmem-preload/bench/cbench.c, larson.cpp) under
LD_PRELOAD of libhakmem.so (each preset, built into target/cbench/) and of the peers'
shared libraries, and under glibc's malloc; interleaved rounds, median, ratio to
mimalloc's .so, peak RSS. Writes target/bench/<date>-<rev>-cabi.{md,json}.
Peers come from Debian packages; a missing one is skipped:
  apt-get install libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4

options:
  --quick              1/10 of the default ops
  --workload W[,W]     simple, thread, prodcons, larson, large (default: all)
  --alloc A[,A]        hakmem (every preset), hakmem-balanced, hakmem-safe, hakmem-lean,
                       mimalloc, jemalloc, tcmalloc, glibc (default: all; mimalloc, the
                       reference, is always added)
  --preset P[,P]       hakmem presets: balanced, safe, lean (default: all three)
  --runs N             rounds (default 3)
  --threads T          threads of the threaded workloads (default: number of cores)
  --ops-scale F        multiply every workload's op count by F
  --timeout S          seconds before a run is killed (default 120)
  --no-build           use the libraries and programs already in target/cbench
  --callgrind          instructions per op of bench/mixed.c under valgrind, per contender,
                       and of two whole processes (no thread; two threads)
  -h, --help           this text
";

/// A C workload: the program that runs it and its default op count.
#[derive(Debug)]
struct Workload {
    name: &'static str,
    /// `larson` is the C++ program; the others are modes of `cbench.c`.
    cxx: bool,
    threaded: bool,
    ops: u64,
    what: &'static str,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "simple",
        cxx: false,
        threaded: false,
        ops: 10_000_000,
        what: "1 thread, small-block churn (glibc bench-malloc-simple): n blocks of 16..1024 B allocated then freed",
    },
    Workload {
        name: "thread",
        cxx: false,
        threaded: true,
        ops: 20_000_000,
        what: "glibc bench-malloc-thread: per thread 1024 slots, random replace, 4..32768 B (small most frequent)",
    },
    Workload {
        name: "prodcons",
        cxx: false,
        threaded: true,
        ops: 5_000_000,
        what: "producer/consumer: half the threads allocate 64 B blocks, the other half free them (ring per pair)",
    },
    Workload {
        name: "larson",
        cxx: true,
        threaded: true,
        ops: 10_000_000,
        what: "larson-like, C++ `operator new` / sized `operator delete`, 16..1024 B, blocks passed to the next thread every 20,000 ops",
    },
    Workload {
        name: "large",
        cxx: false,
        threaded: true,
        // 100,000: at 10,000 (30-60 ms) the first touch of each page was most of the time,
        // and one library's time moved by 2x between runs (results/230).
        ops: 100_000,
        what: "large blocks under threads: 8 slots per thread, 64 KiB..4 MiB, one byte per page written (peak RSS)",
    },
];

/// How a contender is put under the program.
#[derive(Clone, Debug)]
enum Lib {
    /// `libhakmem.so` of a preset (built by cargo).
    Hakmem(&'static str),
    /// A peer's shared library, by its file names (first found wins) and its package.
    Peer(&'static [&'static str], &'static str),
    /// glibc's malloc: no preload.
    Glibc,
}

#[derive(Clone, Debug)]
struct Contender {
    name: &'static str,
    lib: Lib,
}

const REFERENCE: &str = "mimalloc";

fn all_contenders() -> Vec<Contender> {
    vec![
        Contender {
            name: "hakmem-balanced",
            lib: Lib::Hakmem("balanced"),
        },
        Contender {
            name: "hakmem-safe",
            lib: Lib::Hakmem("safe"),
        },
        Contender {
            name: "hakmem-lean",
            lib: Lib::Hakmem("lean"),
        },
        Contender {
            name: "mimalloc",
            lib: Lib::Peer(&["libmimalloc.so.2", "libmimalloc.so"], "libmimalloc2.0"),
        },
        Contender {
            name: "jemalloc",
            lib: Lib::Peer(&["libjemalloc.so.2", "libjemalloc.so"], "libjemalloc2"),
        },
        Contender {
            name: "tcmalloc",
            lib: Lib::Peer(
                &["libtcmalloc_minimal.so.4", "libtcmalloc_minimal.so"],
                "libtcmalloc-minimal4",
            ),
        },
        Contender {
            name: "glibc",
            lib: Lib::Glibc,
        },
    ]
}

#[derive(Debug)]
struct Opts {
    quick: bool,
    workloads: Vec<&'static Workload>,
    contenders: Vec<Contender>,
    runs: usize,
    threads: usize,
    ops_scale: f64,
    timeout: Duration,
    build: bool,
    callgrind: bool,
}

fn list(v: String) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn parse(args: Vec<OsString>) -> Result<Option<Opts>, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let (mut quick, mut build, mut callgrind) = (false, true, false);
    let (mut wl, mut al, mut presets) = (Vec::new(), Vec::new(), Vec::new());
    let mut runs = 3usize;
    let mut threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut ops_scale = 1.0f64;
    let mut timeout = 120u64;
    let num = |s: String| s.parse::<f64>().map_err(|e| format!("{s:?}: {e}"));
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("quick") => quick = true,
            Long("c-abi") => {}
            Long("workload" | "workloads") | Short('w') => {
                wl.extend(list(crate::arg_value(&mut p)?))
            }
            Long("alloc" | "allocs") | Short('a') => al.extend(list(crate::arg_value(&mut p)?)),
            Long("preset" | "presets") => presets.extend(list(crate::arg_value(&mut p)?)),
            Long("runs") => runs = num(crate::arg_value(&mut p)?)?.max(1.0) as usize,
            Long("threads") => threads = num(crate::arg_value(&mut p)?)?.max(1.0) as usize,
            Long("ops-scale") => ops_scale = num(crate::arg_value(&mut p)?)?,
            Long("timeout") => timeout = num(crate::arg_value(&mut p)?)? as u64,
            Long("no-build") => build = false,
            Long("callgrind") => callgrind = true,
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(None);
            }
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    let workloads = if wl.is_empty() {
        WORKLOADS.iter().collect()
    } else {
        wl.iter()
            .map(|w| {
                WORKLOADS.iter().find(|x| x.name == w).ok_or_else(|| {
                    format!(
                        "unknown workload {w:?} (known: simple, thread, prodcons, larson, large)"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let presets: Vec<&str> = if presets.is_empty() {
        vec!["balanced", "safe", "lean"]
    } else {
        presets
            .iter()
            .map(|p| match p.to_ascii_lowercase().as_str() {
                "balanced" => Ok("balanced"),
                "safe" => Ok("safe"),
                "lean" => Ok("lean"),
                _ => Err(format!("unknown preset {p:?} (balanced, safe, lean)")),
            })
            .collect::<Result<_, _>>()?
    };
    let all = all_contenders();
    let is_preset = |c: &Contender| matches!(c.lib, Lib::Hakmem(p) if presets.contains(&p));
    let mut contenders: Vec<Contender> = Vec::new();
    if al.is_empty() {
        contenders.extend(
            all.iter()
                .filter(|c| !matches!(c.lib, Lib::Hakmem(_)) || is_preset(c))
                .cloned(),
        );
    } else {
        for a in &al {
            let picked: Vec<Contender> = if a == "hakmem" {
                all.iter().filter(|c| is_preset(c)).cloned().collect()
            } else {
                all.iter().filter(|c| c.name == a).cloned().collect()
            };
            if picked.is_empty() {
                let names: Vec<_> = all.iter().map(|c| c.name).collect();
                return Err(format!(
                    "unknown allocator {a:?} (known: hakmem, {})",
                    names.join(", ")
                ));
            }
            for c in picked {
                if !contenders.iter().any(|x| x.name == c.name) {
                    contenders.push(c);
                }
            }
        }
        if !contenders.iter().any(|c| c.name == REFERENCE) {
            contenders.extend(all.iter().filter(|c| c.name == REFERENCE).cloned());
        }
    }
    Ok(Some(Opts {
        quick,
        workloads,
        contenders,
        runs,
        threads,
        ops_scale,
        timeout: Duration::from_secs(timeout),
        build,
        callgrind,
    }))
}

/// Where a peer's library is, if installed.
fn find_peer(files: &[&str]) -> Option<PathBuf> {
    let dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
    ];
    files
        .iter()
        .flat_map(|f| dirs.iter().map(move |d| Path::new(d).join(f)))
        .find(|p| p.is_file())
}

/// Builds (or finds, with `--no-build`) `libhakmem.so` of `preset` in its own target
/// directory, `target/cbench/so-<preset>`.
fn hakmem_so(root: &Path, preset: &str, build: bool) -> Result<PathBuf, String> {
    let dir = root
        .join("target")
        .join("cbench")
        .join(format!("so-{preset}"));
    let so = dir.join("release").join("libhakmem.so");
    if build {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.args(["build", "--release", "--quiet", "-p", "hakmem-preload-so"]);
        // BALANCED is the facade's default; the other presets win over it.
        if preset != "balanced" {
            cmd.args(["--features", &format!("preset-{preset}")]);
        }
        cmd.arg("--target-dir").arg(&dir).current_dir(root);
        let st = cmd.status().map_err(|e| format!("cargo: {e}"))?;
        if !st.success() {
            return Err(format!(
                "cargo build -p hakmem-preload-so ({preset}) failed"
            ));
        }
    }
    if so.is_file() {
        Ok(so)
    } else {
        Err(format!("{} missing", so.display()))
    }
}

/// Compiles a workload program (`cc` or `g++`, `-O2`) into `target/cbench/`.
fn compile(root: &Path, src: &str, out: &str, cxx: bool, build: bool) -> Result<PathBuf, String> {
    let exe = root.join("target").join("cbench").join(out);
    // Programs compile in a moment: `--no-build` compiles only the missing ones.
    if build || !exe.is_file() {
        let _ = std::fs::create_dir_all(exe.parent().unwrap_or(root));
        let compiler = if cxx {
            std::env::var("CXX").unwrap_or_else(|_| "g++".into())
        } else {
            std::env::var("CC").unwrap_or_else(|_| "cc".into())
        };
        let out = Command::new(&compiler)
            .args(["-O2", "-g", "-pthread", "-o"])
            .arg(&exe)
            .arg(root.join("crates/hakmem-preload/bench").join(src))
            .output()
            .map_err(|e| format!("{compiler}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{compiler} {src} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    if exe.is_file() {
        Ok(exe)
    } else {
        Err(format!("{} missing", exe.display()))
    }
}

/// One run, as the program reported it.
#[derive(Clone, Debug)]
struct Sample {
    ops: u64,
    secs: f64,
    rss_kib: u64,
    checksum: u64,
}

/// The value of `key=` in a `cbench ...` line.
fn field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
}

fn parse_line(stdout: &str) -> Result<Sample, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("cbench "))
        .ok_or("no `cbench` result line")?;
    let u = |k: &str| {
        field(line, k)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or(format!("no {k} in {line:?}"))
    };
    Ok(Sample {
        ops: u("ops")?,
        secs: field(line, "secs")
            .and_then(|v| v.parse().ok())
            .ok_or("no secs")?,
        rss_kib: u("peak_rss_kib")?,
        checksum: u("checksum")?,
    })
}

/// Runs `cmd` with `preload` (or none), killing it after `timeout`; its stdout.
fn run(mut cmd: Command, preload: Option<&Path>, timeout: Duration) -> Result<String, String> {
    match preload {
        Some(so) => cmd.env("LD_PRELOAD", so),
        None => cmd.env_remove("LD_PRELOAD"),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("failed ({}): {}", out.status, last.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A contender ready to run: its preload (None for glibc) or why it cannot run.
struct Ready {
    c: Contender,
    so: Result<Option<PathBuf>, String>,
}

fn prepare(root: &Path, opts: &Opts) -> Vec<Ready> {
    opts.contenders
        .iter()
        .map(|c| {
            let so = match &c.lib {
                Lib::Glibc => Ok(None),
                Lib::Peer(files, pkg) => find_peer(files)
                    .map(Some)
                    .ok_or_else(|| format!("not installed (apt-get install {pkg})")),
                Lib::Hakmem(p) => {
                    if opts.build {
                        eprintln!("building libhakmem.so ({p}) ...");
                    }
                    hakmem_so(root, p, opts.build).map(Some)
                }
            };
            if let Err(e) = &so {
                eprintln!("cbench: skipping {}: {e}", c.name);
            }
            Ready { c: c.clone(), so }
        })
        .collect()
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let opts = match parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask cbench: {e}");
            return ExitCode::from(2);
        }
    };
    let root = host::workspace_root();
    let host = Host::probe(&root);
    let ready = prepare(&root, &opts);
    if opts.callgrind {
        return callgrind(&root, &host, &opts, &ready);
    }
    let c_exe = compile(&root, "cbench.c", "cbench", false, opts.build);
    let cxx_exe = if opts.workloads.iter().any(|w| w.cxx) {
        compile(&root, "larson.cpp", "larson", true, opts.build)
    } else {
        Err("not needed".into())
    };
    let scale = opts.ops_scale * if opts.quick { 0.1 } else { 1.0 };
    // samples[w][c] = runs
    let nw = opts.workloads.len();
    let nc = ready.len();
    let mut samples: Vec<Vec<Vec<Sample>>> = vec![vec![Vec::new(); nc]; nw];
    let mut errors: Vec<Vec<Option<String>>> = vec![vec![None; nc]; nw];
    let started = Instant::now();
    for round in 0..opts.runs {
        for (wi, w) in opts.workloads.iter().enumerate() {
            let exe = if w.cxx { &cxx_exe } else { &c_exe };
            let ops = ((w.ops as f64 * scale) as u64).max(1);
            for k in 0..nc {
                // Rotate the order from round to round (and workload to workload).
                let ci = (k + round + wi) % nc;
                let r = &ready[ci];
                let Ok(so) = &r.so else { continue };
                let exe = match exe {
                    Ok(e) => e,
                    Err(e) => {
                        errors[wi][ci] = Some(e.clone());
                        continue;
                    }
                };
                eprint!(
                    "\r\x1b[2K[round {}/{} · {:.0} s] {} · {}",
                    round + 1,
                    opts.runs,
                    started.elapsed().as_secs_f64(),
                    w.name,
                    r.c.name
                );
                let mut cmd = Command::new(exe);
                let threads = if w.threaded { opts.threads } else { 1 };
                cmd.args([w.name, &threads.to_string(), &ops.to_string(), "42"]);
                match run(cmd, so.as_deref(), opts.timeout).and_then(|o| parse_line(&o)) {
                    Ok(s) => samples[wi][ci].push(s),
                    Err(e) => errors[wi][ci] = Some(e),
                }
            }
        }
    }
    eprintln!();
    let md = report(&host, &opts, &ready, &samples, &errors);
    println!("{md}");
    let dir = root.join("target").join("bench");
    let base = format!("{}-{}-cabi", host.stamp, host.rev_label());
    let doc = to_json(&host, &opts, &ready, &samples, &errors);
    let bad = errors.iter().flatten().any(Option::is_some);
    if text::write_report(&dir, &base, &md, &doc, "xtask cbench") && !bad {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Throughput of each run (ops per second).
fn rates(s: &[Sample]) -> Vec<f64> {
    s.iter().map(|x| x.ops as f64 / x.secs.max(1e-9)).collect()
}

fn median_rss(s: &[Sample]) -> f64 {
    stats::median(&s.iter().map(|x| x.rss_kib as f64).collect::<Vec<_>>())
}

fn report(
    host: &Host,
    opts: &Opts,
    ready: &[Ready],
    samples: &[Vec<Vec<Sample>>],
    errors: &[Vec<Option<String>>],
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# hakmem C-ABI bench {}\n\n- git revision: {}\n- host: {}, CPU: {}, {} cores, load at start {}\n- {} interleaved rounds, {} threads for the threaded workloads{}; cells are medians; \"vs mimalloc\" divides by mimalloc's .so median of the same run (> 1 is faster)\n",
        host.date,
        host.rev_label(),
        host.hostname,
        host.cpu,
        host.cores,
        host.load,
        opts.runs,
        opts.threads,
        if opts.quick { ", --quick" } else { "" },
    );
    for r in ready {
        let how = match &r.so {
            Ok(Some(p)) => format!("LD_PRELOAD={}", p.display()),
            Ok(None) => "no preload (glibc malloc)".into(),
            Err(e) => format!("skipped: {e}"),
        };
        let _ = writeln!(md, "- {}: {how}", r.c.name);
    }
    md.push('\n');
    let refi = ready.iter().position(|r| r.c.name == REFERENCE);
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); ready.len()];
    let mut rss_ratios: Vec<Vec<f64>> = vec![Vec::new(); ready.len()];
    for (wi, w) in opts.workloads.iter().enumerate() {
        let _ = writeln!(md, "## {}\n\n{}\n", w.name, w.what);
        let ref_med = refi
            .map(|i| stats::median(&rates(&samples[wi][i])))
            .filter(|m| m.is_finite() && *m > 0.0);
        let ref_rss = refi
            .map(|i| median_rss(&samples[wi][i]))
            .filter(|m| m.is_finite() && *m > 0.0);
        let checksums: Vec<u64> = samples[wi]
            .iter()
            .flat_map(|s| s.iter().map(|x| x.checksum))
            .collect();
        let header: Vec<String> = [
            "contender",
            "Mops/s",
            "min–max",
            "CV",
            "vs mimalloc",
            "peak RSS",
            "RSS vs mimalloc",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut rows = Vec::new();
        for (ci, r) in ready.iter().enumerate() {
            if r.so.is_err() {
                continue;
            }
            let s = &samples[wi][ci];
            if s.is_empty() {
                let e = errors[wi][ci].clone().unwrap_or_else(|| "no runs".into());
                rows.push(vec![r.c.name.to_string(), e]);
                continue;
            }
            let x = rates(s);
            let m = stats::median(&x);
            let (lo, hi) = stats::min_max(&x);
            let rss = median_rss(s);
            let vs = ref_med.map_or(f64::NAN, |rm| m / rm);
            let vs_rss = ref_rss.map_or(f64::NAN, |rr| rss / rr);
            if vs.is_finite() {
                ratios[ci].push(vs);
            }
            if vs_rss.is_finite() {
                rss_ratios[ci].push(vs_rss);
            }
            let mut name = r.c.name.to_string();
            if let Some(e) = &errors[wi][ci] {
                name.push_str(&format!(" (a run failed: {e})"));
            }
            rows.push(vec![
                name,
                text::mops(m, text::Decimals::Sig3),
                format!(
                    "{}–{}",
                    text::mops(lo, text::Decimals::Sig3),
                    text::mops(hi, text::Decimals::Sig3)
                ),
                format!("{:.1}%", stats::cv(&x) * 100.0),
                text::ratio(vs),
                text::mib(rss),
                text::ratio(vs_rss),
            ]);
        }
        md.push_str(&text::table(
            &header,
            &rows,
            &[false, true, true, true, true, true, true],
        ));
        let same = checksums.windows(2).all(|p| p[0] == p[1]);
        let _ = writeln!(
            md,
            "\nchecksums: {}\n",
            if same {
                "all equal".to_string()
            } else {
                "DIFFER (a contender computed something else)".to_string()
            }
        );
    }
    let _ = writeln!(md, "## Summary (geometric means over the workloads)\n");
    let header: Vec<String> = ["contender", "speed vs mimalloc", "peak RSS vs mimalloc"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows: Vec<Vec<String>> = ready
        .iter()
        .enumerate()
        .filter(|(_, r)| r.so.is_ok())
        .map(|(ci, r)| {
            vec![
                r.c.name.to_string(),
                text::ratio(stats::geomean(&ratios[ci])),
                text::ratio(stats::geomean(&rss_ratios[ci])),
            ]
        })
        .collect();
    md.push_str(&text::table(&header, &rows, &[false, true, true]));
    md
}

fn to_json(
    host: &Host,
    opts: &Opts,
    ready: &[Ready],
    samples: &[Vec<Vec<Sample>>],
    errors: &[Vec<Option<String>>],
) -> serde_json::Value {
    let mut cells = Vec::new();
    for (wi, w) in opts.workloads.iter().enumerate() {
        for (ci, r) in ready.iter().enumerate() {
            cells.push(json!({
                "workload": w.name,
                "contender": r.c.name,
                "skipped": r.so.as_ref().err(),
                "error": errors[wi][ci],
                "runs": samples[wi][ci].iter().map(|s| json!({
                    "ops": s.ops, "secs": s.secs, "peak_rss_kib": s.rss_kib, "checksum": s.checksum,
                })).collect::<Vec<_>>(),
            }));
        }
    }
    json!({
        "date": host.date,
        "git": {"rev": host.rev, "dirty": host.dirty},
        "host": {"hostname": host.hostname, "cpu": host.cpu, "cores": host.cores, "load": host.load},
        "runs": opts.runs,
        "threads": opts.threads,
        "quick": opts.quick,
        "cells": cells,
    })
}

/// Instructions executed by `exe args` under callgrind with `preload`.
fn callgrind_ir(
    exe: &Path,
    args: &[&str],
    preload: Option<&Path>,
    out: &Path,
    t: Duration,
) -> Result<u64, String> {
    let mut cmd = crate::bench::runner::callgrind_command(exe, out);
    cmd.args(args);
    run(cmd, preload, t)?;
    crate::bench::runner::callgrind_total(out)
}

/// What `--callgrind` measures of one contender.
struct CallgrindRow {
    /// Instructions per op of `bench/mixed.c`.
    per_op: f64,
    /// Instructions of a whole process with no thread (`mixed` of one op).
    one: u64,
    /// Instructions of a whole process that starts two threads (`cbench thread 2 2`).
    two: u64,
}

/// `--callgrind`: instructions per op of `bench/mixed.c` for each contender, and of two
/// whole processes.
fn callgrind(root: &Path, host: &Host, opts: &Opts, ready: &[Ready]) -> ExitCode {
    if !host::have("valgrind") {
        eprintln!("xtask cbench --callgrind: valgrind not found (apt-get install valgrind)");
        return ExitCode::FAILURE;
    }
    let (exe, cbench) = match compile(root, "mixed.c", "mixed", false, opts.build)
        .and_then(|m| Ok((m, compile(root, "cbench.c", "cbench", false, opts.build)?)))
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("xtask cbench --callgrind: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (n1, n2) = if opts.quick {
        (200_000u64, 600_000u64)
    } else {
        (1_000_000u64, 3_000_000u64)
    };
    let tmp = std::env::temp_dir().join(format!("hakmem-cbench-callgrind-{}", std::process::id()));
    let mut rows: Vec<(String, Result<CallgrindRow, String>)> = Vec::new();
    for r in ready {
        let Ok(so) = &r.so else { continue };
        eprintln!("callgrind: {} ...", r.c.name);
        let run_ir = |exe: &Path, args: &[&str]| {
            callgrind_ir(exe, args, so.as_deref(), &tmp, opts.timeout * 4)
        };
        let ir = |n: u64| run_ir(&exe, &[&n.to_string(), "400", "42"]);
        let res = ir(n1).and_then(|a| {
            let per_op = ir(n2).map(|b| (b as f64 - a as f64) / (n2 - n1) as f64)?;
            // Whole processes: start-up and exit, once with no thread, once with two.
            let one = run_ir(&exe, &["1", "400", "42"])?;
            let two = run_ir(&cbench, &["thread", "2", "2", "42"])?;
            Ok(CallgrindRow { per_op, one, two })
        });
        rows.push((r.c.name.to_string(), res));
    }
    let _ = std::fs::remove_file(&tmp);
    let reference = rows
        .iter()
        .find(|(n, _)| n == REFERENCE)
        .and_then(|(_, r)| r.as_ref().ok().map(|r| r.per_op));
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# hakmem C-ABI callgrind {}\n\n- git revision: {}\n- host: {}, CPU: {}\n- bench/mixed.c (1 thread, WS 400, 16..1024 B) under LD_PRELOAD of each library; instructions (Ir) per op = (Ir({n2} ops) - Ir({n1} ops)) / {}\n- process: instructions of a whole process, start-up and exit included: `mixed 1` (one op, no thread) and `cbench thread 2 2` (two threads started, one op each)\n",
        host.date,
        host.rev_label(),
        host.hostname,
        host.cpu,
        n2 - n1
    );
    let header: Vec<String> = [
        "contender",
        "Ir/op",
        "vs mimalloc",
        "process, no thread",
        "process, 2 threads",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(n, r)| match r {
            Ok(CallgrindRow {
                per_op: ir,
                one,
                two,
            }) => vec![
                n.clone(),
                format!("{ir:.1}"),
                reference.map_or("–".into(), |m| text::ratio(ir / m)),
                format!("{:.2} M", *one as f64 / 1e6),
                format!("{:.2} M", *two as f64 / 1e6),
            ],
            Err(e) => vec![
                n.clone(),
                e.clone(),
                String::new(),
                String::new(),
                String::new(),
            ],
        })
        .collect();
    md.push_str(&text::table(
        &header,
        &table,
        &[false, true, true, true, true],
    ));
    println!("{md}");
    let dir = root.join("target").join("bench");
    let base = format!("{}-{}-cabi-callgrind", host.stamp, host.rev_label());
    let doc = json!({
        "date": host.date,
        "git": {"rev": host.rev, "dirty": host.dirty},
        "ops": [n1, n2],
        "results": rows.iter().map(|(n, r)| match r {
            Ok(CallgrindRow { per_op: ir, one, two }) => json!({
                "contender": n,
                "ir_per_op": ir,
                "process_ir_no_thread": one,
                "process_ir_two_threads": two,
            }),
            Err(e) => json!({"contender": n, "error": e}),
        }).collect::<Vec<_>>(),
    });
    if !text::write_report(&dir, &base, &md, &doc, "xtask cbench --callgrind") {
        return ExitCode::FAILURE;
    }
    if rows.iter().any(|(_, r)| r.is_err()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_line() {
        let s = parse_line(
            "noise\ncbench workload=thread threads=2 ops=1000 secs=0.5 peak_rss_kib=77 checksum=9\n",
        )
        .unwrap();
        assert_eq!((s.ops, s.rss_kib, s.checksum), (1000, 77, 9));
        assert!((s.secs - 0.5).abs() < 1e-12);
        assert!(parse_line("nothing").is_err());
    }

    #[test]
    fn options() {
        let o = parse(vec![
            "--alloc".into(),
            "hakmem,glibc".into(),
            "--preset".into(),
            "lean".into(),
        ])
        .unwrap()
        .unwrap();
        let names: Vec<_> = o.contenders.iter().map(|c| c.name).collect();
        assert_eq!(names, ["hakmem-lean", "glibc", "mimalloc"]);
        let o = parse(vec!["--c-abi".into(), "--workload".into(), "larson".into()])
            .unwrap()
            .unwrap();
        assert_eq!(o.workloads.len(), 1);
        assert_eq!(o.contenders.len(), 7);
        assert!(parse(vec!["--workload".into(), "nope".into()]).is_err());
    }
}
