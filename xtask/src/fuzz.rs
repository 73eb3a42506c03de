//! `cargo xtask fuzz`: the differential fuzzer (`crates/hakmem-fuzz`, see
//! `docs/fuzz.md`) against each target in each preset.
//!
//! For every preset it builds `hakmem-fuzz` and `libhakmem.so` with the preset's
//! features in the `fuzz` profile (optimized, with debug assertions and overflow checks,
//! no LTO) into `target/fuzz-build`, then runs `hakmem-fuzz --target raw|global|c`, the
//! `c` target under `LD_PRELOAD` of that preset's `libhakmem.so`. Fails (exit 1) if any
//! run reports a failed check, dies (an `abort` from hakmem's own checks, a fault) or
//! hangs (killed a minute after its time).

use crate::bench::progress;
use crate::host;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

const HELP: &str = "\
usage: cargo xtask fuzz [options]

Builds hakmem-fuzz and libhakmem.so in each preset (profile `fuzz`: optimized, debug
assertions on) and runs the differential fuzzer against each target: random programs of
malloc/calloc/realloc/aligned/free/usable-size on several threads that hand blocks to
each other, checked against a shadow model (contents, alignment, no overlap, usable size,
every valid free accepted, refusals). See docs/fuzz.md.

options:
  --secs S           total time, split evenly between the runs (default 60)
  --seed S           seed (default: a new one, printed; the same for every run)
  --threads T        workers alive at a time (default 4; 1 is deterministic)
  --ops N            stop each run after N ops (with --threads 1: exactly reproducible)
  --target T[,T]     raw, global, c or all (default all)
  --preset P[,P]     safe, balanced, lean, hardened or all (default all)
  --no-build         use target/fuzz-build/bin/<preset>/ as it is
  -h, --help         this text
";

/// A build of the fuzzer: a preset and the features that make it.
struct Preset {
    name: &'static str,
    /// Features of both packages (`hakmem-fuzz` and `hakmem-preload-so`), by name.
    features: &'static [&'static str],
}

const PRESETS: [Preset; 4] = [
    Preset {
        name: "safe",
        features: &["preset-safe"],
    },
    Preset {
        name: "balanced",
        features: &[],
    },
    Preset {
        name: "lean",
        features: &["preset-lean"],
    },
    Preset {
        name: "hardened",
        features: &["hardened"],
    },
];

const TARGETS: [&str; 3] = ["raw", "global", "c"];

/// Entry point of `cargo xtask fuzz`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

fn list<'a>(v: &str, all: &[&'a str], what: &str) -> Result<Vec<&'a str>, String> {
    let mut out = Vec::new();
    for s in v.split(',').filter(|s| !s.is_empty()) {
        if s == "all" {
            out.extend_from_slice(all);
        } else {
            let s = s.to_ascii_lowercase();
            let s = s.strip_prefix("preset-").unwrap_or(&s);
            let x = all
                .iter()
                .find(|a| **a == s)
                .ok_or_else(|| format!("unknown {what} {s:?} ({})", all.join(", ")))?;
            out.push(*x);
        }
    }
    out.dedup();
    Ok(out)
}

fn run(args: Vec<OsString>) -> Result<bool, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut secs = 60.0f64;
    let mut threads = 4usize;
    let mut seed: Option<u64> = None;
    let mut ops: Option<u64> = None;
    let mut targets: Vec<&str> = Vec::new();
    let mut presets: Vec<&str> = Vec::new();
    let mut build = true;
    let preset_names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    let v = crate::arg_value;
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("secs") => {
                secs = v(&mut p)?
                    .parse::<f64>()
                    .map_err(|e| format!("--secs: {e}"))?
            }
            Long("minutes") => {
                secs = v(&mut p)?
                    .parse::<f64>()
                    .map_err(|e| format!("--minutes: {e}"))?
                    * 60.0
            }
            Long("threads") => {
                threads = v(&mut p)?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            Long("seed") => seed = Some(v(&mut p)?.parse().map_err(|e| format!("--seed: {e}"))?),
            Long("ops") => ops = Some(v(&mut p)?.parse().map_err(|e| format!("--ops: {e}"))?),
            Long("target" | "targets") => targets.extend(list(&v(&mut p)?, &TARGETS, "target")?),
            Long("preset" | "presets") => {
                presets.extend(list(&v(&mut p)?, &preset_names, "preset")?)
            }
            Long("no-build") => build = false,
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(true);
            }
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    if presets.is_empty() {
        presets = preset_names.clone();
    }
    let seed = seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        (t ^ u64::from(std::process::id()).rotate_left(32)) % 1_000_000_007
    });
    let root = host::workspace_root();
    let dir = crate::host::target_dir(&root).join("fuzz-build");
    let runs = (presets.len() * targets.len()).max(1);
    let each = secs / runs as f64;
    eprintln!(
        "fuzz: seed {seed}, {threads} threads, {} per run, targets {}, presets {}",
        progress::duration(each),
        targets.join(","),
        presets.join(",")
    );
    let mut ok = true;
    let mut failed: Vec<String> = Vec::new();
    for name in &presets {
        let preset = PRESETS.iter().find(|p| p.name == *name).expect("listed");
        let bins = dir.join("bin").join(preset.name);
        if build {
            build_preset(&root, &dir, &bins, preset)?;
        }
        let (fuzz, so) = (bins.join("hakmem-fuzz"), bins.join("libhakmem.so"));
        for f in [&fuzz, &so] {
            if !f.is_file() {
                return Err(format!("{} missing (run without --no-build)", f.display()));
            }
        }
        for target in &targets {
            let label = format!("{} {target}", preset.name);
            let good = run_one(&fuzz, &so, target, seed, threads, each, ops, &label)?;
            if !good {
                ok = false;
                failed.push(format!(
                    "cargo xtask fuzz --preset {} --target {target} --seed {seed} --threads {threads} --secs {each:.0}{}",
                    preset.name,
                    ops.map(|n| format!(" --ops {n}")).unwrap_or_default()
                ));
            }
        }
    }
    if !failed.is_empty() {
        println!("fuzz: FAILED; to reproduce:");
        for f in &failed {
            println!("  {f}");
        }
    }
    Ok(ok)
}

