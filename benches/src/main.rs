//! The workload binary: `hakmem-bench WORKLOAD [--ops N] [--threads T] [--ws N] [--min B]
//! [--max B] [--seed S] [--batch B] [--lifetimes N] [--epoch N] [--max-secs F]
//! [--soak-secs F] [--epoch-ops N] [--epochs N] [--idle-ms N]`.
//!
//! Its global allocator is chosen at build time by one `alloc-*` feature (priority when
//! several are on: hakmem, mimalloc, jemalloc, snmalloc, rpmalloc, floor, system). It runs
//! the workload once, prints one `RESULT {json}` line and exits non-zero if a block was not
//! freed (or if the workload needs threads and the allocator is `floor`).
//!
//! `--epoch` is `larson`'s hand-off period, `--idle-ms` the idle time of `burst-*`. Soak mode (any of `--soak-secs`, `--epoch-ops`,
//! `--epochs`): the workload runs in one process in epochs of `--epoch-ops` ops (default:
//! 5 x the workload's default ops), printing an `EPOCH {json}` line after each (see
//! `hakmem_bench::soak`), until `--soak-secs` seconds or `--epochs` epochs, then a
//! `SOAKEND {json}` line.

use hakmem_bench::measure::{self, Probe};
use hakmem_bench::report::Report;
use hakmem_bench::soak::{self, CounterProbe, SoakParams};
use hakmem_bench::{Params, WORKLOADS, run, spec};
use std::process::ExitCode;

include!("alloc_select.rs");

fn usage() -> String {
    let mut s = String::from(
        "usage: hakmem-bench WORKLOAD [--ops N] [--threads T] [--ws N] [--min B] [--max B] \
         [--seed S] [--batch B] [--lifetimes N] [--epoch N] [--max-secs F] \
         [--soak-secs F] [--epoch-ops N] [--epochs N] [--idle-ms N]\nworkloads:\n",
    );
    for w in WORKLOADS {
        s.push_str(&format!("  {:<12} {}\n", w.name, w.about));
    }
    s
}

/// A parsed command line: the workload, its parameters, and the soak, if asked for.
type Parsed = (&'static str, Params, Option<SoakParams>);

fn parse(args: &[String]) -> Result<Parsed, String> {
    let name = args.first().ok_or_else(usage)?;
    if name == "--help" || name == "-h" {
        return Err(usage());
    }
    let w = spec(name).ok_or_else(|| format!("unknown workload {name:?}\n{}", usage()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut p = Params::of(w, cores);
    let mut soak_on = false;
    let mut sp = SoakParams {
        epoch_ops: w.ops.saturating_mul(5),
        max_epochs: 0,
        secs: 0.0,
    };
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let val = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .replace('_', "");
        let num = |v: &str| -> Result<u64, String> {
            v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"))
        };
        match flag.as_str() {
            "--ops" => p.ops = num(&val)?,
            "--threads" => p.threads = (num(&val)? as usize).max(1),
            "--ws" => p.ws = num(&val)? as usize,
            "--min" => p.min = num(&val)? as usize,
            "--max" => p.max = num(&val)? as usize,
            "--seed" => p.seed = num(&val)?,
            "--batch" => p.batch = num(&val)? as usize,
            "--lifetimes" => p.lifetimes = num(&val)? as usize,
            "--epoch" => p.epoch = num(&val)?,
            "--idle-ms" => p.idle_ms = num(&val)?,
            "--epoch-ops" => {
                sp.epoch_ops = num(&val)?.max(1);
                soak_on = true;
            }
            "--epochs" => {
                sp.max_epochs = num(&val)?;
                soak_on = true;
            }
            "--soak-secs" => {
                sp.secs = val
                    .parse::<f64>()
                    .map_err(|e| format!("{flag} {val}: {e}"))?;
                soak_on = true;
            }
            "--max-secs" => {
                p.max_secs = Some(
                    val.parse::<f64>()
                        .map_err(|e| format!("{flag} {val}: {e}"))?,
                )
            }
            _ => return Err(format!("unknown flag {flag}\n{}", usage())),
        }
    }
    if !w.threaded {
        p.threads = 1;
    }
    if p.min == 0 || p.max < p.min {
        return Err(format!("bad size range {}..={}", p.min, p.max));
    }
    if soak_on && !soak::supports(p.kind) {
        return Err(format!(
            "soak mode supports the single-threaded workloads (mixed*, large, realloc), not {}",
            w.name
        ));
    }
    if soak_on && sp.max_epochs == 0 && sp.secs <= 0.0 {
        sp.max_epochs = 1;
    }
    Ok((w.name, p, soak_on.then_some(sp)))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, params, soak_params) = match parse(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if ALLOC == "floor" && spec(name).is_some_and(|s| s.threaded) {
        eprintln!("floor is single-threaded: workload {name} is not applicable");
        return ExitCode::from(3);
    }
    if let Some(sp) = soak_params {
        return soak_main(name, &params, &sp);
    }
    let outcome = run(&params, PROBE.unwrap_or(measure::no_probe));
    let report = Report {
        workload: name,
        alloc: ALLOC,
        params: &params,
        outcome: &outcome,
        peak_rss_kib: measure::peak_rss_kib(),
        syscalls_total: PROBE.map(|p| p()),
    };
    println!("{}", report.line());
    if outcome.live() != 0 {
        eprintln!(
            "error: {} blocks allocated, {} freed: {} never freed",
            outcome.allocs,
            outcome.frees,
            outcome.live()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Soak mode: epochs until the time or epoch limit, then a `SOAKEND` line.
fn soak_main(name: &str, params: &Params, sp: &SoakParams) -> ExitCode {
    println!(
        "SOAKSTART {{\"workload\":\"{name}\",\"alloc\":\"{ALLOC}\",\"epoch_ops\":{},\"ws\":{},\"min\":{},\"max\":{},\"seed\":{},\"secs\":{},\"max_epochs\":{}}}",
        sp.epoch_ops, params.ws, params.min, params.max, params.seed, sp.secs, sp.max_epochs
    );
    let o = soak::run_soak(params, sp, COUNTERS);
    println!(
        "{}{{\"epochs\":{},\"ops\":{},\"secs\":{:.3},\"allocs\":{},\"frees\":{},\"live\":{},\"peak_rss_kib\":{}}}",
        soak::END_PREFIX,
        o.epochs,
        o.ops,
        o.secs,
        o.allocs,
        o.frees,
        o.live(),
        measure::peak_rss_kib()
    );
    if o.live() != 0 {
        eprintln!("error: {} blocks never freed", o.live());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
