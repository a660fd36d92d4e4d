//! Shared helpers of the exo system tests: boot a configuration under QEMU, one at a time,
//! and fail with the captured console when something goes wrong.
//!
//! The boot tests live in `tests/boot.rs`. They never run concurrently: every boot holds
//! [`boot`]'s global lock (the test machines have two cores, and QEMU plus a cross build
//! would otherwise starve each other past their timeouts). `cargo test` runs the test
//! binaries themselves one after another.
//!
//! If QEMU is missing, the boot tests fail and say to run `scripts/setup`: they are never
//! skipped silently.
//!
//! [`boot`] and [`boot_on`] cover most tests; [`Boot`] sets the other `exo run` options,
//! such as files for the UART a partition owns ([`Boot::serial1_input`]), whose output
//! [`Booted::serial_output`] returns.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub use exo_tool::{
    ConfigError, PartitionResult, Revocation, RevocationOutcome, RunEnd, RunOptions, RunOutcome,
    Workspace,
};

/// Time limit of one boot.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Serialises boots within one test binary.
static BOOT_LOCK: Mutex<()> = Mutex::new(());

/// Holds the lock every boot of this crate takes, for tests that drive QEMU through
/// `exo_tool` themselves (benchmarks): one QEMU at a time, as with [`Boot::run`].
pub fn boot_lock() -> std::sync::MutexGuard<'static, ()> {
    BOOT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A configuration in `tests/configs/`.
pub fn test_config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name)
}

/// Builds and boots `config` with [`BOOT_TIMEOUT`], holding the global boot lock.
///
/// Panics (failing the test) if the configuration is refused, the build fails or QEMU
/// cannot be started; the panic message says what to do.
pub fn boot(config: &Path) -> Booted {
    Boot::new(config).run()
}

/// Like [`boot`], on `board` instead of the configuration's.
pub fn boot_on(config: &Path, board: &str) -> Booted {
    Boot::new(config).board(board).run()
}

/// A boot with more options than [`boot`] and [`boot_on`] take (they are shorthands for
/// it): the same flags as `exo run`, set one by one, then [`Boot::run`].
///
/// ```no_run
/// use exo_system_tests::{Boot, test_config};
///
/// let input = test_config("uart-input.txt");
/// let booted = Boot::new(&test_config("uart.toml"))
///     .board("qemu-virt-gicv2")
///     .serial1_input(&input)
///     .run();
/// assert!(booted.serial_output(1).contains("echo"));
/// ```
#[derive(Clone, Debug)]
pub struct Boot {
    config: PathBuf,
    options: RunOptions,
}

impl Boot {
    /// A boot of `config` on its own board, with [`BOOT_TIMEOUT`] and no extra options.
    pub fn new(config: &Path) -> Self {
        Self {
            config: config.to_path_buf(),
            options: RunOptions {
                timeout: BOOT_TIMEOUT,
                echo: false,
                ..RunOptions::default()
            },
        }
    }

    /// Boots on `board` instead of the configuration's (`exo run --board`).
    pub fn board(mut self, board: &str) -> Self {
        self.options.board = Some(board.to_owned());
        self
    }

    /// Kills QEMU and fails after `timeout` instead of [`BOOT_TIMEOUT`] (`--timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// QEMU serial port 1 (`uart1` on QEMU virt, which a partition must own) reads its
    /// input from `file` (`--serial1-input`).
    pub fn serial1_input(mut self, file: impl Into<PathBuf>) -> Self {
        self.options.serial1_input = Some(file.into());
        self
    }

    /// QEMU serial port 1 writes to `file` (`--serial1-output`) instead of
    /// `build/<board>/<config stem>.serial1.log`.
    pub fn serial1_output(mut self, file: impl Into<PathBuf>) -> Self {
        self.options.serial1_output = Some(file.into());
        self
    }

    /// Gives QEMU this device tree instead of the board's (`--dtb`): a blob or a `.dts`.
    pub fn dtb(mut self, file: impl Into<PathBuf>) -> Self {
        self.options.dtb = Some(file.into());
        self
    }

    /// Appends `arg` to QEMU's arguments (`--qemu-arg`; repeat for several).
    pub fn qemu_arg(mut self, arg: impl Into<String>) -> Self {
        self.options.extra_qemu_args.push(arg.into());
        self
    }

