//! SVG charts of the suite's results, written by hand: plain `<line>`, `<rect>`,
//! `<polyline>` and `<text>` elements with integer coordinates, so the files need no font
//! or library to make, render in any browser, and are byte-identical from run to run.
//!
//! - [`latency`]: median claim-to-resume latency against frames claimed, log-log, one line
//!   per sweep and holdings (cooperative solid, partial and abort dashed).
//! - [`phases`]: for each point, a bar split into the phases' shares of the median total.

use std::fmt::Write;

use super::markdown::grouped;
use super::samples::PHASES;
use super::suite::Results;

const WIDTH: i64 = 1000;
const HEIGHT: i64 = 520;
const LEFT: i64 = 110;
const RIGHT: i64 = 290;
const TOP: i64 = 40;
const BOTTOM: i64 = 60;
const COLOURS: [&str; 12] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f", "#000000", "#aec7e8",
];

fn header(svg: &mut String, width: i64, height: i64, title: &str) {
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{}</text>",
        width / 2,
        escape(title)
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Decades `10^lo ..= 10^hi` covering `values` (at least one decade).
fn decades(values: impl Iterator<Item = u64>) -> (u32, u32) {
    let (mut lo, mut hi) = (u32::MAX, 0);
    for v in values.filter(|&v| v > 0) {
        lo = lo.min(v.ilog10());
        hi = hi.max(v.ilog10() + 1);
    }
    if lo == u32::MAX {
        return (0, 1);
    }
    (lo, hi.max(lo + 1))
}

/// Pixel of `value` on a log scale from `10^lo` at `from` to `10^hi` at `to`.
fn log_position(value: u64, (lo, hi): (u32, u32), from: i64, to: i64) -> i64 {
    let value = (value.max(1) as f64).log10();
    let share = (value - f64::from(lo)) / f64::from(hi - lo);
    from + ((to - from) as f64 * share).round() as i64
}

/// One line of the latency chart: label, whether cooperative (solid), (frames, median).
type Series = (String, bool, Vec<(u64, u64)>);

/// Log-log chart of median latency (instructions) against frames claimed.
pub fn latency(results: &Results) -> String {
    let series: Vec<Series> = results
        .configs
        .iter()
        .flat_map(|c| {
            let mode = c.mode.clone().unwrap_or_default();
            ["large", "small"].into_iter().filter_map(move |holdings| {
                let points: Vec<(u64, u64)> = c
                    .points
                    .iter()
                    .filter(|p| p.holdings == holdings)
                    .map(|p| (p.frames, p.total.instructions.median))
                    .collect();
                let name = c.config.rsplit('/').next().unwrap_or(&c.config);
                (!points.is_empty()).then(|| {
                    (
                        format!(
                            "{} {mode}, {holdings} holdings",
                            name.trim_end_matches(".toml")
                        ),
                        mode == "coop",
                        points,
                    )
                })
            })
        })
        .collect();
    let xs = decades(series.iter().flat_map(|s| s.2.iter().map(|p| p.0)));
    let ys = decades(series.iter().flat_map(|s| s.2.iter().map(|p| p.1)));
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    let mut svg = String::new();
    header(
        &mut svg,
        WIDTH,
        HEIGHT,
        "Revocation, claim to claimant resumed (median, instructions under -icount)",
    );
    for d in xs.0..=xs.1 {
        let x = log_position(10u64.pow(d), xs, x0, x1);
        let _ = writeln!(
            svg,
            "<line x1=\"{x}\" y1=\"{y0}\" x2=\"{x}\" y2=\"{y1}\" stroke=\"#ddd\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            y0 + 18,
            grouped(10u64.pow(d))
        );
    }
    for d in ys.0..=ys.1 {
        let y = log_position(10u64.pow(d), ys, y0, y1);
        let _ = writeln!(
            svg,
            "<line x1=\"{x0}\" y1=\"{y}\" x2=\"{x1}\" y2=\"{y}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            x0 - 6,
            y + 4,
            grouped(10u64.pow(d))
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">frames claimed</text>\
         <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">\
         instructions</text>",
        (x0 + x1) / 2,
        HEIGHT - 15,
        (y0 + y1) / 2,
        (y0 + y1) / 2
    );
    for (i, (label, solid, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let coords: Vec<String> = points
            .iter()
            .map(|&(x, y)| {
                format!(
                    "{},{}",
                    log_position(x, xs, x0, x1),
                    log_position(y, ys, y0, y1)
                )
            })
            .collect();
        let dash = if *solid {
            ""
        } else {
            " stroke-dasharray=\"6 4\""
        };
        let _ = writeln!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>",
            coords.join(" ")
        );
        for c in &coords {
            let (x, y) = c.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                svg,
                "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{colour}\"/>"
            );
        }
        let ly = TOP + 20 + 18 * i as i64;
        let _ = writeln!(
            svg,
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" \
             stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{}</text>",
            x1 + 10,
            x1 + 34,
            x1 + 40,
            ly + 4,
            escape(label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Stacked bars: each point's median phases as shares of their sum.
pub fn phases(results: &Results) -> String {
    let bars: Vec<(String, Vec<u64>)> = results
        .configs
        .iter()
        .flat_map(|c| {
            let name = c.config.rsplit('/').next().unwrap_or(&c.config);
            let name = name.trim_start_matches("bench-").trim_end_matches(".toml");
            c.points.iter().map(move |p| {
                (
                    format!("{name} {} {}", p.holdings, p.frames),
                    p.phases
                        .iter()
                        .map(|ph| ph.stats.instructions.median)
                        .collect(),
                )
            })
        })
        .collect();
    let row = 18;
    let height = TOP + 30 + row * bars.len().max(1) as i64 + BOTTOM;
    let (x0, x1) = (LEFT + 80, WIDTH - RIGHT);
    let mut svg = String::new();
    header(
        &mut svg,
        WIDTH,
        height,
        "Where a claim's time goes (share of the median phases)",
    );
    for (i, (label, values)) in bars.iter().enumerate() {
        let y = TOP + 20 + row * i as i64;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            x0 - 6,
            y + 12,
            escape(label)
        );
        let sum: u64 = values.iter().sum::<u64>().max(1);
        let mut x = x0;
        let mut done = 0;
        for (j, v) in values.iter().enumerate() {
            done += v;
            let next = x0 + ((x1 - x0) as u128 * u128::from(done) / u128::from(sum)) as i64;
            if next > x {
                let _ = writeln!(
                    svg,
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>",
                    next - x,
                    row - 4,
                    COLOURS[j % COLOURS.len()]
                );
            }
            x = next;
        }
    }
    for (j, (name, _)) in PHASES.iter().enumerate() {
        let ly = TOP + 20 + 18 * j as i64;
        let _ = writeln!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\">{name}</text>",
            x1 + 10,
            ly - 8,
            COLOURS[j % COLOURS.len()],
            x1 + 30,
            ly + 2
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades_cover_the_values() {
        assert_eq!(decades([1u64, 4096].into_iter()), (0, 4));
        assert_eq!(decades([2_000u64, 90_000].into_iter()), (3, 5));
        assert_eq!(decades(std::iter::empty()), (0, 1));
    }

    #[test]
    fn log_positions_are_monotonic_and_end_at_the_edges() {
        let d = (0, 4);
        assert_eq!(log_position(1, d, 100, 500), 100);
        assert_eq!(log_position(10_000, d, 100, 500), 500);
        assert!(log_position(16, d, 100, 500) < log_position(256, d, 100, 500));
    }
}
