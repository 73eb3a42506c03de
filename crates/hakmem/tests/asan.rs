//! AddressSanitizer builds only (`--cfg hakmem_asan`, set by `cargo xtask sanitize`):
//! a use after free of a hakmem block is reported by ASan. Each case runs in a child
//! process (this test binary re-executed with `HAKMEM_ASAN_CASE=<case>`), which must die
//! with an ASan report. Empty in every other build.
#![cfg(hakmem_asan)]

use std::alloc::{GlobalAlloc, Layout};
use std::process::Command;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn case(name: &str) {
    let l = |n| Layout::from_size_align(n, 8).unwrap();
    // SAFETY: deliberately wrong: this process is meant to die with an ASan report.
    unsafe {
        match name {
            "write_after_free_tiny" => {
                let p = hakmem::HakMem.alloc(l(64));
                hakmem::HakMem.dealloc(p, l(64));
                std::ptr::write_volatile(p.add(40), 1u8);
            }
            "read_after_free_mid" => {
                let p = hakmem::HakMem.alloc(l(5000));
                p.write_bytes(7, 5000);
                hakmem::HakMem.dealloc(p, l(5000));
                let _ = std::ptr::read_volatile(p.add(4000));
            }
            "overflow_into_free_neighbour" => {
                // Two neighbours (blocks are carved in address order), the upper one free:
                // writing 32 bytes past the end of the lower one hits it.
                let v: Vec<*mut u8> = (0..64).map(|_| hakmem::HakMem.alloc(l(48))).collect();
                let Some(&a) = v.iter().find(|&&a| v.contains(&a.wrapping_add(48))) else {
                    std::process::exit(2);
                };
                hakmem::HakMem.dealloc(a.add(48), l(48));
                std::ptr::write_volatile(a.add(48 + 32), 1u8);
            }
            _ => {}
        }
    }
}

fn expect_report(name: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("HAKMEM_ASAN_CASE", name)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("AddressSanitizer: use-after-poison"),
        "{name}: expected an ASan use-after-poison report, got {:?}:\n{err}",
        out.status
    );
}

fn child_or_parent(name: &str) {
    if std::env::var("HAKMEM_ASAN_CASE").as_deref() == Ok(name) {
        case(name);
        // Still alive: the access went unnoticed.
        std::process::exit(0);
    }
    expect_report(name);
}

#[test]
fn write_after_free_tiny() {
    child_or_parent("write_after_free_tiny");
}

#[test]
fn read_after_free_mid() {
    child_or_parent("read_after_free_mid");
}

#[test]
fn overflow_into_free_neighbour() {
    child_or_parent("overflow_into_free_neighbour");
}
