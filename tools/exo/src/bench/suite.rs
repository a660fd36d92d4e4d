//! The benchmark suite (`exo bench --out DIR`, `scripts/bench`): every
//! `guests/configs/bench-*.toml` booted under QEMU `-icount`, the results written as
//! `results.json` (schema in docs/benchmarks.md), `results.md` and SVG charts.
//!
//! Nothing in the output depends on when or where it ran: configurations are named
//! relative to the workspace, maps are sorted, and there are no timestamps, so two runs of
//! the same code give byte-identical files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use super::samples::{self, Point};
use super::{QEMU_ARGS, Report, chart};
use crate::RunOptions;

/// Version of the `results.json` schema.
pub const SCHEMA: u32 = 1;
/// Instructions of virtual time per counter tick when the kernel does not say (62.5 MHz).
const DEFAULT_INSTRUCTIONS_PER_TICK: u64 = 16;

/// What the suite measured.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    /// [`SCHEMA`].
    pub schema: u32,
    /// Board every configuration ran on.
    pub board: String,
    /// QEMU arguments added for deterministic time.
    pub qemu_args: Vec<String>,
    /// Counter frequency the kernel reported, in Hz.
    pub counter_hz: u64,
    /// Instructions of virtual time per counter tick (1 ns per instruction).
    pub instructions_per_tick: u64,
    /// Whether this was the reduced sweep (`--quick`).
    pub quick: bool,
    /// One entry per configuration, in file-name order.
    pub configs: Vec<ConfigResults>,
}

/// What one configuration measured.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigResults {
    /// Path relative to the workspace.
    pub config: String,
    /// Boots made; all gave the same numbers.
    pub runs: u32,
    /// How borrowers answered (`coop`, `partial`, `refuse`), if it is a revocation sweep.
    pub mode: Option<String>,
    /// Borrowers in the sweep.
    pub borrowers: usize,
    /// `bench <name>=<value>` figures (means, as the guests compute them).
    pub metrics: Vec<MetricResult>,
    /// Revocation sweep points.
    pub points: Vec<Point>,
}

/// One `bench` figure.
#[derive(Clone, Debug, Serialize)]
pub struct MetricResult {
    /// Partition that printed it.
    pub partition: String,
    /// Metric name (`_ticks` means counter ticks).
    pub name: String,
    /// Value.
    pub value: u64,
    /// For `_ticks` metrics, the value in instructions of virtual time.
    pub instructions: Option<u64>,
}

/// How to run the suite.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// The workspace root.
    pub root: PathBuf,
    /// Where to write the results.
    pub out: PathBuf,
    /// Reduced sweep.
    pub quick: bool,
    /// Boots per configuration.
    pub runs: u32,
    /// Per boot.
    pub timeout: Duration,
    /// Board override.
    pub board: Option<String>,
}

/// Every `bench-*.toml` under `guests/configs`, sorted.
pub fn configs(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("guests/configs");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("bench-") && n.ends_with(".toml"))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// The configuration to boot for `config`: itself, or with `--quick` a copy under
/// `build/bench-quick/` whose partition `driver` is named `driver-quick` (the revocation
/// driver then repeats each point fewer times).
pub fn config_to_boot(root: &Path, config: &Path, quick: bool) -> anyhow::Result<PathBuf> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    let marker = "name = \"driver\"";
    if !quick || !text.contains(marker) {
        return Ok(config.to_path_buf());
    }
    let dir = root.join("build/bench-quick");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let copy = dir.join(config.file_name().unwrap_or_default());
    std::fs::write(&copy, text.replace(marker, "name = \"driver-quick\""))
        .with_context(|| format!("writing {}", copy.display()))?;
    Ok(copy)
}

