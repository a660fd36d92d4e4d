//! The kernel's console protocol and the outcome of a run.
//!
//! The kernel prints, each on a line of its own:
//!
//! - `[<partition>] <text>`: output of a partition (ignored here);
//! - `exo: result <partition> ok` or `exo: result <partition> failed: <reason>`: one
//!   per partition, before power-off;
//! - `exo: revocation partition=<name> sequence=<n> asked=<k> released=<r>
//!   repossessed=<p> ticks=<t> outcome=<met|aborted>`: one per finished revocation
//!   ([`Revocation`]); keys may come in any order, unknown keys are ignored;
//! - `exo: self-check ok frames=<n>` or `exo: error: self-check FAILED: <why>`: the kernel's
//!   frame-accounting self-check;
//! - `exo: all partitions finished, powering off`: then PSCI `SYSTEM_OFF`, so QEMU exits;
//! - `exo: error: boot failed: <why>`: the kernel could not boot (then it powers off);
//! - `exo: KERNEL PANIC <message>`: a kernel bug (recognised anywhere in a line).
//!
//! Result, revocation, self-check and power-off lines count only at the start of a line
//! (after any `\r`), so a partition cannot forge them: its lines start with `[name] `.
//!
//! A run succeeds if and only if the power-off line was seen, every configured partition
//! has a result and all are `ok`, nothing panicked, no self-check failed, every revocation
//! and self-check line parsed, and QEMU then exited by itself.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Prefix of a result line.
pub const RESULT_PREFIX: &str = "exo: result ";
/// The power-off line.
pub const POWER_OFF_LINE: &str = "exo: all partitions finished, powering off";
/// Marker of a kernel panic.
pub const PANIC_MARKER: &str = "exo: KERNEL PANIC";
/// Prefix of a revocation line.
pub const REVOCATION_PREFIX: &str = "exo: revocation ";
/// Prefix of a self-check line.
pub const SELF_CHECK_PREFIX: &str = "exo: self-check ";
/// A failed self-check is a kernel bug, logged at error level with this prefix.
pub const SELF_CHECK_ERROR_PREFIX: &str = "exo: error: self-check ";
/// Prefix of the line the kernel prints when it cannot boot, before powering off.
pub const BOOT_FAILED_PREFIX: &str = "exo: error: boot failed: ";

/// How a revocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationOutcome {
    /// The partition released what was asked before the deadline.
    Met,
    /// The deadline passed: the kernel repossessed the frames and counted an abort.
    Aborted,
}

impl RevocationOutcome {
    /// The word the kernel prints (`met` or `aborted`).
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationOutcome::Met => "met",
            RevocationOutcome::Aborted => "aborted",
        }
    }
}

impl fmt::Display for RevocationOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finished revocation, from an `exo: revocation ...` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The partition asked to give frames back.
    pub partition: String,
    /// The kernel's sequence number of the request.
    pub sequence: u64,
    /// Frames asked for.
    pub asked: u64,
    /// Frames the partition released by itself.
    pub released: u64,
    /// Frames the kernel took back after the deadline.
    pub repossessed: u64,
    /// Timer ticks from the request to its end.
    pub ticks: u64,
    /// Whether the deadline was met.
    pub outcome: RevocationOutcome,
}

impl Revocation {
    /// Parses the text after [`REVOCATION_PREFIX`]: space-separated `key=value` pairs.
    /// Unknown keys are ignored; a missing or unparsable known key is an error.
    pub fn parse(fields: &str) -> Result<Self, String> {
        let mut values: BTreeMap<&str, &str> = BTreeMap::new();
        for field in fields.split_whitespace() {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| format!("`{field}` is not key=value"))?;
            values.insert(key, value);
        }
        let text = |key: &str| values.get(key).copied().ok_or(format!("no `{key}=`"));
        let number = |key: &str| {
            text(key)?
                .parse::<u64>()
                .map_err(|_| format!("`{key}=` is not a number"))
        };
        Ok(Self {
            partition: text("partition")?.to_owned(),
            sequence: number("sequence")?,
            asked: number("asked")?,
            released: number("released")?,
            repossessed: number("repossessed")?,
            ticks: number("ticks")?,
            outcome: match text("outcome")? {
                "met" => RevocationOutcome::Met,
                "aborted" => RevocationOutcome::Aborted,
                other => return Err(format!("unknown outcome `{other}`")),
            },
        })
    }
}