    /// Runs QEMU in virtual time (`-icount`, one nanosecond per instruction, as `exo bench`
    /// does): timings then repeat exactly and do not depend on how loaded the machine is.
    pub fn virtual_time(mut self) -> Self {
        self.options
            .extra_qemu_args
            .extend(exo_tool::bench::QEMU_ARGS.iter().map(|a| a.to_string()));
        self
    }

    /// Builds and boots, holding the global boot lock.
    ///
    /// Panics (failing the test) if the configuration is refused, the build fails, QEMU
    /// cannot be started or the serial port files are wrong; the panic message says what
    /// to do.
    pub fn run(self) -> Booted {
        let _guard = boot_lock();
        announce(&self.config, self.options.board.as_deref());
        match exo_tool::run_system(&self.config, &self.options) {
            Ok(outcome) => Booted {
                config: self.config,
                outcome,
            },
            Err(e) => panic!(
                "could not boot {}: {e:#}\n(if QEMU or the AArch64 toolchain is missing, run \
                 scripts/setup)",
                self.config.display()
            ),
        }
    }
}

/// Says which boot starts, as `boot: tests/configs/x.toml on qemu-virt`, on the process's
/// standard error itself: libtest captures `eprintln!` of passing tests, not this, so
/// `scripts/test` names each QEMU scenario as it runs. [`Boot::run`] calls it; tests that
/// drive QEMU through `exo_tool` themselves call it too.
pub fn announce(config: &Path, board: Option<&str>) {
    use std::io::Write;
    let root = workspace_root().canonicalize().ok();
    let shown = config
        .canonicalize()
        .ok()
        .and_then(|c| Some(c.strip_prefix(root.as_ref()?).ok()?.to_path_buf()))
        .unwrap_or_else(|| config.to_path_buf());
    let board = board.map(str::to_owned).or_else(|| {
        let workspace = Workspace::locate_for(Some(config)).ok()?;
        Some(exo_tool::check(&workspace, config, None).ok()?.board.name)
    });
    let on = board.map(|b| format!(" on {b}")).unwrap_or_default();
    // One write, so the line does not interleave with libtest's.
    let line = format!("boot: {}{on}\n", shown.display());
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A finished boot, with assertions that print the whole console when they fail.
pub struct Booted {
    /// The configuration booted.
    pub config: PathBuf,
    /// What happened.
    pub outcome: RunOutcome,
}

impl Booted {
    /// Fails the test with `message`, the verdict and the captured console.
    pub fn fail(&self, message: &str) -> ! {
        let outcome = &self.outcome;
        let stderr = if outcome.qemu_stderr.is_empty() {
            "(QEMU wrote nothing to its standard error)".to_owned()
        } else {
            outcome.qemu_stderr.join("\n")
        };
        panic!(
            "{}: {message}\n--- verdict ---\n{outcome}\n--- console ({} lines) ---\n{}\n\
             --- QEMU stderr ({} lines) ---\n{stderr}\n---",
            self.config.display(),
            outcome.lines.len(),
            outcome.lines.join("\n"),
            outcome.qemu_stderr.len(),
        )
    }

    /// Asserts `condition`, else [`Booted::fail`]s with `message`.
    pub fn check(&self, condition: bool, message: &str) {
        if !condition {
            self.fail(message);
        }
    }

    /// Asserts the run passed.
    pub fn assert_success(&self) {
        self.check(self.outcome.success(), "the run did not pass");
    }

    /// Asserts partition `name` reported `ok`.
    pub fn assert_ok(&self, name: &str) {
        let result = self.outcome.result(name);
        self.check(
            result == Some(&PartitionResult::Ok),
            &format!("partition {name}: expected ok, got {result:?}"),
        );
    }

    /// Asserts partition `name` failed with a reason containing `phrase`.
    pub fn assert_failed_with(&self, name: &str, phrase: &str) {
        match self.outcome.result(name) {
            Some(PartitionResult::Failed(reason)) if reason.contains(phrase) => {}
            other => self.fail(&format!(
                "partition {name}: expected a failure containing `{phrase}`, got {other:?}"
            )),
        }
    }

    /// Asserts partition `name` printed at least one line.
    pub fn assert_printed(&self, name: &str) {
        self.check(
            self.outcome.partition_lines(name).next().is_some(),
            &format!("no `[{name}] ...` line on the console"),
        );
    }

    /// Asserts partition `name` printed a line (`[name] ...`) containing `text`.
    pub fn assert_partition_printed(&self, name: &str, text: &str) {
        self.check(
            self.outcome
                .partition_lines(name)
                .any(|line| line.contains(text)),
            &format!("no `[{name}] ...` line contains `{text}`"),
        );
    }

    /// The revocations the kernel reported (`exo: revocation ...` lines), in order.
    pub fn revocations(&self) -> Vec<Revocation> {
        self.outcome.revocations()
    }

    /// The revocations of partition `name`, in order.
    pub fn revocations_of(&self, name: &str) -> Vec<Revocation> {
        self.revocations()
            .into_iter()
            .filter(|r| r.partition == name)
            .collect()
    }

    /// Asserts at least one revocation of partition `name` ended with `outcome`; returns
    /// the first such.
    pub fn assert_revocation(&self, name: &str, outcome: RevocationOutcome) -> Revocation {
        match self
            .revocations_of(name)
            .into_iter()
            .find(|r| r.outcome == outcome)
        {
            Some(revocation) => revocation,
            None => self.fail(&format!(
                "no revocation of partition {name} with outcome={outcome}; revocations: {:?}",
                self.revocations()
            )),
        }
    }

    /// Asserts the kernel reported no revocation of partition `name`.
    pub fn assert_no_revocation(&self, name: &str) {
        let revocations = self.revocations_of(name);
        self.check(
            revocations.is_empty(),
            &format!("partition {name} was asked to give memory back: {revocations:?}"),
        );
    }

    /// The kernel's self-check results (`exo: self-check ...` lines): `Ok(frames)` or
    /// `Err(why)`.
    pub fn self_checks(&self) -> Vec<Result<u64, String>> {
        self.outcome.self_checks()
    }

    /// Asserts the kernel ran its self-check at least once and it never failed. Returns the
    /// frame count of the last check.
    pub fn assert_self_check_ok(&self) -> u64 {
        let checks = self.self_checks();
        if let Some(Err(why)) = checks.iter().find(|c| c.is_err()) {
            self.fail(&format!("kernel self-check failed: {why}"));
        }
        match checks.last() {
            Some(Ok(frames)) => *frames,
            _ => self.fail("no `exo: self-check ok frames=<n>` line on the console"),
        }
    }

    /// What QEMU serial port `port` (a UART a partition owns, such as `uart1` for port 1)
    /// wrote during the run, lossily decoded; [`Booted::fail`]s if the run attached no such
    /// port or its file cannot be read.
    pub fn serial_output(&self, port: u32) -> String {
        let Some(file) = self.outcome.serial_outputs.get(&port) else {
            self.fail(&format!(
                "no QEMU serial port {port} was attached (no partition owns its device)"
            ))
        };
        match std::fs::read(file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => self.fail(&format!(
                "cannot read serial {port} output {}: {e}",
                file.display()
            )),
        }
    }

    /// The physical addresses of the Normal-memory frames partition `name` says it is given,
    /// from the bindings the `hello` program lists (`IPA 0x.. -> PA 0x.., <n> pages, rw-,
    /// Normal`): the first and the last frame of each binding.
    pub fn normal_frames_of(&self, name: &str) -> Vec<u64> {
        let mut frames = Vec::new();
        for line in self.outcome.partition_lines(name) {
            let Some(rest) = line
                .split("-> PA 0x")
                .nth(1)
                .filter(|_| line.ends_with("Normal"))
            else {
                continue;
            };
            let mut fields = rest.split(',').map(str::trim);
            let pa = fields
                .next()
                .and_then(|pa| u64::from_str_radix(pa, 16).ok());
            let pages = fields
                .next()
                .and_then(|pages| pages.trim_end_matches(" pages").parse::<u64>().ok());
            if let (Some(pa), Some(pages)) = (pa, pages) {
                frames.extend([pa, pa + (pages - 1) * 4096]);
            }
        }
        frames
    }

    /// Asserts some console line contains every one of `phrases`.
    pub fn assert_line_with(&self, phrases: &[&str]) {
        self.check(
            self.outcome
                .lines
                .iter()
                .any(|line| phrases.iter().all(|p| line.contains(p))),
            &format!("no console line contains all of {phrases:?}"),
        );
    }
}
