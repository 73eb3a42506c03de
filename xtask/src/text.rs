//! Numbers and tables as text, for every xtask report: one formatter per quantity
//! (throughput in millions, memory in MiB, ratios, per-op rates, grouped integers) and
//! the aligned markdown table. `bench`, `soak`, `ab` and `preset` all print through these.

/// How many decimals [`mops`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decimals {
    /// Three significant digits (four decimals below 0.1): tables of many contenders.
    Sig3,
    /// Always this many: figures compared with a criterion (`soak`, `ab`).
    Fixed(usize),
}

/// Ops per second as millions (no unit), `–` when not finite.
pub fn mops(x: f64, d: Decimals) -> String {
    let m = x / 1e6;
    if !m.is_finite() {
        return "–".into();
    }
    match d {
        Decimals::Fixed(n) => format!("{m:.n$}"),
        Decimals::Sig3 if m >= 100.0 => format!("{m:.0}"),
        Decimals::Sig3 if m >= 10.0 => format!("{m:.1}"),
        Decimals::Sig3 if m >= 0.1 => format!("{m:.2}"),
        Decimals::Sig3 => format!("{m:.4}"),
    }
}

/// KiB as MiB with two decimals and the unit.
pub fn mib(kib: f64) -> String {
    format!("{:.2} MiB", kib / 1024.0)
}

/// A ratio (`1.23x`), `–` when not finite.
pub fn ratio(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}x")
    } else {
        "–".into()
    }
}

/// A small per-op rate (`1.2e-7`; `0` for zero), `–` when not finite.
pub fn per_op(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.is_finite() {
        format!("{x:.1e}")
    } else {
        "–".into()
    }
}

/// An integer with thousands separators (`20,000,000`).
pub fn group_digits(n: u64) -> String {
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

/// A markdown table with aligned columns; `right[i]` right-aligns column `i`.
pub fn table(header: &[String], rows: &[Vec<String>], right: &[bool]) -> String {
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

/// Writes a report as `dir/base.md` and `dir/base.json` and says where on stderr (or,
/// prefixed with `cmd`, why it could not). Returns whether both were written.
pub fn write_report(
    dir: &std::path::Path,
    base: &str,
    md: &str,
    doc: &serde_json::Value,
    cmd: &str,
) -> bool {
    let written = std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(dir.join(format!("{base}.md")), md))
        .and_then(|_| {
            std::fs::write(
                dir.join(format!("{base}.json")),
                serde_json::to_string_pretty(doc).unwrap_or_default(),
            )
        });
    match written {
        Ok(()) => {
            eprintln!(
                "wrote {}",
                dir.join(format!("{base}.{{md,json}}")).display()
            );
            true
        }
        Err(e) => {
            eprintln!("{cmd}: writing results: {e}");
            false
        }
    }
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
        assert_eq!(mops(123_456_789.0, Decimals::Sig3), "123");
        assert_eq!(mops(12_345_678.0, Decimals::Sig3), "12.3");
        assert_eq!(mops(1_234_567.0, Decimals::Sig3), "1.23");
        assert_eq!(mops(12_345.0, Decimals::Sig3), "0.0123");
        assert_eq!(mops(60.19e6, Decimals::Fixed(2)), "60.19");
        assert_eq!(mops(f64::NAN, Decimals::Fixed(2)), "–");
        assert_eq!(mib(10240.0), "10.00 MiB");
        assert_eq!(per_op(1.25e-7), "1.2e-7");
        assert_eq!(per_op(0.0), "0");
        assert_eq!(group_digits(20_000_000), "20,000,000");
        assert_eq!(ratio(f64::NAN), "–");
    }
}
