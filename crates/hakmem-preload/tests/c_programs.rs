//! C programs (`tests/c/*.c`) run under `LD_PRELOAD=libhakmem.so`: the semantics of
//! every exported function, threads with cross-thread frees, fork in a threaded program,
//! thread churn, threads whose first allocation comes during their own teardown,
//! allocation before and after `main`, many pthread keys, bad pointers (and interior
//! pointers of every class), `dlopen` of libhakmem.so (and of copies beyond glibc's
//! static TLS surplus), `dlopen` of many modules with TLS, and the reference benchmark's
//! smoke run.

mod common;

use common::{compile, compile_with, run, run_ok, so, src};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

#[test]
fn api_semantics_under_glibc_and_hakmem() {
    let Some(exe) = compile("tests/c/api.c", "api", "api_semantics") else {
        return;
    };
    // The checks themselves, against glibc (a test of the test).
    let mut c = Command::new(&exe);
    c.arg("glibc");
    let g = run(c, false, T);
    assert!(g.ok(), "{}", g.describe("api under glibc"));
    let r = run_ok(Command::new(&exe), "api under hakmem", T);
    assert!(r.stdout.contains("checks passed"), "{}", r.describe("api"));
    println!("{}", r.stdout.trim());
}

#[test]
fn threads_with_cross_thread_frees() {
    let Some(exe) = compile("tests/c/threads.c", "threads", "threads") else {
        return;
    };
    for (threads, iters) in [("8", "200000"), ("3", "300000"), ("32", "20000")] {
        let mut c = Command::new(&exe);
        c.args([threads, iters]);
        let r = run_ok(c, "threads", T);
        println!("{}", r.stdout.trim());
    }
}

#[test]
fn fork_in_a_threaded_program() {
    let Some(exe) = compile("tests/c/fork.c", "fork", "fork") else {
        return;
    };
    let mut c = Command::new(&exe);
    c.args(["40", "4"]);
    let r = run_ok(c, "fork", T);
    println!("{}", r.stdout.trim());
}

#[test]
fn thread_churn() {
    let Some(exe) = compile("tests/c/churn.c", "churn", "churn") else {
        return;
    };
    let mut c = Command::new(&exe);
    c.args(["4000", "8"]);
    let r = run_ok(c, "churn", T);
    println!("{}", r.stdout.trim());
}

#[test]
fn before_main_constructors_threads_atexit_destructors() {
    let Some(exe) = compile("tests/c/init.c", "init", "init") else {
        return;
    };
    for verbose in ["0", "1"] {
        let mut c = Command::new(&exe);
        c.env("HAKMEM_VERBOSE", verbose);
        let r = run_ok(c, "init", T);
        assert!(r.stdout.contains("init: ok"), "{}", r.describe("init"));
        if verbose == "1" {
            // The start-up report is printed once, from the first allocation.
            assert_eq!(
                r.stderr.matches("hakmem: preset").count(),
                1,
                "{}",
                r.describe("init verbose")
            );
        }
    }
}

/// A program's `hakmem_conf` string (as jemalloc's `malloc_conf`) sets gates at the
/// first allocation; the environment still overrides it; an entry that is not a gate is
/// left out with one line on stderr.
#[test]
fn hakmem_conf_bakes_settings_into_a_program() {
    let Some(exe) = compile_with("tests/c/conf.c", "conf", "hakmem_conf", &["-rdynamic"]) else {
        return;
    };
    let mut c = Command::new(&exe);
    c.env("HAKMEM_VERBOSE", "1");
    let r = run_ok(c, "conf", T);
    assert!(r.stdout.contains("conf: ok"), "{}", r.describe("conf"));
    for want in [
        "hakmem: config from the program (the environment overrides it)\n",
        "HAKMEM_LARGE_CACHE_MIB=3 (config; default ",
        "HAKMEM_SS_CACHE_MAX=2 (config; default ",
        "hakmem: hakmem_conf: 1 entry not understood and left out",
    ] {
        assert!(
            r.stderr.contains(want),
            "{want:?} missing: {}",
            r.describe("conf")
        );
    }
    let mut c = Command::new(&exe);
    c.env("HAKMEM_VERBOSE", "1").env("HAKMEM_SS_CACHE_MAX", "7");
    let r = run_ok(c, "conf with the environment", T);
    assert!(
        r.stderr
            .contains("HAKMEM_SS_CACHE_MAX=7 (environment; default ")
            && r.stderr
                .contains("HAKMEM_LARGE_CACHE_MIB=3 (config; default "),
        "{}",
        r.describe("conf with the environment")
    );
}