/// Parses the text after [`SELF_CHECK_PREFIX`]: `ok frames=<n>` gives `Ok(n)`,
/// `FAILED: <why>` gives `Err(why)`, anything else an `Err` saying it did not parse.
pub fn parse_self_check(rest: &str) -> Result<u64, String> {
    if let Some(why) = rest.strip_prefix("FAILED: ") {
        return Err(why.to_owned());
    }
    rest.strip_prefix("ok frames=")
        .and_then(|n| n.trim_end().parse::<u64>().ok())
        .ok_or_else(|| format!("unparsed self-check line `exo: self-check {rest}`"))
}

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
    /// Revocation lines, in order, each parsed or with why it did not parse.
    pub revocation_lines: Vec<Result<Revocation, String>>,
    /// Self-check lines, in order: `Ok(frames)` or `Err(why it failed)`.
    pub self_check_lines: Vec<Result<u64, String>>,
    /// Why the kernel could not boot (the first `exo: error: boot failed: ` line), if so.
    pub boot_failure: Option<String>,
    /// How QEMU ended.
    pub end: RunEnd,
    /// Files QEMU's serial ports beyond the console wrote to, by port (see
    /// [`crate::qemu::serial_ports`]).
    pub serial_outputs: BTreeMap<u32, PathBuf>,
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
            revocation_lines: Vec::new(),
            self_check_lines: Vec::new(),
            boot_failure: None,
            end: RunEnd::Exited(None),
            serial_outputs: BTreeMap::new(),
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
        } else if let Some(why) = kernel.strip_prefix(BOOT_FAILED_PREFIX) {
            self.boot_failure.get_or_insert_with(|| why.to_owned());
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
        } else if let Some(rest) = kernel.strip_prefix(REVOCATION_PREFIX) {
            self.revocation_lines
                .push(Revocation::parse(rest).map_err(|why| format!("{why} in `{kernel}`")));
        } else if let Some(rest) = kernel
            .strip_prefix(SELF_CHECK_PREFIX)
            .or_else(|| kernel.strip_prefix(SELF_CHECK_ERROR_PREFIX))
        {
            self.self_check_lines.push(parse_self_check(rest));
        }
    }

    /// The revocations the kernel reported, in order (lines that did not parse are left
    /// out; they are among [`RunOutcome::problems`]).
    pub fn revocations(&self) -> Vec<Revocation> {
        self.revocation_lines
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect()
    }

    /// The kernel's self-check results, in order: `Ok(frames)` or `Err(why)`.
    pub fn self_checks(&self) -> Vec<Result<u64, String>> {
        self.self_check_lines.clone()
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
        if let Some(why) = &self.boot_failure {
            problems.push(format!("the kernel could not boot: {why}"));
        }
        match &self.end {
            RunEnd::TimedOut(after) => {
                problems.push(format!("timed out after {} s", after.as_secs()))
            }
            RunEnd::HungAfterPowerOff(after) => problems.push(format!(
                "QEMU did not exit within {} s of the power-off line (did PSCI SYSTEM_OFF fail?)",
                after.as_secs()
            )),
            // The kernel powers off after saying why it could not boot: that is the problem.
            RunEnd::Exited(Some(0)) if self.boot_failure.is_some() => {}
            RunEnd::Exited(code) if !self.powered_off => {
                let how = match code {
                    Some(0) => String::new(),
                    Some(code) => format!(" with status {code}"),
                    None => " on a signal".to_owned(),
                };
                problems.push(format!(
                    "QEMU exited{how} without the kernel's power-off line{}",
                    self.qemu_said()
                ))
            }
            RunEnd::Exited(Some(code)) if *code != 0 => problems.push(format!(
                "QEMU exited with status {code} after the kernel's power-off line{}",
                self.qemu_said()
            )),
            RunEnd::Exited(_) => {}
        }
        if let Some(panic) = &self.panic {
            problems.push(format!("kernel panic: {}", panic.trim()));
        }
        for name in &self.partitions {
            if self.boot_failure.is_some() && !self.results.contains_key(name) {
                continue; // nothing ran
            }
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
        for check in &self.self_check_lines {
            if let Err(why) = check {
                problems.push(format!("kernel self-check failed: {why}"));
            }
        }
        for line in &self.revocation_lines {
            if let Err(why) = line {
                problems.push(format!("unparsed revocation line: {why}"));
            }
        }
        problems
    }
}

