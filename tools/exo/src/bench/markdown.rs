//! `results.md`: the suite's results as Markdown tables (docs/benchmarks.md shows them).

use std::fmt::Write;

use super::samples::PHASES;
use super::suite::Results;

/// `n` with thousands separators (`13,900,000`).
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Where a target's figure comes from.
enum Source {
    /// The median total of a revocation point: configuration, holdings, frames.
    Total(&'static str, &'static str, u64),
    /// The median total per frame of a revocation point.
    PerFrame(&'static str, &'static str, u64),
    /// The median of one phase of a revocation point, divided by its frames.
    PhasePerFrame(&'static str, &'static str, u64, &'static str),
    /// A `bench` metric in ticks, as instructions.
    Metric(&'static str),
}

/// The targets of issue 10: what, the figure when the issue was filed, the target, and
/// where the figure comes from.
const TARGETS: [(&str, &str, u64, Source); 7] = [
    (
        "cooperative revocation of 1 frame, end to end (borrower holding ~14,600 frames)",
        "~13.9 M",
        3_000,
        Source::Total("bench-revoke.toml", "large", 1),
    ),
    (
        "cooperative, per frame at 256 frames (end to end / 256)",
        "~10,700",
        300,
        Source::PerFrame("bench-revoke.toml", "large", 256),
    ),
    (
        "abort, per frame at 4,096 frames (deadline expiry to claimant resumed, the `resume` \
         phase / 4,096: repossession, scrub, clean and hand-over)",
        "not measured",
        600,
        Source::PhasePerFrame("bench-revoke-abort.toml", "large", 4096, "resume"),
    ),
    (
        "null hypercall round trip",
        "511",
        150,
        Source::Metric("null_hypercall_ticks"),
    ),
    (
        "yield round trip (two world switches)",
        "~2,000",
        600,
        Source::Metric("yield_round_trip_ticks"),
    ),
    (
        "protected control transfer round trip, 7 words each way",
        "~3,160",
        800,
        Source::Metric("ipc_round_trip_ticks"),
    ),
    (
        "virtual timer interrupt to the guest's handler (guest spinning)",
        "~770",
        300,
        Source::Metric("vtimer_to_handler_ticks"),
    ),
];

/// The figure of `source` in `results`, in instructions.
fn figure(results: &Results, source: &Source) -> Option<u64> {
    let point = |config: &str, holdings: &str, frames: u64| {
        results
            .configs
            .iter()
            .filter(|c| c.config.ends_with(&format!("/{config}")))
            .flat_map(|c| &c.points)
            .find(|p| p.holdings == holdings && p.frames == frames)
    };
    match *source {
        Source::Total(c, h, f) => point(c, h, f).map(|p| p.total.instructions.median),
        Source::PerFrame(c, h, f) => point(c, h, f).map(|p| p.per_frame.instructions.median),
        Source::PhasePerFrame(c, h, f, phase) => point(c, h, f).and_then(|p| {
            let stats = &p.phases.iter().find(|n| n.name == phase)?.stats;
            Some(stats.instructions.median / f)
        }),
        Source::Metric(name) => results
            .configs
            .iter()
            .flat_map(|c| &c.metrics)
            .find(|m| m.name == name)
            .and_then(|m| m.instructions),
    }
}

/// The table of issue 10's targets, each met or missed by how much.
fn targets(md: &mut String, results: &Results) {
    let _ = writeln!(
        md,
        "### Targets (issue 10; instructions, medians)\n\n\
         | path | when filed | now | target | |\n|---|---:|---:|---:|---|"
    );
    for (what, filed, target, source) in &TARGETS {
        let (now, verdict) = match figure(results, source) {
            Some(now) if now <= *target => (grouped(now), "met".to_owned()),
            Some(now) => (
                grouped(now),
                format!("missed: {:.1}x the target", now as f64 / *target as f64),
            ),
            None => ("-".to_owned(), "not measured in this run".to_owned()),
        };
        let _ = writeln!(
            md,
            "| {what} | {filed} | {now} | <= {} | {verdict} |",
            grouped(*target)
        );
    }
    md.push('\n');
}

/// The Markdown of `results`: the targets, the primitives' figures, then one table per
/// revocation sweep.
pub fn render(results: &Results) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Board `{}`, QEMU `{}`: counter {} Hz, {} instructions of virtual time per tick. \
         Figures are instructions (1 instruction = 1 ns of virtual time), not cycles on \
         hardware{}.\n",
        results.board,
        results.qemu_args.join(" "),
        results.counter_hz,
        results.instructions_per_tick,
        if results.quick {
            "; reduced sweep (`--quick`)"
        } else {
            ""
        }
    );
    targets(&mut md, results);
    primitives(&mut md, results);
    for config in results.configs.iter().filter(|c| !c.points.is_empty()) {
        let _ = writeln!(
            md,
            "### Revocation: `{}` ({} borrower{}, `{}`)\n",
            config.config,
            config.borrowers,
            if config.borrowers == 1 { "" } else { "s" },
            config.mode.as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            md,
            "End to end, claim to claimant resumed (instructions):\n\n\
             | holdings | held | frames | n | min | median | p99 | max | median per frame |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for p in &config.points {
            let t = p.total.instructions;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                p.holdings,
                grouped(p.held),
                grouped(p.frames),
                p.repeats,
                grouped(t.min),
                grouped(t.median),
                grouped(t.p99),
                grouped(t.max),
                grouped(p.per_frame.instructions.median)
            );
        }
        let _ = write!(
            md,
            "\nMedian of each phase (instructions):\n\n| holdings | frames |"
        );
        for (name, _) in PHASES {
            let _ = write!(md, " {name} |");
        }
        let _ = write!(md, "\n|---|---:|");
        for _ in PHASES {
            md.push_str("---:|");
        }
        md.push('\n');
        for p in &config.points {
            let _ = write!(md, "| {} | {} |", p.holdings, grouped(p.frames));
            for phase in &p.phases {
                let _ = write!(md, " {} |", grouped(phase.stats.instructions.median));
            }
            md.push('\n');
        }
        md.push('\n');
    }
    md
}

