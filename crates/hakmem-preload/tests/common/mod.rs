//! Shared helpers of the integration tests: the shared object, the C compiler, tools,
//! and running a program with a timeout.
//!
//! - The shared object is `$HAKMEM_PRELOAD_SO` if set, else built once per test binary
//!   with `cargo build --release -p hakmem-preload-so` (the path is read from cargo's
//!   JSON messages, so `CARGO_TARGET_DIR` and friends are honoured).
//! - A missing tool (the C compiler, python3, ...) skips the test with a printed
//!   message, unless `HAKMEM_REQUIRE_TOOLS=1`, which turns it into a failure (CI).
#![allow(dead_code)] // Each test binary uses a different subset.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether a missing tool is a failure rather than a skip.
pub fn tools_required() -> bool {
    std::env::var("HAKMEM_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// The path of `name` on `PATH`, or `None` after printing why the test is skipped (or
/// panicking when tools are required).
pub fn tool(name: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if tools_required() {
            panic!("{test}: `{name}` is not installed, and HAKMEM_REQUIRE_TOOLS=1");
        }
        skip(&format!("`{name}` is not installed"), test);
    }
    found
}

/// Print that `test` is skipped and why, on the real stderr (past the test harness's
/// output capture, so that the skip shows in `cargo test`'s output).
pub fn skip(why: &str, test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why} (set HAKMEM_REQUIRE_TOOLS=1 to fail instead)"
    );
}

/// The C compiler: `$CC`, else `cc`.
pub fn cc(test: &str) -> Option<PathBuf> {
    match std::env::var("CC") {
        Ok(c) if !c.is_empty() => tool(&c, test).or(Some(PathBuf::from(c))),
        _ => tool("cc", test),
    }
}

/// `libhakmem.so` (release build), built on first use.
pub fn so() -> &'static Path {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        if let Some(p) = std::env::var_os("HAKMEM_PRELOAD_SO") {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "HAKMEM_PRELOAD_SO={} does not exist",
                p.display()
            );
            return p;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "hakmem-preload-so",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run cargo");
        assert!(
            out.status.success(),
            "cargo build -p hakmem-preload-so failed"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let path = text
            .lines()
            .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
            .flat_map(|l| l.split('"'))
            .find(|s| s.ends_with("/libhakmem.so"))
            .map(PathBuf::from)
            .expect("no libhakmem.so among cargo's artifacts");
        assert!(path.is_file(), "{} missing after the build", path.display());
        path
    })
}

