//! Link flags of `libhakmem.so`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    // `-z nodelete`: dlclose never unmaps the library. Threads that used it run its
    // thread-exit hook (a pthread key destructor) whenever they exit, and blocks it
    // handed out may still be freed, so its code must stay mapped for the process's
    // lifetime (see docs/c-abi.md, "dlopen").
    println!("cargo:rustc-link-arg-cdylib=-Wl,-z,nodelete");
    if std::env::var_os("CARGO_FEATURE_STATIC_UNWINDER").is_some() {
        static_unwinder();
    }
}

/// Feature `static-unwinder`: link the unwinder Rust's `std` needs from the C compiler's
/// `libgcc_eh.a` into the library (its symbols stay local) instead of loading
/// `libgcc_s.so.1` at run time, which costs a C program about 125 microseconds at every
/// start (docs/c-abi.md, "Start-up cost"). `std` asks the linker for `-lgcc_s`; a linker
/// script of that name in a directory searched first answers with `libgcc_eh.a`.
fn static_unwinder() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .unwrap_or_else(|e| panic!("static-unwinder: running `{cc}` failed: {e}"));
    let eh = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // (A compiler without the archive prints the bare name back.)
    assert!(
        out.status.success() && eh.contains('/') && PathBuf::from(&eh).is_file(),
        "static-unwinder: `{cc} -print-file-name=libgcc_eh.a` found no libgcc_eh.a (got {eh:?})"
    );
    let dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(dir.join("libgcc_s.so"), format!("INPUT({eh})\n"))
        .expect("static-unwinder: writing the linker script");
    println!("cargo:rustc-link-search=native={}", dir.display());
}
