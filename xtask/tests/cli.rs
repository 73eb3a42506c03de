//! The command line's comforts: `--version`, `soak` without arguments prints its usage
//! (rather than starting a ten-minute run), and a malformed value names its flag.

use std::process::Command;

fn xtask(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("running xtask");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version() {
    for flag in ["--version", "-V", "version"] {
        let (rc, out, _) = xtask(&[flag]);
        assert_eq!(rc, 0);
        assert!(
            out.starts_with(&format!("xtask {} ", env!("CARGO_PKG_VERSION"))),
            "{out}"
        );
    }
}

#[test]
fn soak_without_arguments_prints_its_usage() {
    let t = std::time::Instant::now();
    let (rc, out, err) = xtask(&["soak"]);
    assert_eq!(rc, 2, "{err}");
    assert!(out.contains("usage: cargo xtask soak"), "{out}");
    assert!(err.contains("no options given"), "{err}");
    assert!(t.elapsed().as_secs() < 10, "it started something");
}

#[test]
fn a_bad_value_names_its_flag() {
    for (cmd, flag) in [
        ("bench", "--runs"),
        ("soak", "--minutes"),
        ("ab", "--runs"),
        ("stress", "--secs"),
        ("fuzz", "--threads"),
    ] {
        let (rc, _, err) = xtask(&[cmd, flag, "x"]);
        assert_eq!(rc, 2, "{cmd} {flag} x: {err}");
        assert!(err.contains(flag), "{cmd} {flag} x: {err}");
    }
}