/// Runs the suite and writes `results.json`, `results.md`, `latency.svg` and `phases.svg`
/// to `options.out`. Fails, after writing what was measured, if a configuration was not
/// sound.
pub fn run(options: &SuiteOptions) -> anyhow::Result<Results> {
    let configs = configs(&options.root)?;
    let mut reports = Vec::new();
    for (index, config) in configs.iter().enumerate() {
        let name = relative(&options.root, config);
        let boot = config_to_boot(&options.root, config, options.quick)?;
        eprintln!(
            "bench: [{}/{}] {name}: {} boot(s){}",
            index + 1,
            configs.len(),
            options.runs,
            if &boot != config { ", quick sweep" } else { "" }
        );
        let run_options = RunOptions {
            timeout: options.timeout,
            board: options.board.clone(),
            echo: false,
            extra_qemu_args: QEMU_ARGS.iter().map(|a| a.to_string()).collect(),
            ..RunOptions::default()
        };
        let report = super::run(&boot, &run_options, options.runs)
            .with_context(|| format!("benchmark {name}"))?;
        reports.push((name, report));
    }
    let board = options.board.clone().unwrap_or_else(|| "qemu-virt".into());
    let results = collect(&board, options.quick, &reports);
    write(&options.out, &results)?;
    let unsound: Vec<String> = reports
        .iter()
        .filter(|(_, r)| !r.is_sound())
        .map(|(name, r)| format!("{name}:\n{r}"))
        .collect();
    if !unsound.is_empty() {
        bail!("benchmarks not sound:\n{}", unsound.join("\n"));
    }
    Ok(results)
}

/// `path` relative to `root`, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let path = path.strip_prefix(root).unwrap_or(path);
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The results of `reports` (named configurations).
pub fn collect(board: &str, quick: bool, reports: &[(String, Report)]) -> Results {
    let counter_hz = reports
        .iter()
        .find_map(|(_, r)| r.frequency)
        .unwrap_or(62_500_000);
    let instructions_per_tick = if counter_hz > 0 && 1_000_000_000 % counter_hz == 0 {
        1_000_000_000 / counter_hz
    } else {
        DEFAULT_INSTRUCTIONS_PER_TICK
    };
    let configs = reports
        .iter()
        .map(|(name, report)| config_results(name, report, instructions_per_tick))
        .collect();
    Results {
        schema: SCHEMA,
        board: board.to_owned(),
        qemu_args: QEMU_ARGS.iter().map(|a| a.to_string()).collect(),
        counter_hz,
        instructions_per_tick,
        quick,
        configs,
    }
}

fn config_results(name: &str, report: &Report, instructions_per_tick: u64) -> ConfigResults {
    let claims = samples::claims(&report.samples);
    let borrowers: Vec<&String> = report
        .partitions
        .iter()
        .filter(|p| p.starts_with("borrower-"))
        .collect();
    let mode = borrowers
        .first()
        .and_then(|p| p.rsplit('-').next())
        .map(str::to_owned);
    ConfigResults {
        config: name.to_owned(),
        runs: report.runs,
        mode,
        borrowers: borrowers.len(),
        metrics: report
            .metrics
            .iter()
            .map(|m| MetricResult {
                partition: m.partition.clone(),
                name: m.name.clone(),
                value: m.value,
                instructions: m
                    .name
                    .ends_with("_ticks")
                    .then_some(m.value * instructions_per_tick),
            })
            .collect(),
        points: samples::points(&claims, instructions_per_tick),
    }
}

