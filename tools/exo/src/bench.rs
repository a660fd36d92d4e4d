//! `exo bench`: revocation latency, and whatever guests measure, under QEMU `-icount`.
//!
//! With `-icount shift=0,sleep=off` QEMU advances virtual time by one nanosecond per guest
//! instruction and never by host time, so the system counter the kernel reads, and with it
//! every latency the kernel logs, is a deterministic function of the code. The benchmark boots
//! the configuration several times and refuses to report numbers that differ between runs.
//!
//! Two sources of numbers: the kernel's `exo: revocation ...` lines, and lines a partition
//! prints as `bench <metric>=<integer> ...` (for example
//! `[latency] bench irq_raise_ticks=812 samples=1000`); a metric whose name ends in `_ticks`
//! is also shown in microseconds of virtual time.

use std::fmt;
use std::path::Path;

use crate::{Revocation, RevocationOutcome, RunOptions};

pub mod chart;
pub mod markdown;
pub mod samples;
pub mod stats;
pub mod suite;

pub use samples::Sample;

/// QEMU arguments for deterministic virtual time.
pub const QEMU_ARGS: [&str; 2] = ["-icount", "shift=0,sleep=off"];

/// What a benchmark measured.
#[derive(Debug)]
pub struct Report {
    /// The configuration.
    pub config: String,
    /// Counter frequency the kernel reported, in Hz.
    pub frequency: Option<u64>,
    /// Revocations of the first run.
    pub revocations: Vec<Revocation>,
    /// Metrics partitions reported in the first run.
    pub metrics: Vec<Metric>,
    /// Sample lines partitions printed in the first run (see [`samples`]).
    pub samples: Vec<Sample>,
    /// The configured partitions.
    pub partitions: Vec<String>,
    /// Runs made.
    pub runs: u32,
    /// Whether every run logged exactly the same revocations.
    pub deterministic: bool,
    /// Problems of any run (failed partitions, timeouts).
    pub problems: Vec<String>,
}

/// One number a partition reported on a `bench` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    /// The partition that printed it.
    pub partition: String,
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: u64,
}

/// Reads `[partition] bench key=value ...` lines; values that are not integers are skipped.
pub fn metrics(lines: &[String]) -> Vec<Metric> {
    let mut found = Vec::new();
    for line in lines {
        let line = line.trim_end_matches('\r');
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let Some((partition, text)) = rest.split_once("] bench ") else {
            continue;
        };
        for field in text.split_whitespace() {
            if let Some((name, value)) = field.split_once('=')
                && let Ok(value) = value.parse()
            {
                found.push(Metric {
                    partition: partition.to_owned(),
                    name: name.to_owned(),
                    value,
                });
            }
        }
    }
    found
}

impl Report {
    /// Numbers worth reporting: every run succeeded, measured something and agreed.
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
            && (!self.revocations.is_empty()
                || !self.metrics.is_empty()
                || !self.samples.is_empty())
            && self.deterministic
    }

    fn micros(&self, ticks: u64) -> Option<f64> {
        self.frequency.map(|f| ticks as f64 * 1e6 / f as f64)
    }
}

/// Reads `exo: counter frequency <n> Hz` from the console.
fn frequency(lines: &[String]) -> Option<u64> {
    lines.iter().find_map(|line| {
        line.trim_end_matches('\r')
            .strip_prefix("exo: counter frequency ")?
            .strip_suffix(" Hz")?
            .parse()
            .ok()
    })
}

/// Boots `config` `runs` times with `options` and compares the revocations.
pub fn run(config: &Path, options: &RunOptions, runs: u32) -> anyhow::Result<Report> {
    let mut report = Report {
        config: config.display().to_string(),
        frequency: None,
        revocations: Vec::new(),
        metrics: Vec::new(),
        samples: Vec::new(),
        partitions: Vec::new(),
        runs: runs.max(1),
        deterministic: true,
        problems: Vec::new(),
    };
    for run in 0..report.runs {
        let outcome = crate::run_system(config, options)?;
        report.problems.extend(problems_of_run(run, &outcome));
        let revocations = outcome.revocations();
        let measured = metrics(&outcome.lines);
        let sampled = samples::parse(&outcome.lines);
        if run == 0 {
            report.frequency = frequency(&outcome.lines);
            report.revocations = revocations;
            report.metrics = measured;
            report.samples = sampled;
            report.partitions = outcome.partitions.clone();
        } else if revocations != report.revocations
            || measured != report.metrics
            || sampled != report.samples
        {
            report.deterministic = false;
        }
    }
    Ok(report)
}

