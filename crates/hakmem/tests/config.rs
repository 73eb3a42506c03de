//! A program configures the allocator from code (`HakMem::with_config`), and the setting
//! takes effect: the gates resolved at the first allocation (before `main`) carry the
//! config's preset and values, the large-block cache keeps to the config's bound, and the
//! environment still overrides the config (precedence: environment > config > preset >
//! default). Its own test binary: the global allocator below is this process's.
//!
//! The environment cases re-run this binary (filtered to `child_probe`) with a chosen
//! environment, because the gates are resolved once per process.

use hakmem::{Config, HakMem, Preset};
use hakmem_env_gates::{GateId, Source};
use std::process::Command;

/// LEAN whatever preset is compiled in, a 2 MiB large-block cache, 3 cached superslabs.
const CFG: Config = Config::LEAN.large_cache_mib(2).ss_cache_max(3);

#[global_allocator]
static GLOBAL: HakMem = HakMem::with_config(CFG);

fn probe() -> String {
    let r = hakmem_env_gates::resolved();
    let g = r.gates();
    format!(
        "PROBE preset={} config={} large_cache_mib={} ({}) ss_cache_max={} ({})",
        r.preset().name(),
        r.has_config(),
        g.large_cache_mib,
        r.source(GateId::LargeCacheMib),
        g.ss_cache_max,
        r.source(GateId::SsCacheMax),
    )
}

#[test]
fn child_probe() {
    if std::env::var_os("HAKMEM_CONFIG_TEST_CHILD").is_none() {
        return;
    }
    println!("{}", probe());
}

fn run_child(vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_probe", "--nocapture", "--test-threads=1"]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HAKMEM_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HAKMEM_CONFIG_TEST_CHILD", "1");
    cmd.envs(vars.iter().copied());
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_config_reaches_the_gates() {
    let out = run_child(&[]);
    assert!(
        out.contains(
            "PROBE preset=LEAN config=true large_cache_mib=2 (config) ss_cache_max=3 (config)"
        ),
        "{out}"
    );
}

#[test]
fn the_environment_overrides_the_config() {
    let out = run_child(&[("HAKMEM_SS_CACHE_MAX", "5")]);
    assert!(
        out.contains("large_cache_mib=2 (config) ss_cache_max=5 (environment)"),
        "{out}"
    );
}

#[test]
fn verbose_reports_the_config_and_the_build() {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_probe", "--nocapture", "--test-threads=1"]);
    cmd.env("HAKMEM_CONFIG_TEST_CHILD", "1")
        .env("HAKMEM_VERBOSE", "1");
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let build = format!("hakmem: build: {}\n", hakmem::build_info());
    assert!(err.contains(&build), "{err}");
    assert!(err.contains("hakmem: preset LEAN\n"), "{err}");
    assert!(
        err.contains("hakmem: config from the program (the environment overrides it)\n"),
        "{err}"
    );
}

/// The config's bound on the large-block cache holds: freeing eight 1 MiB blocks leaves
/// at most 2 MiB cached (the compiled-in presets' bounds are 64 MiB and more).
#[test]
fn the_setting_takes_effect() {
    if std::env::var_os("HAKMEM_LARGE_CACHE_MIB").is_some() {
        eprintln!("SKIPPED: HAKMEM_LARGE_CACHE_MIB is set in the environment (it overrides)");
        return;
    }
    assert_eq!(hakmem_env_gates::resolved().preset(), Preset::Lean);
    assert_eq!(
        hakmem_env_gates::resolved().source(GateId::LargeCacheMib),
        Source::Config
    );
    let blocks: Vec<Vec<u8>> = (0..8).map(|i| vec![i as u8; 1 << 20]).collect();
    drop(blocks);
    let cached = hakmem::stats().large_cached_bytes;
    assert!(
        cached <= 2 << 20,
        "{cached} bytes of large mappings cached; the config bounds the cache at 2 MiB"
    );
}