/// Writes `results.json`, `results.md` and the charts to `out`.
pub fn write(out: &Path, results: &Results) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let files = [
        ("results.json", to_json(results)?),
        ("results.md", super::markdown::render(results)),
        ("latency.svg", chart::latency(results)),
        ("phases.svg", chart::phases(results)),
    ];
    for (file, text) in files {
        let path = out.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Writes `results` into docs/benchmarks.md (between its markers) and the charts to
/// `docs/bench/`.
pub fn update_docs(root: &Path, results: &Results) -> anyhow::Result<()> {
    let path = root.join("docs/benchmarks.md");
    let doc =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let updated = super::markdown::replace_results(&doc, &super::markdown::render(results))
        .with_context(|| format!("in {}", path.display()))?;
    std::fs::write(&path, updated).with_context(|| format!("writing {}", path.display()))?;
    let charts = root.join("docs/bench");
    std::fs::create_dir_all(&charts)?;
    std::fs::write(charts.join("latency.svg"), chart::latency(results))?;
    std::fs::write(charts.join("phases.svg"), chart::phases(results))?;
    Ok(())
}

/// `results` as pretty JSON with a final newline (fields in declaration order, so stable).
pub fn to_json(results: &Results) -> anyhow::Result<String> {
    let mut json = serde_json::to_string_pretty(results)?;
    json.push('\n');
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Metric;

    fn report(lines: &str) -> Report {
        let lines: Vec<String> = lines.lines().map(str::to_owned).collect();
        Report {
            config: "/somewhere/guests/configs/bench-revoke.toml".into(),
            frequency: Some(62_500_000),
            revocations: Vec::new(),
            metrics: vec![Metric {
                partition: "latency".into(),
                name: "null_hypercall_ticks".into(),
                value: 32,
            }],
            samples: crate::bench::samples::parse(&lines),
            partitions: vec!["driver".into(), "borrower-coop".into()],
            runs: 2,
            deterministic: true,
            problems: Vec::new(),
        }
    }

    const LINES: &str = "[driver] sample claim holdings=large frames=16 rep=0 start=100 end=1000\n\
        [driver] sample claim holdings=large frames=16 rep=1 start=2000 end=2800\n\
        [driver] sample claim holdings=small frames=1 rep=0 start=3000 end=3100\n\
        [borrower-coop] sample answer seq=1 issued=110 deadline=9000 entered=300 chosen=500 \
        released=800 acknowledged=820 owed=16 frames=16 held=70";

    fn results() -> Results {
        collect(
            "qemu-virt",
            true,
            &[("guests/configs/bench-revoke.toml".into(), report(LINES))],
        )
    }

    #[test]
    fn json_is_the_same_every_time_and_names_no_absolute_path() {
        let first = to_json(&results()).unwrap();
        assert_eq!(first, to_json(&results()).unwrap());
        assert!(!first.contains("/somewhere"), "{first}");
        let value: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(value["instructions_per_tick"], 16);
        let config = &value["configs"][0];
        assert_eq!(config["mode"], "coop");
        assert_eq!(config["borrowers"], 1);
        assert_eq!(config["metrics"][0]["instructions"], 512);
        let point = &config["points"][0];
        assert_eq!(point["frames"], 16);
        assert_eq!(point["repeats"], 2);
        assert_eq!(point["total"]["ticks"]["median"], 800);
        assert_eq!(point["total"]["instructions"]["max"], 900 * 16);
        assert_eq!(point["phases"][1]["name"], "to_handler");
        assert_eq!(point["phases"][1]["ticks"]["max"], 190);
    }

    #[test]
    fn writes_every_file() {
        let out = std::env::temp_dir().join(format!("exo-bench-test-{}", std::process::id()));
        write(&out, &results()).unwrap();
        for file in ["results.json", "results.md", "latency.svg", "phases.svg"] {
            let text = std::fs::read_to_string(out.join(file)).unwrap();
            assert!(!text.is_empty(), "{file} is empty");
        }
        let md = std::fs::read_to_string(out.join("results.md")).unwrap();
        assert!(
            md.contains("| large | 0 | 16 | 2 | 12,800 | 12,800 | 14,400 | 14,400 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| null hypercall round trip | 511 | 512 | <= 150 | missed: 3.4x the target |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| ~10,700 | - | <= 300 | not measured in this run |"),
            "{md}"
        );
        let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
        assert!(
            svg.starts_with("<svg ") && svg.contains("<polyline"),
            "{svg}"
        );
        let svg = std::fs::read_to_string(out.join("phases.svg")).unwrap();
        assert_eq!(svg.matches("<text").count(), 1 + 2 + 6, "{svg}");
        std::fs::remove_dir_all(out).unwrap();
    }

    #[test]
    fn quick_renames_only_the_driver() {
        let dir = std::env::temp_dir().join(format!("exo-bench-quick-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("bench-x.toml");
        std::fs::write(
            &config,
            "[[partition]]\nname = \"driver\"\nprogram = \"revdriver\"\n",
        )
        .unwrap();
        assert_eq!(config_to_boot(&dir, &config, false).unwrap(), config);
        let quick = config_to_boot(&dir, &config, true).unwrap();
        assert_eq!(quick, dir.join("build/bench-quick/bench-x.toml"));
        let text = std::fs::read_to_string(&quick).unwrap();
        assert!(
            text.contains("name = \"driver-quick\"\nprogram = \"revdriver\""),
            "{text}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
