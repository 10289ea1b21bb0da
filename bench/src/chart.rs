//! W9's chart: cost against input size on log-log axes, one line per engine, written as a
//! self-contained SVG (no fonts or plotting crates to build: a few lines and labels). On such
//! axes linear growth is a straight line of slope 1, and a knee is visible as a bend.

use std::fmt::Write;

/// One engine's line: (size, seconds) points.
pub struct Series {
    pub name: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// One chart of the figure.
pub struct Panel {
    pub title: String,
    pub x_label: &'static str,
    /// Formats an x tick (a power of ten).
    pub x_tick: fn(f64) -> String,
    pub series: Vec<Series>,
}

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLORS: [&str; 3] = ["#1f77b4", "#ff7f0e", "#2ca02c"];

/// The panels side by side in one SVG document.
pub fn svg(panels: &[Panel]) -> String {
    let mut out = String::new();
    let total_width = WIDTH * panels.len() as f64;
    writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{HEIGHT}" viewBox="0 0 {total_width} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    )
    .unwrap();
    writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#).unwrap();
    for (i, panel) in panels.iter().enumerate() {
        draw_panel(&mut out, panel, WIDTH * i as f64);
    }
    out.push_str("</svg>\n");
    out
}

/// Powers of ten that enclose `values`, as exponents.
fn decades(values: impl Iterator<Item = f64>) -> (i32, i32) {
    let (lo, hi) = values.filter(|v| *v > 0.0).fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0, 1);
    }
    let (lo, hi) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (lo, hi.max(lo + 1))
}

fn draw_panel(out: &mut String, panel: &Panel, x0: f64) {
    let points = || panel.series.iter().flat_map(|s| s.points.iter().copied());
    let (x_lo, x_hi) = decades(points().map(|p| p.0));
    let (y_lo, y_hi) = decades(points().map(|p| p.1));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |v: f64| x0 + LEFT + (v.log10() - x_lo as f64) / (x_hi - x_lo) as f64 * plot_w;
    let y = |v: f64| TOP + plot_h - (v.log10() - y_lo as f64) / (y_hi - y_lo) as f64 * plot_h;

    writeln!(out, r#"<text x="{}" y="22" text-anchor="middle" font-size="13">{}</text>"#, x0 + LEFT + plot_w / 2.0, escape(&panel.title))
        .unwrap();
    for e in x_lo..=x_hi {
        let v = 10f64.powi(e);
        let px = x(v);
        writeln!(out, r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/>"##, TOP + plot_h).unwrap();
        writeln!(out, r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, TOP + plot_h + 16.0, (panel.x_tick)(v)).unwrap();
    }
    for e in y_lo..=y_hi {
        let v = 10f64.powi(e);
        let py = y(v);
        writeln!(out, r##"<line x1="{:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/>"##, x0 + LEFT, x0 + LEFT + plot_w).unwrap();
        writeln!(out, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, x0 + LEFT - 6.0, py + 4.0, seconds(v)).unwrap();
    }
    writeln!(out, r#"<rect x="{:.1}" y="{TOP}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="black"/>"#, x0 + LEFT).unwrap();
    writeln!(out, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, x0 + LEFT + plot_w / 2.0, HEIGHT - 22.0, panel.x_label)
        .unwrap();
    writeln!(
        out,
        r#"<text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle">time per call (log)</text>"#,
        x0 + 16.0,
        TOP + plot_h / 2.0
    )
    .unwrap();
    for (i, series) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = series.points.iter().map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py))).collect();
        writeln!(out, r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#, path.join(" ")).unwrap();
        for &(px, py) in &series.points {
            writeln!(out, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#, x(px), y(py)).unwrap();
        }
        let ly = TOP + 14.0 + 16.0 * i as f64;
        let lx = x0 + LEFT + 10.0;
        writeln!(out, r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/>"#, lx + 18.0).unwrap();
        writeln!(out, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, lx + 24.0, ly + 4.0, escape(series.name)).unwrap();
    }
}

/// A duration in seconds as the tick label of its power of ten.
fn seconds(v: f64) -> String {
    match v {
        v if v >= 1.0 => format!("{v} s"),
        v if v >= 1e-3 => format!("{} ms", v * 1e3),
        v if v >= 1e-6 => format!("{} µs", (v * 1e6).round()),
        v => format!("{} ns", (v * 1e9).round()),
    }
}

/// Bytes as the tick label of their power of ten.
pub fn bytes(v: f64) -> String {
    si(v, "B")
}

/// A count as the tick label of its power of ten.
pub fn count(v: f64) -> String {
    si(v, "")
}

fn si(v: f64, unit: &str) -> String {
    let (scaled, prefix) = match v {
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    format!("{} {prefix}{unit}", scaled.round()).trim().to_owned()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_series_on_log_axes() {
        let panel = Panel {
            title: "t".into(),
            x_label: "size",
            x_tick: bytes,
            series: vec![
                Series { name: "a", points: vec![(1e3, 1e-5), (1e6, 1e-2)] },
                Series { name: "b", points: vec![(1e3, 2e-5), (1e6, 3e-2)] },
            ],
        };
        let svg = svg(&[panel]);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains(">1 kB<") && svg.contains(">1 MB<") && svg.contains(">10 µs<"));
        // The smallest point sits on the left edge of the plot, the largest on the right.
        assert!(svg.contains(&format!(r#"cx="{:.1}""#, LEFT)));
        assert!(svg.contains(&format!(r#"cx="{:.1}""#, WIDTH - RIGHT)));
    }
}
