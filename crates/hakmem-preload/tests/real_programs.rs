//! Real programs under `LD_PRELOAD=libhakmem.so`, their output compared with the same
//! run under glibc: python3 (allocation-heavy, `PYTHONMALLOC=malloc`, threads), sqlite3
//! (150,000 rows inserted, indexed, queried, updated, vacuumed), git (a repository of
//! 3,000 files: add, commit, gc, log, fsck), gcc (compiling and running a generated C
//! file), perl. A crash, a hang (timeout) or any difference in output fails.
//!
//! Each hakmem run sets `HAKMEM_VERBOSE=1` and must print hakmem's start-up report on
//! stderr: proof that the preload took effect.

mod common;

use common::{Run, run, so, src, tool};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(180);

/// A fresh, empty directory for one run.
fn scratch(name: &str) -> PathBuf {
    let d = common::out_dir().join("real").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Run `make(dir)` twice, in two fresh directories (glibc, then hakmem); both must
/// succeed with the same stdout. Returns the hakmem run.
fn compare(name: &str, make: impl Fn(&Path) -> Command) -> Run {
    let gdir = scratch(&format!("{name}-glibc"));
    let hdir = scratch(&format!("{name}-hakmem"));
    let g = run(make(&gdir), false, T);
    assert!(g.ok(), "{}", g.describe(&format!("{name} under glibc")));
    let mut c = make(&hdir);
    c.env("HAKMEM_VERBOSE", "1");
    let h = run(c, true, T);
    assert!(h.ok(), "{}", h.describe(&format!("{name} under hakmem")));
    assert!(
        h.stderr.contains("hakmem: preset"),
        "{name}: libhakmem.so ({}) was not loaded:\n{}",
        so().display(),
        h.describe(name)
    );
    if g.stdout != h.stdout {
        let (gl, hl): (Vec<_>, Vec<_>) = (g.stdout.lines().collect(), h.stdout.lines().collect());
        let i = gl
            .iter()
            .zip(&hl)
            .position(|(a, b)| a != b)
            .unwrap_or(gl.len().min(hl.len()));
        panic!(
            "{name}: output differs from glibc's at line {} ({} vs {} lines):\nglibc:  {:?}\nhakmem: {:?}",
            i + 1,
            gl.len(),
            hl.len(),
            gl.get(i),
            hl.get(i)
        );
    }
    assert!(!h.stdout.is_empty(), "{name}: no output");
    println!(
        "{name}: same output ({} bytes); glibc {:.2}s, hakmem {:.2}s",
        h.stdout.len(),
        g.secs,
        h.secs
    );
    h
}

#[test]
fn python3_allocation_heavy() {
    let Some(py) = tool("python3", "python3_allocation_heavy") else {
        return;
    };
    let script = src("tests/scripts/alloc_heavy.py");
    compare("python3", |dir| {
        let mut c = Command::new(&py);
        c.arg(&script)
            .current_dir(dir)
            .env("PYTHONMALLOC", "malloc");
        c.env("PYTHONHASHSEED", "0");
        c
    });
}

#[test]
fn sqlite3_150k_rows() {
    let script = src("tests/scripts/sqlite.sql");
    let cli = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("sqlite3"))
            .find(|p| p.is_file())
    });
    let h = if let Some(sqlite3) = cli {
        compare("sqlite3", |dir| {
            let mut c = Command::new(&sqlite3);
            c.arg(dir.join("t.db"))
                .arg(format!(".read {}", script.display()));
            c.current_dir(dir);
            c
        })
    } else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "sqlite3_150k_rows: the sqlite3 CLI is missing: using python3's sqlite3 module"
        );
        let Some(py) = tool("python3", "sqlite3_150k_rows") else {
            return;
        };
        let fallback = src("tests/scripts/sqlite_fallback.py");
        compare("sqlite3-python", |dir| {
            let mut c = Command::new(&py);
            c.arg(&fallback)
                .arg(dir.join("t.db"))
                .arg(&script)
                .current_dir(dir);
            c
        })
    };
    assert!(h.stdout.contains("150000|"), "{}", h.describe("sqlite3"));
    assert!(
        h.stdout.lines().last() == Some("ok"),
        "integrity_check: {}",
        h.describe("sqlite3")
    );
}

#[test]
fn perl_allocation_heavy() {
    let Some(perl) = tool("perl", "perl_allocation_heavy") else {
        return;
    };
    let script = src("tests/scripts/heavy.pl");
    compare("perl", |dir| {
        let mut c = Command::new(&perl);
        c.arg(&script).current_dir(dir);
        c
    });
}

/// Deterministic file contents for the git repository.
fn git_files(dir: &Path, n: usize) {
    for i in 0..n {
        let sub = dir.join(format!("d{:02}/e{}", i % 37, i % 5));
        std::fs::create_dir_all(&sub).unwrap();
        let mut s = String::new();
        let lines = 5 + (i * 7919) % 120;
        for l in 0..lines {
            let _ = writeln!(s, "file {i} line {l} round 0 {}", "x".repeat((i + l) % 60));
        }
        std::fs::write(sub.join(format!("f{i}.txt")), s).unwrap();
    }
}