/// The table of `bench` figures.
fn primitives(md: &mut String, results: &Results) {
    let _ = writeln!(
        md,
        "### Primitives (means over each guest's rounds)\n\n\
         | configuration | partition | metric | value | instructions |\n|---|---|---|---:|---:|"
    );
    for config in &results.configs {
        for m in &config.metrics {
            let _ = writeln!(
                md,
                "| `{}` | {} | `{}` | {} | {} |",
                config.config,
                m.partition,
                m.name,
                grouped(m.value),
                m.instructions.map_or("".into(), grouped)
            );
        }
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(13_900_000), "13,900,000");
    }
}

/// The line before the generated results in docs/benchmarks.md.
pub const BEGIN: &str = "<!-- results: generated by `scripts/bench --docs` (exo bench --docs) -->";
/// The line after them.
pub const END: &str = "<!-- end results -->";

/// `doc` with the text between [`BEGIN`] and [`END`] replaced by `results`.
pub fn replace_results(doc: &str, results: &str) -> anyhow::Result<String> {
    let (Some(begin), Some(end)) = (doc.find(BEGIN), doc.find(END)) else {
        anyhow::bail!("the results markers are missing");
    };
    if end < begin {
        anyhow::bail!("the results markers are out of order");
    }
    Ok(format!(
        "{}{BEGIN}\n{results}{}",
        &doc[..begin],
        &doc[end..]
    ))
}

#[cfg(test)]
mod replace_tests {
    use super::*;

    #[test]
    fn replaces_only_between_the_markers() {
        let doc = format!("intro\n{BEGIN}\nold\n{END}\noutro\n");
        let new = replace_results(&doc, "new\n").unwrap();
        assert_eq!(new, format!("intro\n{BEGIN}\nnew\n{END}\noutro\n"));
        assert!(replace_results("nothing", "x").is_err());
    }
}
