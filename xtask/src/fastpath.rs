//! `cargo xtask fastpath`: counts the machine instructions of hakmem's fast paths.
//!
//! Builds `hakmem-fastpath` (`benches/src/fastpath_probe.rs`: `hakmem_fastpath_alloc(size)`
//! and `hakmem_fastpath_dealloc(p, size)`, out-of-line calls of `GlobalAlloc::alloc` /
//! `dealloc` of `hakmem::HakMem` with a tiny `Layout` whose size is only known at run
//! time, align 8) in the release profile (fat LTO, one codegen unit), for each preset;
//! disassembles it with `objdump -d --no-show-raw-insn`; and walks the *hit path* of each
//! function: from its entry, conditional branches not taken (the compiler lays the likely
//! path out as the fall-through), unconditional jumps inside the function followed, up to
//! the first `ret` (not counted). It fails if a hit path is longer than its budget
//! ([`BUDGETS`], the one place the numbers live), holds a `lock`-prefixed or `xchg`
//! instruction (an atomic read-modify-write), a `call`, or a jump out of the function (a
//! tail call).
//!
//! In the spirit of tcmalloc's fast-path discipline (a golden instruction mix that a change
//! must not quietly grow), it also prints the mix (memory reads, writes, TLS accesses,
//! branches) and compares the mnemonic sequence with `xtask/fastpath-golden.txt`: a
//! difference is reported (not a failure); `--bless` rewrites the file.
//!
//! `--callgrind` checks the static walk against an execution: the probe calls each
//! function [`CALLS`] times under `valgrind --tool=callgrind`, and the instructions executed
//! inside each function per call (the `ret` included) must round to the walk's count + 1.

use crate::bench::builder;
use crate::bench::progress::Progress;
use crate::host;
use crate::preset::{self, PRESETS, PresetDef};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};

/// The instruction budgets of the hit paths, per preset: (preset, alloc, dealloc).
/// The default feature `double-free-check` (every preset) adds a check and a mark on
/// free (3 instructions: `cmp` with an immediate, `je`, `mov` of an immediate) and
/// clearing the mark on allocation (1): 10 + 1 and 11 + 3 without it. (17 and 20 until
/// the size-indexed bin table, `hakmem-tiny-fast`'s `BIN_AT`: no rounding of the size,
/// no scaling of the class, and the local-exec TLS access folded into the loads.)
/// Since the bins are arrays of pointers (results/170), an allocation loads the array
/// and indexes it instead of following the block's link: one instruction more (11 + 1),
/// and no load from the block it hands out (the link load missed the cache whenever the
/// block had been freed long ago: `cbench simple` 1.4 times faster).
pub const BUDGETS: [(&str, usize, usize); 3] =
    [("safe", 12, 14), ("balanced", 12, 14), ("lean", 12, 14)];

/// The probe's functions: (symbol, short name).
pub const FUNCS: [(&str, &str); 2] = [
    ("hakmem_fastpath_alloc", "alloc"),
    ("hakmem_fastpath_dealloc", "dealloc"),
];

/// Calls of each function made by the probe's `main` (`benches/src/fastpath_probe.rs`).
pub const CALLS: u64 = 100_000;

/// The golden listing's path, relative to the workspace root.
pub const GOLDEN: &str = "xtask/fastpath-golden.txt";

/// One disassembled instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Its address.
    pub addr: u64,
    /// Mnemonic, with any prefix (`lock add`, `rep stos`).
    pub mnemonic: String,
    /// Operands as objdump prints them (AT&T syntax), possibly with a `<symbol>` note.
    pub operands: String,
}

