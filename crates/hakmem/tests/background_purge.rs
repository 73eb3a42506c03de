//! Decay and the opt-in background purge (issues 15 and 17), each case in a child
//! process with its gates in the environment (they are read once, at the first
//! allocation):
//! - with `HAKMEM_BG_PURGE_MS` set, a thread returns freed large mappings to the OS
//!   within the decay interval plus a period, while the program makes no call at all;
//!   a forked child has no such thread until its first slow-path allocation starts its
//!   own;
//! - without it (the default) no thread runs: a region idle past the decay interval stays
//!   cached until the next slow path (`thread_flush` here), which retires it.

use std::process::Command;
use std::time::Duration;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

const CHILD: &str = "HAKMEM_BG_PURGE_CHILD";

fn large_cached() -> (usize, usize) {
    hakmem_release_policy::LARGE.usage()
}

/// Free 8 large blocks of 1 MiB (written): their mappings go to the large cache.
fn free_some_large_blocks() {
    let blocks: Vec<Vec<u8>> = (0..8).map(|i| vec![i as u8; 1 << 20]).collect();
    drop(blocks);
}

#[test]
fn child() {
    let Some(case) = std::env::var_os(CHILD) else {
        return;
    };
    free_some_large_blocks();
    let cached = large_cached();
    assert_eq!(cached.0, 8, "freed mappings are cached first");
    match case.to_str().unwrap() {
        "background" => {
            assert!(hakmem_release_policy::background::running());
            // No allocator call from here on: only the background thread can purge.
            std::thread::sleep(Duration::from_millis(400));
            let left = large_cached();
            let rounds = hakmem_release_policy::background::rounds();
            println!("RESULT background: {cached:?} cached, {left:?} left, {rounds} rounds");
            assert_eq!(left, (0, 0), "the background purge left {left:?}");
            assert!(rounds >= 3, "{rounds} rounds");
            // A forked child has no background thread until its first slow path.
            // SAFETY: the child only calls async-signal-safe functions and the
            // allocator (fork-safe through its handlers), then `_exit`s.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                let before = hakmem_release_policy::background::running();
                let p = hakmem::raw::malloc(1 << 20);
                // SAFETY: live, freed once.
                unsafe { hakmem::raw::free(p).unwrap() };
                let after = hakmem_release_policy::background::running();
                // SAFETY: ends the forked child at once.
                unsafe { libc::_exit(if !before && after { 0 } else { 3 }) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "the forked child's background thread: status {status}"
            );
        }
        "slow-path" => {
            assert!(!hakmem_release_policy::background::running());
            std::thread::sleep(Duration::from_millis(300));
            let idle = large_cached();
            assert_eq!(idle, cached, "nothing purges without a call");
            hakmem::thread_flush();
            let left = large_cached();
            println!("RESULT slow path: {idle:?} after the idle time, {left:?} after thread_flush");
            assert_eq!(left, (0, 0), "the next slow path retires what decayed");
        }
        other => panic!("unknown case {other}"),
    }
}

fn run(case: &str, env: &[(&str, &str)]) {
    let exe = std::env::current_exe().unwrap();
    let mut c = Command::new(exe);
    c.args(["--exact", "child", "--nocapture", "--test-threads=1"]);
    c.env(CHILD, case);
    for k in [
        "HAKMEM_BG_PURGE_MS",
        "HAKMEM_LARGE_DECAY_MS",
        "HAKMEM_LARGE_CACHE_MIB",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "{}",
        stdout
            .lines()
            .filter(|l| l.contains("RESULT"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(out.status.success(), "case {case}:\n{stdout}\n{stderr}");
}

#[test]
fn the_background_thread_purges_an_idle_process() {
    run(
        "background",
        &[
            ("HAKMEM_BG_PURGE_MS", "20"),
            ("HAKMEM_LARGE_DECAY_MS", "100"),
        ],
    );
}

#[test]
fn without_it_the_next_slow_path_purges() {
    run("slow-path", &[("HAKMEM_LARGE_DECAY_MS", "100")]);
}
