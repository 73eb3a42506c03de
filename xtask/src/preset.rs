//! `cargo xtask preset list|show NAME|build NAME`: the presets, read from the one table.
//!
//! Gate defaults come from `hakmem-env-gates` itself ([`GATES`], [`preset_defaults`]), so
//! this listing cannot drift from what the allocator compiles in. The facade features a
//! preset turns on are read from `crates/hakmem/Cargo.toml` (`[features]`), expanded
//! transitively. `build` runs `cargo build --release -p hakmem-alloc --features preset-X` and
//! builds the bench binary of that preset (`target/bench-build/bin/hakmem-X`).

use crate::bench::builder;
use crate::bench::contenders::{self, Contender};
use crate::bench::progress::Progress;
use crate::host;
use crate::text::table;
use hakmem_env_gates::{GATES, Preset, preset_defaults};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};

/// One preset: its name on the command line, the gate-table preset, the facade feature
/// and the bench contender built with it.
#[derive(Clone, Copy, Debug)]
pub struct PresetDef {
    /// `safe`, `balanced` or `lean`.
    pub name: &'static str,
    /// The preset of the gate table.
    pub preset: Preset,
    /// The feature of the `hakmem` facade that selects it.
    pub feature: &'static str,
    /// The `cargo xtask bench` contender built with it.
    pub contender: &'static str,
    /// What it is for, in one line.
    pub about: &'static str,
    /// The seed's name of the profile (`core/bench_profile.h`), where the seed has one;
    /// accepted by [`find`] like [`name`](Self::name).
    pub seed_name: Option<&'static str>,
}

/// Every preset, in the order of the gate table's columns.
pub const PRESETS: [PresetDef; 3] = [
    PresetDef {
        name: "safe",
        preset: Preset::Safe,
        feature: "preset-safe",
        contender: "hakmem-safe",
        about: "speed first: prewarm on, no lean mode, double-free detection",
        seed_name: Some("MIXED_TINYV3_C7_SAFE"),
    },
    PresetDef {
        name: "balanced",
        preset: Preset::Balanced,
        feature: "preset-balanced",
        contender: "hakmem-balanced",
        about: "the default: lean mode with decommit OFF, prewarm suppressed (LEAN+OFF)",
        seed_name: Some("MIXED_TINYV3_C7_BALANCED"),
    },
    PresetDef {
        name: "lean",
        preset: Preset::Lean,
        feature: "preset-lean",
        contender: "hakmem-lean",
        about: "lowest memory: lean mode with decommit, smaller caches",
        seed_name: None,
    },
];

/// The preset named `name`: `safe`, `balanced`, `lean` (any case; a `preset-` or
/// `hakmem-` prefix allowed), or the seed's profile names `MIXED_TINYV3_C7_SAFE` and
/// `MIXED_TINYV3_C7_BALANCED` (any case). Every command that takes a preset name (`preset`,
/// `bench --preset`, `soak --preset`, `ab --a-preset`, `stress`, `fastpath`) parses it here.
pub fn find(name: &str) -> Result<&'static PresetDef, String> {
    let n = name.trim().to_ascii_lowercase();
    let n = n
        .strip_prefix("preset-")
        .or_else(|| n.strip_prefix("hakmem-"))
        .unwrap_or(&n);
    PRESETS
        .iter()
        .find(|p| p.name == n || p.seed_name.is_some_and(|s| s.eq_ignore_ascii_case(n)))
        .ok_or_else(|| {
            format!(
                "unknown preset {name:?} (safe, balanced, lean; the seed's MIXED_TINYV3_C7_SAFE, \
                 MIXED_TINYV3_C7_BALANCED)"
            )
        })
}

impl PresetDef {
    /// The bench contender of this preset.
    pub fn contender(&self) -> &'static Contender {
        contenders::CONTENDERS
            .iter()
            .find(|c| c.name == self.contender)
            .expect("every preset has a contender")
    }
}

