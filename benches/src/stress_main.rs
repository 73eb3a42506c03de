//! `hakmem-stress [--secs F] [--threads T] [--seed S] [--slots N] [--quiet]
//! [--inject-corruption]`: the stress
//! test of `hakmem_bench::stress` on this binary's global allocator (chosen by an `alloc-*`
//! feature, as for `hakmem-bench`). Prints a `STRESS {json}` line and exits 0, or reports
//! the first corrupted block on stderr and exits 1.

use hakmem_bench::measure::{self, Probe};
use hakmem_bench::soak::{self, CounterProbe};
use hakmem_bench::stress::{StressParams, run_stress};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;

include!("alloc_select.rs");

const USAGE: &str = "usage: hakmem-stress [--secs F] [--threads T] [--seed S] [--slots N] [--quiet] [--inject-corruption]";

fn parse(args: &[String]) -> Result<StressParams, String> {
    let mut p = StressParams::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--quiet" {
            p.report_secs = 0.0;
            continue;
        }
        if flag == "--inject-corruption" {
            p.inject_corruption = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?
            .replace('_', "");
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v}: {e}");
        match flag.as_str() {
            "--secs" => p.secs = v.parse().map_err(|e| bad(&e))?,
            "--threads" => p.threads = v.parse::<usize>().map_err(|e| bad(&e))?.max(1),
            "--seed" => p.seed = v.parse().map_err(|e| bad(&e))?,
            "--slots" => p.slots = v.parse::<usize>().map_err(|e| bad(&e))?.max(1),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(p)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let p = match parse(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let _ = PROBE;
    let t = run_stress(&p);
    let (allocs, frees) = (t.allocs.load(Relaxed), t.frees.load(Relaxed));
    let c = COUNTERS();
    println!(
        "STRESS {{\"alloc\":\"{ALLOC}\",\"secs\":{},\"threads\":{},\"seed\":{},\"allocs\":{allocs},\"frees\":{frees},\"reallocs\":{},\"handed\":{},\"threads_started\":{},\"ops\":{},\"tiny\":{},\"mid\":{},\"large\":{},\"bytes_checked\":{},\"peak_rss_kib\":{},\"syscalls\":{}}}",
        p.secs,
        p.threads,
        p.seed,
        t.reallocs.load(Relaxed),
        t.handed.load(Relaxed),
        t.threads.load(Relaxed),
        t.ops.load(Relaxed),
        t.by_range[0].load(Relaxed),
        t.by_range[1].load(Relaxed),
        t.by_range[2].load(Relaxed),
        t.bytes_checked.load(Relaxed),
        measure::peak_rss_kib(),
        c.map_or("null".to_string(), |c| c.syscalls.to_string()),
    );
    if allocs != frees {
        eprintln!("error: {allocs} allocations but {frees} frees");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
