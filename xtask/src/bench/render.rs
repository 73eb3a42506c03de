//! Reports of a benchmark run: the table (stdout and `.md`), the `.json` and the `.svg`.

use super::contenders::{Group, REFERENCE};
use super::{Cell, Missing, Results};
use crate::stats;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The numbers of one cell, derived from its runs.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Median ops/s.
    pub median: f64,
    /// Slowest and fastest run, ops/s.
    pub min: f64,
    /// See `min`.
    pub max: f64,
    /// Coefficient of variation of ops/s.
    pub cv: f64,
    /// Median ops per CPU-second.
    pub per_cpu: f64,
    /// Largest peak RSS over the runs, KiB.
    pub rss_kib: u64,
    /// Runs cut short by the time cap.
    pub capped: usize,
    /// Ratio of the median to mimalloc's median.
    pub vs_ref: f64,
    /// Ratio of the median to the best peer's median.
    pub vs_best: f64,
    /// Ratio of the median ops per CPU-second to mimalloc's.
    pub vs_ref_cpu: f64,
}

fn summarize(cell: &Cell, reference: f64, best: f64, reference_cpu: f64) -> Option<Summary> {
    if cell.runs.is_empty() {
        return None;
    }
    let t: Vec<f64> = cell.runs.iter().map(|s| s.ops_per_sec()).collect();
    let c: Vec<f64> = cell.runs.iter().map(|s| s.ops_per_cpu_sec()).collect();
    let (min, max) = stats::min_max(&t);
    let median = stats::median(&t);
    let per_cpu = stats::median(&c);
    Some(Summary {
        median,
        min,
        max,
        cv: stats::cv(&t),
        per_cpu,
        rss_kib: cell.runs.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
        capped: cell
            .runs
            .iter()
            .filter(|s| s.raw.get("capped").and_then(Value::as_bool) == Some(true))
            .count(),
        vs_ref: median / reference,
        vs_best: median / best,
        vs_ref_cpu: per_cpu / reference_cpu,
    })
}

/// Per workload: mimalloc's median ops per CPU-second.
fn reference_cpu(r: &Results, wi: usize) -> f64 {
    r.opts
        .contenders
        .iter()
        .position(|c| c.name == REFERENCE)
        .map_or(f64::NAN, |ci| r.cells[wi][ci].median_cpu())
}

/// Per workload: the reference's median, the best peer (index, median).
fn anchors(r: &Results, wi: usize) -> (f64, Option<(usize, f64)>) {
    let row = &r.cells[wi];
    let mut reference = f64::NAN;
    let mut best: Option<(usize, f64)> = None;
    for (ci, c) in r.opts.contenders.iter().enumerate() {
        let m = row[ci].median();
        if !m.is_finite() {
            continue;
        }
        if c.name == REFERENCE {
            reference = m;
        }
        if c.group == Group::Peer && best.is_none_or(|(_, b)| m > b) {
            best = Some((ci, m));
        }
    }
    (reference, best)
}

fn mops(x: f64) -> String {
    let m = x / 1e6;
    if !m.is_finite() {
        "–".into()
    } else if m >= 100.0 {
        format!("{m:.0}")
    } else if m >= 10.0 {
        format!("{m:.1}")
    } else if m >= 0.1 {
        format!("{m:.2}")
    } else {
        format!("{m:.4}")
    }
}

fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}x")
    } else {
        "–".into()
    }
}

fn per_op(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.is_finite() {
        format!("{x:.1e}")
    } else {
        "–".into()
    }
}

pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A markdown table with aligned columns; `right[i]` right-aligns column `i`.
pub(crate) fn table(header: &[String], rows: &[Vec<String>], right: &[bool]) -> String {
    let n = header.len();
    let width = |s: &str| s.chars().count();
    let mut w: Vec<usize> = header.iter().map(|h| width(h).max(3)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(width(c));
        }
    }
    let cell = |s: &str, i: usize| {
        let pad = " ".repeat(w[i] - width(s));
        if right.get(i).copied().unwrap_or(false) {
            format!("{pad}{s}")
        } else {
            format!("{s}{pad}")
        }
    };
    let mut out = String::new();
    let line = |cols: Vec<String>| format!("| {} |\n", cols.join(" | "));
    out.push_str(&line(
        header.iter().enumerate().map(|(i, h)| cell(h, i)).collect(),
    ));
    out.push_str(&line(
        (0..n)
            .map(|i| {
                let d = "-".repeat(w[i] - 1);
                if right.get(i).copied().unwrap_or(false) {
                    format!("{d}:")
                } else {
                    format!("{d}-")
                }
            })
            .collect(),
    ));
    for r in rows {
        out.push_str(&line(
            (0..n)
                .map(|i| cell(r.get(i).map_or("", |s| s), i))
                .collect(),
        ));
    }
    out
}

