//! The context a result is written with: host, CPU, kernel, toolchain, git revision, date.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.parent().unwrap_or(here);
    if root.join("Cargo.toml").is_file() {
        return root.to_path_buf();
    }
    // A prebuilt xtask copied to another machine (its checkout elsewhere): the current
    // directory is the root.
    std::env::current_dir().unwrap_or_else(|_| root.to_path_buf())
}

/// The target directory: `CARGO_TARGET_DIR` when set (relative to the workspace root if
/// relative, as cargo reads it), else `<root>/target`. Every path xtask computes under
/// the target directory starts here.
pub fn target_dir(root: impl AsRef<Path>) -> PathBuf {
    target_dir_from(root.as_ref(), std::env::var_os("CARGO_TARGET_DIR"))
}

/// [`target_dir`] with the variable's value given.
fn target_dir_from(root: &Path, var: Option<std::ffi::OsString>) -> PathBuf {
    match var {
        // `join` keeps an absolute path as it is.
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("target"),
    }
}

#[cfg(test)]
mod target_dir_tests {
    use super::*;

    #[test]
    fn target_dir_honours_cargo_target_dir() {
        let root = Path::new("/w");
        assert_eq!(target_dir_from(root, None), Path::new("/w/target"));
        assert_eq!(
            target_dir_from(root, Some("".into())),
            Path::new("/w/target")
        );
        assert_eq!(target_dir_from(root, Some("t2".into())), Path::new("/w/t2"));
        assert_eq!(
            target_dir_from(root, Some("/tmp/t".into())),
            Path::new("/tmp/t")
        );
    }
}

/// Facts about the machine and the checkout.
#[derive(Clone, Debug)]
pub struct Host {
    /// Host name.
    pub hostname: String,
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Total memory in GiB.
    pub mem_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// `git rev-parse --short HEAD`.
    pub rev: String,
    /// Uncommitted changes to tracked files?
    pub dirty: bool,
    /// UTC date and time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    /// The same, for file names: `YYYY-MM-DD-HHMMSS`.
    pub stamp: String,
    /// Load averages (1, 5, 15 min) when the run started: other work on the machine.
    pub load: String,
}

/// The load averages (1, 5, 15 min) now, from `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn cmd_out(root: &Path, prog: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(prog)
        .args(args)
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether `prog` can be run (found on `PATH`).
pub fn have(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (ISO date-time, file stamp) of `secs` since the epoch, UTC.
fn format_time(secs: u64) -> (String, String) {
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    let (h, mi, se) = (s / 3600, s / 60 % 60, s % 60);
    (
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}Z"),
        format!("{y:04}-{mo:02}-{d:02}-{h:02}{mi:02}{se:02}"),
    )
}

impl Host {
    /// Looks everything up now.
    pub fn probe(root: &Path) -> Host {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let mem_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (date, stamp) = format_time(secs);
        let dirty = cmd_out(
            root,
            "git",
            &["status", "--porcelain", "--untracked-files=no"],
        )
        .is_some_and(|s| !s.is_empty());
        Host {
            hostname: read_trim("/proc/sys/kernel/hostname"),
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mem_gib,
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            rustc: cmd_out(root, "rustc", &["-V"]).unwrap_or_else(|| "unknown".into()),
            rev: cmd_out(root, "git", &["rev-parse", "--short", "HEAD"])
                .unwrap_or_else(|| "norev".into()),
            dirty,
            date,
            stamp,
            load: load_average(),
        }
    }

    /// The revision as written in file names and reports (`-dirty` when it is).
    pub fn rev_label(&self) -> String {
        if self.dirty {
            format!("{}-dirty", self.rev)
        } else {
            self.rev.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_time(0).0, "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_782_400).0, "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_767_225_599).1, "2025-12-31-235959");
        assert_eq!(format_time(1_772_323_200).0, "2026-03-01T00:00:00Z");
    }
}
