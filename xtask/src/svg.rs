//! The one SVG renderer of the xtask reports: a page with a title, and the few shapes the
//! charts are drawn with (text, lines, rectangles, polylines, labelled grid lines, legend
//! keys), every text escaped. `bench` draws its bar chart of ratios with it, `soak` its
//! panels of RSS and throughput over time.

use std::fmt::Write as _;

/// Series colours, in order.
pub const PALETTE: &[&str] = &[
    "#d62728", "#ff7f0e", "#e377c2", "#1f77b4", "#17becf", "#2ca02c", "#9467bd", "#8c564b",
    "#7f7f7f", "#bcbd22",
];

/// `s` with the characters XML gives a meaning escaped.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG document being written.
pub struct Svg {
    s: String,
}

impl Svg {
    /// A white page of `width` x `height` (11 px sans-serif) with `title` in bold at
    /// (`x`, `y`).
    pub fn new(width: f64, height: f64, title: &str, x: f64, y: f64) -> Svg {
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let mut svg = Svg { s };
        svg.text(x, y, title, r#" font-size="14" font-weight="bold""#);
        svg
    }

    /// `body` at (`x`, `y`); `attrs`: more attributes, written as they are (each with a
    /// leading space), e.g. `text-anchor="end"`.
    pub fn text(&mut self, x: f64, y: f64, body: &str, attrs: &str) {
        let _ = writeln!(
            self.s,
            r#"<text x="{x:.1}" y="{y:.1}"{attrs}>{}</text>"#,
            esc(body)
        );
    }

    /// A line from (`x1`, `y1`) to (`x2`, `y2`); `attrs` as for [`Svg::text`].
    pub fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), stroke: &str, attrs: &str) {
        let _ = writeln!(
            self.s,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}"{attrs}/>"#
        );
    }

    /// A filled rectangle with its top left corner at (`x`, `y`), and a tooltip if given.
    pub fn rect(&mut self, (x, y): (f64, f64), (w, h): (f64, f64), fill: &str, tip: Option<&str>) {
        let _ = write!(
            self.s,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}""#
        );
        let _ = match tip {
            Some(t) => writeln!(self.s, "><title>{}</title></rect>", esc(t)),
            None => writeln!(self.s, "/>"),
        };
    }

    /// An open line through `points`.
    pub fn polyline(&mut self, points: impl IntoIterator<Item = (f64, f64)>, stroke: &str) {
        let pts: Vec<String> = points
            .into_iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.s,
            r#"<polyline fill="none" stroke="{stroke}" stroke-width="1.2" points="{}"/>"#,
            pts.join(" ")
        );
    }

    /// A horizontal grid line at `y` from `x1` to `x2`, labelled `label` left of `x1`;
    /// dashed if `dashed`.
    pub fn grid_line(
        &mut self,
        y: f64,
        (x1, x2): (f64, f64),
        label: &str,
        stroke: &str,
        dashed: bool,
    ) {
        let dash = if dashed {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        self.line((x1, y), (x2, y), stroke, dash);
        self.text(x1 - 5.0, y + 4.0, label, r#" text-anchor="end""#);
    }

    /// A legend key: a swatch of `size` in `colour` with its top left corner at (`x`,
    /// `y`), and `name` after it; returns where the next key may start.
    pub fn key(&mut self, (x, y): (f64, f64), (w, h): (f64, f64), colour: &str, name: &str) -> f64 {
        self.rect((x, y), (w, h), colour, None);
        self.text(x + w + 3.0, y + h / 2.0 + 4.0, name, "");
        x + w + 10.0 + name.len() as f64 * 6.5
    }

    /// The finished document.
    pub fn finish(mut self) -> String {
        self.s.push_str("</svg>\n");
        self.s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_with_escaped_text() {
        let mut s = Svg::new(100.0, 50.0, "a < b & c", 5.0, 20.0);
        s.grid_line(30.0, (10.0, 90.0), "1.0x", "#000", true);
        s.rect((1.0, 2.0), (3.0, 4.0), "#fff", Some("x>y"));
        s.polyline([(0.0, 0.0), (1.0, 1.0)], "#111");
        let x = s.key((10.0, 40.0), (10.0, 3.0), "#222", "k");
        assert!(x > 20.0);
        let t = s.finish();
        assert!(t.starts_with("<svg") && t.ends_with("</svg>\n"), "{t}");
        assert!(t.contains("a &lt; b &amp; c") && t.contains("<title>x&gt;y</title>"));
        assert!(
            t.contains(r#"stroke-dasharray="4 3""#) && t.contains(r#"points="0.0,0.0 1.0,1.0""#)
        );
        assert!(!t.contains("a < b"));
    }
}