/// Where compiled test programs go.
pub fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hakmem-preload");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A C source of `tests/c/` (or any path relative to the crate).
pub fn src(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Compile `rel` (relative to the crate) into an executable named `name`. `None` when
/// there is no C compiler (and tools are not required).
pub fn compile(rel: &str, name: &str, test: &str) -> Option<PathBuf> {
    compile_with(rel, name, test, &[])
}

/// [`compile`], with more flags for the compiler (e.g. `-rdynamic`).
pub fn compile_with(rel: &str, name: &str, test: &str, flags: &[&str]) -> Option<PathBuf> {
    let cc = cc(test)?;
    let exe = out_dir().join(name);
    let out = Command::new(&cc)
        // -fno-builtin: no malloc/free pair may be folded away or a size pre-judged.
        .args([
            "-O2",
            "-g",
            "-Wall",
            "-Wextra",
            "-fno-builtin",
            "-pthread",
            "-o",
        ])
        .arg(&exe)
        .args(flags)
        .arg(src(rel))
        .arg("-ldl")
        .output()
        .expect("cannot run the C compiler");
    assert!(
        out.status.success(),
        "{} {rel} failed:\n{}",
        cc.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.stderr.is_empty() {
        eprintln!("{rel}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Some(exe)
}

/// What a program did.
#[derive(Debug)]
pub struct Run {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub secs: f64,
}

impl Run {
    /// The program exited with status 0 in time.
    pub fn ok(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    /// The signal that killed it, if any.
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.and_then(|s| s.signal())
    }

    /// A description for assertion messages.
    pub fn describe(&self, what: &str) -> String {
        let tail = |s: &str| {
            let s = s.trim_end();
            let start = s.len().saturating_sub(3000);
            let start = (start..=s.len())
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0);
            s[start..].to_string()
        };
        format!(
            "{what}: status {:?}{} after {:.1}s\n--- stdout (tail)\n{}\n--- stderr (tail)\n{}",
            self.status,
            if self.timed_out { " (TIMED OUT)" } else { "" },
            self.secs,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

/// Run `cmd` with `LD_PRELOAD=libhakmem.so` (when `preload`), killing it (and its process
/// group) after `timeout`.
pub fn run(mut cmd: Command, preload: bool, timeout: Duration) -> Run {
    use std::os::unix::process::CommandExt;
    if preload {
        cmd.env("LD_PRELOAD", so());
    } else {
        cmd.env_remove("LD_PRELOAD");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > timeout {
            timed_out = true;
            // SAFETY: signalling the process group we created for the child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if timed_out {
        // Grandchildren may still hold the pipes: the group was killed, so they close.
    }
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    Run {
        status,
        stdout,
        stderr,
        timed_out,
        secs: start.elapsed().as_secs_f64(),
    }
}

/// Run `cmd` under `LD_PRELOAD` and assert it succeeded; returns the run.
pub fn run_ok(cmd: Command, what: &str, timeout: Duration) -> Run {
    let r = run(cmd, true, timeout);
    assert!(r.ok(), "{}", r.describe(what));
    r
}

/// The path of `libhakmem.so` among cargo's JSON messages (`--message-format=json-*`).
fn so_artifact(json: &str) -> Option<PathBuf> {
    json.lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .flat_map(|l| l.split('"'))
        .find(|s| s.ends_with("/libhakmem.so"))
        .map(PathBuf::from)
}

/// `libhakmem.so` built with `--features <features>` (e.g. `preset-safe`, `hardened`), in
/// a target directory of its own, `<target>/preload-variants/<name>`, so that it never
/// replaces the default `libhakmem.so` that [`so`] returns to other tests. Built once per
/// test binary and name; builds are serialized (the first of each takes about a minute
/// on 2 cores, later ones only check that it is fresh). `$HAKMEM_PRELOAD_SO_<NAME>`
/// (`<NAME>` upper-cased, `-` as `_`) names a prebuilt one instead.
pub fn so_variant(name: &str, features: &str) -> PathBuf {
    use std::sync::Mutex;
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let var = format!(
        "HAKMEM_PRELOAD_SO_{}",
        name.to_ascii_uppercase().replace('-', "_")
    );
    let path = if let Some(p) = std::env::var_os(&var) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{var}={} does not exist", p.display());
        p
    } else {
        // CARGO_TARGET_TMPDIR is `<target>/tmp`.
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("CARGO_TARGET_TMPDIR has a parent")
            .join("preload-variants")
            .join(name);
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "hakmem-preload-so",
                "--features",
                features,
                "--message-format=json-render-diagnostics",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run cargo");
        assert!(
            out.status.success(),
            "cargo build -p hakmem-preload-so --features {features} failed"
        );
        let p = so_artifact(&String::from_utf8_lossy(&out.stdout))
            .expect("no libhakmem.so among cargo's artifacts");
        assert!(p.is_file(), "{} missing after the build", p.display());
        p
    };
    built.push((name.to_string(), path.clone()));
    path
}

/// [`run`] with `LD_PRELOAD` set to the shared object `so` (for example one from
/// [`so_variant`]), killing the program (and its process group) after `timeout`.
pub fn run_preloaded(mut cmd: Command, so: &Path, timeout: Duration) -> Run {
    use std::os::unix::process::CommandExt;
    cmd.env("LD_PRELOAD", so)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > timeout {
            timed_out = true;
            // SAFETY: signalling the process group we created for the child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        status,
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
        timed_out,
        secs: start.elapsed().as_secs_f64(),
    }
}
