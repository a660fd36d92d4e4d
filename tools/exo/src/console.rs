//! The kernel's console protocol and the outcome of a run.
//!
//! The kernel prints, each on a line of its own:
//!
//! - `[<partition>] <text>`: output of a partition (ignored here);
//! - `exo: result <partition> ok` or `exo: result <partition> failed: <reason>`: one
//!   per partition, before power-off;
//! - `exo: all partitions finished, powering off`: then PSCI `SYSTEM_OFF`, so QEMU exits;
//! - `exo: KERNEL PANIC <message>`: a kernel bug (recognised anywhere in a line).
//!
//! Result and power-off lines count only at the start of a line (after any `\r`), so a
//! partition cannot forge them: its lines start with `[name] `.
//!
//! A run succeeds if and only if the power-off line was seen, every configured partition
//! has a result and all are `ok`, nothing panicked, and QEMU then exited by itself.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Prefix of a result line.
pub const RESULT_PREFIX: &str = "exo: result ";
/// The power-off line.
pub const POWER_OFF_LINE: &str = "exo: all partitions finished, powering off";
/// Marker of a kernel panic.
pub const PANIC_MARKER: &str = "exo: KERNEL PANIC";

/// A partition's final result, as the kernel reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionResult {
    /// Finished successfully.
    Ok,
    /// Failed; the kernel's reason (e.g. `panicked (exit status 101)`).
    Failed(String),
}

/// How the QEMU process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// QEMU exited by itself, with this exit code (`None` if killed by a signal).
    Exited(Option<i32>),
    /// The deadline passed; QEMU was killed.
    TimedOut(Duration),
    /// The kernel printed the power-off line but QEMU had not exited this long after: it
    /// was killed.
    HungAfterPowerOff(Duration),
}

/// Everything a run produced, and the verdict.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The configured partitions, in order.
    pub partitions: Vec<String>,
    /// Every console line, in order, without line endings.
    pub lines: Vec<String>,
    /// What QEMU wrote to its standard error.
    pub qemu_stderr: Vec<String>,
    /// Results by partition name (first report wins).
    pub results: BTreeMap<String, PartitionResult>,
    /// Whether the power-off line was seen.
    pub powered_off: bool,
    /// The first kernel panic line, if any.
    pub panic: Option<String>,
    /// How QEMU ended.
    pub end: RunEnd,
}

impl RunOutcome {
    /// An outcome with nothing seen yet, for the configured `partitions`.
    pub fn new(partitions: Vec<String>) -> Self {
        Self {
            partitions,
            lines: Vec::new(),
            qemu_stderr: Vec::new(),
            results: BTreeMap::new(),
            powered_off: false,
            panic: None,
            end: RunEnd::Exited(None),
        }
    }

    /// Parses a whole captured console (for tests and replays).
    pub fn from_console(partitions: &[&str], console: &str, end: RunEnd) -> Self {
        let mut outcome = Self::new(partitions.iter().map(|p| p.to_string()).collect());
        for line in console.lines() {
            outcome.observe(line);
        }
        outcome.end = end;
        outcome
    }

    /// Records one console line (line ending optional).
    pub fn observe(&mut self, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        self.lines.push(line.to_owned());
        let kernel = line.trim_start_matches('\r');
        if line.contains(PANIC_MARKER) && self.panic.is_none() {
            self.panic = Some(line.to_owned());
        }
        if kernel == POWER_OFF_LINE {
            self.powered_off = true;
        } else if let Some(rest) = kernel.strip_prefix(RESULT_PREFIX) {
            let (name, result) = match rest.split_once(' ') {
                Some((name, "ok")) => (name, PartitionResult::Ok),
                Some((name, failed)) => match failed.strip_prefix("failed: ") {
                    Some(reason) => (name, PartitionResult::Failed(reason.to_owned())),
                    None => (
                        name,
                        PartitionResult::Failed(format!("unparsed result `{failed}`")),
                    ),
                },
                None => (rest, PartitionResult::Failed("unparsed result".to_owned())),
            };
            self.results.entry(name.to_owned()).or_insert(result);
        }
    }

    /// Whether the run passed (see the [module documentation](self)).
    pub fn success(&self) -> bool {
        self.problems().is_empty()
    }

