//! `docs/env.md`, rendered from the gate table so that it cannot drift from the code.
//!
//! `tests/env_md.rs` compares the file with this rendering;
//! `HAKMEM_BLESS=1 cargo test -p hakmem-env-gates --test env_md` rewrites it.

use core::fmt;

use crate::Preset;
use crate::table::GATES;

/// Writes the Markdown of `docs/env.md` into `w`.
pub fn write_env_md<W: fmt::Write + ?Sized>(w: &mut W) -> fmt::Result {
    w.write_str(
        "<!-- Generated from the gate table (the gate_table! rows of crates/hakmem-env-gates/src/table.rs); do not edit.\n     \
         Regenerate: HAKMEM_BLESS=1 cargo test -p hakmem-env-gates --test env_md -->\n\
         \n\
         # Environment gates\n\
         \n\
         hakmem reads its `HAKMEM_*` environment variables once, at the first allocation (or\n\
         the first call to `hakmem_env_gates::gates()`), without allocating. Changing the\n\
         environment later has no effect.\n\
         \n\
         **Precedence**: environment > config > preset > default. Each gate has a default per\n\
         preset; the preset is chosen at build time with a Cargo feature of the facade\n\
         (`preset-safe`, `preset-balanced` (the default), `preset-lean`; features are additive:\n\
         when several are enabled, LEAN > SAFE > BALANCED). A program may set gates in code\n\
         (`HakMem::with_config(Config::LEAN.large_cache_mib(64))` in Rust, the `hakmem_conf`\n\
         string in C: docs/rust-api.md, docs/c-abi.md); a valid value in the environment\n\
         overrides both at run time, unless the config says `ignore_env`.\n\
         \n\
         **Values**: booleans are `0` or `1`; words are matched without regard to case\n\
         (`free`, `FREE`); numbers are decimal, `0` to `4294967295`; surrounding blanks are\n\
         ignored. A malformed value is ignored with one line on stderr, e.g.\n\
         `hakmem: ignoring HAKMEM_SS_MEM_LEAN=maybe (expected 0 or 1); using default 1`,\n\
         and the default stays; it is never a crash. Names that are not gates are ignored.\n\
         \n\
         `HAKMEM_VERBOSE=1` prints the preset, the compiled-in boxes and every gate's value\n\
         with its source (`default`: the gate's own default; `preset`: the compiled-in preset\n\
         sets it to another value; `environment`). The gate's own default is the seed's for\n\
         the seed's gates (lean mode off, decommit `FREE`) and BALANCED's for the project's\n\
         own; a preset sets only what its profile sets.\n\
         \n",
    )?;
    write!(
        w,
        "| Gate | Type | own default | {} | {} | {} | Meaning |\n|---|---|---|---|---|---|---|\n",
        Preset::Safe.name(),
        Preset::Balanced.name(),
        Preset::Lean.name(),
    )?;
    for s in &GATES {
        writeln!(
            w,
            "| `{}` | {} | `{}` | `{}` | `{}` | `{}` | {} |",
            s.name,
            s.ty.markdown(),
            s.default,
            s.safe,
            s.balanced,
            s.lean,
            s.doc,
        )?;
    }
    Ok(())
}
