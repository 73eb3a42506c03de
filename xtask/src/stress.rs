//! `cargo xtask stress`: the multi-threaded stress test (`hakmem-stress`, see
//! `hakmem_bench::stress`) with hakmem as the global allocator, in each preset.
//!
//! Fails (exit 1) if any run reports corrupted contents, a misaligned or null block, an
//! allocation without its free, or dies (a signal, an abort from hakmem's own checks).

use crate::bench::builder;
use crate::bench::contenders::Contender;
use crate::bench::progress::{self, Progress};
use crate::host;
use crate::preset::{self, PRESETS};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

const HELP: &str = "\
usage: cargo xtask stress [options]

Builds hakmem-stress (benches/src/stress.rs) with hakmem as the global allocator and runs
it: threads hand blocks to each other through queues, every block's contents are checked
before it is freed (and the kept part across realloc), threads come and go, all size
ranges (1 B..16 MiB), alignments up to 4 KiB, alloc_zeroed. Exits non-zero on corruption.

options:
  --minutes M        total time, split evenly between the presets (default 3)
  --secs S           the same in seconds (wins over --minutes)
  --threads T        workers alive at a time (default 4)
  --preset P[,P]     presets to run (default: safe,balanced,lean)
  --alloc NAME       any bench contender instead (e.g. system, to check the test itself)
  --seed S           seed (default: the test's)
  --no-build         use target/bench-build/bin/<contender>-stress as it is
  -h, --help         this text
";

/// Entry point of `cargo xtask stress`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask stress: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<OsString>) -> Result<bool, String> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut secs = 180.0f64;
    let mut threads = 4usize;
    let mut presets: Vec<String> = Vec::new();
    let mut alloc: Option<String> = None;
    let mut seed: Option<u64> = None;
    let mut build = true;
    let v = crate::arg_value;
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Long("minutes") => {
                secs = v(&mut p)?
                    .parse::<f64>()
                    .map_err(|e| format!("--minutes: {e}"))?
                    * 60.0
            }
            Long("secs") => {
                secs = v(&mut p)?
                    .parse::<f64>()
                    .map_err(|e| format!("--secs: {e}"))?
            }
            Long("threads") => {
                threads = v(&mut p)?.parse().map_err(|e| format!("--threads: {e}"))?
            }
            Long("preset" | "presets") => presets.extend(
                v(&mut p)?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            Long("alloc") => alloc = Some(v(&mut p)?),
            Long("seed") => seed = Some(v(&mut p)?.parse().map_err(|e| format!("--seed: {e}"))?),
            Long("no-build") => build = false,
            Short('h') | Long("help") => {
                print!("{HELP}");
                return Ok(true);
            }
            other => return Err(format!("{}\n\n{HELP}", other.unexpected())),
        }
    }
    let contenders: Vec<&'static Contender> = match alloc {
        Some(a) => crate::bench::contenders::select(&a, &[])?,
        None if presets.is_empty() => PRESETS.iter().map(|p| p.contender()).collect(),
        None => presets
            .iter()
            .map(|n| preset::find(n).map(|p| p.contender()))
            .collect::<Result<_, _>>()?,
    };
    let root = host::workspace_root();
    let mut progress = Progress::new();
    let bins: Vec<(&'static Contender, std::path::PathBuf)> = if build {
        builder::build_all_bin(
            &root,
            &contenders,
            "hakmem-stress",
            "-stress",
            &mut progress,
        )
        .into_iter()
        .map(|b| b.bin.map(|p| (b.contender, p)))
        .collect::<Result<_, _>>()?
    } else {
        contenders
            .iter()
            .map(|c| {
                let p = builder::build_dir(&root)
                    .join("bin")
                    .join(format!("{}-stress", c.name));
                if p.exists() {
                    Ok((*c, p))
                } else {
                    Err(format!("{} missing (run without --no-build)", p.display()))
                }
            })
            .collect::<Result<_, _>>()?
    };
    let each = secs / bins.len().max(1) as f64;
    let mut ok = true;
    for (c, bin) in &bins {
        let mut args = vec![
            "--secs".to_string(),
            format!("{each}"),
            "--threads".into(),
            threads.to_string(),
        ];
        if let Some(s) = seed {
            args.extend(["--seed".into(), s.to_string()]);
        }
        eprintln!(
            "stress {}: {} with {threads} threads ({})",
            c.name,
            progress::duration(each),
            bin.display()
        );
        let t0 = Instant::now();
        let mut child = Command::new(bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let err = child.stderr.take().expect("piped");
        let errs = std::thread::spawn(move || {
            let mut tail: Vec<String> = Vec::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("  {line}");
                tail.push(line);
            }
            tail
        });
        let mut result = None;
        for line in BufReader::new(child.stdout.take().expect("piped"))
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("STRESS ") {
                result = Some(line);
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let tail = errs.join().unwrap_or_default();
        let took = progress::duration(t0.elapsed().as_secs_f64());
        if status.success() && result.is_some() {
            println!(
                "stress {}: ok in {took}: {}",
                c.name,
                result.unwrap_or_default()
            );
        } else {
            ok = false;
            let why = tail
                .iter()
                .rev()
                .find(|l| l.contains("CORRUPTION") || !l.trim().is_empty())
                .cloned()
                .unwrap_or_default();
            println!("stress {}: FAILED after {took} ({status}): {why}", c.name);
        }
    }
    Ok(ok)
}
