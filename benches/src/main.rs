//! The workload binary: `hakmem-bench WORKLOAD [--ops N] [--threads T] [--ws N] [--min B]
//! [--max B] [--seed S] [--batch B] [--lifetimes N] [--epoch N] [--max-secs F]`.
//!
//! Its global allocator is chosen at build time by one `alloc-*` feature (priority when
//! several are on: hakmem, mimalloc, jemalloc, snmalloc, rpmalloc, floor, system). It runs
//! the workload once, prints one `RESULT {json}` line and exits non-zero if a block was not
//! freed (or if the workload needs threads and the allocator is `floor`).

use hakmem_bench::measure::{self, Probe};
use hakmem_bench::report::Report;
use hakmem_bench::{Params, WORKLOADS, run, spec};
use std::process::ExitCode;

cfg_if::cfg_if! {
    if #[cfg(feature = "alloc-hakmem")] {
        #[global_allocator]
        static GLOBAL: hakmem::HakMem = hakmem::HakMem;
        const ALLOC: &str = "hakmem";
        fn syscalls() -> u64 { hakmem::stats().syscalls() }
        const PROBE: Option<Probe> = Some(syscalls);
    } else if #[cfg(feature = "alloc-mimalloc")] {
        #[global_allocator]
        static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
        const ALLOC: &str = if cfg!(feature = "alloc-mimalloc-v2") { "mimalloc-v2" } else { "mimalloc" };
        const PROBE: Option<Probe> = None;
    } else if #[cfg(feature = "alloc-jemalloc")] {
        #[global_allocator]
        static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
        const ALLOC: &str = "jemalloc";
        const PROBE: Option<Probe> = None;
    } else if #[cfg(feature = "alloc-snmalloc")] {
        #[global_allocator]
        static GLOBAL: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;
        const ALLOC: &str = "snmalloc";
        const PROBE: Option<Probe> = None;
    } else if #[cfg(feature = "alloc-rpmalloc")] {
        #[global_allocator]
        static GLOBAL: rpmalloc::RpMalloc = rpmalloc::RpMalloc;
        const ALLOC: &str = "rpmalloc";
        const PROBE: Option<Probe> = None;
    } else if #[cfg(feature = "alloc-floor")] {
        #[global_allocator]
        static GLOBAL: hakmem_bench::floor::Floor = hakmem_bench::floor::Floor::new();
        const ALLOC: &str = "floor";
        const PROBE: Option<Probe> = None;
    } else {
        const ALLOC: &str = "system";
        const PROBE: Option<Probe> = None;
    }
}

fn usage() -> String {
    let mut s = String::from(
        "usage: hakmem-bench WORKLOAD [--ops N] [--threads T] [--ws N] [--min B] [--max B] \
         [--seed S] [--batch B] [--lifetimes N] [--epoch N] [--max-secs F]\nworkloads:\n",
    );
    for w in WORKLOADS {
        s.push_str(&format!("  {:<12} {}\n", w.name, w.about));
    }
    s
}

fn parse(args: &[String]) -> Result<(&'static str, Params), String> {
    let name = args.first().ok_or_else(usage)?;
    if name == "--help" || name == "-h" {
        return Err(usage());
    }
    let w = spec(name).ok_or_else(|| format!("unknown workload {name:?}\n{}", usage()))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut p = Params::of(w, cores);
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
    Ok((w.name, p))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, params) = match parse(&args) {
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