#[test]
fn requests_the_kernel_refuses_are_refused() {
    let Some(exe) = compile("tests/c/overcommit.c", "overcommit", "overcommit") else {
        return;
    };
    let r = run_ok(Command::new(&exe), "overcommit", T);
    assert!(
        r.stdout.contains("overcommit: ok"),
        "{}",
        r.describe("overcommit")
    );
    println!("{}", r.stdout.trim());
}

#[test]
fn many_pthread_keys() {
    let Some(exe) = compile("tests/c/many_keys.c", "many_keys", "many_pthread_keys") else {
        return;
    };
    let r = run_ok(Command::new(&exe), "many_keys", T);
    assert!(
        r.stdout.contains("many_keys: ok"),
        "{}",
        r.describe("many_keys")
    );
}

/// The thread-exit key is one key at a low index, with no sweep of the pthread key
/// indices: a single-threaded process can create every other key; a thread made by
/// `pthread_create` is armed on that key before its first allocation (the wrapper's
/// trampoline sets it up before the program's start routine runs); arguments, results,
/// `pthread_exit` and cancellation pass through; after threads ran, the program can still
/// create every other key. With a glibc helper thread (`timer_create`), the same.
#[test]
fn exit_key_is_one_low_key_and_threads_are_armed_as_they_start() {
    let Some(exe) = compile("tests/c/exit_key.c", "exit_key", "exit_key") else {
        return;
    };
    for arg in [None, Some("timer")] {
        let mut c = Command::new(&exe);
        c.args(arg);
        let r = run_ok(c, "exit_key", T);
        assert!(
            r.stdout.contains("exit_key: ok"),
            "{}",
            r.describe("exit_key")
        );
        println!("{}", r.stdout.trim());
    }
}

/// A thread whose first allocation (or first call, a free) comes during its own
/// teardown, from a pthread key destructor in round 1, 2, 3 or 4, on glibc's stacks and
/// on stacks the program maps and unmaps after `join`: its cache is drained and leaves
/// the registry (RSS flat, no crash at the next thread's set-up).
#[test]
fn first_allocation_during_thread_teardown() {
    let Some(exe) = compile("tests/c/teardown.c", "teardown", "teardown") else {
        return;
    };
    for (mode, threads) in [("malloc", "4000"), ("free", "4000")] {
        for round in ["1", "2", "3", "4"] {
            for (stack, n) in [("0", threads), ("1", "1000")] {
                let mut c = Command::new(&exe);
                c.args([mode, round, n, stack]);
                let r = run_ok(c, "teardown", T);
                assert!(
                    r.stdout.contains("teardown: ok"),
                    "{}",
                    r.describe("teardown")
                );
                println!("{}", r.stdout.lines().next().unwrap_or(""));
            }
        }
    }
}

/// 20,000 threads whose first allocation comes in destructor round 4 (the issue's
/// report: 3.7 GB of RSS before the fix): the RSS grows by at most 8 MiB.
#[test]
fn twenty_thousand_threads_allocating_first_in_round_4() {
    let Some(exe) = compile("tests/c/teardown.c", "teardown_20k", "teardown_20k") else {
        return;
    };
    let mut c = Command::new(&exe);
    c.args(["malloc", "4", "20000", "0"]);
    let r = run_ok(c, "teardown 20000", T);
    assert!(
        r.stdout.contains("teardown: ok"),
        "{}",
        r.describe("teardown")
    );
    println!("{}", r.stdout.trim());
}

#[test]
fn bad_pointers_are_reported_then_abort() {
    let Some(exe) = compile("tests/c/bad_pointer.c", "bad_pointer", "bad_pointer") else {
        return;
    };
    let cases = [
        ("free-stack", "free", "(not allocated by hakmem)"),
        ("free-global", "free", "(not allocated by hakmem)"),
        ("free-interior", "free", "(not the start of a live block)"),
        (
            "free-large-interior",
            "free",
            "(not the start of a live block)",
        ),
        ("realloc-stack", "realloc", "(not allocated by hakmem)"),
        (
            "usable-stack",
            "malloc_usable_size",
            "(not allocated by hakmem)",
        ),
    ];
    for (mode, func, why) in cases {
        let mut c = Command::new(&exe);
        c.arg(mode);
        let r = run(c, true, T);
        assert_eq!(r.signal(), Some(libc::SIGABRT), "{}", r.describe(mode));
        let ptr = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("ptr="))
            .unwrap_or_else(|| panic!("{}", r.describe(mode)));
        let want = format!("hakmem: {func}(): invalid pointer {ptr} {why}");
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines, [want.as_str()], "{}", r.describe(mode));
        assert!(!r.stdout.contains("survived"));
    }
}

