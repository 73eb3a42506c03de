//! Chooses how the thread cache is reached (see `tls` in `src/lib.rs`): the hand-written
//! initial-exec access (`cfg(hakmem_ie_tls)`) with the feature `initial-exec-tls`, on
//! x86_64 Linux with glibc, where the `%fs`-based TLS ABI it relies on is known; Rust's
//! `thread_local!` otherwise, and under the sanitizer and Miri builds.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(hakmem_ie_tls)");
    println!("cargo::rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let cfgs = var("CARGO_ENCODED_RUSTFLAGS");
    let asan = cfgs
        .split('\x1f')
        .any(|f| f.contains("hakmem_asan") || f.contains("sanitizer"));
    if std::env::var_os("CARGO_FEATURE_INITIAL_EXEC_TLS").is_some()
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("CARGO_CFG_MIRI").is_empty()
        && !asan
    {
        println!("cargo::rustc-cfg=hakmem_ie_tls");
    }
}