/// The `[features]` table of a Cargo.toml: feature -> what it enables.
pub fn parse_features(toml: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut in_features = false;
    let mut pending: Option<(String, String)> = None;
    for raw in toml.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some((name, mut acc)) = pending.take() {
            acc.push_str(line);
            if line.contains(']') {
                out.insert(name, array_items(&acc));
            } else {
                pending = Some((name, acc));
            }
            continue;
        }
        if line.starts_with('[') {
            in_features = line == "[features]";
            continue;
        }
        if !in_features || line.is_empty() {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let k = k.trim().trim_matches('"').to_string();
            let v = v.trim().to_string();
            if v.contains(']') {
                out.insert(k, array_items(&v));
            } else {
                pending = Some((k, v));
            }
        }
    }
    out
}

fn array_items(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|x| x.trim().trim_matches('"').to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// Every feature enabled by `roots` (transitively through the table; `dep:` and
/// `crate/feature` entries are listed but not expanded), in a stable order.
pub fn closure(table: &BTreeMap<String, Vec<String>>, roots: &[&str]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut stack: Vec<String> = roots.iter().rev().map(|s| s.to_string()).collect();
    while let Some(f) = stack.pop() {
        if seen.contains(&f) {
            continue;
        }
        if let Some(more) = table.get(&f) {
            for m in more.iter().rev() {
                stack.push(m.clone());
            }
        }
        seen.push(f);
    }
    seen
}

fn facade_features(root: &Path) -> BTreeMap<String, Vec<String>> {
    std::fs::read_to_string(root.join("crates/hakmem/Cargo.toml"))
        .map(|s| parse_features(&s))
        .unwrap_or_default()
}

/// The facade's own features a build of preset `p` turns on (its defaults plus the
/// preset's feature; `dep:` and `crate/feature` entries left out).
fn enabled(table: &BTreeMap<String, Vec<String>>, p: &PresetDef) -> Vec<String> {
    closure(table, &[p.feature, "default"])
        .into_iter()
        .filter(|f| !f.contains('/') && !f.starts_with("dep:"))
        .collect()
}

/// `cargo xtask preset list`.
pub fn list_text(root: &Path) -> String {
    let feats = facade_features(root);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "presets (a feature of the hakmem facade; SAFE or LEAN win over the default BALANCED):\n"
    );
    let rows: Vec<Vec<String>> = PRESETS
        .iter()
        .map(|p| {
            vec![
                p.name.to_string(),
                p.preset.name().to_string(),
                p.seed_name.unwrap_or("(ours)").to_string(),
                format!("`{}`", p.feature),
                enabled(&feats, p).join(", "),
                p.contender.to_string(),
                p.about.to_string(),
            ]
        })
        .collect();
    s.push_str(&table(
        &[
            "name".into(),
            "preset".into(),
            "the seed's profile".into(),
            "feature".into(),
            "features enabled (with the facade's defaults)".into(),
            "bench contender".into(),
            "what".into(),
        ],
        &rows,
        &[],
    ));
    let _ = writeln!(
        s,
        "\ngate defaults per preset (crates/hakmem-env-gates/src/table.rs; * = differs between presets):\n"
    );
    s.push_str(&gates_table(&PRESETS.iter().collect::<Vec<_>>(), false));
    s
}

/// A table of every gate's default under `presets`, with the doc when `doc` is set.
fn gates_table(presets: &[&PresetDef], doc: bool) -> String {
    let mut header: Vec<String> = vec!["gate".into(), "type".into()];
    header.extend(presets.iter().map(|p| p.preset.name().to_string()));
    if doc {
        header.push("what".into());
    }
    let rows: Vec<Vec<String>> = GATES
        .iter()
        .map(|g| {
            let differs = PRESETS.iter().any(|p| {
                !g.default_for(p.preset)
                    .const_eq(g.default_for(Preset::Balanced))
            });
            let ty = match g.ty {
                hakmem_env_gates::GateType::Bool => "0/1",
                hakmem_env_gates::GateType::Decommit => "FREE/DONTNEED/OFF",
                hakmem_env_gates::GateType::U32 => "u32",
                hakmem_env_gates::GateType::Thp => "AUTO/NEVER/DENSE",
            };
            let mut r = vec![
                format!("{}{}", g.name, if differs { " *" } else { "" }),
                ty.to_string(),
            ];
            r.extend(presets.iter().map(|p| g.default_for(p.preset).to_string()));
            if doc {
                r.push(g.doc.to_string());
            }
            r
        })
        .collect();
    table(&header, &rows, &[])
}

