//! Preset features are additive: a build with several presets enabled (two crates in one
//! dependency graph asking for different ones) compiles, and the documented order picks
//! the preset: LEAN > SAFE > BALANCED. Builds this crate's `preset` example with
//! `--features preset-safe,preset-lean` (and with `preset-safe` alone) in a target
//! directory of its own, runs it, and reads what `hakmem::build_info()` reports.

use std::process::Command;

fn run_example(features: &str) -> String {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let target = concat!(env!("CARGO_TARGET_TMPDIR"), "/presets-additive");
    let out = Command::new(env!("CARGO"))
        .args([
            "run",
            "--quiet",
            "--manifest-path",
            manifest,
            "--example",
            "preset",
        ])
        .args(["--features", features])
        .env("CARGO_TARGET_DIR", target)
        .env_remove("HAKMEM_VERBOSE")
        .output()
        .expect("running cargo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "cargo run --example preset --features {features} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn several_presets_build_and_the_leaner_wins() {
    let out = run_example("preset-safe,preset-lean");
    assert!(out.contains("hakmem::PRESET = Lean (LEAN)"), "{out}");
    assert!(
        out.contains(", preset LEAN (features preset-safe preset-balanced preset-lean);"),
        "{out}"
    );
    let out = run_example("preset-safe");
    assert!(out.contains("hakmem::PRESET = Safe (SAFE)"), "{out}");
    assert!(
        out.contains(", preset SAFE (features preset-safe preset-balanced);"),
        "{out}"
    );
}