/// Parses `objdump -d --no-show-raw-insn` output into functions: symbol -> instructions.
pub fn parse_objdump(text: &str) -> BTreeMap<String, Vec<Insn>> {
    let mut out: BTreeMap<String, Vec<Insn>> = BTreeMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_end();
        if let Some(rest) = t.strip_suffix(">:") {
            cur = rest.split_once(" <").map(|(_, name)| name.to_string());
            if let Some(n) = &cur {
                out.entry(n.clone()).or_default();
            }
            continue;
        }
        let Some(name) = &cur else { continue };
        let Some((addr, rest)) = t.trim_start().split_once(":\t") else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr.trim(), 16) else {
            continue;
        };
        let rest = rest.split('#').next().unwrap_or("").trim();
        if rest.is_empty() {
            continue;
        }
        let mut words = rest.split_whitespace();
        let mut mnemonic = words.next().unwrap_or("").to_string();
        let mut operands: Vec<&str> = words.collect();
        // Prefixes: objdump prints `lock add ...`, `rep stos ...`, `notrack jmp ...`.
        while [
            "lock", "rep", "repz", "repnz", "repe", "repne", "notrack", "bnd", "data16", "cs", "ds",
        ]
        .contains(&mnemonic.as_str())
            && !operands.is_empty()
        {
            mnemonic = format!("{mnemonic} {}", operands.remove(0));
        }
        out.get_mut(name).expect("entry").push(Insn {
            addr,
            mnemonic,
            operands: operands.join(" "),
        });
    }
    out
}

/// The hit path of `f` and what is wrong with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HitPath {
    /// Instructions from the entry to the first `ret`, the `ret` excluded.
    pub insns: Vec<Insn>,
    /// Rule violations: atomic RMW, call, tail call, no `ret`.
    pub violations: Vec<String>,
}

fn is_cond_branch(m: &str) -> bool {
    m.starts_with('j') && m != "jmp" && !m.starts_with("jmp")
}

fn target(ops: &str) -> Option<u64> {
    let t = ops.split_whitespace().next()?;
    u64::from_str_radix(t.trim_start_matches("0x"), 16).ok()
}

/// Walks the hit path of function `f`.
pub fn hit_path(f: &[Insn]) -> HitPath {
    let mut hp = HitPath::default();
    let Some(first) = f.first() else {
        hp.violations.push("empty function".into());
        return hp;
    };
    let index: BTreeMap<u64, usize> = f.iter().enumerate().map(|(i, x)| (x.addr, i)).collect();
    let mut i = index[&first.addr];
    let mut steps = 0;
    loop {
        steps += 1;
        if steps > 1000 || i >= f.len() {
            hp.violations
                .push("no ret reached on the fall-through path".into());
            return hp;
        }
        let x = &f[i];
        let m = x.mnemonic.as_str();
        if m == "ret" || m.starts_with("ret ") || m == "retq" {
            return hp;
        }
        hp.insns.push(x.clone());
        if m.starts_with("lock") {
            hp.violations
                .push(format!("atomic read-modify-write: {m} {}", x.operands));
        } else if m.starts_with("xchg") && x.operands.contains('(') {
            hp.violations.push(format!(
                "xchg with memory (implicitly locked): {}",
                x.operands
            ));
        }
        if m.starts_with("call") {
            hp.violations
                .push(format!("out-of-line call: {m} {}", x.operands));
            return hp;
        }
        if m == "jmp" || m.starts_with("jmp") {
            match target(&x.operands).and_then(|t| index.get(&t)) {
                Some(&j) => {
                    i = j;
                    continue;
                }
                None => {
                    hp.violations.push(format!(
                        "jump out of the function (tail call): {}",
                        x.operands
                    ));
                    return hp;
                }
            }
        }
        // Conditional branches: not taken on the hit path.
        let _ = is_cond_branch(m);
        i += 1;
    }
}