/// `cargo xtask preset show NAME`.
pub fn show_text(root: &Path, p: &PresetDef) -> String {
    let feats = facade_features(root);
    let g = preset_defaults(p.preset);
    let mut s = String::new();
    let _ = writeln!(s, "preset {} ({}): {}\n", p.preset.name(), p.name, p.about);
    let _ = writeln!(
        s,
        "- the seed's profile: {}",
        p.seed_name
            .map_or("none (ours)".to_string(), |n| format!("`{n}`"))
    );
    let _ = writeln!(s, "- facade feature: `{}`", p.feature);
    let _ = writeln!(
        s,
        "{}",
        wrap(
            &format!(
                "- features enabled (with the facade's defaults): {}",
                enabled(&feats, p).join(", ")
            ),
            "  "
        )
    );
    let _ = writeln!(
        s,
        "- build: `cargo build --release -p hakmem-alloc --features {}`",
        p.feature
    );
    let c = p.contender();
    let _ = writeln!(
        s,
        "{}",
        wrap(
            &format!(
                "- bench binary: `target/bench-build/bin/{}` (hakmem-bench \
                 --no-default-features --features {})",
                c.name,
                c.features.join(",")
            ),
            "  "
        )
    );
    let _ = writeln!(
        s,
        "- in effect: lean mode {}, decommit {}, prewarm {}",
        if g.ss_mem_lean { "on" } else { "off" },
        g.decommit_effective().as_str(),
        if g.prewarm_effective() {
            "on"
        } else {
            "off (suppressed)"
        }
    );
    let _ = writeln!(
        s,
        "\ngate defaults (the environment overrides any of them at run time):\n"
    );
    s.push_str(&gates_table(&[p], false));
    s.push_str("\n(* : the presets differ on this gate)\n\nwhat each gate does:\n\n");
    for g in GATES.iter() {
        s.push_str(&wrap(&format!("{}: {}", g.name, g.doc), "    "));
        s.push('\n');
    }
    s
}

/// `preset show` fits in this many columns.
const WIDTH: usize = 100;

/// Words of `text` in lines of at most [`WIDTH`] columns (a longer word alone on its
/// line), the lines after the first indented by `indent`.
fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = indent.to_string();
        }
        if !line.is_empty() && !line.ends_with(' ') {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}

fn run_cargo(root: &Path, args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("$ cargo {}", args.join(" "));
    let st = Command::new(cargo)
        .current_dir(root)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({st})", args.join(" ")))
    }
}

/// `cargo xtask preset build NAME`: the facade and the bench binary of the preset.
pub fn build(root: &Path, p: &PresetDef) -> Result<std::path::PathBuf, String> {
    run_cargo(
        root,
        &[
            "build",
            "--release",
            "-p",
            "hakmem-alloc",
            "--features",
            p.feature,
        ],
    )?;
    let mut progress = Progress::new();
    let built = builder::build_all(root, &[p.contender()], &mut progress);
    built
        .into_iter()
        .next()
        .ok_or_else(|| "nothing built".to_string())?
        .bin
}

const HELP: &str = "\
usage: cargo xtask preset <list | show NAME | build NAME>

  list         every preset: its facade feature, the features it enables, and every
               gate's default under each preset (from hakmem-env-gates' GATES table)
  show NAME    one preset (safe, balanced, lean) with the doc of each gate
               (NAME may also be the seed's MIXED_TINYV3_C7_SAFE or
               MIXED_TINYV3_C7_BALANCED, any case, in every command that takes a preset)
  build NAME   cargo build --release -p hakmem-alloc --features preset-NAME, and the bench
               binary of that preset (target/bench-build/bin/hakmem-NAME)
