//! Link flags of `libhakmem.so`.

fn main() {
    // `-z nodelete`: dlclose never unmaps the library. Threads that used it run its
    // thread-exit hook (a pthread key destructor) whenever they exit, and blocks it
    // handed out may still be freed, so its code must stay mapped for the process's
    // lifetime (see docs/c-abi.md, "dlopen").
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-cdylib=-Wl,-z,nodelete");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
