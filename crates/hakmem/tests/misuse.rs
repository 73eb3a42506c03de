//! Misuse is caught: each case runs in a child process (this test binary re-executed
//! with `HAKMEM_MISUSE=<case>`), which must die by SIGABRT with a one-line report naming
//! the problem on stderr.

use std::alloc::{GlobalAlloc, Layout};
use std::process::Command;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn misuse(case: &str) {
    let l = |n| Layout::from_size_align(n, 8).unwrap();
    // SAFETY: deliberately wrong: this process is meant to abort.
    unsafe {
        match case {
            "double_free_tiny" => {
                let p = hakmem::HakMem.alloc(l(40));
                hakmem::HakMem.dealloc(p, l(40));
                hakmem::HakMem.dealloc(p, l(40));
            }
            "delayed_double_free" => {
                // A neighbour stays live, so the block's slab stays in use: in lean mode
                // an emptied slab is decommitted and its blocks' marks read as zero
                // (docs/security.md; the C ABI then refuses the pointer by validation).
                let keep = hakmem::HakMem.alloc(l(100));
                let p = hakmem::HakMem.alloc(l(100));
                std::hint::black_box(keep);
                hakmem::HakMem.dealloc(p, l(100));
                // Many frees in between push the block out of the thread cache.
                let v: Vec<*mut u8> = (0..5000).map(|_| hakmem::HakMem.alloc(l(100))).collect();
                for q in v {
                    hakmem::HakMem.dealloc(q, l(100));
                }
                hakmem::HakMem.dealloc(p, l(100));
            }
            "double_free_mid" => {
                let p = hakmem::HakMem.alloc(l(5000));
                hakmem::HakMem.dealloc(p, l(5000));
                hakmem::HakMem.dealloc(p, l(5000));
            }
            "raw_double_free" => {
                let p = hakmem::raw::malloc(24);
                hakmem::raw::free(p).unwrap();
                let _ = hakmem::raw::free(p);
            }
            "raw_interior" => {
                let p = hakmem::raw::malloc(64);
                if let Err(e) = hakmem::raw::free(p.add(8)) {
                    e.abort("free", p.add(8));
                }
            }
            "write_after_free" => {
                let p = hakmem::HakMem.alloc(l(64));
                let q = hakmem::HakMem.alloc(l(64));
                hakmem::HakMem.dealloc(q, l(64));
                hakmem::HakMem.dealloc(p, l(64));
                // The program scribbles over a freed block's first words...
                p.write_bytes(0x41, 16);
                // ...and the allocator notices when it follows the link.
                let _a = hakmem::HakMem.alloc(l(64));
                let _b = hakmem::HakMem.alloc(l(64));
            }
            "write_after_free_deep" => {
                // A write past the link and the mark (byte 40 of a 96-byte block)...
                let p = hakmem::HakMem.alloc(l(96));
                hakmem::HakMem.dealloc(p, l(96));
                p.add(40).write(7);
                // ...is caught when the block is handed out again (zero-on-free builds).
                let _a = hakmem::HakMem.alloc(l(96));
            }
            "write_after_free_mid" => {
                let p = hakmem::HakMem.alloc(l(3000));
                hakmem::HakMem.dealloc(p, l(3000));
                p.add(16).write(1);
                let _a = hakmem::HakMem.alloc(l(3000));
            }
            _ => panic!("unknown case {case}"),
        }
    }
    // Reaching here means the misuse went unnoticed: exit 0 so the parent fails.
    std::process::exit(0);
}

fn run_case(case: &str, expect: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("HAKMEM_MISUSE", case)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{case}: not aborted; stderr: {stderr}"
    );
    assert!(
        stderr.contains(expect),
        "{case}: stderr lacks {expect:?}: {stderr}"
    );
}

#[test]
fn child() {
    if let Ok(case) = std::env::var("HAKMEM_MISUSE") {
        misuse(&case);
    }
}

#[test]
#[cfg_attr(
    not(feature = "double-free-check"),
    ignore = "needs the double-free-check feature (a default feature)"
)]
fn double_free_is_caught() {
    run_case("double_free_tiny", "double free");
    run_case("delayed_double_free", "double free");
    run_case("double_free_mid", "double free");
    run_case("raw_double_free", "double free");
}

#[test]
fn interior_pointer_is_refused() {
    run_case(
        "raw_interior",
        "hakmem: free(): invalid pointer 0x", // then the address, then:
    );
    run_case("raw_interior", "(not the start of a live block)\n");
}

#[test]
#[cfg_attr(not(feature = "hardened"), ignore = "needs the hardened feature")]
fn write_after_free_is_caught_when_hardened() {
    run_case("write_after_free", "corrupted free list");
}

#[test]
#[cfg_attr(
    not(feature = "zero-on-free"),
    ignore = "needs the zero-on-free feature"
)]
fn write_after_free_is_caught_with_zero_on_free() {
    run_case("write_after_free_deep", "write after free");
    run_case("write_after_free_mid", "write after free");
}