";

/// Entry point of `cargo xtask preset`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let root = host::workspace_root();
    let name = || -> Result<&'static PresetDef, String> {
        find(
            args.get(1)
                .ok_or("a preset name is needed (safe, balanced, lean)")?,
        )
    };
    let res = match args.first().map(String::as_str) {
        None | Some("list") => {
            print!("{}", list_text(&root));
            Ok(())
        }
        Some("show") => name().map(|p| print!("{}", show_text(&root, p))),
        Some("build") => name().and_then(|p| {
            let bin = build(&root, p)?;
            println!(
                "built preset {}: facade target/release (libhakmem), bench binary {}",
                p.preset.name(),
                bin.display()
            );
            Ok(())
        }),
        Some("-h" | "--help" | "help") => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown preset command {other:?}\n{HELP}")),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask preset: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_mentions_every_gate_and_preset() {
        let s = list_text(&host::workspace_root());
        for g in GATES.iter() {
            assert!(s.contains(g.name), "{} missing from:\n{s}", g.name);
        }
        for p in PRESETS {
            assert!(s.contains(p.feature), "{}", p.feature);
            assert!(s.contains(p.preset.name()), "{}", p.preset.name());
        }
    }

    #[test]
    fn presets_match_the_bench_contenders_and_the_gate_table() {
        for p in PRESETS {
            let c = p.contender();
            assert_eq!(
                c.features,
                &["alloc-hakmem", &format!("hakmem/{}", p.feature)[..]]
            );
        }
        // Table order is SAFE, BALANCED, LEAN.
        assert!(!preset_defaults(PRESETS[0].preset).ss_mem_lean);
        assert!(preset_defaults(PRESETS[2].preset).ss_mem_lean);
    }

    #[test]
    fn show_has_every_gate_with_its_doc() {
        let s = show_text(&host::workspace_root(), find("LEAN").unwrap());
        let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
        for g in GATES.iter() {
            let doc = g.doc.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(g.name) && flat.contains(&doc), "{}", g.name);
        }
        for line in s.lines() {
            assert!(line.chars().count() <= WIDTH, "wider than {WIDTH}: {line}");
        }
        assert!(find("preset-safe").is_ok() && find("hakmem-balanced").is_ok());
        assert!(find("fast").is_err());
    }

    #[test]
    fn the_seeds_profile_names_are_presets() {
        assert_eq!(find("MIXED_TINYV3_C7_SAFE").unwrap().name, "safe");
        assert_eq!(find("mixed_tinyv3_c7_balanced").unwrap().name, "balanced");
        assert_eq!(find("Mixed_TinyV3_C7_Balanced").unwrap().name, "balanced");
        assert!(find("MIXED_TINYV3_C7_LEAN").is_err());
        let s = list_text(&host::workspace_root());
        assert!(s.contains("MIXED_TINYV3_C7_SAFE") && s.contains("MIXED_TINYV3_C7_BALANCED"));
        let s = show_text(
            &host::workspace_root(),
            find("MIXED_TINYV3_C7_SAFE").unwrap(),
        );
        assert!(s.contains("preset SAFE (safe)"), "{s}");
    }

    #[test]
    fn features_parse_and_expand() {
        let t = parse_features(
            "[package]\nname = \"x\"\n[features]\n# c\ndefault = [\"a\", \"hot\"]\na = [\"b\",\n  \"dep/x\"] # tail\nb = []\nhot = [\"dep:hot\"]\n[dev-dependencies]\nz = \"1\"\n",
        );
        assert_eq!(t["a"], vec!["b", "dep/x"]);
        assert!(!t.contains_key("z"));
        assert_eq!(
            closure(&t, &["default"]),
            vec!["default", "a", "b", "dep/x", "hot", "dep:hot"]
        );
        let real = facade_features(&host::workspace_root());
        assert!(real.contains_key("preset-safe"), "{real:?}");
    }
}