/// What to show instead of numbers, if the cell has none.
fn no_numbers(cell: &Cell) -> Option<String> {
    match &cell.missing {
        Some(Missing::Build(e)) => return Some(format!("missing: build failed: {e}")),
        Some(Missing::NotApplicable(why)) => return Some(format!("n/a ({why})")),
        None => {}
    }
    if cell.runs.is_empty() {
        let e = cell.errors.first().map_or("no run", |s| s.as_str());
        return Some(format!("failed: {e}"));
    }
    None
}

fn sys_cell(r: &Results, cell: &Cell, group: Group) -> String {
    let strace = match &cell.strace {
        Some(Ok(_)) => cell.strace_per_op().map(per_op),
        Some(Err(_)) => Some("strace failed".into()),
        None => None,
    };
    if group == Group::Hakmem {
        let own_x = cell.own_per_op();
        let own = own_x.map_or("–".into(), per_op);
        // The timed rounds and the strace run are different runs: where the count depends
        // on thread interleaving (LEAN's decommits on xfree vary 20x from run to run), the
        // strace run's own counter is shown too, so the two figures compare within a run.
        let differs = match (own_x, cell.strace_per_op()) {
            (Some(a), Some(b)) => a.max(b) > 2.0 * a.min(b) && a.max(b) > 1e-6,
            _ => false,
        };
        match (strace, cell.strace_own_per_op()) {
            (Some(s), Some(same)) if differs => {
                format!("{own} (strace {s}; own count in that run {})", per_op(same))
            }
            (Some(s), _) => format!("{own} (strace {s})"),
            (None, _) => own,
        }
    } else if r.strace_used {
        strace.unwrap_or_else(|| "–".into())
    } else {
        "n/a".into()
    }
}