/// The free path's validation table (docs/c-abi.md, "The free path"), class by class:
/// pointers inside a live block, into a superslab's header, into a slab not in use and
/// past a slab's carved part are refused with the one-line report; `free_sized` with a
/// wrong size frees the block into its own class.
#[test]
fn interior_and_uncarved_pointers_of_every_class_abort() {
    let Some(exe) = compile("tests/c/interior.c", "interior", "interior") else {
        return;
    };
    let r = run_ok(Command::new(&exe), "interior", T);
    assert!(r.stdout.contains("cases ok"), "{}", r.describe("interior"));
    println!("{}", r.stdout.trim());
}

#[test]
fn dlopen_as_a_second_allocator() {
    let Some(exe) = compile("tests/c/dlopen.c", "dlopen", "dlopen") else {
        return;
    };
    let mut c = Command::new(&exe);
    c.arg(so());
    let r = run(c, false, T);
    assert!(r.ok(), "{}", r.describe("dlopen"));
    assert!(r.stdout.contains("dlopen: ok"));
}

/// The initial-exec TLS of libhakmem.so: late `dlopen`s of several copies (each needs a
/// block of glibc's static TLS surplus) either work or fail cleanly with glibc's
/// "cannot allocate memory in static TLS block", and the process carries on.
#[test]
fn dlopen_beyond_the_static_tls_surplus_fails_cleanly() {
    let test = "dlopen_static_tls";
    let Some(exe) = compile("tests/c/dlopen_static_tls.c", test, test) else {
        return;
    };
    let dir = common::out_dir().join("static-tls-copies");
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = Command::new(&exe);
    for i in 1..=6 {
        let copy = dir.join(format!("libhakmem-copy{i}.so"));
        std::fs::copy(so(), &copy).unwrap();
        c.arg(&copy);
    }
    // Not preloaded: the process's malloc is glibc's, as in `dlopen_as_a_second_allocator`.
    let r = run(c, false, T);
    assert!(r.ok(), "{}", r.describe(test));
    assert!(r.stdout.contains("loaded"), "{}", r.describe(test));
    println!("{}", r.stdout.trim());
}

#[test]
fn dlopen_of_many_tls_modules() {
    let test = "dlopen_of_many_tls_modules";
    let Some(exe) = compile("tests/c/tls_dlopen.c", "tls_dlopen", test) else {
        return;
    };
    let Some(cc) = common::cc(test) else {
        return;
    };
    // 24 modules: more than the DTV's spare slots (14), so glibc must grow it.
    let dir = common::out_dir().join("tls-modules");
    std::fs::create_dir_all(&dir).unwrap();
    let n = 24;
    for i in 1..=n {
        let out = Command::new(&cc)
            .args(["-O1", "-fPIC", "-shared", "-o"])
            .arg(dir.join(format!("libtlsmod{i}.so")))
            .arg(src("tests/c/tls_module.c"))
            .output()
            .expect("cannot run the C compiler");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut c = Command::new(&exe);
    c.arg(&dir).arg(n.to_string());
    let r = run_ok(c, "tls_dlopen", T);
    println!("{}", r.stdout.trim());
}

#[test]
fn reference_benchmark_smoke() {
    let Some(exe) = compile("bench/mixed.c", "mixed", "reference_benchmark_smoke") else {
        return;
    };
    let mut c = Command::new(&exe);
    c.args(["2000000", "400", "7"]);
    let g = run(c, false, T);
    assert!(g.ok(), "{}", g.describe("mixed under glibc"));
    let mut c = Command::new(&exe);
    c.args(["2000000", "400", "7"]);
    let h = run_ok(c, "mixed under hakmem", T);
    let checksum = |s: &str| {
        s.split_whitespace()
            .find(|w| w.starts_with("checksum="))
            .map(str::to_owned)
    };
    assert_eq!(
        checksum(&g.stdout),
        checksum(&h.stdout),
        "same work, same result"
    );
    println!("glibc:  {}hakmem: {}", g.stdout, h.stdout);
    let _ = src("bench/mixed.c");
}