    /// Lines a partition printed (`[name] text`), without the prefix.
    pub fn partition_lines<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = format!("[{name}] ");
        self.lines
            .iter()
            .filter_map(move |l| l.strip_prefix(&prefix))
    }

    /// The result of partition `name`, if reported.
    pub fn result(&self, name: &str) -> Option<&PartitionResult> {
        self.results.get(name)
    }

    /// Every reason the run did not pass, one sentence each; empty on success.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        match &self.end {
            RunEnd::TimedOut(after) => {
                problems.push(format!("timed out after {} s", after.as_secs()))
            }
            RunEnd::HungAfterPowerOff(after) => problems.push(format!(
                "QEMU did not exit within {} s of the power-off line (did PSCI SYSTEM_OFF fail?)",
                after.as_secs()
            )),
            RunEnd::Exited(_) if !self.powered_off => {
                problems.push("QEMU exited without the kernel's power-off line".to_owned())
            }
            RunEnd::Exited(_) => {}
        }
        if let Some(panic) = &self.panic {
            problems.push(format!("kernel panic: {}", panic.trim()));
        }
        for name in &self.partitions {
            match self.results.get(name) {
                Some(PartitionResult::Ok) => {}
                Some(PartitionResult::Failed(reason)) => {
                    problems.push(format!("partition {name} failed: {reason}"))
                }
                None => problems.push(format!("partition {name} reported no result")),
            }
        }
        for name in self.results.keys() {
            if !self.partitions.contains(name) {
                problems.push(format!("result for unknown partition `{name}`"));
            }
        }
        problems
    }
}

impl fmt::Display for RunOutcome {
    /// One line per problem, each prefixed `exo run: `, or `exo run: all N partitions ok`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problems = self.problems();
        if problems.is_empty() {
            return write!(f, "exo run: all {} partitions ok", self.partitions.len());
        }
        for (i, problem) in problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "exo run: {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "exo: booting\n[hello] hello, world\n[counter] 1\r\n\
                        exo: result hello ok\r\nexo: result counter ok\n\
                        exo: all partitions finished, powering off\n";

    fn exited() -> RunEnd {
        RunEnd::Exited(Some(0))
    }

    #[test]
    fn all_ok_is_success() {
        let outcome = RunOutcome::from_console(&["hello", "counter"], GOOD, exited());
        assert!(outcome.success(), "{outcome}");
        assert!(outcome.powered_off);
        assert_eq!(
            outcome.partition_lines("hello").collect::<Vec<_>>(),
            ["hello, world"]
        );
        assert_eq!(
            outcome.partition_lines("counter").collect::<Vec<_>>(),
            ["1"]
        );
        assert_eq!(outcome.to_string(), "exo run: all 2 partitions ok");
    }

    #[test]
    fn a_failed_partition_is_named_with_its_reason() {
        let console = "[panicker] oops\nexo: result hello ok\n\
                       exo: result panicker failed: panicked (exit status 101)\n\
                       exo: all partitions finished, powering off\n";
        let outcome = RunOutcome::from_console(&["hello", "panicker"], console, exited());
        assert!(!outcome.success());
        assert_eq!(outcome.result("hello"), Some(&PartitionResult::Ok));
        assert_eq!(
            outcome.result("panicker"),
            Some(&PartitionResult::Failed(
                "panicked (exit status 101)".into()
            ))
        );
        assert_eq!(
            outcome.to_string(),
            "exo run: partition panicker failed: panicked (exit status 101)"
        );
    }

    #[test]
    fn timeout_is_reported() {
        let outcome = RunOutcome::from_console(
            &["hello"],
            "[hello] still going\n",
            RunEnd::TimedOut(Duration::from_secs(60)),
        );
        assert!(!outcome.success());
        let text = outcome.to_string();
        assert!(text.contains("timed out after 60 s"), "{text}");
        assert!(
            text.contains("partition hello reported no result"),
            "{text}"
        );
    }

    #[test]
    fn panic_fails_even_after_power_off() {
        let console = format!("exo: KERNEL PANIC at kernel/src/x.rs:1: oops\n{GOOD}");
        let outcome = RunOutcome::from_console(&["hello", "counter"], &console, exited());
        assert!(!outcome.success());
        assert!(outcome.panic.as_deref().unwrap().contains("oops"));
        assert!(outcome.to_string().contains("kernel panic"));
    }

    #[test]
    fn missing_result_and_missing_power_off() {
        let console = "exo: result hello ok\n";
        let outcome = RunOutcome::from_console(&["hello", "counter"], console, exited());
        let problems = outcome.problems();
        assert_eq!(
            problems,
            [
                "QEMU exited without the kernel's power-off line",
                "partition counter reported no result"
            ]
        );
    }

    #[test]
    fn hung_after_power_off_fails() {
        let outcome = RunOutcome::from_console(
            &["hello", "counter"],
            GOOD,
            RunEnd::HungAfterPowerOff(Duration::from_secs(5)),
        );
        assert!(outcome.to_string().contains("SYSTEM_OFF"));
    }

    #[test]
    fn partitions_cannot_forge_kernel_lines() {
        let console =
            "[evil] exo: result evil ok\n[evil] exo: all partitions finished, powering off\n";
        let outcome = RunOutcome::from_console(&["evil"], console, exited());
        assert!(outcome.results.is_empty());
        assert!(!outcome.powered_off);
    }

    #[test]
    fn results_for_unknown_partitions_fail() {
        let console = format!("exo: result ghost ok\n{GOOD}");
        let outcome = RunOutcome::from_console(&["hello", "counter"], &console, exited());
        assert!(outcome.to_string().contains("unknown partition `ghost`"));
    }
}