/// The table of one workload.
fn workload_table(r: &Results, wi: usize) -> String {
    let w = r.opts.workloads[wi];
    let (reference, best) = anchors(r, wi);
    let best_m = best.map_or(f64::NAN, |b| b.1);
    let header: Vec<String> = [
        "contender",
        "Mops/s",
        "min–max",
        "CV",
        "Mops/CPU-s",
        "peak RSS",
        "sys/op",
        "vs mimalloc",
        "vs best peer",
        "CPU vs mimalloc",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut rows = Vec::new();
    for (ci, c) in r.opts.contenders.iter().enumerate() {
        let cell = &r.cells[wi][ci];
        if let Some(text) = no_numbers(cell) {
            rows.push(vec![c.name.to_string(), text]);
            continue;
        }
        let s = summarize(cell, reference, best_m, reference_cpu(r, wi)).expect("runs exist");
        let mut name = c.name.to_string();
        if !cell.errors.is_empty() {
            name.push_str(&format!(" ({} runs failed)", cell.errors.len()));
        }
        if s.capped > 0 {
            name.push_str(" †");
        }
        rows.push(vec![
            name,
            mops(s.median),
            format!("{}–{}", mops(s.min), mops(s.max)),
            format!("{:.1}%", s.cv * 100.0),
            mops(s.per_cpu),
            mib(s.rss_kib),
            sys_cell(r, cell, c.group),
            ratio(s.vs_ref),
            ratio(s.vs_best),
            ratio(s.vs_ref_cpu),
        ]);
    }
    let mut out = String::new();
    let ops = r.opts.ops(w);
    let _ = writeln!(
        out,
        "### {}\n\n{}. {} ops per run{}, median of {} rounds. Best peer: {}.\n",
        w.name,
        w.about,
        group_digits(ops),
        if w.threaded {
            format!(", {} threads", r.opts.threads)
        } else {
            String::new()
        },
        r.opts.runs,
        best.map_or("–".into(), |(ci, m)| format!(
            "{} ({} Mops/s)",
            r.opts.contenders[ci].name,
            mops(m)
        ))
    );
    out.push_str(&table(
        &header,
        &rows,
        &[false, true, true, true, true, true, true, true, true, true],
    ));
    out
}

fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Ratio to mimalloc of every contender on every workload (NaN where none).
fn ratio_matrix(r: &Results) -> Vec<Vec<f64>> {
    (0..r.opts.contenders.len())
        .map(|ci| {
            (0..r.opts.workloads.len())
                .map(|wi| {
                    let (reference, _) = anchors(r, wi);
                    r.cells[wi][ci].median() / reference
                })
                .collect()
        })
        .collect()
}

/// Ratio of ops per CPU-second to mimalloc's, every contender on every workload.
fn cpu_ratio_matrix(r: &Results) -> Vec<Vec<f64>> {
    (0..r.opts.contenders.len())
        .map(|ci| {
            (0..r.opts.workloads.len())
                .map(|wi| r.cells[wi][ci].median_cpu() / reference_cpu(r, wi))
                .collect()
        })
        .collect()
}

fn summary_table(r: &Results, cpu: bool) -> String {
    let m = if cpu {
        cpu_ratio_matrix(r)
    } else {
        ratio_matrix(r)
    };
    let mut header = vec!["contender".to_string()];
    header.extend(r.opts.workloads.iter().map(|w| w.name.to_string()));
    header.push("geomean".into());
    let mut rows = Vec::new();
    for (ci, c) in r.opts.contenders.iter().enumerate() {
        let mut row = vec![c.name.to_string()];
        for (wi, x) in m[ci].iter().enumerate() {
            let cell = &r.cells[wi][ci];
            row.push(match &cell.missing {
                Some(Missing::Build(_)) => "missing".into(),
                Some(Missing::NotApplicable(_)) => "n/a".into(),
                None if cell.runs.is_empty() => "failed".into(),
                None => ratio(*x),
            });
        }
        row.push(if c.group == Group::Floor {
            "–".into()
        } else {
            ratio(stats::geomean(&m[ci]))
        });
        rows.push(row);
    }
    if !cpu {
        let mut best_row = vec!["best peer".to_string()];
        for wi in 0..r.opts.workloads.len() {
            let (reference, best) = anchors(r, wi);
            best_row.push(best.map_or("–".into(), |(ci, b)| {
                format!("{} {}", r.opts.contenders[ci].name, ratio(b / reference))
            }));
        }
        rows.push(best_row);
    }
    let right: Vec<bool> = (0..header.len()).map(|i| i > 0).collect();
    table(&header, &rows, &right)
}

fn params_lines(r: &Results) -> String {
    let h = &r.host;
    let o = &r.opts;
    let mut s = String::new();
    let _ = writeln!(s, "- date: {} (UTC)", h.date);
    let _ = writeln!(s, "- git revision: {}", h.rev_label());
    let _ = writeln!(
        s,
        "- host: {}, CPU: {}, {} logical CPUs, {:.1} GiB, Linux {}",
        h.hostname, h.cpu, h.cores, h.mem_gib, h.kernel
    );
    let _ = writeln!(s, "- toolchain: {}", h.rustc);
    let _ = writeln!(
        s,
        "- load average (1/5/15 min): {} before, {} after the rounds ({} CPUs; other work on \
         the machine shows up as spread and CV)",
        h.load, r.load_after, h.cores
    );
    let _ = writeln!(
        s,
        "- parameters: {} rounds{}, {} threads for threaded workloads, ops scale {}, time cap {} s per run, seed {}",
        o.runs,
        if o.quick { " (--quick)" } else { "" },
        o.threads,
        o.ops_scale,
        o.max_secs(),
        o.seed.map_or("default".into(), |s| s.to_string())
    );
    let _ = writeln!(
        s,
        "- rounds took {}; every contender runs once per workload per round, order rotated",
        super::progress::duration(r.secs)
    );
    let _ = writeln!(
        s,
        "- sys/op: hakmem = its own counter (mmap+munmap+madvise+mprotect+mremap in the timed \
         section, `hakmem::stats()`); everyone = {}",
        r.strace_note
    );
    s
}

/// The report as markdown (also what is printed on stdout).
pub fn markdown(r: &Results, svg_name: Option<&str>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# hakmem benchmark {}\n", r.host.date);
    s.push_str(&params_lines(r));
    let _ = writeln!(
        s,
        "\n## Throughput relative to mimalloc (median of {} interleaved rounds, >1 is faster)\n",
        r.opts.runs
    );
    s.push_str(&summary_table(r, false));
    if let Some(svg) = svg_name {
        let _ = writeln!(s, "\n![ratio to mimalloc per workload]({svg})");
    }
    let _ = writeln!(
        s,
        "\n## Ops per CPU-second relative to mimalloc (median of {} rounds)\n\nLess sensitive \
         to other work on the machine than wall-clock throughput (a descheduled process \
         spends no CPU); for threaded workloads, work per core used (spinning while waiting \
         counts as CPU).\n",
        r.opts.runs
    );
    s.push_str(&summary_table(r, true));
    let _ = writeln!(s, "\n## Per workload\n");
    let _ = writeln!(
        s,
        "Mops/s: median; min–max and CV over the rounds; Mops/CPU-s: ops per CPU-second (user + \
         system, all threads); peak RSS: largest `ru_maxrss` over the rounds; † = some runs hit \
         the time cap (ops/s still valid, fewer ops).\n"
    );
    for wi in 0..r.opts.workloads.len() {
        s.push_str(&workload_table(r, wi));
        s.push('\n');
    }
    let _ = writeln!(s, "## Contenders\n");
    let header: Vec<String> = ["contender", "what", "features", "build"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    let rows: Vec<Vec<String>> = r
        .built
        .iter()
        .map(|b| {
            vec![
                b.contender.name.to_string(),
                b.contender.about.to_string(),
                format!("`{}`", b.contender.features.join(",")),
                match &b.bin {
                    Ok(_) => format!("ok ({:.1} s)", b.secs),
                    Err(e) => format!("MISSING: {e} (log: {})", b.log.display()),
                },
            ]
        })
        .collect();
    s.push_str(&table(&header, &rows, &[false, false, false, false]));
    s
}

fn f(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

/// The report as JSON: context, parameters, every run and every summary.
pub fn to_json(r: &Results) -> Value {
    let h = &r.host;
    let o = &r.opts;
    let mut results = Vec::new();
    for (wi, w) in o.workloads.iter().enumerate() {
        let (reference, best) = anchors(r, wi);
        let best_m = best.map_or(f64::NAN, |b| b.1);
        for (ci, c) in o.contenders.iter().enumerate() {
            let cell = &r.cells[wi][ci];
            let s = summarize(cell, reference, best_m, reference_cpu(r, wi));
            let strace = match &cell.strace {
                Some(Ok((n, z, ops))) => json!({
                    "ops": ops,
                    "calls": n.total,
                    "calls_zero_ops": z.total,
                    "per_op": f(cell.strace_per_op().unwrap_or(f64::NAN)),
                    "own_total": n.own_total,
                    "own_total_zero_ops": z.own_total,
                    "own_per_op_same_run": f(cell.strace_own_per_op().unwrap_or(f64::NAN)),
                    "by_syscall": n.by_name.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                    "by_syscall_zero_ops": z.by_name.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                }),
                Some(Err(e)) => json!({ "error": e }),
                None => Value::Null,
            };
            results.push(json!({
                "workload": w.name,
                "contender": c.name,
                "group": format!("{:?}", c.group),
                "status": match (&cell.missing, cell.runs.is_empty()) {
                    (Some(Missing::Build(e)), _) => format!("missing: {e}"),
                    (Some(Missing::NotApplicable(why)), _) => format!("n/a: {why}"),
                    (None, true) => "failed".into(),
                    (None, false) => "ok".into(),
                },
                "errors": cell.errors,
                "median_ops_per_sec": s.as_ref().map_or(Value::Null, |s| f(s.median)),
                "min_ops_per_sec": s.as_ref().map_or(Value::Null, |s| f(s.min)),
                "max_ops_per_sec": s.as_ref().map_or(Value::Null, |s| f(s.max)),
                "cv": s.as_ref().map_or(Value::Null, |s| f(s.cv)),
                "median_ops_per_cpu_sec": s.as_ref().map_or(Value::Null, |s| f(s.per_cpu)),
                "peak_rss_kib": s.as_ref().map(|s| s.rss_kib),
                "capped_runs": s.as_ref().map(|s| s.capped),
                "ratio_to_mimalloc": s.as_ref().map_or(Value::Null, |s| f(s.vs_ref)),
                "ratio_to_best_peer": s.as_ref().map_or(Value::Null, |s| f(s.vs_best)),
                "cpu_ratio_to_mimalloc": s.as_ref().map_or(Value::Null, |s| f(s.vs_ref_cpu)),
                "best_peer": best.map(|(bi, _)| o.contenders[bi].name),
                "syscalls_per_op_own": cell.own_per_op().map_or(Value::Null, f),
                "strace": strace,
                "runs": cell.runs.iter().map(|s| s.raw.clone()).collect::<Vec<_>>(),
            }));
        }
    }
    json!({
        "date": h.date,
        "git": { "rev": h.rev, "dirty": h.dirty },
        "host": {
            "hostname": h.hostname,
            "cpu": h.cpu,
            "cores": h.cores,
            "mem_gib": h.mem_gib,
            "kernel": h.kernel,
            "rustc": h.rustc,
            "load_before": h.load,
            "load_after": r.load_after,
        },
        "params": {
            "runs": o.runs,
            "quick": o.quick,
            "threads": o.threads,
            "ops_scale": o.ops_scale,
            "max_secs": o.max_secs(),
            "seed": o.seed,
            "presets": o.presets,
            "timeout_secs": o.timeout.as_secs(),
            "workloads": o.workloads.iter().map(|w| json!({
                "name": w.name,
                "about": w.about,
                "threaded": w.threaded,
                "ops": o.ops(w),
                "args": o.args(w, o.ops(w)),
                "ws": w.ws,
                "min": w.min,
                "max": w.max,
            })).collect::<Vec<_>>(),
        },
        "syscalls_method": {
            "hakmem": "hakmem::stats().syscalls() delta over the timed section",
            "strace": r.strace_note,
        },
        "rounds_secs": r.secs,
        "contenders": r.built.iter().map(|b| json!({
            "name": b.contender.name,
            "about": b.contender.about,
            "features": b.contender.features,
            "built": b.bin.is_ok(),
            "error": b.bin.as_ref().err(),
            "build_secs": b.secs,
        })).collect::<Vec<_>>(),
        "results": results,
    })
}

const PALETTE: &[&str] = &[
    "#d62728", "#ff7f0e", "#e377c2", "#1f77b4", "#17becf", "#2ca02c", "#9467bd", "#8c564b",
    "#7f7f7f", "#bcbd22",
];

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A grouped bar chart of the ratio to mimalloc per workload, as SVG.
#[allow(clippy::needless_range_loop)]
pub fn svg(r: &Results) -> String {
    let m = ratio_matrix(r);
    let nc = r.opts.contenders.len();
    let nw = r.opts.workloads.len();
    let ymax_data = m
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .fold(1.0f64, f64::max);
    let ymax = ((ymax_data.min(4.0) * 1.1) * 2.0).ceil() / 2.0;
    let bar = 12.0;
    let gap = 18.0;
    let group_w = nc as f64 * bar + gap;
    let (left, top, plot_h) = (60.0, 70.0, 320.0);
    let width = left + nw as f64 * group_w + 20.0;
    let height = top + plot_h + 90.0;
    let y = |v: f64| top + plot_h * (1.0 - v.min(ymax) / ymax);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="18" font-size="14" font-weight="bold">Throughput / mimalloc (median of {} rounds) — {} {}</text>"#,
        r.opts.runs,
        esc(&r.host.rev_label()),
        esc(&r.host.date)
    );
    // Legend.
    let mut lx = left;
    for (ci, c) in r.opts.contenders.iter().enumerate() {
        let col = PALETTE[ci % PALETTE.len()];
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.0}" y="30" width="10" height="10" fill="{col}"/><text x="{:.0}" y="39">{}</text>"#,
            lx + 13.0,
            esc(c.name)
        );
        lx += 20.0 + c.name.len() as f64 * 6.5;
        if lx > width - 100.0 {
            lx = left;
        }
    }
    // Grid.
    let mut v = 0.0;
    while v <= ymax + 1e-9 {
        let yy = y(v);
        let stroke = if (v - 1.0).abs() < 1e-9 {
            "#000"
        } else {
            "#ddd"
        };
        let dash = if (v - 1.0).abs() < 1e-9 {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<line x1="{left}" y1="{yy:.1}" x2="{:.0}" y2="{yy:.1}" stroke="{stroke}"{dash}/><text x="{:.0}" y="{:.1}" text-anchor="end">{v:.1}x</text>"#,
            width - 20.0,
            left - 5.0,
            yy + 4.0
        );
        v += 0.5;
    }
    // Bars.
    for wi in 0..nw {
        let gx = left + wi as f64 * group_w + gap / 2.0;
        for (ci, c) in r.opts.contenders.iter().enumerate() {
            let val = m[ci][wi];
            if !val.is_finite() {
                continue;
            }
            let x = gx + ci as f64 * bar;
            let y0 = y(val);
            let col = PALETTE[ci % PALETTE.len()];
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="{col}"><title>{} {}: {val:.2}x</title></rect>"#,
                bar - 1.0,
                top + plot_h - y0,
                esc(c.name),
                esc(r.opts.workloads[wi].name)
            );
            if val > ymax {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">{val:.1}</text>"#,
                    x + bar / 2.0,
                    top - 3.0 - (ci % 2) as f64 * 9.0
                );
            }
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" transform="rotate(-35 {:.1} {:.1})">{}</text>"#,
            gx + nc as f64 * bar / 2.0,
            top + plot_h + 16.0,
            gx + nc as f64 * bar / 2.0,
            top + plot_h + 16.0,
            esc(r.opts.workloads[wi].name)
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{:.1}" x2="{:.0}" y2="{:.1}" stroke="#000"/>"##,
        top + plot_h,
        width - 20.0,
        top + plot_h
    );
    s.push_str("</svg>\n");
    s
}

