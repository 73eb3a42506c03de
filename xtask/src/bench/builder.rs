//! Builds one binary per contender from the `hakmem-bench` source.
//!
//! Cargo unifies features, so each contender is its own `cargo build` with
//! `--no-default-features --features <its features>`, all sharing one target directory
//! (`target/bench-build`: dependencies built once, feature sets kept apart by cargo) and
//! copied out to `target/bench-build/bin/<name>` before the next build overwrites it.
//! A contender that fails to build is reported as missing with the reason.

use super::contenders::Contender;
use super::progress::Progress;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The outcome of building one contender.
#[derive(Clone, Debug)]
pub struct Built {
    /// The contender.
    pub contender: &'static Contender,
    /// The binary, or why there is none.
    pub bin: Result<PathBuf, String>,
    /// Seconds the build took.
    pub secs: f64,
    /// The build log.
    pub log: PathBuf,
}

/// The directory of the bench builds.
pub fn build_dir(root: &Path) -> PathBuf {
    crate::host::target_dir(root).join("bench-build")
}

/// The first error of a cargo log, in one line.
fn reason(log: &str) -> String {
    let mut lines = log.lines();
    while let Some(l) = lines.next() {
        let t = l.trim_start();
        if t.starts_with("error") {
            let mut r = t.to_string();
            if let Some(next) = lines.find(|n| n.trim_start().starts_with("-->")) {
                r.push_str(" at ");
                r.push_str(next.trim_start().trim_start_matches("-->").trim());
            }
            return r;
        }
    }
    log.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("cargo build failed")
        .trim()
        .to_string()
}

/// Builds every contender, in order, reporting progress on stderr.
pub fn build_all(
    root: &Path,
    contenders: &[&'static Contender],
    progress: &mut Progress,
) -> Vec<Built> {
    build_all_bin(root, contenders, "hakmem-bench", "", progress)
}

/// Builds binary `bin` of `hakmem-bench` for every contender, copied to
/// `target/bench-build/bin/<contender><suffix>`.
pub fn build_all_bin(
    root: &Path,
    contenders: &[&'static Contender],
    bin: &str,
    suffix: &str,
    progress: &mut Progress,
) -> Vec<Built> {
    let dir = build_dir(root);
    let bins = dir.join("bin");
    let logs = dir.join("logs");
    let _ = std::fs::create_dir_all(&bins);
    let _ = std::fs::create_dir_all(&logs);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let n = contenders.len();
    let mut built = Vec::with_capacity(n);
    for (i, c) in contenders.iter().enumerate() {
        let t0 = Instant::now();
        let log_path = logs.join(format!("{}{suffix}.log", c.name));
        let tag = format!("[build {}/{n}] {}{suffix}", i + 1, c.name);
        progress.line(&tag);
        let out =
            build_one(&cargo, root, &dir, c, bin, &log_path, &tag, progress).and_then(|built| {
                let dst = bins.join(format!("{}{suffix}", c.name));
                let _ = std::fs::remove_file(&dst);
                std::fs::copy(&built, &dst)
                    .map(|_| dst)
                    .map_err(|e| format!("copying {}: {e}", built.display()))
            });
        let secs = t0.elapsed().as_secs_f64();
        match &out {
            Ok(_) => progress.done(&format!("{tag}: ok ({secs:.1} s)")),
            Err(e) => progress.done(&format!(
                "{tag}: MISSING ({e}); log: {}",
                log_path.display()
            )),
        }
        built.push(Built {
            contender: c,
            bin: out,
            secs,
            log: log_path,
        });
    }
    built
}

#[allow(clippy::too_many_arguments)]
fn build_one(
    cargo: &str,
    root: &Path,
    dir: &Path,
    c: &Contender,
    bin: &str,
    log_path: &Path,
    tag: &str,
    progress: &mut Progress,
) -> Result<PathBuf, String> {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "-p", "hakmem-bench", "--bin", bin])
        .args(["--no-default-features", "--features", &c.features.join(",")])
        .arg("--target-dir")
        .arg(dir)
        .args(["--color", "never"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut log = String::new();
    let mut file = std::fs::File::create(log_path).ok();
    if let Some(err) = child.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            let t = line.trim();
            if t.starts_with("Compiling") || t.starts_with("Building") {
                progress.line(&format!("{tag}: {t}"));
            }
            log.push_str(&line);
            log.push('\n');
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    if !status.success() {
        return Err(reason(&log));
    }
    let exe = dir.join("release").join(bin);
    if exe.exists() {
        Ok(exe)
    } else {
        Err(format!("cargo succeeded but {} is missing", exe.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_error_with_location() {
        let log = "   Compiling x\nwarning: w\nerror[E0425]: cannot find value `y`\n  --> crates/hakmem/src/lib.rs:3:5\n";
        assert_eq!(
            reason(log),
            "error[E0425]: cannot find value `y` at crates/hakmem/src/lib.rs:3:5"
        );
        assert_eq!(reason("something odd\n\n"), "something odd");
    }
}
