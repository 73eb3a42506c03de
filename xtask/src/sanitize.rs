//! `cargo xtask sanitize`: the multi-threaded tests under ThreadSanitizer and
//! AddressSanitizer, where the machine's nightly toolchain allows it.
//!
//! Sanitizers need a nightly `rustc` (`-Zsanitizer`) with its sanitizer runtimes and the
//! `rust-src` component (`-Zbuild-std`: std is rebuilt instrumented, otherwise TSan
//! reports false races in an uninstrumented std). When any of that is missing the
//! command prints one line `SKIPPED: <why>` and exits 0: CI never requires a nightly.
//! Otherwise it builds and runs, per sanitizer and per preset, in `target/san-<name>/`:
//!
//! - the unit tests of `hakmem-ss-allocation` (central lists, transfer cache, registry);
//! - the facade's `stress`, `global_std` and `model` tests (scaled down by `--scale`;
//!   the RSS test is skipped: the sanitizers' shadow memory makes RSS meaningless);
//! - `hakmem-stress` (benches/src/stress.rs) for a share of `--secs`.
//!
//! The AddressSanitizer build also sets `--cfg hakmem_asan`, with which hakmem poisons
//! the bytes of a free slab block beyond its link words and unpoisons a block as it is
//! handed out (`hakmem_ss_allocation::asan`), so that a use after free or an overflow into
//! a free block is reported. Exits 1 on any sanitizer report or test failure.
//! See `docs/security.md` ("Sanitizer runs").

use crate::bench::progress;
use crate::host;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

const HELP: &str = "\
usage: cargo xtask sanitize [options]

Runs the multi-threaded tests (hakmem-ss-allocation's unit tests; the facade's stress,
global_std and model tests; the hakmem-stress binary) under ThreadSanitizer and/or
AddressSanitizer, built with a nightly toolchain (-Zsanitizer, -Zbuild-std). Prints
`SKIPPED: <why>` and exits 0 when the nightly or its rust-src / sanitizer runtime is
missing; exits 1 on any sanitizer report or test failure.

options:
  --sanitizer S      thread | address | all (default all)
  --secs S           hakmem-stress run time in seconds, split over sanitizers and
                     presets (default 20; 0: do not run it)
  --scale F          size of the cargo tests, a fraction of their defaults (default 0.1)
  --preset P[,P]     safe, balanced, lean, hardened (default: all four)
  --threads T        hakmem-stress workers (default 4)
  --toolchain NAME   the rustup toolchain to use (default nightly)
  -h, --help         this text
";

/// One sanitizer: its `-Zsanitizer` name and what it adds.
struct San {
    name: &'static str,
    /// The sanitizer runtime's file name ends with this (`librustc-nightly_rt.tsan.a`).
    runtime: &'static str,
    /// Extra `rustc` flags.
    flags: &'static str,
    /// The runtime's options variable and its value.
    options: (&'static str, &'static str),
    /// How its reports begin (counted in the output).
    report: &'static str,
}

const SANITIZERS: [San; 2] = [
    San {
        name: "thread",
        runtime: "_rt.tsan.a",
        flags: "",
        // `die_after_fork=0`: the fork test starts a thread in the child of a threaded
        // process, which TSan refuses by default.
        options: (
            "TSAN_OPTIONS",
            "halt_on_error=0 exitcode=66 die_after_fork=0 second_deadlock_stack=1",
        ),
        report: "WARNING: ThreadSanitizer:",
    },
    San {
        name: "address",
        runtime: "_rt.asan.a",
        flags: " --cfg hakmem_asan",
        options: (
            "ASAN_OPTIONS",
            "halt_on_error=1 detect_stack_use_after_return=1",
        ),
        report: "ERROR: AddressSanitizer:",
    },
];

/// One preset: its name and the facade features (`None`: the default features).
struct PresetRun {
    name: &'static str,
    facade: Option<&'static str>,
}

