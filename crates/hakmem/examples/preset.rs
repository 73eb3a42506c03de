//! Which preset is compiled in, and how to choose one.
//!
//! A preset is a Cargo feature of the `hakmem` crate. It chooses which boxes are compiled
//! in and the default of each `HAKMEM_*` gate (see `docs/env.md`); an environment gate
//! still overrides a default at run time.
//!
//! ```toml
//! # BALANCED (the default): lean mode with decommit OFF, prewarm suppressed.
//! [dependencies]
//! hakmem-alloc = "0.1"
//!
//! # SAFE: speed first (prewarm on, no lean mode), with double-free detection.
//! [dependencies]
//! hakmem-alloc = { version = "0.1", features = ["preset-safe"] }
//!
//! # LEAN: lean mode with decommit DONTNEED: lowest memory.
//! [dependencies]
//! hakmem-alloc = { version = "0.1", features = ["preset-lean"] }
//!
//! # Without the prewarm box (compiled out), BALANCED:
//! [dependencies]
//! hakmem-alloc = { version = "0.1", default-features = false, features = ["preset-balanced"] }
//! ```
//!
//! `preset-safe` or `preset-lean` win over the default `preset-balanced`, so adding one
//! of them is enough; features are additive, and with both LEAN wins (LEAN > SAFE >
//! BALANCED).
//!
//! ```sh
//! cargo run -p hakmem-alloc --example preset                          # BALANCED
//! cargo run -p hakmem-alloc --example preset --features preset-safe   # SAFE
//! cargo run -p hakmem-alloc --example preset --features preset-lean   # LEAN
//! HAKMEM_VERBOSE=1 cargo run -p hakmem-alloc --example preset         # every gate and its source
//! ```

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn main() {
    let p = hakmem::PRESET;
    let what = match p {
        hakmem::Preset::Safe => "speed first: prewarm on, no lean mode, double-free detection",
        hakmem::Preset::Balanced => "lean mode, decommit OFF, prewarm suppressed",
        hakmem::Preset::Lean => "lean mode, decommit DONTNEED: lowest memory",
    };
    println!("hakmem::PRESET = {p:?} ({}): {what}", p.name());
    println!("hakmem::build_info() = {}", hakmem::build_info());
    let v: Vec<u32> = (0..1000).collect();
    assert_eq!(v.len(), 1000);
}
