//! The plot: two panels of plain SVG, drawn from the report.

use crate::report::{Report, ThroughputRow};
use std::fmt::Write as _;

impl Report {
    /// Two panels, drawn as plain SVG: items/s vs segments (client and bare, per limit),
    /// and client TTFB vs segments (per limit), with the buffered TTFB on 100k as a line.
    pub fn plot(&self) -> String {
        let mut series_a: Vec<Series<'_>> = Vec::new();
        let mut series_b: Vec<Series<'_>> = Vec::new();
        for (limit, colors) in [
            (100u32, ("#1f77b4", "#9ecae1", "#2ca02c")),
            (1000, ("#d62728", "#fcae91", "#ff7f0e")),
        ] {
            let rows: Vec<&ThroughputRow> = self
                .throughput
                .iter()
                .filter(|r| r.limit == limit)
                .collect();
            let pts = |f: &dyn Fn(&ThroughputRow) -> f64| {
                rows.iter().map(|r| (f64::from(r.segments), f(r))).collect()
            };
            series_a.push((
                format!("client, limit {limit}"),
                colors.0,
                pts(&|r| r.client_items_per_s.median),
            ));
            series_a.push((
                format!("client, capacity NONE, limit {limit}"),
                colors.2,
                pts(&|r| r.client_no_capacity_items_per_s.median),
            ));
            series_a.push((
                format!("bare SDK, limit {limit}"),
                colors.1,
                pts(&|r| r.bare_items_per_s.median),
            ));
            series_b.push((
                format!("streamed TTFB, limit {limit}"),
                colors.0,
                pts(&|r| r.client_ttfb_ms.median),
            ));
        }
        if let Some(buffered) = self
            .ttfb
            .iter()
            .filter(|r| r.mode == "buffered" && r.items == 100_000)
            .map(|r| r.ttfb_ms.median)
            .reduce(f64::min)
        {
            series_b.push((
                "buffered TTFB (100k)".into(),
                "#555555",
                vec![(1.0, buffered), (16.0, buffered)],
            ));
        }
        let mut svg = String::from(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="500" font-family="sans-serif" font-size="12"><rect width="1000" height="500" fill="white"/>"#,
        );
        panel(
            &mut svg,
            0.0,
            "Throughput on 100k items (items/s)",
            &series_a,
            false,
        );
        panel(
            &mut svg,
            500.0,
            "Time to first byte on 100k items (ms, log scale)",
            &series_b,
            true,
        );
        svg.push_str("</svg>\n");
        svg
    }
}

/// A named line: label, colour, points.
type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

/// One line chart in a 500x470 box at `x0`; x is segments on a log2 axis (1..16).
fn panel(svg: &mut String, x0: f64, title: &str, series: &[Series<'_>], log_y: bool) {
    let (left, right, top, bottom) = (x0 + 70.0, x0 + 480.0, 40.0, 330.0);
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .filter(|y| *y > 0.0)
        .collect();
    let max = ys.iter().copied().fold(1.0, f64::max);
    let min = ys.iter().copied().fold(max, f64::min);
    let (lo, hi) = if log_y {
        (
            min.log10().floor(),
            max.log10().ceil().max(min.log10().floor() + 1.0),
        )
    } else {
        (0.0, max * 1.1)
    };
    let fy = |y: f64| {
        let v = if log_y { y.max(1e-9).log10() } else { y };
        bottom - (v - lo) / (hi - lo) * (bottom - top)
    };
    let fx = |x: f64| left + x.log2() / 4.0 * (right - left);
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" font-size="14">{title}</text>"#,
        left
    );
    let _ = write!(
        svg,
        r#"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="black"/>"#
    );
    for s in [1.0, 2.0, 4.0, 8.0, 16.0] {
        let x = fx(s);
        let _ = write!(
            svg,
            r##"<line x1="{x}" y1="{bottom}" x2="{x}" y2="{}" stroke="#000"/><text x="{x}" y="{}" text-anchor="middle">{s}</text>"##,
            bottom + 5.0,
            bottom + 18.0
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">segments</text>"#,
        (left + right) / 2.0,
        bottom + 34.0
    );
    let steps = if log_y {
        (hi - lo).round().max(1.0) as i32
    } else {
        4
    };
    for i in 0..=steps {
        let v = lo + (hi - lo) * f64::from(i) / f64::from(steps);
        let value = if log_y { 10f64.powf(v) } else { v };
        let y = fy(value);
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            left - 6.0,
            y + 4.0,
            short(value)
        );
    }
    for (i, (name, color, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", fx(*x), fy(*y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for (x, y) in points {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                fx(*x),
                fy(*y)
            );
        }
        let ly = bottom + 52.0 + 14.0 * i as f64;
        let _ = write!(
            svg,
            r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="3"/><text x="{}" y="{ly}">{name}</text>"#,
            ly - 4.0,
            left + 20.0,
            ly - 4.0,
            left + 26.0
        );
    }
}

fn short(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
