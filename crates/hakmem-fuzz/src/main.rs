//! `hakmem-fuzz --target raw|global|c [--secs F] [--seed S] [--threads T] [--ops N]
//! [--slots N] [--budget-mib N] [--quiet] [--require-hakmem] [--inject-corruption]`:
//! the fuzzer of [`hakmem_fuzz`] against one target. `cargo xtask fuzz` builds it in
//! every preset and runs the `c` target under `LD_PRELOAD=libhakmem.so` (of the same
//! preset). Prints `FUZZ ok target=... ops=...` on stdout and exits 0, or prints the
//! first failed check (seed, worker, op) on stderr and exits 1; 2 for a usage error.

use hakmem_fuzz::targets::{C, Global, Raw, Target};
use hakmem_fuzz::{Params, run};
use std::ffi::CStr;
use std::process::ExitCode;

const USAGE: &str = "usage: hakmem-fuzz --target raw|global|c [--secs F] [--seed S] [--threads T] [--ops N] [--slots N] [--budget-mib N] [--quiet] [--require-hakmem] [--inject-corruption]";

/// The file that defines the `malloc` this process calls.
fn malloc_origin() -> String {
    // SAFETY: dlsym and dladdr with valid arguments; dli_fname is a C string owned by
    // the loader (or null).
    unsafe {
        let sym = libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr());
        let mut info: libc::Dl_info = std::mem::zeroed();
        if sym.is_null() || libc::dladdr(sym, &mut info) == 0 || info.dli_fname.is_null() {
            return "?".into();
        }
        CStr::from_ptr(info.dli_fname)
            .to_string_lossy()
            .into_owned()
    }
}

fn main() -> ExitCode {
    let mut p = Params {
        report_secs: 5.0,
        crash_handler: true,
        ..Params::default()
    };
    let mut target = None;
    let mut seed = None;
    let mut require_hakmem = false;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--quiet" => p.report_secs = 0.0,
            "--require-hakmem" => require_hakmem = true,
            "--inject-corruption" => p.inject_corruption = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => {
                let Some(v) = it.next().map(|v| v.replace('_', "")) else {
                    eprintln!("{flag} needs a value\n{USAGE}");
                    return ExitCode::from(2);
                };
                let num = |v: &str| -> Result<u64, String> {
                    match v.strip_prefix("0x") {
                        Some(h) => u64::from_str_radix(h, 16),
                        None => v.parse(),
                    }
                    .map_err(|e| format!("{flag} {v}: {e}"))
                };
                let r: Result<(), String> = match flag.as_str() {
                    "--target" => {
                        target = Some(v.clone());
                        Ok(())
                    }
                    "--secs" => v
                        .parse()
                        .map(|s| p.secs = s)
                        .map_err(|e| format!("{flag} {v}: {e}")),
                    "--seed" => num(&v).map(|s| seed = Some(s)),
                    "--threads" => num(&v).map(|n| p.threads = (n as usize).clamp(1, 64)),
                    "--ops" => num(&v).map(|n| p.max_ops = n),
                    "--slots" => num(&v).map(|n| p.slots = (n as usize).max(1)),
                    "--budget-mib" => num(&v).map(|n| p.budget = (n as usize) << 20),
                    _ => Err(format!("unknown flag {flag}\n{USAGE}")),
                };
                if let Err(e) = r {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    if p.max_ops > 0 && !args.iter().any(|a| a == "--secs") {
        p.secs = f64::INFINITY;
    }
    p.seed = seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        hakmem_fuzz::rng::splitmix64(t ^ u64::from(std::process::id())) >> 16
    });
    let origin = malloc_origin();
    let hakmem_c = origin.contains("libhakmem");
    let name = target.as_deref().unwrap_or("");
    eprintln!(
        "hakmem-fuzz: target {name} seed {} threads {} secs {} ops {} (malloc from {origin})",
        p.seed,
        p.threads,
        p.secs,
        if p.max_ops > 0 {
            p.max_ops.to_string()
        } else {
            "unbounded".into()
        }
    );
    let res = match name {
        "raw" => go(&Raw, &p),
        "global" => go(&Global, &p),
        "c" => {
            if require_hakmem && !hakmem_c {
                eprintln!(
                    "hakmem-fuzz: --require-hakmem: malloc comes from {origin}, not libhakmem.so (LD_PRELOAD?)"
                );
                return ExitCode::from(2);
            }
            go(&C { strict: hakmem_c }, &p)
        }
        _ => {
            eprintln!("--target raw|global|c is needed\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if res {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn go<T: Target>(t: &T, p: &Params) -> bool {
    match run(t, p) {
        Ok(s) => {
            println!(
                "FUZZ ok target={} seed={} threads={} {}",
                t.name(),
                p.seed,
                p.threads,
                s.line()
            );
            true
        }
        // Already printed on stderr.
        Err(_) => false,
    }
}
