//! Reports of a benchmark run: the table (stdout and `.md`), the `.json` and the `.svg`.

use super::contenders::{Group, REFERENCE};
use super::{Cell, Missing, Results};
use crate::stats;
use crate::svg::{PALETTE, Svg};
use crate::text::{Decimals::Sig3, group_digits, mib, mops, per_op, ratio, table};
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
    // `burst-*`: the resident set after the frees and after the idle time are the result.
    let burst = w.kind == hakmem_bench::Kind::Burst;
    let mut header: Vec<String> = [
        "contender",
        "Mops/s",
        "min–max",
        "CV",
        "Mops/CPU-s",
        "peak RSS",
        "sys/op",
        "faults/op",
        "vs mimalloc",
        "vs best peer",
        "CPU vs mimalloc",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if burst {
        header.splice(
            6..6,
            ["RSS after free".to_string(), "RSS after idle".to_string()],
        );
    }
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
        let mut row = vec![
            name,
            mops(s.median, Sig3),
            format!("{}–{}", mops(s.min, Sig3), mops(s.max, Sig3)),
            format!("{:.1}%", s.cv * 100.0),
            mops(s.per_cpu, Sig3),
            mib(s.rss_kib as f64),
            sys_cell(r, cell, c.group),
            per_op(cell.faults_per_op()),
            ratio(s.vs_ref),
            ratio(s.vs_best),
            ratio(s.vs_ref_cpu),
        ];
        if burst {
            let (free, idle) = cell
                .burst_rss_kib()
                .map_or(("–".into(), "–".into()), |(a, b)| (mib(a), mib(b)));
            row.splice(6..6, [free, idle]);
        }
        rows.push(row);
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
            mops(m, Sig3)
        ))
    );
    let right: Vec<bool> = (0..header.len()).map(|i| i > 0).collect();
    out.push_str(&table(&header, &rows, &right));
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
         system, all threads); peak RSS: largest `VmHWM` (the program's own peak) over the rounds; faults/op: minor \
         page faults (`ru_minflt`) of the timed section per op, median; burst-*: RSS after \
         free / after idle = resident set right after freeing everything and after {} ms with \
         no allocator call, median; realistic workloads (json, text, btree, arena): an op is a \
         unit of work, not an allocator call, and every run's checksum must match mimalloc's; \
         † = some runs hit the time cap (ops/s still valid, fewer ops).\n",
        r.opts.idle_ms()
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
                "minor_faults_per_op": f(cell.faults_per_op()),
                "rss_after_free_kib": cell.burst_rss_kib().map_or(Value::Null, |b| f(b.0)),
                "rss_after_idle_kib": cell.burst_rss_kib().map_or(Value::Null, |b| f(b.1)),
                "checksums": cell.runs.iter().filter_map(|s| s.checksum).collect::<Vec<_>>(),
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
            "idle_ms": o.idle_ms(),
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
    let title = format!(
        "Throughput / mimalloc (median of {} rounds) — {} {}",
        r.opts.runs,
        r.host.rev_label(),
        r.host.date
    );
    let mut s = Svg::new(width, height, &title, left, 18.0);
    // Legend.
    let mut lx = left;
    for (ci, c) in r.opts.contenders.iter().enumerate() {
        lx = s.key(
            (lx, 30.0),
            (10.0, 10.0),
            PALETTE[ci % PALETTE.len()],
            c.name,
        );
        if lx > width - 100.0 {
            lx = left;
        }
    }
    // Grid: every 0.5x, the 1x line (mimalloc) black and dashed.
    let mut v = 0.0;
    while v <= ymax + 1e-9 {
        let one = (v - 1.0).abs() < 1e-9;
        let stroke = if one { "#000" } else { "#ddd" };
        s.grid_line(y(v), (left, width - 20.0), &format!("{v:.1}x"), stroke, one);
        v += 0.5;
    }
    // Bars.
    for wi in 0..nw {
        let gx = left + wi as f64 * group_w + gap / 2.0;
        let wname = r.opts.workloads[wi].name;
        for (ci, c) in r.opts.contenders.iter().enumerate() {
            let val = m[ci][wi];
            if !val.is_finite() {
                continue;
            }
            let x = gx + ci as f64 * bar;
            let y0 = y(val);
            let tip = format!("{} {wname}: {val:.2}x", c.name);
            s.rect(
                (x, y0),
                (bar - 1.0, top + plot_h - y0),
                PALETTE[ci % PALETTE.len()],
                Some(&tip),
            );
            if val > ymax {
                s.text(
                    x + bar / 2.0,
                    top - 3.0 - (ci % 2) as f64 * 9.0,
                    &format!("{val:.1}"),
                    r#" font-size="9" text-anchor="middle""#,
                );
            }
        }
        let (lx, ly) = (gx + nc as f64 * bar / 2.0, top + plot_h + 16.0);
        s.text(
            lx,
            ly,
            wname,
            &format!(r#" text-anchor="end" transform="rotate(-35 {lx:.1} {ly:.1})""#),
        );
    }
    s.line(
        (left, top + plot_h),
        (width - 20.0, top + plot_h),
        "#000",
        "",
    );
    s.finish()
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
