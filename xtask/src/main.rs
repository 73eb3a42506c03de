//! Project automation, run as `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! Commands:
//! - `bench`: build every contender (hakmem in each preset and its peers) from the
//!   `hakmem-bench` workload source, run them in interleaved rounds, print a table and
//!   write `target/bench/<date>-<rev>.{json,md,svg}`. `bench --callgrind` counts
//!   instructions per op under valgrind instead. See `docs/benchmarks.md`.
//! - `cbench` (also `bench --c-abi`, `c-abi`): the C-ABI bench, C and C++ workload
//!   programs under `LD_PRELOAD` of `libhakmem.so` (each preset) and of the peers' shared
//!   libraries, and glibc; `--callgrind` for instructions per op of `bench/mixed.c`. See
//!   `docs/benchmarks.md`.
//! - `preset`: list, show or build the presets (from the gate table of `hakmem-env-gates`).
//! - `soak`: one long process in epochs; RSS drift, throughput CV and tail, syscalls/op,
//!   and a verdict against criteria printed first. See `docs/soak.md`.
//! - `ab`: interleaved A/B runs of two environments or feature sets, the difference with a
//!   95% CI, and a verdict against criteria printed first. See `docs/ab.md`.
//! - `stress`: the multi-threaded stress test with every block's contents checked.
//! - `fastpath`: instructions on the hit path of alloc/dealloc, against a budget.
//! - `fuzz`: the differential fuzzer (`crates/hakmem-fuzz`) against `hakmem::raw`,
//!   `GlobalAlloc` and the C API under `LD_PRELOAD`, in every preset. See `docs/fuzz.md`.
//! - `sanitize`: the multi-threaded tests under ThreadSanitizer / AddressSanitizer where a
//!   nightly toolchain allows (`SKIPPED: <why>` otherwise). See `docs/security.md`.

mod ab;
mod bench;
mod cbench;
mod fastpath;
mod fuzz;
mod host;
mod preset;
mod sanitize;
mod soak;
mod stats;
mod stress;
mod svg;
mod text;

use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask <command> [options]

commands:
  bench     benchmark hakmem against its peers (cargo xtask bench --help)
  cbench    C/C++ programs under LD_PRELOAD of libhakmem.so and the peers' .so files
            (also: bench --c-abi; cargo xtask cbench --help)
  preset    list | show NAME | build NAME: the presets and every gate's default
  soak      one long process in epochs, judged GO/NEUTRAL/NO-GO (cargo xtask soak --help)
  ab        A/B of two environments or feature sets, with a CI (cargo xtask ab --help)
  stress    multi-threaded stress with contents checked on every free (--help)
  fastpath  instructions on the fast path of alloc/dealloc vs a budget (--help)
  fuzz      differential fuzzer of the Rust and C APIs, every preset (--help)
  sanitize  the multi-threaded tests under TSan / ASan, if a nightly allows (--help)
  help      this text (also --help, -h)
  version   the version of xtask and of the hakmem workspace (also --version, -V)

Options are spelled --name VALUE or --name=VALUE; a bad value names its flag.
CARGO_TARGET_DIR is honoured for every path under the target directory.
";

/// The value of the option just parsed, as a UTF-8 string (the commands' shared helper).
pub fn arg_value(p: &mut lexopt::Parser) -> Result<String, String> {
    p.value()
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|_| "non-UTF-8 argument".to_string())
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let cmd = args.next();
    match cmd.as_ref().and_then(|c| c.to_str()) {
        Some("bench") => {
            let args: Vec<_> = args.collect();
            if args.iter().any(|a| a == "--c-abi") {
                cbench::main(args)
            } else {
                bench::main(args)
            }
        }
        Some("cbench" | "c-abi") => cbench::main(args.collect()),
        Some("preset" | "presets") => preset::main(args.collect()),
        Some("soak") => soak::main(args.collect()),
        Some("ab") => ab::main(args.collect()),
        Some("stress") => stress::main(args.collect()),
        Some("fastpath") => fastpath::main(args.collect()),
        Some("fuzz") => fuzz::main(args.collect()),
        Some("sanitize") => sanitize::main(args.collect()),
        Some("version" | "--version" | "-V") => {
            println!(
                "xtask {} (hakmem workspace at {})",
                env!("CARGO_PKG_VERSION"),
                host::workspace_root().display()
            );
            ExitCode::SUCCESS
        }
        None | Some("help" | "--help" | "-h") => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("xtask: unknown command {other:?}\n{HELP}");
            ExitCode::from(2)
        }
    }
}
