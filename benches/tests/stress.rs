//! The stress binary on the system allocator: a short run passes, and a run with a
//! corrupted block (injected on purpose) fails with a report.

use std::process::Command;

fn stress(extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hakmem-stress"))
        .args(["--secs", "0.5", "--threads", "3", "--quiet"])
        .args(extra)
        .output()
        .expect("run hakmem-stress")
}

#[test]
fn a_short_run_passes_and_frees_everything() {
    let o = stress(&[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.starts_with("STRESS {"), "{out}");
}

#[test]
fn injected_corruption_is_caught() {
    let o = stress(&["--inject-corruption"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("CORRUPTION"), "{err}");
}