/// Writes `<stamp>-<rev>.{json,md,svg}` (and `latest.*`) under `dir`; returns the markdown
/// report and the files written.
pub fn write_all(r: &Results, dir: &Path) -> std::io::Result<(String, Vec<PathBuf>)> {
    std::fs::create_dir_all(dir)?;
    let base = format!("{}-{}", r.host.stamp, r.host.rev_label());
    let svg_name = format!("{base}.svg");
    let md = markdown(r, Some(&svg_name));
    let json = serde_json::to_string_pretty(&to_json(r)).map_err(std::io::Error::other)?;
    let svg = svg(r);
    let mut files = Vec::new();
    for (ext, body) in [("json", &json), ("md", &md), ("svg", &svg)] {
        let p = dir.join(format!("{base}.{ext}"));
        std::fs::write(&p, body)?;
        files.push(p);
    }
    std::fs::write(dir.join("latest.json"), &json)?;
    std::fs::write(dir.join("latest.md"), md.replace(&svg_name, "latest.svg"))?;
    std::fs::write(dir.join("latest.svg"), &svg)?;
    Ok((markdown(r, None), files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_table() {
        let t = table(
            &["a".into(), "bb".into()],
            &[vec!["long".into(), "1".into()]],
            &[false, true],
        );
        assert_eq!(t, "| a    |  bb |\n| ---- | --: |\n| long |   1 |\n");
    }

    #[test]
    fn formats() {
        assert_eq!(mops(123_456_789.0), "123");
        assert_eq!(mops(12_345_678.0), "12.3");
        assert_eq!(mops(1_234_567.0), "1.23");
        assert_eq!(per_op(1.25e-7), "1.2e-7");
        assert_eq!(per_op(0.0), "0");
        assert_eq!(group_digits(20_000_000), "20,000,000");
        assert_eq!(ratio(f64::NAN), "–");
    }
}
