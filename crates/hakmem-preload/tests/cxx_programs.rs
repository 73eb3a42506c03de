//! The C++ operators of `libhakmem.so` (`operator new`/`delete` in every form:
//! `tests/cxx/operators.cpp`, compiled with `g++`), each mode run under `LD_PRELOAD` and
//! without it (libstdc++'s own operators over glibc), which must agree: every form, the
//! alignment of aligned `new`, sized `delete` of every size class, the new-handler loop
//! (a handler that lets the retry succeed, one that gives up, one that throws),
//! `std::bad_alloc` and `nullptr` on a huge request, a sized `delete` with the wrong
//! size, and that the symbols and blocks are hakmem's.

mod common;

use common::{out_dir, run, run_preloaded, so, so_variant, src, tool};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

/// `tests/cxx/operators.cpp` compiled with `$CXX` or `g++` (once per test binary).
fn operators(test: &str) -> Option<PathBuf> {
    use std::sync::Mutex;
    static EXE: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut exe = EXE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = exe.as_ref() {
        return Some(p.clone());
    }
    let out = compile_cxx("tests/cxx/operators.cpp", "cxx-operators", &[], test)?;
    *exe = Some(out.clone());
    Some(out)
}

/// A C++ source (relative to the crate) compiled with `$CXX` or `g++` into `name`.
pub fn compile_cxx(rel: &str, name: &str, extra: &[&str], test: &str) -> Option<PathBuf> {
    let cxx = match std::env::var("CXX") {
        Ok(c) if !c.is_empty() => PathBuf::from(c),
        _ => tool("g++", test)?,
    };
    let out = out_dir().join(name);
    // -O1 -fno-allocation-dce: no new/delete pair may be folded away.
    let r = Command::new(&cxx)
        .args([
            "-std=c++17",
            "-O1",
            "-g",
            "-fno-allocation-dce",
            "-Wall",
            "-Wextra",
        ])
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg(src(rel))
        .arg("-ldl")
        .output()
        .expect("cannot run the C++ compiler");
    assert!(
        r.status.success(),
        "{} {rel} failed:\n{}",
        cxx.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    Some(out)
}

/// Runs `mode` without and with `libhakmem.so`; both must print `<mode>: ok`.
fn both(mode: &str) {
    let Some(exe) = operators(mode) else {
        return;
    };
    let mut c = Command::new(&exe);
    c.arg(mode);
    let g = run(c, false, T);
    assert!(
        g.ok() && g.stdout.contains(&format!("{mode}: ok")),
        "{}",
        g.describe(&format!("{mode} with libstdc++'s operators"))
    );
    let mut c = Command::new(&exe);
    c.args([mode, "hakmem"]);
    let h = run(c, true, T);
    assert!(
        h.ok() && h.stdout.contains(&format!("{mode}: ok")),
        "{}",
        h.describe(&format!("{mode} under libhakmem.so"))
    );
}

#[test]
fn every_operator_form_is_hakmems() {
    both("forms");
}

#[test]
fn new_handler_called_then_success() {
    both("handler");
}

#[test]
fn new_handler_gives_up_then_bad_alloc() {
    both("handler2");
}

#[test]
fn new_handler_that_throws() {
    both("throws");
}

#[test]
fn bad_alloc_and_nothrow_nullptr() {
    both("badalloc");
}

/// A sized `delete` with the wrong size is undefined behaviour; hakmem either frees the
/// block (it finds it from its address) or stops the program with a report (SIGABRT and
/// a `hakmem:` line), and never lets it corrupt the heap (blocks are checked after).
#[test]
fn sized_delete_with_the_wrong_size() {
    let Some(exe) = operators("mismatch") else {
        return;
    };
    let mut c = Command::new(&exe);
    c.args(["mismatch", "hakmem"]);
    let h = run(c, true, T);
    let reported = h.signal() == Some(libc::SIGABRT) && h.stderr.contains("hakmem: ");
    assert!(
        (h.ok() && h.stdout.contains("mismatch: ok")) || reported,
        "{}",
        h.describe("mismatch under libhakmem.so")
    );
    println!(
        "sized delete with a wrong size: {}",
        if reported { "reported" } else { "freed" }
    );
}

#[test]
fn delete_of_a_stack_address_is_reported() {
    let Some(exe) = operators("baddelete") else {
        return;
    };
    let mut c = Command::new(&exe);
    c.args(["baddelete", "hakmem"]);
    let h = run(c, true, T);
    assert_eq!(
        h.signal(),
        Some(libc::SIGABRT),
        "{}",
        h.describe("baddelete")
    );
    assert!(
        h.stderr.contains("hakmem: free(): invalid pointer 0x7")
            && h.stderr.contains("(not allocated by hakmem)"),
        "{}",
        h.describe("baddelete")
    );
}

/// A program that replaces only `operator new(std::size_t)` and `operator delete(void*)`:
/// the other forms (sized `delete`, `new[]`, `nothrow`) must reach its replacements, as
/// with libstdc++ alone, not hakmem's `free`.
#[test]
fn a_programs_replacement_operators_are_honoured() {
    let Some(exe) = compile_cxx(
        "tests/cxx/replaced.cpp",
        "cxx-replaced",
        &["-Wno-sized-deallocation"],
        "replaced",
    ) else {
        return;
    };
    let g = run(Command::new(&exe), false, T);
    assert!(g.ok(), "{}", g.describe("replaced with libstdc++ alone"));
    let h = run(Command::new(&exe), true, T);
    assert!(
        h.ok() && h.stdout.contains("replaced: ok"),
        "{}",
        h.describe("replaced under libhakmem.so")
    );
}

/// `tests/c/exit_key.c` built as C++ (`tests/cxx/exit_key.cpp`): hakmem's first
/// allocation comes from libstdc++'s constructor, before `libhakmem.so`'s; the
/// thread-exit key is still the one low key, with no sweep.
#[test]
fn exit_key_is_one_low_key_in_a_cxx_program() {
    let Some(exe) = compile_cxx(
        "tests/cxx/exit_key.cpp",
        "cxx-exit-key",
        &["-pthread", "-Wno-missing-field-initializers"],
        "exit_key",
    ) else {
        return;
    };
    for arg in [None, Some("timer")] {
        let mut c = Command::new(&exe);
        c.args(arg);
        let h = run(c, true, T);
        assert!(
            h.ok() && h.stdout.contains("exit_key: ok"),
            "{}",
            h.describe("exit_key (C++) under libhakmem.so")
        );
        println!("{}", h.stdout.trim());
    }
}

/// Whether the library file names `libgcc_s.so.1` (as a `DT_NEEDED` entry does, in its
/// dynamic string table).
fn needs_libgcc_s(lib: &std::path::Path) -> bool {
    let bytes = std::fs::read(lib).expect("read libhakmem.so");
    bytes.windows(13).any(|w| w == b"libgcc_s.so.1")
}

/// Feature `static-unwinder` (results/215): the unwinder is linked in from `libgcc_eh.a`
/// and `libhakmem.so` no longer needs `libgcc_s.so.1`, whose loading costs a C program
/// about 125 microseconds at every start. A C++ exception crossing hakmem's operators
/// (a throwing new-handler, `std::bad_alloc` from libstdc++'s operator behind hakmem's)
/// is then unwound by libstdc++'s `libgcc_s` through frames whose personality routine
/// reads the unwind context with the linked-in copy: every mode of `operators.cpp` must
/// behave as with the default library.
#[test]
fn static_unwinder_library_runs_the_operators() {
    assert!(
        needs_libgcc_s(so()),
        "the default libhakmem.so no longer needs libgcc_s: this test's premise changed"
    );
    let Some(exe) = operators("static-unwinder") else {
        return;
    };
    let lib = so_variant("static-unwinder", "static-unwinder");
    assert!(
        !needs_libgcc_s(&lib),
        "{} still needs libgcc_s.so.1",
        lib.display()
    );
    for mode in ["forms", "handler", "handler2", "throws", "badalloc"] {
        let mut c = Command::new(&exe);
        c.args([mode, "hakmem"]);
        let h = run_preloaded(c, &lib, T);
        assert!(
            h.ok() && h.stdout.contains(&format!("{mode}: ok")),
            "{}",
            h.describe(&format!("{mode} under the static-unwinder libhakmem.so"))
        );
    }
}
