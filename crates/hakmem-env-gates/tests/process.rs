//! End to end: the real `environ` of a child process, read once by `gates()`, with the
//! warnings and the verbose report on the child's stderr.
//!
//! The parent test re-runs this test binary, filtered to `child_probe`, with a chosen
//! environment; `child_probe` does nothing unless `ENV_GATES_TEST_CHILD=1`.

use std::process::Command;
use std::sync::{Arc, Barrier};

use hakmem_env_gates::{Decommit, GateId, PRESET, Source, gate_sources, gates, preset_defaults};

#[test]
fn child_probe() {
    if std::env::var_os("ENV_GATES_TEST_CHILD").is_none() {
        return;
    }
    // Race eight threads on the first call.
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let b = Arc::clone(&barrier);
            std::thread::spawn(move || {
                b.wait();
                gates() as *const _ as usize
            })
        })
        .collect();
    let ptrs: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        ptrs.iter().all(|p| *p == ptrs[0]),
        "every caller sees the same snapshot"
    );

    let g = gates();
    let s = gate_sources();
    println!("PROBE decommit={:?}", g.ss_mem_lean_decommit);
    println!("PROBE cache={}", g.ss_cache_max);
    println!("PROBE lean={}", g.ss_mem_lean);
    println!(
        "PROBE decommit_source={:?}",
        s[GateId::SsMemLeanDecommit.index()]
    );
    println!("PROBE lean_source={:?}", s[GateId::SsMemLean.index()]);
    if g.verbose {
        hakmem_env_gates::print_verbose("box-a box-b");
    }
}

fn run_child(vars: &[(&str, &str)]) -> (String, String) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child_probe", "--nocapture", "--test-threads=1"]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HAKMEM_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("ENV_GATES_TEST_CHILD", "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn environment_is_read_from_environ() {
    let (out, err) = run_child(&[
        ("HAKMEM_SS_MEM_LEAN_DECOMMIT", "dontneed"),
        ("HAKMEM_SS_CACHE_MAX", "5"),
    ]);
    assert!(out.contains("PROBE decommit=DontNeed"), "{out}");
    assert!(out.contains("PROBE cache=5"), "{out}");
    assert!(out.contains("PROBE decommit_source=Environment"), "{out}");
    assert!(!err.contains("hakmem: ignoring"), "{err}");
}

#[test]
fn malformed_value_warns_once_and_keeps_default() {
    let (out, err) = run_child(&[("HAKMEM_SS_MEM_LEAN", "maybe")]);
    let lean = preset_defaults(PRESET).ss_mem_lean;
    assert!(out.contains(&format!("PROBE lean={lean}")), "{out}");
    // The gate's own default is off (the seed's): a preset that turns it on sets it.
    let expected_source = if lean { "Preset" } else { "Default" };
    assert!(
        out.contains(&format!("PROBE lean_source={expected_source}")),
        "{out}"
    );
    let want = format!(
        "hakmem: ignoring HAKMEM_SS_MEM_LEAN=maybe (expected 0 or 1); using default {}",
        u8::from(lean)
    );
    assert_eq!(
        err.matches(&want).count(),
        1,
        "exactly one warning line:\n{err}"
    );
}

#[test]
fn verbose_report_goes_to_stderr() {
    let (_, err) = run_child(&[
        ("HAKMEM_VERBOSE", "1"),
        ("HAKMEM_SS_MEM_LEAN_DECOMMIT", "FREE"),
    ]);
    assert!(
        err.contains(&format!("hakmem: preset {}\n", PRESET.name())),
        "{err}"
    );
    assert!(err.contains("hakmem: boxes: box-a box-b\n"), "{err}");
    assert!(
        err.contains("hakmem:   HAKMEM_VERBOSE=1 (environment; default 0)\n"),
        "{err}"
    );
    assert!(
        err.contains("hakmem:   HAKMEM_SS_MEM_LEAN_DECOMMIT=FREE (environment"),
        "{err}"
    );
}

#[test]
fn this_process_matches_its_environment() {
    // Whatever the harness's environment holds, the snapshot agrees with std's view of it.
    let g = gates();
    match std::env::var("HAKMEM_SS_MEM_LEAN_DECOMMIT")
        .ok()
        .map(|v| v.to_ascii_uppercase())
    {
        Some(v) if v == "FREE" => assert_eq!(g.ss_mem_lean_decommit, Decommit::Free),
        Some(v) if v == "OFF" => assert_eq!(g.ss_mem_lean_decommit, Decommit::Off),
        None => {
            assert_eq!(
                g.ss_mem_lean_decommit,
                preset_defaults(PRESET).ss_mem_lean_decommit
            );
            assert_ne!(
                gate_sources()[GateId::SsMemLeanDecommit.index()],
                Source::Environment
            );
        }
        _ => {}
    }
}