fn build_preset(root: &Path, dir: &Path, bins: &Path, p: &Preset) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let features: Vec<String> = p
        .features
        .iter()
        .flat_map(|f| [format!("hakmem-fuzz/{f}"), format!("hakmem-preload-so/{f}")])
        .collect();
    let t0 = Instant::now();
    eprintln!(
        "fuzz {}: building (features: {})",
        p.name,
        p.features.join(",").as_str()
    );
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--profile",
            "fuzz",
            "-p",
            "hakmem-fuzz",
            "-p",
            "hakmem-preload-so",
        ])
        .args(["--message-format=json-render-diagnostics", "--target-dir"])
        .arg(dir);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the {} preset failed", p.name));
    }
    let (mut exe, mut so) = (None, None);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["reason"] != "compiler-artifact" {
            continue;
        }
        if v["target"]["name"] == "hakmem-fuzz"
            && let Some(e) = v["executable"].as_str()
        {
            exe = Some(PathBuf::from(e));
        }
        if let Some(files) = v["filenames"].as_array() {
            for f in files.iter().filter_map(|f| f.as_str()) {
                if f.ends_with("/libhakmem.so") {
                    so = Some(PathBuf::from(f));
                }
            }
        }
    }
    let _ = std::fs::create_dir_all(bins);
    for (what, src) in [("hakmem-fuzz", exe), ("libhakmem.so", so)] {
        let src = src.ok_or_else(|| format!("no {what} among cargo's artifacts"))?;
        let dst = bins.join(what);
        let _ = std::fs::remove_file(&dst);
        std::fs::copy(&src, &dst).map_err(|e| format!("copying {}: {e}", src.display()))?;
    }
    eprintln!(
        "fuzz {}: built in {}",
        p.name,
        progress::duration(t0.elapsed().as_secs_f64())
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    fuzz: &Path,
    so: &Path,
    target: &str,
    seed: u64,
    threads: usize,
    secs: f64,
    ops: Option<u64>,
    label: &str,
) -> Result<bool, String> {
    let mut cmd = Command::new(fuzz);
    cmd.args(["--target", target, "--seed", &seed.to_string()])
        .args([
            "--threads",
            &threads.to_string(),
            "--secs",
            &format!("{secs:.3}"),
        ]);
    if let Some(n) = ops {
        cmd.args(["--ops", &n.to_string()]);
    }
    if secs < 60.0 {
        cmd.arg("--quiet");
    }
    if target == "c" {
        cmd.env("LD_PRELOAD", so).arg("--require-hakmem");
    } else {
        cmd.env_remove("LD_PRELOAD");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", fuzz.display()))?;
    let pid = child.id() as i32;
    let err = child.stderr.take().expect("piped");
    let errs = std::thread::spawn(move || {
        let mut tail: Vec<String> = Vec::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            eprintln!("  {line}");
            tail.push(line);
        }
        tail
    });
    let out = child.stdout.take().expect("piped");
    let outs = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.starts_with("FUZZ "))
            .last()
    });
    // A hang is a failure too: the run is killed a minute after its time.
    let limit = Duration::from_secs_f64(secs + 60.0);
    let mut hung = false;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if t0.elapsed() > limit {
            hung = true;
            // SAFETY: signalling the process group created for the child.
            unsafe { libc_kill(-pid) };
            break child.wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let result = outs.join().unwrap_or_default();
    let tail = errs.join().unwrap_or_default();
    let took = progress::duration(t0.elapsed().as_secs_f64());
    if status.success() && result.is_some() && !hung {
        println!("fuzz {label}: ok in {took}: {}", result.unwrap_or_default());
        Ok(true)
    } else {
        // hakmem's own report of an abort first, else the fuzzer's failed check.
        let why = tail
            .iter()
            .find(|l| l.starts_with("hakmem:"))
            .or_else(|| tail.iter().find(|l| l.contains("FAILED")))
            .or_else(|| tail.iter().rev().find(|l| !l.trim().is_empty()))
            .cloned()
            .unwrap_or_default();
        println!(
            "fuzz {label}: FAILED after {took} ({}): {why}",
            if hung {
                "hung, killed".to_string()
            } else {
                status.to_string()
            }
        );
        Ok(false)
    }
}

/// `kill(pid, SIGKILL)` (a negative pid: the process group).
///
/// # Safety
/// `pid` names a process (group) this program started.
unsafe fn libc_kill(pid: i32) {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    // SAFETY: the caller's guarantee; SIGKILL is 9 on Linux.
    unsafe { kill(pid, 9) };
}
