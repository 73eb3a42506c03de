//! `cargo xtask bench --callgrind`: instructions per op under `valgrind --tool=callgrind`.
//!
//! Each contender runs the workload twice, with `N1` and `N2` ops; (Ir(N2) - Ir(N1)) /
//! (N2 - N1) is the cost of one op with set-up, start-up and clean-up excluded (the
//! clean-up frees about the same blocks in both runs).

use super::builder::Built;
use super::contenders::{Group, REFERENCE};
use super::progress::Progress;
use super::{Opts, runner};
use crate::host::{self, Host};
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Runs the callgrind comparison and prints its table.
pub fn main(
    opts: &Opts,
    host: &Host,
    root: &Path,
    built: &[Built],
    progress: &mut Progress,
) -> ExitCode {
    if !host::have("valgrind") {
        eprintln!("xtask bench --callgrind: valgrind not found");
        return ExitCode::FAILURE;
    }
    let (n1, n2) = if opts.quick {
        (100_000u64, 400_000u64)
    } else {
        (200_000u64, 1_200_000u64)
    };
    let tmp = std::env::temp_dir().join(format!("hakmem-callgrind-{}", std::process::id()));
    let mut md = String::new();
    let mut results = Vec::new();
    let _ = writeln!(
        md,
        "# hakmem callgrind {}\n\n- git revision: {}\n- host: {}, CPU: {}\n- instructions (Ir) per op = (Ir({n2} ops) - Ir({n1} ops)) / {}\n",
        host.date,
        host.rev_label(),
        host.hostname,
        host.cpu,
        n2 - n1
    );
    for w in &opts.workloads {
        let mut rows: Vec<(String, Result<f64, String>, Group)> = Vec::new();
        for (i, b) in built.iter().enumerate() {
            let name = b.contender.name;
            progress.line(&format!(
                "[callgrind {}/{}] {} · {name}",
                i + 1,
                built.len(),
                w.name
            ));
            let r = match &b.bin {
                Err(e) => Err(format!("missing: {e}")),
                Ok(_) if b.contender.group == Group::Floor && w.threaded => {
                    Err("n/a (single-threaded)".into())
                }
                Ok(bin) => {
                    let args = |n: u64| {
                        let mut a = vec![w.name.to_string(), "--ops".into(), n.to_string()];
                        a.extend(["--threads".into(), opts.threads.to_string()]);
                        if let Some(s) = opts.seed {
                            a.extend(["--seed".into(), s.to_string()]);
                        }
                        a
                    };
                    let t = opts.timeout * 4;
                    runner::callgrind(bin, &args(n1), &tmp, t).and_then(|i1| {
                        runner::callgrind(bin, &args(n2), &tmp, t)
                            .map(|i2| (i2 as f64 - i1 as f64) / (n2 - n1) as f64)
                    })
                }
            };
            rows.push((name.to_string(), r, b.contender.group));
        }
        let _ = std::fs::remove_file(&tmp);
        let reference = rows
            .iter()
            .find(|(n, _, _)| n == REFERENCE)
            .and_then(|(_, r, _)| r.as_ref().ok().copied());
        let floor = rows
            .iter()
            .find(|(_, _, g)| *g == Group::Floor)
            .and_then(|(_, r, _)| r.as_ref().ok().copied());
        let _ = writeln!(md, "## {}\n", w.name);
        let _ = writeln!(
            md,
            "| contender | Ir/op | vs mimalloc | Ir/op above floor |"
        );
        let _ = writeln!(md, "| --- | ---: | ---: | ---: |");
        for (name, r, _) in &rows {
            match r {
                Ok(ir) => {
                    let vs = reference.map_or("–".into(), |m| format!("{:.2}x", ir / m));
                    let above = floor.map_or("–".into(), |fl| format!("{:.1}", ir - fl));
                    let _ = writeln!(md, "| {name} | {ir:.1} | {vs} | {above} |");
                    results.push(json!({"workload": w.name, "contender": name, "ir_per_op": ir}));
                }
                Err(e) => {
                    let _ = writeln!(md, "| {name} | {e} | | |");
                    results.push(json!({"workload": w.name, "contender": name, "error": e}));
                }
            }
        }
        md.push('\n');
    }
    progress.clear();
    println!("{md}");
    let dir = crate::host::target_dir(root).join("bench");
    let base = format!("{}-{}-callgrind", host.stamp, host.rev_label());
    let doc = json!({
        "date": host.date,
        "git": {"rev": host.rev, "dirty": host.dirty},
        "host": {"hostname": host.hostname, "cpu": host.cpu},
        "ops": [n1, n2],
        "results": results,
    });
    if crate::text::write_report(&dir, &base, &md, &doc, "xtask bench --callgrind") {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