/// At most this many of QEMU's standard-error lines go into a problem (the last ones).
const QEMU_STDERR_SHOWN: usize = 20;

impl RunOutcome {
    /// QEMU's standard error, for a problem: `; QEMU said:` and its last lines, each on a
    /// line of its own starting `  qemu stderr: `; empty if it wrote nothing.
    fn qemu_said(&self) -> String {
        let lines: Vec<&str> = self
            .qemu_stderr
            .iter()
            .map(|l| l.trim_end())
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return " (QEMU wrote nothing to its standard error)".to_owned();
        }
        let skipped = lines.len().saturating_sub(QEMU_STDERR_SHOWN);
        let mut said = "; QEMU said:".to_owned();
        if skipped > 0 {
            said.push_str(&format!(
                "\n  qemu stderr: ({skipped} earlier lines left out)"
            ));
        }
        for line in &lines[skipped..] {
            said.push_str("\n  qemu stderr: ");
            said.push_str(line);
        }
        said
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
                "QEMU exited without the kernel's power-off line (QEMU wrote nothing to its \
                 standard error)",
                "partition counter reported no result"
            ]
        );
    }

    #[test]
    fn a_boot_failure_is_reported_first_in_words() {
        let console = "exo: RAM 0x0..0x3c000000 (960 MiB), PARange code 2\n\
                       exo: error: boot failed: partition `big` (0) needs 307206 frames (1200 \
                       MiB for its memory, kernel pages and stage-2 tables), 244700 free (955 \
                       MiB)\n";
        let outcome = RunOutcome::from_console(&["big"], console, exited());
        assert_eq!(
            outcome.problems(),
            [
                "the kernel could not boot: partition `big` (0) needs 307206 frames (1200 MiB \
              for its memory, kernel pages and stage-2 tables), 244700 free (955 MiB)"
            ]
        );
        assert!(!outcome.success());
        // Said once: QEMU's exit and the missing results follow from it. A failing QEMU
        // is still reported.
        let failing = RunOutcome::from_console(&["big"], console, RunEnd::Exited(Some(1)));
        assert_eq!(failing.problems().len(), 2, "{:?}", failing.problems());
        let forged = RunOutcome::from_console(&["p"], "[p] exo: error: boot failed: x\n", exited());
        assert_eq!(forged.boot_failure, None);
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

    const MEMORY: &str = "exo: booting\n\
        exo: revocation partition=hog sequence=1 asked=4 released=4 repossessed=0 ticks=12 outcome=met\n\
        [hog] released 4 frames\n\
        \rexo: revocation partition=hog sequence=2 asked=8 released=3 repossessed=5 ticks=625 outcome=aborted\r\n\
        exo: self-check ok frames=262144\n\
        exo: result hog failed: terminated after 3 aborts\n\
        exo: result hello ok\n\
        exo: all partitions finished, powering off\n";

    #[test]
    fn revocations_are_parsed_in_order() {
        let outcome = RunOutcome::from_console(&["hog", "hello"], MEMORY, exited());
        assert_eq!(
            outcome.revocations(),
            [
                Revocation {
                    partition: "hog".into(),
                    sequence: 1,
                    asked: 4,
                    released: 4,
                    repossessed: 0,
                    ticks: 12,
                    outcome: RevocationOutcome::Met,
                },
                Revocation {
                    partition: "hog".into(),
                    sequence: 2,
                    asked: 8,
                    released: 3,
                    repossessed: 5,
                    ticks: 625,
                    outcome: RevocationOutcome::Aborted,
                },
            ]
        );
        assert_eq!(outcome.self_checks(), [Ok(262144)]);
        assert_eq!(
            outcome.result("hog"),
            Some(&PartitionResult::Failed("terminated after 3 aborts".into()))
        );
        assert_eq!(
            outcome.problems(),
            ["partition hog failed: terminated after 3 aborts"]
        );
    }

    #[test]
    fn revocation_keys_in_any_order_and_unknown_keys_are_ignored() {
        let r = Revocation::parse(
            "outcome=met ticks=1 repossessed=0 released=2 asked=2 sequence=7 partition=a-b_c \
             extra=yes",
        )
        .unwrap();
        assert_eq!((r.partition.as_str(), r.sequence), ("a-b_c", 7));
        assert_eq!(r.outcome, RevocationOutcome::Met);
        assert_eq!(r.outcome.to_string(), "met");
    }

    #[test]
    fn a_malformed_revocation_line_is_a_problem() {
        for (line, why) in [
            ("exo: revocation partition=x sequence=1", "no `asked=`"),
            (
                "exo: revocation partition=x sequence=one asked=1 released=1 repossessed=0 \
                 ticks=1 outcome=met",
                "`sequence=` is not a number",
            ),
            (
                "exo: revocation partition=x sequence=1 asked=1 released=1 repossessed=0 \
                 ticks=1 outcome=late",
                "unknown outcome `late`",
            ),
            ("exo: revocation partition x", "not key=value"),
        ] {
            let console = format!("{line}\n{GOOD}");
            let outcome = RunOutcome::from_console(&["hello", "counter"], &console, exited());
            assert!(outcome.revocations().is_empty());
            let problems = outcome.problems();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with("unparsed revocation line: ") && problems[0].contains(why),
                "`{why}` not in {problems:?}"
            );
        }
    }

    #[test]
    fn a_failed_self_check_fails_the_run() {
        let console = format!(
            "exo: self-check ok frames=10\nexo: self-check FAILED: frame 0x40200 owned twice: \
             a=1 b=2\n{GOOD}"
        );
        let outcome = RunOutcome::from_console(&["hello", "counter"], &console, exited());
        assert_eq!(
            outcome.self_checks(),
            [Ok(10), Err("frame 0x40200 owned twice: a=1 b=2".into())]
        );
        assert_eq!(
            outcome.problems(),
            ["kernel self-check failed: frame 0x40200 owned twice: a=1 b=2"]
        );
        let garbled = format!("exo: self-check ok frames=lots\n{GOOD}");
        let outcome = RunOutcome::from_console(&["hello", "counter"], &garbled, exited());
        assert!(outcome.self_checks()[0].is_err());
        assert!(!outcome.success());
    }

    #[test]
    fn reasons_with_equals_and_colons_parse() {
        let console = "exo: result a failed: revocation: asked=4 released=1 (deadline 10ms)\n\
                       exo: result b failed: stage-2 fault: write at IPA 0x40200000\n";
        let outcome = RunOutcome::from_console(&["a", "b"], console, exited());
        assert_eq!(
            outcome.result("a"),
            Some(&PartitionResult::Failed(
                "revocation: asked=4 released=1 (deadline 10ms)".into()
            ))
        );
        assert_eq!(
            outcome.result("b"),
            Some(&PartitionResult::Failed(
                "stage-2 fault: write at IPA 0x40200000".into()
            ))
        );
    }

    #[test]
    fn partitions_cannot_forge_revocations_or_self_checks() {
        let console = "[evil] exo: revocation partition=evil sequence=1 asked=1 released=1 \
                       repossessed=0 ticks=1 outcome=met\n\
                       [evil] exo: self-check FAILED: forged\n \
                       exo: self-check ok frames=1\n";
        let outcome = RunOutcome::from_console(&["evil"], console, exited());
        assert!(outcome.revocations().is_empty());
        assert!(outcome.self_checks().is_empty());
    }

    #[test]
    fn results_for_unknown_partitions_fail() {
        let console = format!("exo: result ghost ok\n{GOOD}");
        let outcome = RunOutcome::from_console(&["hello", "counter"], &console, exited());
        assert!(outcome.to_string().contains("unknown partition `ghost`"));
    }
}
