//! `docs/env.md` is generated from the gate table: this test fails when it is stale.
//!
//! Regenerate it with `HAKMEM_BLESS=1 cargo test -p hakmem-env-gates --test env_md`.

use std::path::PathBuf;

#[test]
fn docs_env_md_is_up_to_date() {
    let mut rendered = String::new();
    hakmem_env_gates::write_env_md(&mut rendered).expect("rendering into a String cannot fail");
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .and_then(|p| p.parent())
        .expect("crate sits at crates/<name>");
    let path = root.join("docs").join("env.md");
    // Inside a packaged crate (`cargo package`, crates.io) there is no repository around
    // it: the check belongs to the repository, so it is skipped there.
    if !root.join("docs").is_dir() || !root.join("crates").join("hakmem-env-gates").is_dir() {
        eprintln!(
            "SKIPPED: {} is not in the hakmem repository (a packaged crate); \
             docs/env.md is checked in the repository",
            manifest_dir.display()
        );
        return;
    }

    if std::env::var_os("HAKMEM_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &rendered)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }

    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != rendered {
        panic!(
            "{} is stale (or missing): it must equal the rendering of the gate table.\n\
             Regenerate it with:\n\n    HAKMEM_BLESS=1 cargo test -p hakmem-env-gates --test env_md\n\n\
             and commit the result.",
            path.display()
        );
    }
}
