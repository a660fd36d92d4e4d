//! What README.md shows must be what the code does: the demo output of `scripts/run` is
//! checked against a real boot of the default system, and the table of benchmark numbers
//! against a fresh measurement of every benchmark on every board (`exo bench-table`
//! rewrites it).

use std::time::Duration;

use exo_system_tests::{boot, workspace_root};
use exo_tool::bench_table;

fn readme() -> String {
    std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md is readable")
}

/// The first fenced block after `anchor`, as lines.
fn block_after(text: &str, anchor: &str) -> Vec<String> {
    let start = text
        .find(anchor)
        .unwrap_or_else(|| panic!("README.md no longer says `{anchor}`"));
    let rest = &text[start..];
    let open = rest.find("```\n").expect("a fenced block follows") + 4;
    let close = rest[open..].find("```").expect("the block is closed") + open;
    rest[open..close].lines().map(str::to_owned).collect()
}

/// Who printed a console line: the partition of a `[name] ...` line, else the kernel.
fn source(line: &str) -> &str {
    line.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .map_or("kernel", |(name, _)| name)
}

/// The lines of README's `scripts/run` demo (its `...` elisions left out) are printed by
/// the default system, each partition's and the kernel's in their order (how the two
/// partitions' lines interleave depends on host timing outside `-icount`).
#[test]
fn readme_demo_output_is_what_the_default_system_prints() {
    let shown = block_after(
        &readme(),
        "`scripts/run` boots `guests/configs/default.toml`",
    );
    assert!(shown.len() > 5, "the demo block is gone: {shown:?}");
    let booted = boot(&workspace_root().join("guests/configs/default.toml"));
    booted.assert_success();
    let printed: Vec<&str> = booted
        .outcome
        .lines
        .iter()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    // Per source, how far its printed lines have been matched.
    let mut matched: std::collections::HashMap<String, usize> = Default::default();
    for line in shown.iter().filter(|l| l.as_str() != "...") {
        let from = matched.entry(source(line).to_owned()).or_default();
        let next = printed
            .iter()
            .enumerate()
            .skip(*from)
            .find(|(_, p)| source(p) == source(line) && *p == line);
        match next {
            Some((index, _)) => *from = index + 1,
            None => booted.fail(&format!(
                "README.md's demo shows `{line}`, which the default system does not print \
                 (in this order); update the demo block in README.md from `scripts/run`'s \
                 output"
            )),
        }
    }
}

/// README's table of numbers is what the benchmarks measure today, on every board.
#[test]
fn readme_numbers_are_measured() {
    let readme = readme();
    let written = bench_table::current(&readme).unwrap_or_else(|e| panic!("{e:#}"));
    let reports = {
        let _guard = exo_system_tests::boot_lock();
        bench_table::measure(
            &workspace_root().join("guests/configs"),
            1,
            Duration::from_secs(300),
        )
        .unwrap_or_else(|e| panic!("{e:#}"))
    };
    let measured = bench_table::render(&reports);
    assert!(
        written == measured,
        "README.md's numbers are stale. Measured now:\n\n{measured}\nREADME.md has:\n\n\
         {written}\nRun `target/release/exo bench-table` to rewrite them (it boots every \
         benchmark twice on every board and checks they agree)."
    );
}