#[test]
fn git_repository_of_3000_files() {
    let Some(git) = tool("git", "git_repository_of_3000_files") else {
        return;
    };
    let Some(sh) = tool("sh", "git_repository_of_3000_files") else {
        return;
    };
    // Every git (and the shell, sed, ...) runs under the preload; the output of each
    // command is compared, commit hashes included (dates and identities are fixed).
    let script = r#"
set -e
git init -q .
git add -A
git commit -q -m initial
git rev-parse HEAD
git count-objects | cut -d, -f1
for f in d0*/e1/*.txt; do echo changed >> "$f"; done
mkdir new
i=0
while [ $i -lt 200 ]; do echo "new file $i" > new/n$i.txt; i=$((i + 1)); done
git rm -q -r d36
git add -A
git commit -q -m "second round"
git gc -q
git rev-parse HEAD
git log --stat --format='%H %an %s' | head -n 400
git log --format=%H | wc -l
git ls-files | wc -l
git diff --stat HEAD~1 | tail -n 1
git grep -c 'round 0' | wc -l
git fsck --full --no-progress
git cat-file -p 'HEAD^{tree}' | head -n 5
git show --format=%H HEAD:new/n7.txt
"#;
    compare("git", |dir| {
        git_files(dir, 3000);
        let files = dir.display().to_string();
        let mut c = Command::new(&sh);
        c.arg("-c").arg(script);
        c.current_dir(dir);
        for (k, v) in [
            ("GIT_AUTHOR_NAME", "hakmem"),
            ("GIT_AUTHOR_EMAIL", "hakmem@example.com"),
            ("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z"),
            ("GIT_COMMITTER_NAME", "hakmem"),
            ("GIT_COMMITTER_EMAIL", "hakmem@example.com"),
            ("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z"),
            ("GIT_CONFIG_NOSYSTEM", "1"),
            ("GIT_CONFIG_GLOBAL", "/dev/null"),
            ("HOME", &files),
        ] {
            c.env(k, v);
        }
        c.env("PATH", git_path(&git));
        c
    });
}

/// `PATH` with git's directory first (the shell finds the same git).
fn git_path(git: &Path) -> std::ffi::OsString {
    let mut paths = vec![git.parent().unwrap().to_path_buf()];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).unwrap()
}

/// A C program of many functions, tables and strings (deterministic).
fn generated_c(n: usize) -> String {
    let mut s = String::from("#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "struct s{i} {{ int a[{}]; const char *name; double d; }};",
            1 + i % 7
        );
        let _ = writeln!(s, "static const char *names{i}[] = {{");
        for k in 0..(i % 9 + 1) {
            let _ = writeln!(s, "    \"name_{i}_{k}_{}\",", "abc".repeat(k));
        }
        s.push_str("};\n");
        let _ = writeln!(s, "__attribute__((noinline)) long f{i}(long x) {{");
        let _ = writeln!(
            s,
            "    struct s{i} v; memset(&v, 0, sizeof v); v.d = x * {}.5;",
            i
        );
        s.push_str("    long r = 0;\n    switch (x % 8) {\n");
        for k in 0..8 {
            let _ = writeln!(
                s,
                "    case {k}: r = x * {} + (long)strlen(names{i}[{}]) + (long)v.d; break;",
                (i * 31 + k) % 97 + 1,
                k % (i % 9 + 1)
            );
        }
        s.push_str("    default: r = -1;\n    }\n");
        if i > 0 {
            let _ = writeln!(s, "    if (x > 0) r += f{}(x - 1) % 1000;", i - 1);
        }
        s.push_str("    return r;\n}\n\n");
    }
    s.push_str("int main(void) {\n    long acc = 0;\n");
    for i in (0..n).step_by(37) {
        let _ = writeln!(s, "    acc += f{i}({});", i % 5);
    }
    s.push_str("    printf(\"acc=%ld\\n\", acc);\n    return 0;\n}\n");
    s
}

#[test]
fn gcc_compiles_a_generated_program() {
    let Some(gcc) = tool("gcc", "gcc_compiles_a_generated_program") else {
        return;
    };
    let Some(sh) = tool("sh", "gcc_compiles_a_generated_program") else {
        return;
    };
    let code = generated_c(400);
    let h = compare("gcc", |dir| {
        std::fs::write(dir.join("gen.c"), &code).unwrap();
        let mut c = Command::new(&sh);
        c.arg("-c").arg(format!(
            "set -e; {g} -O2 -S -o gen.s gen.c; cksum < gen.s; {g} -O2 -o gen gen.c; ./gen",
            g = gcc.display()
        ));
        c.current_dir(dir);
        c
    });
    assert!(h.stdout.contains("acc="), "{}", h.describe("gcc"));
}