/// The instruction mix of a path: (reads, writes, TLS accesses, branches, others).
pub fn mix(path: &[Insn]) -> (usize, usize, usize, usize, usize) {
    let (mut r, mut w, mut tls, mut br, mut other) = (0, 0, 0, 0, 0);
    for x in path {
        let m = x.mnemonic.as_str();
        let ops: Vec<&str> = split_operands(&x.operands);
        let is_mem = |o: &str| o.contains('(') || o.contains("%fs:") || o.contains("%gs:");
        if x.operands.contains("%fs:") || x.operands.contains("%gs:") {
            tls += 1;
        }
        if is_cond_branch(m) || m.starts_with("jmp") {
            br += 1;
            continue;
        }
        if m.starts_with("lea") || m.starts_with("nop") {
            other += 1;
            continue;
        }
        let dst_mem = ops.last().is_some_and(|o| is_mem(o));
        let src_mem = ops.len() > 1 && ops[..ops.len() - 1].iter().any(|o| is_mem(o));
        let read_only = m.starts_with("cmp") || m.starts_with("test");
        let pure_write = m.starts_with("mov") || m.starts_with("stos");
        let mut counted = false;
        if src_mem || (dst_mem && (read_only || !pure_write)) {
            r += 1;
            counted = true;
        }
        if dst_mem && !read_only {
            w += 1;
            counted = true;
        }
        if !counted {
            other += 1;
        }
    }
    (r, w, tls, br, other)
}

/// Splits AT&T operands at top-level commas (not inside parentheses).
fn split_operands(s: &str) -> Vec<&str> {
    let s = s.split(" <").next().unwrap_or(s);
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        out.push(s[start..].trim());
    }
    out
}

/// The golden listing of one path: its mnemonics, one line.
fn golden_line(preset: &str, func: &str, path: &[Insn]) -> String {
    let m: Vec<&str> = path.iter().map(|x| x.mnemonic.as_str()).collect();
    format!("{preset} {func}: {}", m.join(" "))
}

const HELP: &str = "\
usage: cargo xtask fastpath [--preset P[,P]] [--bless] [--callgrind] [--no-build]

Counts the instructions on the hit path of hakmem's alloc and dealloc of a tiny block
(from the function entry to the first ret, following no calls) in the release build of
each preset; fails above the budget (xtask/src/fastpath.rs, BUDGETS) or on an atomic
read-modify-write, a call or a tail call on the hit path. --bless rewrites the golden
listing (xtask/fastpath-golden.txt) that changes are reported against. --callgrind
also runs the probe under valgrind and checks the count against the instructions executed.
";

/// Entry point of `cargo xtask fastpath`.
pub fn main(args: Vec<OsString>) -> ExitCode {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut presets: Vec<&'static PresetDef> = Vec::new();
    let (mut bless, mut build, mut cg) = (false, true, false);
    loop {
        let arg = match p.next() {
            Ok(Some(a)) => a,
            Ok(None) => break,
            Err(e) => {
                eprintln!("xtask fastpath: {e}");
                return ExitCode::from(2);
            }
        };
        match arg {
            Long("preset" | "presets") => {
                let v = p
                    .value()
                    .map(|v| v.to_string_lossy().into_owned())
                    .unwrap_or_default();
                for n in v.split(',').filter(|s| !s.is_empty()) {
                    match preset::find(n) {
                        Ok(pd) => presets.push(pd),
                        Err(e) => {
                            eprintln!("xtask fastpath: {e}");
                            return ExitCode::from(2);
                        }
                    }
                }
            }
            Long("bless") => bless = true,
            Long("callgrind") => cg = true,
            Long("no-build") => build = false,
            Short('h') | Long("help") => {
                print!("{HELP}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("xtask fastpath: {}\n\n{HELP}", other.unexpected());
                return ExitCode::from(2);
            }
        }
    }
    if presets.is_empty() {
        presets = PRESETS.iter().collect();
    }
    match run(&presets, bless, build, cg) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask fastpath: {e}");
            ExitCode::from(2)
        }
    }
}