/// The problems of run number `run` (from 0), each prefixed `run <n>: `; QEMU's own errors
/// are among them when it failed.
fn problems_of_run(run: u32, outcome: &crate::RunOutcome) -> Vec<String> {
    outcome
        .problems()
        .into_iter()
        .map(|p| format!("run {}: {p}", run + 1))
        .collect()
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "benchmark: {} under QEMU {}",
            self.config,
            QEMU_ARGS.join(" ")
        )?;
        match self.frequency {
            Some(hz) => writeln!(f, "counter: {hz} Hz (virtual time: 1 ns per instruction)")?,
            None => writeln!(f, "counter: frequency not reported")?,
        }
        if !self.metrics.is_empty() {
            writeln!(
                f,
                "{:<12} {:<32} {:>12} {:>10}",
                "partition", "metric", "value", "µs"
            )?;
            for m in &self.metrics {
                let micros = if m.name.ends_with("_ticks") {
                    self.micros(m.value)
                        .map_or("-".into(), |us| format!("{us:.2}"))
                } else {
                    String::new()
                };
                writeln!(
                    f,
                    "{:<12} {:<32} {:>12} {:>10}",
                    m.partition, m.name, m.value, micros
                )?;
            }
        }
        if !self.revocations.is_empty() {
            writeln!(
                f,
                "{:<12} {:>4} {:>7} {:>9} {:>12} {:>10} {:>10}  outcome",
                "partition", "seq", "asked", "released", "repossessed", "ticks", "µs"
            )?;
        }
        for r in &self.revocations {
            let micros = self
                .micros(r.ticks)
                .map_or("-".into(), |us| format!("{us:.1}"));
            writeln!(
                f,
                "{:<12} {:>4} {:>7} {:>9} {:>12} {:>10} {:>10}  {}",
                r.partition,
                r.sequence,
                r.asked,
                r.released,
                r.repossessed,
                r.ticks,
                micros,
                r.outcome
            )?;
        }
        let met: Vec<_> = self
            .revocations
            .iter()
            .filter(|r| r.outcome == RevocationOutcome::Met)
            .collect();
        if let Some(worst) = met.iter().map(|r| r.ticks).max() {
            let frames: u64 = met.iter().map(|r| r.asked).sum();
            let ticks: u64 = met.iter().map(|r| r.ticks).sum();
            writeln!(
                f,
                "cooperative: {} requests, {frames} frames, worst {worst} ticks, {:.1} ticks per frame",
                met.len(),
                ticks as f64 / frames.max(1) as f64
            )?;
        }
        writeln!(
            f,
            "runs: {} ({})",
            self.runs,
            if self.deterministic {
                "identical"
            } else {
                "DIFFERENT: numbers are not trustworthy"
            }
        )?;
        for problem in &self.problems {
            writeln!(f, "problem: {problem}")?;
        }
        if self.revocations.is_empty() && self.metrics.is_empty() {
            writeln!(
                f,
                "problem: nothing was measured (no revocation, no bench line)"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bench_lines_of_partitions_only() {
        let lines = vec![
            "[latency] bench irq_raise_ticks=812 samples=1000 note=x\r".to_owned(),
            "exo: bench nothing=1".to_owned(),
            "[other] benchmark=3".to_owned(),
        ];
        assert_eq!(
            metrics(&lines),
            vec![
                Metric {
                    partition: "latency".into(),
                    name: "irq_raise_ticks".into(),
                    value: 812
                },
                Metric {
                    partition: "latency".into(),
                    name: "samples".into(),
                    value: 1000
                },
            ]
        );
    }

    #[test]
    fn a_failed_boot_shows_qemu_errors_in_the_report() {
        let mut outcome =
            crate::RunOutcome::from_console(&["latency"], "", crate::RunEnd::Exited(Some(1)));
        outcome
            .qemu_stderr
            .push("qemu-system-aarch64: -icount: invalid option".to_owned());
        let report = Report {
            config: "b.toml".into(),
            frequency: None,
            revocations: Vec::new(),
            metrics: Vec::new(),
            samples: Vec::new(),
            partitions: Vec::new(),
            runs: 1,
            deterministic: true,
            problems: problems_of_run(0, &outcome),
        };
        assert!(!report.is_sound());
        let shown = report.to_string();
        assert!(
            shown.contains(
                "problem: run 1: QEMU exited with status 1 without the kernel's power-off \
                 line; QEMU said:\n  qemu stderr: qemu-system-aarch64: -icount: invalid option\n"
            ),
            "{shown}"
        );
    }

    #[test]
    fn reads_the_counter_frequency() {
        let lines = vec![
            "exo: hi".to_owned(),
            "exo: counter frequency 62500000 Hz\r".to_owned(),
        ];
        assert_eq!(frequency(&lines), Some(62_500_000));
        assert_eq!(
            frequency(&["[p] exo: counter frequency 1 Hz".to_owned()]),
            None
        );
    }
}