const PRESET_RUNS: [PresetRun; 4] = [
    PresetRun {
        name: "safe",
        facade: Some("preset-safe"),
    },
    PresetRun {
        name: "balanced",
        facade: None,
    },
    PresetRun {
        name: "lean",
        facade: Some("preset-lean"),
    },
    PresetRun {
        name: "hardened",
        facade: Some("hardened"),
    },
];

/// Entry point of `cargo xtask sanitize`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask sanitize: {e}");
            ExitCode::from(2)
        }
    }
}

struct Opts {
    sans: Vec<&'static San>,
    presets: Vec<&'static PresetRun>,
    secs: f64,
    scale: f64,
    threads: usize,
    toolchain: String,
}

fn parse(args: Vec<OsString>) -> Result<Option<Opts>, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut o = Opts {
        sans: SANITIZERS.iter().collect(),
        presets: PRESET_RUNS.iter().collect(),
        secs: 20.0,
        scale: 0.1,
        threads: 4,
        toolchain: "nightly".into(),
    };
    let v = crate::arg_value;
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("sanitizer" | "sanitizers") => {
                let s = v(&mut p)?;
                o.sans = match s.as_str() {
                    "all" => SANITIZERS.iter().collect(),
                    "thread" | "tsan" => vec![&SANITIZERS[0]],
                    "address" | "asan" => vec![&SANITIZERS[1]],
                    _ => return Err(format!("unknown sanitizer {s:?} (thread|address|all)")),
                };
            }
            Long("secs") => {
                o.secs = v(&mut p)?
                    .parse::<f64>()
                    .map_err(|e| format!("--secs: {e}"))?
            }
            Long("scale") => {
                o.scale = v(&mut p)?
                    .parse::<f64>()
                    .map_err(|e| format!("--scale: {e}"))?
            }
            Long("threads") => {
                o.threads = v(&mut p)?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            Long("toolchain") => o.toolchain = v(&mut p)?,
            Long("preset" | "presets") => {
                o.presets = v(&mut p)?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|n| {
                        PRESET_RUNS.iter().find(|r| r.name == n).ok_or_else(|| {
                            format!("unknown preset {n:?} (safe, balanced, lean, hardened)")
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(None);
            }
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    if !(o.scale > 0.0 && o.secs >= 0.0) {
        return Err("--scale must be > 0 and --secs >= 0".into());
    }
    Ok(Some(o))
}

/// `cargo +TOOLCHAIN`, with the toolchain chosen by the outer `cargo xtask` removed from
/// the environment.
fn cargo(toolchain: &str) -> Command {
    let mut c = Command::new("cargo");
    c.arg(format!("+{toolchain}"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    c
}

fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .next()
            .unwrap_or("failed")
            .to_string())
    }
}

/// What the toolchain offers: its host triple; or why it cannot run `sans`.
fn detect(toolchain: &str, sans: &[&San]) -> Result<String, String> {
    let rustc = |args: &[&str]| {
        let mut c = Command::new("rustc");
        c.arg(format!("+{toolchain}"))
            .args(args)
            .env_remove("RUSTUP_TOOLCHAIN");
        output(&mut c)
    };
    let vv = rustc(&["-vV"]).map_err(|e| {
        format!("no `{toolchain}` toolchain (rustup toolchain install {toolchain}): {e}")
    })?;
    if !vv.contains("-nightly") && !vv.contains("-dev") {
        return Err(format!(
            "`{toolchain}` is not a nightly toolchain (-Zsanitizer is unstable)"
        ));
    }
    let host = vv
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or("")
        .to_string();
    if !matches!(
        host.as_str(),
        "x86_64-unknown-linux-gnu" | "aarch64-unknown-linux-gnu"
    ) {
        return Err(format!(
            "host {host:?}: sanitizers are run on Linux x86_64/aarch64 only"
        ));
    }
    let sysroot = PathBuf::from(rustc(&["--print", "sysroot"])?);
    let src = sysroot.join("lib/rustlib/src/rust/library/std/Cargo.toml");
    if !src.is_file() {
        return Err(format!(
            "no rust-src in `{toolchain}` (rustup component add rust-src --toolchain {toolchain}): -Zbuild-std needs it"
        ));
    }
    let libdir = sysroot.join("lib/rustlib").join(&host).join("lib");
    let files: Vec<String> = std::fs::read_dir(&libdir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for s in sans {
        if !files.iter().any(|f| f.ends_with(s.runtime)) {
            return Err(format!(
                "`{toolchain}` has no {} sanitizer runtime (*{}) in {}",
                s.name,
                s.runtime,
                libdir.display()
            ));
        }
    }
    Ok(host)
}

/// A cargo failure that means the machine cannot build std from source (offline, no
/// vendored dependencies) rather than a fault of ours.
fn cannot_fetch(log: &str) -> bool {
    [
        "failed to download",
        "Unable to update registry",
        "failed to get `",
        "attempting to make an HTTP request, but --offline",
        "failed to load source for dependency",
    ]
    .iter()
    .any(|k| log.contains(k))
}

/// What one step did.
enum Outcome {
    Ok,
    /// Sanitizer reports (count) or a failure (reason).
    Failed(String),
    /// std could not be built from source here.
    NoBuildStd(String),
}

/// Runs `cmd` with its output shown (indented), counting sanitizer reports.
fn step(what: &str, cmd: &mut Command, san: &San, build: bool) -> Result<Outcome, String> {
    eprintln!("-- {what}");
    let t0 = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let err = child.stderr.take().expect("piped");
    let errs = std::thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let t = line.trim_start();
            // Cargo's own chatter is left out; everything else is shown.
            if !(t.starts_with("Compiling ")
                || t.starts_with("Finished ")
                || t.starts_with("Downloaded ")
                || t.starts_with("Downloading ")
                || t.starts_with("Blocking "))
            {
                eprintln!("   {line}");
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let mut out = String::new();
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(Result::ok)
    {
        let passed = line.starts_with("test ") && line.ends_with(" ok");
        if !passed && !line.trim().is_empty() {
            eprintln!("   {line}");
        }
        out.push_str(&line);
        out.push('\n');
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let log = errs.join().unwrap_or_default();
    let reports = log.matches(san.report).count() + out.matches(san.report).count();
    let took = progress::duration(t0.elapsed().as_secs_f64());
    if reports > 0 {
        return Ok(Outcome::Failed(format!(
            "{what}: {reports} {} sanitizer report(s) ({took})",
            san.name
        )));
    }
    if !status.success() {
        if build && cannot_fetch(&log) {
            let why = log
                .lines()
                .find(|l| l.contains("error"))
                .unwrap_or("cannot fetch std's dependencies")
                .trim()
                .to_string();
            return Ok(Outcome::NoBuildStd(why));
        }
        return Ok(Outcome::Failed(format!(
            "{what}: failed, {status} ({took})"
        )));
    }
    eprintln!("   ok ({took})");
    Ok(Outcome::Ok)
}

fn run(args: Vec<OsString>) -> Result<bool, String> {
    let Some(o) = parse(args)? else {
        return Ok(true);
    };
    let host = match detect(&o.toolchain, &o.sans) {
        Ok(h) => h,
        Err(why) => {
            println!("SKIPPED: {why}");
            return Ok(true);
        }
    };
    let root = host::workspace_root();
    let t0 = Instant::now();
    let runs = (o.sans.len() * o.presets.len()).max(1);
    let each = o.secs / runs as f64;
    let stress_rounds = ((100_000.0 * o.scale) as u64).max(100);
    let model_ops = ((1_000_000.0 * o.scale) as u64).max(1000);
    let channel_msgs = ((30_000.0 * o.scale) as u64).max(60);
    let mut failures: Vec<String> = Vec::new();
    for san in &o.sans {
        let dir = crate::host::target_dir(&root).join(format!("san-{}", san.name));
        let flags = format!(
            "-Zsanitizer={} -Cforce-frame-pointers=yes{}",
            san.name, san.flags
        );
        let base = |c: &mut Command, dir: &Path| {
            c.current_dir(&root)
                .env("RUSTFLAGS", &flags)
                .env(san.options.0, san.options.1)
                .env("RUST_BACKTRACE", "0")
                .env("HAKMEM_STRESS_ROUNDS", stress_rounds.to_string())
                .env("HAKMEM_MODEL_OPS", model_ops.to_string())
                .env("HAKMEM_CHANNEL_MSGS", channel_msgs.to_string())
                .args(["-Zbuild-std", "--target", &host])
                .arg("--target-dir")
                .arg(dir);
        };
        // 1. The central lists' unit tests (preset-independent but for the features the
        //    facade forwards; the facade's runs below cover those).
        let mut c = cargo(&o.toolchain);
        c.args(["test", "-p", "hakmem-ss-allocation", "--lib"]);
        base(&mut c, &dir);
        match step(
            &format!("{}: hakmem-ss-allocation unit tests", san.name),
            &mut c,
            san,
            true,
        )? {
            Outcome::Ok => {}
            Outcome::Failed(f) => failures.push(f),
            Outcome::NoBuildStd(why) => {
                println!("SKIPPED: cannot build std from source here (-Zbuild-std): {why}");
                return Ok(true);
            }
        }
        for pr in &o.presets {
            // 2. The facade's multi-threaded tests in this preset.
            let mut c = cargo(&o.toolchain);
            c.args(["test", "-p", "hakmem-alloc"]);
            if let Some(f) = pr.facade {
                c.args(["--features", f]);
            }
            c.args([
                "--test",
                "stress",
                "--test",
                "global_std",
                "--test",
                "model",
            ]);
            if san.name == "address" {
                // The poisoning of hakmem's free blocks reports a use after free.
                c.args(["--test", "asan"]);
            }
            base(&mut c, &dir);
            c.args([
                "--no-fail-fast",
                "--",
                "--skip",
                "thousands_of_short_lived_threads_leave_rss_flat",
            ]);
            let what = format!(
                "{} {}: facade tests stress, global_std, model",
                san.name, pr.name
            );
            match step(&what, &mut c, san, false)? {
                Outcome::Ok => {}
                Outcome::Failed(f) | Outcome::NoBuildStd(f) => failures.push(f),
            }
            if each <= 0.0 {
                continue;
            }
            // 3. hakmem-stress, built in the test profile (debug assertions on).
            let feats = format!("alloc-hakmem,hakmem/{}", pr.facade.unwrap_or("default"));
            let mut c = cargo(&o.toolchain);
            c.args(["build", "--profile", "test", "-p", "hakmem-bench"])
                .args(["--bin", "hakmem-stress", "--no-default-features"])
                .args(["--features", &feats]);
            base(&mut c, &dir);
            let what = format!("{} {}: build hakmem-stress", san.name, pr.name);
            match step(&what, &mut c, san, false)? {
                Outcome::Ok => {}
                Outcome::Failed(f) | Outcome::NoBuildStd(f) => {
                    failures.push(f);
                    continue;
                }
            }
            let bin = dir.join(&host).join("debug").join("hakmem-stress");
            let mut c = Command::new(&bin);
            c.current_dir(&root)
                .env(san.options.0, san.options.1)
                .args(["--secs", &format!("{each}")])
                .args(["--threads", &o.threads.to_string(), "--quiet"]);
            let what = format!(
                "{} {}: hakmem-stress for {} with {} threads",
                san.name,
                pr.name,
                progress::duration(each),
                o.threads
            );
            match step(&what, &mut c, san, false)? {
                Outcome::Ok => {}
                Outcome::Failed(f) | Outcome::NoBuildStd(f) => failures.push(f),
            }
        }
    }
    let took = progress::duration(t0.elapsed().as_secs_f64());
    let names: Vec<&str> = o.sans.iter().map(|s| s.name).collect();
    let presets: Vec<&str> = o.presets.iter().map(|p| p.name).collect();
    if failures.is_empty() {
        println!(
            "sanitize: ok in {took}: {} x {}, no reports",
            names.join("+"),
            presets.join(",")
        );
        Ok(true)
    } else {
        println!("sanitize: FAILED in {took}:");
        for f in &failures {
            println!("  {f}");
        }
        Ok(false)
    }
}