fn disassemble(bin: &Path) -> Result<String, String> {
    let out = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .arg(bin)
        .output()
        .map_err(|e| format!("cannot run objdump: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "objdump failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Instructions executed inside each probe function per call, under callgrind (self
/// cost, summed over the source lines inlined into it).
fn executed_per_call(bin: &Path) -> Result<BTreeMap<String, f64>, String> {
    let out = std::env::temp_dir().join(format!("hakmem-fastpath-cg-{}", std::process::id()));
    let st = Command::new("valgrind")
        .args(["--tool=callgrind", "--dump-instr=no"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(bin)
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !st.status.success() {
        return Err(format!(
            "valgrind failed: {}",
            String::from_utf8_lossy(&st.stderr)
        ));
    }
    let ann = Command::new("callgrind_annotate")
        .arg("--auto=no")
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run callgrind_annotate: {e}"))?;
    let _ = std::fs::remove_file(&out);
    let text = String::from_utf8_lossy(&ann.stdout);
    let mut per: BTreeMap<String, f64> = BTreeMap::new();
    for line in text.lines() {
        for (sym, _) in FUNCS {
            if line.contains(&format!(":{sym}")) && !line.contains(&format!(":{sym}_")) {
                let n: f64 = line
                    .split_whitespace()
                    .next()
                    .unwrap_or("0")
                    .replace(',', "")
                    .parse()
                    .unwrap_or(0.0);
                *per.entry(sym.to_string()).or_default() += n / CALLS as f64;
            }
        }
    }
    Ok(per)
}

fn run(
    presets: &[&'static PresetDef],
    bless: bool,
    build: bool,
    callgrind: bool,
) -> Result<bool, String> {
    let root = host::workspace_root();
    let mut progress = Progress::new();
    let mut ok = true;
    let mut golden_new = String::from(
        "# Hit-path mnemonics of hakmem_fastpath_alloc / _dealloc per preset, written by\n# `cargo xtask fastpath --bless`; `cargo xtask fastpath` reports differences.\n",
    );
    let golden_old = std::fs::read_to_string(root.join(GOLDEN)).unwrap_or_default();
    let mut changed = Vec::new();
    let mut summary = Vec::new();
    for pd in presets {
        let c = pd.contender();
        let bin = if build {
            builder::build_all_bin(&root, &[c], "hakmem-fastpath", "-fastpath", &mut progress)
                .into_iter()
                .next()
                .ok_or("nothing built")?
                .bin?
        } else {
            builder::build_dir(&root)
                .join("bin")
                .join(format!("{}-fastpath", c.name))
        };
        let funcs = parse_objdump(&disassemble(&bin)?);
        let executed = if callgrind {
            Some(executed_per_call(&bin)?)
        } else {
            None
        };
        let budget = BUDGETS
            .iter()
            .find(|b| b.0 == pd.name)
            .ok_or_else(|| format!("no budget for preset {}", pd.name))?;
        for (sym, short) in FUNCS {
            let f = funcs
                .get(sym)
                .ok_or_else(|| format!("{sym} not found in {}", bin.display()))?;
            let hp = hit_path(f);
            let limit = if short == "alloc" { budget.1 } else { budget.2 };
            let n = hp.insns.len();
            let (r, w, tls, br, other) = mix(&hp.insns);
            let mut verdict = String::new();
            if n > limit {
                ok = false;
                let _ = write!(verdict, "OVER BUDGET ({n} > {limit}) ");
            }
            for v in &hp.violations {
                ok = false;
                let _ = write!(verdict, "VIOLATION: {v}; ");
            }
            if verdict.is_empty() {
                verdict = format!("ok ({n} <= {limit})");
            }
            println!(
                "{} {short}: {n} instructions on the hit path (budget {limit}): {verdict}",
                pd.preset.name()
            );
            println!(
                "  mix: {r} memory reads, {w} memory writes, {tls} TLS accesses, {br} branches, {other} other"
            );
            if let Some(ex) = &executed {
                let per = ex.get(sym).copied().unwrap_or(0.0);
                let agrees = per.round() as usize == n + 1;
                if !agrees {
                    ok = false;
                }
                println!(
                    "  callgrind: {per:.3} instructions executed per call, ret included: {}",
                    if agrees {
                        format!("agrees with the walk ({n} + ret)")
                    } else {
                        format!(
                            "DISAGREES with the walk ({n} + ret): the hit path is not the fall-through path"
                        )
                    }
                );
            }
            for x in &hp.insns {
                println!("    {:x}: {:<8} {}", x.addr, x.mnemonic, x.operands);
            }
            let line = golden_line(pd.name, short, &hp.insns);
            let key = format!("{} {short}:", pd.name);
            match golden_old.lines().find(|l| l.starts_with(&key)) {
                Some(old) if old == line => {}
                Some(_) => changed.push(key.clone()),
                None => changed.push(format!("{key} (not in the golden file)")),
            }
            golden_new.push_str(&line);
            golden_new.push('\n');
            summary.push(format!(
                "{:<9} {short:<8} {n:>3} / {limit:<3} {}",
                pd.preset.name(),
                if hp.violations.is_empty() && n <= limit {
                    "ok"
                } else {
                    "FAIL"
                }
            ));
        }
    }
    println!("\npreset    function  insns / budget");
    for s in &summary {
        println!("{s}");
    }
    if bless {
        std::fs::write(root.join(GOLDEN), &golden_new).map_err(|e| e.to_string())?;
        println!("wrote {GOLDEN}");
    } else if !changed.is_empty() {
        println!(
            "note: the hit path differs from {GOLDEN} for {} (not a failure; review the listing and run `cargo xtask fastpath --bless`)",
            changed.join(", ")
        );
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "
0000000000011150 <hakmem_fastpath_dealloc>:
   11150:\tcmp    $0x401,%rsi
   11157:\tjae    18070 <_ZN6hakmem12dealloc_slow17h6e71773468805f95E>
   1115d:\tmov    %fs:0x0,%rcx
   11166:\tjmp    11170 <hakmem_fastpath_dealloc+0x20>
   11168:\tud2
   11170:\tmov    (%rax),%rcx
   11173:\tmov    %rcx,(%rdi)
   11176:\tincl   0x8(%rax)
   11179:\tret
   1117a:\tcall   16800 <slow>

0000000000011200 <bad>:
   11200:\tlock incq 0x10(%rdi)
   11205:\tjmp    16800 <slow>
";

    #[test]
    fn walks_the_fall_through_path_and_follows_local_jumps() {
        let f = parse_objdump(DUMP);
        let d = &f["hakmem_fastpath_dealloc"];
        assert_eq!(d.len(), 10);
        let hp = hit_path(d);
        let m: Vec<&str> = hp.insns.iter().map(|x| x.mnemonic.as_str()).collect();
        assert_eq!(m, ["cmp", "jae", "mov", "jmp", "mov", "mov", "incl"]);
        assert!(hp.violations.is_empty(), "{:?}", hp.violations);
        let (r, w, tls, br, _) = mix(&hp.insns);
        assert_eq!((r, w, tls, br), (3, 2, 1, 2));
    }

    #[test]
    fn atomics_and_tail_calls_are_violations() {
        let f = parse_objdump(DUMP);
        let hp = hit_path(&f["bad"]);
        assert_eq!(hp.insns[0].mnemonic, "lock incq");
        assert_eq!(hp.violations.len(), 2, "{:?}", hp.violations);
        assert!(hp.violations[0].contains("atomic"));
        assert!(hp.violations[1].contains("tail call"));
    }

    #[test]
    fn budgets_cover_every_preset() {
        for p in PRESETS {
            assert!(BUDGETS.iter().any(|b| b.0 == p.name), "{}", p.name);
        }
        assert_eq!(
            split_operands("0x8(%rax,%rcx,1),%rdx"),
            ["0x8(%rax,%rcx,1)", "%rdx"]
        );
    }
}
